/* OpenAI's own wire format: the request passes through with the provider's model name, answers
 * and streams pass through with their usage taken (and the usage chunk dropped when the client
 * did not ask for it). Azure OpenAI and the OpenAI-compatible profiles reuse these pieces with
 * their quirks (fl_adapter_openai.h). */
#include <string.h>
#include <apr_strings.h>

#include "fl_adapter_openai.h"
#include "fl_chat_build.h"
#include "fl_json.h"
#include "fl_sse.h"

#define MAX_SSE_EVENT (8 * 1024 * 1024)

static const char *openai_check(const fl_provider_t *pv, apr_pool_t *p)
{
    return pv->base_url || pv->base_url_env ? NULL : "needs base_url=";
}

const char *fl_adapter_openai_configure(fl_provider_t *pv, apr_pool_t *p)
{
    if (!pv->resolved_base) return "needs base_url=";
    pv->chat_url = apr_pstrcat(p, pv->resolved_base, "/chat/completions", NULL);
    return NULL;
}

fl_error_t *fl_adapter_openai_body(const fl_call_t *call, fl_openai_fix_fn *fix,
                                   fl_upstream_t *up)
{
    apr_size_t len;
    const char *text = fl_openai_upstream_body(call->pool, call->cr, call->model->name, &len);
    json_t *body;
    fl_error_t *e;

    if (fix) {
        body = fl_json_pool_own(call->pool, json_loadb(text, len, 0, NULL));
        if (!json_is_object(body)) {
            return fl_error_make(call->pool, 500, "server_error", "internal_error", NULL,
                                 "the upstream body could not be rebuilt");
        }
        if ((e = fix(call->pool, body, call->model->name))) return e;
        text = fl_json_dump(call->pool, body, 0);
        len = strlen(text);
    }
    up->body = text;
    up->body_len = len;
    up->accept = call->cr->stream ? "text/event-stream" : "application/json";
    return NULL;
}

fl_error_t *fl_adapter_openai_prepare(const fl_call_t *call, fl_openai_fix_fn *fix,
                                      fl_upstream_t *up)
{
    const fl_provider_t *pv = call->provider;
    fl_error_t *e = fl_adapter_openai_body(call, fix, up);
    if (e) return e;
    up->url = pv->chat_url;
    if (pv->api_key) {
        fl_upstream_header(up, "Authorization",
                           apr_pstrcat(call->pool, "Bearer ", pv->api_key, NULL));
    }
    return NULL;
}

static fl_error_t *openai_prepare(const fl_call_t *call, fl_upstream_t *up)
{
    return fl_adapter_openai_prepare(call, NULL, up);
}

fl_error_t *fl_adapter_openai_response(const fl_call_t *call, const char *body, apr_size_t len,
                                       const char **out, apr_size_t *outlen, fl_usage_t *usage)
{
    fl_error_t *e = fl_openai_parse_response(call->pool, body, len, usage);
    *out = body;
    *outlen = len;
    return e;
}

struct fl_stream_t {
    fl_sse_t *sse;
    apr_pool_t *chunk_pool;      /* cleared for every event: memory stays flat on long streams */
    fl_usage_t *usage;
    int strip_usage;             /* the client did not ask for the usage chunk */
    int usage_sent;              /* a chunk with top-level usage went to the client */
    const char *model;
    const fl_openai_stream_quirks_t *quirks;
    fl_emit_cb *emit;
    void *baton;
};

/* Azure's prompt_filter_results chunk: "choices": [] and no usage. Only chunks that name
 * prompt_filter_results are parsed for it, so ordinary chunks cost nothing more. */
static int is_filter_chunk(const char *data, apr_size_t len)
{
    json_t *root, *choices;
    int drop;
    if (!memmem(data, len, "prompt_filter_results", 21)) return 0;
    root = json_loadb(data, len, 0, NULL);
    choices = json_object_get(root, "choices");
    drop = json_is_object(root) && !json_object_get(root, "error")
           && !json_is_object(json_object_get(root, "usage"))
           && (!choices || json_is_null(choices)
               || (json_is_array(choices) && json_array_size(choices) == 0));
    json_decref(root);
    return drop;
}

/* For a provider that reports usage in its own fields too: got is the chunk's OpenAI usage.
 * Before [DONE], the usage chunk the client asked for is made if no chunk it got carried one. */
static apr_status_t usage_elsewhere(fl_stream_t *s, fl_chunk_kind_e kind, const fl_usage_t *got,
                                    const char *data, apr_size_t len)
{
    if (got->prompt >= 0 || got->completion >= 0) {
        *s->usage = *got;
        if (kind == FL_CHUNK_FORWARD) s->usage_sent = 1;
    }
    if (kind == FL_CHUNK_DONE && !s->strip_usage && !s->usage_sent && s->usage->prompt >= 0) {
        fl_oai_stream_t st;
        const char *u;
        apr_status_t rv;
        fl_oai_stream_init(&st, s->chunk_pool, s->model, 1);
        u = fl_oai_usage_chunk(s->chunk_pool, &st, s->usage);
        if (u && (rv = s->emit(s->baton, FL_CHUNK_FORWARD, u, strlen(u))) != APR_SUCCESS) {
            return rv;
        }
    }
    if (kind == FL_CHUNK_FORWARD || kind == FL_CHUNK_DROP) {
        s->quirks->usage_elsewhere(s->usage, data, len);
    }
    return APR_SUCCESS;
}

static apr_status_t openai_event(void *baton, const char *event, const char *data,
                                 apr_size_t len)
{
    fl_stream_t *s = baton;
    const char *out;
    apr_size_t outlen;
    fl_chunk_kind_e kind;
    fl_usage_t got, *into = s->usage;
    apr_status_t rv;
    apr_pool_clear(s->chunk_pool);
    if (s->quirks->drop_filter_chunks && is_filter_chunk(data, len)) return APR_SUCCESS;
    if (s->quirks->usage_elsewhere) {
        /* OpenAI's top-level usage lands in got first, so a usage chunk the client received is
         * told apart from usage found in a provider's own field */
        fl_usage_clear(&got);
        into = &got;
    }
    kind = fl_openai_stream_chunk(s->chunk_pool, data, len, s->strip_usage, into, &out, &outlen);
    if (s->quirks->usage_elsewhere
        && (rv = usage_elsewhere(s, kind, &got, data, len)) != APR_SUCCESS) {
        return rv;
    }
    return kind == FL_CHUNK_DROP ? APR_SUCCESS : s->emit(s->baton, kind, out, outlen);
}

apr_status_t fl_adapter_openai_stream_open(const fl_call_t *call, fl_usage_t *usage,
                                           fl_emit_cb *emit, void *baton,
                                           const fl_openai_stream_quirks_t *quirks,
                                           fl_stream_t **ps)
{
    fl_stream_t *s = apr_pcalloc(call->pool, sizeof(*s));
    apr_status_t rv = apr_pool_create(&s->chunk_pool, call->pool);
    if (rv != APR_SUCCESS) return rv;
    s->usage = usage;
    s->strip_usage = !call->cr->include_usage;
    s->model = call->model->name;
    s->quirks = quirks;
    s->emit = emit;
    s->baton = baton;
    *ps = s;
    return fl_sse_create(&s->sse, call->pool, MAX_SSE_EVENT, openai_event, s);
}

static apr_status_t openai_stream_open(const fl_call_t *call, fl_usage_t *usage,
                                       fl_emit_cb *emit, void *baton, fl_stream_t **ps)
{
    static const fl_openai_stream_quirks_t none = { 0 };
    return fl_adapter_openai_stream_open(call, usage, emit, baton, &none, ps);
}

apr_status_t fl_adapter_openai_stream_feed(fl_stream_t *s, const char *buf, apr_size_t len)
{
    return fl_sse_feed(s->sse, buf, len);
}

fl_error_t *fl_adapter_openai_error(const fl_call_t *call, int status, apr_table_t *headers,
                                    const char *body, apr_size_t len)
{
    return fl_openai_map_upstream_error(call->pool, call->provider->name, status, headers, body,
                                        len);
}

const fl_adapter_t fl_adapter_openai = {
    .type = "openai", .vision = 1,
    .check = openai_check, .configure = fl_adapter_openai_configure,
    .prepare = openai_prepare, .response = fl_adapter_openai_response,
    .error = fl_adapter_openai_error,
    .stream_open = openai_stream_open, .stream_feed = fl_adapter_openai_stream_feed,
};
