#include <string.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <apr_lib.h>
#include <curl/curl.h>

#include "fl_http.h"

#define FL_HTTP_MAX_IDLE_HANDLES 64

struct fl_http_t {
    apr_thread_mutex_t *mutex;
    CURL *idle[FL_HTTP_MAX_IDLE_HANDLES];
    int nidle;
};

typedef struct {
    const fl_http_request_t *req;
    fl_http_response_t *resp;
    apr_pool_t *pool;
    apr_time_t start, last_activity;
    int head_done, stalled, aborted;
} xfer_t;

apr_status_t fl_http_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? APR_SUCCESS : APR_EGENERAL;
}

static apr_status_t http_cleanup(void *v)
{
    fl_http_t *h = v;
    while (h->nidle > 0) {
        curl_easy_cleanup(h->idle[--h->nidle]);
    }
    return APR_SUCCESS;
}

apr_status_t fl_http_create(fl_http_t **ph, apr_pool_t *p)
{
    fl_http_t *h = apr_pcalloc(p, sizeof(*h));
    apr_status_t rv = apr_thread_mutex_create(&h->mutex, APR_THREAD_MUTEX_DEFAULT, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    apr_pool_cleanup_register(p, h, http_cleanup, apr_pool_cleanup_null);
    *ph = h;
    return APR_SUCCESS;
}

static CURL *handle_take(fl_http_t *h)
{
    CURL *c = NULL;
    apr_thread_mutex_lock(h->mutex);
    if (h->nidle > 0) {
        c = h->idle[--h->nidle];
    }
    apr_thread_mutex_unlock(h->mutex);
    if (c) {
        curl_easy_reset(c); /* keeps its live connections */
        return c;
    }
    return curl_easy_init();
}

static void handle_give(fl_http_t *h, CURL *c)
{
    apr_thread_mutex_lock(h->mutex);
    if (h->nidle < FL_HTTP_MAX_IDLE_HANDLES) {
        h->idle[h->nidle++] = c;
        c = NULL;
    }
    apr_thread_mutex_unlock(h->mutex);
    if (c) {
        curl_easy_cleanup(c);
    }
}

static size_t on_header(char *buf, size_t size, size_t n, void *ud)
{
    xfer_t *x = ud;
    size_t len = size * n;
    char *line, *colon;

    x->last_activity = apr_time_now();
    if (len >= 5 && !strncmp(buf, "HTTP/", 5)) {
        apr_table_clear(x->resp->headers); /* a new response head (after 1xx) */
        char *l = apr_pstrmemdup(x->pool, buf, len);
        x->resp->status = (int)apr_atoi64(l + strcspn(l, " "));
        return len;
    }
    if (len <= 2 && (buf[0] == '\r' || buf[0] == '\n')) {
        if (x->resp->status >= 200 && !x->head_done) {
            x->head_done = 1;
            if (x->req->on_head) {
                x->resp->cb_status = x->req->on_head(x->req->baton, x->resp->status, x->resp->headers);
                if (x->resp->cb_status != APR_SUCCESS) return 0;
            }
        }
        return len;
    }
    line = apr_pstrmemdup(x->pool, buf, len);
    if ((colon = strchr(line, ':'))) {
        char *v = colon + 1, *end;
        *colon = '\0';
        while (*v == ' ' || *v == '\t') v++;
        end = v + strlen(v);
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ')) *--end = '\0';
        apr_table_add(x->resp->headers, line, v);
    }
    return len;
}

static size_t on_body(char *buf, size_t size, size_t n, void *ud)
{
    xfer_t *x = ud;
    size_t len = size * n;
    x->last_activity = apr_time_now();
    if (x->resp->first_byte_ms <= 0) {
        x->resp->first_byte_ms = (double)(x->last_activity - x->start) / 1000.0;
    }
    if (x->req->on_data) {
        x->resp->cb_status = x->req->on_data(x->req->baton, buf, len);
        if (x->resp->cb_status != APR_SUCCESS) return 0; /* CURLE_WRITE_ERROR stops it */
    }
    return len;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    xfer_t *x = ud;
    apr_time_t now = apr_time_now();
    if (x->req->idle_timeout_ms > 0
        && now - x->last_activity > apr_time_from_msec(x->req->idle_timeout_ms)) {
        x->stalled = 1;
        return 1;
    }
    if (x->req->should_abort && x->req->should_abort(x->req->baton)) {
        x->aborted = 1;
        return 1;
    }
    return 0;
}

static struct curl_slist *make_headers(apr_pool_t *p, const fl_http_request_t *req)
{
    struct curl_slist *hl = NULL;
    hl = curl_slist_append(hl, "Content-Type: application/json");
    hl = curl_slist_append(hl, apr_pstrcat(p, "Accept: ", req->accept ? req->accept
                                                          : "application/json", NULL));
    hl = curl_slist_append(hl, "Expect:"); /* no 100-continue round trip for large bodies */
    if (req->bearer) {
        hl = curl_slist_append(hl, apr_pstrcat(p, "Authorization: Bearer ", req->bearer, NULL));
    }
    return hl;
}

static void set_options(CURL *c, const fl_http_request_t *req, xfer_t *x, struct curl_slist *hl)
{
    curl_easy_setopt(c, CURLOPT_URL, req->url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, req->connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : 0L);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
}

static apr_status_t map_result(CURLcode cc, xfer_t *x)
{
    switch (cc) {
    case CURLE_OK:
        return APR_SUCCESS;
    case CURLE_OPERATION_TIMEDOUT:
        return APR_TIMEUP;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return APR_ECONNREFUSED;
    case CURLE_ABORTED_BY_CALLBACK:
        return x->stalled ? APR_TIMEUP : APR_ECONNABORTED;
    case CURLE_WRITE_ERROR:
        return x->resp->cb_status != APR_SUCCESS ? x->resp->cb_status : APR_EGENERAL;
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
        return APR_EOF;
    default:
        return APR_EGENERAL;
    }
}

apr_status_t fl_http_perform(fl_http_t *h, apr_pool_t *p, const fl_http_request_t *req,
                             fl_http_response_t *resp)
{
    xfer_t x;
    CURL *c;
    CURLcode cc;
    struct curl_slist *hl;
    char errbuf[CURL_ERROR_SIZE];
    apr_status_t rv;

    memset(resp, 0, sizeof(*resp));
    resp->headers = apr_table_make(p, 16);
    memset(&x, 0, sizeof(x));
    x.req = req;
    x.resp = resp;
    x.pool = p;
    x.start = x.last_activity = apr_time_now();

    if (!(c = handle_take(h))) {
        resp->error = "cannot create a curl handle";
        return APR_ENOMEM;
    }
    hl = make_headers(p, req);
    set_options(c, req, &x, hl);
    errbuf[0] = '\0';
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    cc = curl_easy_perform(c);
    resp->total_ms = (double)(apr_time_now() - x.start) / 1000.0;
    rv = map_result(cc, &x);
    if (rv != APR_SUCCESS) {
        resp->error = apr_pstrdup(p, errbuf[0] ? errbuf : curl_easy_strerror(cc));
    }
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(hl);
    /* A handle whose transfer was cut mid-way may hold a half-read connection: curl closes
     * such connections itself, so the handle can still be reused. */
    handle_give(h, c);
    return rv;
}
