/* Unit tests of the Azure OpenAI and Cohere v2 adapters on recorded wire traffic. Called from
 * test_compat() (test_compat.c). */
#include <stdlib.h>
#include <apr_strings.h>
#include <jansson.h>

#include "fl_test.h"
#include "fl_adapter.h"
#include "fl_catalog.h"
#include "fl_openai.h"

void test_azure_cohere(apr_pool_t *p);

/* --- harness ----------------------------------------------------------------------------- */

typedef struct seen_t {
    apr_pool_t *p;
    const char *out;             /* what was emitted, summarised, joined with '|' */
    const char *last;            /* the last payload as emitted */
} seen_t;

/* A chunk summarised without its random id/created: the delta and finish reason, the usage, or
 * the error code; [DONE] as DONE. */
static const char *summarise(apr_pool_t *p, fl_chunk_kind_e kind, const char *data, apr_size_t len)
{
    json_t *root, *ch, *u;
    const char *s;
    char *d;
    if (kind == FL_CHUNK_DONE) return apr_pstrmemdup(p, data, len);
    root = json_loadb(data, len, 0, NULL);
    if (kind == FL_CHUNK_ERROR) {
        s = apr_psprintf(p, "ERROR:%s", json_string_value(json_object_get(
                                            json_object_get(root, "error"), "code")));
    }
    else if (json_is_object(u = json_object_get(root, "usage"))) {
        s = apr_psprintf(p, "usage:%d/%d/%d", (int)json_integer_value(json_object_get(u, "prompt_tokens")),
                         (int)json_integer_value(json_object_get(u, "completion_tokens")),
                         (int)json_integer_value(json_object_get(u, "total_tokens")));
    }
    else {
        ch = json_array_get(json_object_get(root, "choices"), 0);
        d = json_dumps(json_object_get(ch, "delta"), JSON_COMPACT | JSON_SORT_KEYS);
        s = apr_psprintf(p, "%s%s%s", d ? d : "nodelta",
                         json_is_string(json_object_get(ch, "finish_reason")) ? "#" : "",
                         json_is_string(json_object_get(ch, "finish_reason"))
                         ? json_string_value(json_object_get(ch, "finish_reason")) : "");
        free(d);
    }
    json_decref(root);
    return s;
}

static apr_status_t collect(void *baton, fl_chunk_kind_e kind, const char *data, apr_size_t len)
{
    seen_t *s = baton;
    const char *one = summarise(s->p, kind, data, len);
    s->out = *s->out ? apr_pstrcat(s->p, s->out, "|", one, NULL) : one;
    s->last = apr_pstrmemdup(s->p, data, len);
    return APR_SUCCESS;
}

static fl_provider_t *provider(apr_pool_t *p, const char *name, const char *const *opts, int n,
                               const char **err)
{
    fl_catalog_t *c = fl_catalog_create(p);
    *err = fl_catalog_add_provider(c, p, name, opts, n);
    return *err ? NULL : apr_hash_get(c->providers, name, APR_HASH_KEY_STRING);
}

static fl_call_t *make_call(apr_pool_t *p, fl_provider_t *pv, const char *model, const char *body)
{
    fl_call_t *call = apr_pcalloc(p, sizeof(*call));
    fl_model_t *m = apr_pcalloc(p, sizeof(*m));
    fl_error_t *e = NULL;
    m->name = model;
    m->id = apr_pstrcat(p, pv->name, "/", model, NULL);
    m->provider = pv;
    call->pool = p;
    call->provider = pv;
    call->model = m;
    call->cr = fl_openai_parse_request(p, body, strlen(body), &e);
    return call;
}

/* Feeds a recorded stream split at every byte; every split must give want. */
static void stream_all_splits(apr_pool_t *p, const fl_call_t *call, const char *in, const char *want,
                              fl_usage_t *last_usage)
{
    apr_size_t len = strlen(in), cut;
    int bad = 0;
    for (cut = 0; cut <= len; cut++) {
        seen_t s = { p, "", NULL };
        fl_stream_t *st;
        fl_usage_t u;
        fl_usage_clear(&u);
        call->provider->adapter->stream_open(call, &u, collect, &s, &st);
        call->provider->adapter->stream_feed(st, in, cut);
        call->provider->adapter->stream_feed(st, in + cut, len - cut);
        if (strcmp(s.out, want)) {
            if (!bad++) fprintf(stderr, "  split at %lu: got %s\n  want %s\n", (unsigned long)cut,
                                s.out, want);
        }
        *last_usage = u;
    }
    CHECK(bad == 0);
}

static const char *header_of(const fl_upstream_t *up, const char *prefix)
{
    int i;
    for (i = 0; i < up->headers->nelts; i++) {
        const char *h = APR_ARRAY_IDX(up->headers, i, const char *);
        if (!strncmp(h, prefix, strlen(prefix))) return h;
    }
    return NULL;
}

/* --- Azure ------------------------------------------------------------------------------- */

static void azure_config(apr_pool_t *p)
{
    static const char *const no_version[] = { "type=azure", "base_url=https://r.openai.azure.com" };
    static const char *const bad_version[] = { "type=azure", "base_url=https://r.openai.azure.com",
                                               "api_version=2024-10-21&x=1" };
    static const char *const no_base[] = { "type=azure", "api_version=2024-10-21" };
    static const char *const unknown[] = { "type=azure", "base_url=https://r", "api_version=1",
                                           "region=x" };
    static const char *const env_base[] = { "type=azure", "base_url_env=FL_TEST_UNSET_AZURE_ENDPOINT",
                                            "api_version=2024-10-21" };
    const char *err;
    fl_provider_t *pv;
    CHECK(!provider(p, "az", no_version, 2, &err) && strstr(err, "api_version="));
    /* base_url_env= is enough at parse time; unset at start-up, configure says which */
    pv = provider(p, "az", env_base, 3, &err);
    CHECK(pv != NULL);
    if (pv) {
        err = pv->adapter->configure(pv, p);
        CHECK(err && strstr(err, "FL_TEST_UNSET_AZURE_ENDPOINT"));
    }
    CHECK(!provider(p, "az", bad_version, 3, &err) && strstr(err, "api_version=2024-10-21&x=1"));
    CHECK(!provider(p, "az", no_base, 2, &err) && strstr(err, "base_url="));
    CHECK(!provider(p, "az", unknown, 4, &err) && strstr(err, "region="));
}

static fl_provider_t *azure_provider(apr_pool_t *p, const char *base)
{
    static const char *const opts[] = { "type=azure", "base_url=https://x.openai.azure.com",
                                        "api_version=2024-10-21", "key_env=AZURE_OPENAI_API_KEY" };
    const char *err;
    fl_provider_t *pv = provider(p, "az", opts, 4, &err);
    pv->resolved_base = base;
    pv->api_key = "azkey";
    CHECK(pv->adapter->configure(pv, p) == NULL);
    return pv;
}

static void azure_prepare(apr_pool_t *p)
{
    const char *body = "{\"model\":\"az/my dep\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                       "\"stream\":true}";
    fl_provider_t *pv = azure_provider(p, "https://res.openai.azure.com");
    fl_call_t *call = make_call(p, pv, "my dep", body);
    fl_upstream_t *up = fl_upstream_make(p);
    CHECK(pv->adapter->prepare(call, up) == NULL);
    CHECK_STR(up->url, "https://res.openai.azure.com/openai/deployments/my%20dep/chat/completions"
                       "?api-version=2024-10-21");
    CHECK_STR(header_of(up, "api-key:"), "api-key: azkey");
    CHECK(header_of(up, "Authorization:") == NULL);
    CHECK_STR(up->accept, "text/event-stream");
    CHECK(strstr(up->body, "\"include_usage\":true") != NULL);
    /* a base that already ends in /openai is not doubled */
    pv = azure_provider(p, "https://res.openai.azure.com/openai");
    call = make_call(p, pv, "gpt4o", body);
    up = fl_upstream_make(p);
    pv->adapter->prepare(call, up);
    CHECK_STR(up->url, "https://res.openai.azure.com/openai/deployments/gpt4o/chat/completions"
                       "?api-version=2024-10-21");
}

/* Azure's chunks as recorded [vercel/ai:packages/openai/src/chat/__fixtures__/
 * azure-model-router.1.chunks.txt], shortened, in SSE framing with CRLF. */
#define AZ_FILTER "data: {\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\",\"object\":\"\"," \
    "\"prompt_filter_results\":[{\"prompt_index\":0,\"content_filter_results\":{\"hate\":" \
    "{\"filtered\":false,\"severity\":\"safe\"},\"jailbreak\":{\"filtered\":false,\"detected\":false}}}]}\r\n\r\n"
#define AZ_ROLE "data: {\"choices\":[{\"content_filter_results\":{},\"delta\":{\"content\":\"\"," \
    "\"refusal\":null,\"role\":\"assistant\"},\"finish_reason\":null,\"index\":0,\"logprobs\":null}]," \
    "\"created\":1762317021,\"id\":\"chatcmpl-CYPS1\",\"model\":\"gpt-5-nano-2025-08-07\"," \
    "\"object\":\"chat.completion.chunk\",\"system_fingerprint\":null}\r\n\r\n"
#define AZ_TEXT "data: {\"choices\":[{\"content_filter_results\":{\"hate\":{\"filtered\":false," \
    "\"severity\":\"safe\"}},\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null,\"index\":0," \
    "\"logprobs\":null}],\"created\":1762317021,\"id\":\"chatcmpl-CYPS1\",\"model\":\"gpt-5-nano\"," \
    "\"object\":\"chat.completion.chunk\"}\r\n\r\n"
#define AZ_STOP "data: {\"choices\":[{\"content_filter_results\":{},\"delta\":{},\"finish_reason\":" \
    "\"stop\",\"index\":0,\"logprobs\":null}],\"created\":1762317021,\"id\":\"chatcmpl-CYPS1\"," \
    "\"model\":\"gpt-5-nano\",\"object\":\"chat.completion.chunk\"}\r\n\r\n"
#define AZ_USAGE "data: {\"choices\":[],\"created\":1762317021,\"id\":\"chatcmpl-CYPS1\",\"model\":" \
    "\"gpt-5-nano\",\"object\":\"chat.completion.chunk\",\"usage\":{\"completion_tokens\":78," \
    "\"completion_tokens_details\":{\"reasoning_tokens\":64},\"prompt_tokens\":15," \
    "\"prompt_tokens_details\":{\"cached_tokens\":0},\"total_tokens\":93}}\r\n\r\n"

/* Forwarded chunks pass unchanged, so their summary is the recorded delta. */
static void azure_stream(apr_pool_t *p)
{
    const char *in = AZ_FILTER AZ_ROLE AZ_TEXT AZ_STOP AZ_USAGE "data: [DONE]\r\n\r\n";
    const char *plain = "{\"model\":\"az/d\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                        "\"stream\":true}";
    const char *usage = "{\"model\":\"az/d\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                        "\"stream\":true,\"stream_options\":{\"include_usage\":true}}";
    fl_provider_t *pv = azure_provider(p, "https://res.openai.azure.com");
    fl_usage_t u;
    stream_all_splits(p, make_call(p, pv, "d", plain), in,
                      "{\"content\":\"\",\"refusal\":null,\"role\":\"assistant\"}|"
                      "{\"content\":\"Hi\"}|{}#stop|[DONE]", &u);
    CHECK(u.prompt == 15 && u.completion == 78 && u.total == 93 && u.reasoning == 64 && u.cached == 0);
    stream_all_splits(p, make_call(p, pv, "d", usage), in,
                      "{\"content\":\"\",\"refusal\":null,\"role\":\"assistant\"}|"
                      "{\"content\":\"Hi\"}|{}#stop|usage:15/78/93|[DONE]", &u);
    /* content_filter_results stay on the choices the client gets */
    {
        seen_t s = { p, "", NULL };
        fl_stream_t *st;
        fl_call_t *call = make_call(p, pv, "d", plain);
        fl_usage_clear(&u);
        pv->adapter->stream_open(call, &u, collect, &s, &st);
        pv->adapter->stream_feed(st, AZ_TEXT, strlen(AZ_TEXT));
        CHECK_STR(s.out, "{\"content\":\"Hi\"}");
        CHECK(s.last && strstr(s.last, "\"content_filter_results\":{\"hate\"") != NULL);
    }
}

static void azure_errors(apr_pool_t *p)
{
    fl_provider_t *pv = azure_provider(p, "https://res.openai.azure.com");
    fl_call_t *call = make_call(p, pv, "d", "{\"model\":\"az/d\",\"messages\":[{\"role\":\"user\"}]}");
    apr_table_t *h = apr_table_make(p, 2);
    const char *throttled = "{\"error\":{\"code\":\"429\",\"message\":\"Requests to the "
                            "ChatCompletions_Create Operation under Azure OpenAI API version "
                            "2024-10-21 have exceeded token rate limit. Please retry after 7 seconds.\"}}";
    const char *filtered = "{\"error\":{\"message\":\"The response was filtered due to the prompt "
                           "triggering Azure OpenAI's content management policy.\",\"type\":null,"
                           "\"param\":\"prompt\",\"code\":\"content_filter\",\"status\":400,"
                           "\"innererror\":{\"code\":\"ResponsibleAIPolicyViolation\"}}}";
    fl_error_t *e;
    apr_table_set(h, "retry-after", "7");
    apr_table_set(h, "x-ms-retry-after-ms", "7000");
    e = pv->adapter->error(call, 429, h, throttled, strlen(throttled));
    CHECK(e->status == 429);
    CHECK_STR(e->code, "rate_limit_exceeded");
    CHECK_STR(e->type, "rate_limit_error");
    CHECK_STR(e->retry_after, "7");
    CHECK_STR(e->retry_after_ms, "7000");
    e = pv->adapter->error(call, 400, NULL, filtered, strlen(filtered));
    CHECK(e->status == 400);
    CHECK_STR(e->code, "content_filter");
    CHECK_STR(e->param, "prompt");
    CHECK_STR(e->type, "invalid_request_error");
    e = pv->adapter->error(call, 500, NULL, "{}", 2);
    CHECK(e->status == 502);
}

/* --- Cohere ------------------------------------------------------------------------------ */

static fl_provider_t *cohere_provider(apr_pool_t *p, const char *base)
{
    static const char *const opts[] = { "type=cohere", "key_env=CO_API_KEY" };
    const char *err;
    fl_provider_t *pv = provider(p, "cohere", opts, 2, &err);
    pv->resolved_base = base;
    pv->api_key = "cokey";
    CHECK(pv->adapter->configure(pv, p) == NULL);
    return pv;
}

static void cohere_prepare(apr_pool_t *p)
{
    const char *body =
        "{\"model\":\"cohere/command-a-vision-07-2025\",\"stream\":true,\"max_tokens\":50,"
        "\"temperature\":0.3,\"top_p\":0.9,\"stop\":\"END\",\"tool_choice\":\"required\","
        "\"messages\":[{\"role\":\"system\",\"content\":\"Be terse.\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"what is this\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,AAAA\",\"detail\":\"low\"}}]},"
        "{\"role\":\"assistant\",\"content\":\"I will look.\",\"tool_calls\":[{\"id\":\"lookup_1\","
        "\"type\":\"function\",\"function\":{\"name\":\"lookup\",\"arguments\":\"{\\\"q\\\":\\\"x\\\"}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"lookup_1\",\"content\":\"42\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"lookup\",\"description\":\"d\","
        "\"parameters\":{\"type\":\"object\"}}}]}";
    fl_provider_t *pv = cohere_provider(p, NULL);
    fl_call_t *call = make_call(p, pv, "command-a-vision-07-2025", body);
    fl_upstream_t *up = fl_upstream_make(p);
    fl_error_t *e;
    CHECK(pv->adapter->prepare(call, up) == NULL);
    CHECK_STR(up->url, "https://api.cohere.com/v2/chat");
    CHECK_STR(header_of(up, "Authorization:"), "Authorization: Bearer cokey");
    CHECK_STR(up->body,
        "{\"model\":\"command-a-vision-07-2025\",\"messages\":["
        "{\"role\":\"system\",\"content\":\"Be terse.\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"what is this\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,AAAA\",\"detail\":\"low\"}}]},"
        "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"lookup_1\",\"type\":\"function\","
        "\"function\":{\"name\":\"lookup\",\"arguments\":\"{\\\"q\\\":\\\"x\\\"}\"}}],"
        "\"tool_plan\":\"I will look.\"},"
        "{\"role\":\"tool\",\"tool_call_id\":\"lookup_1\",\"content\":\"42\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"lookup\",\"description\":\"d\","
        "\"parameters\":{\"type\":\"object\"}}}],\"tool_choice\":\"REQUIRED\","
        "\"temperature\":0.3,\"max_tokens\":50,\"p\":0.9,"
        "\"stop_sequences\":[\"END\"],\"stream\":true}");
    /* a model without vision: a clear 400 before anything is sent */
    call = make_call(p, pv, "command-r-plus-08-2024", body);
    e = pv->adapter->prepare(call, fl_upstream_make(p));
    CHECK(e && e->status == 400);
    CHECK(e && !strcmp(e->code, "unsupported_content") && !strcmp(e->param, "messages"));
    /* parts Cohere cannot take, and roles it does not know: 400 before anything is sent */
    call = make_call(p, pv, "command-a-vision-07-2025", "{\"model\":\"c/x\",\"messages\":[{\"role\":"
                     "\"user\",\"content\":[{\"type\":\"input_audio\",\"input_audio\":{}}]}]}");
    e = pv->adapter->prepare(call, fl_upstream_make(p));
    CHECK(e && e->status == 400 && !strcmp(e->code, "unsupported_content"));
    call = make_call(p, pv, "command-a", "{\"model\":\"c/x\",\"messages\":[{\"role\":\"function\","
                     "\"content\":\"x\"}]}");
    e = pv->adapter->prepare(call, fl_upstream_make(p));
    CHECK(e && e->status == 400 && !strcmp(e->param, "messages[0].role"));
    /* developer is a system turn; tool results given as parts are joined; plain assistant text */
    call = make_call(p, pv, "command-a", "{\"model\":\"c/x\",\"messages\":[{\"role\":\"developer\","
                     "\"content\":\"d\"},{\"role\":\"assistant\",\"content\":\"hi\"},{\"role\":\"tool\","
                     "\"tool_call_id\":\"t1\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":"
                     "\"text\",\"text\":\"b\"}]}],\"response_format\":{\"type\":\"json_schema\","
                     "\"json_schema\":{\"name\":\"s\",\"schema\":{\"type\":\"object\"}}}}");
    CHECK(pv->adapter->prepare(call, up = fl_upstream_make(p)) == NULL);
    CHECK_STR(up->body, "{\"model\":\"command-a\",\"messages\":[{\"role\":\"system\",\"content\":\"d\"},"
                        "{\"role\":\"assistant\",\"content\":\"hi\"},{\"role\":\"tool\",\"tool_call_id\":"
                        "\"t1\",\"content\":\"a b\"}],\"response_format\":{\"type\":\"json_object\","
                        "\"json_schema\":{\"type\":\"object\"}}}");
    /* a base that names /v2 already is not doubled; n > 1 is refused */
    pv = cohere_provider(p, "http://127.0.0.1:9/v2");
    call = make_call(p, pv, "command-r", "{\"model\":\"c/x\",\"n\":2,\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}");
    e = pv->adapter->prepare(call, up = fl_upstream_make(p));
    CHECK(e && e->status == 400 && !strcmp(e->param, "n"));
    call = make_call(p, pv, "command-r", "{\"model\":\"c/x\",\"tool_choice\":{\"type\":\"function\","
                     "\"function\":{\"name\":\"b\"}},\"tools\":[{\"type\":\"function\",\"function\":"
                     "{\"name\":\"a\"}},{\"type\":\"function\",\"function\":{\"name\":\"b\"}}],"
                     "\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}");
    CHECK(pv->adapter->prepare(call, up = fl_upstream_make(p)) == NULL);
    CHECK_STR(up->url, "http://127.0.0.1:9/v2/chat");
    CHECK_STR(up->body, "{\"model\":\"command-r\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],"
                        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"b\"}}],"
                        "\"tool_choice\":\"REQUIRED\"}");
}

/* Non-streamed answers in the shape of Cohere's documented examples
 * [https://docs.cohere.com/reference/chat]. */
static void cohere_response(apr_pool_t *p)
{
    const char *text = "{\"id\":\"c14c80c3-18eb-4519-9460-6c92edd8cfb4\",\"finish_reason\":\"COMPLETE\","
        "\"message\":{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"LLMs are \"},"
        "{\"type\":\"text\",\"text\":\"models.\"}]},\"usage\":{\"billed_units\":{\"input_tokens\":5,"
        "\"output_tokens\":7},\"tokens\":{\"input_tokens\":71,\"output_tokens\":7},\"cached_tokens\":2}}";
    const char *tool = "{\"id\":\"x\",\"finish_reason\":\"TOOL_CALL\",\"message\":{\"role\":\"assistant\","
        "\"tool_plan\":\"I will look up the weather.\",\"tool_calls\":[{\"id\":\"get_weather_1byjy32y4hvq\","
        "\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"location\\\":\\\"Toronto\\\"}\"}}]},"
        "\"usage\":{\"tokens\":{\"input_tokens\":37,\"output_tokens\":28}}}";
    const char *err = "{\"id\":\"x\",\"finish_reason\":\"ERROR\",\"message\":{\"role\":\"assistant\"}}";
    fl_provider_t *pv = cohere_provider(p, NULL);
    fl_call_t *call = make_call(p, pv, "command-a-03-2025",
                                "{\"model\":\"c/x\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}");
    const char *out;
    apr_size_t len;
    fl_usage_t u;
    json_t *root, *msg;

    fl_usage_clear(&u);
    CHECK(pv->adapter->response(call, text, strlen(text), &out, &len, &u) == NULL);
    root = json_loadb(out, len, 0, NULL);
    msg = json_object_get(json_array_get(json_object_get(root, "choices"), 0), "message");
    CHECK_STR(json_string_value(json_object_get(msg, "content")), "LLMs are models.");
    CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(root, "choices"), 0),
                                                "finish_reason")), "stop");
    CHECK_STR(json_string_value(json_object_get(root, "object")), "chat.completion");
    CHECK(u.prompt == 5 && u.completion == 7 && u.total == 12 && u.cached == 2);
    CHECK(json_integer_value(json_object_get(json_object_get(root, "usage"), "prompt_tokens")) == 5);
    json_decref(root);

    fl_usage_clear(&u);
    CHECK(pv->adapter->response(call, tool, strlen(tool), &out, &len, &u) == NULL);
    root = json_loadb(out, len, 0, NULL);
    msg = json_object_get(json_array_get(json_object_get(root, "choices"), 0), "message");
    CHECK_STR(json_string_value(json_object_get(msg, "content")), "I will look up the weather.");
    CHECK_STR(json_string_value(json_object_get(json_object_get(json_array_get(
        json_object_get(msg, "tool_calls"), 0), "function"), "arguments")), "{\"location\":\"Toronto\"}");
    CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(msg, "tool_calls"), 0),
                                                "id")), "get_weather_1byjy32y4hvq");
    CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(root, "choices"), 0),
                                                "finish_reason")), "tool_calls");
    CHECK(u.prompt == 37 && u.completion == 28);
    json_decref(root);

    CHECK(pv->adapter->response(call, err, strlen(err), &out, &len, &u)->status == 502);
    CHECK(pv->adapter->response(call, "nope", 4, &out, &len, &u)->status == 502);
}

/* Streams framed as Cohere sends them (event: lines) with the event payloads of Cohere's docs
 * [https://docs.cohere.com/v2/docs/streaming, https://docs.cohere.com/docs/tool-use-streaming]. */
#define CO_START "event: message-start\ndata: {\"id\":\"29f14a5a\",\"type\":\"message-start\",\"delta\":" \
    "{\"message\":{\"role\":\"assistant\",\"content\":[],\"tool_plan\":\"\",\"tool_calls\":[],\"citations\":[]}}}\n\n"
#define CO_TEXT CO_START \
    "event: content-start\ndata: {\"type\":\"content-start\",\"index\":0,\"delta\":{\"message\":" \
    "{\"content\":{\"type\":\"text\",\"text\":\"\"}}}}\n\n" \
    "event: content-delta\ndata: {\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":" \
    "{\"content\":{\"text\":\"Hel\"}}}}\n\n" \
    "event: content-delta\ndata: {\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":" \
    "{\"content\":{\"text\":\"lo\"}}}}\n\n" \
    "event: content-end\ndata: {\"type\":\"content-end\",\"index\":0}\n\n"
#define CO_END(fr) "event: message-end\ndata: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"" fr \
    "\",\"usage\":{\"billed_units\":{\"input_tokens\":3,\"output_tokens\":2},\"tokens\":" \
    "{\"input_tokens\":70,\"output_tokens\":2}}}}\n\n"
#define CO_TOOL CO_START \
    "event: tool-plan-delta\ndata: {\"type\":\"tool-plan-delta\",\"delta\":{\"message\":{\"tool_plan\":\"I will\"}}}\n\n" \
    "event: tool-call-start\ndata: {\"type\":\"tool-call-start\",\"index\":0,\"delta\":{\"message\":" \
    "{\"tool_calls\":{\"id\":\"get_weather_nsz5zm3w56q3\",\"type\":\"function\",\"function\":" \
    "{\"name\":\"get_weather\",\"arguments\":\"\"}}}}}\n\n" \
    "event: tool-call-delta\ndata: {\"type\":\"tool-call-delta\",\"index\":0,\"delta\":{\"message\":" \
    "{\"tool_calls\":{\"function\":{\"arguments\":\"{\\\"loc\"}}}}}\n\n" \
    "event: tool-call-delta\ndata: {\"type\":\"tool-call-delta\",\"index\":0,\"delta\":{\"message\":" \
    "{\"tool_calls\":{\"function\":{\"arguments\":\"\\\":1}\"}}}}}\n\n" \
    "event: tool-call-end\ndata: {\"type\":\"tool-call-end\",\"index\":0}\n\n" \
    "event: tool-call-start\ndata: {\"type\":\"tool-call-start\",\"index\":1,\"delta\":{\"message\":" \
    "{\"tool_calls\":{\"id\":\"get_weather_2\",\"type\":\"function\",\"function\":" \
    "{\"name\":\"get_weather\",\"arguments\":\"{}\"}}}}}\n\n" \
    "event: tool-call-end\ndata: {\"type\":\"tool-call-end\",\"index\":1}\n\n"

static void cohere_stream(apr_pool_t *p)
{
    const char *plain = "{\"model\":\"c/x\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":true}";
    const char *usage = "{\"model\":\"c/x\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                        "\"stream\":true,\"stream_options\":{\"include_usage\":true}}";
    fl_provider_t *pv = cohere_provider(p, NULL);
    fl_usage_t u;
    const char *text_want = "{\"content\":\"\",\"role\":\"assistant\"}|{\"content\":\"Hel\"}|"
                            "{\"content\":\"lo\"}|{}#stop|[DONE]";

    stream_all_splits(p, make_call(p, pv, "command-a", plain), CO_TEXT CO_END("COMPLETE"), text_want, &u);
    CHECK(u.prompt == 3 && u.completion == 2 && u.total == 5);
    /* CRLF framing and a trailing [DONE] change nothing */
    stream_all_splits(p, make_call(p, pv, "command-a", plain),
                      "event: message-start\r\ndata: {\"type\":\"message-start\"}\r\n\r\n"
                      "data: {\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":"
                      "{\"content\":{\"text\":\"Hel\"}}}}\r\n\r\n"
                      "data: {\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":"
                      "{\"content\":{\"text\":\"lo\"}}}}\r\n\r\n"
                      "data: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"STOP_SEQUENCE\"}}\r\n\r\n"
                      "data: [DONE]\r\n\r\n", text_want, &u);
    stream_all_splits(p, make_call(p, pv, "command-a", usage), CO_TEXT CO_END("MAX_TOKENS"),
                      "{\"content\":\"\",\"role\":\"assistant\"}|{\"content\":\"Hel\"}|"
                      "{\"content\":\"lo\"}|{}#length|usage:3/2/5|[DONE]", &u);
    stream_all_splits(p, make_call(p, pv, "command-a", plain), CO_TOOL CO_END("TOOL_CALL"),
                      "{\"content\":\"\",\"role\":\"assistant\"}|{\"content\":\"I will\"}|"
                      "{\"tool_calls\":[{\"function\":{\"arguments\":\"\",\"name\":\"get_weather\"},"
                      "\"id\":\"get_weather_nsz5zm3w56q3\",\"index\":0,\"type\":\"function\"}]}|"
                      "{\"tool_calls\":[{\"function\":{\"arguments\":\"{\\\"loc\"},\"index\":0}]}|"
                      "{\"tool_calls\":[{\"function\":{\"arguments\":\"\\\":1}\"},\"index\":0}]}|"
                      "{\"tool_calls\":[{\"function\":{\"arguments\":\"{}\",\"name\":\"get_weather\"},"
                      "\"id\":\"get_weather_2\",\"index\":1,\"type\":\"function\"}]}|"
                      "{}#tool_calls|[DONE]", &u);
    /* a model that fails mid-answer: an error event and no [DONE]; usage still taken */
    stream_all_splits(p, make_call(p, pv, "command-a", usage), CO_TEXT CO_END("ERROR"),
                      "{\"content\":\"\",\"role\":\"assistant\"}|{\"content\":\"Hel\"}|"
                      "{\"content\":\"lo\"}|ERROR:upstream_error", &u);
    CHECK(u.prompt == 3);
}

static void cohere_errors(apr_pool_t *p)
{
    fl_provider_t *pv = cohere_provider(p, NULL);
    fl_call_t *call = make_call(p, pv, "command-a", "{\"model\":\"c/x\",\"messages\":[{\"role\":\"user\"}]}");
    apr_table_t *h = apr_table_make(p, 2);
    const char *limited = "{\"id\":\"5e5a1d7e\",\"message\":\"You are using a Trial key, which is "
                          "limited to 20 API calls / minute.\"}";
    const char *bad = "{\"id\":\"a\",\"message\":\"invalid request: message must be at least 1 token long\"}";
    fl_error_t *e;
    apr_table_set(h, "retry-after", "7");
    e = pv->adapter->error(call, 429, h, limited, strlen(limited));
    CHECK(e->status == 429);
    CHECK_STR(e->code, "rate_limit_exceeded");
    CHECK_STR(e->retry_after, "7");
    CHECK(strstr(e->message, "Trial key") != NULL);
    e = pv->adapter->error(call, 400, NULL, bad, strlen(bad));
    CHECK(e->status == 400 && !strcmp(e->type, "invalid_request_error"));
    CHECK(strstr(e->message, "at least 1 token") != NULL);
    e = pv->adapter->error(call, 498, NULL, "{\"message\":\"invalid api token\"}", 31);
    CHECK(e->status == 502);
    CHECK_STR(e->code, "upstream_auth_failed");
    e = pv->adapter->error(call, 500, NULL, "{\"message\":\"internal server error\"}", 35);
    CHECK(e->status == 502 && !strcmp(e->code, "upstream_error"));
}

void test_azure_cohere(apr_pool_t *p)
{
    azure_config(p);
    azure_prepare(p);
    azure_stream(p);
    azure_errors(p);
    cohere_prepare(p);
    cohere_response(p);
    cohere_stream(p);
    cohere_errors(p);
}
