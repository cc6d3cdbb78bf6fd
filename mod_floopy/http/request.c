/* Reading requests: the path below the Location, the body within its limit, JSON, query
 * parameters, the bearer key, and whether the client is still there. */
#include <errno.h>
#include <sys/socket.h>
#include <apr_strings.h>
#include <apr_portable.h>
#include <http_protocol.h>
#include <http_request.h>
#include <http_connection.h>
#include <http_core.h>
#include <util_filter.h>
#include <util_script.h>

#include "config/config.h"
#include "http.h"
#include "fl_json.h"
#include "fl_util.h"

/* core's per-dir config names the last section merged into the request's: the <Location>
 * that handed it to us. Its path is the prefix the endpoints sit below. */
const char *floopy_path(request_rec *r)
{
    core_dir_config *cd = ap_get_core_module_config(r->per_dir_config);
    const char *uri = r->uri;
    if (cd && cd->d && cd->d[0] == '/' && !cd->d_is_fnmatch && !cd->r) {
        apr_size_t n = strlen(cd->d);
        while (n && cd->d[n - 1] == '/') n--;
        if (!strncmp(uri, cd->d, n) && (uri[n] == '/' || uri[n] == '\0')) uri += n;
    }
    return *uri ? uri : "/";
}

static fl_error_t *too_large(request_rec *r, apr_off_t limit)
{
    return fl_error_make(r->pool, 413, "invalid_request_error", "request_too_large", NULL,
                         "the request body is larger than the limit of %" APR_OFF_T_FMT
                         " bytes", limit);
}

static fl_error_t *unreadable(request_rec *r)
{
    return fl_error_make(r->pool, 400, "invalid_request_error", "invalid_body", NULL,
                         "the request body could not be read");
}

/* Reads brigades until EOS, counting as it goes, so an oversize body is refused as soon as it
 * passes the limit rather than after it was all buffered. */
fl_error_t *floopy_read_body(request_rec *r, char **pbody, apr_size_t *plen)
{
    apr_off_t limit = floopy_max_body(r);
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    apr_bucket_brigade *more = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    apr_off_t total = 0;
    int seen_eos = 0;

    if (cl && apr_atoi64(cl) > limit) {
        r->connection->keepalive = AP_CONN_CLOSE; /* the unread body must not be taken for a request */
        return too_large(r, limit);
    }
    while (!seen_eos) {
        apr_bucket *b;
        apr_off_t n = 0;
        if (ap_get_brigade(r->input_filters, more, AP_MODE_READBYTES, APR_BLOCK_READ,
                           HUGE_STRING_LEN) != APR_SUCCESS) {
            return unreadable(r);
        }
        for (b = APR_BRIGADE_FIRST(more); b != APR_BRIGADE_SENTINEL(more); b = APR_BUCKET_NEXT(b)) {
            if (APR_BUCKET_IS_EOS(b)) seen_eos = 1;
        }
        apr_brigade_length(more, 1, &n);
        total += n;
        APR_BRIGADE_CONCAT(bb, more);
        if (total > limit) {
            r->connection->keepalive = AP_CONN_CLOSE;
            return too_large(r, limit);
        }
    }
    if (apr_brigade_pflatten(bb, pbody, plen, r->pool) != APR_SUCCESS) {
        return floopy_canned(r->pool, FLOOPY_E_INTERNAL, NULL,
                             "the request body could not be buffered");
    }
    return NULL;
}

fl_error_t *floopy_read_json(request_rec *r, json_t **pobj)
{
    char *body;
    apr_size_t len;
    json_error_t jerr;
    json_t *v;
    fl_error_t *e = floopy_read_body(r, &body, &len);
    if (e) return e;
    v = fl_json_pool_own(r->pool, json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr));
    if (!v) {
        return fl_error_invalid(r->pool, "invalid_json", NULL, "the body is not valid JSON: %s",
                                jerr.text);
    }
    if (!json_is_object(v)) {
        return fl_error_invalid(r->pool, "invalid_json", NULL, "the body must be a JSON object");
    }
    *pobj = v;
    return NULL;
}

const char *floopy_bearer(request_rec *r)
{
    const char *h = apr_table_get(r->headers_in, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7)) return NULL;
    h += 7;
    while (*h == ' ') h++;
    return *h ? h : NULL;
}

/* A client that closed its connection shows as a readable socket with nothing to read. */
int floopy_client_gone(conn_rec *c)
{
    apr_socket_t *s = ap_get_conn_socket(c);
    apr_os_sock_t fd;
    char b;
    ssize_t n;
    if (c->aborted) return 1;
    if (!s || apr_os_sock_get(&fd, s) != APR_SUCCESS) return 0;
    n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

fl_error_t *floopy_query(request_rec *r, const char *const *known, apr_table_t **pargs)
{
    const apr_array_header_t *a;
    int i;
    ap_args_to_table(r, pargs);
    a = apr_table_elts(*pargs);
    for (i = 0; i < a->nelts; i++) {
        const char *k = APR_ARRAY_IDX(a, i, apr_table_entry_t).key, *const *n;
        for (n = known; *n && strcmp(*n, k); n++);
        if (!*n) {
            return fl_error_invalid(r->pool, "invalid_value", k,
                                    "'%s' is not a parameter of this endpoint", k);
        }
    }
    return NULL;
}

fl_error_t *floopy_time_window(request_rec *r, apr_table_t *args, apr_interval_time_t settle,
                               const char **pfrom, const char **pto)
{
    static const char *const names[2] = { "from", "to" };
    apr_time_t t[2] = { 0, apr_time_now() - settle }, v;
    const char *s;
    int i;
    for (i = 0; i < 2; i++) {
        if (!(s = apr_table_get(args, names[i]))) continue;
        if (fl_time_parse(s, &v)) {
            return fl_error_invalid(r->pool, "invalid_value", names[i],
                                    "'%s' must be ISO 8601 UTC or Unix seconds", names[i]);
        }
        if (i == 0 || v < t[1]) t[i] = v;
    }
    *pfrom = fl_time_sql(r->pool, t[0]);
    *pto = fl_time_sql(r->pool, t[1]);
    return NULL;
}

const char *floopy_session_of(request_rec *r)
{
    const char *s = apr_table_get(r->headers_in, "x-floopy-session-id");
    if (!s || !*s) return NULL;
    return strlen(s) > 255 ? apr_pstrndup(r->pool, s, 255) : s;
}
