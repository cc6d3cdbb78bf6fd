/* An incremental Server-Sent Events parser (WHATWG rules): LF, CRLF or CR line ends, comments
 * skipped, multi-line data joined with LF, one optional space after the colon. Bytes arrive in
 * any split; each complete event is handed to a callback. Memory stays bounded by the largest
 * event, whatever the stream's length. */
#ifndef FL_SSE_H
#define FL_SSE_H

#include <apr_pools.h>

typedef struct fl_sse_t fl_sse_t;

/* event is "" when the event had no event: line; data is NUL-terminated. A non-success return
 * stops the parse and is handed back by fl_sse_feed. */
typedef apr_status_t fl_sse_event_cb(void *baton, const char *event, const char *data,
                                     apr_size_t data_len);

apr_status_t fl_sse_create(fl_sse_t **psse, apr_pool_t *p, apr_size_t max_event,
                           fl_sse_event_cb *cb, void *baton);

/* APR_ENOSPC when an event grows past max_event. */
apr_status_t fl_sse_feed(fl_sse_t *sse, const char *buf, apr_size_t len);

/* 1 when bytes of an unfinished event are pending (a stream cut mid-event). */
int fl_sse_pending(const fl_sse_t *sse);

#endif
