/* A growable byte buffer on the C heap with a hard size cap. Heap, not pool: a pool never gives
 * memory back, and a long stream would keep every discarded generation of the buffer. */
#ifndef FL_BUF_H
#define FL_BUF_H

#include <apr_pools.h>

typedef struct fl_buf_t {
    char *data;                  /* NUL-terminated after every append */
    apr_size_t len, cap, max;
} fl_buf_t;

/* Makes a buffer whose memory is freed with p. */
fl_buf_t *fl_buf_create(apr_pool_t *p, apr_size_t max);

/* APR_ENOSPC past the cap, APR_ENOMEM when the heap says no. */
apr_status_t fl_buf_append(fl_buf_t *b, const char *s, apr_size_t n);

void fl_buf_reset(fl_buf_t *b);

#endif
