#include <math.h>
#include <string.h>
#include <stdlib.h>
#include <apr_strings.h>
#include <apr_atomic.h>

#include "fl_learn.h"
#include "fl_rng.h"

void fl_policy_defaults(fl_policy_t *pol)
{
    pol->discount = 0.995;       /* about 200 observations of memory: see confidence.md */
    pol->cost_weight = 0.2;
    pol->explore = 0.1;
    pol->learning_n = 3;
    pol->auto_n = 30;
    pol->bench_cap = 3;
    pol->pool_cap = 10;
    pol->pool_min_orgs = 2;
    pol->conf_day0_cap = 0.3;
    pol->conf_ceiling = 0.95;
    pol->conf_tau = 30;
    pol->conf_prior_tau = 5;
    pol->typical_tokens = 1000;
    pol->request_weight[0] = 0.5;
    pol->request_weight[1] = 1.0;
    pol->judge_weight = 0.5;
    pol->regression_z = 2;       /* the least with no violation in t/bench/sim.sh (confidence.md) */
}

static double clamp(double x, double lo, double hi)
{
    return x < lo ? lo : x > hi ? hi : x;
}

void fl_quality_observe(fl_quality_t *q, const fl_policy_t *pol, double weight, double reward)
{
    double keep = pow(pol->discount, weight), r = clamp(reward, 0, 1);
    q->n = q->n * keep + weight;
    q->s = q->s * keep + weight * r;
    q->ss = q->ss * keep + weight * r * r;
    /* each earlier weight is multiplied by keep, so its square by keep squared */
    q->n2 = q->n2 * keep * keep + weight * weight;
}

void fl_quality_revise(fl_quality_t *q, double weight, double old_reward, double new_reward)
{
    double o = clamp(old_reward, 0, 1), r = clamp(new_reward, 0, 1);
    /* The earlier observation has faded since; the revision may overshoot a little, so the sums
     * are kept inside what the weight allows (a reward's square is at most the reward). The
     * weight stays: n and n2 do not change. */
    q->s = clamp(q->s + weight * (r - o), 0, q->n);
    q->ss = clamp(q->ss + weight * (r * r - o * o), 0, q->s);
}

void fl_quality_stored(fl_quality_t *q)
{
    if (q->n <= 0) {
        memset(q, 0, sizeof(*q));
        return;
    }
    q->s = clamp(q->s, 0, q->n);
    if (q->n2 <= 0) {
        q->ss = q->s;
        q->n2 = q->n;
    }
    q->ss = clamp(q->ss, q->s * q->s / q->n, q->s);
}

/* Pseudo-observations of spread an arm's own spread is pooled with: as many as the posterior's
 * uniform prior has (Beta(1, 1)), at the largest variance a reward of that mean can have
 * (p(1 - p), all rewards 0 or 1). Few observations, or a run of equal rewards, cannot make the
 * standard error small; 30 effective observations outweigh it 15 to 1. */
#define SPREAD_PRIOR_N 2.0

double fl_quality_se(const fl_quality_t *q)
{
    double m, n_eff, p, ssd, var;
    if (q->n <= 0) return 0.5;
    m = q->s / q->n;
    /* a weighted mean's variance is var * n2 / n^2: weights 0.5 and 1 and the discount's fading
     * make n2 differ from n, so n alone would misstate the evidence */
    n_eff = q->n2 > 0 ? q->n * q->n / q->n2 : q->n;
    ssd = q->ss - q->s * m;      /* sum of weight * (reward - mean)^2 */
    if (ssd < 0) ssd = 0;
    p = (m * n_eff + 1) / (n_eff + 2);  /* the mean under the uniform prior, in the same units */
    /* the observed variance in effective observations (n_eff - 1 degrees of freedom: unbiased
     * for weighted data), pooled with the prior's */
    var = (n_eff * ssd / q->n + SPREAD_PRIOR_N * p * (1 - p)) / (n_eff - 1 + SPREAD_PRIOR_N);
    return sqrt(var / n_eff);
}

const char *fl_phase_name(fl_phase_e ph)
{
    return ph == FL_PHASE_AUTO ? "auto" : ph == FL_PHASE_LEARNING ? "learning" : "day0";
}

fl_phase_e fl_phase_of(const fl_policy_t *pol, double own_n)
{
    if (own_n >= pol->auto_n) return FL_PHASE_AUTO;
    return own_n >= pol->learning_n ? FL_PHASE_LEARNING : FL_PHASE_DAY0;
}

void fl_arm_posterior(const fl_arm_view_t *a, double *alpha, double *beta)
{
    double n = a->own.n + a->bench.n + a->pool.n, s = a->own.s + a->bench.s + a->pool.s;
    *alpha = 1.0 + s;
    *beta = 1.0 + (n - s > 0 ? n - s : 0);
}

double fl_arm_confidence(const fl_policy_t *pol, const fl_arm_view_t *a)
{
    double prior = a->bench.n + a->pool.n;
    double from_priors = pol->conf_day0_cap * (1.0 - exp(-prior / pol->conf_prior_tau));
    double from_own = pol->conf_ceiling * (1.0 - exp(-a->own.n / pol->conf_tau));
    double c = from_own > from_priors ? from_own : from_priors;
    if (fl_phase_of(pol, a->own.n) == FL_PHASE_DAY0 && c > pol->conf_day0_cap) {
        c = pol->conf_day0_cap;
    }
    return clamp(c, 0, pol->conf_ceiling);
}

/* --- snapshot ------------------------------------------------------------------------------ */

typedef struct arm_t {
    fl_quality_t own;
    fl_usage_stat_t usage;
    const char *org, *model;
} arm_t;

typedef struct model_prior_t {
    fl_quality_t bench;
    fl_quality_t pool;           /* every pooling organisation's outcomes, summed */
    int pool_orgs;
} model_prior_t;

struct fl_snapshot_t {
    apr_pool_t *pool;
    fl_policy_t policy;
    apr_hash_t *arms;            /* "org\x1froute\x1fmodel" -> arm_t */
    apr_hash_t *models;          /* model -> model_prior_t */
    apr_hash_t *opted_out;       /* org -> "" */
    apr_hash_t *org_model;       /* "org\x1fmodel" -> fl_quality_t: what the org puts in a pool */
    void *volatile *memo;        /* MEMO_SLOTS: fl_snapshot_memo */
};

/* Enough for the candidates a child routes to in one refresh period; more share slots, and
 * what does not fit is rendered again per decision (correct, only slower). */
#define MEMO_SLOTS 1024

static apr_status_t memo_free(void *data)
{
    fl_snapshot_t *s = data;
    int i;
    for (i = 0; i < MEMO_SLOTS; i++) free(s->memo[i]);
    return APR_SUCCESS;
}

fl_snapshot_t *fl_snapshot_create(apr_pool_t *p, const fl_policy_t *pol)
{
    fl_snapshot_t *s = apr_pcalloc(p, sizeof(*s));
    s->pool = p;
    s->policy = *pol;
    s->arms = apr_hash_make(p);
    s->models = apr_hash_make(p);
    s->opted_out = apr_hash_make(p);
    s->org_model = apr_hash_make(p);
    s->memo = apr_pcalloc(p, sizeof(void *) * MEMO_SLOTS);
    apr_pool_cleanup_register(p, s, memo_free, apr_pool_cleanup_null);
    return s;
}

static const char *arm_key(apr_pool_t *p, const char *org, const char *route, const char *model)
{
    return apr_pstrcat(p, org, "\x1f", route, "\x1f", model, NULL);
}

static arm_t *arm_get(const fl_snapshot_t *s, const char *org, const char *route,
                      const char *model)
{
    char buf[1024];
    int n = apr_snprintf(buf, sizeof(buf), "%s\x1f%s\x1f%s", org, route, model);
    if (n >= (int)sizeof(buf)) return NULL;
    return apr_hash_get(s->arms, buf, n);
}

static arm_t *arm_make(fl_snapshot_t *s, const char *org, const char *route, const char *model)
{
    arm_t *a = arm_get(s, org, route, model);
    if (!a) {
        const char *k = arm_key(s->pool, org, route, model);
        a = apr_pcalloc(s->pool, sizeof(*a));
        a->org = apr_pstrdup(s->pool, org);
        a->model = apr_pstrdup(s->pool, model);
        apr_hash_set(s->arms, k, APR_HASH_KEY_STRING, a);
    }
    return a;
}

static model_prior_t *prior_make(fl_snapshot_t *s, const char *model)
{
    model_prior_t *m = apr_hash_get(s->models, model, APR_HASH_KEY_STRING);
    if (!m) {
        m = apr_pcalloc(s->pool, sizeof(*m));
        apr_hash_set(s->models, apr_pstrdup(s->pool, model), APR_HASH_KEY_STRING, m);
    }
    return m;
}

void fl_snapshot_set_quality(fl_snapshot_t *s, const char *org, const char *route,
                             const char *model, const fl_quality_t *q)
{
    arm_t *a = arm_make(s, org, route, model);
    a->own = *q;
    fl_quality_stored(&a->own);
}

void fl_snapshot_add_usage(fl_snapshot_t *s, const char *org, const char *route,
                           const char *model, const fl_usage_stat_t *u)
{
    arm_t *a = arm_make(s, org, route, model);
    a->usage.requests += u->requests;
    a->usage.priced += u->priced;
    a->usage.cost_usd += u->cost_usd;
    a->usage.latency_ms += u->latency_ms;
    a->usage.tokens += u->tokens;
}

void fl_snapshot_set_benchmark(fl_snapshot_t *s, const char *model, double quality,
                               double weight)
{
    model_prior_t *m = prior_make(s, model);
    m->bench.n = clamp(weight, 0, s->policy.bench_cap);
    m->bench.s = m->bench.n * clamp(quality, 0, 1);
}

void fl_snapshot_opt_out(fl_snapshot_t *s, const char *org)
{
    apr_hash_set(s->opted_out, apr_pstrdup(s->pool, org), APR_HASH_KEY_STRING, "");
}

void fl_snapshot_finish(fl_snapshot_t *s)
{
    apr_hash_index_t *hi;
    for (hi = apr_hash_first(s->pool, s->arms); hi; hi = apr_hash_next(hi)) {
        arm_t *a = apr_hash_this_val(hi);
        const char *k;
        fl_quality_t *om;
        model_prior_t *m;
        if (a->own.n <= 0 || apr_hash_get(s->opted_out, a->org, APR_HASH_KEY_STRING)) continue;
        k = apr_pstrcat(s->pool, a->org, "\x1f", a->model, NULL);
        m = prior_make(s, a->model);
        if (!(om = apr_hash_get(s->org_model, k, APR_HASH_KEY_STRING))) {
            om = apr_pcalloc(s->pool, sizeof(*om));
            apr_hash_set(s->org_model, k, APR_HASH_KEY_STRING, om);
            m->pool_orgs++;
        }
        om->n += a->own.n;
        om->s += a->own.s;
        m->pool.n += a->own.n;
        m->pool.s += a->own.s;
    }
}

const fl_policy_t *fl_snapshot_policy(const fl_snapshot_t *s)
{
    return &s->policy;
}

apr_int64_t fl_snapshot_arms(const fl_snapshot_t *s)
{
    return apr_hash_count(s->arms);
}

/* The pool as one organisation may read it: without its own share (that is its own data, not a
 * prior), only with enough other contributors, and nothing at all for one that opted out. */
static void pool_for(const fl_snapshot_t *s, const model_prior_t *m, const char *org,
                     const char *model, fl_arm_view_t *out)
{
    char buf[1024];
    const fl_quality_t *mine = NULL;
    fl_quality_t q = m->pool;
    int others = m->pool_orgs, n;

    if (apr_hash_get(s->opted_out, org, APR_HASH_KEY_STRING)) return;
    n = apr_snprintf(buf, sizeof(buf), "%s\x1f%s", org, model);
    if (n < (int)sizeof(buf)) mine = apr_hash_get(s->org_model, buf, n);
    if (mine) {
        q.n -= mine->n;
        q.s -= mine->s;
        others--;
    }
    if (others < s->policy.pool_min_orgs || q.n <= 0) return;
    out->pool_orgs = others;
    /* the pool lends its mean at no more than pool_cap observations' weight */
    out->pool.n = q.n < s->policy.pool_cap ? q.n : s->policy.pool_cap;
    out->pool.s = out->pool.n * clamp(q.s / q.n, 0, 1);
}

void fl_snapshot_arm(const fl_snapshot_t *s, const char *org, const char *route,
                     const char *model, fl_arm_view_t *out)
{
    const arm_t *a = arm_get(s, org, route, model);
    const model_prior_t *m = apr_hash_get(s->models, model, APR_HASH_KEY_STRING);
    memset(out, 0, sizeof(*out));
    if (a) {
        out->own = a->own;
        out->usage = a->usage;
    }
    if (m) {
        out->bench = m->bench;
        pool_for(s, m, org, model, out);
    }
}

const void *fl_snapshot_memo(const fl_snapshot_t *s, apr_uint64_t hash)
{
    /* a slot is written once, by CAS after its block is complete, so a reader that sees the
     * pointer sees the block */
    return s->memo[hash % MEMO_SLOTS];
}

int fl_snapshot_memo_keep(const fl_snapshot_t *s, apr_uint64_t hash, void *block)
{
    return apr_atomic_casptr((volatile void **)&s->memo[hash % MEMO_SLOTS], block, NULL) == NULL;
}

const fl_quality_t *fl_snapshot_own(const fl_snapshot_t *s, const char *org, const char *route,
                                    const char *model)
{
    const arm_t *a = arm_get(s, org, route, model);
    return a ? &a->own : NULL;
}

/* --- stickiness ---------------------------------------------------------------------------- */

/* A slot is guarded by a sequence number (odd while a writer is in it), so the table needs no
 * lock and can live in memory that several processes share: a reader that saw the number move
 * reads again, a writer that finds it odd leaves the slot to the other writer. */
typedef struct slot_t {
    apr_uint32_t seq;
    apr_uint32_t unused;
    apr_uint64_t key, model;
    apr_int64_t expires;
} slot_t;

struct fl_sticky_t {
    apr_uint64_t n;
    apr_int64_t ttl;
    slot_t slots[];
};

apr_size_t fl_sticky_size(apr_size_t slots)
{
    return sizeof(fl_sticky_t) + sizeof(slot_t) * (slots ? slots : 1);
}

fl_sticky_t *fl_sticky_init(void *mem, apr_size_t slots, apr_interval_time_t ttl)
{
    fl_sticky_t *st = mem;
    memset(mem, 0, fl_sticky_size(slots));
    st->n = slots ? slots : 1;
    st->ttl = ttl;
    return st;
}

apr_status_t fl_sticky_create(fl_sticky_t **pst, apr_pool_t *p, apr_size_t slots,
                              apr_interval_time_t ttl)
{
    *pst = fl_sticky_init(apr_palloc(p, fl_sticky_size(slots)), slots, ttl);
    return APR_SUCCESS;
}

static apr_uint64_t session_key(const char *org, const char *route, const char *session)
{
    apr_uint64_t h = fl_hash64(org, strlen(org) + 1, 0);
    h = fl_hash64(route, strlen(route) + 1, h);
    h = fl_hash64(session, strlen(session), h);
    return h ? h : 1;
}

apr_uint64_t fl_sticky_get(fl_sticky_t *st, const char *org, const char *route,
                           const char *session, apr_time_t now)
{
    apr_uint64_t key = session_key(org, route, session), k, model;
    apr_int64_t expires;
    slot_t *sl = &st->slots[key % st->n];
    apr_uint32_t seq;
    int tries;
    for (tries = 0; tries < 64; tries++) {
        seq = __atomic_load_n(&sl->seq, __ATOMIC_ACQUIRE);
        if (seq & 1) continue;
        k = __atomic_load_n(&sl->key, __ATOMIC_RELAXED);
        model = __atomic_load_n(&sl->model, __ATOMIC_RELAXED);
        expires = __atomic_load_n(&sl->expires, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&sl->seq, __ATOMIC_RELAXED) == seq) {
            return k == key && expires > now ? model : 0;
        }
    }
    return 0;                    /* a slot in constant use: as if the session were new */
}

void fl_sticky_put(fl_sticky_t *st, const char *org, const char *route, const char *session,
                   const char *model, apr_time_t now)
{
    apr_uint64_t key = session_key(org, route, session);
    slot_t *sl = &st->slots[key % st->n];
    apr_uint32_t seq = __atomic_load_n(&sl->seq, __ATOMIC_RELAXED);
    /* a collision evicts the older session: it loses stickiness, never gets another's model
     * by mistake (the whole key is compared) */
    if ((seq & 1) || !__atomic_compare_exchange_n(&sl->seq, &seq, seq + 1, 0, __ATOMIC_ACQUIRE,
                                                  __ATOMIC_RELAXED)) {
        return;                  /* another writer is in the slot: its session wins it */
    }
    /* the odd number must be visible before any of the new fields. The CAS's acquire orders
     * its load only: its store may show after the fields' stores, so a reader that read a new
     * field could still find the old even number and take the key of one session with the
     * model of another. This fence pairs with the reader's acquire fence (Boehm's seqlock
     * writer; no instruction on x86, a dmb on Arm). */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    __atomic_store_n(&sl->key, key, __ATOMIC_RELAXED);
    __atomic_store_n(&sl->model, fl_hash64(model, strlen(model), 0), __ATOMIC_RELAXED);
    __atomic_store_n(&sl->expires, (apr_int64_t)(now + st->ttl), __ATOMIC_RELAXED);
    __atomic_store_n(&sl->seq, seq + 2, __ATOMIC_RELEASE);
}
