/* Unit tests of the Bedrock adapter, its SigV4 signer and its event-stream decoder, on AWS's
 * published signature examples, a signature the AWS SDK made for a Bedrock request, and
 * recorded ConverseStream bodies (vercel/ai's fixtures: a live capture and an exception frame). */
#include <apr_strings.h>
#include <apr_base64.h>
#include <apr_env.h>
#include <apr_file_io.h>
#include "fl_test.h"
#include "fl_adapter.h"
#include "fl_eventstream.h"
#include "fl_json.h"
#include "fl_sigv4.h"

/* vercel/ai packages/amazon-bedrock/src/__fixtures__/issue-18994-live-converse-stream.json:
 * a live ConverseStream body (eu.anthropic.claude-sonnet-4-6 answering "OK."). */
static const char LIVE_STREAM_B64[] =
    "AAAAtAAAAFIFAEFlCzpldmVudC10eXBlBwAMbWVzc2FnZVN0YXJ0DTpjb250ZW50LXR5cGUHABBhcHBsaWNhdGlvbi9qc29u"
    "DTptZXNzYWdlLXR5cGUHAAVldmVudHsicCI6ImFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6QUJDREVGR0hJSktMTU5PUFFS"
    "U1RVVldYWVowMTIiLCJyb2xlIjoiYXNzaXN0YW50In2fX38tAAAAswAAAFfHSmn6CzpldmVudC10eXBlBwARY29udGVudEJs"
    "b2NrRGVsdGENOmNvbnRlbnQtdHlwZQcAEGFwcGxpY2F0aW9uL2pzb24NOm1lc3NhZ2UtdHlwZQcABWV2ZW50eyJjb250ZW50"
    "QmxvY2tJbmRleCI6MCwiZGVsdGEiOnsidGV4dCI6Ik9LIn0sInAiOiJhYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3gifXbBTlwA"
    "AAC+AAAAVz/arUsLOmV2ZW50LXR5cGUHABFjb250ZW50QmxvY2tEZWx0YQ06Y29udGVudC10eXBlBwAQYXBwbGljYXRpb24v"
    "anNvbg06bWVzc2FnZS10eXBlBwAFZXZlbnR7ImNvbnRlbnRCbG9ja0luZGV4IjowLCJkZWx0YSI6eyJ0ZXh0IjoiLiJ9LCJw"
    "IjoiYWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXpBQkNERUZHSElKIn2GXR0lAAAAhgAAAFbZjG6aCzpldmVudC10eXBlBwAQ"
    "Y29udGVudEJsb2NrU3RvcA06Y29udGVudC10eXBlBwAQYXBwbGljYXRpb24vanNvbg06bWVzc2FnZS10eXBlBwAFZXZlbnR7"
    "ImNvbnRlbnRCbG9ja0luZGV4IjowLCJwIjoiYWIiffM4iiAAAADZAAAAUf2royMLOmV2ZW50LXR5cGUHAAttZXNzYWdlU3Rv"
    "cA06Y29udGVudC10eXBlBwAQYXBwbGljYXRpb24vanNvbg06bWVzc2FnZS10eXBlBwAFZXZlbnR7ImFkZGl0aW9uYWxNb2Rl"
    "bFJlc3BvbnNlRmllbGRzIjp7ImRlbHRhIjp7InN0b3Bfc2VxdWVuY2UiOm51bGx9fSwicCI6ImFiY2RlZmdoaWprbG1ub3Bx"
    "cnN0dXZ3Iiwic3RvcFJlYXNvbiI6ImVuZF90dXJuIn0g4kjQAAABAQAAAE4CeknrCzpldmVudC10eXBlBwAIbWV0YWRhdGEN"
    "OmNvbnRlbnQtdHlwZQcAEGFwcGxpY2F0aW9uL2pzb24NOm1lc3NhZ2UtdHlwZQcABWV2ZW50eyJtZXRyaWNzIjp7ImxhdGVu"
    "Y3lNcyI6ODAyfSwicCI6ImFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6QUJDREVGR0hJSktMTU5PUFFSUyIsInVzYWdlIjp7"
    "ImlucHV0VG9rZW5zIjoxMiwib3V0cHV0VG9rZW5zIjo1LCJzZXJ2ZXJUb29sVXNhZ2UiOnt9LCJ0b3RhbFRva2VucyI6MTd9"
    "fa0jZVA=";

/* vercel/ai packages/amazon-bedrock/src/__fixtures__/model-stream-error-exception.eventstream.base64.txt */
static const char EXCEPTION_B64[] =
    "AAAA3QAAAGfHkZB6DTptZXNzYWdlLXR5cGUHAAlleGNlcHRpb24POmV4Y2VwdGlvbi10eXBlBwAZbW9kZWxTdHJlYW1FcnJv"
    "ckV4Y2VwdGlvbg06Y29udGVudC10eXBlBwAQYXBwbGljYXRpb24vanNvbnsibWVzc2FnZSI6Ik1vZGVsIFN0cmVhbSBFcnJv"
    "ciIsIm9yaWdpbmFsU3RhdHVzQ29kZSI6NTAwLCJvcmlnaW5hbE1lc3NhZ2UiOiJUaGUgbW9kZWwgc3RyZWFtIGZhaWxlZC4i"
    "fVczQxM=";

static char *b64(apr_pool_t *p, const char *in, apr_size_t *plen)
{
    char *out = apr_palloc(p, (apr_size_t)apr_base64_decode_len(in));
    *plen = (apr_size_t)apr_base64_decode(out, in);
    return out;
}

/* --- SigV4 ----------------------------------------------------------------------------- */

static fl_sigv4_result_t sign_suite(apr_pool_t *p, const char *method)
{
    fl_sigv4_request_t req = { 0 };
    fl_sigv4_creds_t c = { "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", NULL };
    fl_sigv4_result_t res;
    req.method = method;
    req.host = "example.amazonaws.com";
    req.path = "/";
    req.query = "";
    req.region = "us-east-1";
    req.service = "service";
    req.amz_date = "20150830T123600Z";
    req.encode_path_twice = 1;
    CHECK(fl_sigv4_sign(p, &req, &c, &res) == APR_SUCCESS);
    return res;
}

static void sigv4(apr_pool_t *p)
{
    fl_sigv4_result_t r;
    fl_sigv4_request_t req = { 0 };
    fl_sigv4_creds_t s3 = { "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", NULL };
    apr_array_header_t *extra = apr_array_make(p, 1, sizeof(const char *));
    char date[FL_SIGV4_DATE_LEN + 1], hexd[FL_SHA256_HEX_LEN + 1];

    /* AWS's SigV4 test suite, get-vanilla and post-vanilla */
    r = sign_suite(p, "GET");
    CHECK_STR(r.canonical_request, "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
                                   "host;x-amz-date\n"
                                   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    fl_sha256_hex(r.canonical_request, strlen(r.canonical_request), hexd);
    CHECK_STR(hexd, "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
    CHECK_STR(r.string_to_sign, "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
                                "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
    CHECK_STR(r.authorization, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
                               "aws4_request, SignedHeaders=host;x-amz-date, Signature="
                               "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    r = sign_suite(p, "POST");
    CHECK_STR(r.signature, "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");

    /* Amazon S3's documented "GET Object" example: x-amz-content-sha256 and an extra header,
     * and S3's single path encoding */
    APR_ARRAY_PUSH(extra, const char *) = "Range: bytes=0-9";
    req.method = "GET";
    req.host = "examplebucket.s3.amazonaws.com";
    req.path = "/test.txt";
    req.query = "";
    req.region = "us-east-1";
    req.service = "s3";
    req.amz_date = "20130524T000000Z";
    req.sign_content_sha256 = 1;
    req.extra = extra;
    CHECK(fl_sigv4_sign(p, &req, &s3, &r) == APR_SUCCESS);
    CHECK_STR(r.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    CHECK(r.headers->nelts == 2);

    /* Bedrock's model ids: ':' encoded once on the wire and twice in the canonical URI */
    CHECK_STR(fl_sigv4_uri_encode(p, "anthropic.claude-3-5-sonnet-20241022-v2:0", 0),
              "anthropic.claude-3-5-sonnet-20241022-v2%3A0");
    CHECK_STR(fl_sigv4_uri_encode(p, "/model/a%3A0/converse", 1), "/model/a%253A0/converse");
    CHECK_STR(fl_sigv4_uri_encode(p, "arn:aws:x/y ~", 0), "arn%3Aaws%3Ax%2Fy%20~");

    fl_sigv4_amz_date(apr_time_from_sec(1440938160), date);
    CHECK_STR(date, "20150830T123600Z");
    req.amz_date = "2015";
    CHECK(fl_sigv4_sign(p, &req, &s3, &r) == APR_EINVAL);
}

/* The AWS SDK (@aws-sdk/client-bedrock-runtime 3.1162, captured with
 * `node t/mock/check-bedrock.mjs --capture`) signed this Converse request for a model id with a
 * ':' (the signed headers as it sent them); our signer must agree byte for byte. */
static void sigv4_sdk(apr_pool_t *p)
{
    static const char body[] = "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"hi\"}]}]}";
    fl_sigv4_creds_t c = { "AKIAFLOOPYTEST000001", "floopy/test/secret/key/0000000000000000000", NULL };
    fl_sigv4_request_t req = { 0 };
    fl_sigv4_result_t r;
    apr_array_header_t *extra = apr_array_make(p, 5, sizeof(const char *));
    APR_ARRAY_PUSH(extra, const char *) = "content-type: application/json";
    APR_ARRAY_PUSH(extra, const char *) = "content-length: 56";
    APR_ARRAY_PUSH(extra, const char *) = "x-amz-user-agent: aws-sdk-js/3.1162.0";
    APR_ARRAY_PUSH(extra, const char *) = "amz-sdk-invocation-id: 546e185b-1789-4239-ae2a-3cd95b072915";
    APR_ARRAY_PUSH(extra, const char *) = "amz-sdk-request: attempt=1; max=1";
    req.method = "POST";
    req.host = "127.0.0.1:43949";
    req.path = "/model/anthropic.claude-3-5-sonnet-20241022-v2%3A0/converse";
    req.query = "";
    req.body = body;
    req.body_len = strlen(body);
    req.region = "us-east-1";
    req.service = "bedrock";
    req.amz_date = "20261122T062048Z";
    req.encode_path_twice = 1;
    req.sign_content_sha256 = 1;
    req.extra = extra;
    CHECK(fl_sigv4_sign(p, &req, &c, &r) == APR_SUCCESS);
    CHECK(strstr(r.canonical_request, "\n/model/anthropic.claude-3-5-sonnet-20241022-v2%253A0/converse\n")
          != NULL);
    CHECK_STR(r.payload_hash, "c3335e07d6e89650bf94cb98664be69f8774dbc3198df221f113db0a59ea14f0");
    CHECK_STR(r.authorization,
              "AWS4-HMAC-SHA256 Credential=AKIAFLOOPYTEST000001/20261122/us-east-1/bedrock/aws4_request, "
              "SignedHeaders=amz-sdk-invocation-id;amz-sdk-request;content-length;content-type;host;"
              "x-amz-content-sha256;x-amz-date;x-amz-user-agent, "
              "Signature=ed731b821afe2c3af1a3b56bd14f6f8fdd520b1b333724514e359fa0580e03d5");
}

/* --- the event stream --------------------------------------------------------------------- */

typedef struct {
    apr_pool_t *p;
    int n;
    const char *types[16], *payloads[16];
} frames_t;

static apr_status_t collect(void *baton, const fl_es_message_t *m)
{
    frames_t *f = baton;
    if (f->n < 16) {
        const char *t = fl_es_header_str(f->p, m, ":event-type");
        f->types[f->n] = t ? t : fl_es_header_str(f->p, m, ":exception-type");
        f->payloads[f->n] = apr_pstrmemdup(f->p, m->payload, m->payload_len);
    }
    f->n++;
    return APR_SUCCESS;
}

static void eventstream(apr_pool_t *p)
{
    apr_size_t len, cut, elen, i;
    char *live = b64(p, LIVE_STREAM_B64, &len), *exc = b64(p, EXCEPTION_B64, &elen), *bad;
    frames_t f;
    fl_es_t *es;
    int ok = 1;

    CHECK(fl_es_crc32(0, "123456789", 9) == 0xCBF43926u);   /* the CRC-32 check value */
    CHECK(len == 1157);
    for (cut = 0; cut <= len; cut++) {        /* every split gives the same six messages */
        memset(&f, 0, sizeof(f));
        f.p = p;
        fl_es_create(&es, p, 1 << 20, collect, &f);
        ok &= fl_es_feed(es, live, cut) == APR_SUCCESS;
        ok &= fl_es_feed(es, live + cut, len - cut) == APR_SUCCESS;
        ok &= f.n == 6 && !fl_es_pending(es);
    }
    CHECK(ok);
    CHECK_STR(f.types[0], "messageStart");
    CHECK_STR(f.types[1], "contentBlockDelta");
    CHECK_STR(f.payloads[1], "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"OK\"},\"p\":\"abcdefghijklmnopqrstuvwx\"}");
    CHECK_STR(f.types[5], "metadata");

    /* one byte at a time */
    memset(&f, 0, sizeof(f));
    f.p = p;
    fl_es_create(&es, p, 1 << 20, collect, &f);
    for (i = 0; i < len; i++) fl_es_feed(es, live + i, 1);
    CHECK(f.n == 6);

    /* the exception frame */
    memset(&f, 0, sizeof(f));
    f.p = p;
    fl_es_create(&es, p, 1 << 20, collect, &f);
    CHECK(fl_es_feed(es, exc, elen) == APR_SUCCESS && f.n == 1);
    CHECK_STR(f.types[0], "modelStreamErrorException");

    /* a flipped payload byte: the message CRC catches it, and nothing is delivered */
    bad = apr_pmemdup(p, live, len);
    bad[200] ^= 1;
    memset(&f, 0, sizeof(f));
    f.p = p;
    fl_es_create(&es, p, 1 << 20, collect, &f);
    CHECK(fl_es_feed(es, bad, len) == APR_EGENERAL);
    CHECK(f.n == 1);
    CHECK_STR(fl_es_error(es), "message CRC mismatch");
    CHECK(fl_es_feed(es, live, len) == APR_EGENERAL);       /* no resynchronising after that */

    /* a flipped length: the prelude CRC catches it before any wait for a bogus length */
    bad = apr_pmemdup(p, live, len);
    bad[2] ^= 0x40;
    fl_es_create(&es, p, 1 << 20, collect, &f);
    CHECK(fl_es_feed(es, bad, 12) == APR_EGENERAL);
    CHECK_STR(fl_es_error(es), "prelude CRC mismatch");

    /* a message over the cap is refused, not buffered */
    fl_es_create(&es, p, 100, collect, &f);
    CHECK(fl_es_feed(es, live, len) == APR_ENOSPC);

    /* our encoder round-trips through the decoder */
    {
        static const char *const names[] = { ":event-type", ":message-type" };
        static const char *const values[] = { "messageStop", "event" };
        apr_size_t n;
        char *m = fl_es_encode(p, names, values, 2, "{}", 2, &n);
        memset(&f, 0, sizeof(f));
        f.p = p;
        fl_es_create(&es, p, 1 << 20, collect, &f);
        CHECK(fl_es_feed(es, m, n) == APR_SUCCESS && f.n == 1);
        CHECK_STR(f.types[0], "messageStop");
    }
}

/* --- the adapter --------------------------------------------------------------------------- */

static fl_provider_t *provider(apr_pool_t *p, const char *file)
{
    fl_provider_t *pv = apr_pcalloc(p, sizeof(*pv));
    pv->name = "bedrock";
    pv->type = "bedrock";
    pv->adapter = fl_adapter_find("bedrock");
    pv->opts = apr_table_make(p, 4);
    pv->resolved_base = "http://127.0.0.1:40000";
    apr_table_set(pv->opts, "region", "us-east-1");
    apr_table_set(pv->opts, "credentials_file", file);
    return pv;
}

static const char *write_file(apr_pool_t *p, const char *text)
{
    const char *path = apr_psprintf(p, "/tmp/fl-test-bedrock-%d.ini", (int)getpid());
    apr_file_t *f;
    apr_size_t n = strlen(text);
    apr_file_open(&f, path, APR_FOPEN_WRITE | APR_FOPEN_CREATE | APR_FOPEN_TRUNCATE,
                  APR_FPROT_OS_DEFAULT, p);
    apr_file_write(f, text, &n);
    apr_file_close(f);
    return path;
}

static void configure(apr_pool_t *p)
{
    const fl_adapter_t *a = fl_adapter_find("bedrock");
    const char *file = write_file(p, "# test\n[other]\naws_access_key_id = X\n\n[default]\n"
                                     "aws_access_key_id = AKIAFLOOPYTEST000001\r\n"
                                     "aws_secret_access_key=floopy/test/secret/key/0000000000000000000\n");
    fl_provider_t *pv = provider(p, file);
    CHECK(a && a->vision && a->check(pv, p) == NULL);
    CHECK(a->configure(pv, p) == NULL);
    apr_table_unset(pv->opts, "region");
    CHECK(a->check(pv, p) && strstr(a->check(pv, p), "region="));
    apr_table_set(pv->opts, "region", "US EAST");
    CHECK(a->check(pv, p) != NULL);
    pv = provider(p, file);
    apr_table_set(pv->opts, "profile", "missing");
    CHECK(a->configure(pv, p) && strstr(a->configure(pv, p), "[missing]"));
    pv = provider(p, "/nonexistent/credentials");
    CHECK(a->configure(pv, p) && strstr(a->configure(pv, p), "credentials_file="));
    pv = provider(p, file);
    apr_table_unset(pv->opts, "credentials_file");
    apr_table_set(pv->opts, "access_key_env", "FL_TEST_NO_SUCH_VARIABLE");
    CHECK(a->configure(pv, p) && strstr(a->configure(pv, p), "FL_TEST_NO_SUCH_VARIABLE"));
    pv->api_key = "bedrock-api-key";        /* a Bedrock API key needs no AWS credentials */
    CHECK(a->configure(pv, p) == NULL);
}

#define TEST_CREDENTIALS "[default]\naws_access_key_id=AKIAFLOOPYTEST000001\n" \
                         "aws_secret_access_key=floopy/test/secret/key/0000000000000000000\n"

static fl_call_t *call_with(apr_pool_t *p, const char *body, const char *model, const char *creds)
{
    fl_call_t *call = apr_pcalloc(p, sizeof(*call));
    fl_error_t *e = NULL;
    fl_model_t *m = apr_pcalloc(p, sizeof(*m));
    fl_provider_t *pv = provider(p, write_file(p, creds));
    CHECK(pv->adapter->configure(pv, p) == NULL);
    m->name = model;
    m->provider = pv;
    call->pool = p;
    call->provider = pv;
    call->model = m;
    call->cr = fl_openai_parse_request(p, body, strlen(body), &e);
    call->now = apr_time_from_sec(1795327200);  /* 2026-11-22T06:00:00Z */
    return call;
}

static fl_call_t *call_for(apr_pool_t *p, const char *body, const char *model)
{
    return call_with(p, body, model, TEST_CREDENTIALS);
}

static const char *header(const fl_upstream_t *up, const char *name)
{
    int i;
    apr_size_t n = strlen(name);
    for (i = 0; i < up->headers->nelts; i++) {
        const char *h = APR_ARRAY_IDX(up->headers, i, const char *);
        if (!strncasecmp(h, name, n) && h[n] == ':') return h + n + 2;
    }
    return NULL;
}

static void prepare(apr_pool_t *p)
{
    const char *in =
        "{\"model\":\"bedrock/x\",\"max_tokens\":100,\"temperature\":0.5,\"top_p\":0.9,\"stop\":\"END\","
        "\"messages\":[{\"role\":\"system\",\"content\":\"Be terse.\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Weather?\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBORw0KGgo=\"}}]},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"tooluse_1\",\"type\":\"function\","
        "\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"tooluse_1\",\"content\":\"sunny\"},"
        "{\"role\":\"user\",\"content\":\"Thanks\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather\","
        "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}}],"
        "\"tool_choice\":\"required\"}";
    fl_call_t *call = call_for(p, in, "anthropic.claude-3-5-sonnet-20241022-v2:0");
    const fl_adapter_t *a = call->provider->adapter;
    fl_upstream_t *up = fl_upstream_make(p);
    fl_error_t *e = a->prepare(call, up);
    CHECK(e == NULL);
    CHECK_STR(up->url, "http://127.0.0.1:40000/model/anthropic.claude-3-5-sonnet-20241022-v2%3A0/converse");
    CHECK_STR(up->body,
              "{\"toolConfig\":{\"tools\":[{\"toolSpec\":{\"name\":\"get_weather\",\"description\":\"Weather\","
              "\"inputSchema\":{\"json\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}}}],"
              "\"toolChoice\":{\"any\":{}}},"
              "\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"Weather?\"},"
              "{\"image\":{\"format\":\"png\",\"source\":{\"bytes\":\"iVBORw0KGgo=\"}}}]},"
              "{\"role\":\"assistant\",\"content\":[{\"toolUse\":{\"toolUseId\":\"tooluse_1\",\"name\":\"get_weather\","
              "\"input\":{\"city\":\"Paris\"}}}]},"
              "{\"role\":\"user\",\"content\":[{\"toolResult\":{\"toolUseId\":\"tooluse_1\",\"content\":[{\"text\":\"sunny\"}]}},"
              "{\"text\":\"Thanks\"}]}],"
              "\"system\":[{\"text\":\"Be terse.\"}],"
              "\"inferenceConfig\":{\"maxTokens\":100,\"temperature\":0.5,\"topP\":0.9,\"stopSequences\":[\"END\"]}}");
    CHECK_STR(header(up, "X-Amz-Date"), "20261122T060000Z");
    CHECK(header(up, "X-Amz-Content-Sha256") && strlen(header(up, "X-Amz-Content-Sha256")) == 64);
    CHECK(header(up, "Authorization")
          && !strncmp(header(up, "Authorization"), "AWS4-HMAC-SHA256 Credential=AKIAFLOOPYTEST000001/"
                      "20261122/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;"
                      "x-amz-content-sha256;x-amz-date, Signature=", 150));

    /* a Bedrock API key: a bearer token, no signature */
    call = call_for(p, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", "m");
    ((fl_provider_t *)call->provider)->api_key = "bedrock-api-key";
    a->configure((fl_provider_t *)call->provider, p);
    up = fl_upstream_make(p);
    CHECK(a->prepare(call, up) == NULL);
    CHECK_STR(header(up, "Authorization"), "Bearer bedrock-api-key");
    CHECK(header(up, "X-Amz-Date") == NULL);

    /* temporary credentials: the session token is sent and signed */
    call = call_with(p, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", "m",
                     TEST_CREDENTIALS "aws_session_token = FwoGZXIvYXdzEXAMPLE\n");
    up = fl_upstream_make(p);
    CHECK(a->prepare(call, up) == NULL);
    CHECK_STR(header(up, "X-Amz-Security-Token"), "FwoGZXIvYXdzEXAMPLE");
    CHECK(strstr(header(up, "Authorization"), "SignedHeaders=content-type;host;x-amz-content-sha256;"
                                              "x-amz-date;x-amz-security-token, ") != NULL);

    /* streams go to converse-stream and accept the event stream */
    call = call_for(p, "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
                    "us.amazon.nova-pro-v1:0");
    up = fl_upstream_make(p);
    CHECK(a->prepare(call, up) == NULL);
    CHECK_STR(up->url, "http://127.0.0.1:40000/model/us.amazon.nova-pro-v1%3A0/converse-stream");
    CHECK_STR(up->accept, "application/vnd.amazon.eventstream");
    CHECK_STR(up->body, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"hi\"}]}]}");

    /* images by URL cannot be sent: a clear 400 */
    call = call_for(p, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
                       "\"image_url\":{\"url\":\"https://example.com/cat.png\"}}]}]}", "m");
    e = a->prepare(call, fl_upstream_make(p));
    CHECK(e && e->status == 400 && !strcmp(e->code, "unsupported_content") && !strcmp(e->param, "messages"));
    call = call_for(p, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
                       "\"image_url\":{\"url\":\"data:image/bmp;base64,AAAA\"}}]}]}", "m");
    e = a->prepare(call, fl_upstream_make(p));
    CHECK(e && e->status == 400 && strstr(e->message, "image/bmp"));

    /* tool_choice none without tool history: no toolConfig at all */
    call = call_for(p, "{\"model\":\"m\",\"tool_choice\":\"none\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                       "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}", "m");
    up = fl_upstream_make(p);
    CHECK(a->prepare(call, up) == NULL && !strstr(up->body, "toolConfig"));
    /* a named tool choice, and a tool without parameters gets an empty object schema */
    call = call_for(p, "{\"model\":\"m\",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"f\"}},"
                       "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                       "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}", "m");
    up = fl_upstream_make(p);
    CHECK(a->prepare(call, up) == NULL);
    CHECK(strstr(up->body, "\"toolConfig\":{\"tools\":[{\"toolSpec\":{\"name\":\"f\",\"inputSchema\":{\"json\":"
                           "{\"type\":\"object\",\"properties\":{}}}}}],\"toolChoice\":{\"tool\":{\"name\":\"f\"}}}")
          != NULL);
}

static void response(apr_pool_t *p)
{
    /* vercel/ai packages/amazon-bedrock/src/__fixtures__/bedrock-tool-call.1.json */
    static const char tool[] =
        "{\"output\":{\"message\":{\"role\":\"assistant\",\"content\":[{\"toolUse\":{\"toolUseId\":"
        "\"tool-use-id\",\"name\":\"bash\",\"input\":{\"command\":\"ls -l\"}}}]}},\"usage\":{\"inputTokens\":10,"
        "\"outputTokens\":20,\"totalTokens\":30},\"stopReason\":\"tool_use\"}";
    static const char text[] =
        "{\"output\":{\"message\":{\"role\":\"assistant\",\"content\":[{\"text\":\"Hello\"},{\"text\":\" there\"}]}},"
        "\"usage\":{\"inputTokens\":5,\"outputTokens\":2,\"totalTokens\":107,\"cacheReadInputTokens\":100},"
        "\"stopReason\":\"max_tokens\",\"metrics\":{\"latencyMs\":300}}";
    fl_call_t *call = call_for(p, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", "m");
    const fl_adapter_t *a = call->provider->adapter;
    const char *out;
    apr_size_t n;
    fl_usage_t u;
    json_t *root, *msg, *tc;

    fl_usage_clear(&u);
    CHECK(a->response(call, tool, strlen(tool), &out, &n, &u) == NULL);
    root = fl_json_pool_own(p, json_loads(out, 0, NULL));
    msg = json_object_get(json_array_get(json_object_get(root, "choices"), 0), "message");
    tc = json_array_get(json_object_get(msg, "tool_calls"), 0);
    CHECK(json_is_null(json_object_get(msg, "content")));
    CHECK_STR(fl_json_str(tc, "id", ""), "tool-use-id");
    CHECK_STR(fl_json_str(json_object_get(tc, "function"), "name", ""), "bash");
    CHECK_STR(fl_json_str(json_object_get(tc, "function"), "arguments", ""), "{\"command\":\"ls -l\"}");
    CHECK_STR(fl_json_str(json_array_get(json_object_get(root, "choices"), 0), "finish_reason", ""),
              "tool_calls");
    CHECK(u.prompt == 10 && u.completion == 20 && u.total == 30 && u.cached == 0);

    fl_usage_clear(&u);
    CHECK(a->response(call, text, strlen(text), &out, &n, &u) == NULL);
    root = fl_json_pool_own(p, json_loads(out, 0, NULL));
    msg = json_object_get(json_array_get(json_object_get(root, "choices"), 0), "message");
    CHECK_STR(fl_json_str(msg, "content", ""), "Hello there");
    CHECK_STR(fl_json_str(json_array_get(json_object_get(root, "choices"), 0), "finish_reason", ""), "length");
    CHECK(u.prompt == 105 && u.completion == 2 && u.cached == 100);

    CHECK(a->response(call, "{\"nope\":1}", 10, &out, &n, &u)->status == 502);
}

typedef struct {
    apr_pool_t *p;
    const char *all;             /* the chunks in short form joined with '|' */
    int n;
} emitted_t;

static apr_status_t emit_cb(void *baton, fl_chunk_kind_e kind, const char *data, apr_size_t len)
{
    emitted_t *em = baton;
    json_t *o = json_loadb(data, len, 0, NULL), *ch = json_array_get(json_object_get(o, "choices"), 0);
    const char *summary;
    if (kind == FL_CHUNK_DONE) summary = apr_pstrmemdup(em->p, data, len);
    else if (kind == FL_CHUNK_ERROR) {
        summary = apr_pstrcat(em->p, "E:", fl_json_str(json_object_get(o, "error"), "code", "?"), NULL);
    }
    else if (!ch) summary = apr_psprintf(em->p, "usage:%d",
                                         (int)fl_json_count(json_object_get(o, "usage"), "total_tokens"));
    else {
        json_t *d = json_object_get(ch, "delta");
        char *ds = fl_json_dump(em->p, d, 0);
        summary = apr_pstrcat(em->p, ds, fl_json_str(ch, "finish_reason", NULL) ? "/" : "",
                              fl_json_str(ch, "finish_reason", ""), NULL);
    }
    json_decref(o);
    em->all = apr_pstrcat(em->p, em->all, em->n++ ? "|" : "", summary, NULL);
    return APR_SUCCESS;
}

static const char *stream_through(apr_pool_t *p, int include_usage, const char *body, apr_size_t len,
                                  apr_size_t cut, fl_usage_t *u)
{
    fl_call_t *call = call_for(p, include_usage
                               ? "{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
                                 "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"
                               : "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
                               "m");
    const fl_adapter_t *a = call->provider->adapter;
    emitted_t em = { p, "", 0 };
    fl_stream_t *s;
    fl_usage_clear(u);
    CHECK(a->stream_open(call, u, emit_cb, &em, &s) == APR_SUCCESS);
    a->stream_feed(s, body, cut);
    a->stream_feed(s, body + cut, len - cut);
    return em.all;
}

static const char *frame(apr_pool_t *p, const char *type, const char *payload, apr_size_t *n)
{
    static const char *const names[] = { ":event-type", ":content-type", ":message-type" };
    const char *values[] = { type, "application/json", "event" };
    return fl_es_encode(p, names, values, 3, payload, strlen(payload), n);
}

static void stream(apr_pool_t *p)
{
    apr_size_t len, cut, n;
    char *live = b64(p, LIVE_STREAM_B64, &len), *exc, *bad;
    const char *want = "{\"content\":\"\",\"role\":\"assistant\"}|{\"content\":\"OK\"}|{\"content\":\".\"}|"
                       "{}/stop|usage:17|[DONE]";
    const char *got, *tools;
    fl_usage_t u;
    int ok = 1;
    apr_pool_t *sp;

    apr_pool_create(&sp, p);
    for (cut = 0; cut <= len; cut++) {
        apr_pool_clear(sp);
        got = stream_through(sp, 1, live, len, cut, &u);
        if (strcmp(got, want)) {
            fprintf(stderr, "  split at %lu: %s\n", (unsigned long)cut, got);
            ok = 0;
        }
    }
    CHECK(ok);
    CHECK(u.prompt == 12 && u.completion == 5 && u.total == 17);
    /* without include_usage: no usage chunk, but the usage is still taken */
    got = stream_through(p, 0, live, len, 0, &u);
    CHECK_STR(got, "{\"content\":\"\",\"role\":\"assistant\"}|{\"content\":\"OK\"}|{\"content\":\".\"}|{}/stop|[DONE]");
    CHECK(u.prompt == 12 && u.completion == 5);

    /* a tool call: start with id and name, input fragments, tool_calls finish */
    {
        const char *parts[] = {
            frame(p, "messageStart", "{\"role\":\"assistant\"}", &n),
            frame(p, "contentBlockStart", "{\"contentBlockIndex\":0,\"start\":{\"toolUse\":{\"toolUseId\":"
                                          "\"tooluse_abc\",\"name\":\"get_weather\"}}}", &n),
            frame(p, "contentBlockDelta", "{\"contentBlockIndex\":0,\"delta\":{\"toolUse\":{\"input\":\"{\\\"city\\\":\"}}}", &n),
            frame(p, "contentBlockDelta", "{\"contentBlockIndex\":0,\"delta\":{\"toolUse\":{\"input\":\"\\\"Paris\\\"}\"}}}", &n),
            frame(p, "contentBlockStop", "{\"contentBlockIndex\":0}", &n),
            frame(p, "messageStop", "{\"stopReason\":\"tool_use\"}", &n),
            frame(p, "metadata", "{\"usage\":{\"inputTokens\":20,\"outputTokens\":8,\"totalTokens\":28}}", &n),
        };
        apr_size_t total = 0, sizes[7];
        int i;
        char *buf;
        for (i = 0; i < 7; i++) {
            sizes[i] = (apr_size_t)(((unsigned char)parts[i][2] << 8) | (unsigned char)parts[i][3]);
            total += sizes[i];
        }
        buf = apr_palloc(p, total);
        for (i = 0, total = 0; i < 7; i++) {
            memcpy(buf + total, parts[i], sizes[i]);
            total += sizes[i];
        }
        tools = stream_through(p, 0, buf, total, total / 2, &u);
        CHECK_STR(tools, "{\"content\":\"\",\"role\":\"assistant\"}|"
                         "{\"tool_calls\":[{\"index\":0,\"id\":\"tooluse_abc\",\"type\":\"function\","
                         "\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]}|"
                         "{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"city\\\":\"}}]}|"
                         "{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"Paris\\\"}\"}}]}|"
                         "{}/tool_calls|[DONE]");
        CHECK(u.prompt == 20 && u.completion == 8);
    }

    /* an exception frame after some text: an error event, no [DONE] */
    {
        apr_size_t elen, first = 180;
        char *e = b64(p, EXCEPTION_B64, &elen);
        exc = apr_palloc(p, first + elen);
        memcpy(exc, live, first);
        memcpy(exc + first, e, elen);
        for (cut = 0; cut <= first + elen; cut += 7) {
            got = stream_through(p, 1, exc, first + elen, cut, &u);
            ok &= !strcmp(got, "{\"content\":\"\",\"role\":\"assistant\"}|E:upstream_stream_error");
        }
        CHECK(ok);
    }

    /* a throttling exception keeps its kind */
    {
        static const char *const names[] = { ":message-type", ":exception-type", ":content-type" };
        static const char *const values[] = { "exception", "throttlingException", "application/json" };
        const char *m = fl_es_encode(p, names, values, 3, "{\"message\":\"slow down\"}", 23, &n);
        CHECK_STR(stream_through(p, 0, m, n, 3, &u), "E:rate_limit_exceeded");
    }

    /* a corrupt frame is an error, never skipped */
    bad = apr_pmemdup(p, live, len);
    bad[400] ^= 0x20;
    got = stream_through(p, 1, bad, len, len, &u);
    CHECK_STR(got, "{\"content\":\"\",\"role\":\"assistant\"}|{\"content\":\"OK\"}|E:upstream_stream_error");
    apr_pool_destroy(sp);
}

static void errors(apr_pool_t *p)
{
    fl_call_t *call = call_for(p, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", "m");
    const fl_adapter_t *a = call->provider->adapter;
    apr_table_t *h = apr_table_make(p, 2);
    fl_error_t *e;
    const char *vbody = "{\"message\":\"The content field in the Message object at messages.1 is empty.\"}";

    /* the header as Bedrock sends it (vercel/ai empty-message validation fixture) */
    apr_table_set(h, "x-amzn-ErrorType", "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/");
    e = a->error(call, 400, h, vbody, strlen(vbody));
    CHECK(e->status == 400 && !strcmp(e->type, "invalid_request_error"));
    CHECK(strstr(e->message, "(ValidationException): The content field") != NULL);

    apr_table_set(h, "x-amzn-ErrorType", "ThrottlingException");
    apr_table_set(h, "retry-after", "7");
    e = a->error(call, 429, h, "{\"message\":\"Too many requests\"}", 31);
    CHECK(e->status == 429 && !strcmp(e->type, "rate_limit_error") && !strcmp(e->code, "rate_limit_exceeded"));
    CHECK_STR(e->retry_after, "7");

    apr_table_clear(h);
    apr_table_set(h, "x-amzn-errortype", "AccessDeniedException:http://internal.amazon.com/");
    e = a->error(call, 403, h, "{\"Message\":\"denied\"}", 20);
    CHECK(e->status == 502 && !strcmp(e->code, "upstream_auth_failed") && strstr(e->message, "denied"));

    apr_table_set(h, "x-amzn-errortype", "ModelTimeoutException");
    CHECK(a->error(call, 408, h, "{}", 2)->status == 504);
    apr_table_set(h, "x-amzn-errortype", "ServiceUnavailableException");
    CHECK(a->error(call, 503, h, "{}", 2)->status == 502);
    apr_table_set(h, "x-amzn-errortype", "ResourceNotFoundException");
    e = a->error(call, 404, h, "{}", 2);
    CHECK(e->status == 404 && !strcmp(e->param, "model"));
    apr_table_set(h, "x-amzn-errortype", "ServiceQuotaExceededException");
    e = a->error(call, 400, h, "{}", 2);
    CHECK(e->status == 429 && strstr(e->code, "quota"));
    /* no header: the body's __type, then the status */
    e = a->error(call, 400, NULL, "{\"__type\":\"com.amazon.coral#ValidationException\",\"message\":\"x\"}", 63);
    CHECK(e->status == 400 && strstr(e->message, "(ValidationException)"));
    CHECK(a->error(call, 500, NULL, "not json", 8)->status == 502);
}

void test_bedrock(apr_pool_t *p)
{
    sigv4(p);
    sigv4_sdk(p);
    eventstream(p);
    configure(p);
    prepare(p);
    response(p);
    stream(p);
    errors(p);
    apr_file_remove(write_file(p, ""), p);
}
