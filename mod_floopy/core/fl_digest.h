/* A running SHA-256 over bytes as they pass (the export trailer's digest). */
#ifndef FL_DIGEST_H
#define FL_DIGEST_H

#include <apr_pools.h>

typedef struct fl_digest_t fl_digest_t;

/* The digest's OpenSSL context is freed with p. */
apr_status_t fl_digest_create(fl_digest_t **pd, apr_pool_t *p);
void fl_digest_update(fl_digest_t *d, const void *data, apr_size_t len);
/* The lowercase hex digest of everything fed so far; the digest cannot be fed after this. */
const char *fl_digest_hex(fl_digest_t *d, apr_pool_t *p);

#endif
