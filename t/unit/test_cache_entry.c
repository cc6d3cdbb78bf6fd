#include <apr_strings.h>
#include "fl_test.h"
#include "fl_json.h"
#include "fl_openai.h"
#include "fl_cache_entry.h"

/* Fixtures in OpenAI's documented stream shape (provider-wire-formats.md, 1.3): the head every
 * chunk of one answer shares, a choice a chunk, the usage chunk last. */
#define HEAD_ "\"id\":\"chatcmpl-orig\",\"object\":\"chat.completion.chunk\",\"created\":1723024757," \
              "\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_2a322c9ffc\""
#define USAGE "{\"prompt_tokens\":149,\"completion_tokens\":60,\"total_tokens\":209," \
              "\"prompt_tokens_details\":{\"cached_tokens\":64,\"audio_tokens\":0}," \
              "\"completion_tokens_details\":{\"reasoning_tokens\":12,\"audio_tokens\":0," \
              "\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}"
#define NEW_ID "chatcmpl-new"
#define NEW_CREATED 1800000000

static const char *chunk(apr_pool_t *p, const char *delta, const char *finish)
{
    return apr_psprintf(p, "{" HEAD_ ",\"choices\":[{\"index\":0,\"delta\":%s,\"logprobs\":null,"
                        "\"finish_reason\":%s}],\"usage\":null}", delta, finish);
}

static const char *usage_chunk(apr_pool_t *p)
{
    return "{" HEAD_ ",\"choices\":[],\"usage\":" USAGE "}";
}

static apr_array_header_t *chunks_new(apr_pool_t *p)
{
    return apr_array_make(p, 16, sizeof(const char *));
}

static void add(apr_array_header_t *a, const char *c)
{
    APR_ARRAY_PUSH(a, const char *) = c;
}

/* A stream of one choice from its deltas and finish_reasons (pairs, NULL-ended), then usage. */
static apr_array_header_t *stream_of(apr_pool_t *p, const char *const *pairs)
{
    apr_array_header_t *a = chunks_new(p);
    for (; *pairs; pairs += 2) add(a, chunk(p, pairs[0], pairs[1]));
    add(a, usage_chunk(p));
    return a;
}

static apr_array_header_t *text_stream(apr_pool_t *p)
{
    static const char *const pairs[] = {
        "{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}", "null",
        "{\"content\":\"Hel\"}", "null",
        "{\"content\":\"lo, \\u00e9t\xc3\xa9\"}", "null",
        "{\"content\":\" \\\"there\\\"\"}", "null",
        "{}", "\"stop\"", NULL
    };
    return stream_of(p, pairs);
}

#define ARGS0 "{\"location\":\"Paris, France\",\"unit\":\"celsius\",\"days\":[1,2,3]}"
#define ARGS1 "{\"ticker\":\"AAPL\",\"exchange\":\"NASDAQ\"}"

/* Two parallel calls, each one's arguments cut into many small fragments, as OpenAI does. */
static void add_call(apr_pool_t *p, apr_array_header_t *a, int index, const char *id,
                     const char *name, const char *args)
{
    size_t i, n = strlen(args);
    json_t *frag;
    add(a, chunk(p, apr_psprintf(p, "{\"tool_calls\":[{\"index\":%d,\"id\":\"%s\",\"type\":"
                                 "\"function\",\"function\":{\"name\":\"%s\",\"arguments\":\"\"}}]}",
                                 index, id, name), "null"));
    for (i = 0; i < n; i += 3) {
        frag = json_stringn(args + i, n - i < 3 ? n - i : 3);
        add(a, chunk(p, apr_psprintf(p, "{\"tool_calls\":[{\"index\":%d,\"function\":{\"arguments\":%s}}]}",
                                     index, fl_json_dump(p, frag, 1)), "null"));
    }
}

static apr_array_header_t *tool_stream(apr_pool_t *p)
{
    apr_array_header_t *a = chunks_new(p);
    add(a, chunk(p, "{\"role\":\"assistant\",\"content\":null}", "null"));
    add_call(p, a, 0, "call_lQnnsesjFMWMQ5IeWPHzR4th", "get_weather", ARGS0);
    add_call(p, a, 1, "call_2xjOUgaCdiwAcl9ZBL9LyMUU", "get_stock_price", ARGS1);
    add(a, chunk(p, "{}", "\"tool_calls\""));
    add(a, usage_chunk(p));
    return a;
}

/* DeepSeek's shape: the reasoning streams first in delta.reasoning_content, then the answer. */
static apr_array_header_t *reasoning_stream(apr_pool_t *p)
{
    static const char *const pairs[] = {
        "{\"role\":\"assistant\",\"content\":null,\"reasoning_content\":\"\"}", "null",
        "{\"content\":null,\"reasoning_content\":\"The user wants \"}", "null",
        "{\"content\":null,\"reasoning_content\":\"a number.\"}", "null",
        "{\"content\":\"4\",\"reasoning_content\":null}", "null",
        "{\"content\":\"2\",\"reasoning_content\":null}", "null",
        "{\"content\":\"\",\"reasoning_content\":null}", "\"stop\"", NULL
    };
    return stream_of(p, pairs);
}

/* Feeds the chunks and [DONE]: the finish's status and the entry. */
static apr_status_t record(apr_pool_t *p, const apr_array_header_t *a, int done, apr_size_t max,
                           fl_cache_entry_t **pe)
{
    fl_cache_recorder_t *rec;
    apr_status_t rv;
    int i;
    if ((rv = fl_cache_recorder_create(p, max, &rec)) != APR_SUCCESS) return rv;
    for (i = 0; i < a->nelts; i++) {
        const char *c = APR_ARRAY_IDX(a, i, const char *);
        fl_cache_recorder_feed(rec, c, strlen(c));
    }
    if (done) fl_cache_recorder_feed(rec, "[DONE]", 6);
    return fl_cache_recorder_finish(rec, pe);
}

static json_t *parse(apr_pool_t *p, const char *s)
{
    return fl_json_pool_own(p, json_loads(s, 0, NULL));
}

/* The chunk with the id and created it had, to compare with an original. */
static json_t *as_original(apr_pool_t *p, const char *s)
{
    json_t *o = parse(p, s);
    if (!o) return NULL;
    json_object_set_new(o, "id", json_string("chatcmpl-orig"));
    json_object_set_new(o, "created", json_integer(1723024757));
    return o;
}

/* The chunks replay as they were, and carry the new id and created. */
static int same_stream(apr_pool_t *p, const apr_array_header_t *orig,
                       const apr_array_header_t *got)
{
    int i, ok = orig->nelts == got->nelts;
    for (i = 0; ok && i < orig->nelts; i++) {
        json_t *g = parse(p, APR_ARRAY_IDX(got, i, const char *));
        ok = g && !strcmp(fl_json_str(g, "id", ""), NEW_ID)
             && json_integer_value(json_object_get(g, "created")) == NEW_CREATED
             && json_equal(parse(p, APR_ARRAY_IDX(orig, i, const char *)),
                           as_original(p, APR_ARRAY_IDX(got, i, const char *)));
        if (!ok) fprintf(stderr, "chunk %d differs: %s\n", i, APR_ARRAY_IDX(got, i, const char *));
    }
    return ok;
}

static int same_texts(const apr_array_header_t *a, const apr_array_header_t *b)
{
    int i, ok = a->nelts == b->nelts;
    for (i = 0; ok && i < a->nelts; i++) {
        ok = !strcmp(APR_ARRAY_IDX(a, i, const char *), APR_ARRAY_IDX(b, i, const char *));
    }
    return ok;
}

static apr_array_header_t *replay(apr_pool_t *p, const fl_cache_entry_t *e, int include_usage)
{
    apr_array_header_t *out = NULL;
    CHECK(fl_cache_entry_chunks(p, e, NEW_ID, apr_time_from_sec(NEW_CREATED), include_usage,
                                &out) == APR_SUCCESS);
    return out;
}

static json_t *answer_of(apr_pool_t *p, const fl_cache_entry_t *e)
{
    const char *s = NULL;
    apr_size_t n = 0;
    json_t *a;
    CHECK(fl_cache_entry_answer(p, e, NEW_ID, apr_time_from_sec(NEW_CREATED), &s, &n) == APR_SUCCESS);
    CHECK(s && n == strlen(s));
    a = parse(p, s);
    CHECK_STR(fl_json_str(a, "id", NULL), NEW_ID);
    CHECK(json_integer_value(json_object_get(a, "created")) == NEW_CREATED);
    CHECK_STR(fl_json_str(a, "object", NULL), "chat.completion");
    return a;
}

static json_t *message_of(json_t *answer)
{
    return json_object_get(json_array_get(json_object_get(answer, "choices"), 0), "message");
}

/* choices[0].delta of the i-th chunk of a replay */
static json_t *delta_of(apr_pool_t *p, const apr_array_header_t *cs, int i)
{
    json_t *c = parse(p, APR_ARRAY_IDX(cs, i, const char *));
    return json_object_get(json_array_get(json_object_get(c, "choices"), 0), "delta");
}

static const char *finish_of(json_t *answer)
{
    return fl_json_str(json_array_get(json_object_get(answer, "choices"), 0), "finish_reason", NULL);
}

static void stream_replays(apr_pool_t *p)
{
    apr_array_header_t *streams[3], *got;
    fl_cache_entry_t *e;
    fl_usage_t u;
    int s, i;
    streams[0] = text_stream(p);
    streams[1] = tool_stream(p);
    streams[2] = reasoning_stream(p);
    for (s = 0; s < 3; s++) {
        CHECK(record(p, streams[s], 1, 1 << 20, &e) == APR_SUCCESS);
        CHECK(fl_cache_entry_streamed(e));
        CHECK_STR(fl_cache_entry_model(e), "gpt-4o-2024-08-06");
        fl_cache_entry_usage(e, &u);
        CHECK(u.prompt == 149 && u.completion == 60 && u.total == 209 && u.cached == 64
              && u.reasoning == 12);
        CHECK(same_stream(p, streams[s], replay(p, e, 1)));
        /* a client without include_usage: no usage chunk, no usage member */
        got = replay(p, e, 0);
        CHECK(got->nelts == streams[s]->nelts - 1);
        for (i = 0; i < got->nelts; i++) {
            json_t *g = parse(p, APR_ARRAY_IDX(got, i, const char *));
            CHECK(g && !json_object_get(g, "usage"));
            json_object_set_new(g, "usage", json_null());
            json_object_set_new(g, "id", json_string("chatcmpl-orig"));
            json_object_set_new(g, "created", json_integer(1723024757));
            CHECK(json_equal(g, parse(p, APR_ARRAY_IDX(streams[s], i, const char *))));
        }
    }
}

static void stream_answers(apr_pool_t *p)
{
    fl_cache_entry_t *e;
    json_t *a, *msg, *calls, *want;
    CHECK(record(p, text_stream(p), 1, 1 << 20, &e) == APR_SUCCESS);
    a = answer_of(p, e);
    msg = message_of(a);
    CHECK_STR(fl_json_str(msg, "role", NULL), "assistant");
    CHECK_STR(fl_json_str(msg, "content", NULL), "Hello, \xc3\xa9t\xc3\xa9 \"there\"");
    CHECK(json_is_null(json_object_get(msg, "refusal")));
    CHECK(!json_object_get(msg, "tool_calls") && !json_object_get(msg, "reasoning_content"));
    CHECK_STR(finish_of(a), "stop");
    CHECK_STR(fl_json_str(a, "model", NULL), "gpt-4o-2024-08-06");
    CHECK_STR(fl_json_str(a, "system_fingerprint", NULL), "fp_2a322c9ffc");
    /* the usage as the provider wrote it, details and all */
    CHECK(json_equal(json_object_get(a, "usage"), parse(p, USAGE)));

    CHECK(record(p, tool_stream(p), 1, 1 << 20, &e) == APR_SUCCESS);
    a = answer_of(p, e);
    msg = message_of(a);
    CHECK(json_is_null(json_object_get(msg, "content")));
    calls = json_object_get(msg, "tool_calls");
    want = parse(p, "[{\"id\":\"call_lQnnsesjFMWMQ5IeWPHzR4th\",\"type\":\"function\",\"function\":"
                    "{\"name\":\"get_weather\",\"arguments\":" "\"{\\\"location\\\":\\\"Paris, "
                    "France\\\",\\\"unit\\\":\\\"celsius\\\",\\\"days\\\":[1,2,3]}\"}},"
                    "{\"id\":\"call_2xjOUgaCdiwAcl9ZBL9LyMUU\",\"type\":\"function\",\"function\":"
                    "{\"name\":\"get_stock_price\",\"arguments\":\"{\\\"ticker\\\":\\\"AAPL\\\","
                    "\\\"exchange\\\":\\\"NASDAQ\\\"}\"}}]");
    CHECK(want && json_equal(calls, want));
    CHECK_STR(finish_of(a), "tool_calls");

    CHECK(record(p, reasoning_stream(p), 1, 1 << 20, &e) == APR_SUCCESS);
    msg = message_of(answer_of(p, e));
    CHECK_STR(fl_json_str(msg, "content", NULL), "42");
    CHECK_STR(fl_json_str(msg, "reasoning_content", NULL), "The user wants a number.");
}

#define ANSWER_TEXT "{\"id\":\"chatcmpl-D8Z5f\",\"object\":\"chat.completion\",\"created\":1770933883," \
    "\"model\":\"gpt-4.1-nano-2025-04-14\",\"choices\":[{\"index\":0,\"message\":{\"role\":" \
    "\"assistant\",\"content\":\"**Holiday Name:** Bastille Day\",\"refusal\":null,\"annotations\":[]}," \
    "\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":" USAGE ",\"service_tier\":\"default\"," \
    "\"system_fingerprint\":\"fp_de604bd877\"}"
#define ANSWER_TOOLS "{\"id\":\"chatcmpl-T\",\"object\":\"chat.completion\",\"created\":1770933883," \
    "\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":null," \
    "\"reasoning_content\":\"Two lookups.\",\"refusal\":null,\"tool_calls\":[" \
    "{\"id\":\"call_a\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\"," \
    "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}},{\"id\":\"call_b\",\"type\":\"function\"," \
    "\"function\":{\"name\":\"get_time\",\"arguments\":\"{}\"}}]},\"logprobs\":null," \
    "\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":10," \
    "\"total_tokens\":30}}"

static fl_cache_entry_t *from_answer(apr_pool_t *p, const char *s)
{
    fl_cache_entry_t *e = NULL;
    CHECK(fl_cache_entry_from_answer(p, s, strlen(s), &e) == APR_SUCCESS);
    return e;
}

static void answer_replays(apr_pool_t *p)
{
    fl_cache_entry_t *e = from_answer(p, ANSWER_TEXT), *e2;
    json_t *a, *want, *orig;
    apr_array_header_t *cs;
    fl_stream_text_t *t;
    const char *s;
    apr_size_t n;
    fl_usage_t u;
    int i;

    CHECK(!fl_cache_entry_streamed(e));
    CHECK_STR(fl_cache_entry_model(e), "gpt-4.1-nano-2025-04-14");
    fl_cache_entry_usage(e, &u);
    CHECK(u.prompt == 149 && u.cached == 64 && u.reasoning == 12);
    /* the answer replays whole, but for its id and created */
    a = answer_of(p, e);
    want = parse(p, ANSWER_TEXT);
    json_object_set_new(want, "id", json_string(NEW_ID));
    json_object_set_new(want, "created", json_integer(NEW_CREATED));
    CHECK(json_equal(a, want));

    /* as a stream: role, content, finish, usage; core's stream reader gets the text back */
    cs = replay(p, e, 1);
    CHECK(cs->nelts == 4);
    t = fl_stream_text_create(p, 1 << 16);
    for (i = 0; i < cs->nelts; i++) {
        json_t *c = parse(p, APR_ARRAY_IDX(cs, i, const char *));
        CHECK_STR(fl_json_str(c, "id", NULL), NEW_ID);
        CHECK_STR(fl_json_str(c, "object", NULL), "chat.completion.chunk");
        CHECK_STR(fl_json_str(c, "model", NULL), "gpt-4.1-nano-2025-04-14");
        CHECK(json_integer_value(json_object_get(c, "created")) == NEW_CREATED);
        fl_stream_text_feed(t, APR_ARRAY_IDX(cs, i, const char *), strlen(APR_ARRAY_IDX(cs, i, const char *)));
    }
    s = fl_stream_text_answer(t, p, &n);
    CHECK_STR(fl_json_str(message_of(parse(p, s)), "content", NULL), "**Holiday Name:** Bastille Day");
    CHECK_STR(finish_of(parse(p, s)), "stop");
    a = parse(p, APR_ARRAY_IDX(cs, 3, const char *));
    CHECK(json_array_size(json_object_get(a, "choices")) == 0);
    CHECK(json_integer_value(json_object_get(json_object_get(a, "usage"), "total_tokens")) == 209);
    CHECK_STR(fl_json_str(delta_of(p, cs, 0), "role", NULL), "assistant");
    CHECK_STR(fl_json_str(delta_of(p, cs, 0), "content", NULL), "");
    cs = replay(p, e, 0);
    CHECK(cs->nelts == 3);
    for (i = 0; i < cs->nelts; i++) CHECK(!strstr(APR_ARRAY_IDX(cs, i, const char *), "usage"));

    /* tool calls and reasoning: the synthesised stream, recorded again, gives the message back */
    e = from_answer(p, ANSWER_TOOLS);
    cs = replay(p, e, 1);
    CHECK(record(p, cs, 1, 1 << 20, &e2) == APR_SUCCESS);
    a = answer_of(p, e2);
    orig = message_of(parse(p, ANSWER_TOOLS));
    CHECK(json_equal(json_object_get(message_of(a), "tool_calls"), json_object_get(orig, "tool_calls")));
    CHECK_STR(fl_json_str(message_of(a), "reasoning_content", NULL), "Two lookups.");
    CHECK(json_is_null(json_object_get(message_of(a), "content")));
    CHECK_STR(finish_of(a), "tool_calls");
    CHECK(json_integer_value(json_object_get(json_object_get(a, "usage"), "total_tokens")) == 30);
    /* each call's id, type and name come first, then its arguments alone */
    CHECK(json_is_null(json_object_get(delta_of(p, cs, 0), "content")));
    CHECK_STR(fl_json_str(delta_of(p, cs, 1), "reasoning_content", NULL), "Two lookups.");
    a = json_array_get(json_object_get(delta_of(p, cs, 2), "tool_calls"), 0);
    CHECK_STR(fl_json_str(a, "id", NULL), "call_a");
    CHECK_STR(fl_json_str(json_object_get(a, "function"), "name", NULL), "get_weather");
    CHECK_STR(fl_json_str(json_object_get(a, "function"), "arguments", NULL), "");
    a = json_array_get(json_object_get(delta_of(p, cs, 3), "tool_calls"), 0);
    CHECK(!json_object_get(a, "id") && json_integer_value(json_object_get(a, "index")) == 0);
    CHECK_STR(fl_json_str(json_object_get(a, "function"), "arguments", NULL), "{\"city\":\"Paris\"}");
}

static void round_trips(apr_pool_t *p)
{
    fl_cache_entry_t *e, *d;
    const char *bytes, *a1, *a2;
    apr_size_t n, l1, l2;
    int k;
    for (k = 0; k < 2; k++) {
        if (k == 0) CHECK(record(p, tool_stream(p), 1, 1 << 20, &e) == APR_SUCCESS);
        else e = from_answer(p, ANSWER_TOOLS);
        CHECK(fl_cache_entry_encode(p, e, &bytes, &n) == APR_SUCCESS);
        CHECK(n > 2 && (unsigned char)bytes[0] == FL_CACHE_ENTRY_VERSION);
        CHECK(fl_cache_entry_decode(p, bytes, n, &d) == APR_SUCCESS);
        CHECK(fl_cache_entry_streamed(d) == fl_cache_entry_streamed(e));
        CHECK_STR(fl_cache_entry_model(d), fl_cache_entry_model(e));
        fl_cache_entry_answer(p, e, NEW_ID, 0, &a1, &l1);
        fl_cache_entry_answer(p, d, NEW_ID, 0, &a2, &l2);
        CHECK_STR(a2, a1);
        CHECK(same_texts(replay(p, e, 1), replay(p, d, 1)));
    }
    /* another version is refused, not misread */
    {
        char *other = apr_pmemdup(p, bytes, n);
        other[0] = FL_CACHE_ENTRY_VERSION + 1;
        CHECK(fl_cache_entry_decode(p, other, n, &d) == APR_EINVAL);
    }
}

static void refusals(apr_pool_t *p)
{
    apr_array_header_t *a = text_stream(p), *b;
    fl_cache_entry_t *e;
    fl_cache_recorder_t *rec;
    const char *err = "{\"error\":{\"message\":\"overloaded\",\"type\":\"upstream_error\","
                      "\"code\":\"upstream_error\"}}";
    /* a stream cut before [DONE] */
    CHECK(record(p, a, 0, 1 << 20, &e) == APR_EINCOMPLETE);
    /* an error event in the middle, or as the end */
    b = text_stream(p);
    APR_ARRAY_IDX(b, 3, const char *) = err;
    CHECK(record(p, b, 1, 1 << 20, &e) == APR_EINVAL);
    b = apr_array_copy(p, a);
    add(b, err);
    CHECK(record(p, b, 1, 1 << 20, &e) == APR_EINVAL);
    /* a payload that is not a chunk */
    b = apr_array_copy(p, a);
    add(b, ": keep-alive");
    CHECK(record(p, b, 1, 1 << 20, &e) == APR_EINVAL);
    b = chunks_new(p);
    add(b, "{\"object\":\"chat.completion\",\"model\":\"m\",\"choices\":[{\"index\":0,"
           "\"delta\":{},\"finish_reason\":\"stop\"}]}");
    CHECK(record(p, b, 1, 1 << 20, &e) == APR_EINVAL);
    /* no finish_reason: the provider never said it was done */
    b = chunks_new(p);
    add(b, chunk(p, "{\"content\":\"Hel\"}", "null"));
    CHECK(record(p, b, 1, 1 << 20, &e) == APR_EINVAL);
    /* nothing but [DONE] */
    CHECK(record(p, chunks_new(p), 1, 1 << 20, &e) == APR_EINVAL);
    /* n > 1 is not cached */
    b = apr_array_copy(p, a);
    add(b, "{" HEAD_ ",\"choices\":[{\"index\":1,\"delta\":{\"content\":\"x\"},\"finish_reason\":null}]}");
    CHECK(record(p, b, 1, 1 << 20, &e) == APR_ENOTIMPL);
    /* data after [DONE] */
    CHECK(fl_cache_recorder_create(p, 1 << 20, &rec) == APR_SUCCESS);
    CHECK(fl_cache_recorder_feed(rec, usage_chunk(p), strlen(usage_chunk(p))) == APR_SUCCESS);
    CHECK(fl_cache_recorder_feed(rec, "[DONE]", 6) == APR_SUCCESS);
    CHECK(fl_cache_recorder_feed(rec, "[DONE]", 6) == APR_EINVAL);
    CHECK(fl_cache_recorder_finish(rec, &e) == APR_EINVAL);

    /* answers that are no complete chat completion */
#define REFUSED(s, rv) CHECK(fl_cache_entry_from_answer(p, s, strlen(s), &e) == (rv))
    REFUSED(err, APR_EINVAL);
    REFUSED("not json", APR_EINVAL);
    REFUSED("[]", APR_EINVAL);
    REFUSED("{\"object\":\"chat.completion\",\"model\":\"m\",\"choices\":[]}", APR_EINVAL);
    REFUSED("{\"object\":\"chat.completion\",\"model\":\"m\",\"choices\":[{\"message\":{}}]}", APR_EINVAL);
    REFUSED("{\"object\":\"chat.completion\",\"model\":\"m\",\"choices\":[{\"message\":{},"
            "\"finish_reason\":null}]}", APR_EINVAL);
    REFUSED("{\"object\":\"chat.completion\",\"choices\":[{\"message\":{},\"finish_reason\":\"stop\"}]}",
            APR_EINVAL);
    REFUSED("{\"object\":\"list\",\"model\":\"m\",\"choices\":[{\"message\":{},\"finish_reason\":\"stop\"}]}",
            APR_EINVAL);
    REFUSED("{\"object\":\"chat.completion\",\"model\":\"m\",\"choices\":[{\"message\":{},"
            "\"finish_reason\":\"stop\"},{\"message\":{},\"finish_reason\":\"stop\"}]}", APR_ENOTIMPL);
    REFUSED("{\"model\":\"m\",\"choices\":[{\"message\":{},\"finish_reason\":\"stop\"}]}", APR_SUCCESS);
#undef REFUSED
}

static void size_bound(apr_pool_t *p)
{
    apr_array_header_t *a = tool_stream(p);
    fl_cache_entry_t *e;
    fl_cache_recorder_t *rec;
    const char *bytes;
    apr_size_t n;
    int i, refused_at = -1;
    CHECK(record(p, a, 1, 1 << 20, &e) == APR_SUCCESS);
    fl_cache_entry_encode(p, e, &bytes, &n);
    /* max is the encoding's size: exactly enough passes, a byte less does not */
    CHECK(record(p, a, 1, n, &e) == APR_SUCCESS);
    CHECK(record(p, a, 1, n - 1, &e) == APR_ENOSPC);
    CHECK(fl_cache_recorder_create(p, 1, &rec) == APR_EINVAL);
    /* past the bound the recorder says so at once, and keeps saying it: room for two chunks
     * (the 2 bytes of head, 4 of length each) */
    n = 2 + 4 + strlen(APR_ARRAY_IDX(a, 0, const char *)) + 4 + strlen(APR_ARRAY_IDX(a, 1, const char *));
    CHECK(fl_cache_recorder_create(p, n, &rec) == APR_SUCCESS);
    for (i = 0; i < a->nelts; i++) {
        const char *c = APR_ARRAY_IDX(a, i, const char *);
        if (fl_cache_recorder_feed(rec, c, strlen(c)) == APR_ENOSPC && refused_at < 0) refused_at = i;
    }
    CHECK(refused_at == 2);
    CHECK(fl_cache_recorder_feed(rec, "[DONE]", 6) == APR_ENOSPC);
    CHECK(fl_cache_recorder_finish(rec, &e) == APR_ENOSPC);
}

/* Whatever a store hands back must decode to an entry or to a refusal: mutated, cut and
 * random encodings, and every use of what did decode. A fixed LCG: the runs are repeatable. */
static void decode_fuzz(apr_pool_t *p)
{
    fl_cache_entry_t *e, *d;
    const char *bytes[3];
    apr_size_t lens[3];
    static const char hurts[] = "{}[]\":,\\0\xff\x01";
    apr_uint32_t r = 12345;
    int k, i, j, decoded = 0, refused = 0;
    apr_pool_t *it;
    CHECK(record(p, tool_stream(p), 1, 1 << 20, &e) == APR_SUCCESS);
    fl_cache_entry_encode(p, e, &bytes[0], &lens[0]);
    CHECK(record(p, reasoning_stream(p), 1, 1 << 20, &e) == APR_SUCCESS);
    fl_cache_entry_encode(p, e, &bytes[1], &lens[1]);
    fl_cache_entry_encode(p, from_answer(p, ANSWER_TOOLS), &bytes[2], &lens[2]);
    apr_pool_create(&it, p);
#define RND() (r = r * 1103515245u + 12345u, (r >> 8))
    for (k = 0; k < 3; k++) {
        for (i = 0; i < 1500; i++) {
            char *m = apr_pmemdup(it, bytes[k], lens[k]);
            apr_size_t n = lens[k];
            int flips = 1 + (int)(RND() % 4);
            apr_array_header_t *cs;
            const char *s;
            apr_size_t l;
            if (i % 5 == 0) n = RND() % (n + 1);                       /* cut short */
            for (j = 0; j < flips && n; j++) {
                apr_size_t at = RND() % n;
                /* the framing bytes and the JSON's punctuation are where it hurts */
                m[at] = (i % 3 == 0) ? (char)RND() : hurts[RND() % (sizeof(hurts) - 1)];
            }
            if (fl_cache_entry_decode(it, m, n, &d) == APR_SUCCESS) {
                decoded++;
                CHECK(fl_cache_entry_answer(it, d, NEW_ID, 0, &s, &l) == APR_SUCCESS && s);
                CHECK(fl_cache_entry_chunks(it, d, NEW_ID, 0, 1, &cs) == APR_SUCCESS);
                CHECK(fl_cache_entry_chunks(it, d, NEW_ID, 0, 0, &cs) == APR_SUCCESS);
                CHECK(fl_cache_entry_model(d) != NULL);
            }
            else refused++;
            apr_pool_clear(it);
        }
    }
    for (i = 0; i < 500; i++) {
        apr_size_t n = RND() % 64, x;
        char *m = apr_palloc(it, n + 1);
        for (x = 0; x < n; x++) m[x] = (char)RND();
        if (n > 1 && i % 2) { m[0] = FL_CACHE_ENTRY_VERSION; m[1] = i % 4 == 1 ? 'S' : 'A'; }
        CHECK(fl_cache_entry_decode(it, m, n, &d) != APR_SUCCESS);
        apr_pool_clear(it);
    }
#undef RND
    CHECK(fl_cache_entry_decode(p, NULL, 0, &d) == APR_EINVAL);
    CHECK(refused > 0 && decoded > 0 && decoded + refused == 4500);
    apr_pool_destroy(it);
}

void test_cache_entry(apr_pool_t *p)
{
    stream_replays(p);
    stream_answers(p);
    answer_replays(p);
    round_trips(p);
    refusals(p);
    size_bound(p);
    decode_fuzz(p);
}
