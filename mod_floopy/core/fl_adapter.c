#include <apr_strings.h>
#include <apr_general.h>

#include "fl_adapter.h"

extern const fl_adapter_t fl_adapter_openai;

static const fl_adapter_t *const adapters[] = {
    &fl_adapter_openai,
};

const fl_adapter_t *fl_adapter_find(const char *type)
{
    apr_size_t i;
    for (i = 0; i < sizeof(adapters) / sizeof(adapters[0]); i++) {
        if (!strcmp(adapters[i]->type, type)) return adapters[i];
    }
    return NULL;
}

const char *fl_adapter_types(apr_pool_t *p)
{
    const char *s = "";
    apr_size_t i;
    for (i = 0; i < sizeof(adapters) / sizeof(adapters[0]); i++) {
        s = apr_pstrcat(p, s, i ? ", " : "", adapters[i]->type, NULL);
    }
    return s;
}

fl_upstream_t *fl_upstream_make(apr_pool_t *p)
{
    fl_upstream_t *up = apr_pcalloc(p, sizeof(*up));
    up->headers = apr_array_make(p, 6, sizeof(const char *));
    up->accept = "application/json";
    return up;
}

void fl_upstream_header(fl_upstream_t *up, const char *name, const char *value)
{
    APR_ARRAY_PUSH(up->headers, const char *) =
        apr_pstrcat(up->headers->pool, name, ": ", value, NULL);
}

const char *fl_completion_id(apr_pool_t *p)
{
    static const char ALNUM[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char raw[29];
    char *id = apr_palloc(p, 9 + 29 + 1);
    int i;
    memcpy(id, "chatcmpl-", 9);
    apr_generate_random_bytes(raw, sizeof(raw));
    for (i = 0; i < 29; i++) id[9 + i] = ALNUM[raw[i] % 62];
    id[38] = '\0';
    return id;
}
