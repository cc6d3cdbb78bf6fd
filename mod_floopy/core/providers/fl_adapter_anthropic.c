/* Anthropic's Messages API (POST <base>/v1/messages). The client's Chat Completions request
 * becomes a Messages request (system hoisted, turns alternating, tool calls and results as
 * content blocks, max_tokens always set); answers, event streams and errors come back in
 * OpenAI's shape. Wire notes: /work/shared/reference/provider-wire-formats.md, section 2. */
#include <string.h>
#include <strings.h>
#include <apr_strings.h>
#include <apr_hash.h>

#include "fl_adapter.h"
#include "fl_json.h"
#include "fl_chat_build.h"
#include "fl_sse.h"

#define DEFAULT_BASE "https://api.anthropic.com"
#define DEFAULT_VERSION "2023-06-01"
#define DEFAULT_MAX_TOKENS 4096
#define MAX_SSE_EVENT (8 * 1024 * 1024)

/* What configure resolved from the provider's options. */
typedef struct anth_conf_t {
    const char *version;         /* anthropic-version header */
    apr_int64_t max_tokens;      /* when the client names none: Anthropic requires it */
} anth_conf_t;

static const char *const anthropic_options[] = { "api_version", "max_tokens", NULL };

/* --- configuration ------------------------------------------------------------------------ */

static const char *read_opts(const fl_provider_t *pv, anth_conf_t *c)
{
    const char *v = apr_table_get(pv->opts, "api_version");
    const char *mt = apr_table_get(pv->opts, "max_tokens");
    char *end;

    if (v && (!*v || strpbrk(v, "\r\n"))) return "api_version= must be a version date like 2023-06-01";
    c->version = v ? v : DEFAULT_VERSION;
    c->max_tokens = DEFAULT_MAX_TOKENS;
    if (mt) {
        c->max_tokens = apr_strtoi64(mt, &end, 10);
        if (!*mt || *end || c->max_tokens <= 0 || c->max_tokens > 100000000) {
            return "max_tokens= must be a positive integer";
        }
    }
    return NULL;
}

static const char *anthropic_check(const fl_provider_t *pv, apr_pool_t *p)
{
    anth_conf_t c;
    return read_opts(pv, &c);
}

static const char *anthropic_configure(fl_provider_t *pv, apr_pool_t *p)
{
    anth_conf_t *c = apr_pcalloc(p, sizeof(*c));
    const char *base = pv->resolved_base ? pv->resolved_base : DEFAULT_BASE, *err;
    apr_size_t n = strlen(base);

    if ((err = read_opts(pv, c))) return err;
    /* base_url is the API's root, as Anthropic's SDKs take it; one written OpenAI-style with a
     * trailing /v1 must not become /v1/v1/messages */
    if (n >= 3 && !strcmp(base + n - 3, "/v1")) base = apr_pstrmemdup(p, base, n - 3);
    pv->chat_url = apr_pstrcat(p, base, "/v1/messages", NULL);
    pv->adapter_conf = c;
    return NULL;
}

/* --- request ------------------------------------------------------------------------------ */

static fl_error_t *bad_message(apr_pool_t *p, const char *code, size_t i, const char *what)
{
    return fl_error_make(p, 400, "invalid_request_error", code, "messages", "messages[%lu]: %s",
                         (unsigned long)i, what);
}

static json_t *text_block(const char *text)
{
    return json_pack("{s:s, s:s}", "type", "text", "text", text);
}

/* An image_url part: a data URL travels inline (base64), an http(s) URL as a URL source. */
static fl_error_t *image_block(apr_pool_t *p, const json_t *part, size_t i, json_t *blocks)
{
    const json_t *iu = json_object_get(part, "image_url");
    const char *url = json_is_string(iu) ? json_string_value(iu) : fl_json_str(iu, "url", NULL);
    const char *mime, *b64;
    json_t *src;

    if (!url) return bad_message(p, "invalid_value", i, "an image_url part needs image_url.url");
    if (fl_data_url_parse(p, url, &mime, &b64)) {
        src = json_pack("{s:s, s:s, s:s}", "type", "base64", "media_type", mime, "data", b64);
    }
    else if (!strncasecmp(url, "https://", 8) || !strncasecmp(url, "http://", 7)) {
        src = json_pack("{s:s, s:s}", "type", "url", "url", url);
    }
    else {
        return bad_message(p, "invalid_value", i,
                           "image_url.url must be a base64 data URL or an http(s) URL");
    }
    json_array_append_new(blocks, json_pack("{s:s, s:o}", "type", "image", "source", src));
    return NULL;
}

/* A message's content (string, array of parts or null) as Anthropic content blocks. Empty text
 * is left out: Anthropic refuses empty text blocks. */
static fl_error_t *content_blocks(apr_pool_t *p, const json_t *content, size_t i, json_t *blocks)
{
    size_t k;
    json_t *part;
    fl_error_t *e;

    if (json_is_string(content)) {
        if (*json_string_value(content)) {
            json_array_append_new(blocks, text_block(json_string_value(content)));
        }
        return NULL;
    }
    if (json_is_null(content) || !content) return NULL;
    if (!json_is_array(content)) {
        return bad_message(p, "invalid_type", i, "content must be a string or an array of parts");
    }
    json_array_foreach(content, k, part) {
        const char *type = fl_json_str(part, "type", "");
        const char *text = fl_json_str(part, "text", NULL);
        if (!strcmp(type, "text")) {
            if (!text) return bad_message(p, "invalid_value", i, "a text part needs text");
            if (*text) json_array_append_new(blocks, text_block(text));
        }
        else if (!strcmp(type, "image_url")) {
            if ((e = image_block(p, part, i, blocks))) return e;
        }
        else if (!strcmp(type, "refusal")) {
            /* an assistant's earlier refusal is still what it said */
            const char *r = fl_json_str(part, "refusal", "");
            if (*r) json_array_append_new(blocks, text_block(r));
        }
        else {
            return bad_message(p, "unsupported_content", i,
                               apr_psprintf(p, "content parts of type '%s' are not supported by "
                                            "type=anthropic providers", type));
        }
    }
    return NULL;
}

/* An assistant's tool_calls as tool_use blocks; the arguments' JSON text becomes input. */
static fl_error_t *tool_use_blocks(apr_pool_t *p, const json_t *calls, size_t i, json_t *blocks)
{
    size_t k;
    json_t *tc;

    if (!calls || json_is_null(calls)) return NULL;
    if (!json_is_array(calls)) return bad_message(p, "invalid_type", i, "tool_calls must be an array");
    json_array_foreach(calls, k, tc) {
        const json_t *fn = json_object_get(tc, "function");
        const char *id = fl_json_str(tc, "id", NULL), *name = fl_json_str(fn, "name", NULL);
        const char *args = fl_json_str(fn, "arguments", "");
        json_t *input = *args ? json_loads(args, 0, NULL) : json_object();
        if (!id || !name) {
            json_decref(input);
            return bad_message(p, "invalid_value", i, "a tool call needs id and function.name");
        }
        if (!json_is_object(input)) {
            json_decref(input);
            return bad_message(p, "invalid_value", i,
                               "tool call arguments must be the JSON text of an object");
        }
        json_array_append_new(blocks, json_pack("{s:s, s:s, s:s, s:o}", "type", "tool_use",
                                                "id", id, "name", name, "input", input));
    }
    return NULL;
}

/* A role "tool" message as a tool_result block (it goes into a user turn). */
static fl_error_t *tool_result_block(apr_pool_t *p, const json_t *m, size_t i, json_t *blocks)
{
    const char *id = fl_json_str(m, "tool_call_id", NULL);
    const char *text = fl_oai_content_text(p, json_object_get(m, "content"));
    json_t *b;

    if (!id) return bad_message(p, "missing_required_parameter", i, "a tool message needs tool_call_id");
    b = json_pack("{s:s, s:s}", "type", "tool_result", "tool_use_id", id);
    if (*text) json_object_set_new(b, "content", json_string(text));
    json_array_append_new(blocks, b);
    return NULL;
}

/* Appends blocks to the last turn when it has the same role (Anthropic wants user and
 * assistant to alternate: consecutive tool results and a following user text share a turn). */
static void add_to_turn(json_t *messages, const char *role, json_t *blocks)
{
    json_t *last = json_array_get(messages, json_array_size(messages) - 1);
    if (json_array_size(blocks) == 0) return;
    if (last && !strcmp(fl_json_str(last, "role", ""), role)) {
        json_array_extend(json_object_get(last, "content"), blocks);
        return;
    }
    json_array_append_new(messages, json_pack("{s:s, s:O}", "role", role, "content", blocks));
}

static fl_error_t *one_message(apr_pool_t *p, const json_t *m, size_t i, json_t *messages,
                               const char **system)
{
    const char *role = fl_json_str(m, "role", "");
    json_t *content = json_object_get(m, "content");
    json_t *blocks = fl_json_pool_own(p, json_array());
    fl_error_t *e = NULL;

    if (!strcmp(role, "system") || !strcmp(role, "developer")) {
        const char *t = fl_oai_content_text(p, content);
        if (*t) *system = **system ? apr_pstrcat(p, *system, "\n\n", t, NULL) : t;
        return NULL;
    }
    if (!strcmp(role, "user")) {
        e = content_blocks(p, content, i, blocks);
        /* left out, an empty last user turn would make the assistant's turn a prefill */
        if (!e && json_array_size(blocks) == 0) {
            e = bad_message(p, "invalid_value", i, "type=anthropic providers take no empty user "
                            "message");
        }
    }
    else if (!strcmp(role, "assistant")) {
        if (!(e = content_blocks(p, content, i, blocks))) {
            e = tool_use_blocks(p, json_object_get(m, "tool_calls"), i, blocks);
        }
    }
    else if (!strcmp(role, "tool")) {
        e = tool_result_block(p, m, i, blocks);
        role = "user";
    }
    else {
        return bad_message(p, "invalid_value", i,
                           apr_psprintf(p, "role '%s' is not supported by type=anthropic "
                                        "providers", role));
    }
    if (!e) add_to_turn(messages, role, blocks);
    return e;
}

static fl_error_t *messages_out(apr_pool_t *p, const json_t *root, json_t *body)
{
    const json_t *msgs = json_object_get(root, "messages");
    json_t *out = json_array(), *m;
    const char *system = "";
    size_t i;
    fl_error_t *e;

    json_object_set_new(body, "messages", out);
    json_array_foreach(msgs, i, m) {
        if ((e = one_message(p, m, i, out, &system))) return e;
    }
    if (*system) json_object_set_new(body, "system", json_string(system));
    return NULL;
}

static json_t *tool_choice_out(const json_t *tc)
{
    const char *s = json_string_value(tc), *name;
    if (s) {
        if (!strcmp(s, "auto")) return json_pack("{s:s}", "type", "auto");
        if (!strcmp(s, "none")) return json_pack("{s:s}", "type", "none");
        if (!strcmp(s, "required")) return json_pack("{s:s}", "type", "any");
        return NULL;
    }
    name = fl_json_str(json_object_get(tc, "function"), "name", NULL);
    return name ? json_pack("{s:s, s:s}", "type", "tool", "name", name) : NULL;
}

/* tools, tool_choice and parallel_tool_calls; only function tools exist on this side. */
static fl_error_t *tools_out(apr_pool_t *p, const json_t *root, json_t *body)
{
    const json_t *tools = json_object_get(root, "tools"), *par;
    json_t *out, *t, *choice;
    size_t i;

    if (!json_is_array(tools) || json_array_size(tools) == 0) return NULL;
    out = json_array();
    json_object_set_new(body, "tools", out);
    json_array_foreach(tools, i, t) {
        const json_t *fn = json_object_get(t, "function"), *schema;
        const char *name = fl_json_str(fn, "name", NULL), *desc = fl_json_str(fn, "description", NULL);
        json_t *o;
        if (strcmp(fl_json_str(t, "type", "function"), "function") || !name) {
            return fl_error_make(p, 400, "invalid_request_error", "invalid_value", "tools",
                                 "tools[%lu]: type=anthropic providers take function tools with "
                                 "a name", (unsigned long)i);
        }
        schema = json_object_get(fn, "parameters");
        o = json_pack("{s:s}", "name", name);
        if (desc) json_object_set_new(o, "description", json_string(desc));
        json_object_set_new(o, "input_schema", json_is_object(schema) ? json_deep_copy(schema)
                            : json_pack("{s:s, s:{}}", "type", "object", "properties"));
        json_array_append_new(out, o);
    }
    choice = tool_choice_out(json_object_get(root, "tool_choice"));
    par = json_object_get(root, "parallel_tool_calls");
    if (json_is_false(par) && !(choice && !strcmp(fl_json_str(choice, "type", ""), "none"))) {
        if (!choice) choice = json_pack("{s:s}", "type", "auto");
        json_object_set_new(choice, "disable_parallel_tool_use", json_true());
    }
    if (choice) json_object_set_new(body, "tool_choice", choice);
    return NULL;
}

/* The sampling parameters Anthropic takes; the rest (n, penalties, seed, logprobs,
 * response_format...) are not forwarded. */
static void params_out(const fl_call_t *call, const anth_conf_t *c, json_t *body)
{
    const json_t *root = call->cr->root, *v;
    const char *const copied[] = { "temperature", "top_p", NULL };
    int k;

    v = json_object_get(root, "max_completion_tokens");
    if (!json_is_integer(v) || json_integer_value(v) <= 0) v = json_object_get(root, "max_tokens");
    json_object_set_new(body, "max_tokens", json_is_integer(v) && json_integer_value(v) > 0
                                            ? json_integer(json_integer_value(v))
                                            : json_integer(c->max_tokens));
    for (k = 0; copied[k]; k++) {
        if (json_is_number(v = json_object_get(root, copied[k]))) {
            json_object_set_new(body, copied[k], json_deep_copy(v));
        }
    }
    v = json_object_get(root, "stop");
    if (json_is_string(v)) json_object_set_new(body, "stop_sequences", json_pack("[O]", v));
    else if (json_is_array(v) && json_array_size(v)) {
        json_object_set_new(body, "stop_sequences", json_deep_copy(v));
    }
    if (json_is_string(v = json_object_get(root, "user"))) {
        json_object_set_new(body, "metadata", json_pack("{s:O}", "user_id", v));
    }
    if (call->cr->stream) json_object_set_new(body, "stream", json_true());
}

static fl_error_t *anthropic_prepare(const fl_call_t *call, fl_upstream_t *up)
{
    const fl_provider_t *pv = call->provider;
    const anth_conf_t *c = pv->adapter_conf;
    json_t *body = fl_json_pool_own(call->pool, json_object());
    fl_error_t *e;

    json_object_set_new(body, "model", json_string(call->model->name));
    if ((e = messages_out(call->pool, call->cr->root, body))) return e;
    params_out(call, c, body);
    if ((e = tools_out(call->pool, call->cr->root, body))) return e;

    up->url = pv->chat_url;
    up->body = fl_json_dump(call->pool, body, 0);
    up->body_len = strlen(up->body);
    up->accept = call->cr->stream ? "text/event-stream" : "application/json";
    if (pv->api_key) fl_upstream_header(up, "x-api-key", pv->api_key);
    fl_upstream_header(up, "anthropic-version", c->version);
    return NULL;
}

/* --- answers ------------------------------------------------------------------------------ */

static const char *finish_reason(const char *stop)
{
    if (!stop) return "stop";
    if (!strcmp(stop, "max_tokens") || !strcmp(stop, "model_context_window_exceeded")) {
        return "length";
    }
    if (!strcmp(stop, "tool_use")) return "tool_calls";
    if (!strcmp(stop, "refusal")) return "content_filter";
    return "stop"; /* end_turn, stop_sequence, pause_turn */
}

/* Anthropic's counts as last reported (-1 = not yet): a stream spreads them over
 * message_start and message_delta. */
typedef struct anth_usage_t {
    apr_int64_t input, cache_read, cache_write, output, thinking;
} anth_usage_t;

static void anth_usage_init(anth_usage_t *a)
{
    a->input = a->cache_read = a->cache_write = a->output = a->thinking = -1;
}

static void anth_usage_take(anth_usage_t *a, const json_t *usage)
{
    apr_int64_t v;
    if (!json_is_object(usage)) return;
    if ((v = fl_json_count(usage, "input_tokens")) >= 0) a->input = v;
    if ((v = fl_json_count(usage, "cache_read_input_tokens")) >= 0) a->cache_read = v;
    if ((v = fl_json_count(usage, "cache_creation_input_tokens")) >= 0) a->cache_write = v;
    if ((v = fl_json_count(usage, "output_tokens")) >= 0) a->output = v;
    v = fl_json_count(json_object_get(usage, "output_tokens_details"), "thinking_tokens");
    if (v >= 0) a->thinking = v;
}

/* input_tokens excludes cache reads and writes; OpenAI's prompt_tokens is the whole input, with
 * the cache reads as its cached part. */
static void anth_usage_fill(const anth_usage_t *a, fl_usage_t *u)
{
    if (a->input >= 0) {
        u->cached = a->cache_read > 0 ? a->cache_read : 0;
        u->prompt = a->input + u->cached + (a->cache_write > 0 ? a->cache_write : 0);
    }
    if (a->output >= 0) u->completion = a->output;
    if (a->thinking >= 0) u->reasoning = a->thinking;
    if (u->prompt >= 0 && u->completion >= 0) u->total = u->prompt + u->completion;
}

static fl_error_t *bad_answer(const fl_call_t *call, const char *what)
{
    return fl_error_make(call->pool, 502, "upstream_error", "upstream_error", NULL,
                         "provider %s answered with %s", call->provider->name, what);
}

static fl_error_t *anthropic_response(const fl_call_t *call, const char *body, apr_size_t len,
                                      const char **out, apr_size_t *outlen, fl_usage_t *usage)
{
    apr_pool_t *p = call->pool;
    json_t *root = fl_json_pool_own(p, json_loadb(body, len, 0, NULL));
    const json_t *content = json_object_get(root, "content"), *b;
    apr_array_header_t *texts = apr_array_make(p, 2, sizeof(const char *));
    json_t *tool_calls = NULL;
    anth_usage_t au;
    size_t i;

    if (!json_is_object(root) || !json_is_array(content)) {
        return bad_answer(call, "something that is not an Anthropic message");
    }
    json_array_foreach(content, i, b) {
        const char *type = fl_json_str(b, "type", "");
        if (!strcmp(type, "text")) {
            APR_ARRAY_PUSH(texts, const char *) = fl_json_str(b, "text", "");
        }
        else if (!strcmp(type, "tool_use")) {
            const json_t *input = json_object_get(b, "input");
            if (!tool_calls) tool_calls = json_array();
            json_array_append_new(tool_calls, fl_oai_tool_call(
                -1, fl_json_str(b, "id", ""), fl_json_str(b, "name", ""),
                input ? fl_json_dump(p, (json_t *)input, 0) : "{}"));
        }
        /* thinking and server-tool blocks have no place in a chat.completion */
    }
    anth_usage_init(&au);
    anth_usage_take(&au, json_object_get(root, "usage"));
    anth_usage_fill(&au, usage);
    *out = fl_oai_completion(p, fl_json_str(root, "model", call->model->name),
                             texts->nelts ? apr_array_pstrcat(p, texts, 0) : NULL, tool_calls,
                             finish_reason(fl_json_str(root, "stop_reason", NULL)), usage);
    *outlen = strlen(*out);
    return NULL;
}

/* --- streams ------------------------------------------------------------------------------ */

struct fl_stream_t {
    fl_sse_t *sse;
    apr_pool_t *pool;            /* the call's: lives as long as the stream */
    apr_pool_t *chunk_pool;      /* cleared for every event: memory stays flat on long streams */
    const char *provider;
    fl_usage_t *usage;
    anth_usage_t au;
    fl_oai_stream_t st;
    apr_hash_t *tool_index;      /* Anthropic block index -> OpenAI tool call index */
    int ntools;
    const char *finish;          /* OpenAI finish_reason once message_delta gave one */
    int finish_sent, ended;
    fl_emit_cb *emit;
    void *baton;
};

static apr_status_t send_chunk(fl_stream_t *s, json_t *delta, const char *finish)
{
    char *c = fl_oai_chunk(s->chunk_pool, &s->st, delta, finish);
    return s->emit(s->baton, FL_CHUNK_FORWARD, c, strlen(c));
}

static apr_status_t send_error(fl_stream_t *s, const char *message, const char *code)
{
    char *ev = fl_oai_error_event(s->chunk_pool, apr_psprintf(s->chunk_pool, "provider %s: %s",
                                                              s->provider, message),
                                  "upstream_error", code);
    s->ended = 1;
    return s->emit(s->baton, FL_CHUNK_ERROR, ev, strlen(ev));
}

/* The answer is malformed: the client learns it, the transfer stops. */
static apr_status_t malformed(fl_stream_t *s, const char *what)
{
    apr_status_t rv = send_error(s, what, "upstream_error");
    return rv != APR_SUCCESS ? rv : APR_EGENERAL;
}

static apr_status_t on_block_start(fl_stream_t *s, const json_t *ev)
{
    const json_t *cb = json_object_get(ev, "content_block");
    const json_t *idx = json_object_get(ev, "index");
    const char *type = fl_json_str(cb, "type", "");
    const char *text;

    if (!strcmp(type, "tool_use")) {
        apr_int64_t *key = apr_palloc(s->pool, sizeof(*key));
        int *t = apr_palloc(s->pool, sizeof(*t));
        if (!json_is_integer(idx)) return malformed(s, "a tool_use block without an index");
        *key = json_integer_value(idx);
        *t = s->ntools++;
        apr_hash_set(s->tool_index, key, sizeof(*key), t);
        return send_chunk(s, json_pack("{s:[o]}", "tool_calls",
                                       fl_oai_tool_call(*t, fl_json_str(cb, "id", ""),
                                                        fl_json_str(cb, "name", ""), "")), NULL);
    }
    text = fl_json_str(cb, "text", "");
    if (!strcmp(type, "text") && *text) {
        return send_chunk(s, json_pack("{s:s}", "content", text), NULL);
    }
    return APR_SUCCESS;
}

static apr_status_t on_block_delta(fl_stream_t *s, const json_t *ev)
{
    const json_t *d = json_object_get(ev, "delta");
    const char *type = fl_json_str(d, "type", "");

    if (!strcmp(type, "text_delta")) {
        const char *text = fl_json_str(d, "text", "");
        return *text ? send_chunk(s, json_pack("{s:s}", "content", text), NULL) : APR_SUCCESS;
    }
    if (!strcmp(type, "input_json_delta")) {
        const char *part = fl_json_str(d, "partial_json", "");
        apr_int64_t key = json_integer_value(json_object_get(ev, "index"));
        int *t = apr_hash_get(s->tool_index, &key, sizeof(key));
        if (!t) return malformed(s, "tool input for a block that is not a tool_use");
        if (!*part) return APR_SUCCESS; /* the first fragment is often empty */
        return send_chunk(s, json_pack("{s:[o]}", "tool_calls",
                                       fl_oai_tool_call(*t, NULL, NULL, part)), NULL);
    }
    return APR_SUCCESS; /* thinking, signature, citations: not part of a chat completion */
}

static apr_status_t on_message_stop(fl_stream_t *s)
{
    apr_status_t rv;
    char *uc;
    if (!s->finish_sent && (rv = send_chunk(s, NULL, s->finish ? s->finish : "stop"))) return rv;
    anth_usage_fill(&s->au, s->usage);
    if ((uc = fl_oai_usage_chunk(s->chunk_pool, &s->st, s->usage))
        && (rv = s->emit(s->baton, FL_CHUNK_FORWARD, uc, strlen(uc)))) {
        return rv;
    }
    s->ended = 1;
    return s->emit(s->baton, FL_CHUNK_DONE, "[DONE]", 6);
}

static apr_status_t on_error_event(fl_stream_t *s, const json_t *ev)
{
    const json_t *err = json_object_get(ev, "error");
    return send_error(s, fl_json_str(err, "message", "error event without a message"),
                      fl_json_str(err, "type", "upstream_error"));
}

static apr_status_t anthropic_event(void *baton, const char *event, const char *data,
                                    apr_size_t len)
{
    fl_stream_t *s = baton;
    json_t *ev;
    const char *type;

    if (s->ended) return APR_SUCCESS;
    apr_pool_clear(s->chunk_pool);
    ev = fl_json_pool_own(s->chunk_pool, json_loadb(data, len, 0, NULL));
    if (!json_is_object(ev)) return malformed(s, "an event that is not a JSON object");
    type = *event ? event : fl_json_str(ev, "type", "");

    if (!strcmp(type, "message_start")) {
        const json_t *msg = json_object_get(ev, "message");
        anth_usage_take(&s->au, json_object_get(msg, "usage"));
        anth_usage_fill(&s->au, s->usage);
        return send_chunk(s, json_pack("{s:s}", "content", ""), NULL);
    }
    if (!strcmp(type, "content_block_start")) return on_block_start(s, ev);
    if (!strcmp(type, "content_block_delta")) return on_block_delta(s, ev);
    if (!strcmp(type, "message_delta")) {
        const char *stop = fl_json_str(json_object_get(ev, "delta"), "stop_reason", NULL);
        anth_usage_take(&s->au, json_object_get(ev, "usage"));
        anth_usage_fill(&s->au, s->usage);
        if (!stop) return APR_SUCCESS;
        s->finish = finish_reason(stop);
        s->finish_sent = 1;
        return send_chunk(s, NULL, s->finish);
    }
    if (!strcmp(type, "message_stop")) return on_message_stop(s);
    if (!strcmp(type, "error")) return on_error_event(s, ev);
    return APR_SUCCESS; /* ping, content_block_stop, and event types added later */
}

static apr_status_t anthropic_stream_open(const fl_call_t *call, fl_usage_t *usage,
                                          fl_emit_cb *emit, void *baton, fl_stream_t **ps)
{
    fl_stream_t *s = apr_pcalloc(call->pool, sizeof(*s));
    apr_status_t rv = apr_pool_create(&s->chunk_pool, call->pool);
    if (rv != APR_SUCCESS) return rv;
    s->pool = call->pool;
    s->provider = call->provider->name;
    s->usage = usage;
    anth_usage_init(&s->au);
    fl_oai_stream_init(&s->st, call->pool, call->model->name, call->cr->include_usage);
    s->tool_index = apr_hash_make(call->pool);
    s->emit = emit;
    s->baton = baton;
    *ps = s;
    return fl_sse_create(&s->sse, call->pool, MAX_SSE_EVENT, anthropic_event, s);
}

static apr_status_t anthropic_stream_feed(fl_stream_t *s, const char *buf, apr_size_t len)
{
    return fl_sse_feed(s->sse, buf, len);
}

/* --- errors ------------------------------------------------------------------------------- */

/* Anthropic's error type as the code an OpenAI client sees; the shared mapping then sets the
 * status, keeps retry-after and hides the gateway's credential problems. */
static const char *error_code(const char *type, const json_t *err)
{
    const char *detail = fl_json_str(json_object_get(err, "details"), "error_code", NULL);
    if (detail && !strcmp(detail, "enforced_spend_limit_reached")) {
        return "insufficient_quota"; /* a spend limit does not lift in seconds: no retry */
    }
    if (!type || !strcmp(type, "invalid_request_error")) return NULL;
    if (!strcmp(type, "rate_limit_error")) return "rate_limit_exceeded";
    /* the model is the only thing /v1/messages can fail to find */
    if (!strcmp(type, "not_found_error")) return "model_not_found";
    return type;
}

static fl_error_t *anthropic_error(const fl_call_t *call, int status, apr_table_t *headers,
                                   const char *body, apr_size_t len)
{
    apr_pool_t *p = call->pool;
    json_t *root = fl_json_pool_own(p, body ? json_loadb(body, len, 0, NULL) : NULL);
    const json_t *err = json_object_get(root, "error");
    const char *type = fl_json_str(err, "type", NULL), *code;
    json_t *oai;
    char *oai_body;

    if (!json_is_object(err)) {
        return fl_openai_map_upstream_error(p, call->provider->name, status, headers, NULL, 0);
    }
    code = error_code(type, err);
    oai = json_pack("{s:{s:s, s:s}}", "error", "message",
                    fl_json_str(err, "message", type ? type : "no message"),
                    "type", "invalid_request_error");
    if (code) json_object_set_new(json_object_get(oai, "error"), "code", json_string(code));
    oai_body = fl_json_dump(p, oai, 1);
    return fl_openai_map_upstream_error(p, call->provider->name, status, headers, oai_body,
                                        strlen(oai_body));
}

const fl_adapter_t fl_adapter_anthropic = {
    .type = "anthropic", .vision = 1, .options = anthropic_options,
    .check = anthropic_check, .configure = anthropic_configure,
    .prepare = anthropic_prepare, .response = anthropic_response, .error = anthropic_error,
    .stream_open = anthropic_stream_open, .stream_feed = anthropic_stream_feed,
};
