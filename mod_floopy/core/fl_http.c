#include <string.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <apr_lib.h>
#include <curl/curl.h>

#include "fl_http.h"

#define FL_HTTP_MAX_IDLE_HANDLES 64
#define FL_HTTP_POLL_MS 50           /* how often a waiting transfer looks at its clocks */

/* An easy handle and the multi handle that drives it. The multi handle holds the connection
 * cache, so the pair travels together and connections survive from request to request. */
typedef struct {
    CURL *easy;
    CURLM *multi;
} handle_t;

struct fl_http_t {
    apr_thread_mutex_t *mutex;
    handle_t idle[FL_HTTP_MAX_IDLE_HANDLES];
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

static void handle_free(handle_t *hd)
{
    if (hd->multi) curl_multi_cleanup(hd->multi);
    if (hd->easy) curl_easy_cleanup(hd->easy);
}

static apr_status_t http_cleanup(void *v)
{
    fl_http_t *h = v;
    while (h->nidle > 0) {
        handle_free(&h->idle[--h->nidle]);
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

static int handle_take(fl_http_t *h, handle_t *out)
{
    int found = 0;
    apr_thread_mutex_lock(h->mutex);
    if (h->nidle > 0) {
        *out = h->idle[--h->nidle];
        found = 1;
    }
    apr_thread_mutex_unlock(h->mutex);
    if (found) {
        /* no curl_easy_reset: set_options sets every option a request uses, every time */
        return 1;
    }
    out->easy = curl_easy_init();
    out->multi = curl_multi_init();
    if (!out->easy || !out->multi) {
        handle_free(out);
        return 0;
    }
    return 1;
}

static void handle_give(fl_http_t *h, handle_t *hd)
{
    int kept = 0;
    apr_thread_mutex_lock(h->mutex);
    if (h->nidle < FL_HTTP_MAX_IDLE_HANDLES) {
        h->idle[h->nidle++] = *hd;
        kept = 1;
    }
    apr_thread_mutex_unlock(h->mutex);
    if (!kept) handle_free(hd);
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

static struct curl_slist *make_headers(apr_pool_t *p, const fl_http_request_t *req)
{
    struct curl_slist *hl = NULL;
    hl = curl_slist_append(hl, apr_pstrcat(p, "Content-Type: ", req->content_type ? req->content_type
                                                     : "application/json", NULL));
    hl = curl_slist_append(hl, apr_pstrcat(p, "Accept: ", req->accept ? req->accept
                                                          : "application/json", NULL));
    hl = curl_slist_append(hl, "Expect:"); /* no 100-continue round trip for large bodies */
    if (req->headers) {
        int i;
        for (i = 0; i < req->headers->nelts; i++) {
            hl = curl_slist_append(hl, APR_ARRAY_IDX(req->headers, i, const char *));
        }
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

/* Drives the transfer in slices of FL_HTTP_POLL_MS, so a stall or a departed client is noticed
 * within that time rather than at libcurl's once-a-second progress pace. */
static CURLcode drive(CURLM *multi, xfer_t *x)
{
    const fl_http_request_t *req = x->req;
    CURLMsg *msg;
    int running = 1, left;

    while (running) {
        apr_time_t now;
        if (curl_multi_perform(multi, &running) != CURLM_OK) return CURLE_FAILED_INIT;
        if (!running) break;
        if (curl_multi_wait(multi, NULL, 0, FL_HTTP_POLL_MS, NULL) != CURLM_OK) {
            return CURLE_FAILED_INIT;
        }
        now = apr_time_now();
        if (req->idle_timeout_ms > 0
            && now - x->last_activity > apr_time_from_msec(req->idle_timeout_ms)) {
            x->stalled = 1;
            return CURLE_OPERATION_TIMEDOUT;
        }
        if (req->should_abort && req->should_abort(req->baton)) {
            x->aborted = 1;
            return CURLE_ABORTED_BY_CALLBACK;
        }
    }
    while ((msg = curl_multi_info_read(multi, &left))) {
        if (msg->msg == CURLMSG_DONE) return msg->data.result;
    }
    return CURLE_FAILED_INIT;
}

apr_status_t fl_http_perform(fl_http_t *h, apr_pool_t *p, const fl_http_request_t *req,
                             fl_http_response_t *resp)
{
    xfer_t x;
    handle_t hd;
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

    if (!handle_take(h, &hd)) {
        resp->error = "cannot create a curl handle";
        return APR_ENOMEM;
    }
    hl = make_headers(p, req);
    set_options(hd.easy, req, &x, hl);
    errbuf[0] = '\0';
    curl_easy_setopt(hd.easy, CURLOPT_ERRORBUFFER, errbuf);
    curl_multi_add_handle(hd.multi, hd.easy);
    cc = drive(hd.multi, &x);
    /* Removing an unfinished transfer closes its connection; a finished one stays cached. */
    curl_multi_remove_handle(hd.multi, hd.easy);
    resp->total_ms = (double)(apr_time_now() - x.start) / 1000.0;
    rv = x.aborted ? APR_ECONNABORTED : map_result(cc, &x);
    if (rv != APR_SUCCESS) {
        resp->error = apr_pstrdup(p, x.stalled ? "the provider fell silent (idle timeout)"
                                     : x.aborted ? "the client went away"
                                     : errbuf[0] ? errbuf : curl_easy_strerror(cc));
    }
    curl_easy_setopt(hd.easy, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(hl);
    handle_give(h, &hd);
    return rv;
}
