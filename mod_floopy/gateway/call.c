/* The call: the decision's chosen model, then its alternatives, each tried again after a
 * retryable failure, within one deadline and only while nothing went out to the client; the
 * answer relayed (a stream event by event, through the stages), the breakers told. */
#include <apr_strings.h>
#include <http_protocol.h>
#include <http_request.h>

#include "shm/shm.h"
#include "gateway.h"
#include "fl_adapter.h"
#include "fl_buf.h"
#include "fl_json.h"

#define MAX_UPSTREAM_BODY (32 * 1024 * 1024)  /* a non-streamed answer larger than this is refused */
#define CLIENT_POLL apr_time_from_msec(100)
#define MAX_CANDIDATES 3                       /* providers tried for one request, at most */
#define TRIES_PER_CANDIDATE 2
#define MAX_RETRY_WAIT apr_time_from_sec(2)    /* a longer retry-after moves on instead */

typedef struct chat_t {
    floopy_exchange_t *x;
    request_rec *r;
    floopy_proc_t *proc;
    fl_decision_t *d;
    fl_chat_request_t *cr;
    fl_call_t call;              /* the attempt under way */
    const fl_model_t *m;         /* its model */
    const fl_model_t *first;     /* the router's choice, before any fallback */
    int status;                  /* the provider's HTTP status */
    int done;                    /* the end of the stream was relayed */
    int error_event;             /* the provider sent an error event mid-stream */
    int client_gone;
    fl_buf_t *body;              /* a buffered answer, or an error body */
    fl_stream_t *stream;
    apr_time_t last_poll;
} chat_t;

/* How one attempt at a provider ended. */
typedef enum {
    ATT_ANSWERED,                /* the client has its answer (or its stream's end) */
    ATT_CLIENT_GONE,
    ATT_RETRYABLE,               /* nothing went out; another try may do better */
    ATT_FINAL                    /* nothing went out; the error is the answer */
} attempt_e;

static int fail(chat_t *ch, const char *status, const fl_error_t *e)
{
    return floopy_exchange_fail(ch->x, status, e);
}

/* --- relaying a stream ------------------------------------------------------------------- */

/* Where an adapter's stream translator delivers OpenAI chunks. */
static apr_status_t emit(void *baton, fl_chunk_kind_e kind, const char *data, apr_size_t len)
{
    chat_t *ch = baton;
    apr_status_t rv;
    if (kind == FL_CHUNK_DONE) ch->done = 1;
    if (kind == FL_CHUNK_ERROR) ch->error_event = 1;
    rv = floopy_exchange_event(ch->x, kind, data, len);
    if (rv == APR_ECONNABORTED) ch->client_gone = 1;
    return rv;
}

static apr_status_t start_stream(chat_t *ch)
{
    floopy_exchange_stream_open(ch->x);
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
    if (ch->x->streaming) {
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
    floopy_exchange_end(ch->x, "client_closed", 499,
                        fl_error_make(ch->r->pool, 499, "client_closed", "client_closed", NULL,
                                      "the client closed the connection; the provider call was "
                                      "abandoned"));
    return ATT_CLIENT_GONE;
}

static attempt_e stream_outcome(chat_t *ch, apr_status_t rv)
{
    fl_error_t *e;
    if (ch->done && !ch->error_event) {
        floopy_exchange_end(ch->x, "ok", 200, NULL);
        return ATT_ANSWERED;
    }
    if (ch->client_gone || rv == APR_ECONNABORTED) {
        return client_closed(ch);
    }
    if (ch->error_event) {
        e = fl_error_make(ch->r->pool, 200, "upstream_error", "upstream_stream_error", NULL,
                          "provider %s sent an error event mid-stream", ch->m->provider->name);
        floopy_exchange_end(ch->x, "stream_error", 200, e);
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
        ch->x->ingress->event(ch->x, FL_CHUNK_ERROR, ev, strlen(ev));
    }
    floopy_exchange_end(ch->x, "stream_error", 200, e);
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
    ch->x->answer = out;
    ch->x->answer_len = outlen;
    if ((e = ch->x->ingress->answer(ch->x, out, outlen, &out, &outlen))) {
        fail(ch, "invalid_request", e);
        return ATT_ANSWERED;
    }
    r->status = 200;
    ap_set_content_type(r, "application/json");
    ap_set_content_length(r, (apr_off_t)outlen);
    ap_rwrite(out, (int)outlen, r);
    /* the client has its answer before the decision row is built: that work is off its clock */
    ap_rflush(r);
    floopy_exchange_end(ch->x, "ok", 200, NULL);
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
    ch->call.http = ch->proc->http;
    ch->call.state = apr_hash_get(ch->proc->provider_state, &m->provider, sizeof(m->provider));
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
    if ((*perr = fl_call_prepare(&ch->call, up))) {
        fl_decision_add_attempt(ch->d, m, 0, 0, (*perr)->message);
        return (*perr)->status >= 500 ? ATT_RETRYABLE : ATT_FINAL;
    }
    fl_upstream_request(up, pv, ch->cr->stream, &req);
    req.on_head = on_head;
    req.on_data = on_data;
    req.should_abort = should_abort;
    req.baton = ch;

    rv = fl_http_perform(ch->proc->http, ch->r->pool, &req, &resp);
    if (ch->x->streaming && rv == APR_SUCCESS && !ch->done && !ch->error_event
        && pv->adapter->stream_close) {
        rv = pv->adapter->stream_close(ch->stream);
    }
    ch->d->latency_upstream_ms = resp.total_ms;
    fl_decision_add_attempt(ch->d, m, resp.status, resp.total_ms,
                            rv == APR_SUCCESS ? NULL : resp.error);
    if (ch->x->streaming) return stream_outcome(ch, rv);
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
    fl_breaker_slot_t *b = floopy_breaker(ch->r->server, m);
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
    fl_breaker_slot_t *b = floopy_breaker(ch->r->server, m);
    const fl_provider_t *pv = m->provider;
    if (!b || fl_breaker_check(b, apr_time_now(),
                               (int)(pv->timeout_ms / 1000) + 1) != FL_BREAKER_OPEN) {
        return 0;
    }
    fl_decision_add_attempt(ch->d, m, 0, 0, "circuit open: skipped");
    return 1;
}

/* Retries and fallbacks within one deadline; only before the first byte reached the client. */
int floopy_call_providers(floopy_exchange_t *x)
{
    chat_t *ch = apr_pcalloc(x->r->pool, sizeof(*ch));
    const fl_model_t *cand[MAX_CANDIDATES];
    int n, c, t, skipped = 0;
    apr_time_t deadline;
    fl_error_t *e = NULL;

    ch->x = x;
    ch->r = x->r;
    ch->proc = floopy_proc(x->r->server);
    ch->d = x->d;
    ch->cr = x->cr;
    n = candidates(ch, cand);
    deadline = ch->d->created + apr_time_from_msec(ch->d->chosen->provider->timeout_ms);

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
            if (a == ATT_FINAL) return fail(ch, floopy_status_of(e), e);
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
    return fail(ch, e->status == 503 ? "upstream_unavailable" : floopy_status_of(e), e);
}

