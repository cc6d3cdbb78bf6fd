#include <stdarg.h>
#include <stdlib.h>
#include <apr_strings.h>
#include <jansson.h>

#include "fl_error.h"
#include "fl_json.h"

static fl_error_t *error_vmake(apr_pool_t *p, int status, const char *type, const char *code,
                               const char *param, const char *fmt, va_list ap)
{
    fl_error_t *e = apr_pcalloc(p, sizeof(*e));
    e->status = status;
    e->type = type;
    e->code = code;
    e->param = param;
    e->message = apr_pvsprintf(p, fmt, ap);
    return e;
}

fl_error_t *fl_error_make(apr_pool_t *p, int status, const char *type, const char *code,
                          const char *param, const char *fmt, ...)
{
    fl_error_t *e;
    va_list ap;
    va_start(ap, fmt);
    e = error_vmake(p, status, type, code, param, fmt, ap);
    va_end(ap);
    return e;
}

fl_error_t *fl_error_invalid(apr_pool_t *p, const char *code, const char *param,
                             const char *fmt, ...)
{
    fl_error_t *e;
    va_list ap;
    va_start(ap, fmt);
    e = error_vmake(p, 400, "invalid_request_error", code, param, fmt, ap);
    va_end(ap);
    return e;
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

char *fl_error_json(apr_pool_t *p, const fl_error_t *e)
{
    json_t *inner = json_object(), *outer = json_object();
    json_object_set_new(inner, "message", str_or_null(e->message));
    json_object_set_new(inner, "type", str_or_null(e->type));
    json_object_set_new(inner, "param", str_or_null(e->param));
    json_object_set_new(inner, "code", str_or_null(e->code));
    json_object_set_new(outer, "error", inner);
    return fl_json_dump(p, outer, 1);
}
