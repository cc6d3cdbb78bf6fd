/* The request pipeline: a model request of any ingress passes the stages below in order. Every
 * authenticated request yields exactly one decision, whatever way it ends. */
#include <apr_strings.h>
#include <http_protocol.h>
#include <http_request.h>

#include "config/config.h"
#include "store/store.h"
#include "gateway.h"
#include "fl_json.h"

/* The order is the design: limits refuse before any work, the firewall sees the request before
 * the cache can answer it, the cache answers before a model is chosen (its key is the route the
 * client named), routing chooses; after the call the cache stores what the firewall let out,
 * then the answer is logged, counted, judged and shadowed. */
static const floopy_stage_t *const STAGES[] = {
    &floopy_stage_limits, &floopy_stage_firewall, &floopy_stage_cache, &floopy_stage_route,
    &floopy_stage_body_log, &floopy_stage_metrics, &floopy_stage_judge, &floopy_stage_shadow,
};
#define NSTAGES (sizeof(STAGES) / sizeof(STAGES[0]))

static json_t *error_summary(const fl_error_t *e)
{
    json_t *o = json_object();
    json_object_set_new(o, "message", json_string(e->message ? e->message : ""));
    json_object_set_new(o, "type", e->type ? json_string(e->type) : json_null());
    json_object_set_new(o, "code", e->code ? json_string(e->code) : json_null());
    return o;
}

void floopy_exchange_end(floopy_exchange_t *x, const char *status, int http_status,
                         const fl_error_t *e)
{
    fl_decision_t *d = x->d;
    floopy_proc_t *proc = floopy_proc(x->r->server);
    const char *args[FL_DECISION_NCOLS];
    if (x->recorded) return;
    x->recorded = 1;
    d->completed = apr_time_now();
    d->latency_total_ms = (double)(d->completed - d->created) / 1000.0;
    d->status = status;
    d->http_status = http_status;
    if (e) d->error = fl_json_pool_own(x->r->pool, error_summary(e));
    floopy_price_of(proc->prices, x->r->pool, d->chosen, &d->price);
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, x->r,
                  "FL100: decision %s route %s -> %s/%s: %s (HTTP %d) in %.1f ms", d->id,
                  d->route ? d->route : "-", d->chosen ? d->chosen->provider->name : "-",
                  d->chosen ? d->chosen->name : "-", status, http_status, d->latency_total_ms);
    fl_decision_row_args(x->r->pool, d, args);
    floopy_writer_enqueue(proc->writer, args);
}

int floopy_exchange_fail(floopy_exchange_t *x, const char *status, const fl_error_t *e)
{
    floopy_exchange_end(x, status, e->status, e);
    return x->ingress->fail(x->r, e);
}

const char *floopy_status_of(const fl_error_t *e)
{
    switch (e->status) {
    case 429: return "rate_limited";
    case 504: return "upstream_timeout";
    case 404: return "not_found";
    default: return e->status < 500 ? "invalid_request" : "upstream_error";
    }
}

/* --- streams ------------------------------------------------------------------------------- */

void floopy_exchange_stream_open(floopy_exchange_t *x)
{
    request_rec *r = x->r;
    apr_size_t i;
    x->streaming = 1;
    r->status = 200;
    ap_set_content_type(r, "text/event-stream");
    apr_table_setn(r->headers_out, "Cache-Control", "no-cache");
    apr_table_setn(r->headers_out, "X-Accel-Buffering", "no");
    x->bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    for (i = 0; i < NSTAGES; i++) {
        if (STAGES[i]->stream_open) STAGES[i]->stream_open(x);
    }
}

apr_status_t floopy_exchange_event(floopy_exchange_t *x, fl_chunk_kind_e kind, const char *data,
                                   apr_size_t len)
{
    apr_size_t i;
    apr_status_t rv;
    for (i = 0; i < NSTAGES && kind != FL_CHUNK_DROP; i++) {
        if (STAGES[i]->on_event && (rv = STAGES[i]->on_event(x, &kind, &data, &len))) return rv;
    }
    return kind == FL_CHUNK_DROP ? APR_SUCCESS : x->ingress->event(x, kind, data, len);
}

apr_status_t floopy_exchange_write_event(floopy_exchange_t *x, const char *name,
                                         const char *data, apr_size_t len)
{
    request_rec *r = x->r;
    apr_status_t rv;
    if (name) apr_brigade_printf(x->bb, NULL, NULL, "event: %s\n", name);
    apr_brigade_write(x->bb, NULL, NULL, "data: ", 6);
    apr_brigade_write(x->bb, NULL, NULL, data, len);
    apr_brigade_write(x->bb, NULL, NULL, "\n\n", 2);
    APR_BRIGADE_INSERT_TAIL(x->bb, apr_bucket_flush_create(r->connection->bucket_alloc));
    rv = ap_pass_brigade(r->output_filters, x->bb);
    apr_brigade_cleanup(x->bb);
    return rv != APR_SUCCESS || r->connection->aborted ? APR_ECONNABORTED : APR_SUCCESS;
}

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
