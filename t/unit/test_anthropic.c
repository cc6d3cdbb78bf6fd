/* The anthropic adapter on recorded wire traffic: Anthropic's SDK stream fixtures
 * (anthropics/anthropic-sdk-python tests/lib/streaming/fixtures), a recorded answer
 * (vercel/ai packages/anthropic/src/__fixtures__/anthropic-tool-no-args.json) and the
 * documented error bodies. */
#include <stdlib.h>
#include <apr_strings.h>
#include <jansson.h>

#include "fl_test.h"
#include "fl_adapter.h"
#include "fl_json.h"

/* --- set-up ------------------------------------------------------------------------------- */

static fl_provider_t *provider(apr_pool_t *p, const char *const *opts, int n, const char **err)
{
    fl_catalog_t *c = fl_catalog_create(p);
    *err = fl_catalog_add_provider(c, p, "claude", opts, n);
    if (*err) return NULL;
    *err = fl_catalog_resolve(c, p);
    return *err ? NULL : apr_hash_get(c->providers, "claude", APR_HASH_KEY_STRING);
}

static fl_call_t *make_call(apr_pool_t *p, const char *body)
{
    static const char *const opts[] = { "type=anthropic", "base_url=http://127.0.0.1:9/" };
    const char *err;
    fl_error_t *e = NULL;
    fl_call_t *call = apr_pcalloc(p, sizeof(*call));
    fl_model_t *m = apr_pcalloc(p, sizeof(*m));
    fl_provider_t *pv = provider(p, opts, 2, &err);
    pv->api_key = "sk-ant-test";
    m->id = "claude/claude-sonnet-4-5";
    m->name = "claude-sonnet-4-5";
    m->provider = pv;
    call->pool = p;
    call->provider = pv;
    call->model = m;
    call->cr = fl_openai_parse_request(p, body, strlen(body), &e);
    return call;
}

static json_t *prepared(apr_pool_t *p, const char *body, fl_upstream_t **pup, fl_error_t **perr)
{
    fl_call_t *call = make_call(p, body);
    fl_upstream_t *up = fl_upstream_make(p);
    *perr = call->provider->adapter->prepare(call, up);
    *pup = up;
    return *perr ? NULL : fl_json_pool_own(p, json_loads(up->body, 0, NULL));
}

static const char *dump(apr_pool_t *p, const json_t *v)
{
    return v ? fl_json_dump(p, (json_t *)v, 0) : "(none)";
}

/* --- configuration ------------------------------------------------------------------------ */

static void config(apr_pool_t *p)
{
    const char *err;
    static const char *const plain[] = { "type=anthropic" };
    static const char *const v1[] = { "type=anthropic", "base_url=http://127.0.0.1:5/v1/",
                                      "api_version=2024-01-01", "max_tokens=100" };
    static const char *const bad_mt[] = { "type=anthropic", "max_tokens=lots" };
    static const char *const bad_opt[] = { "type=anthropic", "region=x" };
    fl_provider_t *pv = provider(p, plain, 1, &err);
    CHECK(pv != NULL);
    CHECK_STR(pv ? pv->chat_url : NULL, "https://api.anthropic.com/v1/messages");
    pv = provider(p, v1, 4, &err);
    CHECK_STR(pv ? pv->chat_url : NULL, "http://127.0.0.1:5/v1/messages");
    pv = provider(p, bad_mt, 2, &err);
    CHECK(pv == NULL && err && strstr(err, "max_tokens="));
    pv = provider(p, bad_opt, 2, &err);
    CHECK(pv == NULL && err && strstr(err, "region="));
}

/* --- requests ----------------------------------------------------------------------------- */

static void request_translation(apr_pool_t *p)
{
    fl_upstream_t *up;
    fl_error_t *e;
    const char *in =
        "{\"model\":\"claude/claude-sonnet-4-5\",\"messages\":["
        "{\"role\":\"system\",\"content\":\"Be terse.\"},"
        "{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"Use tools.\"}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"What is here?\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBORw0KGgo=\"}},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://example.com/a.jpg\"}}]},"
        "{\"role\":\"user\",\"content\":\"And the weather?\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
        "{\"id\":\"toolu_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}},"
        "{\"id\":\"toolu_2\",\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"arguments\":\"\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"toolu_1\",\"content\":\"sunny\"},"
        "{\"role\":\"tool\",\"tool_call_id\":\"toolu_2\",\"content\":[{\"type\":\"text\",\"text\":\"noon\"}]},"
        "{\"role\":\"user\",\"content\":\"thanks\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather\","
        "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}},"
        "{\"type\":\"function\",\"function\":{\"name\":\"get_time\"}}],"
        "\"tool_choice\":\"required\",\"parallel_tool_calls\":false,"
        "\"max_completion_tokens\":300,\"temperature\":0.5,\"top_p\":0.9,\"stop\":\"END\","
        "\"n\":1,\"presence_penalty\":0.1,\"seed\":3,\"response_format\":{\"type\":\"text\"},"
        "\"user\":\"u-42\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}";
    json_t *b = prepared(p, in, &up, &e);
    const char *h0, *h1;

    CHECK(e == NULL);
    if (!b) return;
    CHECK_STR(up->url, "http://127.0.0.1:9/v1/messages");
    CHECK_STR(up->accept, "text/event-stream");
    CHECK(up->content_type == NULL); /* application/json */
    h0 = APR_ARRAY_IDX(up->headers, 0, const char *);
    h1 = APR_ARRAY_IDX(up->headers, 1, const char *);
    CHECK(up->headers->nelts == 2);
    CHECK_STR(h0, "x-api-key: sk-ant-test");
    CHECK_STR(h1, "anthropic-version: 2023-06-01");

    CHECK_STR(fl_json_str(b, "model", NULL), "claude-sonnet-4-5");
    CHECK_STR(fl_json_str(b, "system", NULL), "Be terse.\n\nUse tools.");
    CHECK_STR(dump(p, json_object_get(b, "messages")),
        "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"What is here?\"},"
        "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"iVBORw0KGgo=\"}},"
        "{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"https://example.com/a.jpg\"}},"
        "{\"type\":\"text\",\"text\":\"And the weather?\"}]},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"get_weather\",\"input\":{\"city\":\"Paris\"}},"
        "{\"type\":\"tool_use\",\"id\":\"toolu_2\",\"name\":\"get_time\",\"input\":{}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\",\"content\":\"sunny\"},"
        "{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_2\",\"content\":\"noon\"},"
        "{\"type\":\"text\",\"text\":\"thanks\"}]}]");
    CHECK_STR(dump(p, json_object_get(b, "tools")),
        "[{\"name\":\"get_weather\",\"description\":\"Weather\",\"input_schema\":{\"type\":\"object\","
        "\"properties\":{\"city\":{\"type\":\"string\"}}}},"
        "{\"name\":\"get_time\",\"input_schema\":{\"type\":\"object\",\"properties\":{}}}]");
    CHECK_STR(dump(p, json_object_get(b, "tool_choice")),
              "{\"type\":\"any\",\"disable_parallel_tool_use\":true}");
    CHECK(json_integer_value(json_object_get(b, "max_tokens")) == 300);
    CHECK(json_real_value(json_object_get(b, "temperature")) == 0.5);
    CHECK(json_real_value(json_object_get(b, "top_p")) == 0.9);
    CHECK_STR(dump(p, json_object_get(b, "stop_sequences")), "[\"END\"]");
    CHECK_STR(dump(p, json_object_get(b, "metadata")), "{\"user_id\":\"u-42\"}");
    CHECK(json_is_true(json_object_get(b, "stream")));
    /* what Anthropic does not take stays behind */
    CHECK(!json_object_get(b, "n") && !json_object_get(b, "presence_penalty")
          && !json_object_get(b, "seed") && !json_object_get(b, "response_format")
          && !json_object_get(b, "stream_options") && !json_object_get(b, "max_completion_tokens")
          && !json_object_get(b, "user") && !json_object_get(b, "parallel_tool_calls"));
}

static void request_defaults_and_refusals(apr_pool_t *p)
{
    fl_upstream_t *up;
    fl_error_t *e;
    json_t *b = prepared(p, "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                            "\"max_tokens\":7,\"stop\":[\"a\",\"b\"],"
                            "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
                            "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"f\"}}}",
                         &up, &e);
    CHECK(b && json_integer_value(json_object_get(b, "max_tokens")) == 7);
    CHECK_STR(dump(p, json_object_get(b, "stop_sequences")), "[\"a\",\"b\"]");
    CHECK_STR(dump(p, json_object_get(b, "tool_choice")), "{\"type\":\"tool\",\"name\":\"f\"}");
    CHECK(b && !json_object_get(b, "stream") && !json_object_get(b, "system"));
    CHECK_STR(up->accept, "application/json");

    b = prepared(p, "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
                    "\"tool_choice\":\"none\"}", &up, &e);
    CHECK(b && json_integer_value(json_object_get(b, "max_tokens")) == 4096);
    CHECK_STR(dump(p, json_object_get(b, "tool_choice")), "{\"type\":\"none\"}");

    /* an audio part: a clear 400 naming messages */
    b = prepared(p, "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\","
                    "\"input_audio\":{\"data\":\"AAAA\",\"format\":\"wav\"}}]}]}", &up, &e);
    CHECK(!b && e && e->status == 400);
    CHECK_STR(e ? e->code : NULL, "unsupported_content");
    CHECK_STR(e ? e->param : NULL, "messages");
    /* tool arguments that are not a JSON object */
    b = prepared(p, "{\"model\":\"x\",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"t\","
                    "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"[1\"}}]}]}", &up, &e);
    CHECK(!b && e && e->status == 400 && !strcmp(e->param, "messages"));
    /* an image URL that is neither data: nor http(s) */
    b = prepared(p, "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
                    "\"image_url\":{\"url\":\"ftp://x/y.png\"}}]}]}", &up, &e);
    CHECK(!b && e && e->status == 400);
    /* an assistant's refusal part stays what it said; empty text is left out */
    b = prepared(p, "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
                    "{\"role\":\"assistant\",\"content\":[{\"type\":\"refusal\",\"refusal\":\"No.\"},"
                    "{\"type\":\"text\",\"text\":\"\"}]}]}", &up, &e);
    CHECK_STR(dump(p, json_object_get(b, "messages")),
              "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"q\"}]},"
              "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"No.\"}]}]");
    b = prepared(p, "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"\"}]}", &up, &e);
    CHECK(!b && e && e->status == 400);
    b = prepared(p, "{\"model\":\"x\",\"messages\":[{\"role\":\"function\",\"content\":\"x\"}]}", &up, &e);
    CHECK(!b && e && e->status == 400);
}

/* --- answers ------------------------------------------------------------------------------ */

static void responses(apr_pool_t *p)
{
    /* vercel/ai packages/anthropic/src/__fixtures__/anthropic-tool-no-args.json */
    const char *rec =
        "{\"model\":\"claude-3-opus-20240229\",\"id\":\"msg_01GCBaV8gyWAYgMVggRqZbuQ\",\"type\":\"message\","
        "\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"<thinking>...</thinking>\\n\\n"
        "Okay, I will update the current issue list:\"},{\"type\":\"tool_use\",\"id\":"
        "\"toolu_01LRmxn9vGM1d2DZSDBowdZ1\",\"name\":\"updateIssueList\",\"input\":{}}],"
        "\"stop_reason\":\"tool_use\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":602,"
        "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"cache_creation\":"
        "{\"ephemeral_5m_input_tokens\":0,\"ephemeral_1h_input_tokens\":0},\"output_tokens\":93,"
        "\"service_tier\":\"standard\"}}";
    const char *cached =
        "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\","
        "\"content\":[{\"type\":\"text\",\"text\":\"Hel\"},{\"type\":\"text\",\"text\":\"lo\"}],"
        "\"stop_reason\":\"max_tokens\",\"usage\":{\"input_tokens\":10,\"cache_creation_input_tokens\":"
        "100,\"cache_read_input_tokens\":1000,\"output_tokens\":5,\"output_tokens_details\":"
        "{\"thinking_tokens\":2}}}";
    fl_call_t *call = make_call(p, "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    const char *out;
    apr_size_t n;
    fl_usage_t u;
    json_t *o, *msg, *tc;
    fl_error_t *e;

    fl_usage_clear(&u);
    e = call->provider->adapter->response(call, rec, strlen(rec), &out, &n, &u);
    CHECK(e == NULL);
    o = fl_json_pool_own(p, json_loads(out, 0, NULL));
    msg = json_object_get(json_array_get(json_object_get(o, "choices"), 0), "message");
    tc = json_array_get(json_object_get(msg, "tool_calls"), 0);
    CHECK_STR(fl_json_str(o, "object", NULL), "chat.completion");
    CHECK_STR(fl_json_str(msg, "content", NULL),
              "<thinking>...</thinking>\n\nOkay, I will update the current issue list:");
    CHECK_STR(fl_json_str(tc, "id", NULL), "toolu_01LRmxn9vGM1d2DZSDBowdZ1");
    CHECK_STR(fl_json_str(tc, "type", NULL), "function");
    CHECK_STR(fl_json_str(json_object_get(tc, "function"), "name", NULL), "updateIssueList");
    CHECK_STR(fl_json_str(json_object_get(tc, "function"), "arguments", NULL), "{}");
    CHECK_STR(fl_json_str(json_array_get(json_object_get(o, "choices"), 0), "finish_reason", NULL),
              "tool_calls");
    CHECK(u.prompt == 602 && u.completion == 93 && u.total == 695 && u.cached == 0);
    CHECK(json_integer_value(json_object_get(json_object_get(o, "usage"), "prompt_tokens")) == 602);

    fl_usage_clear(&u);
    e = call->provider->adapter->response(call, cached, strlen(cached), &out, &n, &u);
    o = fl_json_pool_own(p, json_loads(out, 0, NULL));
    msg = json_object_get(json_array_get(json_object_get(o, "choices"), 0), "message");
    CHECK_STR(fl_json_str(msg, "content", NULL), "Hello");
    CHECK(json_object_get(msg, "tool_calls") == NULL);
    CHECK_STR(fl_json_str(json_array_get(json_object_get(o, "choices"), 0), "finish_reason", NULL),
              "length");
    /* prompt = input + cache reads + cache writes; cached = the reads */
    CHECK(u.prompt == 1110 && u.cached == 1000 && u.completion == 5 && u.total == 1115
          && u.reasoning == 2);

    e = call->provider->adapter->response(call, "<html>", 6, &out, &n, &u);
    CHECK(e && e->status == 502);
}

/* --- streams ------------------------------------------------------------------------------ */

typedef struct seen_t {
    apr_pool_t *p;
    const char *content, *tool_id, *tool_name, *tool_args, *finish, *error;
    int chunks, usage_chunks, done, errors, roles, max_tool_index, after_end;
    apr_int64_t usage_prompt, usage_completion;
} seen_t;

static apr_status_t collect(void *baton, fl_chunk_kind_e kind, const char *data, apr_size_t len)
{
    seen_t *s = baton;
    json_t *o, *ch, *d, *tc;
    size_t i;
    if (s->done || s->errors) s->after_end++;
    if (kind == FL_CHUNK_DONE) { s->done++; return APR_SUCCESS; }
    o = json_loadb(data, len, 0, NULL);
    if (kind == FL_CHUNK_ERROR) {
        s->errors++;
        s->error = apr_pstrdup(s->p, fl_json_str(json_object_get(o, "error"), "code", ""));
        json_decref(o);
        return APR_SUCCESS;
    }
    s->chunks++;
    if (json_is_object(json_object_get(o, "usage"))) {
        s->usage_chunks++;
        s->usage_prompt = json_integer_value(json_object_get(json_object_get(o, "usage"), "prompt_tokens"));
        s->usage_completion = json_integer_value(json_object_get(json_object_get(o, "usage"), "completion_tokens"));
    }
    ch = json_array_get(json_object_get(o, "choices"), 0);
    d = json_object_get(ch, "delta");
    if (fl_json_str(d, "role", NULL)) s->roles++;
    if (fl_json_str(d, "content", NULL)) s->content = apr_pstrcat(s->p, s->content, fl_json_str(d, "content", ""), NULL);
    if (fl_json_str(ch, "finish_reason", NULL)) s->finish = apr_pstrdup(s->p, fl_json_str(ch, "finish_reason", ""));
    json_array_foreach(json_object_get(d, "tool_calls"), i, tc) {
        json_t *fn = json_object_get(tc, "function");
        int idx = (int)json_integer_value(json_object_get(tc, "index"));
        if (idx > s->max_tool_index) s->max_tool_index = idx;
        if (fl_json_str(tc, "id", NULL)) s->tool_id = apr_pstrdup(s->p, fl_json_str(tc, "id", ""));
        if (fl_json_str(fn, "name", NULL)) s->tool_name = apr_pstrdup(s->p, fl_json_str(fn, "name", ""));
        s->tool_args = apr_pstrcat(s->p, s->tool_args, fl_json_str(fn, "arguments", ""), NULL);
    }
    json_decref(o);
    return APR_SUCCESS;
}

/* Feeds a recorded stream split at one point (or byte by byte with cut < 0). */
static seen_t run_stream(apr_pool_t *p, const char *body, const char *in, long cut, fl_usage_t *u)
{
    seen_t s;
    fl_call_t *call = make_call(p, body);
    fl_stream_t *st;
    apr_size_t len = strlen(in), i;
    memset(&s, 0, sizeof(s));
    s.p = p;
    s.content = s.tool_args = "";
    s.max_tool_index = -1;
    fl_usage_clear(u);
    call->provider->adapter->stream_open(call, u, collect, &s, &st);
    if (cut < 0) {
        for (i = 0; i < len; i++) call->provider->adapter->stream_feed(st, in + i, 1);
    }
    else {
        call->provider->adapter->stream_feed(st, in, (apr_size_t)cut);
        call->provider->adapter->stream_feed(st, in + cut, len - (apr_size_t)cut);
    }
    return s;
}

/* anthropics/anthropic-sdk-python tests/lib/streaming/fixtures/tool_use_response.txt */
static const char TOOL_STREAM[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_019Q1hrJbZG26Fb9BQhrkHEr\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-20250514\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":377,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":1,\"service_tier\":\"standard\"}}}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
    "event: ping\n"
    "data: {\"type\": \"ping\"}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"I\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"'ll check the current weather in Paris for you.\"}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01NRLabsLyVHZPKxbKvkfSMn\",\"name\":\"get_weather\",\"caller\":{\"type\":\"direct\"},\"input\":{}}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"locati\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"on\\\": \\\"P\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"ar\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"is\\\"}\"}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":65}}\n\n"
    "event: message_stop\n"
    "data: {\"type\":\"message_stop\"}\n\n";

/* basic_response.txt from the same folder, CRLF line ends (the parser takes any) */
static const char BASIC_STREAM[] =
    "event: message_start\r\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_4QpJur2dWWDjF6C758FbBw5vm12BaVipnK\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-3-opus-latest\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":11,\"output_tokens\":1}}}\r\n\r\n"
    "event: content_block_start\r\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\r\n\r\n"
    "event: ping\r\n"
    "data: {\"type\": \"ping\"}\r\n\r\n"
    "event: content_block_delta\r\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\r\n\r\n"
    "event: content_block_delta\r\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" there\"}}\r\n\r\n"
    "event: content_block_delta\r\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"!\"}}\r\n\r\n"
    "event: content_block_stop\r\n"
    "data: {\"type\":\"content_block_stop\",\"index\":0}\r\n\r\n"
    "event: message_delta\r\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":6}}\r\n\r\n"
    "event: message_stop\r\n"
    "data: {\"type\":\"message_stop\"}\r\n\r\n";

/* an overloaded error mid-stream, as the SDK's _streaming.py expects it */
static const char ERROR_STREAM[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":11,\"output_tokens\":1}}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n"
    "event: error\n"
    "data: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"
    "event: message_stop\n"
    "data: {\"type\":\"message_stop\"}\n\n";

/* extended thinking before the answer (thinking and signature deltas have no place in a chat
 * completion), and a message_delta that repeats the whole usage with cache counts, as newer
 * recordings do (vercel/ai packages/anthropic/src/__fixtures__/anthropic-text.chunks.txt) */
static const char THINKING_STREAM[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_2\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-opus-4-5\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":12,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":1}}}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Let me think.\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"EqQBCgIYAhIM\"}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Forty-two.\"}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\",\"stop_sequence\":null},\"usage\":{\"input_tokens\":12,\"cache_creation_input_tokens\":30,\"cache_read_input_tokens\":400,\"output_tokens\":30,\"output_tokens_details\":{\"thinking_tokens\":20}}}\n\n"
    "event: message_stop\n"
    "data: {\"type\":\"message_stop\"}\n\n";

static apr_status_t count_only(void *baton, fl_chunk_kind_e kind, const char *data, apr_size_t len)
{
    (*(long *)baton)++;
    return APR_SUCCESS;
}

static long rss_kb(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
        fclose(f);
    }
    return rss * 4;
}

/* A long answer: memory must not grow with the number of events. */
static void long_stream(apr_pool_t *p)
{
    static const char start[] =
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":1}}}\n\n";
    static const char delta[] =
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
        "{\"type\":\"text_delta\",\"text\":\"0123456789 0123456789 0123456789 0123456789\"}}\n\n";
    fl_call_t *call = make_call(p, "{\"model\":\"x\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    fl_usage_t u;
    fl_stream_t *st;
    long n = 0, before = 0, i;
    fl_usage_clear(&u);
    call->provider->adapter->stream_open(call, &u, count_only, &n, &st);
    call->provider->adapter->stream_feed(st, start, sizeof(start) - 1);
    for (i = 0; i < 200000; i++) {
        if (i == 20000) before = rss_kb();
        call->provider->adapter->stream_feed(st, delta, sizeof(delta) - 1);
    }
    CHECK(n == 200001);
    if (rss_kb() - before > 2048) fprintf(stderr, "  rss grew %ld kB\n", rss_kb() - before);
    CHECK(rss_kb() - before <= 2048);
}

static void streams(apr_pool_t *p)
{
    const char *with_usage = "{\"model\":\"x\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
                             "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    const char *no_usage = "{\"model\":\"x\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    apr_size_t len = strlen(TOOL_STREAM);
    long cut;
    int bad = 0;
    fl_usage_t u;
    seen_t s;
    apr_pool_t *sub;

    apr_pool_create(&sub, p);
    for (cut = 0; cut <= (long)len; cut++) {
        apr_pool_clear(sub);
        s = run_stream(sub, with_usage, TOOL_STREAM, cut, &u);
        if (strcmp(s.content, "I'll check the current weather in Paris for you.")
            || !s.tool_id || strcmp(s.tool_id, "toolu_01NRLabsLyVHZPKxbKvkfSMn")
            || !s.tool_name || strcmp(s.tool_name, "get_weather")
            || strcmp(s.tool_args, "{\"location\": \"Paris\"}") || s.max_tool_index != 0
            || !s.finish || strcmp(s.finish, "tool_calls") || s.done != 1 || s.errors
            || s.usage_chunks != 1 || s.usage_prompt != 377 || s.usage_completion != 65
            || s.roles != 1 || s.after_end || u.prompt != 377 || u.completion != 65
            || u.total != 442 || u.cached != 0) {
            if (!bad++) fprintf(stderr, "  tool stream split at %ld\n", cut);
        }
    }
    CHECK(bad == 0);

    len = strlen(BASIC_STREAM);
    bad = 0;
    for (cut = 0; cut <= (long)len; cut++) {
        apr_pool_clear(sub);
        s = run_stream(sub, no_usage, BASIC_STREAM, cut, &u);
        if (strcmp(s.content, "Hello there!") || !s.finish || strcmp(s.finish, "stop")
            || s.done != 1 || s.usage_chunks || s.tool_id || u.prompt != 11 || u.completion != 6) {
            if (!bad++) fprintf(stderr, "  basic stream split at %ld\n", cut);
        }
    }
    CHECK(bad == 0);

    s = run_stream(p, no_usage, BASIC_STREAM, -1, &u);
    CHECK_STR(s.content, "Hello there!");
    CHECK(s.done == 1);

    s = run_stream(p, with_usage, THINKING_STREAM, 0, &u);
    CHECK_STR(s.content, "Forty-two.");
    CHECK_STR(s.finish, "length");
    CHECK(s.done == 1 && s.usage_chunks == 1 && s.usage_prompt == 442 && s.usage_completion == 30);
    CHECK(u.prompt == 442 && u.cached == 400 && u.completion == 30 && u.reasoning == 20
          && u.total == 472);

    s = run_stream(p, with_usage, ERROR_STREAM, -1, &u);
    CHECK(s.errors == 1 && s.done == 0 && s.after_end == 0 && s.usage_chunks == 0);
    CHECK_STR(s.error, "overloaded_error");
    CHECK_STR(s.content, "Hi");
    CHECK(u.prompt == 11);

    /* garbage where an event should be: an error event, the transfer stops */
    s = run_stream(p, no_usage, "event: message_start\ndata: {nope\n\n", 0, &u);
    CHECK(s.errors == 1 && s.done == 0);
}

/* --- errors ------------------------------------------------------------------------------- */

static fl_error_t *map_error(apr_pool_t *p, int status, const char *body, const char *retry_after)
{
    fl_call_t *call = make_call(p, "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    apr_table_t *h = apr_table_make(p, 2);
    if (retry_after) apr_table_set(h, "retry-after", retry_after);
    return call->provider->adapter->error(call, status, h, body, strlen(body));
}

static void errors(apr_pool_t *p)
{
    fl_error_t *e;
    e = map_error(p, 429, "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":"
                          "\"Number of request tokens has exceeded your per-minute rate limit\"},"
                          "\"request_id\":\"req_011CV5\"}", "7");
    CHECK(e->status == 429);
    CHECK_STR(e->type, "rate_limit_error");
    CHECK_STR(e->code, "rate_limit_exceeded");
    CHECK_STR(e->retry_after, "7");
    CHECK(strstr(e->message, "per-minute rate limit") != NULL);

    e = map_error(p, 529, "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
                          "\"Overloaded\"},\"request_id\":\"req_1\"}", NULL);
    CHECK(e->status == 502);
    CHECK_STR(e->type, "upstream_error");
    CHECK(strstr(e->message, "overloaded_error") && strstr(e->message, "Overloaded"));

    e = map_error(p, 500, "{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":"
                          "\"Internal server error\"}}", NULL);
    CHECK(e->status == 502);

    e = map_error(p, 400, "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":"
                          "\"prompt is too long: 205351 tokens > 200000 maximum\"},"
                          "\"request_id\":\"req_011CV5J4YZo4J3KLTDZgDN7S\"}", NULL);
    CHECK(e->status == 400);
    CHECK_STR(e->type, "invalid_request_error");
    CHECK(strstr(e->message, "prompt is too long: 205351 tokens > 200000 maximum") != NULL);

    e = map_error(p, 401, "{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\",\"message\":"
                          "\"invalid x-api-key\"}}", NULL);
    CHECK(e->status == 502);
    CHECK_STR(e->code, "upstream_auth_failed");

    e = map_error(p, 404, "{\"type\":\"error\",\"error\":{\"type\":\"not_found_error\",\"message\":"
                          "\"model: claude-nope\"}}", NULL);
    CHECK(e->status == 404);
    CHECK_STR(e->code, "model_not_found");

    e = map_error(p, 413, "{\"type\":\"error\",\"error\":{\"type\":\"request_too_large\",\"message\":"
                          "\"Request exceeds the maximum allowed number of bytes.\"}}", NULL);
    CHECK(e->status == 413);

    e = map_error(p, 429, "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":"
                          "\"spend limit\",\"details\":{\"error_code\":\"enforced_spend_limit_reached\"}}}",
                  NULL);
    CHECK(e->status == 429);
    CHECK_STR(e->code, "insufficient_quota");

    e = map_error(p, 502, "<html>bad gateway</html>", NULL);
    CHECK(e->status == 502);
}

void test_anthropic(apr_pool_t *p)
{
    config(p);
    request_translation(p);
    request_defaults_and_refusals(p);
    responses(p);
    streams(p);
    long_stream(p);
    errors(p);
}
