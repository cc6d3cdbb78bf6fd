/* Unit tests of the Gemini and Vertex adapters on recorded wire traffic: requests built from
 * OpenAI bodies, answers and streams (split at every byte) read back, Google's errors mapped,
 * and the service account's RS256 JWT checked with OpenSSL's verifier. */
#include <stdlib.h>
#include <apr_strings.h>
#include <apr_file_io.h>
#include <apr_network_io.h>
#include <apr_thread_proc.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "fl_test.h"
#include "fl_adapter.h"
#include "fl_gtoken.h"
#include "fl_jwt.h"
#include "fl_json.h"

extern const fl_adapter_t fl_adapter_gemini, fl_adapter_vertex;

/* Real bytes [junjihashimoto/louter:test-data/gemini/streaming/response.txt.gz]: CRLF framing. */
static const char LOUTER_SSE[] =
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"1, 2, 3\"}],\"role\": \"model\"},"
    "\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 8,"
    "\"candidatesTokenCount\": 7,\"totalTokenCount\": 38,\"promptTokensDetails\": [{\"modality\": "
    "\"TEXT\",\"tokenCount\": 8}],\"thoughtsTokenCount\": 23},\"modelVersion\": \"gemini-2.5-flash\","
    "\"responseId\": \"4HkhaaajEJaY0-kPyI_b2A4\"}\r\n\r\n";

/* Gemini 3 chunks [vercel/ai:packages/google/src/__fixtures__/google-text.chunks.txt], framed as
 * the API frames them; usage is cumulative, the last chunk an empty text with a signature. */
static const char VERCEL_TEXT_SSE[] =
    "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"There are **3**\"}],\"role\":\"model\"},"
    "\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":9,\"candidatesTokenCount\":5,"
    "\"totalTokenCount\":199,\"thoughtsTokenCount\":185},\"modelVersion\":\"gemini-3-pro-preview\"}\r\n\r\n"
    "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\" \\\"r\\\"s in strawberry.\"}],"
    "\"role\":\"model\"},\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":9,"
    "\"candidatesTokenCount\":23,\"totalTokenCount\":217,\"thoughtsTokenCount\":185}}\r\n\r\n"
    "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"\",\"thoughtSignature\":\"EqsFCqgF\"}],"
    "\"role\":\"model\"},\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":9,"
    "\"candidatesTokenCount\":23,\"totalTokenCount\":217,\"thoughtsTokenCount\":185}}\r\n\r\n";

/* A streamed function call [junjihashimoto/louter:test-data/gemini/streaming_function_calling]. */
static const char TOOL_SSE[] =
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"functionCall\": {\"name\": \"getWeather\","
    "\"args\": {\"location\": \"Tokyo\"}},\"thoughtSignature\": \"CikB+x/y=\"}],\"role\": \"model\"},"
    "\"finishReason\": \"STOP\",\"index\": 0,\"finishMessage\": \"Model generated function call(s).\"}],"
    "\"usageMetadata\": {\"promptTokenCount\": 50,\"candidatesTokenCount\": 5,\"totalTokenCount\": 75,"
    "\"cachedContentTokenCount\": 20,\"thoughtsTokenCount\": 20}}\r\n\r\n";

/* Non-streamed function call [vercel/ai:packages/google/src/__fixtures__/google-tool-call.json]. */
static const char TOOL_JSON[] =
    "{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"weather\",\"args\":"
    "{\"location\":\"San Francisco\"}},\"thoughtSignature\":\"EskgCsYgAb4+9vtF7/\"}],\"role\":\"model\"},"
    "\"finishReason\":\"STOP\",\"index\":0,\"finishMessage\":\"Model generated function call(s).\"}],"
    "\"usageMetadata\":{\"promptTokenCount\":29,\"candidatesTokenCount\":15,\"totalTokenCount\":937,"
    "\"promptTokensDetails\":[{\"modality\":\"TEXT\",\"tokenCount\":29}],\"thoughtsTokenCount\":893},"
    "\"modelVersion\":\"gemini-3-pro-preview\",\"responseId\":\"m36LaZGyCLz1xs0PtNSB-QU\"}";

/* [vercel/ai:packages/google/src/__fixtures__/google-429-retry-info.json] */
static const char ERR_429[] =
    "{\"error\":{\"code\":429,\"message\":\"You exceeded your current quota, please check your plan.\","
    "\"status\":\"RESOURCE_EXHAUSTED\",\"details\":[{\"@type\":\"type.googleapis.com/google.rpc."
    "QuotaFailure\",\"violations\":[{\"quotaId\":\"GenerateRequestsPerMinutePerProjectPerModel-FreeTier\"}]},"
    "{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":\"34.4s\"}]}}";

typedef struct {
    apr_pool_t *p;
    const char *summary;
} sink_t;

/* Each emitted event in a form that does not depend on random ids and timestamps. */
static apr_status_t sink(void *baton, fl_chunk_kind_e kind, const char *data, apr_size_t len)
{
    sink_t *s = baton;
    json_t *o, *ch, *tc, *u;
    const char *add = "";
    size_t i;
    if (kind == FL_CHUNK_DONE) add = apr_psprintf(s->p, "DONE:%.*s|", (int)len, data);
    else if (kind == FL_CHUNK_ERROR) {
        o = json_loadb(data, len, 0, NULL);
        add = apr_psprintf(s->p, "E:%s|", fl_json_str(json_object_get(o, "error"), "code", "?"));
        json_decref(o);
    }
    else {
        o = json_loadb(data, len, 0, NULL);
        ch = json_array_get(json_object_get(o, "choices"), 0);
        if ((u = json_object_get(o, "usage")) && json_is_object(u)) {
            add = apr_psprintf(s->p, "u:%" APR_INT64_T_FMT "/%" APR_INT64_T_FMT "/%" APR_INT64_T_FMT
                                      "/%" APR_INT64_T_FMT "|",
                               fl_json_count(u, "prompt_tokens"),
                               fl_json_count(u, "completion_tokens"),
                               fl_json_count(json_object_get(u, "completion_tokens_details"),
                                                        "reasoning_tokens"),
                               fl_json_count(json_object_get(u, "prompt_tokens_details"),
                                                        "cached_tokens"));
        }
        if (fl_json_str(json_object_get(ch, "delta"), "content", NULL)) {
            add = apr_pstrcat(s->p, add, "c:", fl_json_str(json_object_get(ch, "delta"), "content", ""),
                              "|", NULL);
        }
        json_array_foreach(json_object_get(json_object_get(ch, "delta"), "tool_calls"), i, tc) {
            const json_t *fn = json_object_get(tc, "function");
            add = apr_psprintf(s->p, "%st:%d:%s:%s:%s|", add,
                               (int)json_integer_value(json_object_get(tc, "index")),
                               strncmp(fl_json_str(tc, "id", ""), "call_", 5) ? "noid" : "id",
                               fl_json_str(fn, "name", ""), fl_json_str(fn, "arguments", ""));
        }
        if (fl_json_str(ch, "finish_reason", NULL)) {
            add = apr_pstrcat(s->p, add, "f:", fl_json_str(ch, "finish_reason", ""), "|", NULL);
        }
        json_decref(o);
    }
    s->summary = apr_pstrcat(s->p, s->summary, add, NULL);
    return APR_SUCCESS;
}

static fl_provider_t *provider(apr_pool_t *p, const fl_adapter_t *a, const char *base)
{
    fl_provider_t *pv = apr_pcalloc(p, sizeof(*pv));
    pv->name = "g";
    pv->type = a->type;
    pv->adapter = a;
    pv->opts = apr_table_make(p, 4);
    pv->resolved_base = base;
    pv->api_key = "AIza-test";
    return pv;
}

static fl_call_t *make_call(apr_pool_t *p, fl_provider_t *pv, const char *body)
{
    fl_call_t *c = apr_pcalloc(p, sizeof(*c));
    fl_model_t *m = apr_pcalloc(p, sizeof(*m));
    fl_error_t *e = NULL;
    m->name = "gemini-2.5-flash";
    m->provider = pv;
    c->pool = p;
    c->provider = pv;
    c->model = m;
    c->cr = fl_openai_parse_request(p, body, strlen(body), &e);
    c->now = apr_time_now();
    if (!c->cr) fprintf(stderr, "bad test body: %s\n", e ? e->message : "?");
    return c;
}

/* The summary of a stream fed split in two at every byte; the same for every split or "SPLIT". */
static const char *stream_all_splits(apr_pool_t *p, const fl_call_t *call, const char *in)
{
    apr_size_t len = strlen(in), cut;
    const char *first = NULL;
    for (cut = 0; cut <= len; cut++) {
        sink_t s = { p, "" };
        fl_usage_t u;
        fl_stream_t *st;
        fl_usage_clear(&u);
        call->provider->adapter->stream_open(call, &u, sink, &s, &st);
        call->provider->adapter->stream_feed(st, in, cut);
        call->provider->adapter->stream_feed(st, in + cut, len - cut);
        if (!first) first = s.summary;
        else if (strcmp(first, s.summary)) {
            fprintf(stderr, "  split at %lu: %s\n", (unsigned long)cut, s.summary);
            return "SPLIT";
        }
    }
    return first;
}

static json_t *prepared(apr_pool_t *p, const fl_call_t *call, fl_upstream_t **pup)
{
    fl_upstream_t *up = fl_upstream_make(p);
    fl_error_t *e = call->provider->adapter->prepare(call, up);
    *pup = up;
    if (e) {
        fprintf(stderr, "  prepare: %s\n", e->message);
        return NULL;
    }
    return fl_json_pool_own(p, json_loads(up->body, 0, NULL));
}

static const char *path_str(apr_pool_t *p, json_t *root, const char *path)
{
    /* dotted path with numeric array indexes: "contents.0.parts.1.text" */
    char *copy = apr_pstrdup(p, path), *tok, *last;
    json_t *cur = root;
    for (tok = apr_strtok(copy, ".", &last); tok && cur; tok = apr_strtok(NULL, ".", &last)) {
        cur = json_is_array(cur) ? json_array_get(cur, (size_t)atoi(tok)) : json_object_get(cur, tok);
    }
    if (json_is_string(cur)) return json_string_value(cur);
    return cur ? fl_json_dump(p, cur, 0) : NULL;
}

static void test_request(apr_pool_t *p)
{
    fl_provider_t *pv = provider(p, &fl_adapter_gemini, NULL);
    fl_upstream_t *up;
    fl_call_t *call;
    json_t *b;
    const char *body =
        "{\"model\":\"g/gemini-2.5-flash\",\"temperature\":0.5,\"top_p\":0.9,\"max_tokens\":100,"
        "\"stop\":\"END\",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}},"
        "\"messages\":[{\"role\":\"system\",\"content\":\"Be terse.\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Weather?\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBORw0KGgo=\"}},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://example.com/cat.webp?x=1\"}}]},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
        "{\"id\":\"call_AAAAAAAAAAAAAAAAAAAAAAAA__ts_Cik-_x=\",\"type\":\"function\","
        "\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}},"
        "{\"id\":\"c2\",\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"arguments\":\"\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_AAAAAAAAAAAAAAAAAAAAAAAA__ts_Cik-_x=\",\"content\":\"sunny\"},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c2\",\"content\":\"{\\\"t\\\":\\\"noon\\\"}\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"W\","
        "\"parameters\":{\"type\":\"object\",\"additionalProperties\":false,\"properties\":"
        "{\"city\":{\"type\":\"string\"}}}}}]}";

    CHECK(fl_adapter_gemini.configure(pv, p) == NULL);
    call = make_call(p, pv, body);
    b = prepared(p, call, &up);
    CHECK(b != NULL);
    if (!b) return;
    CHECK_STR(up->url, "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent");
    CHECK_STR(APR_ARRAY_IDX(up->headers, 0, const char *), "x-goog-api-key: AIza-test");
    CHECK_STR(path_str(p, b, "systemInstruction.parts.0.text"), "Be terse.");
    CHECK_STR(path_str(p, b, "contents.0.role"), "user");
    CHECK_STR(path_str(p, b, "contents.0.parts.0.text"), "Weather?");
    CHECK_STR(path_str(p, b, "contents.0.parts.1.inlineData.mimeType"), "image/png");
    CHECK_STR(path_str(p, b, "contents.0.parts.1.inlineData.data"), "iVBORw0KGgo=");
    CHECK_STR(path_str(p, b, "contents.0.parts.2.fileData.mimeType"), "image/webp");
    CHECK_STR(path_str(p, b, "contents.0.parts.2.fileData.fileUri"), "https://example.com/cat.webp?x=1");
    CHECK_STR(path_str(p, b, "contents.1.role"), "model");
    CHECK_STR(path_str(p, b, "contents.1.parts.0.functionCall.name"), "get_weather");
    CHECK_STR(path_str(p, b, "contents.1.parts.0.functionCall.args"), "{\"city\":\"Paris\"}");
    /* the signature comes back out of the id, URL-safe letters restored */
    CHECK_STR(path_str(p, b, "contents.1.parts.0.thoughtSignature"), "Cik+/x=");
    CHECK(path_str(p, b, "contents.1.parts.1.thoughtSignature") == NULL);
    CHECK_STR(path_str(p, b, "contents.1.parts.1.functionCall.args"), "{}");
    /* both results in one user turn, matched by name */
    CHECK_STR(path_str(p, b, "contents.2.role"), "user");
    CHECK_STR(path_str(p, b, "contents.2.parts.0.functionResponse.name"), "get_weather");
    CHECK_STR(path_str(p, b, "contents.2.parts.0.functionResponse.response"), "{\"output\":\"sunny\"}");
    CHECK_STR(path_str(p, b, "contents.2.parts.1.functionResponse.name"), "get_time");
    CHECK_STR(path_str(p, b, "contents.2.parts.1.functionResponse.response"), "{\"t\":\"noon\"}");
    CHECK(json_array_size(json_object_get(b, "contents")) == 3);
    CHECK_STR(path_str(p, b, "tools.0.functionDeclarations.0.name"), "get_weather");
    CHECK(path_str(p, b, "tools.0.functionDeclarations.0.parameters.additionalProperties") == NULL);
    CHECK_STR(path_str(p, b, "toolConfig.functionCallingConfig.mode"), "ANY");
    CHECK_STR(path_str(p, b, "toolConfig.functionCallingConfig.allowedFunctionNames.0"), "get_weather");
    CHECK_STR(path_str(p, b, "generationConfig.temperature"), "0.5");
    CHECK_STR(path_str(p, b, "generationConfig.topP"), "0.9");
    CHECK_STR(path_str(p, b, "generationConfig.maxOutputTokens"), "100");
    CHECK_STR(path_str(p, b, "generationConfig.stopSequences.0"), "END");

    /* streams: the SSE endpoint, and a tool result naming no earlier call is the client's error */
    pv = provider(p, &fl_adapter_gemini, "http://127.0.0.1:9/v1beta");
    CHECK(fl_adapter_gemini.configure(pv, p) == NULL);
    call = make_call(p, pv, "{\"model\":\"x\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    b = prepared(p, call, &up);
    CHECK_STR(up->url, "http://127.0.0.1:9/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse");
    CHECK_STR(up->accept, "text/event-stream");
    call = make_call(p, pv, "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},"
                            "{\"role\":\"tool\",\"tool_call_id\":\"nope\",\"content\":\"x\"}]}");
    {
        fl_error_t *e = fl_adapter_gemini.prepare(call, fl_upstream_make(p));
        CHECK(e && e->status == 400 && !strcmp(e->param, "messages"));
    }
    call = make_call(p, pv, "{\"model\":\"x\",\"tool_choice\":\"required\",\"messages\":[{\"role\":\"user\","
                            "\"content\":\"hi\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}");
    b = prepared(p, call, &up);
    CHECK_STR(path_str(p, b, "toolConfig.functionCallingConfig.mode"), "ANY");
}

static void test_response(apr_pool_t *p)
{
    fl_provider_t *pv = provider(p, &fl_adapter_gemini, NULL);
    fl_call_t *call;
    const char *out, *id;
    apr_size_t outlen;
    fl_usage_t u;
    json_t *o;
    fl_upstream_t *up;
    const char *text =
        "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hello\"},{\"text\":\" world\"}],"
        "\"role\":\"model\"},\"finishReason\":\"MAX_TOKENS\"}],\"usageMetadata\":{\"promptTokenCount\":"
        "10,\"candidatesTokenCount\":2,\"cachedContentTokenCount\":4}}";

    fl_adapter_gemini.configure(pv, p);
    call = make_call(p, pv, "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    fl_usage_clear(&u);
    CHECK(fl_adapter_gemini.response(call, TOOL_JSON, strlen(TOOL_JSON), &out, &outlen, &u) == NULL);
    o = fl_json_pool_own(p, json_loadb(out, outlen, 0, NULL));
    CHECK_STR(path_str(p, o, "object"), "chat.completion");
    CHECK_STR(path_str(p, o, "choices.0.finish_reason"), "tool_calls");
    CHECK_STR(path_str(p, o, "choices.0.message.tool_calls.0.function.name"), "weather");
    CHECK_STR(path_str(p, o, "choices.0.message.tool_calls.0.function.arguments"),
              "{\"location\":\"San Francisco\"}");
    CHECK(json_is_null(json_object_get(json_object_get(json_array_get(json_object_get(o, "choices"), 0),
                                                       "message"), "content")));
    CHECK(u.prompt == 29 && u.completion == 908 && u.reasoning == 893 && u.cached == 0);
    CHECK(u.total == 937);
    CHECK_STR(path_str(p, o, "usage.completion_tokens_details.reasoning_tokens"), "893");

    /* the id handed out carries the signature back on the next request */
    id = path_str(p, o, "choices.0.message.tool_calls.0.id");
    CHECK(id && !strncmp(id, "call_", 5) && strstr(id, "__ts_EskgCsYgAb4-9vtF7_"));
    call = make_call(p, pv, apr_psprintf(p, "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":"
        "\"w?\"},{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"%s\",\"type\":\"function\",\"function\":"
        "{\"name\":\"weather\",\"arguments\":\"{}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"%s\","
        "\"content\":\"fog\"}]}", id, id));
    o = prepared(p, call, &up);
    CHECK_STR(path_str(p, o, "contents.1.parts.0.thoughtSignature"), "EskgCsYgAb4+9vtF7/");
    CHECK_STR(path_str(p, o, "contents.2.parts.0.functionResponse.name"), "weather");

    fl_usage_clear(&u);
    CHECK(fl_adapter_gemini.response(call, text, strlen(text), &out, &outlen, &u) == NULL);
    o = fl_json_pool_own(p, json_loadb(out, outlen, 0, NULL));
    CHECK_STR(path_str(p, o, "choices.0.message.content"), "Hello world");
    CHECK_STR(path_str(p, o, "choices.0.finish_reason"), "length");
    CHECK(u.prompt == 10 && u.completion == 2 && u.cached == 4 && u.reasoning == 0);
    CHECK_STR(path_str(p, o, "usage.prompt_tokens_details.cached_tokens"), "4");

    /* a blocked prompt has no candidates */
    {
        const char *blocked = "{\"promptFeedback\":{\"blockReason\":\"SAFETY\"},\"usageMetadata\":"
                              "{\"promptTokenCount\":5,\"totalTokenCount\":5}}";
        CHECK(fl_adapter_gemini.response(call, blocked, strlen(blocked), &out, &outlen, &u) == NULL);
        o = fl_json_pool_own(p, json_loadb(out, outlen, 0, NULL));
        CHECK_STR(path_str(p, o, "choices.0.finish_reason"), "content_filter");
    }
    {
        fl_error_t *e = fl_adapter_gemini.response(call, "<html>", 6, &out, &outlen, &u);
        CHECK(e && e->status == 502);
    }
}

static void test_stream(apr_pool_t *p)
{
    fl_provider_t *pv = provider(p, &fl_adapter_gemini, NULL);
    fl_call_t *plain, *usage;
    char *cut, *err;
    fl_adapter_gemini.configure(pv, p);
    plain = make_call(p, pv, "{\"model\":\"x\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    usage = make_call(p, pv, "{\"model\":\"x\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
                             "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");

    CHECK_STR(stream_all_splits(p, plain, LOUTER_SSE), "c:1, 2, 3|f:stop|DONE:[DONE]|");
    CHECK_STR(stream_all_splits(p, usage, LOUTER_SSE), "c:1, 2, 3|f:stop|u:8/30/23/0|DONE:[DONE]|");
    CHECK_STR(stream_all_splits(p, usage, VERCEL_TEXT_SSE),
              "c:There are **3**|c: \"r\"s in strawberry.|f:stop|u:9/208/185/0|DONE:[DONE]|");
    CHECK_STR(stream_all_splits(p, usage, TOOL_SSE),
              "t:0:id:getWeather:{\"location\":\"Tokyo\"}|f:tool_calls|u:50/25/20/20|DONE:[DONE]|");
    /* usage is filled even when the client did not ask for the chunk */
    {
        sink_t s = { p, "" };
        fl_usage_t u;
        fl_stream_t *st;
        fl_usage_clear(&u);
        fl_adapter_gemini.stream_open(plain, &u, sink, &s, &st);
        fl_adapter_gemini.stream_feed(st, VERCEL_TEXT_SSE, strlen(VERCEL_TEXT_SSE));
        CHECK(u.prompt == 9 && u.completion == 208 && u.reasoning == 185);
        /* bytes after the end are ignored */
        fl_adapter_gemini.stream_feed(st, LOUTER_SSE, strlen(LOUTER_SSE));
        CHECK_STR(s.summary, "c:There are **3**|c: \"r\"s in strawberry.|f:stop|DONE:[DONE]|");
    }
    /* a stream cut before the finishReason ends without DONE: the glue reports it */
    cut = apr_pstrndup(p, VERCEL_TEXT_SSE, strstr(VERCEL_TEXT_SSE, "data: {\"candidates\":[{\"content\":"
                                                 "{\"parts\":[{\"text\":\"\"") - VERCEL_TEXT_SSE);
    CHECK_STR(stream_all_splits(p, usage, cut), "c:There are **3**|c: \"r\"s in strawberry.|");
    /* an error event mid-stream ends it with an OpenAI error object and no DONE */
    err = apr_pstrcat(p, "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}]}}]}\r\n\r\n",
                      "data: {\"error\":{\"code\":503,\"message\":\"The model is overloaded.\","
                      "\"status\":\"UNAVAILABLE\"}}\r\n\r\n", LOUTER_SSE, NULL);
    CHECK_STR(stream_all_splits(p, usage, err), "c:Hi|E:upstream_error|");
}

static void test_errors(apr_pool_t *p)
{
    fl_provider_t *pv = provider(p, &fl_adapter_gemini, NULL);
    fl_call_t *call;
    fl_error_t *e;
    apr_table_t *h = apr_table_make(p, 2);
    const char *bad_key = "{\"error\":{\"code\":400,\"message\":\"API key not valid. Please pass a valid "
        "API key.\",\"status\":\"INVALID_ARGUMENT\",\"details\":[{\"@type\":\"type.googleapis.com/"
        "google.rpc.ErrorInfo\",\"reason\":\"API_KEY_INVALID\",\"domain\":\"googleapis.com\"}]}}";
    const char *bad_arg = "{\"error\":{\"code\":400,\"message\":\"* GenerateContentRequest.contents: "
        "contents is not specified\",\"status\":\"INVALID_ARGUMENT\"}}";
    const char *internal = "{\"error\":{\"code\":500,\"message\":\"An internal error has occurred.\","
        "\"status\":\"INTERNAL\"}}";

    fl_adapter_gemini.configure(pv, p);
    call = make_call(p, pv, "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    e = fl_adapter_gemini.error(call, 429, h, ERR_429, strlen(ERR_429));
    CHECK(e->status == 429);
    CHECK_STR(e->type, "rate_limit_error");
    CHECK_STR(e->code, "rate_limit_exceeded");
    CHECK_STR(e->retry_after, "35");
    CHECK_STR(e->retry_after_ms, "34400");
    CHECK(strstr(e->message, "You exceeded your current quota") != NULL);
    apr_table_set(h, "Retry-After", "3");
    e = fl_adapter_gemini.error(call, 429, h, ERR_429, strlen(ERR_429));
    CHECK_STR(e->retry_after, "3");
    e = fl_adapter_gemini.error(call, 400, NULL, bad_key, strlen(bad_key));
    CHECK_STR(e->code, "upstream_auth_failed");
    e = fl_adapter_gemini.error(call, 400, NULL, bad_arg, strlen(bad_arg));
    CHECK(e->status == 400);
    CHECK_STR(e->type, "invalid_request_error");
    CHECK_STR(e->code, "invalid_argument");
    e = fl_adapter_gemini.error(call, 500, NULL, internal, strlen(internal));
    CHECK(e->status == 502);
    CHECK_STR(e->code, "upstream_error");
    e = fl_adapter_gemini.error(call, 503, NULL, "[" "{\"error\":{\"code\":503,\"status\":\"UNAVAILABLE\"}}]", 48);
    CHECK(e->status >= 500);
}

static const char *write_file(apr_pool_t *p, const char *name, const char *text)
{
    const char *dir = NULL, *path;
    apr_file_t *f;
    apr_temp_dir_get(&dir, p);
    path = apr_psprintf(p, "%s/fl-gemini-test-%d-%s", dir, (int)getpid(), name);
    apr_file_open(&f, path, APR_FOPEN_WRITE | APR_FOPEN_CREATE | APR_FOPEN_TRUNCATE,
                  APR_FPROT_OS_DEFAULT, p);
    apr_file_write_full(f, text, strlen(text), NULL);
    apr_file_close(f);
    return path;
}

static char *pem_of(apr_pool_t *p, EVP_PKEY *k, int priv)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data, *out;
    long n;
    if (priv) PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
    else PEM_write_bio_PUBKEY(b, k);
    n = BIO_get_mem_data(b, &data);
    out = apr_pstrmemdup(p, data, (apr_size_t)n);
    BIO_free(b);
    return out;
}

/* Decodes base64url into p. */
static unsigned char *unb64url(apr_pool_t *p, const char *s, apr_size_t n, int *outlen)
{
    char *t = apr_palloc(p, n + 4);
    unsigned char *out = apr_palloc(p, n + 4);
    apr_size_t i;
    int len;
    for (i = 0; i < n; i++) t[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
    while (i % 4) t[i++] = '=';
    len = EVP_DecodeBlock(out, (unsigned char *)t, (int)i);
    while (i > 0 && t[i - 1] == '=') { i--; len--; }
    *outlen = len;
    return out;
}


/* A token endpoint that answers one request with script, in a thread; keeps what it read. */
typedef struct {
    apr_socket_t *listener;
    apr_thread_t *thread;
    const char *script;
    char got[8192];
    apr_pool_t *pool;
    int port;
} tokend_t;

static void *APR_THREAD_FUNC tokend_serve(apr_thread_t *t, void *data)
{
    tokend_t *sv = data;
    apr_socket_t *c;
    apr_size_t n, total = 0;
    if (apr_socket_accept(&c, sv->listener, sv->pool) == APR_SUCCESS) {
        apr_socket_timeout_set(c, apr_time_from_msec(200));
        do {
            n = sizeof(sv->got) - 1 - total;
            if (apr_socket_recv(c, sv->got + total, &n) != APR_SUCCESS) break;
            total += n;
        } while (n > 0 && total < sizeof(sv->got) - 1);
        sv->got[total] = '\0';
        n = strlen(sv->script);
        apr_socket_send(c, sv->script, &n);
        apr_socket_close(c);
    }
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static void tokend_start(apr_pool_t *p, tokend_t *sv, const char *script)
{
    apr_sockaddr_t *sa;
    memset(sv, 0, sizeof(*sv));
    sv->script = script;
    sv->pool = p;
    apr_sockaddr_info_get(&sa, "127.0.0.1", APR_INET, 0, 0, p);
    apr_socket_create(&sv->listener, APR_INET, SOCK_STREAM, APR_PROTO_TCP, p);
    apr_socket_bind(sv->listener, sa);
    apr_socket_listen(sv->listener, 4);
    apr_socket_addr_get(&sa, APR_LOCAL, sv->listener);
    sv->port = sa->port;
    apr_thread_create(&sv->thread, NULL, tokend_serve, sv, p);
}

static void tokend_stop(tokend_t *sv)
{
    apr_status_t st;
    apr_thread_join(&st, sv->thread);
    apr_socket_close(sv->listener);
}

static const char *token_answer(apr_pool_t *p, const char *tok)
{
    const char *body = apr_psprintf(p, "{\"access_token\":\"%s\",\"expires_in\":3599,"
                                    "\"token_type\":\"Bearer\"}", tok);
    return apr_psprintf(p, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                        "%d\r\nConnection: close\r\n\r\n%s", (int)strlen(body), body);
}

/* The cache: fetched once, reused, refreshed in the last five minutes, failures reported. */
static void test_token_cache(apr_pool_t *p, fl_gsa_t *sa)
{
    fl_http_t *http;
    fl_gtoken_t *cache;
    tokend_t sv;
    fl_error_t *e;
    const char *tok = NULL;
    apr_time_t t0 = apr_time_now();

    fl_http_create(&http, p);
    CHECK(fl_gtoken_create(&cache, p, sa) == APR_SUCCESS);
    tokend_start(p, &sv, token_answer(p, "ya29.first"));
    sa->token_uri = apr_psprintf(p, "http://127.0.0.1:%d/token", sv.port);
    e = fl_gtoken_get(cache, http, p, t0, 1000, 2000, "v", &tok);
    tokend_stop(&sv);
    CHECK(e == NULL);
    CHECK_STR(tok, "ya29.first");
    CHECK(strstr(sv.got, "POST /token ") == sv.got);
    CHECK(strstr(sv.got, "Content-Type: application/x-www-form-urlencoded") != NULL);
    CHECK(strstr(sv.got, "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=ey") != NULL);
    /* nobody listens any more: a cached token must not need them */
    e = fl_gtoken_get(cache, http, p, t0 + apr_time_from_sec(3000), 1000, 2000, "v", &tok);
    CHECK(e == NULL);
    CHECK_STR(tok, "ya29.first");
    /* within five minutes of expiry it is refreshed */
    tokend_start(p, &sv, token_answer(p, "ya29.second"));
    sa->token_uri = apr_psprintf(p, "http://127.0.0.1:%d/token", sv.port);
    e = fl_gtoken_get(cache, http, p, t0 + apr_time_from_sec(3400), 1000, 2000, "v", &tok);
    tokend_stop(&sv);
    CHECK(e == NULL);
    CHECK_STR(tok, "ya29.second");
    /* a refusal is the gateway's credential problem, named as such */
    tokend_start(p, &sv, "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: "
                         "25\r\nConnection: close\r\n\r\n{\"error\":\"invalid_grant\"}");
    sa->token_uri = apr_psprintf(p, "http://127.0.0.1:%d/token", sv.port);
    e = fl_gtoken_get(cache, http, p, t0 + apr_time_from_sec(7200), 1000, 2000, "v", &tok);
    tokend_stop(&sv);
    CHECK(e && e->status == 502 && !strcmp(e->code, "upstream_auth_failed"));
    CHECK(e && strstr(e->message, "HTTP 400"));
}

static void test_jwt(apr_pool_t *p)
{
    EVP_PKEY *k = EVP_RSA_gen(2048);
    const char *priv = pem_of(p, k, 1), *err = NULL, *jwt, *dot1, *dot2, *path;
    fl_gsa_t *sa = NULL;
    json_t *key, *claims;
    unsigned char *sig, *cl;
    int siglen, cllen, ok;
    EVP_MD_CTX *md = EVP_MD_CTX_new();

    key = json_pack("{s:s,s:s,s:s,s:s,s:s}", "type", "service_account", "client_email",
                    "sa@p.iam.gserviceaccount.com", "private_key", priv, "private_key_id", "kid1",
                    "token_uri", "http://127.0.0.1:1/token");
    path = write_file(p, "sa.json", fl_json_dump(p, key, 1));
    CHECK(fl_gsa_load(p, path, &sa) == NULL);
    CHECK(sa && !strcmp(sa->client_email, "sa@p.iam.gserviceaccount.com"));
    if (!sa) return;
    jwt = fl_gsa_assertion(p, sa, apr_time_from_sec(1700000000), &err);
    CHECK(jwt != NULL);
    if (!jwt) return;
    dot1 = strchr(jwt, '.');
    dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    CHECK(dot1 && dot2);
    if (!dot2) return;
    cl = unb64url(p, dot1 + 1, (apr_size_t)(dot2 - dot1 - 1), &cllen);
    claims = fl_json_pool_own(p, json_loadb((char *)cl, (size_t)cllen, 0, NULL));
    CHECK_STR(fl_json_str(claims, "iss", NULL), "sa@p.iam.gserviceaccount.com");
    CHECK_STR(fl_json_str(claims, "scope", NULL), "https://www.googleapis.com/auth/cloud-platform");
    CHECK_STR(fl_json_str(claims, "aud", NULL), "http://127.0.0.1:1/token");
    CHECK(fl_json_count(claims, "iat") == 1700000000 && fl_json_count(claims, "exp") == 1700003600);
    sig = unb64url(p, dot2 + 1, strlen(dot2 + 1), &siglen);
    ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k) == 1
         && EVP_DigestVerifyUpdate(md, jwt, (size_t)(dot2 - jwt)) == 1
         && EVP_DigestVerifyFinal(md, sig, (size_t)siglen) == 1;
    CHECK(ok);
    CHECK(strstr(fl_gsa_form(p, jwt), "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=") != NULL);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(k);
    test_token_cache(p, sa);

    /* the token endpoint's answer */
    {
        const char *tok = NULL;
        apr_int64_t ttl = 0;
        const char *ans = "{\"access_token\":\"ya29.abc\",\"expires_in\":3599,\"token_type\":\"Bearer\"}";
        CHECK(fl_gsa_parse_token(p, ans, strlen(ans), &tok, &ttl) == NULL);
        CHECK_STR(tok, "ya29.abc");
        CHECK(ttl == 3599);
        CHECK(fl_gsa_parse_token(p, "{}", 2, &tok, &ttl) != NULL);
    }
    /* clear errors for a missing or malformed key file */
    err = fl_gsa_load(p, "/nonexistent/sa.json", &sa);
    CHECK(err && strstr(err, "cannot open service_account_file"));
    err = fl_gsa_load(p, write_file(p, "bad.json", "{not json"), &sa);
    CHECK(err && strstr(err, "is not a JSON key file"));
    err = fl_gsa_load(p, write_file(p, "nokey.json", "{\"client_email\":\"a@b\"}"), &sa);
    CHECK(err && strstr(err, "no private_key"));
    err = fl_gsa_load(p, write_file(p, "badkey.json", "{\"client_email\":\"a@b\",\"private_key\":\"xx\"}"), &sa);
    CHECK(err && strstr(err, "not a PEM private key"));

    /* Vertex: the options checked, the URL built from them */
    {
        fl_provider_t *pv = provider(p, &fl_adapter_vertex, NULL);
        fl_upstream_t *up = fl_upstream_make(p);
        fl_call_t *call;
        const char *msg = fl_adapter_vertex.check(pv, p);
        CHECK(msg && strstr(msg, "project="));
        apr_table_set(pv->opts, "project", "my-proj");
        apr_table_set(pv->opts, "location", "us-central1");
        apr_table_set(pv->opts, "service_account_file", "/nonexistent/sa.json");
        CHECK(fl_adapter_vertex.check(pv, p) == NULL);
        msg = fl_adapter_vertex.configure(pv, p);
        CHECK(msg && strstr(msg, "cannot open service_account_file"));
        apr_table_set(pv->opts, "service_account_file", path);
        CHECK(fl_adapter_vertex.configure(pv, p) == NULL);
        call = make_call(p, pv, "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
        /* no token cache: the call is refused, not sent without credentials */
        CHECK(fl_adapter_vertex.prepare(call, up) != NULL);
        CHECK_STR(up->url, "https://us-central1-aiplatform.googleapis.com/v1/projects/my-proj/locations/"
                           "us-central1/publishers/google/models/gemini-2.5-flash:generateContent");
        apr_table_set(pv->opts, "location", "global");
        CHECK(fl_adapter_vertex.configure(pv, p) == NULL);
        up = fl_upstream_make(p);
        fl_adapter_vertex.prepare(call, up);
        CHECK_STR(up->url, "https://aiplatform.googleapis.com/v1/projects/my-proj/locations/global/"
                           "publishers/google/models/gemini-2.5-flash:generateContent");
        apr_table_set(pv->opts, "project", "bad/proj");
        CHECK(fl_adapter_vertex.check(pv, p) != NULL);
    }
}

void test_gemini(apr_pool_t *p)
{
    test_request(p);
    test_response(p);
    test_stream(p);
    test_errors(p);
    test_jwt(p);
}
