#include <apr_strings.h>
#include "fl_test.h"
#include "fl_json.h"
#include "fl_cache_key.h"

#define BASE "\"model\":\"auto\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"}," \
             "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Weather in Paris?\"}]}]"

/* The key of a request written as JSON text, for org "org-1", model "auto", chat. */
static const char *key_of(apr_pool_t *p, const char *org, const char *model, const char *endpoint,
                          const char *body)
{
    json_t *req = fl_json_pool_own(p, json_loads(body, 0, NULL));
    char *out = apr_palloc(p, FL_SHA256_HEX_LEN + 1);
    if (!req || fl_cache_key(p, org, model, endpoint, req, out) != APR_SUCCESS) return "error";
    return out;
}

static const char *key(apr_pool_t *p, const char *body)
{
    return key_of(p, "org-1", "auto", FL_CACHE_ENDPOINT_CHAT, body);
}

static void same_keys(apr_pool_t *p)
{
    const char *k = key(p, "{" BASE ",\"temperature\":0.2,\"tools\":[{\"type\":\"function\","
                           "\"function\":{\"name\":\"w\",\"parameters\":{\"a\":1,\"b\":2}}}]}");
    CHECK(strlen(k) == FL_SHA256_HEX_LEN);
    /* key order at every depth and whitespace make no difference */
    CHECK_STR(key(p, "{ \"tools\" : [ { \"function\" : { \"parameters\" : { \"b\" : 2 , \"a\" : 1 },"
                     " \"name\" : \"w\" } , \"type\" : \"function\" } ] ,\n\t\"temperature\": 0.2, "
                     "\"messages\":[{\"content\":\"Be brief.\",\"role\":\"system\"},"
                     "{\"content\":[{\"text\":\"Weather in Paris?\",\"type\":\"text\"}],"
                     "\"role\":\"user\"}], \"model\":\"auto\"}"), k);
    /* how the answer is delivered is not part of the question */
    CHECK_STR(key(p, "{" BASE ",\"temperature\":0.2,\"stream\":true,\"stream_options\":"
                     "{\"include_usage\":true},\"tools\":[{\"type\":\"function\","
                     "\"function\":{\"name\":\"w\",\"parameters\":{\"a\":1,\"b\":2}}}]}"), k);
    CHECK_STR(key(p, "{" BASE ",\"stream\":false}"), key(p, "{" BASE "}"));
    /* one escaping of a string: \u00e9 and the raw UTF-8 are the same text */
    CHECK_STR(key(p, "{" BASE ",\"user\":\"ren\\u00e9\"}"), key(p, "{" BASE ",\"user\":\"ren\xc3\xa9\"}"));
    /* the same inputs give the same key every time */
    CHECK_STR(key(p, "{" BASE "}"), key(p, "{" BASE "}"));
}

static void different_keys(apr_pool_t *p)
{
    static const char *const changes[] = {
        /* the messages: a content, a part, a role, one more message */
        "\"model\":\"auto\",\"messages\":[{\"role\":\"system\",\"content\":\"Be long.\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Weather in Paris?\"}]}]",
        "\"model\":\"auto\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Weather in Rome?\"}]}]",
        "\"model\":\"auto\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Weather in Paris?\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x/y.png\"}}]}]",
        "\"model\":\"auto\",\"messages\":[{\"role\":\"developer\",\"content\":\"Be brief.\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Weather in Paris?\"}]}]",
        BASE ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"w\"}}]",
        BASE ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"v\"}}]",
        BASE ",\"tool_choice\":\"required\"",
        BASE ",\"tool_choice\":\"none\"",
        BASE ",\"response_format\":{\"type\":\"json_object\"}",
        BASE ",\"temperature\":0.2",
        BASE ",\"temperature\":0.3",
        BASE ",\"top_p\":0.5",
        BASE ",\"seed\":7",
        BASE ",\"max_tokens\":100",
        BASE ",\"max_completion_tokens\":100",
        BASE ",\"stop\":\"\\n\"",
        BASE ",\"stop\":[\"\\n\"]",
        BASE ",\"n\":2",
        BASE ",\"logprobs\":true",
        BASE ",\"reasoning_effort\":\"high\"",
        BASE ",\"frobnicate\":true",
        BASE ",\"user\":\"u-1\"",
        BASE ",\"metadata\":{\"a\":\"b\"}",
        /* 1 and 1.0 are kept apart (see fl_cache_key.c) */
        BASE ",\"temperature\":1",
        BASE ",\"temperature\":1.0",
        /* a null is a value: present and absent differ */
        BASE ",\"seed\":null",
        /* the client's model field too, though the glue names the model apart */
        "\"model\":\"other\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Weather in Paris?\"}]}]",
    };
    size_t n = sizeof(changes) / sizeof(changes[0]) + 1, i, j;
    const char **keys = apr_pcalloc(p, n * sizeof(*keys));
    keys[0] = key(p, "{" BASE "}");
    for (i = 1; i < n; i++) keys[i] = key(p, apr_pstrcat(p, "{", changes[i - 1], "}", NULL));
    for (i = 0; i < n; i++) {
        CHECK(strcmp(keys[i], "error") != 0);
        for (j = i + 1; j < n; j++) {
            if (!strcmp(keys[i], keys[j])) {
                fprintf(stderr, "same key for change %lu and %lu\n", (unsigned long)i,
                        (unsigned long)j);
            }
            CHECK(strcmp(keys[i], keys[j]) != 0);
        }
    }
}

static void framing(apr_pool_t *p)
{
    const char *b = "{" BASE "}";
    const char *k = key_of(p, "org-1", "auto", FL_CACHE_ENDPOINT_CHAT, b);
    CHECK(strcmp(key_of(p, "org-2", "auto", FL_CACHE_ENDPOINT_CHAT, b), k) != 0);
    CHECK(strcmp(key_of(p, "org-1", "openai/gpt-4o", FL_CACHE_ENDPOINT_CHAT, b), k) != 0);
    CHECK(strcmp(key_of(p, "org-1", "auto", "responses", b), k) != 0);
    /* separators one might join with cannot move a boundary */
    CHECK(strcmp(key_of(p, "a|b", "c", "e", b), key_of(p, "a", "b|c", "e", b)) != 0);
    CHECK(strcmp(key_of(p, "a,b", "c", "e", b), key_of(p, "a", "b,c", "e", b)) != 0);
    CHECK(strcmp(key_of(p, "a\",\"b", "c", "e", b), key_of(p, "a", "b\",\"c", "e", b)) != 0);
    CHECK(strcmp(key_of(p, "a\",\"b", "c", "e", b), key_of(p, "a", "b", "c\",\"e", b)) != 0);
    CHECK(strcmp(key_of(p, "a\n", "b", "e", b), key_of(p, "a", "\nb", "e", b)) != 0);
    CHECK(strcmp(key_of(p, "a\\", "b", "e", b), key_of(p, "a", "\\b", "e", b)) != 0);
    CHECK(strcmp(key_of(p, "", "ab", "e", b), key_of(p, "a", "b", "e", b)) != 0);
    /* an org id that spells the start of a request cannot take the request's place */
    CHECK(strcmp(key_of(p, "o", "m", "e", "{\"x\":1}"),
                 key_of(p, "o", "m", "e\",{\"x\":1},\"", "{}")) != 0);
}

static void refusals(apr_pool_t *p)
{
    char out[FL_SHA256_HEX_LEN + 1];
    json_t *req = fl_json_pool_own(p, json_loads("{" BASE "}", 0, NULL));
    json_t *arr = fl_json_pool_own(p, json_array());
    CHECK(fl_cache_key(p, NULL, "auto", FL_CACHE_ENDPOINT_CHAT, req, out) == APR_EINVAL);
    CHECK(fl_cache_key(p, "o", NULL, FL_CACHE_ENDPOINT_CHAT, req, out) == APR_EINVAL);
    CHECK(fl_cache_key(p, "o", "auto", NULL, req, out) == APR_EINVAL);
    CHECK(fl_cache_key(p, "o", "auto", FL_CACHE_ENDPOINT_CHAT, NULL, out) == APR_EINVAL);
    CHECK(fl_cache_key(p, "o", "auto", FL_CACHE_ENDPOINT_CHAT, arr, out) == APR_EINVAL);
    CHECK(fl_cache_key(p, "o\xff", "auto", FL_CACHE_ENDPOINT_CHAT, req, out) == APR_EINVAL);
    /* the client's request is left as it was */
    json_object_set_new(req, "stream", json_true());
    CHECK(fl_cache_key(p, "o", "auto", FL_CACHE_ENDPOINT_CHAT, req, out) == APR_SUCCESS);
    CHECK(json_is_true(json_object_get(req, "stream")));
}

void test_cache_key(apr_pool_t *p)
{
    same_keys(p);
    different_keys(p);
    framing(p);
    refusals(p);
}
