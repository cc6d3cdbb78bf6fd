/* Azure OpenAI: OpenAI's Chat Completions behind a per-deployment URL. The model a client names
 * (az/<name>) is the deployment: POST <base>/openai/deployments/<name>/chat/completions
 * ?api-version=<v>, the key in an api-key header. Answers are OpenAI's with Azure's content
 * filter annotations, which pass; streams may open with chunks that have no choice and carry
 * prompt_filter_results, which are dropped because clients index choices[0]. */
#include <string.h>
#include <apr_strings.h>
#include <apr_lib.h>

#include "fl_adapter_openai.h"

static const char *const azure_options[] = { "api_version", NULL };

/* What configure resolved: the URL around the deployment name. */
typedef struct azure_conf_t {
    const char *prefix;          /* <base>/openai/deployments/ */
    const char *suffix;          /* /chat/completions?api-version=<v> */
} azure_conf_t;

/* api-version values are dates with an optional -preview: letters, digits, '-', '.' keep the
 * query string free of anything that would need escaping. */
static int valid_api_version(const char *v)
{
    if (!v || !*v) return 0;
    for (; *v; v++) {
        if (!apr_isalnum(*v) && *v != '-' && *v != '.') return 0;
    }
    return 1;
}

static const char *azure_check(const fl_provider_t *pv, apr_pool_t *p)
{
    const char *v = apr_table_get(pv->opts, "api_version");
    if (!pv->base_url && !pv->base_url_env) {
        return "needs base_url=https://RESOURCE.openai.azure.com (or base_url_env=)";
    }
    if (!v) return "needs api_version= (e.g. api_version=2024-10-21)";
    if (!valid_api_version(v)) {
        return apr_psprintf(p, "bad option api_version=%s (letters, digits, '-', '.')", v);
    }
    return NULL;
}

static const char *azure_configure(fl_provider_t *pv, apr_pool_t *p)
{
    azure_conf_t *ac = apr_pcalloc(p, sizeof(*ac));
    const char *base = pv->resolved_base, *err;
    apr_size_t n;
    if ((err = azure_check(pv, p))) return err;
    if (!base || !*base) {
        return apr_psprintf(p, "needs base_url= (base_url_env=%s is not set)",
                            pv->base_url_env ? pv->base_url_env : "");
    }
    /* Both the resource URL and one already ending in /openai are accepted. */
    n = strlen(base);
    if (n >= 7 && !strcmp(base + n - 7, "/openai")) base = apr_pstrmemdup(p, base, n - 7);
    ac->prefix = apr_pstrcat(p, base, "/openai/deployments/", NULL);
    ac->suffix = apr_pstrcat(p, "/chat/completions?api-version=",
                             apr_table_get(pv->opts, "api_version"), NULL);
    pv->adapter_conf = ac;
    return NULL;
}

/* A deployment name goes into the path: anything but unreserved characters is escaped. */
static const char *path_segment(apr_pool_t *p, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = apr_palloc(p, strlen(s) * 3 + 1), *o = out;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (apr_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            *o++ = (char)c;
        }
        else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return out;
}

static fl_error_t *azure_prepare(const fl_call_t *call, fl_upstream_t *up)
{
    const fl_provider_t *pv = call->provider;
    const azure_conf_t *ac = pv->adapter_conf;
    up->url = apr_pstrcat(call->pool, ac->prefix, path_segment(call->pool, call->model->name),
                          ac->suffix, NULL);
    if (pv->api_key) fl_upstream_header(up, "api-key", pv->api_key);
    /* Azure ignores "model" (the URL names the deployment); it is sent as the deployment name so
     * the body stays a valid OpenAI request. */
    return fl_adapter_openai_body(call, NULL, up);
}

static apr_status_t azure_stream_open(const fl_call_t *call, fl_usage_t *usage,
                                      fl_emit_cb *emit, void *baton, fl_stream_t **ps)
{
    static const fl_openai_stream_quirks_t filter_chunks = { .drop_filter_chunks = 1 };
    return fl_adapter_openai_stream_open(call, usage, emit, baton, &filter_chunks, ps);
}

static int all_digits(const char *s)
{
    if (!s || !*s) return 0;
    for (; *s; s++) {
        if (!apr_isdigit(*s)) return 0;
    }
    return 1;
}

/* OpenAI's mapping, with Azure's quirks: its throttling answers say "code": "429" and may give
 * the wait only in x-ms-retry-after-ms. A content-filter refusal (400, code content_filter)
 * passes as the client's 400. */
static fl_error_t *azure_error(const fl_call_t *call, int status, apr_table_t *headers,
                               const char *body, apr_size_t len)
{
    fl_error_t *e = fl_adapter_openai_error(call, status, headers, body, len);
    if (e->status == 429 && (!e->code || all_digits(e->code))) e->code = "rate_limit_exceeded";
    if (headers && !e->retry_after_ms) {
        const char *ms = apr_table_get(headers, "x-ms-retry-after-ms");
        if (ms) e->retry_after_ms = apr_pstrdup(call->pool, ms);
    }
    return e;
}

const fl_adapter_t fl_adapter_azure = {
    .type = "azure", .vision = 1, .options = azure_options,
    .check = azure_check, .configure = azure_configure,
    .prepare = azure_prepare, .response = fl_adapter_openai_response, .error = azure_error,
    .stream_open = azure_stream_open, .stream_feed = fl_adapter_openai_stream_feed,
};
