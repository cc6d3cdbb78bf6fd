/* AWS Signature Version 4 (header form) on OpenSSL: canonical request, string to sign, signing
 * key, Authorization header. Written for Bedrock's REST-JSON calls, tested against AWS's
 * published suite (get-vanilla, post-vanilla) and against the AWS SDK's own signatures. */
#ifndef FL_SIGV4_H
#define FL_SIGV4_H

#include <apr_pools.h>
#include <apr_tables.h>

#define FL_SIGV4_DATE_LEN 16        /* "20150830T123600Z" */

typedef struct fl_sigv4_creds_t {
    const char *access_key;
    const char *secret_key;
    const char *session_token;      /* temporary credentials; NULL for long-term keys */
} fl_sigv4_creds_t;

/* One request to sign. Headers beyond host, x-amz-date, x-amz-content-sha256 and
 * x-amz-security-token (which the signer adds itself) come in extra as "name: value" strings. */
typedef struct fl_sigv4_request_t {
    const char *method;
    const char *host;               /* as the Host header will carry it (with a port if not default) */
    const char *path;               /* as it goes on the wire, already percent-encoded once */
    const char *query;              /* canonical query string ("" for none) */
    const char *body;
    apr_size_t body_len;
    const char *region;
    const char *service;
    const char *amz_date;           /* "YYYYMMDDTHHMMSSZ" */
    int encode_path_twice;          /* every service but S3: the canonical URI encodes the wire
                                     * path once more (%3A becomes %253A) */
    int sign_content_sha256;        /* add and sign x-amz-content-sha256 */
    const apr_array_header_t *extra; /* "name: value" strings to sign too, may be NULL */
} fl_sigv4_request_t;

typedef struct fl_sigv4_result_t {
    const char *canonical_request;
    const char *string_to_sign;
    const char *signature;          /* 64 hex digits */
    const char *authorization;      /* the Authorization header's value */
    const char *payload_hash;       /* hex SHA-256 of the body (x-amz-content-sha256) */
    apr_array_header_t *headers;    /* "Name: value" strings to send: x-amz-date, and
                                     * x-amz-content-sha256 / x-amz-security-token when used */
} fl_sigv4_result_t;

/* "20150830T123600Z" for t. */
void fl_sigv4_amz_date(apr_time_t t, char out[FL_SIGV4_DATE_LEN + 1]);

/* Percent-encodes all but RFC 3986's unreserved characters (A-Z a-z 0-9 - _ . ~), and '/'
 * too unless keep_slash: the encoding AWS asks for in paths and query strings. */
const char *fl_sigv4_uri_encode(apr_pool_t *p, const char *s, int keep_slash);

/* The signing key: HMAC chain "AWS4"+secret -> date -> region -> service -> "aws4_request". */
void fl_sigv4_signing_key(const char *secret, const char *date8, const char *region,
                          const char *service, unsigned char key[32]);

/* Signs the request; APR_EINVAL when a field is missing or malformed. */
apr_status_t fl_sigv4_sign(apr_pool_t *p, const fl_sigv4_request_t *req,
                           const fl_sigv4_creds_t *creds, fl_sigv4_result_t *out);

#endif
