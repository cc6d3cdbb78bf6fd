/* The gateway's error: an HTTP status and OpenAI's error object {message, type, param, code}. */
#ifndef FL_ERROR_H
#define FL_ERROR_H

#include <apr_pools.h>

typedef struct fl_error_t {
    int status;              /* HTTP status to answer with */
    const char *type;        /* e.g. invalid_request_error */
    const char *code;        /* machine-readable, may be NULL */
    const char *param;       /* the offending field, may be NULL */
    const char *message;     /* for humans */
    const char *retry_after; /* kept from an upstream 429/503, may be NULL */
    const char *retry_after_ms;
} fl_error_t;

fl_error_t *fl_error_make(apr_pool_t *p, int status, const char *type, const char *code,
                          const char *param, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Shorthands for the kinds the contract names (docs/design.md, "Errors"). */
fl_error_t *fl_error_invalid(apr_pool_t *p, const char *code, const char *param,
                             const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* {"error":{"message","type","param","code"}}, serialised. */
char *fl_error_json(apr_pool_t *p, const fl_error_t *e);

#endif
