/* What the router knows: per organisation, route and model a quality estimate built from
 * outcomes (session NPS, per-request scores, judge scores), rolling cost and latency from real
 * usage, and the priors that warm up a model an organisation has no data on (benchmark numbers
 * and the pooled, aggregated outcomes of the deployment's other organisations).
 * docs/methodology/confidence.md explains every number in fl_policy_t. */
#ifndef FL_LEARN_H
#define FL_LEARN_H

#include <apr_pools.h>
#include <apr_hash.h>
#include <apr_thread_mutex.h>

/* A quality estimate: weighted observations and their weighted reward sum, rewards in 0..1.
 * Older observations fade (discount per unit of new weight) so a model that degrades is left.
 * ss and n2 give the spread of the own mean (fl_quality_se); priors carry n and s only,
 * as they lend a mean, never evidence about this organisation's spread. */
typedef struct fl_quality_t {
    double n, s;
    double ss;                   /* weighted sum of squared rewards, faded like s */
    double n2;                   /* sum of the squared faded weights: (n * n) / n2 is the
                                  * effective number of observations behind s / n */
} fl_quality_t;

/* Usage over the rolling window: requests, their summed cost (USD) and latency (ms). */
typedef struct fl_usage_stat_t {
    double requests, priced, cost_usd, latency_ms, tokens; /* priced: requests with a cost */
} fl_usage_stat_t;

typedef struct fl_policy_t {
    double discount;             /* weight kept per unit of new observation weight */
    double cost_weight;          /* quality points one full step of relative cost is worth */
    double explore;              /* share of decisions where Day-0 candidates compete */
    double learning_n, auto_n;   /* own observation weight that starts Learning and Auto */
    double bench_cap, pool_cap;  /* most pseudo-observations a benchmark / the pool can lend */
    int pool_min_orgs;           /* other organisations a pooled prior must come from */
    double conf_day0_cap, conf_ceiling, conf_tau, conf_prior_tau;
    double typical_tokens;       /* tokens per request assumed before usage is known */
    double request_weight[2];    /* weight of a per-request score: before Auto, in Auto */
    double judge_weight;
    double regression_z;         /* standard errors by which a proven candidate's own mean must
                                  * clear max_regression (fl_router.c apply_limits) */
} fl_policy_t;

void fl_policy_defaults(fl_policy_t *pol);

/* Adds an observation of the given weight (older ones fade first). */
void fl_quality_observe(fl_quality_t *q, const fl_policy_t *pol, double weight, double reward);
/* Rewrites an earlier observation's reward (a replaced session score), keeping its weight. */
void fl_quality_revise(fl_quality_t *q, double weight, double old_reward, double new_reward);
/* Makes statistics read from storage consistent: 0 <= s <= n, s*s/n <= ss <= s. A row with n > 0
 * and no n2 was written before the spread was kept: it gets the widest spread its n and s allow
 * (ss = s, as if every reward were 0 or 1; n2 = n, the most it can be with weights up to 1). */
void fl_quality_stored(fl_quality_t *q);
/* The standard error of the own mean s/n, from the observed spread of the rewards pooled with a
 * wide prior spread (so few observations cannot make it small); 0.5 with no observations. */
double fl_quality_se(const fl_quality_t *q);

typedef enum { FL_PHASE_DAY0, FL_PHASE_LEARNING, FL_PHASE_AUTO } fl_phase_e;
const char *fl_phase_name(fl_phase_e ph);
fl_phase_e fl_phase_of(const fl_policy_t *pol, double own_n);

/* A candidate as the router sees it for one organisation and route. */
typedef struct fl_arm_view_t {
    fl_quality_t own;            /* the organisation's own outcomes */
    fl_quality_t bench, pool;    /* priors, already capped to their pseudo-observations */
    int pool_orgs;               /* organisations behind the pooled prior */
    fl_usage_stat_t usage;       /* the organisation's rolling usage of the model on the route */
} fl_arm_view_t;

/* The posterior's mean and standard deviation: Beta(1 + s, 1 + n - s) over own + priors. */
void fl_arm_posterior(const fl_arm_view_t *a, double *alpha, double *beta);

/* How much signal mass stands behind choosing this arm, 0..ceiling; priors alone never lift it
 * over the Day-0 cap, nor does anything while the arm is in Day-0. */
double fl_arm_confidence(const fl_policy_t *pol, const fl_arm_view_t *a);

/* --- snapshot: every organisation's statistics, read-only once finished ------------------- */
typedef struct fl_snapshot_t fl_snapshot_t;

fl_snapshot_t *fl_snapshot_create(apr_pool_t *p, const fl_policy_t *pol);
/* The organisation's own statistics, as stored (fl_quality_stored makes them consistent). */
void fl_snapshot_set_quality(fl_snapshot_t *s, const char *org, const char *route,
                             const char *model, const fl_quality_t *q);
void fl_snapshot_add_usage(fl_snapshot_t *s, const char *org, const char *route,
                           const char *model, const fl_usage_stat_t *u);
void fl_snapshot_set_benchmark(fl_snapshot_t *s, const char *model, double quality,
                               double weight);
void fl_snapshot_opt_out(fl_snapshot_t *s, const char *org);
/* Totals the pooled priors; call once, after every set/add. */
void fl_snapshot_finish(fl_snapshot_t *s);
const fl_policy_t *fl_snapshot_policy(const fl_snapshot_t *s);
apr_int64_t fl_snapshot_arms(const fl_snapshot_t *s);

/* The view of one candidate for one organisation (zeros where nothing is known). */
void fl_snapshot_arm(const fl_snapshot_t *s, const char *org, const char *route,
                     const char *model, fl_arm_view_t *out);
/* Renderings readers derive from a snapshot (the router's JSON of a candidate) and share while
 * it lasts: a table of slots by the hash of what a rendering was made from; a slot is set once,
 * from any thread, and what it holds is freed with the snapshot. A reader compares what it finds
 * with what it needs (another rendering may share the slot). */
const void *fl_snapshot_memo(const fl_snapshot_t *s, apr_uint64_t hash);
/* Keeps block (malloc'd) in its slot unless the slot is taken: 1 when kept (the snapshot frees
 * it), 0 when not (the caller still owns it). */
int fl_snapshot_memo_keep(const fl_snapshot_t *s, apr_uint64_t hash, void *block);
/* The organisation's own quality of a model on a route (NULL when none): to update it. */
const fl_quality_t *fl_snapshot_own(const fl_snapshot_t *s, const char *org, const char *route,
                                    const char *model);

/* --- stickiness: the model a session was routed to, so its one NPS credits that model ------ */
typedef struct fl_sticky_t fl_sticky_t;

/* Which model a session was given, in a fixed table of slots that needs no lock: it may live
 * in memory several processes share (fl_sticky_init on fl_sticky_size bytes of it). */
apr_size_t fl_sticky_size(apr_size_t slots);
fl_sticky_t *fl_sticky_init(void *mem, apr_size_t slots, apr_interval_time_t ttl);
apr_status_t fl_sticky_create(fl_sticky_t **pst, apr_pool_t *p, apr_size_t slots,
                              apr_interval_time_t ttl);
/* The hash (fl_hash64 of the id) of the model the session was given on the route: 0 if none
 * or expired. Slots hold hashes only, so the table's size is fixed whatever the ids. */
apr_uint64_t fl_sticky_get(fl_sticky_t *st, const char *org, const char *route,
                           const char *session, apr_time_t now);
void fl_sticky_put(fl_sticky_t *st, const char *org, const char *route, const char *session,
                   const char *model, apr_time_t now);

#endif
