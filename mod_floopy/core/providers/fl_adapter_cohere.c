/* Cohere v2 Chat (POST <base>/v2/chat, Bearer key). Requests are rebuilt in Cohere's shape;
 * answers, stream events and errors come back in OpenAI's.
 *
 * Wire facts (checked against Cohere's documentation):
 *   - stream events, SSE with event: lines: message-start, content-start, content-delta
 *     (delta.message.content.text), content-end, tool-plan-delta (delta.message.tool_plan),
 *     tool-call-start/-delta/-end (delta.message.tool_calls), citation-*, message-end
 *     (delta.finish_reason, delta.usage) [https://docs.cohere.com/v2/docs/streaming,
 *     https://docs.cohere.com/docs/tool-use-streaming];
 *   - images as {"type":"image_url","image_url":{"url","detail"}} content parts, for the vision
 *     models only [https://docs.cohere.com/v2/docs/image-inputs];
 *   - usage {billed_units, tokens: {input_tokens, output_tokens}, cached_tokens}; the
 *     billed units are what Cohere charges, so they are the counts the gateway prices;
 *   - the SDK's types agree [cohere-ai/cohere-python: src/cohere/types/chat_finish_reason.py
 *     (COMPLETE, STOP_SEQUENCE, MAX_TOKENS, TOOL_CALL, ERROR, TIMEOUT),
 *     chat_message_end_event_delta.py (error, finish_reason, usage),
 *     chat_tool_call_start_event_delta_message.py (tool_calls: one object), image_url.py
 *     (url, detail), response_format_v2.py (json_object with json_schema), tool_message_v2.py
 *     (content: a string or blocks)].
 * An assistant turn's tool_plan (the model's words before its tool calls) travels as OpenAI's
 * content next to tool_calls, and back as tool_plan when a client replays that turn. */
#include <string.h>
#include <apr_strings.h>

#include "fl_adapter.h"
#include "fl_chat_build.h"
#include "fl_json.h"
#include "fl_sse.h"

#define DEFAULT_BASE "https://api.cohere.com"
#define MAX_SSE_EVENT (8 * 1024 * 1024)

static const char *cohere_configure(fl_provider_t *pv, apr_pool_t *p)
{
    const char *base = pv->resolved_base && *pv->resolved_base ? pv->resolved_base : DEFAULT_BASE;
    apr_size_t n = strlen(base);
    /* A base that already ends in /v2 is taken as meant. */
    if (n >= 3 && !strcmp(base + n - 3, "/v2")) base = apr_pstrmemdup(p, base, n - 3);
    pv->chat_url = apr_pstrcat(p, base, "/v2/chat", NULL);
    return NULL;
}

/* --- the request ------------------------------------------------------------------------- */

typedef struct build_t {
    apr_pool_t *p;
    int vision;                  /* the model takes images */
    fl_error_t *err;             /* the first thing Cohere cannot take */
} build_t;

static fl_error_t *unsupported(apr_pool_t *p, const char *what)
{
    return fl_error_make(p, 400, "invalid_request_error", "unsupported_content", "messages",
                         "%s", what);
}

/* Cohere documents image input for its vision models (command-a-vision-*, aya-vision-*) only;
 * the others answer 400 upstream, so the gateway says so first and clearly. */
static int model_has_vision(const char *model)
{
    return strstr(model, "vision") != NULL;
}

static json_t *image_part(build_t *b, const json_t *part, const char *model)
{
    const json_t *iu = json_object_get(part, "image_url");
    const char *url = json_is_string(iu) ? json_string_value(iu) : fl_json_str(iu, "url", NULL);
    const char *detail = fl_json_str(iu, "detail", NULL);
    json_t *img;
    if (!b->vision) {
        b->err = unsupported(b->p, apr_psprintf(b->p, "the Cohere model '%s' does not take "
                                                      "images; use a vision model", model));
        return NULL;
    }
    if (!url) {
        b->err = fl_error_invalid(b->p, "invalid_value", "messages",
                                  "an image_url part needs image_url.url");
        return NULL;
    }
    img = json_pack("{s:s}", "url", url);
    if (detail) json_object_set_new(img, "detail", json_string(detail));
    return json_pack("{s:s,s:o}", "type", "image_url", "image_url", img);
}

/* A user turn's content: a string stays one; parts become Cohere's text/image_url parts. */
static json_t *user_content(build_t *b, const json_t *content, const char *model)
{
    json_t *out, *part, *c;
    size_t i;
    if (json_is_string(content)) return json_string(json_string_value(content));
    if (!json_is_array(content)) return json_string("");
    out = json_array();
    json_array_foreach(content, i, part) {
        const char *type = fl_json_str(part, "type", "");
        c = NULL;
        if (!strcmp(type, "text")) {
            c = json_pack("{s:s,s:s}", "type", "text", "text", fl_json_str(part, "text", ""));
        }
        else if (!strcmp(type, "image_url")) {
            c = image_part(b, part, model);
        }
        else {
            b->err = unsupported(b->p, apr_psprintf(b->p, "Cohere does not take '%s' content "
                                                          "parts", type));
        }
        if (!c) break;
        json_array_append_new(out, c);
    }
    return out;
}

/* OpenAI's tool calls in Cohere's shape (the same fields, nothing else). */
static json_t *tool_calls_out(const json_t *calls)
{
    json_t *out = json_array(), *tc;
    size_t i;
    json_array_foreach(calls, i, tc) {
        const json_t *fn = json_object_get(tc, "function");
        json_array_append_new(out, json_pack("{s:s,s:s,s:{s:s,s:s}}",
                                             "id", fl_json_str(tc, "id", ""), "type", "function",
                                             "function", "name", fl_json_str(fn, "name", ""),
                                             "arguments", fl_json_str(fn, "arguments", "{}")));
    }
    return out;
}

static json_t *assistant_msg(build_t *b, const json_t *m)
{
    json_t *out = json_pack("{s:s}", "role", "assistant");
    const json_t *calls = json_object_get(m, "tool_calls");
    const char *text = fl_oai_content_text(b->p, json_object_get(m, "content"));
    if (json_is_array(calls) && json_array_size(calls) > 0) {
        json_object_set_new(out, "tool_calls", tool_calls_out(calls));
        if (*text) json_object_set_new(out, "tool_plan", json_string(text));
    }
    else {
        json_object_set_new(out, "content", json_string(text));
    }
    return out;
}

static json_t *message_out(build_t *b, const json_t *m, size_t i, const char *model)
{
    const char *role = fl_json_str(m, "role", "");
    const json_t *content = json_object_get(m, "content");
    if (!strcmp(role, "system") || !strcmp(role, "developer")) {
        return json_pack("{s:s,s:s}", "role", "system", "content",
                         fl_oai_content_text(b->p, content));
    }
    if (!strcmp(role, "user")) {
        json_t *c = user_content(b, content, model);
        if (!b->err) return json_pack("{s:s,s:o}", "role", "user", "content", c);
        json_decref(c);
        return NULL;
    }
    if (!strcmp(role, "assistant")) return assistant_msg(b, m);
    if (!strcmp(role, "tool")) {
        return json_pack("{s:s,s:s,s:s}", "role", "tool",
                         "tool_call_id", fl_json_str(m, "tool_call_id", ""),
                         "content", fl_oai_content_text(b->p, content));
    }
    b->err = fl_error_invalid(b->p, "invalid_value", apr_psprintf(b->p, "messages[%lu].role",
                                                                  (unsigned long)i),
                              "Cohere takes system, user, assistant and tool messages, not '%s'",
                              role);
    return NULL;
}

static json_t *messages_out(build_t *b, const json_t *msgs, const char *model)
{
    json_t *out = json_array(), *m, *c;
    size_t i;
    json_array_foreach(msgs, i, m) {
        if (!(c = message_out(b, m, i, model))) break;
        json_array_append_new(out, c);
    }
    return out;
}

/* Tools (functions only) and tool_choice: Cohere knows REQUIRED and NONE; a named function
 * becomes REQUIRED over that function alone. */
static void tools_out(build_t *b, const json_t *root, json_t *up)
{
    const json_t *tools = json_object_get(root, "tools"), *choice = json_object_get(root, "tool_choice");
    const char *only = json_is_object(choice)
                       ? fl_json_str(json_object_get(choice, "function"), "name", NULL) : NULL;
    json_t *out = json_array(), *t;
    size_t i;
    json_array_foreach(tools, i, t) {
        const json_t *fn = json_object_get(t, "function");
        json_t *f;
        if (strcmp(fl_json_str(t, "type", "function"), "function") || !json_is_object(fn)) {
            b->err = fl_error_invalid(b->p, "invalid_value", "tools",
                                      "Cohere takes function tools only");
            break;
        }
        if (only && strcmp(fl_json_str(fn, "name", ""), only)) continue;
        f = json_pack("{s:s}", "name", fl_json_str(fn, "name", ""));
        if (json_object_get(fn, "description")) {
            json_object_set(f, "description", json_object_get(fn, "description"));
        }
        if (json_object_get(fn, "parameters")) {
            json_object_set(f, "parameters", json_object_get(fn, "parameters"));
        }
        json_array_append_new(out, json_pack("{s:s,s:o}", "type", "function", "function", f));
    }
    if (json_array_size(out) > 0) json_object_set(up, "tools", out);
    json_decref(out);
    if (only || (json_is_string(choice) && !strcmp(json_string_value(choice), "required"))) {
        json_object_set_new(up, "tool_choice", json_string("REQUIRED"));
    }
    else if (json_is_string(choice) && !strcmp(json_string_value(choice), "none")) {
        json_object_set_new(up, "tool_choice", json_string("NONE"));
    }
}

/* Sampling and length settings under Cohere's names. */
static void params_out(const json_t *root, json_t *up)
{
    static const char *const same[] = { "temperature", "seed", "frequency_penalty",
                                        "presence_penalty", NULL };
    const char *const *k;
    const json_t *v, *rf;
    for (k = same; *k; k++) {
        if (json_is_number(v = json_object_get(root, *k))) json_object_set(up, *k, (json_t *)v);
    }
    v = json_object_get(root, "max_completion_tokens");
    if (!json_is_integer(v)) v = json_object_get(root, "max_tokens");
    if (json_is_integer(v)) json_object_set(up, "max_tokens", (json_t *)v);
    if (json_is_number(v = json_object_get(root, "top_p"))) json_object_set(up, "p", (json_t *)v);
    v = json_object_get(root, "stop");
    if (json_is_string(v)) json_object_set_new(up, "stop_sequences", json_pack("[O]", v));
    else if (json_is_array(v)) json_object_set(up, "stop_sequences", (json_t *)v);
    rf = json_object_get(root, "response_format");
    if (!strcmp(fl_json_str(rf, "type", ""), "json_object")) {
        json_object_set_new(up, "response_format", json_pack("{s:s}", "type", "json_object"));
    }
    else if (!strcmp(fl_json_str(rf, "type", ""), "json_schema")) {
        /* Cohere's schema-constrained output is json_object with a json_schema */
        json_t *schema = json_object_get(json_object_get(rf, "json_schema"), "schema");
        json_t *o = json_pack("{s:s}", "type", "json_object");
        if (schema) json_object_set(o, "json_schema", schema);
        json_object_set_new(up, "response_format", o);
    }
}

static fl_error_t *cohere_prepare(const fl_call_t *call, fl_upstream_t *up)
{
    const fl_provider_t *pv = call->provider;
    const json_t *root = call->cr->root, *n = json_object_get(root, "n");
    build_t b = { call->pool, model_has_vision(call->model->name), NULL };
    json_t *body;

    if (json_is_integer(n) && json_integer_value(n) > 1) {
        return fl_error_invalid(call->pool, "invalid_value", "n",
                                "Cohere gives one answer per request ('n' must be 1)");
    }
    body = json_pack("{s:s,s:o}", "model", call->model->name, "messages",
                     messages_out(&b, json_object_get(root, "messages"), call->model->name));
    if (!b.err) tools_out(&b, root, body);
    if (b.err) {
        json_decref(body);
        return b.err;
    }
    params_out(root, body);
    if (call->cr->stream) json_object_set_new(body, "stream", json_true());
    up->url = pv->chat_url;
    up->body = fl_json_dump(call->pool, body, 1);
    up->body_len = strlen(up->body);
    up->accept = call->cr->stream ? "text/event-stream" : "application/json";
    if (pv->api_key) {
        fl_upstream_header(up, "Authorization", apr_pstrcat(call->pool, "Bearer ", pv->api_key,
                                                            NULL));
    }
    return NULL;
}

/* --- answers ----------------------------------------------------------------------------- */

/* Cohere's finish_reason as OpenAI's; NULL for ERROR and TIMEOUT, which are failures. */
static const char *finish_of(const char *fr)
{
    if (!fr || !strcmp(fr, "COMPLETE") || !strcmp(fr, "STOP_SEQUENCE")) return "stop";
    if (!strcmp(fr, "MAX_TOKENS")) return "length";
    if (!strcmp(fr, "TOOL_CALL")) return "tool_calls";
    if (!strcmp(fr, "ERROR") || !strcmp(fr, "TIMEOUT")) return NULL;
    return "stop";
}

static void usage_of(fl_usage_t *u, const json_t *usage)
{
    const json_t *billed = json_object_get(usage, "billed_units");
    const json_t *tokens = json_object_get(usage, "tokens");
    apr_int64_t in = fl_json_count(billed, "input_tokens");
    apr_int64_t out = fl_json_count(billed, "output_tokens");
    if (!json_is_object(usage)) return;
    if (in < 0) in = fl_json_count(tokens, "input_tokens");
    if (out < 0) out = fl_json_count(tokens, "output_tokens");
    u->prompt = in;
    u->completion = out;
    u->total = in >= 0 && out >= 0 ? in + out : -1;
    u->cached = fl_json_count(usage, "cached_tokens");
    if (u->cached < 0) u->cached = 0;
    u->reasoning = 0;
}

/* The text parts of message.content, joined. */
static const char *content_text(apr_pool_t *p, const json_t *content)
{
    const char *s = "";
    json_t *part;
    size_t i;
    json_array_foreach(content, i, part) {
        const char *t = fl_json_str(part, "text", NULL);
        if (t && !strcmp(fl_json_str(part, "type", "text"), "text")) s = apr_pstrcat(p, s, t, NULL);
    }
    return s;
}

/* Cohere's tool calls (or one of them: streams send an object) as OpenAI's. */
static json_t *tool_call_of(const json_t *tc, int index, const char *fallback_id)
{
    const json_t *fn = json_object_get(tc, "function"), *args = json_object_get(fn, "arguments");
    char *dumped = NULL;
    json_t *out;
    if (args && !json_is_string(args)) dumped = json_dumps(args, JSON_COMPACT);
    out = fl_oai_tool_call(index, fl_json_str(tc, "id", fallback_id),
                           fl_json_str(fn, "name", NULL),
                           dumped ? dumped : fl_json_str(fn, "arguments", ""));
    free(dumped);
    return out;
}

static fl_error_t *bad_answer(const fl_call_t *call, const char *why)
{
    return fl_error_make(call->pool, 502, "upstream_error", "upstream_error", NULL,
                         "provider %s: %s", call->provider->name, why);
}

static fl_error_t *cohere_response(const fl_call_t *call, const char *body, apr_size_t len,
                                   const char **out, apr_size_t *outlen, fl_usage_t *usage)
{
    json_t *root = json_loadb(body, len, 0, NULL), *calls = NULL, *tc;
    const json_t *msg = json_object_get(root, "message"), *tcs = json_object_get(msg, "tool_calls");
    const char *fr = fl_json_str(root, "finish_reason", NULL), *finish = finish_of(fr);
    const char *text;
    fl_error_t *e = NULL;
    size_t i;

    if (!json_is_object(msg)) {
        e = bad_answer(call, "the answer is not a Cohere chat response");
    }
    else if (!finish) {
        e = bad_answer(call, apr_psprintf(call->pool, "the model stopped with %s", fr));
    }
    if (e) {
        json_decref(root);
        return e;
    }
    usage_of(usage, json_object_get(root, "usage"));
    text = content_text(call->pool, json_object_get(msg, "content"));
    if (json_is_array(tcs) && json_array_size(tcs) > 0) {
        calls = json_array();
        json_array_foreach(tcs, i, tc) {
            json_array_append_new(calls, tool_call_of(tc, -1, apr_psprintf(call->pool, "call_%lu",
                                                                         (unsigned long)i)));
        }
        if (!*text) text = fl_json_str(msg, "tool_plan", "");
    }
    *out = fl_oai_completion(call->pool, call->model->name, *text || !calls ? text : NULL, calls,
                             finish, usage);
    *outlen = strlen(*out);
    json_decref(root);
    return NULL;
}

/* --- streams ----------------------------------------------------------------------------- */

struct fl_stream_t {
    fl_sse_t *sse;
    apr_pool_t *ev_pool;         /* cleared for every event: memory stays flat */
    const char *provider;
    fl_usage_t *usage;
    fl_emit_cb *emit;
    void *baton;
    fl_oai_stream_t st;
    int ntools;                  /* tool calls started so far: the next one's index */
    int ended;                   /* message-end was translated */
};

static apr_status_t emit_delta(fl_stream_t *s, json_t *delta, const char *finish)
{
    char *c = fl_oai_chunk(s->ev_pool, &s->st, delta, finish);
    return s->emit(s->baton, FL_CHUNK_FORWARD, c, strlen(c));
}

static apr_status_t emit_error(fl_stream_t *s, const char *why)
{
    char *ev = fl_oai_error_event(s->ev_pool,
                                  apr_psprintf(s->ev_pool, "provider %s: %s", s->provider, why),
                                  "upstream_error", "upstream_error");
    return s->emit(s->baton, FL_CHUNK_ERROR, ev, strlen(ev));
}

static apr_status_t emit_text(fl_stream_t *s, const char *text)
{
    if (!text || !*text) return APR_SUCCESS;
    return emit_delta(s, json_pack("{s:s}", "content", text), NULL);
}

/* delta.message.tool_calls: an object in Cohere's streams; an array is taken too. */
static const json_t *stream_tool_call(const json_t *delta)
{
    const json_t *tc = json_object_get(json_object_get(delta, "message"), "tool_calls");
    return json_is_array(tc) ? json_array_get(tc, 0) : tc;
}

static apr_status_t on_tool_start(fl_stream_t *s, const json_t *delta)
{
    int index = s->ntools++;
    json_t *tc = tool_call_of(stream_tool_call(delta), index,
                              apr_psprintf(s->ev_pool, "call_%d", index));
    /* the first delta of a call names it; its arguments follow in tool-call-delta events */
    return emit_delta(s, json_pack("{s:[o]}", "tool_calls", tc), NULL);
}

static apr_status_t on_tool_delta(fl_stream_t *s, const json_t *delta)
{
    const json_t *fn = json_object_get(stream_tool_call(delta), "function");
    const char *args = fl_json_str(fn, "arguments", "");
    if (!*args || s->ntools == 0) return APR_SUCCESS;
    return emit_delta(s, json_pack("{s:[o]}", "tool_calls",
                                   fl_oai_tool_call(s->ntools - 1, NULL, NULL, args)), NULL);
}

static apr_status_t on_message_end(fl_stream_t *s, const json_t *delta)
{
    const char *fr = fl_json_str(delta, "finish_reason", NULL), *finish = finish_of(fr);
    const char *uc;
    apr_status_t rv;
    s->ended = 1;
    usage_of(s->usage, json_object_get(delta, "usage"));
    if (!finish) {
        const char *detail = fl_json_str(delta, "error", NULL);
        return emit_error(s, apr_psprintf(s->ev_pool, "the model stopped with %s%s%s", fr,
                                          detail ? ": " : "", detail ? detail : ""));
    }
    if ((rv = emit_delta(s, NULL, finish)) != APR_SUCCESS) return rv;
    if ((uc = fl_oai_usage_chunk(s->ev_pool, &s->st, s->usage))
        && (rv = s->emit(s->baton, FL_CHUNK_FORWARD, uc, strlen(uc))) != APR_SUCCESS) {
        return rv;
    }
    return s->emit(s->baton, FL_CHUNK_DONE, "[DONE]", 6);
}

static apr_status_t dispatch(fl_stream_t *s, const char *type, const json_t *root)
{
    const json_t *delta = json_object_get(root, "delta");
    const json_t *dmsg = json_object_get(delta, "message");
    if (!strcmp(type, "message-start")) {
        return emit_delta(s, json_pack("{s:s}", "content", ""), NULL);
    }
    if (!strcmp(type, "content-delta")) {
        return emit_text(s, fl_json_str(json_object_get(dmsg, "content"), "text", NULL));
    }
    if (!strcmp(type, "tool-plan-delta")) {
        return emit_text(s, fl_json_str(dmsg, "tool_plan", NULL));
    }
    if (!strcmp(type, "tool-call-start")) return on_tool_start(s, delta);
    if (!strcmp(type, "tool-call-delta")) return on_tool_delta(s, delta);
    if (!strcmp(type, "message-end")) return on_message_end(s, delta);
    /* content-start/-end, tool-call-end, citation-*, debug: nothing for an OpenAI client */
    return APR_SUCCESS;
}

static apr_status_t cohere_event(void *baton, const char *event, const char *data,
                                 apr_size_t len)
{
    fl_stream_t *s = baton;
    json_t *root;
    const char *type;
    apr_status_t rv = APR_SUCCESS;

    if (s->ended) return APR_SUCCESS; /* a trailing [DONE] or anything else after the end */
    apr_pool_clear(s->ev_pool);
    root = json_loadb(data, len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return APR_SUCCESS;
    }
    type = fl_json_str(root, "type", *event ? event : NULL);
    if (type) {
        rv = dispatch(s, type, root);
    }
    else if (fl_json_str(root, "message", NULL)) {
        /* an error object ({"message": ...}) in place of an event */
        s->ended = 1;
        rv = emit_error(s, fl_json_str(root, "message", ""));
    }
    json_decref(root);
    return rv;
}

static apr_status_t cohere_stream_open(const fl_call_t *call, fl_usage_t *usage,
                                       fl_emit_cb *emit, void *baton, fl_stream_t **ps)
{
    fl_stream_t *s = apr_pcalloc(call->pool, sizeof(*s));
    apr_status_t rv = apr_pool_create(&s->ev_pool, call->pool);
    if (rv != APR_SUCCESS) return rv;
    s->provider = call->provider->name;
    s->usage = usage;
    s->emit = emit;
    s->baton = baton;
    fl_oai_stream_init(&s->st, call->pool, call->model->name, call->cr->include_usage);
    *ps = s;
    return fl_sse_create(&s->sse, call->pool, MAX_SSE_EVENT, cohere_event, s);
}

static apr_status_t cohere_stream_feed(fl_stream_t *s, const char *buf, apr_size_t len)
{
    return fl_sse_feed(s->sse, buf, len);
}

/* --- errors ------------------------------------------------------------------------------ */

/* Cohere answers errors as {"id", "message"}; they are put in OpenAI's envelope and mapped as
 * OpenAI's are. 498 (invalid token) is Cohere's word for a refused key. */
static fl_error_t *cohere_error(const fl_call_t *call, int status, apr_table_t *headers,
                                const char *body, apr_size_t len)
{
    json_t *root = body ? json_loadb(body, len, 0, NULL) : NULL;
    const char *msg = fl_json_str(root, "message", NULL);
    json_t *env = json_object();
    char *shaped;
    if (!msg && json_is_object(json_object_get(root, "error"))) {
        msg = fl_json_str(json_object_get(root, "error"), "message", NULL);
    }
    if (msg) json_object_set_new(env, "error", json_pack("{s:s}", "message", msg));
    shaped = fl_json_dump(call->pool, env, 1);
    json_decref(root);
    return fl_openai_map_upstream_error(call->pool, call->provider->name,
                                        status == 498 ? 401 : status, headers, shaped,
                                        strlen(shaped));
}

const fl_adapter_t fl_adapter_cohere = {
    .type = "cohere", .vision = 1,
    .configure = cohere_configure,
    .prepare = cohere_prepare, .response = cohere_response, .error = cohere_error,
    .stream_open = cohere_stream_open, .stream_feed = cohere_stream_feed,
};
