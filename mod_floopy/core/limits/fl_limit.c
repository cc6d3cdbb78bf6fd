#include <stdio.h>

#include "fl_limit.h"

/* Levels stay below 2^62, so a sum of two never wraps and every product below is bounded. */
#define LEVEL_MAX (1ULL << 62)

/* A rate in the bucket's units: one request or token is `period` units, `limit` leak a
 * microsecond, the bucket holds `cap`. */
typedef struct gcra_t {
    apr_uint64_t limit, period, cap;
} gcra_t;

static apr_status_t bucket_of(const fl_limit_rate_t *rate, gcra_t *b)
{
    apr_uint64_t burst = rate->burst ? rate->burst : rate->limit;
    if (rate->period < 0) return APR_EINVAL;
    b->period = rate->period ? (apr_uint64_t)rate->period : FL_LIMIT_MINUTE;
    if (rate->limit >= LEVEL_MAX || burst > LEVEL_MAX / b->period) return APR_EINVAL;
    b->limit = rate->limit;
    b->cap = rate->limit ? burst * b->period : 0;   /* a bucket that never leaks admits nothing */
    return APR_SUCCESS;
}

static apr_uint64_t add_sat(apr_uint64_t a, apr_uint64_t b)
{
    return a + b > LEVEL_MAX ? LEVEL_MAX : a + b;
}

static apr_uint64_t units(const gcra_t *b, apr_uint64_t n)
{
    return n > LEVEL_MAX / b->period ? LEVEL_MAX : n * b->period;
}

/* Microseconds until `excess` units have leaked: rounded up, so the answer is never early. */
static apr_interval_time_t leak_time(const gcra_t *b, apr_uint64_t excess)
{
    return (apr_interval_time_t)((excess + b->limit - 1) / b->limit);
}

/* What leaked since the last update. A now behind the state's (another process read the clock
 * first and locked second) leaks nothing and keeps the later time: time never runs twice. */
static void leak(fl_limit_state_t *st, const gcra_t *b, apr_time_t now)
{
    apr_uint64_t elapsed;
    if (now <= st->at) return;
    elapsed = (apr_uint64_t)(now - st->at);
    st->level = elapsed > st->level / b->limit ? 0 : st->level - elapsed * b->limit;
    st->at = now;
}

static void rate_result(const fl_limit_state_t *st, const gcra_t *b, fl_limit_result_t *res)
{
    res->limit = b->limit;
    res->remaining = st->level < b->cap ? (b->cap - st->level) / b->period : 0;
    res->reset = leak_time(b, st->level);
}

static void refuse_for_good(const gcra_t *b, fl_limit_result_t *res)
{
    res->admitted = 0;
    res->too_large = 1;
    res->limit = b->limit;
    res->remaining = 0;
    res->reset = 0;
    res->retry_after = 0;
}

/* Pours n units in when they fit under cap. */
static void take(fl_limit_state_t *st, const gcra_t *b, apr_uint64_t n, apr_time_t now,
                 fl_limit_result_t *res)
{
    leak(st, b, now);
    res->too_large = 0;
    res->admitted = st->level + n <= b->cap;
    if (res->admitted) st->level += n;
    res->retry_after = res->admitted ? 0 : leak_time(b, st->level + n - b->cap);
    rate_result(st, b, res);
}

apr_status_t fl_limit_admit(fl_limit_state_t *st, const fl_limit_rate_t *rate, apr_time_t now,
                            fl_limit_result_t *res)
{
    gcra_t b;
    apr_status_t rv = bucket_of(rate, &b);
    if (rv != APR_SUCCESS) return rv;
    if (b.cap == 0) refuse_for_good(&b, res);
    else take(st, &b, b.period, now, res);
    return APR_SUCCESS;
}

apr_status_t fl_limit_reserve(fl_limit_state_t *st, const fl_limit_rate_t *rate,
                              apr_uint64_t tokens, apr_uint64_t max_tokens, apr_time_t now,
                              fl_limit_ticket_t *ticket, fl_limit_result_t *res)
{
    gcra_t b;
    apr_uint64_t burst;
    apr_status_t rv = bucket_of(rate, &b);
    if (rv != APR_SUCCESS) return rv;
    burst = b.cap / b.period;
    if (b.cap == 0 || max_tokens > burst) {
        refuse_for_good(&b, res);
        return APR_SUCCESS;
    }
    /* an estimate is not a reason to refuse: a request that may fit waits for an idle key */
    if (tokens > burst) tokens = burst;
    take(st, &b, tokens * b.period, now, res);
    if (res->admitted) {
        ticket->tokens = tokens;
        ticket->level = st->level;
        ticket->at = st->at;
    }
    return APR_SUCCESS;
}

apr_status_t fl_limit_reconcile(fl_limit_state_t *st, const fl_limit_rate_t *rate,
                                const fl_limit_ticket_t *ticket, apr_uint64_t actual,
                                apr_time_t now, fl_limit_result_t *res)
{
    gcra_t b;
    apr_uint64_t back, since, left;
    apr_status_t rv = bucket_of(rate, &b);
    if (rv != APR_SUCCESS) return rv;
    if (b.limit == 0) {
        refuse_for_good(&b, res);
        return APR_SUCCESS;
    }
    leak(st, &b, now);
    if (actual >= ticket->tokens) {
        st->level = add_sat(st->level, units(&b, actual - ticket->tokens));
    }
    else {
        /* The bucket leaks from the bottom: since the reservation, what lay beneath it leaked
         * first, then the reservation itself. Only its part still inside can be given back. */
        back = (ticket->tokens - actual) * b.period;
        since = now > ticket->at ? (apr_uint64_t)(now - ticket->at) : 0;
        left = since > ticket->level / b.limit ? 0 : ticket->level - since * b.limit;
        if (back > left) back = left;
        st->level = back < st->level ? st->level - back : 0;
    }
    res->admitted = 1;
    res->too_large = 0;
    res->retry_after = 0;
    rate_result(st, &b, res);
    return APR_SUCCESS;
}

/* --- spend per calendar window -------------------------------------------------------------- */

apr_time_t fl_limit_window_start(fl_limit_window_e window, apr_time_t t)
{
    apr_time_exp_t tm;
    apr_time_t start;
    if (window == FL_LIMIT_DAY) {
        return t - t % (86400 * APR_USEC_PER_SEC);
    }
    apr_time_exp_gmt(&tm, t);
    tm.tm_mday = 1;
    tm.tm_hour = tm.tm_min = tm.tm_sec = tm.tm_usec = 0;
    return apr_time_exp_gmt_get(&start, &tm) == APR_SUCCESS ? start : t;
}

apr_time_t fl_limit_window_end(fl_limit_window_e window, apr_time_t t)
{
    apr_time_t start = fl_limit_window_start(window, t);
    /* every month is longer than 27 days and shorter than 32 */
    return window == FL_LIMIT_DAY ? start + 86400 * APR_USEC_PER_SEC
                                  : fl_limit_window_start(window, start + 32 * 86400 * APR_USEC_PER_SEC);
}

/* Starts the window that holds now. A now in a window before the state's (a clock read just
 * before midnight, locked just after) counts in the later one rather than wiping it. */
static apr_time_t roll(fl_limit_state_t *st, const fl_limit_budget_t *budget, apr_time_t now)
{
    apr_time_t start = fl_limit_window_start(budget->window, now);
    if (start > st->at) {
        st->at = start;
        st->level = 0;
    }
    return fl_limit_window_end(budget->window, st->at);
}

static void spend_result(const fl_limit_state_t *st, const fl_limit_budget_t *budget,
                         apr_time_t end, apr_time_t now, fl_limit_result_t *res)
{
    res->admitted = st->level < budget->micro_usd;
    res->too_large = 0;
    res->limit = budget->micro_usd;
    res->remaining = res->admitted ? budget->micro_usd - st->level : 0;
    res->reset = end - now;
    res->retry_after = res->admitted ? 0 : res->reset;
}

apr_status_t fl_limit_spend_check(fl_limit_state_t *st, const fl_limit_budget_t *budget,
                                  apr_time_t now, fl_limit_result_t *res)
{
    spend_result(st, budget, roll(st, budget, now), now, res);
    return APR_SUCCESS;
}

apr_status_t fl_limit_spend_add(fl_limit_state_t *st, const fl_limit_budget_t *budget,
                                apr_uint64_t micro_usd, apr_time_t now, fl_limit_result_t *res)
{
    apr_time_t end = roll(st, budget, now);
    st->level = add_sat(st->level, micro_usd > LEVEL_MAX ? LEVEL_MAX : micro_usd);
    spend_result(st, budget, end, now, res);
    return APR_SUCCESS;
}

/* --- durations ------------------------------------------------------------------------------ */

void fl_limit_duration(apr_interval_time_t d, char out[FL_LIMIT_DURATION_LEN])
{
    apr_uint64_t ms = d > 0 ? ((apr_uint64_t)d + 999) / 1000 : 0;
    apr_uint64_t h = ms / 3600000, m = ms / 60000 % 60, s = ms / 1000 % 60, frac = ms % 1000;
    int n = 0, digits = 3;
    if (ms && ms < 1000) {
        snprintf(out, FL_LIMIT_DURATION_LEN, "%" APR_UINT64_T_FMT "ms", ms);
        return;
    }
    if (h) n += snprintf(out + n, FL_LIMIT_DURATION_LEN - n, "%" APR_UINT64_T_FMT "h", h);
    if (h || m) n += snprintf(out + n, FL_LIMIT_DURATION_LEN - n, "%" APR_UINT64_T_FMT "m", m);
    n += snprintf(out + n, FL_LIMIT_DURATION_LEN - n, "%" APR_UINT64_T_FMT, s);
    /* Go trims the fraction's trailing zeros: 9.816s, 1.5s, 30s */
    while (frac && frac % 10 == 0) {
        frac /= 10;
        digits--;
    }
    if (frac) n += snprintf(out + n, FL_LIMIT_DURATION_LEN - n, ".%0*" APR_UINT64_T_FMT, digits, frac);
    snprintf(out + n, FL_LIMIT_DURATION_LEN - n, "s");
}
