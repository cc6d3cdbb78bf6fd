#include <math.h>
#include <apr_strings.h>
#include "fl_test.h"
#include "fl_catalog.h"
#include "fl_decision.h"
#include "fl_json.h"

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
}
