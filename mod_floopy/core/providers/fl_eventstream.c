#include <string.h>
#include <apr_strings.h>

#include "fl_eventstream.h"
#include "fl_buf.h"

struct fl_es_t {
    fl_buf_t *buf;                  /* the message being assembled, never more than one */
    apr_uint32_t need;              /* bytes the current message has: the prelude, then total */
    apr_size_t max;
    fl_es_message_cb *cb;
    void *baton;
    const char *error;
    apr_pool_t *pool;
};

/* A nibble table: small enough to write out, const so threads share it safely. */
static const apr_uint32_t CRC_NIBBLE[16] = {
    0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC, 0x76DC4190, 0x6B6B51F4, 0x4DB26158, 0x5005713C,
    0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C, 0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C
};

apr_uint32_t fl_es_crc32(apr_uint32_t crc, const void *buf, apr_size_t len)
{
    const unsigned char *b = buf;
    crc = ~crc;
    while (len--) {
        crc ^= *b++;
        crc = (crc >> 4) ^ CRC_NIBBLE[crc & 15];
        crc = (crc >> 4) ^ CRC_NIBBLE[crc & 15];
    }
    return ~crc;
}

static apr_uint32_t be32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return ((apr_uint32_t)u[0] << 24) | ((apr_uint32_t)u[1] << 16) | ((apr_uint32_t)u[2] << 8) | u[3];
}

static void put32(char *p, apr_uint32_t v)
{
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
}

apr_status_t fl_es_create(fl_es_t **pes, apr_pool_t *p, apr_size_t max_message,
                          fl_es_message_cb *cb, void *baton)
{
    fl_es_t *es = apr_pcalloc(p, sizeof(*es));
    es->buf = fl_buf_create(p, max_message);
    es->need = FL_ES_PRELUDE_LEN;
    es->max = max_message;
    es->cb = cb;
    es->baton = baton;
    es->pool = p;
    *pes = es;
    return APR_SUCCESS;
}

static apr_status_t corrupt(fl_es_t *es, const char *why)
{
    es->error = why;
    return APR_EGENERAL;
}

/* Fixed value sizes by type; -1 for the length-prefixed ones, -2 for unknown types. */
static int value_size(int type)
{
    static const int SIZES[10] = { 0, 0, 1, 2, 4, 8, -1, -1, 8, 16 };
    return type >= 0 && type <= 9 ? SIZES[type] : -2;
}

static apr_status_t parse_headers(fl_es_t *es, const char *h, apr_size_t len, fl_es_message_t *m)
{
    apr_size_t i = 0;
    m->nheaders = 0;
    while (i < len) {
        fl_es_header_t *hd;
        apr_size_t nl = (unsigned char)h[i++];
        int size;
        if (m->nheaders == FL_ES_MAX_HEADERS) return corrupt(es, "too many headers in a message");
        if (nl == 0 || i + nl + 1 > len) return corrupt(es, "a header name runs past the headers");
        hd = &m->headers[m->nheaders++];
        hd->name = h + i;
        hd->name_len = nl;
        i += nl;
        hd->type = (unsigned char)h[i++];
        size = value_size(hd->type);
        if (size == -2) return corrupt(es, "a header has an unknown value type");
        if (size == -1) {
            if (i + 2 > len) return corrupt(es, "a header value runs past the headers");
            hd->value_len = ((apr_size_t)(unsigned char)h[i] << 8) | (unsigned char)h[i + 1];
            i += 2;
        }
        else {
            hd->value_len = (apr_size_t)size;
        }
        if (i + hd->value_len > len) return corrupt(es, "a header value runs past the headers");
        hd->value = h + i;
        i += hd->value_len;
    }
    return APR_SUCCESS;
}

/* The prelude is in: check its CRC and lengths before waiting for the rest. */
static apr_status_t prelude(fl_es_t *es)
{
    const char *d = es->buf->data;
    apr_uint32_t total = be32(d), hlen = be32(d + 4);
    if (fl_es_crc32(0, d, 8) != be32(d + 8)) return corrupt(es, "prelude CRC mismatch");
    if (total < FL_ES_MIN_MESSAGE || hlen > total - FL_ES_MIN_MESSAGE) {
        return corrupt(es, "impossible message lengths");
    }
    if (total > es->max) {
        es->error = "message larger than the decoder's cap";
        return APR_ENOSPC;
    }
    es->need = total;
    return APR_SUCCESS;
}

static apr_status_t message(fl_es_t *es)
{
    const char *d = es->buf->data;
    apr_uint32_t total = es->need, hlen = be32(d + 4);
    fl_es_message_t m;
    apr_status_t rv;
    if (fl_es_crc32(0, d, total - 4) != be32(d + total - 4)) {
        return corrupt(es, "message CRC mismatch");
    }
    if ((rv = parse_headers(es, d + FL_ES_PRELUDE_LEN, hlen, &m)) != APR_SUCCESS) return rv;
    m.payload = d + FL_ES_PRELUDE_LEN + hlen;
    m.payload_len = total - hlen - FL_ES_MIN_MESSAGE;
    rv = es->cb(es->baton, &m);
    fl_buf_reset(es->buf);
    es->need = FL_ES_PRELUDE_LEN;
    return rv;
}

apr_status_t fl_es_feed(fl_es_t *es, const char *buf, apr_size_t len)
{
    apr_status_t rv;
    if (es->error) return APR_EGENERAL;
    while (len > 0) {
        apr_size_t take = es->need - es->buf->len;
        if (take > len) take = len;
        if ((rv = fl_buf_append(es->buf, buf, take)) != APR_SUCCESS) {
            es->error = "out of memory";
            return rv;
        }
        buf += take;
        len -= take;
        if (es->buf->len < es->need) break;
        if (es->need == FL_ES_PRELUDE_LEN) {
            /* the prelude is in; the rest of the message (at least 4 more bytes) is not yet */
            if ((rv = prelude(es)) != APR_SUCCESS) return rv;
            continue;
        }
        if ((rv = message(es)) != APR_SUCCESS) return rv;
    }
    return APR_SUCCESS;
}

const char *fl_es_error(const fl_es_t *es)
{
    return es->error;
}

int fl_es_pending(const fl_es_t *es)
{
    return es->buf->len > 0;
}

const char *fl_es_header_str(apr_pool_t *p, const fl_es_message_t *m, const char *name)
{
    apr_size_t nl = strlen(name);
    int i;
    for (i = 0; i < m->nheaders; i++) {
        const fl_es_header_t *h = &m->headers[i];
        if (h->type == 7 && h->name_len == nl && !memcmp(h->name, name, nl)) {
            return apr_pstrmemdup(p, h->value, h->value_len);
        }
    }
    return NULL;
}

char *fl_es_encode(apr_pool_t *p, const char *const *names, const char *const *values, int n,
                   const char *payload, apr_size_t payload_len, apr_size_t *plen)
{
    apr_size_t hlen = 0, total, off;
    char *out;
    int i;
    for (i = 0; i < n; i++) hlen += 1 + strlen(names[i]) + 1 + 2 + strlen(values[i]);
    total = FL_ES_MIN_MESSAGE + hlen + payload_len;
    out = apr_palloc(p, total);
    put32(out, (apr_uint32_t)total);
    put32(out + 4, (apr_uint32_t)hlen);
    put32(out + 8, fl_es_crc32(0, out, 8));
    off = FL_ES_PRELUDE_LEN;
    for (i = 0; i < n; i++) {
        apr_size_t nl = strlen(names[i]), vl = strlen(values[i]);
        out[off++] = (char)nl;
        memcpy(out + off, names[i], nl);
        off += nl;
        out[off++] = 7;
        out[off++] = (char)(vl >> 8);
        out[off++] = (char)vl;
        memcpy(out + off, values[i], vl);
        off += vl;
    }
    memcpy(out + off, payload, payload_len);
    off += payload_len;
    put32(out + off, fl_es_crc32(0, out, off));
    *plen = total;
    return out;
}
