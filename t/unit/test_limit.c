/* The limits' maths: the GCRA bucket counted exactly (bursts, spacing, rolling windows, limits
 * that do not divide a minute), tpm reservations and their reconciliation, spend per UTC day and
 * month, and the durations of x-ratelimit-reset-*. */
#include "fl_test.h"
#include "fl_limit.h"
#include "fl_rng.h"

#define SEC APR_USEC_PER_SEC
#define T0 ((apr_time_t)1767225600 * SEC)   /* 2026-01-01T00:00:00Z */

static apr_uint64_t admit_n(fl_limit_state_t *st, const fl_limit_rate_t *r, apr_time_t now,
                            int tries)
{
    fl_limit_result_t res;
    apr_uint64_t n = 0;
    int i;
    for (i = 0; i < tries; i++) {
        if (fl_limit_admit(st, r, now, &res) == APR_SUCCESS && res.admitted) n++;
    }
    return n;
}

/* A full minute's quota at once from idle, then one every period/limit, to the microsecond. */
static void burst_then_spacing(apr_uint64_t limit)
{
    fl_limit_rate_t r = { limit, 0, 0 };
    fl_limit_state_t st = { 0, 0 };
    fl_limit_result_t res;
    apr_interval_time_t gap = (FL_LIMIT_MINUTE + (apr_interval_time_t)limit - 1) / (apr_interval_time_t)limit;
    CHECK(admit_n(&st, &r, T0, (int)limit) == limit);
    CHECK(fl_limit_admit(&st, &r, T0, &res) == APR_SUCCESS);
    CHECK(!res.admitted && !res.too_large && res.remaining == 0);
    CHECK(res.retry_after == gap);
    CHECK(res.reset == FL_LIMIT_MINUTE);
    fl_limit_admit(&st, &r, T0 + gap - 1, &res);
    CHECK(!res.admitted && res.retry_after == 1);
    fl_limit_admit(&st, &r, T0 + gap, &res);
    CHECK(res.admitted && res.remaining == 0);
    fl_limit_admit(&st, &r, T0 + gap, &res);
    CHECK(!res.admitted);
    /* after a full minute of quiet the whole quota is back */
    CHECK(admit_n(&st, &r, T0 + gap + FL_LIMIT_MINUTE, (int)limit + 5) == limit);
}

/* Greedy clients (one try every millisecond) against rpm limits, counted over every window of
 * one minute: burst = limit admits at most 2 x limit - 1 in a minute, burst = 1 at most limit,
 * and in the long run both admit limit a minute. */
static void rolling_windows(apr_uint64_t limit, apr_uint64_t burst, apr_uint64_t most)
{
    fl_limit_rate_t r = { limit, burst, 0 };
    fl_limit_state_t st = { 0, 0 };
    fl_limit_result_t res;
    enum { MS = 5 * 60 * 1000 };
    apr_time_t times[5 * 2000];
    apr_size_t n = 0, i, j = 0, worst = 0;
    fl_rng_t g;
    apr_time_t t;
    fl_rng_seed(&g, limit * 31 + burst);
    for (t = 0; t < MS; t++) {
        /* not every millisecond, so the arrivals fall at odd phases of the spacing */
        if (fl_rng_next(&g) % 3 == 0) continue;
        fl_limit_admit(&st, &r, T0 + t * 1000, &res);
        if (res.admitted && n < sizeof(times) / sizeof(times[0])) times[n++] = T0 + t * 1000;
    }
    for (i = 0; i < n; i++) {
        while (times[i] - times[j] >= FL_LIMIT_MINUTE) j++;
        if (i - j + 1 > worst) worst = i - j + 1;
    }
    CHECK(worst <= most);
    /* five minutes: the first burst plus one limit a minute, give or take one */
    CHECK(n + 1 >= (burst ? burst : limit) + 4 * limit);
    CHECK(n <= (burst ? burst : limit) + 5 * limit);
}

static void rates(void)
{
    fl_limit_rate_t r = { 60, 0, 0 }, big = { 2, APR_UINT64_MAX / 2, 0 }, none = { 0, 0, 0 };
    fl_limit_rate_t spaced = { 100, 1, 0 }, hour = { 10, 0, 3600 * SEC };
    fl_limit_state_t st = { 0, 0 }, before;
    fl_limit_result_t res;
    char d[FL_LIMIT_DURATION_LEN];

    burst_then_spacing(100);
    burst_then_spacing(7);           /* 60 s / 7 is 8571428.57 µs: the 8th comes at ...429 */
    burst_then_spacing(1);
    burst_then_spacing(1000000);

    /* OpenAI's documented sample: a limit of 60, one request made, 59 left, reset in 1s */
    CHECK(fl_limit_admit(&st, &r, T0, &res) == APR_SUCCESS);
    CHECK(res.admitted && res.limit == 60 && res.remaining == 59);
    fl_limit_duration(res.reset, d);
    CHECK_STR(d, "1s");
    /* a clock read behind the state's leaks nothing and does not move time back */
    before = st;
    fl_limit_admit(&st, &r, T0 - 5 * SEC, &res);
    CHECK(res.admitted && st.at == before.at && res.remaining == 58);
    fl_limit_admit(&st, &r, T0 + 1 * SEC, &res);
    CHECK(res.admitted && res.remaining == 58);

    /* burst = 1: evenly spaced, the next one exactly period/limit later */
    st.at = 0, st.level = 0;
    fl_limit_admit(&st, &spaced, T0, &res);
    CHECK(res.admitted);
    fl_limit_admit(&st, &spaced, T0, &res);
    CHECK(!res.admitted && res.retry_after == 600000);
    fl_limit_admit(&st, &spaced, T0 + 600000, &res);
    CHECK(res.admitted);

    /* another period: 10 an hour */
    st.at = 0, st.level = 0;
    CHECK(admit_n(&st, &hour, T0, 20) == 10);
    fl_limit_admit(&st, &hour, T0, &res);
    CHECK(res.retry_after == 360 * SEC);

    rolling_windows(100, 0, 199);
    rolling_windows(100, 1, 100);
    rolling_windows(7, 1, 7);
    rolling_windows(13, 0, 25);

    /* a limit of 0 admits nothing and is not worth retrying; nonsense is refused unread */
    st.at = 0, st.level = 0;
    CHECK(fl_limit_admit(&st, &none, T0, &res) == APR_SUCCESS);
    CHECK(!res.admitted && res.too_large && res.retry_after == 0 && st.level == 0);
    CHECK(fl_limit_admit(&st, &big, T0, &res) == APR_EINVAL);
    r.period = -1;
    CHECK(fl_limit_admit(&st, &r, T0, &res) == APR_EINVAL);
    CHECK(st.level == 0 && st.at == 0);
}

static void tokens(void)
{
    fl_limit_rate_t r = { 1000, 0, 0 };
    fl_limit_state_t st = { 0, 0 }, kept;
    fl_limit_ticket_t a, b, c;
    fl_limit_result_t res;

    CHECK(fl_limit_reserve(&st, &r, 600, 300, T0, &a, &res) == APR_SUCCESS);
    CHECK(res.admitted && res.remaining == 400 && a.tokens == 600);
    fl_limit_reserve(&st, &r, 500, 300, T0, &b, &res);
    /* 100 tokens too many, leaking 1000 a minute: 6 s */
    CHECK(!res.admitted && !res.too_large && res.retry_after == 6 * SEC && res.remaining == 400);
    fl_limit_reserve(&st, &r, 400, 300, T0, &b, &res);
    CHECK(res.admitted && res.remaining == 0);
    /* the answers came back smaller: both reservations give back what they did not use */
    fl_limit_reconcile(&st, &r, &a, 250, T0, &res);
    CHECK(res.admitted && res.remaining == 350);
    fl_limit_reconcile(&st, &r, &b, 400, T0, &res);
    CHECK(res.remaining == 350);
    /* and one came back bigger than reserved: charged in full, even over the limit */
    fl_limit_reserve(&st, &r, 300, 300, T0, &c, &res);
    CHECK(res.admitted && res.remaining == 50);
    fl_limit_reconcile(&st, &r, &c, 1500, T0, &res);
    CHECK(res.remaining == 0 && res.reset == 129 * SEC);   /* 2150 tokens at 1000 a minute */
    /* 68 s later 1016.67 are left: one more token fits after 17.67 have leaked, 1.06 s */
    fl_limit_reserve(&st, &r, 1, 0, T0 + 68 * SEC, &c, &res);
    CHECK(!res.admitted && res.retry_after == 1060000);

    /* an estimate above the whole limit is no reason to refuse: it waits for an idle key */
    st.at = 0, st.level = 0;
    fl_limit_reserve(&st, &r, 10, 10, T0, &a, &res);
    fl_limit_reserve(&st, &r, 5000, 800, T0, &b, &res);
    CHECK(!res.admitted && !res.too_large && res.retry_after == 600000);
    fl_limit_reserve(&st, &r, 5000, 800, T0 + 600000, &b, &res);
    CHECK(res.admitted && b.tokens == 1000 && res.remaining == 0);
    /* but a max_tokens above it is: refused for good, the state untouched */
    kept = st;
    fl_limit_reserve(&st, &r, 10, 1001, T0 + 600000, &c, &res);
    CHECK(!res.admitted && res.too_large && res.retry_after == 0);
    CHECK(st.level == kept.level && st.at == kept.at);

    /* A late answer gives back only what of its reservation has not leaked: 1000 reserved,
     * a minute passes (all leaked), 500 more are reserved, then the first reports 10 used.
     * Those 10 leaked long ago; the 500 must stay counted. */
    st.at = 0, st.level = 0;
    fl_limit_reserve(&st, &r, 1000, 0, T0, &a, &res);
    fl_limit_reserve(&st, &r, 500, 0, T0 + 61 * SEC, &b, &res);
    fl_limit_reconcile(&st, &r, &a, 10, T0 + 62 * SEC, &res);
    CHECK(res.remaining == 516);             /* 500 - 1 s of leaking (16.67) */
    /* half leaked when the answer comes: 100 used would have leaked in 6 s, nothing is left */
    st.at = 0, st.level = 0;
    fl_limit_reserve(&st, &r, 1000, 0, T0, &a, &res);
    fl_limit_reconcile(&st, &r, &a, 100, T0 + 30 * SEC, &res);
    CHECK(res.remaining == 1000 && res.reset == 0 && st.level == 0);
    /* beneath another: 200 reserved on 300 already in, 6 s later 50 are reported */
    st.at = 0, st.level = 0;
    fl_limit_reserve(&st, &r, 300, 0, T0, &a, &res);
    fl_limit_reserve(&st, &r, 200, 0, T0, &b, &res);
    fl_limit_reconcile(&st, &r, &b, 50, T0 + 6 * SEC, &res);
    CHECK(res.remaining == 750);             /* 300 + 50 - 100 leaked */
}

static void spend(void)
{
    fl_limit_budget_t day = { 5000000, FL_LIMIT_DAY }, month = { 100000000, FL_LIMIT_MONTH };
    fl_limit_budget_t none = { 0, FL_LIMIT_DAY };
    fl_limit_state_t st = { 0, 0 }, m = { 0, 0 };
    fl_limit_result_t res;
    apr_time_t noon = T0 + 12 * 3600 * SEC;

    CHECK(fl_limit_spend_check(&st, &day, noon, &res) == APR_SUCCESS);
    CHECK(res.admitted && res.remaining == 5000000 && res.limit == 5000000);
    CHECK(res.reset == 12 * 3600 * SEC);
    fl_limit_spend_add(&st, &day, 3000000, noon, &res);
    CHECK(res.admitted && res.remaining == 2000000);
    fl_limit_spend_check(&st, &day, noon + 1, &res);
    CHECK(res.admitted);
    /* one request's price may take the spend over; then the next is refused until midnight */
    fl_limit_spend_add(&st, &day, 2500000, noon + 2, &res);
    CHECK(!res.admitted && res.remaining == 0);
    fl_limit_spend_check(&st, &day, noon + 3, &res);
    CHECK(!res.admitted && res.retry_after == 12 * 3600 * SEC - 3 && st.level == 5500000);
    /* exactly at the budget is refused too */
    st.at = 0, st.level = 0;
    fl_limit_spend_add(&st, &day, 5000000, noon, &res);
    CHECK(!res.admitted);
    /* the next UTC day starts from nothing */
    fl_limit_spend_check(&st, &day, T0 + 86400 * SEC, &res);
    CHECK(res.admitted && res.remaining == 5000000 && res.reset == 86400 * SEC);
    /* a request priced after midnight but timed before it counts in the new day */
    fl_limit_spend_add(&st, &day, 7, T0 + 86400 * SEC - 1, &res);
    CHECK(st.level == 7 && st.at == T0 + 86400 * SEC);
    /* a budget of 0 admits nothing */
    fl_limit_spend_check(&m, &none, noon, &res);
    CHECK(!res.admitted);

    /* months: January ends with its 31st, the next starts empty */
    fl_limit_spend_add(&m, &month, 99999999, T0 + 30 * 86400 * SEC, &res);
    CHECK(res.admitted && res.remaining == 1 && res.reset == 86400 * SEC);
    fl_limit_spend_add(&m, &month, 1, T0 + 30 * 86400 * SEC, &res);
    CHECK(!res.admitted);
    fl_limit_spend_check(&m, &month, T0 + 31 * 86400 * SEC, &res);
    CHECK(res.admitted && res.remaining == 100000000 && res.reset == 28 * 86400 * SEC);

    /* calendar edges: 2028 is a leap year, December rolls into the next year */
    CHECK(fl_limit_window_start(FL_LIMIT_MONTH, (apr_time_t)1835481600 * SEC + 5)
          == (apr_time_t)1835481600 * SEC);                 /* 2028-03-01 */
    CHECK(fl_limit_window_start(FL_LIMIT_MONTH, (apr_time_t)1835481600 * SEC - 1)
          == (apr_time_t)1832976000 * SEC);                 /* 2028-02-01 */
    CHECK(fl_limit_window_end(FL_LIMIT_MONTH, (apr_time_t)1832976000 * SEC)
          - (apr_time_t)1832976000 * SEC == 29 * 86400 * SEC);
    CHECK(fl_limit_window_end(FL_LIMIT_MONTH, (apr_time_t)1796083200 * SEC)
          == (apr_time_t)1798761600 * SEC);                 /* 2026-12-01 to 2027-01-01 */
    CHECK(fl_limit_window_start(FL_LIMIT_DAY, T0 + 86400 * SEC - 1) == T0);
    CHECK(fl_limit_window_end(FL_LIMIT_DAY, T0) == T0 + 86400 * SEC);
}

/* As OpenAI writes them: its rate-limits guide's samples (1s, 6m0s), headers seen in answers
 * (12ms, 9ms) and its 429 messages' "try again in" (9.816s, 644ms, 6ms). They are Go's
 * time.Duration spelling, which go-openai parses with time.ParseDuration. */
static void durations(void)
{
    static const struct { apr_interval_time_t d; const char *s; } cases[] = {
        { 1000000, "1s" }, { 360000000, "6m0s" }, { 12000, "12ms" }, { 9000, "9ms" },
        { 9816000, "9.816s" }, { 644000, "644ms" }, { 6000, "6ms" }, { 20000, "20ms" },
        { 90500000, "1m30.5s" }, { 3600 * SEC, "1h0m0s" }, { 3723 * SEC + 450000, "1h2m3.45s" },
        { 0, "0s" }, { -5, "0s" }, { 1, "1ms" }, { 999999, "1s" }, { 1000001, "1.001s" },
        { 59999000, "59.999s" }, { 60 * SEC, "1m0s" }, { 100 * 3600 * SEC, "100h0m0s" },
        { 1500, "2ms" },
    };
    char d[FL_LIMIT_DURATION_LEN];
    apr_size_t i;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fl_limit_duration(cases[i].d, d);
        CHECK_STR(d, cases[i].s);
    }
    fl_limit_duration(APR_INT64_MAX, d);
    CHECK_STR(d, "2562047788h0m54.776s");
}

void test_limit(apr_pool_t *p)
{
    rates();
    tokens();
    spend();
    durations();
}
