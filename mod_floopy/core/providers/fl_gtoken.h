/* Google OAuth2 access tokens for a service account: the key file read and checked at start-up,
 * and a per-process cache that exchanges a signed JWT for a token (RFC 7523) when the one it
 * holds is missing or about to expire. Threads share the cache; one at a time refreshes. */
#ifndef FL_GTOKEN_H
#define FL_GTOKEN_H

#include <apr_pools.h>

#include "fl_error.h"
#include "fl_http.h"

#define FL_GOOGLE_SCOPE "https://www.googleapis.com/auth/cloud-platform"

typedef struct fl_gsa_t {
    const char *client_email;
    const char *private_key;     /* PEM; never logged */
    const char *private_key_id;  /* the JWT's kid, may be NULL */
    const char *token_uri;       /* where the JWT is exchanged (token_url= overrides) */
} fl_gsa_t;

/* Reads a service-account JSON key file; an error text naming what is wrong, or NULL. */
const char *fl_gsa_load(apr_pool_t *p, const char *path, fl_gsa_t **psa);

/* The signed assertion for the grant: iss, scope, aud = token_uri, iat = now, exp = now+3600. */
const char *fl_gsa_assertion(apr_pool_t *p, const fl_gsa_t *sa, apr_time_t now,
                             const char **err);

/* The grant's form body. */
const char *fl_gsa_form(apr_pool_t *p, const char *assertion);

/* Reads the token endpoint's answer: the token and its lifetime in seconds. */
const char *fl_gsa_parse_token(apr_pool_t *p, const char *body, apr_size_t len,
                               const char **token, apr_int64_t *expires_in);

typedef struct fl_gtoken_t fl_gtoken_t;

/* A cache for one service account, living as long as p (the child's pool). */
apr_status_t fl_gtoken_create(fl_gtoken_t **pt, apr_pool_t *p, const fl_gsa_t *sa);

/* A token good for a while yet, copied into p; fetched with http when needed. A 502/504 error
 * when the token endpoint fails. */
fl_error_t *fl_gtoken_get(fl_gtoken_t *t, fl_http_t *http, apr_pool_t *p, apr_time_t now,
                          long connect_ms, long timeout_ms, const char *provider,
                          const char **token);

#endif
