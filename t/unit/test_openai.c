#include <apr_strings.h>
#include "fl_test.h"
#include "fl_chat_request.h"
#include "fl_openai.h"

static const char *parse_err(apr_pool_t *p, const char *body)
{
    fl_error_t *e = NULL;
    fl_chat_request_t *cr = fl_openai_parse_request(p, body, strlen(body), &e);
    if (cr) return "ok";
    return apr_psprintf(p, "%d %s %s", e->status, e->code, e->param ? e->param : "-");
}

static void requests(apr_pool_t *p)
{
    fl_error_t *e;
    fl_chat_request_t *cr;
    const char *ok = "{\"model\":\"auto\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                     "\"stream\":true,\"stream_options\":{\"include_usage\":true}}";
    CHECK_STR(parse_err(p, "{nope"), "400 invalid_json -");
    CHECK_STR(parse_err(p, "[1,2]"), "400 invalid_json -");
    CHECK_STR(parse_err(p, "{\"messages\":[{\"role\":\"user\"}]}"), "400 missing_required_parameter model");
    CHECK_STR(parse_err(p, "{\"model\":5,\"messages\":[{\"role\":\"user\"}]}"), "400 invalid_type model");
    CHECK_STR(parse_err(p, "{\"model\":\"\",\"messages\":[{\"role\":\"user\"}]}"), "400 invalid_type model");
    CHECK_STR(parse_err(p, "{\"model\":\"a\"}"), "400 missing_required_parameter messages");
    CHECK_STR(parse_err(p, "{\"model\":\"a\",\"messages\":{}}"), "400 invalid_type messages");
    CHECK_STR(parse_err(p, "{\"model\":\"a\",\"messages\":[]}"), "400 invalid_value messages");
    CHECK_STR(parse_err(p, "{\"model\":\"a\",\"messages\":[5]}"), "400 invalid_type messages[0]");
    CHECK_STR(parse_err(p, "{\"model\":\"a\",\"messages\":[{\"role\":\"user\"}],\"stream\":\"yes\"}"),
              "400 invalid_type stream");
    CHECK_STR(parse_err(p, "{\"model\":\"a\",\"messages\":[{\"role\":\"user\"}],\"stream_options\":1}"),
              "400 invalid_type stream_options");
    CHECK_STR(parse_err(p, "{\"model\":\"a\",\"model\":\"b\",\"messages\":[{\"role\":\"user\"}]}"),
              "400 invalid_json -");
    cr = fl_openai_parse_request(p, ok, strlen(ok), &e);
    CHECK(cr && cr->stream && cr->include_usage && !strcmp(cr->model, "auto"));
    CHECK(!cr->has_images);
}

static void upstream_body(apr_pool_t *p)
{
    fl_error_t *e;
    apr_size_t len;
    const char *in = "{\"model\":\"auto\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
                     "\"image_url\":{\"url\":\"data:image/png;base64,AAAA\"}}]}],\"stream\":true,"
                     "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}";
    fl_chat_request_t *cr = fl_openai_parse_request(p, in, strlen(in), &e);
    const char *out = fl_openai_upstream_body(p, cr, "gpt-x", &len);
    CHECK(cr->has_images);
    CHECK_STR(out, "{\"model\":\"gpt-x\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
                   "\"image_url\":{\"url\":\"data:image/png;base64,AAAA\"}}]}],\"stream\":true,"
                   "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
                   "\"stream_options\":{\"include_usage\":true}}");
    CHECK(len == strlen(out));
    /* the client's own request is left as it was */
    CHECK(json_object_get(cr->root, "stream_options") == NULL);
}

static void chunks(apr_pool_t *p)
{
    fl_usage_t u;
    const char *out;
    apr_size_t n;
    const char *plain = "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}],\"usage\":null}";
    const char *final = "{\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":3,"
                        "\"total_tokens\":12,\"prompt_tokens_details\":{\"cached_tokens\":4},"
                        "\"completion_tokens_details\":{\"reasoning_tokens\":1}}}";
    fl_usage_clear(&u);
    CHECK(fl_openai_stream_chunk(p, "[DONE]", 6, 0, &u, &out, &n) == FL_CHUNK_DONE);
    CHECK(fl_openai_stream_chunk(p, plain, strlen(plain), 0, &u, &out, &n) == FL_CHUNK_FORWARD);
    CHECK(out == plain);
    /* usage the client did not ask for: the null is taken out, the usage chunk dropped */
    CHECK(fl_openai_stream_chunk(p, plain, strlen(plain), 1, &u, &out, &n) == FL_CHUNK_FORWARD);
    CHECK_STR(out, "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}");
    CHECK(fl_openai_stream_chunk(p, final, strlen(final), 1, &u, &out, &n) == FL_CHUNK_DROP);
    CHECK(u.prompt == 9 && u.completion == 3 && u.total == 12 && u.cached == 4 && u.reasoning == 1);
    fl_usage_clear(&u);
    CHECK(fl_openai_stream_chunk(p, final, strlen(final), 0, &u, &out, &n) == FL_CHUNK_FORWARD);
    CHECK(u.prompt == 9);
    {
        const char *err = "{\"error\":{\"message\":\"x\"}}";
        CHECK(fl_openai_stream_chunk(p, err, strlen(err), 0, &u, &out, &n) == FL_CHUNK_ERROR);
    }
}

static void responses_and_errors(apr_pool_t *p)
{
    fl_usage_t u;
    apr_table_t *h = apr_table_make(p, 2);
    fl_error_t *e;
    const char *rl = "{\"error\":{\"message\":\"Rate limit reached\",\"type\":\"requests\","
                     "\"param\":null,\"code\":\"rate_limit_exceeded\"}}";
    fl_usage_clear(&u);
    {
        const char *ok = "{\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}";
        CHECK(fl_openai_parse_response(p, ok, strlen(ok), &u) == NULL);
    }
    CHECK(u.prompt == 1 && u.completion == 2 && u.total == 3);
    e = fl_openai_parse_response(p, "<html>", 6, &u);
    CHECK(e && e->status == 502);

    apr_table_set(h, "retry-after", "7");
    e = fl_openai_map_upstream_error(p, "mock", 429, h, rl, strlen(rl));
    CHECK(e->status == 429 && !strcmp(e->code, "rate_limit_exceeded") && !strcmp(e->retry_after, "7"));
    e = fl_openai_map_upstream_error(p, "mock", 500, NULL, "oops", 4);
    CHECK(e->status == 502 && !strcmp(e->type, "upstream_error"));
    e = fl_openai_map_upstream_error(p, "mock", 401, NULL, NULL, 0);
    CHECK(e->status == 502 && !strcmp(e->code, "upstream_auth_failed"));
    {
        const char *bad = "{\"error\":{\"message\":\"bad\",\"type\":\"invalid_request_error\","
                          "\"param\":\"max_tokens\",\"code\":\"unsupported_parameter\"}}";
        e = fl_openai_map_upstream_error(p, "mock", 400, NULL, bad, strlen(bad));
        CHECK(e->status == 400 && e->param && !strcmp(e->param, "max_tokens"));
    }
    e = fl_openai_map_upstream_error(p, "mock", 408, NULL, NULL, 0);
    CHECK(e->status == 504);
}

/* A streamed answer read back as one message, as the judge reads a non-streamed one. */
static void stream_text(apr_pool_t *p)
{
    static const char *const chunks[] = {
        "{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"
        "\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]}",
        "not json",
        "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo \\u00e9\\n\"}}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}",
        "{\"choices\":[],\"usage\":{\"prompt_tokens\":3}}",
    };
    fl_stream_text_t *t = fl_stream_text_create(p, 64), *tools, *small;
    const char *answer;
    apr_size_t len = 0;
    json_t *o;
    size_t i;
    for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
        fl_stream_text_feed(t, chunks[i], strlen(chunks[i]));
    }
    answer = fl_stream_text_answer(t, p, &len);
    CHECK(answer && len == strlen(answer));
    o = answer ? json_loads(answer, 0, NULL) : NULL;
    CHECK_STR(json_string_value(json_object_get(json_object_get(json_array_get(
        json_object_get(o, "choices"), 0), "message"), "content")), "Hello \xc3\xa9\n");
    CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(o, "choices"), 0),
                                                "finish_reason")), "stop");
    json_decref(o);
    /* tool calls only: no text to judge */
    tools = fl_stream_text_create(p, 64);
    {
        const char *tc = "{\"choices\":[{\"delta\":{\"tool_calls\":[]}}]}";
        fl_stream_text_feed(tools, tc, strlen(tc));
    }
    CHECK(fl_stream_text_answer(tools, p, &len) == NULL);
    /* past the cap: none either, rather than half an answer */
    small = fl_stream_text_create(p, 4);
    fl_stream_text_feed(small, chunks[1], strlen(chunks[1]));
    fl_stream_text_feed(small, chunks[3], strlen(chunks[3]));
    CHECK(fl_stream_text_answer(small, p, &len) == NULL);
}

void test_openai(apr_pool_t *p)
{
    requests(p);
    upstream_body(p);
    chunks(p);
    responses_and_errors(p);
    stream_text(p);
}
