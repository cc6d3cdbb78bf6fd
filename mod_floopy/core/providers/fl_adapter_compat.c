/* OpenAI-compatible providers (DeepSeek, Mistral, xAI, Groq, Cerebras, SambaNova, Together AI,
 * Fireworks AI, Perplexity, AI21, DeepInfra, Nebius, Novita): OpenAI's wire format with a
 * profile each - a default base URL, whether images are taken, and the provider's documented
 * quirks applied to the request before it leaves (parameters it rejects dropped or converted,
 * tool-call ids it refuses rewritten). Answers, streams and errors are read by the OpenAI
 * adapter's own pieces (fl_adapter_openai.h), with the usage the providers put elsewhere
 * (Groq's x_groq.usage, DeepSeek's cache-hit count) taken too. Every quirk below names where it
 * is documented; a profile with no fix function has none documented (docs/providers.md lists
 * them). */
#include <string.h>
#include <apr_strings.h>

#include "fl_adapter_openai.h"
#include "fl_json.h"
#include "fl_chat_build.h"

typedef struct compat_profile_t {
    fl_adapter_t adapter;        /* first, so the catalog's pv->adapter leads back here */
    const char *default_base;    /* used when neither base_url nor base_url_env gives one */
    fl_openai_fix_fn *fix;       /* NULL: no request quirk documented */
} compat_profile_t;

static const compat_profile_t *profile_of(const fl_provider_t *pv)
{
    return (const compat_profile_t *)pv->adapter;
}

/* ------------------------------------------------------------------ request helpers */

static void drop_keys(json_t *body, const char *const *keys)
{
    for (; *keys; keys++) json_object_del(body, *keys);
}

/* Moves from -> to unless the client already set to. */
static void rename_key(json_t *body, const char *from, const char *to)
{
    json_t *v = json_object_get(body, from);
    if (!v) return;
    if (!json_object_get(body, to)) json_object_set(body, to, v);
    json_object_del(body, from);
}

/* The body's messages, deep-copied first: the parsed upstream body shares nothing with the
 * client's request, but a fix must not care how it was built. */
static json_t *own_messages(json_t *body)
{
    json_t *m = json_object_get(body, "messages");
    if (!json_is_array(m)) return NULL;
    m = json_deep_copy(m);
    json_object_set_new(body, "messages", m);
    return m;
}

static int content_has_image(const json_t *content)
{
    size_t i;
    json_t *part;
    if (!json_is_array(content)) return 0;
    json_array_foreach(content, i, part) {
        const char *t = fl_json_str(part, "type", "");
        if (!strcmp(t, "image_url") || !strcmp(t, "input_image")) return 1;
    }
    return 0;
}

static int has_images(const json_t *root)
{
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(root, "messages"), i, m) {
        if (content_has_image(json_object_get(m, "content"))) return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ the quirks */

/* DeepSeek: "logprobs, top_logprobs are not supported by deepseek-reasoner; setting them
 * returns an error" (temperature, top_p and the penalties are accepted and ignored)
 * [https://api-docs.deepseek.com/guides/reasoning_model, "API Parameters"]. */
static fl_error_t *deepseek_fix(apr_pool_t *p, json_t *body, const char *model)
{
    static const char *const rejected[] = { "logprobs", "top_logprobs", NULL };
    (void)p;
    if (!strncmp(model, "deepseek-reasoner", 17)) drop_keys(body, rejected);
    return NULL;
}

/* Mistral's tool-call ids: exactly nine of a-z, A-Z, 0-9; anything else is refused with "Tool
 * call id was call_0fypS1hVX but must be a-z, A-Z, 0-9, with a length of 9." (the API's own
 * error text, quoted in https://github.com/jackmpcollins/magentic/issues/276). */
static int mistral_id_ok(const char *id)
{
    int i;
    for (i = 0; i < 9; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) {
            return 0;
        }
    }
    return id[9] == '\0';
}

/* A nine-character id derived from the original (FNV-1a, base 62), so the same id maps the same
 * way in the assistant's tool_calls, in the tool message and in every later request. */
static const char *mistral_id(apr_pool_t *p, const char *id)
{
    static const char ALNUM[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    apr_uint64_t h = APR_UINT64_C(14695981039346656037);
    char *out;
    int i;
    if (mistral_id_ok(id)) return id;
    for (; *id; id++) {
        h ^= (unsigned char)*id;
        h *= APR_UINT64_C(1099511628211);
    }
    out = apr_palloc(p, 10);
    for (i = 0; i < 9; i++) {
        out[i] = ALNUM[h % 62];
        h /= 62;
    }
    out[9] = '\0';
    return out;
}

static void mistral_rewrite_ids(apr_pool_t *p, json_t *msgs)
{
    size_t i, j;
    json_t *m, *tc;
    json_array_foreach(msgs, i, m) {
        const char *tcid = fl_json_str(m, "tool_call_id", NULL);
        if (tcid) json_object_set_new(m, "tool_call_id", json_string(mistral_id(p, tcid)));
        json_array_foreach(json_object_get(m, "tool_calls"), j, tc) {
            const char *id = fl_json_str(tc, "id", NULL);
            if (id) json_object_set_new(tc, "id", json_string(mistral_id(p, id)));
        }
    }
}

/* Mistral: the ids above; the seed is called random_seed and the output limit max_tokens (the
 * chat request schema of Mistral's OpenAPI spec has random_seed and max_tokens and neither seed
 * nor max_completion_tokens [https://docs.rs/crate/mistral-openapi-client/latest/source/docs/
 * ChatCompletionRequest.md, generated from that spec]). */
static fl_error_t *mistral_fix(apr_pool_t *p, json_t *body, const char *model)
{
    json_t *msgs = own_messages(body);
    (void)model;
    rename_key(body, "seed", "random_seed");
    rename_key(body, "max_completion_tokens", "max_tokens");
    if (msgs) mistral_rewrite_ids(p, msgs);
    return NULL;
}

/* xAI: "presencePenalty, frequencyPenalty and stop parameters are not supported by reasoning
 * models. Adding them in the request would result in an error." and "reasoning_effort is not
 * supported by grok-3, grok-4 and grok-4-fast-reasoning ... Only grok-3-mini supports
 * reasoning_effort." [https://docs.x.ai/docs/guides/reasoning]. Reasoning models: grok-3-mini,
 * grok-4 other than its non-reasoning variants, grok-code. */
static int xai_reasoning(const char *model)
{
    if (strstr(model, "non-reasoning")) return 0;
    return strstr(model, "grok-3-mini") || strstr(model, "grok-4") || strstr(model, "grok-code");
}

static fl_error_t *xai_fix(apr_pool_t *p, json_t *body, const char *model)
{
    static const char *const rejected[] = { "presence_penalty", "frequency_penalty", "stop",
                                            NULL };
    (void)p;
    if (xai_reasoning(model)) drop_keys(body, rejected);
    if ((strstr(model, "grok-3") || strstr(model, "grok-4")) && !strstr(model, "grok-3-mini")) {
        json_object_del(body, "reasoning_effort");
    }
    return NULL;
}

/* Groq: "The following fields are currently not supported and will result in a 400 error if
 * they are supplied: logprobs, logit_bias, top_logprobs, messages[].name; if N is supplied, it
 * must be equal to 1" [https://console.groq.com/docs/openai]. n is dropped (one choice is what
 * Groq gives); a name is dropped from each message. */
static fl_error_t *groq_fix(apr_pool_t *p, json_t *body, const char *model)
{
    static const char *const rejected[] = { "logprobs", "logit_bias", "top_logprobs", "n",
                                            NULL };
    size_t i;
    json_t *m, *msgs;
    (void)p;
    (void)model;
    drop_keys(body, rejected);
    msgs = own_messages(body);
    json_array_foreach(msgs, i, m) json_object_del(m, "name");
    return NULL;
}

/* Cerebras: "These fields will result in a 400 error: frequency_penalty, logit_bias,
 * presence_penalty, parallel_tool_calls, service_tier" (Cerebras' OpenAI compatibility page,
 * https://inference-docs.cerebras.ai/resources/openai, as listed in
 * https://hexdocs.pm/req_llm/1.9.0/cerebras.html). */
static fl_error_t *cerebras_fix(apr_pool_t *p, json_t *body, const char *model)
{
    static const char *const rejected[] = { "frequency_penalty", "logit_bias",
                                            "presence_penalty", "parallel_tool_calls",
                                            "service_tier", NULL };
    (void)p;
    (void)model;
    drop_keys(body, rejected);
    return NULL;
}

/* Perplexity (Sonar): no function calling ("Perplexity does not support function calling",
 * https://docs.pipecat.ai/server/services/llm/perplexity; Bifrost drops tools and also
 * logit_bias, logprobs, top_logprobs [https://docs.getbifrost.ai/providers/supported-providers/
 * perplexity]). A request that offers tools gets a clear 400 rather than an answer that
 * silently ignores them. citations/search_results in answers pass through untouched. */
static fl_error_t *perplexity_fix(apr_pool_t *p, json_t *body, const char *model)
{
    static const char *const dropped[] = { "logit_bias", "logprobs", "top_logprobs",
                                           "tool_choice", "parallel_tool_calls", NULL };
    json_t *tools = json_object_get(body, "tools");
    (void)model;
    if (json_is_array(tools) && json_array_size(tools) > 0) {
        return fl_error_make(p, 400, "invalid_request_error", "unsupported_parameter", "tools",
                             "provider type perplexity does not support tools (function "
                             "calling)");
    }
    json_object_del(body, "tools");
    drop_keys(body, dropped);
    return NULL;
}

/* AI21 Jamba: message content is a string; response_format takes only {"type":"json_object"};
 * the output limit is max_tokens [https://docs.ai21.com/reference/jamba-1-6-api-ref]. Text
 * parts are joined into a string, a json_schema format becomes json_object, and
 * max_completion_tokens becomes max_tokens. (Images are refused before this: vision is off.) */
static fl_error_t *ai21_fix(apr_pool_t *p, json_t *body, const char *model)
{
    size_t i;
    json_t *m, *msgs, *rf = json_object_get(body, "response_format");
    (void)model;
    rename_key(body, "max_completion_tokens", "max_tokens");
    if (json_is_object(rf) && !strcmp(fl_json_str(rf, "type", ""), "json_schema")) {
        json_object_set_new(body, "response_format", json_pack("{s:s}", "type", "json_object"));
    }
    msgs = own_messages(body);
    json_array_foreach(msgs, i, m) {
        json_t *c = json_object_get(m, "content");
        if (json_is_array(c)) {
            json_object_set_new(m, "content", json_string(fl_oai_content_text(p, c)));
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------ the adapter */

static const char *compat_configure(fl_provider_t *pv, apr_pool_t *p)
{
    const compat_profile_t *prof = profile_of(pv);
    if (!pv->resolved_base) pv->resolved_base = prof->default_base;
    return fl_adapter_openai_configure(pv, p);
}

static fl_error_t *compat_prepare(const fl_call_t *call, fl_upstream_t *up)
{
    const fl_provider_t *pv = call->provider;
    const compat_profile_t *prof = profile_of(pv);

    if (!prof->adapter.vision && has_images(call->cr->root)) {
        return fl_error_make(call->pool, 400, "invalid_request_error", "unsupported_content",
                             "messages", "provider %s (type %s) does not take image input",
                             pv->name, pv->type);
    }
    return fl_adapter_openai_prepare(call, prof->fix, up);
}

/* Usage a provider reports outside OpenAI's fields: DeepSeek's prompt_cache_hit_tokens (its
 * cached prompt tokens [https://api-docs.deepseek.com/guides/kv_cache]) when no
 * prompt_tokens_details.cached_tokens came. */
static void usage_extra(fl_usage_t *u, const json_t *usage)
{
    apr_int64_t hit;
    if (!json_is_object(usage)) return;
    hit = fl_json_count(usage, "prompt_cache_hit_tokens");
    if (hit >= 0 && u->cached < 0) u->cached = hit;
}

static int mentions(const char *data, apr_size_t len, const char *what)
{
    return memmem(data, len, what, strlen(what)) != NULL;
}

static fl_error_t *compat_response(const fl_call_t *call, const char *body, apr_size_t len,
                                   const char **out, apr_size_t *outlen, fl_usage_t *usage)
{
    fl_error_t *e = fl_adapter_openai_response(call, body, len, out, outlen, usage);
    if (!e && mentions(body, len, "prompt_cache_hit_tokens")) {
        json_t *root = json_loadb(body, len, 0, NULL);
        usage_extra(usage, json_object_get(root, "usage"));
        json_decref(root);
    }
    return e;
}

/* Usage only found off OpenAI's place: Groq's x_groq.usage on the last chunk (Groq's
 * streaming usage before it honoured stream_options, https://github.com/vercel/ai/issues/1651)
 * and DeepSeek's cache-hit count. Parsed only when the payload names them. */
static void stream_usage_extra(fl_usage_t *usage, const char *data, apr_size_t len)
{
    json_t *root, *xg;
    int groq = mentions(data, len, "x_groq"), ds = mentions(data, len, "prompt_cache_hit");
    if (!groq && !ds) return;
    root = json_loadb(data, len, 0, NULL);
    xg = json_object_get(json_object_get(root, "x_groq"), "usage");
    if (json_is_object(xg) && usage->prompt < 0) fl_usage_from_openai(usage, xg);
    usage_extra(usage, json_object_get(root, "usage"));
    json_decref(root);
}

static apr_status_t compat_stream_open(const fl_call_t *call, fl_usage_t *usage,
                                       fl_emit_cb *emit, void *baton, fl_stream_t **ps)
{
    static const fl_openai_stream_quirks_t quirks = { .usage_elsewhere = stream_usage_extra };
    return fl_adapter_openai_stream_open(call, usage, emit, baton, &quirks, ps);
}

/* Error bodies not in OpenAI's {"error":{...}} shape, rewritten into it: Mistral's top-level
 * {"object":"error","message","type","param","code"} (message may be an object on 422), a bare
 * {"error":"text"}, and FastAPI's {"detail": ...} (AI21, unverified). */
static const char *normalise_error(apr_pool_t *p, const char *body, apr_size_t len,
                                   apr_size_t *outlen)
{
    json_t *root = json_loadb(body, len, 0, NULL), *err, *msg, *wrapped;
    const char *out = NULL;
    if (!json_is_object(root) || json_is_object(json_object_get(root, "error"))) {
        json_decref(root);
        return NULL;
    }
    err = json_object_get(root, "error");
    msg = json_is_string(err) ? err : json_object_get(root, "message");
    if (!msg) msg = json_object_get(root, "detail");
    if (msg) {
        wrapped = json_object();
        json_object_set_new(wrapped, "message", json_is_string(msg)
                            ? json_copy(msg) : json_string(fl_json_dump(p, msg, 0)));
        if (json_is_string(json_object_get(root, "type"))) {
            json_object_set(wrapped, "type", json_object_get(root, "type"));
        }
        if (json_is_string(json_object_get(root, "param"))) {
            json_object_set(wrapped, "param", json_object_get(root, "param"));
        }
        if (json_is_string(json_object_get(root, "code"))) {
            json_object_set(wrapped, "code", json_object_get(root, "code"));
        }
        out = fl_json_dump(p, json_pack("{s:o}", "error", wrapped), 1);
        *outlen = strlen(out);
    }
    json_decref(root);
    return out;
}

static fl_error_t *compat_error(const fl_call_t *call, int status, apr_table_t *headers,
                                const char *body, apr_size_t len)
{
    apr_size_t nlen = 0;
    const char *norm = body ? normalise_error(call->pool, body, len, &nlen) : NULL;
    if (norm) {
        body = norm;
        len = nlen;
    }
    return fl_adapter_openai_error(call, status, headers, body, len);
}

/* Every profile is OpenAI's wire format through the same functions; a row says what differs. */
#define COMPAT_ADAPTER(name, takes_images)                                                       \
    .adapter = { .type = name, .vision = takes_images, .configure = compat_configure,            \
                 .prepare = compat_prepare, .response = compat_response,                         \
                 .error = compat_error, .stream_open = compat_stream_open,                       \
                 .stream_feed = fl_adapter_openai_stream_feed }

/* Base URLs as each provider's OpenAI-compatibility page gives them. vision = 0 only where
 * image input is documented as absent: DeepSeek's chat API takes text only, AI21's message
 * content is a string. */
static const compat_profile_t profiles[] = {
    { COMPAT_ADAPTER("deepseek", 0), .default_base = "https://api.deepseek.com",
      .fix = deepseek_fix },
    { COMPAT_ADAPTER("mistral", 1), .default_base = "https://api.mistral.ai/v1",
      .fix = mistral_fix },
    { COMPAT_ADAPTER("xai", 1), .default_base = "https://api.x.ai/v1", .fix = xai_fix },
    { COMPAT_ADAPTER("groq", 1), .default_base = "https://api.groq.com/openai/v1",
      .fix = groq_fix },
    { COMPAT_ADAPTER("cerebras", 1), .default_base = "https://api.cerebras.ai/v1",
      .fix = cerebras_fix },
    { COMPAT_ADAPTER("sambanova", 1), .default_base = "https://api.sambanova.ai/v1" },
    { COMPAT_ADAPTER("together", 1), .default_base = "https://api.together.ai/v1" },
    { COMPAT_ADAPTER("fireworks", 1), .default_base = "https://api.fireworks.ai/inference/v1" },
    { COMPAT_ADAPTER("perplexity", 1), .default_base = "https://api.perplexity.ai",
      .fix = perplexity_fix },
    { COMPAT_ADAPTER("ai21", 0), .default_base = "https://api.ai21.com/studio/v1",
      .fix = ai21_fix },
    { COMPAT_ADAPTER("deepinfra", 1), .default_base = "https://api.deepinfra.com/v1/openai" },
    { COMPAT_ADAPTER("nebius", 1), .default_base = "https://api.tokenfactory.nebius.com/v1" },
    { COMPAT_ADAPTER("novita", 1), .default_base = "https://api.novita.ai/openai" },
};

const fl_adapter_t *const fl_adapters_compat[] = {
    &profiles[0].adapter, &profiles[1].adapter, &profiles[2].adapter, &profiles[3].adapter,
    &profiles[4].adapter, &profiles[5].adapter, &profiles[6].adapter, &profiles[7].adapter,
    &profiles[8].adapter, &profiles[9].adapter, &profiles[10].adapter, &profiles[11].adapter,
    &profiles[12].adapter, NULL
};
