#include <apr_strings.h>
#include "fl_test.h"
#include "fl_util.h"
#include "fl_error.h"
#include "fl_buf.h"
#include "fl_digest.h"

static void uuids(apr_pool_t *p)
{
    char a[FL_UUID_LEN + 1], b[FL_UUID_LEN + 1];
    apr_time_t t = apr_time_from_sec(1795325869) + 123000;
    CHECK(fl_uuid7(a, t) == APR_SUCCESS);
    CHECK(fl_uuid7(b, t + 1000) == APR_SUCCESS);
    CHECK(fl_uuid_valid(a));
    CHECK(a[14] == '7');                               /* version */
    CHECK(strchr("89ab", a[19]) != NULL);              /* variant */
    CHECK(fl_uuid7_millis(a) == 1795325869123LL);
    CHECK(strcmp(a, b) < 0);                           /* later sorts after */
    CHECK(!fl_uuid_valid("not-a-uuid"));
    CHECK(!fl_uuid_valid("01a201c2-bf00-72d6-819f-33e5bf3f292"));
    CHECK(!fl_uuid_valid("01a201c2-bf00-72d6-819f-33e5bf3f292g"));
    CHECK(fl_uuid7_millis("01a201c2-bf00-42d6-819f-33e5bf3f2921") == -1); /* a v4 */
}

static void digests_and_keys(apr_pool_t *p)
{
    char h[FL_SHA256_HEX_LEN + 1];
    const char *k1, *k2;
    /* FIPS 180-2 test vector */
    fl_sha256_hex("abc", 3, h);
    CHECK_STR(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    fl_sha256_hex("", 0, h);
    CHECK_STR(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(fl_key_generate(p, &k1) == APR_SUCCESS);
    CHECK(fl_key_generate(p, &k2) == APR_SUCCESS);
    CHECK(!strncmp(k1, "fl-", 3));
    CHECK(strlen(k1) == 3 + 43);                       /* 256 bits in base64url */
    CHECK(strspn(k1 + 3, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == 43);
    CHECK(strcmp(k1, k2) != 0);
    CHECK(fl_secure_equals("abc", "abc"));
    CHECK(!fl_secure_equals("abc", "abd"));
    CHECK(!fl_secure_equals("abc", "abcd"));
}

static void times(apr_pool_t *p)
{
    apr_time_t t = apr_time_from_sec(1795325869) + 45000;
    CHECK_STR(fl_time_sql(p, t), "2026-11-22 05:37:49.045");
    CHECK_STR(fl_time_sql_to_iso(p, "2026-11-22 05:37:49.045"), "2026-11-22T05:37:49.045Z");
    CHECK(fl_time_sql_to_iso(p, NULL) == NULL);
    {
        apr_time_t got;
        CHECK(fl_time_parse("2026-11-22T05:37:49.045Z", &got) == APR_SUCCESS && got == t);
        CHECK(fl_time_parse("2026-11-22T05:37:49.045+00:00", &got) == APR_SUCCESS && got == t);
        CHECK(fl_time_parse("2026-11-22 05:37:49", &got) == APR_SUCCESS
              && got == apr_time_from_sec(1795325869));
        CHECK(fl_time_parse("1795325869", &got) == APR_SUCCESS
              && got == apr_time_from_sec(1795325869));
        CHECK(fl_time_parse("yesterday", &got) == APR_EINVAL);
        CHECK(fl_time_parse("2026-13-22T05:37:49Z", &got) == APR_EINVAL);
        CHECK(fl_time_parse("2026-11-22T05:37:49+02:00", &got) == APR_EINVAL);
        CHECK(fl_time_parse("", &got) == APR_EINVAL);
    }
}

static void errors(apr_pool_t *p)
{
    fl_error_t *e = fl_error_invalid(p, "invalid_type", "stream", "'%s' must be %s", "stream", "a boolean");
    CHECK(e->status == 400);
    CHECK_STR(fl_error_json(p, e),
              "{\"error\":{\"message\":\"'stream' must be a boolean\",\"type\":\"invalid_request_error\","
              "\"param\":\"stream\",\"code\":\"invalid_type\"}}");
    e = fl_error_make(p, 500, "api_error", NULL, NULL, "quote \" and newline \n");
    CHECK_STR(fl_error_json(p, e),
              "{\"error\":{\"message\":\"quote \\\" and newline \\n\",\"type\":\"api_error\","
              "\"param\":null,\"code\":null}}");
}

static void buffers(apr_pool_t *p)
{
    fl_buf_t *b = fl_buf_create(p, 10);
    CHECK(fl_buf_append(b, "hello", 5) == APR_SUCCESS);
    CHECK(fl_buf_append(b, "world", 5) == APR_SUCCESS);
    CHECK_STR(b->data, "helloworld");
    CHECK(fl_buf_append(b, "!", 1) == APR_ENOSPC);
    fl_buf_reset(b);
    CHECK(b->len == 0 && b->data[0] == '\0');
}

static void digests_streaming(apr_pool_t *p)
{
    fl_digest_t *d;
    /* FIPS 180-2: "abc" fed in pieces gives the one-shot digest */
    CHECK(fl_digest_create(&d, p) == APR_SUCCESS);
    fl_digest_update(d, "a", 1);
    fl_digest_update(d, "", 0);
    fl_digest_update(d, "bc", 2);
    CHECK_STR(fl_digest_hex(d, p), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

void test_util(apr_pool_t *p)
{
    digests_streaming(p);
    uuids(p);
    digests_and_keys(p);
    times(p);
    errors(p);
    buffers(p);
}
