#include <string.h>
#include <apr_strings.h>
#include <apr_general.h>

#include "fl_adapter.h"

extern const fl_adapter_t fl_adapter_openai, fl_adapter_anthropic, fl_adapter_gemini,
    fl_adapter_vertex, fl_adapter_bedrock, fl_adapter_azure, fl_adapter_cohere;
extern const fl_adapter_t *const fl_adapters_compat[]; /* NULL-terminated */

static const fl_adapter_t *const natives[] = {
    &fl_adapter_openai, &fl_adapter_anthropic, &fl_adapter_gemini, &fl_adapter_vertex,
    &fl_adapter_bedrock, &fl_adapter_azure, &fl_adapter_cohere, NULL
};

static const fl_adapter_t *const *const tables[] = { natives, fl_adapters_compat };

const fl_adapter_t *fl_adapter_find(const char *type)
{
    apr_size_t t;
    const fl_adapter_t *const *a;
    for (t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
        for (a = tables[t]; *a; a++) {
            if (!strcmp((*a)->type, type)) return *a;
        }
    }
    return NULL;
}

const char *fl_adapter_types(apr_pool_t *p)
{
    const char *s = "";
    apr_size_t t;
    const fl_adapter_t *const *a;
    for (t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
        for (a = tables[t]; *a; a++) s = apr_pstrcat(p, s, *s ? ", " : "", (*a)->type, NULL);
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

void fl_upstream_request(const fl_upstream_t *up, const fl_provider_t *pv, int stream,
                         fl_http_request_t *req)
{
    memset(req, 0, sizeof(*req));
    req->url = up->url;
    req->headers = up->headers;
    req->body = up->body;
    req->body_len = up->body_len;
    req->accept = up->accept;
    req->content_type = up->content_type;
    req->connect_timeout_ms = pv->connect_timeout_ms;
    req->timeout_ms = stream ? 0 : pv->timeout_ms;
    req->idle_timeout_ms = pv->idle_timeout_ms;
}

fl_error_t *fl_call_prepare(const fl_call_t *call, fl_upstream_t *up)
{
    const fl_provider_t *pv = call->provider;
    if (call->cr->has_images && !pv->adapter->vision) {
        return fl_error_make(call->pool, 400, "invalid_request_error", "unsupported_content",
                             "messages", "provider %s (type=%s) cannot take image inputs",
                             pv->name, pv->type);
    }
    return pv->adapter->prepare(call, up);
}
