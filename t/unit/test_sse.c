#include <apr_strings.h>
#include "fl_test.h"
#include "fl_sse.h"

typedef struct {
    apr_pool_t *p;
    int n;
    const char *events[16], *datas[16];
} seen_t;

static apr_status_t collect(void *baton, const char *event, const char *data, apr_size_t len)
{
    seen_t *s = baton;
    if (s->n < 16) {
        s->events[s->n] = apr_pstrdup(s->p, event);
        s->datas[s->n] = apr_pstrmemdup(s->p, data, len);
    }
    s->n++;
    return APR_SUCCESS;
}

/* Feeds the whole input split at every possible point: the events must not depend on the split. */
static void feed_all_splits(apr_pool_t *p, const char *in, int want_n, const char *const *want_data,
                            const char *const *want_events)
{
    apr_size_t len = strlen(in), cut;
    for (cut = 0; cut <= len; cut++) {
        seen_t s = { p, 0, {0}, {0} };
        fl_sse_t *sse;
        int i, ok = 1;
        fl_sse_create(&sse, p, 1 << 20, collect, &s);
        fl_sse_feed(sse, in, cut);
        fl_sse_feed(sse, in + cut, len - cut);
        ok = s.n == want_n;
        for (i = 0; ok && i < want_n; i++) {
            ok = !strcmp(s.datas[i], want_data[i])
                 && (!want_events || !strcmp(s.events[i], want_events[i]));
        }
        if (!ok) fprintf(stderr, "  split at %lu of %s\n", (unsigned long)cut, in);
        CHECK(ok);
    }
}

void test_sse(apr_pool_t *p)
{
    static const char *const two[] = { "{\"a\":1}", "[DONE]" };
    static const char *const anth[] = { "{\"type\": \"ping\"}", "{\"x\":2}" };
    static const char *const anth_ev[] = { "ping", "message_stop" };
    static const char *const multi[] = { "line1\nline2" };
    seen_t s = { p, 0, {0}, {0} };
    fl_sse_t *sse;

    /* OpenAI: LF framing, [DONE] */
    feed_all_splits(p, "data: {\"a\":1}\n\ndata: [DONE]\n\n", 2, two, NULL);
    /* Gemini: CRLF framing */
    feed_all_splits(p, "data: {\"a\":1}\r\n\r\ndata: [DONE]\r\n\r\n", 2, two, NULL);
    /* bare CR framing and comments */
    feed_all_splits(p, ": keep-alive\rdata:{\"a\":1}\r\r: x\rdata: [DONE]\r\r", 2, two, NULL);
    /* Anthropic: event lines, ping with a space in its JSON */
    feed_all_splits(p, "event: ping\ndata: {\"type\": \"ping\"}\n\nevent: message_stop\ndata: {\"x\":2}\n\n",
                    2, anth, anth_ev);
    /* multi-line data joins with LF; id: and retry: are ignored */
    feed_all_splits(p, "id: 7\nretry: 100\ndata: line1\ndata: line2\n\n", 1, multi, NULL);

    /* an event with no data is not dispatched; an unfinished one is pending */
    fl_sse_create(&sse, p, 1 << 20, collect, &s);
    fl_sse_feed(sse, "event: x\n\n", 10);
    CHECK(s.n == 0);
    fl_sse_feed(sse, "data: half", 10);
    CHECK(fl_sse_pending(sse));
    CHECK(s.n == 0);

    /* an event larger than the cap is refused, not buffered without end */
    fl_sse_create(&sse, p, 16, collect, &s);
    CHECK(fl_sse_feed(sse, "data: 0123456789abcdefghij\n\n", 28) == APR_ENOSPC);
}
