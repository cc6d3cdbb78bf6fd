/* The maths of the gateway's limits, on a state of two integers that the caller keeps where
 * it likes (the shared table of fl_limit_table.h, a test's stack): requests and tokens per
 * minute, spend per UTC day or month, and the durations OpenAI writes in x-ratelimit-reset-*.
 * The time comes in as an argument and is never read here, so every answer can be replayed.
 *
 * Rates are a GCRA bucket (nginx's limit_req counts the same way): each request or token pours
 * `period` units into the bucket, which leaks `limit` units a microsecond, so a whole period's
 * quota leaks in exactly one period and nothing is rounded. A request is admitted when it fits
 * under burst x period. With the default burst (= limit) an idle key may spend a full minute's
 * quota at once, as OpenAI's limits allow, and then gets one more every period/limit; over any
 * window of one period at most burst + limit - 1 are admitted. burst = 1 spaces requests evenly
 * and admits at most `limit` in any rolling period. */
#ifndef FL_LIMIT_H
#define FL_LIMIT_H

#include <apr_time.h>

#define FL_LIMIT_MINUTE (60 * APR_USEC_PER_SEC)

/* A zeroed state is an idle bucket, or a window with nothing spent. */
typedef struct fl_limit_state_t {
    apr_time_t at;               /* rate: the last update; spend: the start of the window counted */
    apr_uint64_t level;          /* rate: the bucket's content in units; spend: micro-USD */
} fl_limit_state_t;

typedef struct fl_limit_rate_t {
    apr_uint64_t limit;          /* requests or tokens per period; 0 admits nothing */
    apr_uint64_t burst;          /* most that an idle key may take at once; 0 = limit */
    apr_interval_time_t period;  /* 0 = FL_LIMIT_MINUTE */
} fl_limit_rate_t;

typedef enum {
    FL_LIMIT_DAY,                /* the UTC calendar day */
    FL_LIMIT_MONTH               /* the UTC calendar month */
} fl_limit_window_e;

typedef struct fl_limit_budget_t {
    apr_uint64_t micro_usd;      /* spend allowed in one window; 0 admits nothing */
    fl_limit_window_e window;
} fl_limit_budget_t;

/* What the glue answers with and writes into x-ratelimit-* and retry-after. */
typedef struct fl_limit_result_t {
    int admitted;
    int too_large;               /* refused for good: the request can never fit (do not retry) */
    apr_uint64_t limit;          /* x-ratelimit-limit-*: the rate's limit or the budget */
    apr_uint64_t remaining;      /* requests, tokens or micro-USD that would still be admitted */
    apr_interval_time_t reset;   /* until the state is back to its initial state (rate), or
                                  * until the window ends (spend) */
    apr_interval_time_t retry_after; /* refused and not too_large: until the same request would
                                  * be admitted; 0 otherwise */
} fl_limit_result_t;

/* A reservation of tokens, kept by the caller until the true usage is known. */
typedef struct fl_limit_ticket_t {
    apr_uint64_t tokens;         /* what was reserved (less than asked when clamped to burst) */
    apr_uint64_t level;          /* the bucket's level just after the reservation */
    apr_time_t at;
} fl_limit_ticket_t;

/* Every function returns APR_EINVAL, leaving the state alone, when burst x period does not
 * fit in 62 bits (no real limit comes near) or period is negative. */

/* Admits one request now, or refuses it and says when it would be admitted (rpm). */
apr_status_t fl_limit_admit(fl_limit_state_t *st, const fl_limit_rate_t *rate, apr_time_t now,
                            fl_limit_result_t *res);

/* Reserves tokens (the request's estimate) against a tpm limit. An estimate above burst does
 * not refuse the request by itself: the reservation is cut to burst, so it is admitted once the
 * key is idle. Only max_tokens (the request's own cap; 0 = none) above burst refuses for good
 * (too_large). Reservations never take the bucket over burst, however many run at once. On
 * admission *ticket is filled for fl_limit_reconcile. */
apr_status_t fl_limit_reserve(fl_limit_state_t *st, const fl_limit_rate_t *rate,
                              apr_uint64_t tokens, apr_uint64_t max_tokens, apr_time_t now,
                              fl_limit_ticket_t *ticket, fl_limit_result_t *res);

/* Replaces a reservation by the tokens really used. More is charged in full (the bucket may go
 * over burst: the tokens were spent, later requests wait for them to leak). Less gives back only
 * what of the reservation has not leaked yet, so a late answer returns nothing that later
 * requests already used. */
apr_status_t fl_limit_reconcile(fl_limit_state_t *st, const fl_limit_rate_t *rate,
                                const fl_limit_ticket_t *ticket, apr_uint64_t actual,
                                apr_time_t now, fl_limit_result_t *res);

/* Before a request: refused when the window's spend is already at or over the budget (a
 * request's price is known only after it, so one request may take the spend over). */
apr_status_t fl_limit_spend_check(fl_limit_state_t *st, const fl_limit_budget_t *budget,
                                  apr_time_t now, fl_limit_result_t *res);

/* After a request: adds its price; res says whether the next one would pass the check. */
apr_status_t fl_limit_spend_add(fl_limit_state_t *st, const fl_limit_budget_t *budget,
                                apr_uint64_t micro_usd, apr_time_t now, fl_limit_result_t *res);

/* The start of the UTC day or month that holds t, and the start of the next one. */
apr_time_t fl_limit_window_start(fl_limit_window_e window, apr_time_t t);
apr_time_t fl_limit_window_end(fl_limit_window_e window, apr_time_t t);

#define FL_LIMIT_DURATION_LEN 32

/* A duration as OpenAI writes x-ratelimit-reset-* (Go's time.Duration form): "644ms", "1s",
 * "9.816s", "6m0s", "1h0m0s". Rounded up to the millisecond, so a client that waits what it
 * reads is never early; 0 or less is "0s". */
void fl_limit_duration(apr_interval_time_t d, char out[FL_LIMIT_DURATION_LEN]);

#endif
