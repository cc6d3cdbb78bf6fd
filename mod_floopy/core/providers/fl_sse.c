#include <stdlib.h>
#include <string.h>

#include "fl_sse.h"
#include "fl_buf.h"

struct fl_sse_t {
    fl_buf_t *line;   /* the line being read */
    fl_buf_t *data;   /* data of the event being built */
    char event[64];
    int has_data;
    int last_cr;      /* the previous byte was CR: a following LF belongs to it */
    fl_sse_event_cb *cb;
    void *baton;
};

apr_status_t fl_sse_create(fl_sse_t **psse, apr_pool_t *p, apr_size_t max_event,
                           fl_sse_event_cb *cb, void *baton)
{
    fl_sse_t *sse = apr_pcalloc(p, sizeof(*sse));
    sse->line = fl_buf_create(p, max_event);
    sse->data = fl_buf_create(p, max_event);
    sse->cb = cb;
    sse->baton = baton;
    *psse = sse;
    return APR_SUCCESS;
}

static apr_status_t dispatch(fl_sse_t *sse)
{
    apr_status_t rv = APR_SUCCESS;
    if (sse->has_data) {
        rv = sse->cb(sse->baton, sse->event, sse->data->data ? sse->data->data : "",
                     sse->data->len);
    }
    fl_buf_reset(sse->data);
    sse->event[0] = '\0';
    sse->has_data = 0;
    return rv;
}

static apr_status_t process_line(fl_sse_t *sse, const char *line, apr_size_t len)
{
    const char *colon, *value;
    apr_size_t nlen, vlen;

    if (len == 0) {
        return dispatch(sse);
    }
    if (line[0] == ':') {
        return APR_SUCCESS;
    }
    colon = memchr(line, ':', len);
    nlen = colon ? (apr_size_t)(colon - line) : len;
    value = colon ? colon + 1 : line + len;
    vlen = len - (apr_size_t)(value - line);
    if (vlen && value[0] == ' ') {
        value++;
        vlen--;
    }
    if (nlen == 4 && !memcmp(line, "data", 4)) {
        apr_status_t rv;
        if (sse->has_data && (rv = fl_buf_append(sse->data, "\n", 1))) return rv;
        sse->has_data = 1;
        return fl_buf_append(sse->data, value, vlen);
    }
    if (nlen == 5 && !memcmp(line, "event", 5)) {
        apr_size_t n = vlen < sizeof(sse->event) - 1 ? vlen : sizeof(sse->event) - 1;
        memcpy(sse->event, value, n);
        sse->event[n] = '\0';
    }
    return APR_SUCCESS; /* id:, retry: and unknown fields do not matter to a relay */
}

apr_status_t fl_sse_feed(fl_sse_t *sse, const char *buf, apr_size_t len)
{
    apr_size_t i, start = 0;
    apr_status_t rv;

    for (i = 0; i < len; i++) {
        char c = buf[i];
        if (c != '\n' && c != '\r') {
            sse->last_cr = 0;
            continue;
        }
        if (c == '\n' && sse->last_cr && i == start && sse->line->len == 0) {
            sse->last_cr = 0;   /* the LF of a CRLF whose CR ended the line already */
            start = i + 1;
            continue;
        }
        sse->last_cr = (c == '\r');
        if (sse->line->len) {
            if ((rv = fl_buf_append(sse->line, buf + start, i - start))) return rv;
            rv = process_line(sse, sse->line->data, sse->line->len);
            fl_buf_reset(sse->line);
        }
        else {
            rv = process_line(sse, buf + start, i - start);
        }
        if (rv) return rv;
        start = i + 1;
    }
    if (start < len) {
        return fl_buf_append(sse->line, buf + start, len - start);
    }
    return APR_SUCCESS;
}

int fl_sse_pending(const fl_sse_t *sse)
{
    return sse->line->len > 0 || sse->has_data;
}
