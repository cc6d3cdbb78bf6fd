/* POST /chat/completions: authenticate, read, choose, call the provider, relay, record.
 * Every authenticated request yields exactly one decision, whatever way it ends. */
#include <apr_strings.h>
#include <apr_buckets.h>
#include <http_protocol.h>
#include <http_request.h>
#include <util_filter.h>

#include "mod_floopy.h"
#include "fl_buf.h"
#include "fl_json.h"
#include "fl_openai.h"
#include "fl_router.h"
#include "fl_adapter.h"

#define MAX_UPSTREAM_BODY (32 * 1024 * 1024)  /* a non-streamed answer larger than this is refused */
#define CLIENT_POLL apr_time_from_msec(100)
#define MAX_CANDIDATES 3                       /* providers tried for one request, at most */
#define TRIES_PER_CANDIDATE 2
#define MAX_RETRY_WAIT apr_time_from_sec(2)    /* a longer retry-after moves on instead */

typedef struct chat_t {
    request_rec *r;
    floopy_srv_t *conf;
    fl_decision_t *d;
    fl_chat_request_t *cr;
    fl_call_t call;              /* the attempt under way */
    const fl_model_t *m;         /* its model */
    const fl_model_t *first;     /* the router's choice, before any fallback */
    int status;                  /* the provider's HTTP status */
    int streaming;               /* relaying a stream: bytes went out, no retry from here on */
    int done;                    /* the end of the stream was relayed */
    int error_event;             /* the provider sent an error event mid-stream */
    int client_gone;
    fl_buf_t *body;              /* a buffered answer, or an error body */
    fl_stream_t *stream;
    fl_stream_text_t *text;      /* the streamed answer's text, gathered when it will be judged */
    apr_bucket_brigade *bb;      /* reused for every event */
    apr_time_t last_poll;
} chat_t;

/* How one attempt at a provider ended. */
typedef enum {
    ATT_ANSWERED,                /* the client has its answer (or its stream's end) */
    ATT_CLIENT_GONE,
    ATT_RETRYABLE,               /* nothing went out; another try may do better */
    ATT_FINAL                    /* nothing went out; the error is the answer */
} attempt_e;

static json_t *error_summary(const fl_error_t *e)
{
    json_t *o = json_object();
    json_object_set_new(o, "message", json_string(e->message ? e->message : ""));
    json_object_set_new(o, "type", e->type ? json_string(e->type) : json_null());
    json_object_set_new(o, "code", e->code ? json_string(e->code) : json_null());
    return o;
}

/* Stamps the outcome on the decision and queues it for the writer. */
static void record(chat_t *ch, const char *status, int http_status, const fl_error_t *e)
{
    fl_decision_t *d = ch->d;
    d->completed = apr_time_now();
    d->latency_total_ms = (double)(d->completed - d->created) / 1000.0;
    d->status = status;
    d->http_status = http_status;
    if (e) d->error = fl_json_pool_own(ch->r->pool, error_summary(e));
    floopy_price_of(ch->conf->proc->prices, ch->r->pool, d->chosen, &d->price);
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, ch->r,
                  "FL100: decision %s route %s -> %s/%s: %s (HTTP %d) in %.1f ms", d->id,
                  d->route ? d->route : "-", d->chosen ? d->chosen->provider->name : "-",
                  d->chosen ? d->chosen->name : "-", status, http_status, d->latency_total_ms);
    {
        const char *args[FL_DECISION_NCOLS];
        fl_decision_row_args(ch->r->pool, d, args);
        floopy_writer_enqueue(ch->conf->proc->writer, args);
    }
}

static int fail(chat_t *ch, const char *status, const fl_error_t *e)
{
    record(ch, status, e->status, e);
    return floopy_send_error(ch->r, e);
}

static const char *status_of(const fl_error_t *e)
{
    switch (e->status) {
    case 429: return "rate_limited";
    case 504: return "upstream_timeout";
    case 404: return "not_found";
    default: return e->status < 500 ? "invalid_request" : "upstream_error";
    }
}

/* --- relaying a stream ------------------------------------------------------------------- */

static apr_status_t send_event(chat_t *ch, const char *data, apr_size_t len)
{
    request_rec *r = ch->r;
    apr_status_t rv;
    apr_brigade_write(ch->bb, NULL, NULL, "data: ", 6);
    apr_brigade_write(ch->bb, NULL, NULL, data, len);
    apr_brigade_write(ch->bb, NULL, NULL, "\n\n", 2);
    APR_BRIGADE_INSERT_TAIL(ch->bb, apr_bucket_flush_create(r->connection->bucket_alloc));
    rv = ap_pass_brigade(r->output_filters, ch->bb);
    apr_brigade_cleanup(ch->bb);
    if (rv != APR_SUCCESS || r->connection->aborted) {
        ch->client_gone = 1;
        return APR_ECONNABORTED;
    }
    return APR_SUCCESS;
}

/* Where an adapter's stream translator delivers OpenAI chunks. */
static apr_status_t emit(void *baton, fl_chunk_kind_e kind, const char *data, apr_size_t len)
{
    chat_t *ch = baton;
    if (kind == FL_CHUNK_DROP) return APR_SUCCESS;
    if (kind == FL_CHUNK_DONE) ch->done = 1;
    if (kind == FL_CHUNK_ERROR) ch->error_event = 1;
    if (kind == FL_CHUNK_FORWARD && ch->text) fl_stream_text_feed(ch->text, data, len);
    return send_event(ch, data, len);
}

static apr_status_t start_stream(chat_t *ch)
{
    request_rec *r = ch->r;
    ch->streaming = 1;
    r->status = 200;
    ap_set_content_type(r, "text/event-stream");
    apr_table_setn(r->headers_out, "Cache-Control", "no-cache");
    apr_table_setn(r->headers_out, "X-Accel-Buffering", "no");
    ch->bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    ch->text = floopy_judge_wants(r, ch->d) ? fl_stream_text_create(r->pool, FLOOPY_JUDGE_MAX_BYTES)
                                            : NULL;
    return ch->m->provider->adapter->stream_open(&ch->call, &ch->d->usage, emit, ch, &ch->stream);
}

/* --- the upstream exchange's callbacks ------------------------------------------------------ */

static apr_status_t on_head(void *baton, int status, apr_table_t *headers)
{
    chat_t *ch = baton;
    ch->status = status;
    if (ch->cr->stream && status == 200) {
        return start_stream(ch);
    }
    return APR_SUCCESS;
}

static apr_status_t on_data(void *baton, const char *buf, apr_size_t len)
{
    chat_t *ch = baton;
    if (ch->streaming) {
        return ch->m->provider->adapter->stream_feed(ch->stream, buf, len);
    }
    return fl_buf_append(ch->body, buf, len);
}

static int should_abort(void *baton)
{
    chat_t *ch = baton;
    apr_time_t now = apr_time_now();
    if (now - ch->last_poll < CLIENT_POLL) return 0;
    ch->last_poll = now;
    if (floopy_client_gone(ch->r->connection)) {
        ch->client_gone = 1;
        return 1;
    }
    return 0;
}

/* --- outcomes ---------------------------------------------------------------------------- */

static attempt_e client_closed(chat_t *ch)
{
    ch->r->connection->aborted = 1;
    record(ch, "client_closed", 499,
           fl_error_make(ch->r->pool, 499, "client_closed", "client_closed", NULL,
                         "the client closed the connection; the provider call was abandoned"));
    return ATT_CLIENT_GONE;
}

static attempt_e stream_outcome(chat_t *ch, apr_status_t rv)
{
    fl_error_t *e;
    if (ch->done && !ch->error_event) {
        const char *answer;
        apr_size_t len;
        record(ch, "ok", 200, NULL);
        /* a streamed answer is judged as the message it adds up to (not shadowed: a candidate
         * would be asked for a non-streamed answer to another request body) */
        if (ch->text && (answer = fl_stream_text_answer(ch->text, ch->r->pool, &len))) {
            floopy_judge_offer(ch->r, ch->d, ch->cr, answer, len);
        }
        return ATT_ANSWERED;
    }
    if (ch->client_gone || rv == APR_ECONNABORTED) {
        return client_closed(ch);
    }
    if (ch->error_event) {
        e = fl_error_make(ch->r->pool, 200, "upstream_error", "upstream_stream_error", NULL,
                          "provider %s sent an error event mid-stream", ch->m->provider->name);
        record(ch, "stream_error", 200, e);
        return ATT_ANSWERED;
    }
    e = fl_error_make(ch->r->pool, 200, rv == APR_TIMEUP ? "timeout_error" : "upstream_error",
                      rv == APR_TIMEUP ? "upstream_timeout" : "stream_interrupted", NULL,
                      "provider %s %s before the stream was complete", ch->m->provider->name,
                      rv == APR_TIMEUP ? "fell silent" : "ended the connection");
    /* The head went out already: the client learns of the failure from an error event, never
     * from a stream that simply stops. */
    {
        char *ev = fl_error_json(ch->r->pool, e);
        send_event(ch, ev, strlen(ev));
    }
    record(ch, "stream_error", 200, e);
    return ATT_ANSWERED;
}

static attempt_e answered(chat_t *ch)
{
    request_rec *r = ch->r;
    const char *out;
    apr_size_t outlen;
    fl_error_t *e = ch->m->provider->adapter->response(&ch->call, ch->body->data, ch->body->len,
                                                       &out, &outlen, &ch->d->usage);
    if (e) {
        fail(ch, "upstream_error", e);
        return ATT_ANSWERED;
    }
    r->status = 200;
    ap_set_content_type(r, "application/json");
    ap_set_content_length(r, (apr_off_t)outlen);
    ap_rwrite(out, (int)outlen, r);
    /* the client has its answer before the decision row is built: that work is off its clock */
    ap_rflush(r);
    record(ch, "ok", 200, NULL);
    floopy_judge_offer(r, ch->d, ch->cr, out, outlen);
    floopy_shadow_offer(r, ch->d, ch->cr, out, outlen);
    return ATT_ANSWERED;
}

/* A quota that is used up will not come back in seconds: not worth a retry. */
static int retryable_status(const fl_error_t *e, int status)
{
    if (status == 429) return !(e->code && strstr(e->code, "quota"));
    return status == 408 || status >= 500;
}

static fl_error_t *transport_error(chat_t *ch, apr_status_t rv, const fl_http_response_t *resp)
{
    const char *pname = ch->m->provider->name;
    if (rv == APR_TIMEUP) {
        return fl_error_make(ch->r->pool, 504, "timeout_error", "upstream_timeout", NULL,
                             "provider %s did not answer in time", pname);
    }
    if (rv == APR_ENOSPC) {
        return fl_error_make(ch->r->pool, 502, "upstream_error", "upstream_error", NULL,
                             "provider %s answered with more than %d bytes", pname,
                             MAX_UPSTREAM_BODY);
    }
    return fl_error_make(ch->r->pool, 502, "upstream_error", "upstream_error", NULL,
                         "provider %s could not be reached or cut the answer short (%s)",
                         pname, resp->error ? resp->error : "no detail");
}

static void attempt_reset(chat_t *ch, const fl_model_t *m)
{
    request_rec *r = ch->r;
    ch->m = m;
    /* the decision names the model that answers (or whose error is the answer) */
    ch->d->chosen = m;
    if (m != ch->first) {
        json_object_set_new(ch->d->signals, "fallback_from", json_string(ch->first->id));
    }
    ch->status = 0;
    ch->stream = NULL;
    fl_buf_reset(ch->body);
    memset(&ch->call, 0, sizeof(ch->call));
    ch->call.pool = r->pool;
    ch->call.provider = m->provider;
    ch->call.model = m;
    ch->call.cr = ch->cr;
    ch->call.http = ch->conf->proc->http;
    ch->call.state = apr_hash_get(ch->conf->proc->provider_state, &m->provider,
                                  sizeof(m->provider));
    ch->call.now = apr_time_now();
    apr_table_setn(r->err_headers_out, "x-floopy-provider", m->provider->name);
    apr_table_setn(r->err_headers_out, "x-floopy-model", m->name);
}

/* One try at one provider. On ATT_RETRYABLE/ATT_FINAL *perr says why and nothing went out. */
static attempt_e attempt(chat_t *ch, const fl_model_t *m, fl_error_t **perr)
{
    const fl_provider_t *pv = m->provider;
    fl_upstream_t *up = fl_upstream_make(ch->r->pool);
    fl_http_request_t req;
    fl_http_response_t resp;
    apr_status_t rv;

    attempt_reset(ch, m);
    if (ch->cr->has_images && !pv->adapter->vision) {
        *perr = fl_error_make(ch->r->pool, 400, "invalid_request_error", "unsupported_content",
                              "messages", "provider %s (type=%s) cannot take image inputs",
                              pv->name, pv->type);
    }
    else {
        *perr = pv->adapter->prepare(&ch->call, up);
    }
    if (*perr) {
        fl_decision_add_attempt(ch->d, m, 0, 0, (*perr)->message);
        return (*perr)->status >= 500 ? ATT_RETRYABLE : ATT_FINAL;
    }
    fl_upstream_request(up, pv, ch->cr->stream, &req);
    req.on_head = on_head;
    req.on_data = on_data;
    req.should_abort = should_abort;
    req.baton = ch;

    rv = fl_http_perform(ch->conf->proc->http, ch->r->pool, &req, &resp);
    if (ch->streaming && rv == APR_SUCCESS && !ch->done && !ch->error_event
        && pv->adapter->stream_close) {
        rv = pv->adapter->stream_close(ch->stream);
    }
    ch->d->latency_upstream_ms = resp.total_ms;
    fl_decision_add_attempt(ch->d, m, resp.status, resp.total_ms,
                            rv == APR_SUCCESS ? NULL : resp.error);
    if (ch->streaming) return stream_outcome(ch, rv);
    if (rv == APR_ECONNABORTED || ch->client_gone) return client_closed(ch);
    if (rv == APR_SUCCESS && ch->status < 400) return answered(ch);
    if (rv == APR_SUCCESS) {
        *perr = pv->adapter->error(&ch->call, ch->status, resp.headers, ch->body->data,
                                   ch->body->len);
        return retryable_status(*perr, ch->status) ? ATT_RETRYABLE : ATT_FINAL;
    }
    *perr = transport_error(ch, rv, &resp);
    return ATT_RETRYABLE;
}

/* The wait before trying again: the provider's retry-after when it gave one, else a short
 * backoff. -1 when the wait would be too long to be worth it. */
static apr_interval_time_t retry_wait(const fl_error_t *e, int tries)
{
    apr_interval_time_t w = apr_time_from_msec(100) << tries;
    if (e->retry_after_ms) w = apr_time_from_msec(apr_atoi64(e->retry_after_ms));
    else if (e->retry_after) w = apr_time_from_sec(apr_atoi64(e->retry_after));
    return w > MAX_RETRY_WAIT ? -1 : w;
}

/* The candidates in the order to try them: the chosen one, then the alternatives that were not
 * excluded, best score first (the router keeps them in that order). */
static int candidates(chat_t *ch, const fl_model_t **out)
{
    int n = 0, i;
    out[n++] = ch->d->chosen;
    for (i = 0; i < ch->d->alternatives->nelts && n < MAX_CANDIDATES; i++) {
        const fl_alternative_t *a = &APR_ARRAY_IDX(ch->d->alternatives, i, fl_alternative_t);
        if (!a->excluded_by) out[n++] = a->model;
    }
    return n;
}

/* A try that failed for the provider's sake (not the client's request) counts against it. */
static void breaker_note(chat_t *ch, const fl_model_t *m, attempt_e a, const fl_error_t *e)
{
    fl_breaker_slot_t *b = floopy_breaker(ch->conf, m);
    const fl_provider_t *pv = m->provider;
    if (!b) return;
    if (a == ATT_RETRYABLE && e && e->status != 429) {
        if (fl_breaker_failure(b, apr_time_now(), (int)pv->breaker_failures,
                               (int)pv->breaker_cooldown_sec)) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, ch->r,
                          "FL030: circuit opened for %s after %ld failed tries; resting it %ld s",
                          m->id, pv->breaker_failures, pv->breaker_cooldown_sec);
        }
    }
    else if (a == ATT_ANSWERED) {
        fl_breaker_success(b);
    }
}

/* Open breakers skip a candidate at once (noted on the trace); a probe goes ahead. */
static int breaker_open(chat_t *ch, const fl_model_t *m)
{
    fl_breaker_slot_t *b = floopy_breaker(ch->conf, m);
    const fl_provider_t *pv = m->provider;
    if (!b || fl_breaker_check(b, apr_time_now(),
                               (int)(pv->timeout_ms / 1000) + 1) != FL_BREAKER_OPEN) {
        return 0;
    }
    fl_decision_add_attempt(ch->d, m, 0, 0, "circuit open: skipped");
    return 1;
}

/* Retries and fallbacks within one deadline; only before the first byte reached the client. */
static int call_providers(chat_t *ch)
{
    const fl_model_t *cand[MAX_CANDIDATES];
    int n = candidates(ch, cand), c, t, skipped = 0;
    apr_time_t deadline = ch->d->created + apr_time_from_msec(ch->d->chosen->provider->timeout_ms);
    fl_error_t *e = NULL;

    ch->body = fl_buf_create(ch->r->pool, MAX_UPSTREAM_BODY);
    ch->last_poll = apr_time_now();
    ch->first = cand[0];
    for (c = 0; c < n; c++) {
        if (breaker_open(ch, cand[c])) {
            skipped++;
            continue;
        }
        for (t = 0; t < TRIES_PER_CANDIDATE; t++) {
            apr_interval_time_t wait;
            attempt_e a = attempt(ch, cand[c], &e);
            breaker_note(ch, cand[c], a, e);
            if (a == ATT_ANSWERED || a == ATT_CLIENT_GONE) return OK;
            if (a == ATT_FINAL) return fail(ch, status_of(e), e);
            wait = retry_wait(e, t);
            if (wait < 0 || t + 1 == TRIES_PER_CANDIDATE || apr_time_now() + wait >= deadline) {
                break;
            }
            apr_sleep(wait);
        }
        if (apr_time_now() >= deadline) break;
    }
    if (!e && skipped) {
        e = fl_error_make(ch->r->pool, 503, "service_unavailable", "circuit_open", NULL,
                          "every candidate is resting after repeated failures; retry shortly");
        e->retry_after = "5";
    }
    return fail(ch, e->status == 503 ? "upstream_unavailable" : status_of(e), e);
}

/* --- the handler ------------------------------------------------------------------------ */

const char *floopy_session_of(request_rec *r)
{
    const char *s = apr_table_get(r->headers_in, "x-floopy-session-id");
    if (!s || !*s) return NULL;
    return strlen(s) > 255 ? apr_pstrndup(r->pool, s, 255) : s;
}

fl_error_t *floopy_chat_read(request_rec *r, fl_chat_request_t **pcr,
                             const fl_route_t **proute, fl_model_t **ppinned)
{
    floopy_dir_t *dc = floopy_dir(r);
    fl_error_t *e;
    char *body;
    apr_size_t len;

    *pcr = NULL;
    if ((e = floopy_read_body(r, dc->max_body > 0 ? dc->max_body : FLOOPY_DEFAULT_MAX_BODY,
                              &body, &len))
        || !(*pcr = fl_openai_parse_request(r->pool, body, len, &e))) {
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

int floopy_handle_chat(request_rec *r, const floopy_principal_t *who)
{
    chat_t *ch = apr_pcalloc(r->pool, sizeof(*ch));
    const fl_route_t *route = NULL;
    fl_model_t *pinned = NULL;
    fl_error_t *e;

    if (r->method_number != M_POST) {
        return floopy_fail(r, 405, "invalid_request_error", "method_not_allowed", NULL,
                           "use POST for /chat/completions");
    }
    ch->r = r;
    ch->conf = floopy_srv(r->server);
    if (!floopy_writer_has_room(ch->conf->proc->writer)) {
        /* Refused before any work, so no decision is taken that could not be kept. */
        apr_table_setn(r->headers_out, "Retry-After", "1");
        return floopy_fail(r, 503, "service_unavailable", "decision_queue_full", NULL,
                           "the gateway cannot store more decisions right now; retry shortly");
    }
    ch->d = fl_decision_create(r->pool, apr_time_now());
    ch->d->org_id = who->org_id;
    ch->d->api_key_id = who->key_id;
    ch->d->session_id = floopy_session_of(r);
    apr_table_setn(r->err_headers_out, "x-floopy-decision-id", ch->d->id);

    e = floopy_chat_read(r, &ch->cr, &route, &pinned);
    if (ch->cr) {
        ch->d->stream = ch->cr->stream;
        ch->d->route = ch->cr->model;
    }
    if (e || (e = floopy_choose(r, ch->d, route, pinned, 0))) return fail(ch, status_of(e), e);
    return call_providers(ch);
}
