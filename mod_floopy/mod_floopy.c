/* mod_floopy: an OpenAI-compatible LLM gateway inside httpd. This file holds the module record
 * and the hooks: start-up, each child's state, and the two handlers, which authenticate and hand
 * the path to their endpoint tables (api/routes.c, admin/). */
#define FLOOPY_MODULE_FILE
#include <apr_strings.h>
#include <apr_optional.h>
#include <http_protocol.h>
#include <http_request.h>
#include <ap_mpm.h>
#include <ap_expr.h>
#include <http_core.h>

#include "floopy_module.h"
#include "config/config.h"
#include "http/http.h"
#include "store/store.h"
#include "shm/shm.h"
#include "route/route.h"
#include "jobs/jobs.h"
#include "api/api.h"
#include "floopy_admin.h"
#include "fl_http.h"
#include "fl_adapter.h"

static int post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    floopy_state_t *st;

    if (floopy_config_check(pconf, s) != APR_SUCCESS) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    st = floopy_state_create(pconf, s);
    st->dbd_open = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_open);
    st->dbd_close = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_close);
    if (!st->dbd_open || !st->dbd_close) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                     "FL004: mod_floopy needs mod_dbd: LoadModule dbd_module before it");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (floopy_breakers_create(st, pconf, ptemp, s) != APR_SUCCESS
        || floopy_export_slots_create(st, pconf, s) != APR_SUCCESS
        || floopy_sticky_create(st, pconf, s) != APR_SUCCESS) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    /* mod_dbd prepares these on every connection it opens for the main server. */
    floopy_store_prepare(s, pconf);
    if (fl_http_global_init() != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "FL005: libcurl failed to initialise");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

/* Every provider of every virtual host gets its adapter's per-process state, once. */
static apr_status_t providers_child_init(server_rec *s, apr_pool_t *pchild, floopy_proc_t *proc)
{
    int i;
    proc->provider_state = apr_hash_make(pchild);
    for (; s; s = s->next) {
        const fl_catalog_t *cat = floopy_srv(s)->catalog;
        for (i = 0; i < cat->provider_list->nelts; i++) {
            const fl_provider_t *pv = APR_ARRAY_IDX(cat->provider_list, i, fl_provider_t *);
            void *state = NULL;
            apr_status_t rv;
            if (!pv->adapter->child_init
                || apr_hash_get(proc->provider_state, &pv, sizeof(pv))) continue;
            if ((rv = pv->adapter->child_init(pv, pchild, &state)) != APR_SUCCESS) return rv;
            apr_hash_set(proc->provider_state, apr_pmemdup(pchild, &pv, sizeof(pv)), sizeof(pv),
                         state);
        }
    }
    return APR_SUCCESS;
}

static void child_init(apr_pool_t *pchild, server_rec *s)
{
    floopy_srv_t *c = floopy_srv(s);
    floopy_proc_t *proc = apr_pcalloc(pchild, sizeof(*proc));
    apr_status_t rv;

    if ((rv = fl_http_create(&proc->http, pchild)) != APR_SUCCESS
        || (rv = floopy_keycache_create(&proc->keys, pchild, c->key_cache_ttl)) != APR_SUCCESS
        || (rv = floopy_prices_create(&proc->prices, pchild)) != APR_SUCCESS
        || (rv = floopy_writer_start(&proc->writer, pchild, s, proc->prices)) != APR_SUCCESS
        || (rv = floopy_router_start(&proc->router, pchild, s)) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "FL006: child state could not be set up");
        return;
    }
    if ((rv = providers_child_init(s, pchild, proc)) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "FL007: a provider's state could not be set up");
        return;
    }
    if ((rv = floopy_jobs_start(&proc->jobs, pchild, s)) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "FL014: the background worker could not be "
                     "started");
        return;
    }
    floopy_state(s)->proc = proc;
}

/* Nothing a Floopy handler serves lives on disk, so the per-request directory walk (a stat of
 * every path component, .htaccess probes) is skipped for URIs whose innermost matching
 * <Location> hands them to us: the same evaluation core makes later for SetHandler. */
static int map_to_storage(request_rec *r)
{
    core_server_config *sc = ap_get_core_module_config(r->server->module_config);
    ap_conf_vector_t **secs = (ap_conf_vector_t **)sc->sec_url->elts;
    const char *handler = NULL;
    int i;

    for (i = 0; i < sc->sec_url->nelts; i++) {
        core_dir_config *cd = ap_get_core_module_config(secs[i]);
        apr_size_t n;
        if (cd->r || cd->d_is_fnmatch || !cd->expr_handler || !cd->d) continue;
        n = strlen(cd->d);
        if (!strncmp(r->uri, cd->d, n)
            && (r->uri[n] == '/' || r->uri[n] == '\0' || (n && cd->d[n - 1] == '/'))) {
            const char *err = NULL, *h = ap_expr_str_exec(r, cd->expr_handler, &err);
            if (!err) handler = h;
        }
    }
    if (handler && (!strcmp(handler, "floopy") || !strcmp(handler, "floopy-admin"))) {
        return OK;
    }
    return DECLINED;
}

static int handler(request_rec *r)
{
    floopy_principal_t *who = NULL;
    fl_error_t *e;

    if (!r->handler || strcmp(r->handler, "floopy")) {
        return DECLINED;
    }
    if (!floopy_proc(r->server)) {
        return floopy_fail_as(r, FLOOPY_E_NOT_READY, NULL, NULL);
    }
    if ((e = floopy_authenticate(r, &who))) {
        return floopy_send_error(r, e);
    }
    return floopy_dispatch(r, floopy_v1_endpoints, who, floopy_path(r));
}

static void register_hooks(apr_pool_t *p)
{
    static const char *const after_dbd[] = { "mod_dbd.c", NULL };
    ap_hook_post_config(post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(child_init, after_dbd, NULL, APR_HOOK_MIDDLE);
    ap_hook_map_to_storage(map_to_storage, NULL, NULL, APR_HOOK_FIRST);
    floopy_export_register();
    ap_hook_handler(handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(floopy_admin_handler, NULL, NULL, APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(floopy) = {
    STANDARD20_MODULE_STUFF,
    floopy_create_dir,
    floopy_merge_dir,
    floopy_create_srv,
    floopy_merge_srv,
    floopy_cmds,
    register_hooks,
    AP_MODULE_FLAG_NONE
};
