/* The request pipeline: a model request of any ingress passes the stages below in order. Every
 * authenticated request yields exactly one decision, whatever way it ends. */
#include <apr_strings.h>
#include <http_protocol.h>
#include <http_request.h>

#include "config/config.h"
#include "store/store.h"
#include "gateway.h"

/* The order is the design: limits refuse before any work, the firewall sees the request before
 * the cache can answer it, the cache answers before a model is chosen (its key is the route the
 * client named), routing chooses; after the call the cache stores what the firewall let out,
 * then the answer is logged, counted, judged and shadowed. */
static const floopy_stage_t *const STAGES[] = {
    &floopy_stage_limits, &floopy_stage_firewall, &floopy_stage_cache, &floopy_stage_route,
    &floopy_stage_body_log, &floopy_stage_metrics, &floopy_stage_judge, &floopy_stage_shadow,
};
#define NSTAGES (sizeof(STAGES) / sizeof(STAGES[0]))

/* --- running -------------------------------------------------------------------------------- */

fl_error_t *floopy_gateway_read(request_rec *r, const floopy_ingress_t *ingress,
                                fl_chat_request_t **pcr, const fl_route_t **proute,
                                fl_model_t **ppinned)
{
    fl_error_t *e;
    char *body;
    apr_size_t len;

    *pcr = NULL;
    if ((e = floopy_read_body(r, &body, &len))
        || !(*pcr = ingress->parse(r->pool, body, len, &e))) {
        return e;
    }
    if (fl_catalog_lookup(floopy_srv(r->server)->catalog, r->pool, (*pcr)->model, proute,
                          ppinned)) {
        return fl_error_make(r->pool, 404, "invalid_request_error", "model_not_found", "model",
                             "the model '%s' is neither a route nor a configured provider/model",
                             (*pcr)->model);
    }
    return NULL;
}

/* The exchange, its decision made and named in the answer's headers, its request read. */
static fl_error_t *exchange_open(floopy_exchange_t *x)
{
    request_rec *r = x->r;
    fl_error_t *e;
    x->d = fl_decision_create(r->pool, apr_time_now());
    x->d->org_id = x->who->org_id;
    x->d->api_key_id = x->who->key_id;
    x->d->session_id = floopy_session_of(r);
    apr_table_setn(r->err_headers_out, "x-floopy-decision-id", x->d->id);
    e = floopy_gateway_read(r, x->ingress, &x->cr, &x->route, &x->pinned);
    if (x->cr) {
        x->d->stream = x->cr->stream;
        x->d->route = x->cr->model;
    }
    return e;
}

int floopy_gateway_run(request_rec *r, const floopy_principal_t *who,
                       const floopy_ingress_t *ingress)
{
    floopy_exchange_t *x = apr_pcalloc(r->pool, sizeof(*x));
    fl_error_t *e;
    apr_size_t i;
    int rc = OK, answered = 0;

    if (!floopy_writer_has_room(floopy_proc(r->server)->writer)) {
        /* Refused before any work, so no decision is taken that could not be kept. */
        apr_table_setn(r->headers_out, "Retry-After", "1");
        return ingress->fail(r, fl_error_make(r->pool, 503, "service_unavailable",
                                              "decision_queue_full", NULL, "the gateway cannot "
                                              "store more decisions right now; retry shortly"));
    }
    x->r = r;
    x->who = who;
    x->ingress = ingress;
    x->stages = STAGES;
    x->nstages = NSTAGES;
    if ((e = exchange_open(x))) return floopy_exchange_fail(x, floopy_status_of(e), e);
    for (i = 0; i < NSTAGES && !answered; i++) {
        if (STAGES[i]->before) answered = STAGES[i]->before(x) == FLOOPY_STAGE_ANSWERED;
    }
    if (!answered) rc = floopy_call_providers(x);
    if (!x->recorded) {
        /* a stage that answered without ending the exchange: still exactly one decision */
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "FL101: decision %s: the pipeline ended "
                      "without an outcome; recorded as internal_error", x->d->id);
        floopy_exchange_end(x, "internal_error", 500, NULL);
    }
    for (i = 0; i < NSTAGES; i++) {
        if (STAGES[i]->after) STAGES[i]->after(x);
    }
    return rc;
}
