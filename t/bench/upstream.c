/*
 * upstream.c - a fast static "OpenAI" upstream for benchmarks.
 *
 *   gcc -O2 -Wall -Wextra -Werror -o upstream upstream.c
 *   ./upstream PORT          (PORT 0 = any free port)
 *
 * Single-process epoll HTTP/1.1 server on 127.0.0.1 with keep-alive. Every request
 * (headers plus a Content-Length or chunked body) gets the same valid chat.completion JSON
 * with usage. Once listening it prints {"port":N} on stdout. SIGTERM/SIGINT stop it and it
 * prints the number of requests it answered on stderr.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_EVENTS 256
#define MAX_REQUEST (16 * 1024 * 1024)

static const char BODY[] =
    "{\"id\":\"chatcmpl-BenchUpstream000000000000001\",\"object\":\"chat.completion\","
    "\"created\":1763788800,\"model\":\"gpt-bench\",\"choices\":[{\"index\":0,\"message\":"
    "{\"role\":\"assistant\",\"content\":\"Hello! How can I help you today?\",\"refusal\":null,"
    "\"annotations\":[]},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":"
    "{\"prompt_tokens\":9,\"completion_tokens\":9,\"total_tokens\":18,\"prompt_tokens_details\":"
    "{\"cached_tokens\":0,\"audio_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0,"
    "\"audio_tokens\":0,\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}},"
    "\"service_tier\":\"default\",\"system_fingerprint\":\"fp_bench00000\"}";

/* The same answer in Anthropic's Messages format, for requests to /v1/messages. */
static const char ANTHROPIC_BODY[] =
    "{\"id\":\"msg_bench00000000000000000001\",\"type\":\"message\",\"role\":\"assistant\","
    "\"model\":\"claude-bench\",\"content\":[{\"type\":\"text\",\"text\":"
    "\"Hello! How can I help you today?\"}],\"stop_reason\":\"end_turn\",\"stop_sequence\":null,"
    "\"usage\":{\"input_tokens\":9,\"output_tokens\":9,\"cache_creation_input_tokens\":0,"
    "\"cache_read_input_tokens\":0}}";

static char response[2048], anthropic_response[2048];
static size_t response_len, anthropic_response_len;

struct conn {
    int fd;
    char *in;
    size_t in_len, in_cap;
    char *out;        /* unsent part of responses */
    size_t out_len, out_cap;
    int close_after;  /* close once out is flushed */
};

static struct conn **conns;
static int conns_cap;
static volatile sig_atomic_t stop;
static unsigned long long answered;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static void conn_close(int ep, struct conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    conns[c->fd] = NULL;
    free(c->in);
    free(c->out);
    free(c);
}

static int buf_append(char **buf, size_t *len, size_t *cap, const char *data, size_t n)
{
    if (*len + n > *cap) {
        size_t ncap = *cap ? *cap : 4096;
        while (ncap < *len + n)
            ncap *= 2;
        char *nb = realloc(*buf, ncap);
        if (!nb)
            return -1;
        *buf = nb;
        *cap = ncap;
    }
    memcpy(*buf + *len, data, n);
    *len += n;
    return 0;
}

/* Case-insensitive search for a header line; returns pointer to its value or NULL. */
static const char *find_header(const char *hdrs, size_t len, const char *name)
{
    size_t nl = strlen(name);
    const char *p = hdrs, *end = hdrs + len;
    /* skip the request line */
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol)
        return NULL;
    p = eol + 1;
    while (p < end) {
        eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        if ((size_t)(eol - p) > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
            const char *v = p + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            return v;
        }
        p = eol + 1;
    }
    return NULL;
}

static int value_has_token(const char *v, const char *token)
{
    size_t tl = strlen(token);
    while (*v && *v != '\r' && *v != '\n') {
        while (*v == ' ' || *v == ',' || *v == '\t')
            v++;
        if (strncasecmp(v, token, tl) == 0 && (v[tl] == ',' || v[tl] == ' ' || v[tl] == '\r' ||
                                                v[tl] == '\n' || v[tl] == '\0'))
            return 1;
        while (*v && *v != ',' && *v != '\r' && *v != '\n')
            v++;
    }
    return 0;
}

/*
 * Length of the chunked body starting at p (n bytes available), including the final
 * CRLF after the zero chunk (no trailers expected), or 0 if incomplete, -1 if malformed.
 */
static long chunked_len(const char *p, size_t n)
{
    size_t off = 0;
    for (;;) {
        const char *crlf = memmem(p + off, n - off, "\r\n", 2);
        if (!crlf)
            return 0;
        char *endp;
        unsigned long sz = strtoul(p + off, &endp, 16);
        if (endp == p + off)
            return -1;
        off = (size_t)(crlf - p) + 2;
        if (sz == 0) {
            /* trailers until an empty line */
            for (;;) {
                const char *e = memmem(p + off, n - off, "\r\n", 2);
                if (!e)
                    return 0;
                if (e == p + off)
                    return (long)(off + 2);
                off = (size_t)(e - p) + 2;
            }
        }
        if (sz > MAX_REQUEST || off + sz + 2 > n)
            return off + sz + 2 > MAX_REQUEST ? -1 : 0;
        off += sz + 2;
    }
}

/* Consume complete requests from c->in, queue responses. Returns -1 to drop the connection. */
static int process(struct conn *c)
{
    size_t pos = 0;
    while (pos < c->in_len) {
        const char *start = c->in + pos;
        size_t avail = c->in_len - pos;
        const char *hend = memmem(start, avail, "\r\n\r\n", 4);
        if (!hend) {
            if (avail > 65536)
                return -1;
            break;
        }
        size_t hlen = (size_t)(hend - start) + 4;
        size_t blen = 0;
        const char *te = find_header(start, hlen, "Transfer-Encoding");
        const char *cl = find_header(start, hlen, "Content-Length");
        if (te && value_has_token(te, "chunked")) {
            long n = chunked_len(start + hlen, avail - hlen);
            if (n < 0)
                return -1;
            if (n == 0)
                break;
            blen = (size_t)n;
        } else if (cl) {
            char *endp;
            unsigned long n = strtoul(cl, &endp, 10);
            if (endp == cl || n > MAX_REQUEST)
                return -1;
            blen = n;
        }
        if (hlen + blen > avail)
            break;

        int http10 = (memmem(start, hlen, " HTTP/1.0\r\n", 11) != NULL);
        const char *conn_hdr = find_header(start, hlen, "Connection");
        if (conn_hdr && value_has_token(conn_hdr, "close"))
            c->close_after = 1;
        else if (http10 && !(conn_hdr && value_has_token(conn_hdr, "keep-alive")))
            c->close_after = 1;

        int anthropic = memmem(start, hlen, " /v1/messages ", 14) != NULL;
        if (buf_append(&c->out, &c->out_len, &c->out_cap,
                       anthropic ? anthropic_response : response,
                       anthropic ? anthropic_response_len : response_len) < 0)
            return -1;
        answered++;
        pos += hlen + blen;
        if (c->close_after)
            break;
    }
    if (pos) {
        memmove(c->in, c->in + pos, c->in_len - pos);
        c->in_len -= pos;
    }
    return 0;
}

/* Try to send pending output. Returns -1 on error, 0 when all sent, 1 if more remains. */
static int flush_out(struct conn *c)
{
    size_t sent = 0;
    while (sent < c->out_len) {
        ssize_t w = send(c->fd, c->out + sent, c->out_len - sent, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -1;
        }
        sent += (size_t)w;
    }
    if (sent) {
        memmove(c->out, c->out + sent, c->out_len - sent);
        c->out_len -= sent;
    }
    return c->out_len ? 1 : 0;
}

static void handle_readable(int ep, struct conn *c)
{
    char buf[65536];
    for (;;) {
        ssize_t r = recv(c->fd, buf, sizeof buf, 0);
        if (r > 0) {
            if (c->in_len + (size_t)r > MAX_REQUEST + 65536 ||
                buf_append(&c->in, &c->in_len, &c->in_cap, buf, (size_t)r) < 0) {
                conn_close(ep, c);
                return;
            }
            if ((size_t)r < sizeof buf)
                break;
            continue;
        }
        if (r == 0) {
            conn_close(ep, c);
            return;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
        conn_close(ep, c);
        return;
    }
    if (process(c) < 0) {
        conn_close(ep, c);
        return;
    }
    int st = flush_out(c);
    if (st < 0 || (st == 0 && c->close_after)) {
        if (st == 0)
            shutdown(c->fd, SHUT_WR);
        conn_close(ep, c);
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN | (st ? EPOLLOUT : 0u), .data.fd = c->fd};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void handle_writable(int ep, struct conn *c)
{
    int st = flush_out(c);
    if (st < 0 || (st == 0 && c->close_after)) {
        conn_close(ep, c);
        return;
    }
    if (st == 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = c->fd};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
}

static void accept_all(int ep, int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            return; /* EAGAIN or a transient error (EMFILE...) */
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (fd >= conns_cap) {
            int ncap = conns_cap ? conns_cap : 1024;
            while (ncap <= fd)
                ncap *= 2;
            struct conn **n = realloc(conns, (size_t)ncap * sizeof *n);
            if (!n) {
                close(fd);
                continue;
            }
            memset(n + conns_cap, 0, (size_t)(ncap - conns_cap) * sizeof *n);
            conns = n;
            conns_cap = ncap;
        }
        struct conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        conns[fd] = c;
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
            conn_close(ep, c);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    char *endp;
    long port = strtol(argv[1], &endp, 10);
    if (*endp || port < 0 || port > 65535) {
        fprintf(stderr, "bad port: %s\n", argv[1]);
        return 2;
    }

    int n = snprintf(response, sizeof response,
                     "HTTP/1.1 200 OK\r\n"
                     "Content-Type: application/json\r\n"
                     "Content-Length: %zu\r\n"
                     "x-request-id: req_bench\r\n"
                     "openai-processing-ms: 1\r\n"
                     "\r\n%s",
                     sizeof BODY - 1, BODY);
    if (n < 0 || (size_t)n >= sizeof response) {
        fprintf(stderr, "response buffer too small\n");
        return 1;
    }
    response_len = (size_t)n;
    n = snprintf(anthropic_response, sizeof anthropic_response,
                 "HTTP/1.1 200 OK\r\n"
                 "Content-Type: application/json\r\n"
                 "Content-Length: %zu\r\n"
                 "request-id: req_bench\r\n"
                 "\r\n%s",
                 sizeof ANTHROPIC_BODY - 1, ANTHROPIC_BODY);
    if (n < 0 || (size_t)n >= sizeof anthropic_response) {
        fprintf(stderr, "response buffer too small\n");
        return 1;
    }
    anthropic_response_len = (size_t)n;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0)
        die("socket");
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0)
        die("bind");
    if (listen(lfd, 4096) < 0)
        die("listen");
    socklen_t alen = sizeof addr;
    if (getsockname(lfd, (struct sockaddr *)&addr, &alen) < 0)
        die("getsockname");
    printf("{\"port\":%d}\n", ntohs(addr.sin_port));
    fflush(stdout);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1");
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
        die("epoll_ctl");

    struct epoll_event events[MAX_EVENTS];
    while (!stop) {
        int k = epoll_wait(ep, events, MAX_EVENTS, 1000);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < k; i++) {
            int fd = events[i].data.fd;
            if (fd == lfd) {
                accept_all(ep, lfd);
                continue;
            }
            struct conn *c = fd < conns_cap ? conns[fd] : NULL;
            if (!c)
                continue;
            if (events[i].events & (EPOLLERR | EPOLLHUP)) {
                conn_close(ep, c);
                continue;
            }
            if (events[i].events & EPOLLIN) {
                handle_readable(ep, c);
                c = conns[fd];
                if (!c)
                    continue;
            }
            if (events[i].events & EPOLLOUT)
                handle_writable(ep, c);
        }
    }
    fprintf(stderr, "upstream: answered %llu requests\n", answered);
    for (int fd = 0; fd < conns_cap; fd++)
        if (conns[fd])
            conn_close(ep, conns[fd]);
    free(conns);
    close(ep);
    close(lfd);
    return 0;
}
