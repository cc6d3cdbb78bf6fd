/* The libcurl wrapper against a real HTTP server on 127.0.0.1, run in a thread of this process. */
#include <apr_strings.h>
#include <apr_network_io.h>
#include <apr_thread_proc.h>
#include "fl_test.h"
#include "fl_http.h"

typedef struct {
    apr_socket_t *listener;
    const char *script;          /* what to send back; "STALL" sends nothing */
    apr_pool_t *pool;
} server_t;

static void read_request(apr_socket_t *s)
{
    char buf[4096];
    apr_size_t n;
    apr_size_t total = 0;
    apr_socket_timeout_set(s, apr_time_from_msec(200));
    do {
        n = sizeof(buf);
        if (apr_socket_recv(s, buf, &n) != APR_SUCCESS) break;
        total += n;
    } while (n > 0 && total < 1 << 20);
}

static void *APR_THREAD_FUNC serve_one(apr_thread_t *t, void *data)
{
    server_t *sv = data;
    apr_socket_t *c;
    if (apr_socket_accept(&c, sv->listener, sv->pool) == APR_SUCCESS) {
        read_request(c);
        if (strcmp(sv->script, "STALL")) {
            apr_size_t n = strlen(sv->script);
            apr_socket_send(c, sv->script, &n);
        }
        else {
            apr_sleep(apr_time_from_msec(1500));
        }
        apr_socket_close(c);
    }
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

typedef struct {
    int heads, status;
    char body[4096];
    apr_size_t len;
} sink_t;

static apr_status_t on_head(void *b, int status, apr_table_t *h)
{
    sink_t *s = b;
    s->heads++;
    s->status = status;
    return APR_SUCCESS;
}

static apr_status_t on_data(void *b, const char *buf, apr_size_t len)
{
    sink_t *s = b;
    if (s->len + len < sizeof(s->body)) {
        memcpy(s->body + s->len, buf, len);
        s->len += len;
    }
    return APR_SUCCESS;
}

static apr_status_t exchange(apr_pool_t *p, fl_http_t *h, const char *script, long timeout_ms,
                             sink_t *sink, fl_http_response_t *resp)
{
    server_t sv = { NULL, script, p };
    apr_sockaddr_t *sa;
    apr_thread_t *t;
    apr_status_t rv, st;
    fl_http_request_t req = { 0 };

    apr_sockaddr_info_get(&sa, "127.0.0.1", APR_INET, 0, 0, p);
    apr_socket_create(&sv.listener, APR_INET, SOCK_STREAM, APR_PROTO_TCP, p);
    apr_socket_bind(sv.listener, sa);
    apr_socket_listen(sv.listener, 4);
    apr_socket_addr_get(&sa, APR_LOCAL, sv.listener);
    apr_thread_create(&t, NULL, serve_one, &sv, p);

    memset(sink, 0, sizeof(*sink));
    req.url = apr_psprintf(p, "http://127.0.0.1:%d/v1/chat/completions", sa->port);
    req.body = "{\"x\":1}";
    req.body_len = 7;
    req.headers = NULL;
    req.connect_timeout_ms = 1000;
    req.timeout_ms = timeout_ms;
    req.idle_timeout_ms = 800;
    req.on_head = on_head;
    req.on_data = on_data;
    req.baton = sink;
    rv = fl_http_perform(h, p, &req, resp);
    apr_thread_join(&st, t);
    apr_socket_close(sv.listener);
    return rv;
}

void test_http(apr_pool_t *p)
{
    fl_http_t *h;
    sink_t sink;
    fl_http_response_t resp;
    apr_status_t rv;

    CHECK(fl_http_create(&h, p) == APR_SUCCESS);
    rv = exchange(p, h, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n"
                        "X-Thing: a b \r\n\r\n{\"ok\":true}", 5000, &sink, &resp);
    CHECK(rv == APR_SUCCESS && resp.status == 200 && sink.heads == 1);
    CHECK(sink.len == 11 && !memcmp(sink.body, "{\"ok\":true}", 11));
    CHECK_STR(apr_table_get(resp.headers, "x-thing"), "a b");

    rv = exchange(p, h, "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: 2\r\n\r\n{}",
                  5000, &sink, &resp);
    CHECK(rv == APR_SUCCESS && resp.status == 429);
    CHECK_STR(apr_table_get(resp.headers, "retry-after"), "7");

    /* a body cut short of its Content-Length */
    rv = exchange(p, h, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"partial", 5000, &sink, &resp);
    CHECK(rv == APR_EOF);

    /* silence past the idle timeout is a stall */
    rv = exchange(p, h, "STALL", 0, &sink, &resp);
    CHECK(rv == APR_TIMEUP);
    CHECK(resp.status == 0);

    /* nobody listening */
    {
        fl_http_request_t req = { 0 };
        req.url = "http://127.0.0.1:1/v1/chat/completions";
        req.body = "{}";
        req.body_len = 2;
        req.connect_timeout_ms = 1000;
        CHECK(fl_http_perform(h, p, &req, &resp) == APR_ECONNREFUSED);
        CHECK(resp.error != NULL);
    }
}
