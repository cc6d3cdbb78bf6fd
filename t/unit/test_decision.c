#include <math.h>
#include <apr_strings.h>
#include "fl_test.h"
#include "fl_catalog.h"
#include "fl_decision.h"
#include "fl_json.h"

typedef struct sink_t {
    apr_pool_t *p;
    char *text;
    int fail_after;              /* calls to accept before failing; -1 never */
} sink_t;

static int sink(const char *data, size_t n, void *v)
{
    sink_t *s = v;
    if (s->fail_after == 0) return -1;
    if (s->fail_after > 0) s->fail_after--;
    s->text = apr_pstrcat(s->p, s->text, apr_pstrndup(s->p, data, n), NULL);
    return 0;
}

/* The export's writer gives the bytes of the API object's dump, without parsing documents. */
static void same_as_object(fl_row_writer_t *w, apr_pool_t *p, const char **args)
{
    sink_t s = { p, "", -1 };
    json_t *row = fl_decision_row_json(p, args);
    const char *want = fl_json_dump(p, row, 1);
    CHECK(fl_row_writer_write(w, p, args, sink, &s) == 0);
    CHECK_STR(s.text, want);
}

static void check_row_write(apr_pool_t *p, const char **args)
{
    const char *v[FL_DECISION_NCOLS];
    char big[6000];
    sink_t s = { p, "", 3 };
    fl_row_writer_t *w = fl_row_writer_create(p);  /* one for every row: values change, not keys */
    int i;
    same_as_object(w, p, args);
    /* absent documents and columns read as the object shows them */
    for (i = 0; i < FL_DECISION_NCOLS; i++) v[i] = args[i];
    v[FL_COL_ALTS] = v[FL_COL_SIGNALS] = v[FL_COL_CONSTRAINTS] = NULL;
    v[FL_COL_ERROR] = v[FL_COL_ATTEMPTS] = v[FL_COL_PROVIDER] = v[FL_COL_COST] = NULL;
    same_as_object(w, p, v);
    /* a document over lines (stored by hand) would break JSON Lines: it is re-dumped */
    v[FL_COL_SIGNALS] = "{\n  \"policy\": \"thompson\",\r\n  \"n\": [1, 2.5]\n}";
    v[FL_COL_ERROR] = "{\"type\":\"x\",\"message\":\"a \\\"quoted\\\" line\"}";
    same_as_object(w, p, v);
    /* one on a line but spelt otherwise than Jansson would goes out as stored: the same value */
    v[FL_COL_ERROR] = "{\"type\":\"x\", \"message\":\"\\u00e9t\\u00e9\"}";
    s.text = "";
    s.fail_after = -1;
    CHECK(fl_row_writer_write(w, p, v, sink, &s) == 0);
    CHECK(!strchr(s.text, '\n') && !strchr(s.text, '\r'));
    {
        json_t *got = json_loads(s.text, 0, NULL), *want = fl_decision_row_json(p, v);
        CHECK(got && json_equal(got, want));
        CHECK(strstr(s.text, "\\u00e9t\\u00e9") != NULL);
        json_decref(got);
        json_decref(want);
    }
    v[FL_COL_ERROR] = NULL;
    /* runs of plain members longer than the stack buffer */
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    v[FL_COL_SESSION] = big;
    same_as_object(w, p, v);
    /* back to the full row after the nulls: the same text as on a fresh writer */
    same_as_object(w, p, args);
    /* the sink's failure stops the row and is reported */
    s.text = "";
    s.fail_after = 3;
    CHECK(fl_row_writer_write(w, p, args, sink, &s) == -1);
}

void test_decision(apr_pool_t *p)
{
    fl_provider_t pv = { .name = "mock" };
    fl_model_t m = { .id = "mock/large", .name = "large", .provider = &pv, .priced = 1,
                     .input_per_m = 2.5, .output_per_m = 10, .cached_input_per_m = 1.25 };
    fl_model_t unpriced = { .id = "mock/x", .name = "x", .provider = &pv, .priced = 0 };
    fl_usage_t u = { .prompt = 1000, .completion = 500, .total = 1500, .cached = 400, .reasoning = -1 };
    fl_price_t price = { 1, 2.5, 10, 1.25 }, none = { 0, 0, 0, 0 };
    fl_decision_t *d = fl_decision_create(p, apr_time_from_sec(1795325869));
    const char *args[FL_DECISION_NCOLS];
    json_t *row;
    fl_alternative_t *alt;

    /* 600 uncached at 2.5, 400 cached at 1.25, 500 out at 10, per million */
    CHECK(fabs(fl_cost_usd(&price, &u) - (600 * 2.5 + 400 * 1.25 + 500 * 10.0) / 1e6) < 1e-12);
    CHECK(fl_cost_usd(&none, &u) < 0);
    u.prompt = -1;
    CHECK(fl_cost_usd(&price, &u) < 0);                /* unknown usage: unknown cost */
    u.prompt = 1000;

    d->org_id = "org";
    d->api_key_id = "key";
    d->route = "auto";
    d->chosen = &m;
    d->chosen_score = 0.5;
    alt = apr_array_push(d->alternatives);
    alt->model = &unpriced;
    alt->score = 0.25;
    alt->excluded_by = NULL;
    d->usage = u;
    d->price = price;
    d->status = "ok";
    d->http_status = 200;
    d->latency_total_ms = 12.5;
    fl_decision_add_attempt(d, &m, 200, 11.0, NULL);
    fl_decision_row_args(p, d, args);
    CHECK(args[3] == NULL);                            /* no session */
    CHECK_STR(args[7], "mock");
    CHECK(args[18] == NULL);                           /* upstream latency unset */
    CHECK_STR(args[23], "0.0070000000");
    CHECK_STR(args[27], "2026-11-22 05:37:49.000");

    /* the row the database gives back makes the API object */
    row = fl_decision_row_json(p, args);
    CHECK_STR(json_string_value(json_object_get(row, "created_at")), "2026-11-22T05:37:49.000Z");
    CHECK_STR(json_string_value(json_object_get(json_object_get(row, "chosen"), "model")), "large");
    CHECK(json_array_size(json_object_get(row, "alternatives")) == 1);
    CHECK(json_integer_value(json_object_get(json_object_get(row, "usage"), "total_tokens")) == 1500);
    CHECK(json_is_null(json_object_get(json_object_get(row, "usage"), "reasoning_tokens")));
    CHECK(json_is_null(json_object_get(row, "session_id")));
    CHECK(json_is_false(json_object_get(row, "pinned")));
    CHECK(json_array_size(json_object_get(row, "attempts")) == 1);
    json_decref(row);
    check_row_write(p, args);
}
