/* Unit tests of the OpenAI-compatible provider profiles (fl_adapter_compat.c): default base
 * URLs, each profile's request fixes, usage found outside OpenAI's place in answers and
 * streams (split at every byte boundary), error bodies in other shapes. */
#include <apr_lib.h>
#include <apr_strings.h>
#include <jansson.h>

#include "fl_test.h"
#include "fl_adapter.h"
#include "fl_json.h"

static fl_provider_t *provider(apr_pool_t *p, const char *type, const char *base)
{
    fl_catalog_t *c = fl_catalog_create(p);
    const char *opts[3];
    int n = 0;
    opts[n++] = apr_pstrcat(p, "type=", type, NULL);
    if (base) opts[n++] = apr_pstrcat(p, "base_url=", base, NULL);
    if (fl_catalog_add_provider(c, p, "pv", opts, n)) return NULL;
    if (fl_catalog_resolve(c, p)) return NULL;
    return APR_ARRAY_IDX(c->provider_list, 0, fl_provider_t *);
}

typedef struct {
    fl_call_t call;
    fl_model_t model;
    fl_upstream_t *up;
    fl_error_t *err;
    json_t *sent;                /* the upstream body, parsed */
} prep_t;

static prep_t *prepare(apr_pool_t *p, const char *type, const char *model, const char *req)
{
    prep_t *t = apr_pcalloc(p, sizeof(*t));
    fl_error_t *e = NULL;
    t->call.pool = p;
    t->call.provider = provider(p, type, NULL);
    t->model.name = model;
    t->model.id = apr_pstrcat(p, "pv/", model, NULL);
    t->call.model = &t->model;
    t->call.cr = fl_openai_parse_request(p, req, strlen(req), &e);
    t->up = fl_upstream_make(p);
    if (!t->call.provider || !t->call.cr) return t;
    t->err = t->call.provider->adapter->prepare(&t->call, t->up);
    if (!t->err) t->sent = fl_json_pool_own(p, json_loadb(t->up->body, t->up->body_len, 0, NULL));
    return t;
}

static int has(const json_t *o, const char *k)
{
    return json_object_get(o, k) != NULL;
}

static void profiles(apr_pool_t *p)
{
    static const char *const types[] = { "deepseek", "mistral", "xai", "groq", "cerebras",
                                         "sambanova", "together", "fireworks", "perplexity",
                                         "ai21", "deepinfra", "nebius", "novita", NULL };
    const char *const *t;
    fl_provider_t *pv;
    for (t = types; *t; t++) {
        const fl_adapter_t *a = fl_adapter_find(*t);
        CHECK(a && !strcmp(a->type, *t));
        /* no base_url needed: the profile's own */
        pv = provider(p, *t, NULL);
        CHECK(pv && pv->chat_url && !strncmp(pv->chat_url, "https://", 8));
    }
    CHECK_STR(provider(p, "groq", NULL)->chat_url,
              "https://api.groq.com/openai/v1/chat/completions");
    CHECK_STR(provider(p, "mistral", NULL)->chat_url, "https://api.mistral.ai/v1/chat/completions");
    CHECK_STR(provider(p, "perplexity", NULL)->chat_url, "https://api.perplexity.ai/chat/completions");
    CHECK_STR(provider(p, "deepseek", NULL)->chat_url, "https://api.deepseek.com/chat/completions");
    /* base_url still overrides */
    CHECK_STR(provider(p, "groq", "http://127.0.0.1:9/groq/openai/v1/")->chat_url,
              "http://127.0.0.1:9/groq/openai/v1/chat/completions");
    CHECK(strstr(fl_adapter_types(p), "novita") != NULL);
}

static void groq(apr_pool_t *p)
{
    const char *req = "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"name\":\"ann\","
                      "\"content\":\"hi\"}],\"logprobs\":true,\"top_logprobs\":2,\"n\":3,"
                      "\"logit_bias\":{\"1\":2},\"temperature\":0.5}";
    prep_t *t = prepare(p, "groq", "llama-3.3-70b-versatile", req);
    json_t *m;
    CHECK(t->sent && !t->err);
    if (!t->sent) return;
    CHECK(!has(t->sent, "logprobs") && !has(t->sent, "top_logprobs") && !has(t->sent, "n")
          && !has(t->sent, "logit_bias") && has(t->sent, "temperature"));
    m = json_array_get(json_object_get(t->sent, "messages"), 0);
    CHECK(!has(m, "name") && has(m, "content"));
    /* the client's request is left as it was (a fallback re-prepares from it) */
    m = json_array_get(json_object_get(t->call.cr->root, "messages"), 0);
    CHECK(has(m, "name") && has(t->call.cr->root, "logprobs"));
    CHECK_STR(t->up->url, "https://api.groq.com/openai/v1/chat/completions");
    CHECK_STR(fl_json_str(t->sent, "model", ""), "llama-3.3-70b-versatile");
}

static void mistral(apr_pool_t *p)
{
    const char *req =
        "{\"model\":\"x\",\"seed\":7,\"max_completion_tokens\":50,\"messages\":["
        "{\"role\":\"user\",\"content\":\"hi\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
        "{\"id\":\"call_lQnnsesjFMWMQ5IeWPHzR4th\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}},"
        "{\"id\":\"abcDEF123\",\"type\":\"function\",\"function\":{\"name\":\"g\",\"arguments\":\"{}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_lQnnsesjFMWMQ5IeWPHzR4th\",\"content\":\"1\"},"
        "{\"role\":\"tool\",\"tool_call_id\":\"abcDEF123\",\"content\":\"2\"}]}";
    prep_t *t = prepare(p, "mistral", "mistral-large-latest", req);
    json_t *msgs, *calls;
    const char *id0, *id1, *tc0, *tc1;
    apr_size_t i;
    int ok = 1;
    CHECK(t->sent && !t->err);
    if (!t->sent) return;
    CHECK(!has(t->sent, "seed") && json_integer_value(json_object_get(t->sent, "random_seed")) == 7);
    CHECK(!has(t->sent, "max_completion_tokens")
          && json_integer_value(json_object_get(t->sent, "max_tokens")) == 50);
    msgs = json_object_get(t->sent, "messages");
    calls = json_object_get(json_array_get(msgs, 1), "tool_calls");
    id0 = fl_json_str(json_array_get(calls, 0), "id", "");
    id1 = fl_json_str(json_array_get(calls, 1), "id", "");
    tc0 = fl_json_str(json_array_get(msgs, 2), "tool_call_id", "");
    tc1 = fl_json_str(json_array_get(msgs, 3), "tool_call_id", "");
    CHECK(strlen(id0) == 9);
    for (i = 0; i < strlen(id0); i++) ok &= apr_isalnum(id0[i]) != 0;
    CHECK(ok);
    CHECK_STR(tc0, id0);                 /* rewritten the same way in the tool message */
    CHECK_STR(id1, "abcDEF123");         /* already valid: kept */
    CHECK_STR(tc1, "abcDEF123");
    /* and the same way in the next request of the conversation */
    CHECK_STR(fl_json_str(json_array_get(json_object_get(json_array_get(json_object_get(
              prepare(p, "mistral", "m", req)->sent, "messages"), 1), "tool_calls"), 0),
              "id", ""), id0);
}

static void others(apr_pool_t *p)
{
    const char *pen = "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                      "\"presence_penalty\":0.1,\"frequency_penalty\":0.2,\"stop\":[\"z\"],"
                      "\"logit_bias\":{\"1\":1},\"parallel_tool_calls\":false,"
                      "\"service_tier\":\"auto\",\"logprobs\":true,\"top_logprobs\":1}";
    const char *img = "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                      "\"text\",\"text\":\"see\"},{\"type\":\"image_url\",\"image_url\":{\"url\":"
                      "\"data:image/png;base64,AAAA\"}}]}]}";
    const char *tools = "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}";
    prep_t *t;

    t = prepare(p, "cerebras", "llama-3.3-70b", pen);
    CHECK(t->sent && !has(t->sent, "presence_penalty") && !has(t->sent, "frequency_penalty")
          && !has(t->sent, "logit_bias") && !has(t->sent, "parallel_tool_calls")
          && !has(t->sent, "service_tier") && has(t->sent, "stop"));
    t = prepare(p, "xai", "grok-4", pen);
    CHECK(t->sent && !has(t->sent, "presence_penalty") && !has(t->sent, "frequency_penalty")
          && !has(t->sent, "stop"));
    t = prepare(p, "xai", "grok-4-fast-non-reasoning", pen);
    CHECK(t->sent && has(t->sent, "presence_penalty") && has(t->sent, "stop"));
    t = prepare(p, "xai", "grok-3-mini", pen);
    CHECK(t->sent && !has(t->sent, "stop"));
    t = prepare(p, "xai", "grok-4-fast-reasoning",
                "{\"model\":\"x\",\"messages\":[{\"role\":\"user\"}],\"reasoning_effort\":\"low\"}");
    CHECK(t->sent && !has(t->sent, "reasoning_effort"));
    t = prepare(p, "xai", "grok-3-mini",
                "{\"model\":\"x\",\"messages\":[{\"role\":\"user\"}],\"reasoning_effort\":\"low\"}");
    CHECK(t->sent && has(t->sent, "reasoning_effort"));
    t = prepare(p, "deepseek", "deepseek-reasoner", pen);
    CHECK(t->sent && !has(t->sent, "logprobs") && !has(t->sent, "top_logprobs")
          && has(t->sent, "presence_penalty"));
    t = prepare(p, "deepseek", "deepseek-chat", pen);
    CHECK(t->sent && has(t->sent, "logprobs"));
    /* no image input: a clear 400 */
    t = prepare(p, "deepseek", "deepseek-chat", img);
    CHECK(t->err && t->err->status == 400);
    CHECK(t->err && !strcmp(t->err->code, "unsupported_content")
          && !strcmp(t->err->param, "messages"));
    t = prepare(p, "ai21", "jamba-large", img);
    CHECK(t->err && t->err->status == 400);
    t = prepare(p, "groq", "llama-4-scout", img);
    CHECK(t->sent && !t->err);
    /* perplexity: no tools */
    t = prepare(p, "perplexity", "sonar", tools);
    CHECK(t->err && t->err->status == 400 && !strcmp(t->err->param, "tools"));
    t = prepare(p, "perplexity", "sonar", pen);
    CHECK(t->sent && !has(t->sent, "logprobs") && !has(t->sent, "logit_bias"));
    /* ai21: string content, json_object only, max_tokens */
    t = prepare(p, "ai21", "jamba-mini",
                "{\"model\":\"x\",\"max_completion_tokens\":9,\"messages\":[{\"role\":\"user\","
                "\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]}],"
                "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"s\"}}}");
    CHECK(t->sent && json_is_string(json_object_get(json_array_get(json_object_get(t->sent,
          "messages"), 0), "content")));
    CHECK(t->sent && !strcmp(fl_json_str(json_object_get(t->sent, "response_format"), "type", ""),
                             "json_object"));
    CHECK(t->sent && json_integer_value(json_object_get(t->sent, "max_tokens")) == 9);
    /* no profile quirk: the OpenAI body, include_usage asked for in streams */
    t = prepare(p, "together", "meta-llama/Llama-3.3-70B-Instruct-Turbo",
                "{\"model\":\"x\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    CHECK(t->sent && json_is_true(json_object_get(json_object_get(t->sent, "stream_options"),
                                                  "include_usage")));
    CHECK_STR(t->up->accept, "text/event-stream");
}

static void auth_header(apr_pool_t *p)
{
    prep_t *t = prepare(p, "nebius", "m", "{\"model\":\"x\",\"messages\":[{\"role\":\"user\"}]}");
    CHECK(t->up->headers->nelts == 0);   /* no key configured: no Authorization */
}

static void answers(apr_pool_t *p)
{
    /* DeepSeek's usage: the cache hits are its cached prompt tokens */
    const char *ds = "{\"id\":\"x\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,"
                     "\"message\":{\"role\":\"assistant\",\"content\":\"hi\"},\"finish_reason\":"
                     "\"stop\"}],\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":3,"
                     "\"total_tokens\":23,\"prompt_cache_hit_tokens\":16,"
                     "\"prompt_cache_miss_tokens\":4}}";
    /* Perplexity's citations and search_results pass through untouched */
    const char *px = "{\"id\":\"x\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,"
                     "\"message\":{\"role\":\"assistant\",\"content\":\"hi [1]\"},\"finish_reason\":"
                     "\"stop\"}],\"citations\":[\"https://a.example\"],\"search_results\":[{\"title\""
                     ":\"A\",\"url\":\"https://a.example\"}],\"usage\":{\"prompt_tokens\":2,"
                     "\"completion_tokens\":2,\"total_tokens\":4,\"citation_tokens\":9}}";
    prep_t *t = prepare(p, "deepseek", "deepseek-chat",
                        "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    fl_usage_t u;
    const char *out;
    apr_size_t n;
    fl_usage_clear(&u);
    CHECK(!t->call.provider->adapter->response(&t->call, ds, strlen(ds), &out, &n, &u));
    CHECK(u.prompt == 20 && u.completion == 3 && u.cached == 16);
    t = prepare(p, "perplexity", "sonar",
                "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    fl_usage_clear(&u);
    CHECK(!t->call.provider->adapter->response(&t->call, px, strlen(px), &out, &n, &u));
    CHECK(out == px && n == strlen(px) && u.prompt == 2);
}

static void errors(apr_pool_t *p)
{
    const char *mis = "{\"object\":\"error\",\"message\":\"Tool call id was call_0fypS1hVX but must "
                      "be a-z, A-Z, 0-9, with a length of 9.\",\"type\":\"invalid_request_error\","
                      "\"param\":null,\"code\":null}";
    const char *oai = "{\"error\":{\"message\":\"rate\",\"type\":\"requests\",\"code\":"
                      "\"rate_limit_exceeded\"}}";
    const char *detail = "{\"detail\":\"jamba says no\"}";
    prep_t *t = prepare(p, "mistral", "m", "{\"model\":\"x\",\"messages\":[{\"role\":\"user\"}]}");
    apr_table_t *h = apr_table_make(p, 2);
    fl_error_t *e = t->call.provider->adapter->error(&t->call, 400, NULL, mis, strlen(mis));
    CHECK(e->status == 400 && !strcmp(e->type, "invalid_request_error"));
    CHECK(strstr(e->message, "length of 9") != NULL);
    apr_table_set(h, "retry-after", "7");
    e = t->call.provider->adapter->error(&t->call, 429, h, oai, strlen(oai));
    CHECK(e->status == 429 && e->retry_after && !strcmp(e->retry_after, "7"));
    e = t->call.provider->adapter->error(&t->call, 500, NULL, oai, strlen(oai));
    CHECK(e->status == 502);
    e = t->call.provider->adapter->error(&t->call, 422, NULL, detail, strlen(detail));
    CHECK(e->status == 422 && strstr(e->message, "jamba says no") != NULL);
}

typedef struct {
    apr_pool_t *p;
    const char *text;            /* payloads joined by "\n" */
    int done, errors;
} sink_t;

static apr_status_t sink(void *baton, fl_chunk_kind_e kind, const char *data, apr_size_t len)
{
    sink_t *s = baton;
    if (kind == FL_CHUNK_DONE) s->done++;
    if (kind == FL_CHUNK_ERROR) s->errors++;
    s->text = apr_pstrcat(s->p, s->text, apr_pstrmemdup(s->p, data, len), "\n", NULL);
    return APR_SUCCESS;
}

/* Feeds wire in two pieces split at 'at' (0 = in one piece). */
static sink_t *run_stream(apr_pool_t *p, const char *type, int include_usage, const char *wire,
                          apr_size_t at, fl_usage_t *u)
{
    prep_t *t = prepare(p, type, "m", include_usage
        ? "{\"model\":\"x\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
          "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"
        : "{\"model\":\"x\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    sink_t *s = apr_pcalloc(p, sizeof(*s));
    fl_stream_t *st;
    const fl_adapter_t *a = t->call.provider->adapter;
    s->p = p;
    s->text = "";
    fl_usage_clear(u);
    if (a->stream_open(&t->call, u, sink, s, &st) != APR_SUCCESS) return s;
    if (at) {
        a->stream_feed(st, wire, at);
        a->stream_feed(st, wire + at, strlen(wire) - at);
    }
    else a->stream_feed(st, wire, strlen(wire));
    return s;
}

static void streams(apr_pool_t *p)
{
    /* Groq's streaming usage in x_groq.usage on the finish chunk, no usage chunk (the shape in
     * https://github.com/vercel/ai/issues/1651), CRLF line ends. */
    const char *groq =
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1715,\"model\":"
        "\"llama3-8b-8192\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":"
        "\"\"},\"logprobs\":null,\"finish_reason\":null}],\"x_groq\":{\"id\":\"req_1\"}}\r\n\r\n"
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1715,\"model\":"
        "\"llama3-8b-8192\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"logprobs\":null,"
        "\"finish_reason\":null}]}\r\n\r\n"
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1715,\"model\":"
        "\"llama3-8b-8192\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":"
        "\"stop\"}],\"x_groq\":{\"id\":\"req_1\",\"usage\":{\"queue_time\":0.01,\"prompt_tokens\":24,"
        "\"prompt_time\":0.005,\"completion_tokens\":10,\"completion_time\":0.008,\"total_tokens\":34,"
        "\"total_time\":0.013}}}\r\n\r\n"
        "data: [DONE]\r\n\r\n";
    /* DeepSeek's usage chunk with cache-hit counts, an SSE keep-alive comment */
    const char *ds =
        ": keep-alive\n\n"
        "data: {\"id\":\"1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"deepseek-chat\","
        "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":\"stop\"}]}\n\n"
        "data: {\"id\":\"1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"deepseek-chat\","
        "\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":1,\"total_tokens\":13,"
        "\"prompt_cache_hit_tokens\":8,\"prompt_cache_miss_tokens\":4}}\n\n"
        "data: [DONE]\n\n";
    /* Perplexity: citations on the chunks pass through */
    const char *px =
        "data: {\"id\":\"1\",\"model\":\"sonar\",\"object\":\"chat.completion.chunk\",\"created\":1,"
        "\"citations\":[\"https://a.example\"],\"choices\":[{\"index\":0,\"delta\":{\"content\":"
        "\"Hi\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,"
        "\"total_tokens\":4}}\n\ndata: [DONE]\n\n";
    /* A provider error event ends the stream without [DONE] */
    const char *err = "data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n";
    apr_size_t at, n = strlen(groq);
    int ok_usage = 1, ok_text = 1, ok_done = 1, ok_nochunk = 1;
    fl_usage_t u;
    sink_t *s;

    for (at = 0; at < n; at++) {
        s = run_stream(p, "groq", 1, groq, at, &u);
        ok_usage &= u.prompt == 24 && u.completion == 10 && u.total == 34;
        ok_text &= strstr(s->text, "\"content\":\"Hi\"") != NULL
                   && strstr(s->text, "\"choices\":[],\"usage\":{\"prompt_tokens\":24") != NULL;
        ok_done &= s->done == 1 && s->errors == 0;
        s = run_stream(p, "groq", 0, groq, at, &u);
        ok_nochunk &= strstr(s->text, "\"choices\":[]") == NULL && u.prompt == 24 && s->done == 1;
    }
    CHECK(ok_usage);
    CHECK(ok_text);   /* the client asked for usage: a usage chunk is made before [DONE] */
    CHECK(ok_done);
    CHECK(ok_nochunk);

    /* today's Groq: x_groq.usage on the finish chunk and the usage chunk asked for: one usage
     * chunk reaches the client, not two */
    {
        const char *both = apr_pstrcat(p, apr_pstrndup(p, groq, strstr(groq, "data: [DONE]") - groq),
            "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1715,"
            "\"model\":\"llama3-8b-8192\",\"choices\":[],\"usage\":{\"prompt_tokens\":24,"
            "\"completion_tokens\":10,\"total_tokens\":34}}\r\n\r\ndata: [DONE]\r\n\r\n", NULL);
        const char *first;
        s = run_stream(p, "groq", 1, both, 0, &u);
        first = strstr(s->text, "\"choices\":[]");
        CHECK(first && !strstr(first + 1, "\"choices\":[]") && u.prompt == 24 && s->done == 1);
    }

    s = run_stream(p, "deepseek", 0, ds, 0, &u);
    CHECK(u.prompt == 12 && u.cached == 8 && s->done == 1);
    CHECK(strstr(s->text, "prompt_cache_hit") == NULL);  /* usage chunk dropped: not asked */
    s = run_stream(p, "deepseek", 1, ds, 0, &u);
    /* the provider's own usage chunk went out: no second one is made */
    CHECK(strstr(s->text, "prompt_cache_hit") != NULL
          && strstr(s->text, "\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":1,"
                             "\"total_tokens\":13,\"prompt_tokens_details\"") == NULL);

    s = run_stream(p, "perplexity", 0, px, 0, &u);
    CHECK(strstr(s->text, "citations") != NULL && strstr(s->text, "\"usage\"") == NULL);
    CHECK(u.prompt == 3 && s->done == 1);

    s = run_stream(p, "fireworks", 1, err, 0, &u);
    CHECK(s->errors == 1 && s->done == 0);
}

/* The Azure OpenAI and Cohere v2 adapters' tests live in test_azure_cohere.c. */
void test_azure_cohere(apr_pool_t *p);

void test_compat(apr_pool_t *p)
{
    test_azure_cohere(p);
    profiles(p);
    groq(p);
    mistral(p);
    others(p);
    auth_header(p);
    answers(p);
    errors(p);
    streams(p);
}
