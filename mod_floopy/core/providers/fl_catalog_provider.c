/* The catalog's FloopyProvider lines: the options every provider takes, the type= that picks its
 * adapter, the options and checks that adapter adds, and at start-up its base URL and credential
 * resolved and handed to the adapter's configure. Beside the adapters rather than in the shared
 * ground with the rest of the catalog because every step asks the provider's adapter; the
 * declarations stay in fl_catalog.h with the catalog they fill. */
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include <apr_file_io.h>
#include <apr_env.h>

#include "fl_catalog.h"
#include "fl_adapter.h"

static const char *parse_positive_long(const char *k, const char *v, long *out)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || n <= 0) return k;
    *out = n;
    return NULL;
}

static int adapter_takes(const fl_adapter_t *a, const char *k)
{
    const char *const *o;
    for (o = a ? a->options : NULL; o && *o; o++) {
        if (!strcmp(*o, k)) return 1;
    }
    return 0;
}

static const char *provider_opt(fl_provider_t *pv, const char *k, const char *v)
{
    if (!strcmp(k, "type")) {
        if (!(pv->adapter = fl_adapter_find(v))) return "type";
        pv->type = v;
    }
    else if (!strcmp(k, "base_url")) pv->base_url = v;
    else if (!strcmp(k, "base_url_env")) pv->base_url_env = v;
    else if (!strcmp(k, "key_env")) pv->key_env = v;
    else if (!strcmp(k, "key_file")) pv->key_file = v;
    else if (!strcmp(k, "connect_timeout")) return parse_positive_long(k, v, &pv->connect_timeout_ms);
    else if (!strcmp(k, "timeout")) return parse_positive_long(k, v, &pv->timeout_ms);
    else if (!strcmp(k, "idle_timeout")) return parse_positive_long(k, v, &pv->idle_timeout_ms);
    else if (!strcmp(k, "breaker_failures")) return parse_positive_long(k, v, &pv->breaker_failures);
    else if (!strcmp(k, "breaker_cooldown")) return parse_positive_long(k, v, &pv->breaker_cooldown_sec);
    else apr_table_set(pv->opts, k, v); /* the adapter's, checked once type= is known */
    return NULL;
}

const char *fl_catalog_add_provider(fl_catalog_t *c, apr_pool_t *p, const char *name,
                                    const char *const *opts, int nopts)
{
    fl_provider_t *pv;
    const char *k, *v, *bad;
    int i;

    if (!fl_catalog_name_valid(name)) {
        return apr_psprintf(p, "provider name '%s' may hold only letters, digits, '-', '_', '.'", name);
    }
    if (apr_hash_get(c->providers, name, APR_HASH_KEY_STRING)) {
        return apr_psprintf(p, "provider '%s' is defined twice", name);
    }
    pv = apr_pcalloc(p, sizeof(*pv));
    pv->name = name;
    pv->index = c->provider_list->nelts;
    pv->opts = apr_table_make(p, 4);
    pv->connect_timeout_ms = 5000;
    pv->timeout_ms = 600000;
    pv->idle_timeout_ms = 60000;
    pv->breaker_failures = 5;
    pv->breaker_cooldown_sec = 30;
    for (i = 0; i < nopts; i++) {
        if (!fl_catalog_split_opt(p, opts[i], &k, &v)) {
            return apr_psprintf(p, "provider '%s': '%s' is not key=value", name, opts[i]);
        }
        if ((bad = provider_opt(pv, k, v))) {
            return apr_psprintf(p, "provider '%s': bad option %s=%s%s", name, bad, v,
                                strcmp(bad, "type") ? ""
                                : apr_pstrcat(p, " (wire types: ", fl_adapter_types(p), ")", NULL));
        }
    }
    if (!pv->type) return apr_psprintf(p, "provider '%s' needs type=", name);
    {
        const apr_array_header_t *extra = apr_table_elts(pv->opts);
        for (i = 0; i < extra->nelts; i++) {
            const char *key = APR_ARRAY_IDX(extra, i, apr_table_entry_t).key;
            if (!adapter_takes(pv->adapter, key)) {
                return apr_psprintf(p, "provider '%s': type=%s has no option %s=", name,
                                    pv->type, key);
            }
        }
    }
    if (pv->key_env && pv->key_file) {
        return apr_psprintf(p, "provider '%s': key_env and key_file exclude each other", name);
    }
    if (pv->adapter->check && (bad = pv->adapter->check(pv, p))) {
        return apr_psprintf(p, "provider '%s': %s", name, bad);
    }
    apr_hash_set(c->providers, name, APR_HASH_KEY_STRING, pv);
    APR_ARRAY_PUSH(c->provider_list, fl_provider_t *) = pv;
    return NULL;
}

static const char *read_key_file(apr_pool_t *p, const char *path, const char **out)
{
    apr_file_t *f;
    char buf[4096];
    apr_size_t n = sizeof(buf) - 1;
    apr_status_t rv;

    if ((rv = apr_file_open(&f, path, APR_FOPEN_READ, APR_FPROT_OS_DEFAULT, p)) != APR_SUCCESS) {
        return apr_psprintf(p, "cannot open key_file %s", path);
    }
    rv = apr_file_read(f, buf, &n);
    apr_file_close(f);
    if (rv != APR_SUCCESS && rv != APR_EOF) return apr_psprintf(p, "cannot read key_file %s", path);
    buf[n] = '\0';
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) buf[--n] = '\0';
    *out = apr_pstrdup(p, buf);
    return NULL;
}

static int has_crlf(const char *s)
{
    return s && strpbrk(s, "\r\n") != NULL;
}

const char *fl_catalog_resolve(fl_catalog_t *c, apr_pool_t *p)
{
    int i;
    for (i = 0; i < c->provider_list->nelts; i++) {
        fl_provider_t *pv = APR_ARRAY_IDX(c->provider_list, i, fl_provider_t *);
        const char *base = pv->base_url, *err;
        char *env = NULL;
        apr_size_t n;

        if (pv->base_url_env && apr_env_get(&env, pv->base_url_env, p) == APR_SUCCESS && *env) {
            base = env;
        }
        if (base) {
            n = strlen(base);
            while (n && base[n - 1] == '/') n--;
            pv->resolved_base = apr_pstrmemdup(p, base, n);
        }
        pv->api_key = NULL;
        if (pv->key_env && apr_env_get(&env, pv->key_env, p) == APR_SUCCESS && *env) {
            pv->api_key = apr_pstrdup(p, env);
        }
        if (pv->key_file && (err = read_key_file(p, pv->key_file, &pv->api_key))) {
            return apr_psprintf(p, "provider '%s': %s", pv->name, err);
        }
        if (has_crlf(pv->api_key) || has_crlf(pv->resolved_base)) {
            return apr_psprintf(p, "provider '%s': credential or URL holds a line break", pv->name);
        }
        if ((err = pv->adapter->configure(pv, p))) {
            return apr_psprintf(p, "provider '%s': %s", pv->name, err);
        }
    }
    return NULL;
}
