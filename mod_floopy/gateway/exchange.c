/* One exchange as the stages and the call see it: ending it with exactly one decision, and a
 * streamed answer's events passed through the stages to the client. */
#include <apr_strings.h>
#include <http_protocol.h>
#include <http_request.h>

#include "store/store.h"
#include "gateway.h"
#include "fl_json.h"

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
    for (i = 0; i < x->nstages; i++) {
        if (x->stages[i]->stream_open) x->stages[i]->stream_open(x);
    }
}

apr_status_t floopy_exchange_event(floopy_exchange_t *x, fl_chunk_kind_e kind, const char *data,
                                   apr_size_t len)
{
    apr_size_t i;
    apr_status_t rv;
    for (i = 0; i < x->nstages && kind != FL_CHUNK_DROP; i++) {
        const floopy_stage_t *st = x->stages[i];
        if (st->on_event && (rv = st->on_event(x, &kind, &data, &len))) return rv;
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

