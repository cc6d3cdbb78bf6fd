/* Directives. A bad directive stops httpd at start with a message that names it. */
#include <apr_strings.h>
#include <http_core.h>

#include "config.h"
#include "fl_util.h"

floopy_srv_t *floopy_srv(server_rec *s)
{
    return ap_get_module_config(s->module_config, &floopy_module);
}

floopy_dir_t *floopy_dir(request_rec *r)
{
    return ap_get_module_config(r->per_dir_config, &floopy_module);
}

apr_off_t floopy_max_body(request_rec *r)
{
    floopy_dir_t *d = floopy_dir(r);
    return d->max_body > 0 ? d->max_body : FLOOPY_DEFAULT_MAX_BODY;
}

floopy_state_t *floopy_state(server_rec *s)
{
    return floopy_srv(s)->state;
}

floopy_proc_t *floopy_proc(server_rec *s)
{
    floopy_state_t *st = floopy_srv(s)->state;
    return st ? st->proc : NULL;
}

floopy_state_t *floopy_state_create(apr_pool_t *pconf, server_rec *s)
{
    floopy_state_t *st = apr_pcalloc(pconf, sizeof(*st));
    server_rec *v;
    st->main_server = s;
    for (v = s; v; v = v->next) floopy_srv(v)->state = st;
    return st;
}

void *floopy_create_srv(apr_pool_t *p, server_rec *s)
{
    floopy_srv_t *c = apr_pcalloc(p, sizeof(*c));
    c->catalog = fl_catalog_create(p);
    c->key_cache_ttl = -1;
    c->writer_interval_ms = -1;
    c->writer_queue = -1;
    c->price_refresh_sec = -1;
    c->export_max_rows = -1;
    c->router_refresh_ms = -1;
    c->sticky_ttl_sec = -1;
    c->judge_sample = -1;
    c->judge_queue = -1;
    fl_policy_defaults(&c->policy);
    return c;
}

#define MERGE_INT(f) m->f = add->f != -1 ? add->f : base->f

void *floopy_merge_srv(apr_pool_t *p, void *basev, void *addv)
{
    floopy_srv_t *base = basev, *add = addv, *m = apr_pcalloc(p, sizeof(*m));
    /* A virtual host without providers of its own serves the main server's. */
    m->catalog = add->catalog->provider_list->nelts ? add->catalog : base->catalog;
    MERGE_INT(key_cache_ttl);
    MERGE_INT(writer_interval_ms);
    MERGE_INT(writer_queue);
    MERGE_INT(price_refresh_sec);
    MERGE_INT(export_max_rows);
    MERGE_INT(router_refresh_ms);
    MERGE_INT(sticky_ttl_sec);
    MERGE_INT(judge_queue);
    m->judge_sample = add->judge_sample >= 0 ? add->judge_sample : base->judge_sample;
    m->judge_id = add->judge_id ? add->judge_id : base->judge_id;
    m->judge_routes = add->judge_id ? add->judge_routes : base->judge_routes;
    m->policy = add->policy_set ? add->policy : base->policy;
    m->policy_set = add->policy_set || base->policy_set;
    m->admin_token_file = add->admin_token_file ? add->admin_token_file : base->admin_token_file;
    return m;
}

void *floopy_create_dir(apr_pool_t *p, char *dir)
{
    floopy_dir_t *d = apr_pcalloc(p, sizeof(*d));
    d->max_body = -1;
    return d;
}

void *floopy_merge_dir(apr_pool_t *p, void *basev, void *addv)
{
    floopy_dir_t *base = basev, *add = addv, *m = apr_pcalloc(p, sizeof(*m));
    m->max_body = add->max_body != -1 ? add->max_body : base->max_body;
    return m;
}

/* Splits a raw argument line the way httpd splits directive arguments (quotes honoured). */
static apr_array_header_t *split_args(apr_pool_t *p, const char *args)
{
    apr_array_header_t *a = apr_array_make(p, 8, sizeof(const char *));
    while (*args) {
        const char *w = ap_getword_conf(p, &args);
        if (!*w) break;
        APR_ARRAY_PUSH(a, const char *) = w;
    }
    return a;
}

static const char *named_error(cmd_parms *cmd, const char *err)
{
    return err ? apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name, err) : NULL;
}

/* FloopyProvider, FloopyModel and FloopyRoute: a name, then words the catalog parses. */
typedef struct catalog_directive_t {
    const char *(*add)(fl_catalog_t *, apr_pool_t *, const char *, const char *const *, int);
    int min_words;
    const char *usage;
} catalog_directive_t;

static const catalog_directive_t add_provider = {
    fl_catalog_add_provider, 1, "needs a provider name and options" };
static const catalog_directive_t add_model = {
    fl_catalog_add_model, 1, "needs provider/model and prices" };
static const catalog_directive_t add_route = {
    fl_catalog_add_route, 2, "needs a route name and at least one provider/model" };

static const char *set_catalog(cmd_parms *cmd, void *dc, const char *args)
{
    const catalog_directive_t *cd = cmd->info;
    floopy_srv_t *c = floopy_srv(cmd->server);
    apr_array_header_t *a = split_args(cmd->pool, args);
    if (a->nelts < cd->min_words) return named_error(cmd, cd->usage);
    return named_error(cmd, cd->add(c->catalog, cmd->pool, APR_ARRAY_IDX(a, 0, const char *),
                                    (const char *const *)a->elts + 1, a->nelts - 1));
}

static const char *parse_positive(cmd_parms *cmd, const char *v, long max, long *out)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || end == v || n <= 0 || n > max) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a whole number from 1 to %ld",
                            cmd->cmd->name, v, max);
    }
    *out = n;
    return NULL;
}

static const char *set_int(cmd_parms *cmd, void *dc, const char *v)
{
    floopy_srv_t *c = floopy_srv(cmd->server);
    long n = 0;
    const char *err;
    const char *which = cmd->info;
    if (!strcmp(which, "ttl")) {
        if (!(err = parse_positive(cmd, v, 3600, &n))) c->key_cache_ttl = (int)n;
    }
    else if (!strcmp(which, "interval")) {
        if (!(err = parse_positive(cmd, v, 10000, &n))) c->writer_interval_ms = (int)n;
    }
    else if (!strcmp(which, "export")) {
        if (!(err = parse_positive(cmd, v, 1000000000L, &n))) c->export_max_rows = n;
    }
    else if (!strcmp(which, "prices")) {
        if (!(err = parse_positive(cmd, v, 86400, &n))) c->price_refresh_sec = (int)n;
    }
    else {
        if (!(err = parse_positive(cmd, v, 10000000, &n))) c->writer_queue = (int)n;
    }
    return err;
}

static const char *set_max_body(cmd_parms *cmd, void *dc, const char *v)
{
    floopy_dir_t *d = dc;
    long n = 0;
    const char *err = parse_positive(cmd, v, 1L << 30, &n);
    if (!err) d->max_body = n;
    return err;
}

/* A key=value's number within [lo, hi]; an error text otherwise. */
static const char *opt_number(cmd_parms *cmd, const char *kv, double lo, double hi, double *out)
{
    const char *v = strchr(kv, '=') + 1;
    char *end;
    double d = strtod(v, &end);
    if (*end || end == v || d < lo || d > hi) {
        return apr_psprintf(cmd->pool, "%s: '%s' needs a number from %g to %g", cmd->cmd->name,
                            kv, lo, hi);
    }
    *out = d;
    return NULL;
}

typedef struct router_opt_t {
    const char *name;
    apr_size_t offset;           /* of a double in fl_policy_t; (size_t)-1 for the glue's own */
    double lo, hi;
} router_opt_t;

#define POL(f) APR_OFFSETOF(fl_policy_t, f)
static const router_opt_t router_opts[] = {
    { "explore", POL(explore), 0, 1 }, { "cost_weight", POL(cost_weight), 0, 10 },
    { "discount", POL(discount), 0.5, 1 }, { "learning_n", POL(learning_n), 0, 1e6 },
    { "auto_n", POL(auto_n), 0, 1e6 }, { "bench_cap", POL(bench_cap), 0, 1e6 },
    { "pool_cap", POL(pool_cap), 0, 1e6 }, { "day0_cap", POL(conf_day0_cap), 0, 1 },
    { "ceiling", POL(conf_ceiling), 0, 1 }, { "judge_weight", POL(judge_weight), 0, 10 },
    { "regression_z", POL(regression_z), 0, 10 },
    { NULL, 0, 0, 0 }
};

/* FloopyRouter key=value ...: the learning router's parameters (docs/methodology). */
static const char *set_router(cmd_parms *cmd, void *dc, const char *args)
{
    floopy_srv_t *c = floopy_srv(cmd->server);
    apr_array_header_t *a = split_args(cmd->pool, args);
    int i;
    for (i = 0; i < a->nelts; i++) {
        const char *kv = APR_ARRAY_IDX(a, i, const char *), *err = NULL;
        const router_opt_t *o;
        double d = 0;
        apr_size_t klen = strcspn(kv, "=");
        if (!kv[klen]) return apr_psprintf(cmd->pool, "%s: '%s' is not key=value", cmd->cmd->name, kv);
        for (o = router_opts; o->name && (strlen(o->name) != klen || strncmp(o->name, kv, klen)); o++);
        if (o->name) {
            if ((err = opt_number(cmd, kv, o->lo, o->hi, &d))) return err;
            *(double *)((char *)&c->policy + o->offset) = d;
        }
        else if (!strncmp(kv, "pool_min_orgs=", klen + 1)) {
            if (!(err = opt_number(cmd, kv, 0, 1000, &d))) c->policy.pool_min_orgs = (int)d;
        }
        else if (!strncmp(kv, "refresh=", klen + 1)) {
            if (!(err = opt_number(cmd, kv, 50, 60000, &d))) c->router_refresh_ms = (long)d;
        }
        else if (!strncmp(kv, "sticky_ttl=", klen + 1)) {
            if (!(err = opt_number(cmd, kv, 0, 86400 * 7, &d))) c->sticky_ttl_sec = (long)d;
        }
        else {
            return apr_psprintf(cmd->pool, "%s: unknown option '%s'", cmd->cmd->name, kv);
        }
        if (err) return err;
    }
    c->policy_set = 1;
    return NULL;
}

/* FloopyJudge provider/model [sample=SHARE] [queue=N] */
static const char *set_judge(cmd_parms *cmd, void *dc, const char *args)
{
    floopy_srv_t *c = floopy_srv(cmd->server);
    apr_array_header_t *a = split_args(cmd->pool, args);
    int i;
    if (a->nelts < 1) return apr_psprintf(cmd->pool, "%s needs a provider/model", cmd->cmd->name);
    c->judge_id = APR_ARRAY_IDX(a, 0, const char *);
    for (i = 1; i < a->nelts; i++) {
        const char *kv = APR_ARRAY_IDX(a, i, const char *), *err;
        double d;
        if (!strncmp(kv, "sample=", 7)) {
            if ((err = opt_number(cmd, kv, 0, 1, &d))) return err;
            c->judge_sample = d;
        }
        else if (!strncmp(kv, "routes=", 7)) {
            char *last, *w = apr_pstrdup(cmd->pool, kv + 7);
            c->judge_routes = apr_hash_make(cmd->pool);
            for (w = apr_strtok(w, ",", &last); w; w = apr_strtok(NULL, ",", &last)) {
                apr_hash_set(c->judge_routes, w, APR_HASH_KEY_STRING, w);
            }
        }
        else if (!strncmp(kv, "queue=", 6)) {
            if ((err = opt_number(cmd, kv, 1, 1e6, &d))) return err;
            c->judge_queue = (long)d;
        }
        else return apr_psprintf(cmd->pool, "%s: unknown option '%s'", cmd->cmd->name, kv);
    }
    return NULL;
}

static const char *set_admin_token_file(cmd_parms *cmd, void *dc, const char *v)
{
    floopy_srv(cmd->server)->admin_token_file = ap_server_root_relative(cmd->pool, v);
    return NULL;
}

const command_rec floopy_cmds[] = {
    AP_INIT_RAW_ARGS("FloopyProvider", set_catalog, (void *)&add_provider, RSRC_CONF,
                     "NAME type=openai base_url=URL [base_url_env=VAR] [key_env=VAR|key_file=PATH] "
                     "[connect_timeout=MS] [timeout=MS] [idle_timeout=MS]"),
    AP_INIT_RAW_ARGS("FloopyModel", set_catalog, (void *)&add_model, RSRC_CONF,
                     "PROVIDER/MODEL input=USD output=USD [cached_input=USD] (per million tokens)"),
    AP_INIT_RAW_ARGS("FloopyRoute", set_catalog, (void *)&add_route, RSRC_CONF,
                     "NAME PROVIDER/MODEL [PROVIDER/MODEL ...]; the first is the default"),
    AP_INIT_TAKE1("FloopyMaxBodySize", set_max_body, NULL, RSRC_CONF | ACCESS_CONF,
                  "largest request body in bytes (default 10485760)"),
    AP_INIT_TAKE1("FloopyKeyCacheTTL", set_int, "ttl", RSRC_CONF,
                  "seconds a child trusts a looked-up API key (default 5)"),
    AP_INIT_TAKE1("FloopyWriterInterval", set_int, "interval", RSRC_CONF,
                  "decision writer flush interval in ms (default 100)"),
    AP_INIT_TAKE1("FloopyWriterQueue", set_int, "queue", RSRC_CONF,
                  "decisions held in memory per child before requests get 503 (default 100000)"),
    AP_INIT_TAKE1("FloopyExportMaxRows", set_int, "export", RSRC_CONF,
                  "rows of one decision export before it is cut and says how to go on (default 1000000)"),
    AP_INIT_TAKE1("FloopyPriceRefresh", set_int, "prices", RSRC_CONF,
                  "seconds between reloads of the model_prices table in each child (default 30)"),
    AP_INIT_RAW_ARGS("FloopyRouter", set_router, NULL, RSRC_CONF,
                     "key=value ...: explore, cost_weight, discount, learning_n, auto_n, bench_cap, "
                     "pool_cap, pool_min_orgs, day0_cap, ceiling, judge_weight, refresh (ms), "
                     "sticky_ttl (s)"),
    AP_INIT_RAW_ARGS("FloopyJudge", set_judge, NULL, RSRC_CONF,
                     "PROVIDER/MODEL [sample=SHARE (0.1)] [routes=A,B (all)] [queue=N (1000)]: LLM-as-judge"),
    AP_INIT_TAKE1("FloopyAdminTokenFile", set_admin_token_file, NULL, RSRC_CONF,
                  "file holding the deployment's admin credential for the floopy-admin handler"),
    {NULL}
};

static apr_status_t read_admin_token(apr_pool_t *p, server_rec *s, floopy_srv_t *c)
{
    apr_file_t *f;
    char buf[512], hash[FL_SHA256_HEX_LEN + 1];
    apr_size_t n = sizeof(buf) - 1;
    apr_status_t rv = apr_file_open(&f, c->admin_token_file, APR_FOPEN_READ,
                                    APR_FPROT_OS_DEFAULT, p);
    if (rv == APR_SUCCESS) {
        rv = apr_file_read(f, buf, &n);
        apr_file_close(f);
    }
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "FL002: FloopyAdminTokenFile %s cannot be read",
                     c->admin_token_file);
        return rv;
    }
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) n--;
    if (n < 16) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                     "FL003: FloopyAdminTokenFile %s holds fewer than 16 characters",
                     c->admin_token_file);
        return APR_EINVAL;
    }
    fl_sha256_hex(buf, n, hash);
    c->admin_token_hash = apr_pstrdup(p, hash);
    return APR_SUCCESS;
}

apr_status_t floopy_config_check(apr_pool_t *p, server_rec *s)
{
    server_rec *v;
    for (v = s; v; v = v->next) {
        floopy_srv_t *c = floopy_srv(v);
        const char *err = fl_catalog_resolve(c->catalog, p);
        apr_status_t rv;
        if (err) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, v, "FL001: %s", err);
            return APR_EINVAL;
        }
        if (c->key_cache_ttl < 0) c->key_cache_ttl = 5;
        if (c->writer_interval_ms < 0) c->writer_interval_ms = 100;
        if (c->writer_queue < 0) c->writer_queue = 100000;
        if (c->price_refresh_sec < 0) c->price_refresh_sec = 30;
        if (c->export_max_rows < 0) c->export_max_rows = 1000000;
        if (c->router_refresh_ms < 0) c->router_refresh_ms = 500;
        if (c->sticky_ttl_sec < 0) c->sticky_ttl_sec = 1800;
        if (c->judge_sample < 0) c->judge_sample = 0.1;
        if (c->judge_queue < 0) c->judge_queue = 1000;
        if (c->judge_id) {
            const fl_route_t *jr;
            if (fl_catalog_lookup(c->catalog, p, c->judge_id, &jr, &c->judge_model)
                || !c->judge_model) {
                ap_log_error(APLOG_MARK, APLOG_CRIT, 0, v, "FL015: FloopyJudge %s: not a "
                             "configured provider/model", c->judge_id);
                return APR_EINVAL;
            }
        }
        if (c->admin_token_file && (rv = read_admin_token(p, v, c)) != APR_SUCCESS) {
            return rv;
        }
    }
    return APR_SUCCESS;
}
