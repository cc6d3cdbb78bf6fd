#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include <apr_lib.h>

#include "fl_catalog.h"

fl_catalog_t *fl_catalog_create(apr_pool_t *p)
{
    fl_catalog_t *c = apr_pcalloc(p, sizeof(*c));
    c->providers = apr_hash_make(p);
    c->models = apr_hash_make(p);
    c->routes = apr_hash_make(p);
    c->provider_list = apr_array_make(p, 8, sizeof(fl_provider_t *));
    c->model_list = apr_array_make(p, 16, sizeof(fl_model_t *));
    c->route_list = apr_array_make(p, 4, sizeof(fl_route_t *));
    return c;
}

int fl_catalog_name_valid(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++) {
        if (!(apr_isalnum(*s) || *s == '-' || *s == '_' || *s == '.')) return 0;
    }
    return 1;
}

int fl_catalog_split_opt(apr_pool_t *p, const char *opt, const char **k, const char **v)
{
    const char *eq = strchr(opt, '=');
    if (!eq || eq == opt) return 0;
    *k = apr_pstrmemdup(p, opt, (apr_size_t)(eq - opt));
    *v = eq + 1;
    return 1;
}

static const char *parse_price(const char *v, double *out)
{
    char *end;
    double d = strtod(v, &end);
    if (*end || d < 0 || end == v) return "not a non-negative number";
    *out = d;
    return NULL;
}

const char *fl_catalog_add_model(fl_catalog_t *c, apr_pool_t *p, const char *id,
                                 const char *const *opts, int nopts)
{
    const char *slash = strchr(id, '/'), *k, *v;
    fl_model_t *m;
    int i, have_in = 0, have_out = 0, have_cached = 0;

    if (!slash || slash == id || !slash[1]) {
        return apr_psprintf(p, "model '%s' must be written provider/model", id);
    }
    m = apr_pcalloc(p, sizeof(*m));
    m->id = id;
    m->name = slash + 1;
    m->breaker_slot = -1;
    m->provider = apr_hash_get(c->providers, apr_pstrmemdup(p, id, (apr_size_t)(slash - id)),
                               APR_HASH_KEY_STRING);
    if (!m->provider) {
        return apr_psprintf(p, "model '%s': no FloopyProvider of that name above this line", id);
    }
    if (apr_hash_get(c->models, id, APR_HASH_KEY_STRING)) {
        return apr_psprintf(p, "model '%s' is defined twice", id);
    }
    for (i = 0; i < nopts; i++) {
        const char *bad = NULL;
        if (!fl_catalog_split_opt(p, opts[i], &k, &v)) bad = "not key=value";
        else if (!strcmp(k, "input")) { bad = parse_price(v, &m->input_per_m); have_in = 1; }
        else if (!strcmp(k, "output")) { bad = parse_price(v, &m->output_per_m); have_out = 1; }
        else if (!strcmp(k, "cached_input")) {
            bad = parse_price(v, &m->cached_input_per_m);
            have_cached = 1;
        }
        else bad = "unknown option";
        if (bad) return apr_psprintf(p, "model '%s': '%s': %s", id, opts[i], bad);
    }
    if (!have_in || !have_out) {
        return apr_psprintf(p, "model '%s' needs input= and output= prices (USD per million tokens)", id);
    }
    if (!have_cached) m->cached_input_per_m = m->input_per_m;
    m->priced = 1;
    apr_hash_set(c->models, id, APR_HASH_KEY_STRING, m);
    APR_ARRAY_PUSH(c->model_list, fl_model_t *) = m;
    return NULL;
}

const char *fl_catalog_add_route(fl_catalog_t *c, apr_pool_t *p, const char *name,
                                 const char *const *ids, int nids)
{
    fl_route_t *r;
    int i;

    if (!fl_catalog_name_valid(name)) {
        return apr_psprintf(p, "route name '%s' may hold only letters, digits, '-', '_', '.'", name);
    }
    if (apr_hash_get(c->routes, name, APR_HASH_KEY_STRING)) {
        return apr_psprintf(p, "route '%s' is defined twice", name);
    }
    if (nids < 1) return apr_psprintf(p, "route '%s' needs at least one candidate", name);
    r = apr_pcalloc(p, sizeof(*r));
    r->name = name;
    r->explore = -1;
    r->candidates = apr_array_make(p, nids, sizeof(fl_model_t *));
    for (i = 0; i < nids; i++) {
        fl_model_t *m;
        if (!strncmp(ids[i], "explore=", 8)) {
            char *end;
            r->explore = strtod(ids[i] + 8, &end);
            if (*end || end == ids[i] + 8 || r->explore < 0 || r->explore > 1) {
                return apr_psprintf(p, "route '%s': explore= takes a share from 0 to 1", name);
            }
            continue;
        }
        m = apr_hash_get(c->models, ids[i], APR_HASH_KEY_STRING);
        if (!m) {
            return apr_psprintf(p, "route '%s': candidate '%s' has no FloopyModel line above", name, ids[i]);
        }
        APR_ARRAY_PUSH(r->candidates, fl_model_t *) = m;
    }
    if (r->candidates->nelts < 1) {
        return apr_psprintf(p, "route '%s' needs at least one candidate", name);
    }
    apr_hash_set(c->routes, name, APR_HASH_KEY_STRING, r);
    APR_ARRAY_PUSH(c->route_list, fl_route_t *) = r;
    return NULL;
}

apr_status_t fl_catalog_lookup(const fl_catalog_t *c, apr_pool_t *p, const char *model,
                               const fl_route_t **proute, fl_model_t **ppinned)
{
    const char *slash = strchr(model, '/');
    fl_provider_t *pv;
    fl_model_t *m;

    *proute = NULL;
    *ppinned = NULL;
    if (!slash) {
        *proute = apr_hash_get(c->routes, model, APR_HASH_KEY_STRING);
        return *proute ? APR_SUCCESS : APR_NOTFOUND;
    }
    if ((m = apr_hash_get(c->models, model, APR_HASH_KEY_STRING))) {
        *ppinned = m;
        return APR_SUCCESS;
    }
    pv = apr_hash_get(c->providers, model, (apr_ssize_t)(slash - model));
    if (!pv || !slash[1]) {
        return APR_NOTFOUND;
    }
    m = apr_pcalloc(p, sizeof(*m));
    m->id = model;
    m->name = slash + 1;
    m->provider = pv;
    m->breaker_slot = -1;
    *ppinned = m;
    return APR_SUCCESS;
}
