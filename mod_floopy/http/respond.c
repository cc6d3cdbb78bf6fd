/* Answering: JSON bodies, errors in OpenAI's shape, and the failures endpoints share. */
#include <apr_strings.h>
#include <http_protocol.h>

#include "http.h"
#include "fl_json.h"

int floopy_send_json(request_rec *r, int status, json_t *body)
{
    char *s = fl_json_dump(r->pool, body, 1);
    apr_size_t len = strlen(s);
    r->status = status;
    ap_set_content_type(r, "application/json");
    ap_set_content_length(r, (apr_off_t)len + 1);
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    ap_rwrite(s, (int)len, r);
    ap_rputc('\n', r);
    ap_rflush(r);   /* out now, not when httpd has looked for a pipelined request */
    return OK;
}

int floopy_send_error(request_rec *r, const fl_error_t *e)
{
    char *s = fl_error_json(r->pool, e);
    apr_size_t len = strlen(s);
    if (e->retry_after) apr_table_setn(r->headers_out, "Retry-After", e->retry_after);
    if (e->retry_after_ms) apr_table_setn(r->headers_out, "retry-after-ms", e->retry_after_ms);
    if (e->status == 401) apr_table_setn(r->headers_out, "WWW-Authenticate", "Bearer");
    r->status = e->status;
    ap_set_content_type(r, "application/json");
    ap_set_content_length(r, (apr_off_t)len + 1);
    ap_rwrite(s, (int)len, r);
    ap_rputc('\n', r);
    ap_rflush(r);
    return OK;
}

int floopy_fail(request_rec *r, int status, const char *type, const char *code,
                const char *param, const char *msg)
{
    return floopy_send_error(r, fl_error_make(r->pool, status, type, code, param, "%s", msg));
}

static const struct {
    int status;
    const char *type, *code, *msg;
} CANNED[FLOOPY_E_N] = {
    [FLOOPY_E_UNAVAILABLE] = { 503, "service_unavailable", "database_unavailable",
                               "the store cannot be reached; nothing was done, try again shortly" },
    [FLOOPY_E_INTERNAL] = { 500, "api_error", "internal_error", "the store failed" },
    [FLOOPY_E_NOT_FOUND] = { 404, "not_found_error", "not_found", "thing" },
    [FLOOPY_E_UNKNOWN_URL] = { 404, "invalid_request_error", "unknown_url", "no such endpoint" },
    [FLOOPY_E_METHOD] = { 405, "invalid_request_error", "method_not_allowed",
                          "that method is not allowed here" },
    [FLOOPY_E_ROLE] = { 403, "permission_error", "insufficient_role",
                        "this needs an admin key of the organisation" },
    [FLOOPY_E_NOT_READY] = { 503, "service_unavailable", "not_ready",
                             "the gateway failed to start in this process; see the error log" },
};

fl_error_t *floopy_canned(apr_pool_t *p, floopy_canned_e which, const char *param,
                          const char *msg)
{
    if (which == FLOOPY_E_NOT_FOUND) {
        msg = apr_pstrcat(p, "no such ", msg ? msg : CANNED[which].msg, NULL);
    }
    return fl_error_make(p, CANNED[which].status, CANNED[which].type, CANNED[which].code, param,
                         "%s", msg ? msg : CANNED[which].msg);
}

int floopy_fail_as(request_rec *r, floopy_canned_e which, const char *param, const char *msg)
{
    return floopy_send_error(r, floopy_canned(r->pool, which, param, msg));
}
