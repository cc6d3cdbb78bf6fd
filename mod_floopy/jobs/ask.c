/* One non-streamed exchange with a model from a background job: the request through the
 * provider's adapter, the answer back in OpenAI's shape. Retries and fallbacks are the request
 * pipeline's (gateway/); a job that fails simply reports it. */
#include <apr_strings.h>

#include "jobs.h"
#include "fl_adapter.h"
#include "fl_buf.h"

#define MAX_VERDICT_BYTES (1024 * 1024)

static apr_status_t collect(void *baton, const char *buf, apr_size_t len)
{
    return fl_buf_append(baton, buf, len);
}

fl_error_t *floopy_ask(server_rec *s, apr_pool_t *p, const fl_model_t *m, const char *body,
                       const char **pout, double *pms, fl_usage_t *usage)
{
    floopy_proc_t *proc = floopy_proc(s);
    fl_call_t call = { 0 };
    fl_upstream_t *up = fl_upstream_make(p);
    fl_http_request_t req;
    fl_http_response_t resp;
    fl_buf_t *buf = fl_buf_create(p, MAX_VERDICT_BYTES);
    fl_usage_t scratch;
    fl_error_t *e = NULL;
    apr_size_t outlen;
    apr_status_t rv;

    call.pool = p;
    call.provider = m->provider;
    call.model = m;
    call.http = proc->http;
    call.state = apr_hash_get(proc->provider_state, &m->provider, sizeof(m->provider));
    call.now = apr_time_now();
    if (!(call.cr = fl_openai_parse_request(p, body, strlen(body), &e))) return e;
    if ((e = fl_call_prepare(&call, up))) return e;
    fl_upstream_request(up, m->provider, 0, &req);
    req.on_data = collect;
    req.baton = buf;
    rv = fl_http_perform(proc->http, p, &req, &resp);
    *pms = resp.total_ms;
    if (!usage) usage = &scratch;
    fl_usage_clear(usage);
    if (rv != APR_SUCCESS) {
        return fl_error_make(p, 502, "upstream_error", "upstream_error", NULL, "%s: %s", m->id,
                             resp.error ? resp.error : "no answer");
    }
    if (resp.status >= 400) {
        return m->provider->adapter->error(&call, resp.status, resp.headers, buf->data, buf->len);
    }
    return m->provider->adapter->response(&call, buf->data, buf->len, pout, &outlen, usage);
}

