/* The one way out to providers: a streaming HTTP client over libcurl. Easy handles are kept per
 * process and handed to one thread at a time, so connections to a provider are reused without
 * sharing a handle between threads. */
#ifndef FL_HTTP_H
#define FL_HTTP_H

#include <apr_pools.h>
#include <apr_tables.h>

typedef struct fl_http_t fl_http_t;

/* Called once when the response head is complete. */
typedef apr_status_t fl_http_head_cb(void *baton, int status, apr_table_t *headers);
/* Called for each piece of the body as it arrives; a non-success return stops the transfer. */
typedef apr_status_t fl_http_data_cb(void *baton, const char *buf, apr_size_t len);
/* Polled while waiting; nonzero stops the transfer (the client went away). */
typedef int fl_http_abort_cb(void *baton);

typedef struct fl_http_request_t {
    const char *url;
    const char *body;
    apr_size_t body_len;
    const apr_array_header_t *headers; /* extra "Name: value" strings (credentials...) */
    const char *accept;          /* Accept header */
    const char *content_type;    /* of the body; NULL = application/json */
    long connect_timeout_ms;
    long timeout_ms;             /* whole exchange; 0 = none (streams) */
    long idle_timeout_ms;        /* no byte for this long = stall */
    fl_http_head_cb *on_head;
    fl_http_data_cb *on_data;
    fl_http_abort_cb *should_abort;
    void *baton;
} fl_http_request_t;

typedef struct fl_http_response_t {
    int status;                  /* 0 when no response head arrived */
    apr_table_t *headers;
    double first_byte_ms, total_ms;
    const char *error;           /* what went wrong, for logs and traces */
    apr_status_t cb_status;      /* what a callback returned when it stopped the transfer */
} fl_http_response_t;

/* Once per process, before any thread starts. */
apr_status_t fl_http_global_init(void);

apr_status_t fl_http_create(fl_http_t **ph, apr_pool_t *p);

/* APR_SUCCESS: a whole response was received (any HTTP status).
 * APR_TIMEUP: timeout or stall.  APR_ECONNREFUSED: could not connect.
 * APR_ECONNABORTED: should_abort asked to stop.  APR_EOF: the upstream cut the response short.
 * A callback's own status when it stopped the transfer.  APR_EGENERAL otherwise. */
apr_status_t fl_http_perform(fl_http_t *h, apr_pool_t *p, const fl_http_request_t *req,
                             fl_http_response_t *resp);

#endif
