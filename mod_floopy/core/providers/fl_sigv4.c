#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_time.h>
#include <openssl/hmac.h>
#include <openssl/evp.h>

#include "fl_sigv4.h"
#include "fl_util.h"

#define ALGORITHM "AWS4-HMAC-SHA256"

typedef struct header_t {
    const char *name;               /* lower case */
    const char *value;              /* trimmed, inner runs of spaces collapsed */
} header_t;

void fl_sigv4_amz_date(apr_time_t t, char out[FL_SIGV4_DATE_LEN + 1])
{
    apr_time_exp_t tm;
    apr_size_t n;
    apr_time_exp_gmt(&tm, t);
    apr_strftime(out, &n, FL_SIGV4_DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm);
}

static int unreserved(unsigned char c)
{
    return apr_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

const char *fl_sigv4_uri_encode(apr_pool_t *p, const char *s, int keep_slash)
{
    static const char HEX[] = "0123456789ABCDEF";
    char *out = apr_palloc(p, strlen(s) * 3 + 1), *o = out;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (unreserved(c) || (keep_slash && c == '/')) {
            *o++ = (char)c;
        }
        else {
            *o++ = '%';
            *o++ = HEX[c >> 4];
            *o++ = HEX[c & 15];
        }
    }
    *o = '\0';
    return out;
}

static void hmac(const void *key, apr_size_t keylen, const char *msg, unsigned char out[32])
{
    unsigned int n = 32;
    HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, strlen(msg), out, &n);
}

void fl_sigv4_signing_key(const char *secret, const char *date8, const char *region,
                          const char *service, unsigned char key[32])
{
    unsigned char k[32];
    char first[256];
    apr_size_t n = strlen(secret);
    if (n > sizeof(first) - 5) n = sizeof(first) - 5; /* AWS secrets are 40 characters */
    memcpy(first, "AWS4", 4);
    memcpy(first + 4, secret, n);
    hmac(first, n + 4, date8, k);
    hmac(k, 32, region, k);
    hmac(k, 32, service, k);
    hmac(k, 32, "aws4_request", key);
    OPENSSL_cleanse(first, sizeof(first));
    OPENSSL_cleanse(k, sizeof(k));
}

static const char *hex(apr_pool_t *p, const unsigned char *b, apr_size_t n)
{
    static const char HEX[] = "0123456789abcdef";
    char *s = apr_palloc(p, n * 2 + 1);
    apr_size_t i;
    for (i = 0; i < n; i++) {
        s[2 * i] = HEX[b[i] >> 4];
        s[2 * i + 1] = HEX[b[i] & 15];
    }
    s[2 * n] = '\0';
    return s;
}

/* The canonical form of a header value: no leading or trailing space, inner runs of spaces
 * made one. */
static const char *trim_value(apr_pool_t *p, const char *v)
{
    char *out = apr_palloc(p, strlen(v) + 1), *o = out;
    int space = 0;
    while (*v == ' ' || *v == '\t') v++;
    for (; *v; v++) {
        if (*v == ' ' || *v == '\t') {
            space = 1;
            continue;
        }
        if (space && o > out) *o++ = ' ';
        space = 0;
        *o++ = *v;
    }
    *o = '\0';
    return out;
}

static void add_header(apr_array_header_t *hs, apr_pool_t *p, const char *name, const char *value)
{
    header_t *h = apr_array_push(hs);
    char *n = apr_pstrdup(p, name), *c;
    for (c = n; *c; c++) *c = (char)apr_tolower(*c);
    h->name = n;
    h->value = trim_value(p, value);
}

static int header_cmp(const void *a, const void *b)
{
    return strcmp(((const header_t *)a)->name, ((const header_t *)b)->name);
}

/* The headers to sign, sorted by name; NULL when an extra header is not "name: value". */
static apr_array_header_t *signed_headers(apr_pool_t *p, const fl_sigv4_request_t *req,
                                          const fl_sigv4_creds_t *creds, const char *payload)
{
    apr_array_header_t *hs = apr_array_make(p, 8, sizeof(header_t));
    int i;
    add_header(hs, p, "host", req->host);
    add_header(hs, p, "x-amz-date", req->amz_date);
    if (req->sign_content_sha256) add_header(hs, p, "x-amz-content-sha256", payload);
    if (creds->session_token) add_header(hs, p, "x-amz-security-token", creds->session_token);
    for (i = 0; req->extra && i < req->extra->nelts; i++) {
        const char *line = APR_ARRAY_IDX(req->extra, i, const char *);
        const char *colon = strchr(line, ':');
        if (!colon || colon == line) return NULL;
        add_header(hs, p, apr_pstrmemdup(p, line, (apr_size_t)(colon - line)), colon + 1);
    }
    qsort(hs->elts, (size_t)hs->nelts, sizeof(header_t), header_cmp);
    return hs;
}

static const char *canonical_request(apr_pool_t *p, const fl_sigv4_request_t *req,
                                     const apr_array_header_t *hs, const char *payload,
                                     const char **psigned)
{
    const char *canon = "", *names = "";
    const char *uri = req->encode_path_twice ? fl_sigv4_uri_encode(p, req->path, 1) : req->path;
    int i;
    for (i = 0; i < hs->nelts; i++) {
        const header_t *h = &APR_ARRAY_IDX(hs, i, header_t);
        canon = apr_pstrcat(p, canon, h->name, ":", h->value, "\n", NULL);
        names = apr_pstrcat(p, names, i ? ";" : "", h->name, NULL);
    }
    *psigned = names;
    return apr_pstrcat(p, req->method, "\n", *uri ? uri : "/", "\n", req->query ? req->query : "",
                       "\n", canon, "\n", names, "\n", payload, NULL);
}

static int valid_request(const fl_sigv4_request_t *req, const fl_sigv4_creds_t *creds)
{
    return req->method && req->host && req->path && req->region && req->service
           && req->amz_date && strlen(req->amz_date) == FL_SIGV4_DATE_LEN
           && creds->access_key && creds->secret_key;
}

apr_status_t fl_sigv4_sign(apr_pool_t *p, const fl_sigv4_request_t *req,
                           const fl_sigv4_creds_t *creds, fl_sigv4_result_t *out)
{
    char body_hex[FL_SHA256_HEX_LEN + 1], creq_hex[FL_SHA256_HEX_LEN + 1];
    unsigned char key[32], sig[32];
    const char *date8, *scope, *names;
    apr_array_header_t *hs;

    memset(out, 0, sizeof(*out));
    if (!valid_request(req, creds)) return APR_EINVAL;
    fl_sha256_hex(req->body ? req->body : "", req->body ? req->body_len : 0, body_hex);
    if (!(hs = signed_headers(p, req, creds, body_hex))) return APR_EINVAL;
    out->payload_hash = apr_pstrdup(p, body_hex);
    out->canonical_request = canonical_request(p, req, hs, out->payload_hash, &names);
    fl_sha256_hex(out->canonical_request, strlen(out->canonical_request), creq_hex);
    date8 = apr_pstrmemdup(p, req->amz_date, 8);
    scope = apr_pstrcat(p, date8, "/", req->region, "/", req->service, "/aws4_request", NULL);
    out->string_to_sign = apr_pstrcat(p, ALGORITHM "\n", req->amz_date, "\n", scope, "\n",
                                      creq_hex, NULL);
    fl_sigv4_signing_key(creds->secret_key, date8, req->region, req->service, key);
    hmac(key, sizeof(key), out->string_to_sign, sig);
    OPENSSL_cleanse(key, sizeof(key));
    out->signature = hex(p, sig, sizeof(sig));
    out->authorization = apr_pstrcat(p, ALGORITHM " Credential=", creds->access_key, "/", scope,
                                     ", SignedHeaders=", names, ", Signature=", out->signature,
                                     NULL);
    out->headers = apr_array_make(p, 3, sizeof(const char *));
    APR_ARRAY_PUSH(out->headers, const char *) = apr_pstrcat(p, "X-Amz-Date: ", req->amz_date, NULL);
    if (req->sign_content_sha256) {
        APR_ARRAY_PUSH(out->headers, const char *) =
            apr_pstrcat(p, "X-Amz-Content-Sha256: ", out->payload_hash, NULL);
    }
    if (creds->session_token) {
        APR_ARRAY_PUSH(out->headers, const char *) =
            apr_pstrcat(p, "X-Amz-Security-Token: ", creds->session_token, NULL);
    }
    return APR_SUCCESS;
}
