/* Simulation benchmark of the learning router (t/bench/sim.sh builds and runs it).
 *
 * A world of models with a hidden true quality and price. Sessions of 1 to 5 requests; every
 * request is routed by the real code (fl_router_choose over an fl_snapshot_t built here, with
 * session stickiness through fl_sticky_get/put), and the session's NPS, drawn from the true
 * quality of the models that served it, is credited to each model of the session with weight
 * j/k (j of its k requests) through fl_quality_observe: the loop the gateway runs, minus the
 * network and the database.
 * Nothing of the policy is written here; only the baselines it is compared with are.
 *
 * Definitions (they decide what the figures mean, so they are spelled out):
 *   utility     true quality - cost_weight * expected cost / dearest expected cost on the route:
 *               the router's own objective (sample() in fl_router.c) with the truth put in for
 *               its estimates. The oracle takes the best utility of the current world every time.
 *   regret      sum over sessions of oracle utility - utility of the session (per-request mean).
 *   NPS         Binomial(10, q), q = mean true quality over the session's requests; reward NPS/10.
 *               nps=bernoulli makes it 0 or 10 instead: the same mean, the most noise.
 *   always-best always the model of the highest true quality, on the same requests and tokens.
 *   Day-0       share of the first 500 sessions served by the new model that has only a strong
 *               benchmark prior (true quality weak).
 *   violation   (a) the router served a candidate its own decision lists as excluded (a
 *               fall-back to the default because everything was excluded is counted apart: the
 *               router declares it, fell_back_to_default);
 *               (b) max_regression: a non-default model served whose TRUE quality is more than
 *               max_regression points below the default's TRUE quality, while the arm had at
 *               least auto_n of its own observation weight (the estimate had enough data);
 *               (c) max_cost_increase: a served model whose TRUE expected cost per request is
 *               over the limit (the route's rolling cost as the router measured it, times
 *               1 + max_cost_increase/100) by more than 2%, the slack for the sampling noise of
 *               a cost measured from usage.
 *   moved       sessions after the degradation until the degraded model serves under 20% of a
 *               rolling window of the last 100 sessions (the window's lag is included); n/a
 *               for a policy that served it under 20% already before.
 * Targets are judged on the mean over seeds, except "moved", judged on the worst seed. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include "fl_router.h"
#include "fl_json.h"

#define ORG "org"
#define ROUTE "auto"
#define MAXM 8
#define DAY0_SESSIONS 500
#define LAST_SESSIONS 1000
#define MOVE_WINDOW 100
#define MOVE_SHARE 0.20
#define MIN_PRICED 5             /* as in fl_router.c: under this the price line is used */
#define IN_TOKENS 750.0          /* mean tokens per request: 3 in for 1 out, the router's blend */
#define OUT_TOKENS 250.0

typedef enum { P_ROUTER, P_STATIC, P_RANDOM, P_EGREEDY, P_N } policy_kind_e;
static const char *const policy_names[P_N] = { "router", "static", "random", "eps-greedy" };

typedef struct model_spec_t {
    const char *id;
    double q;                    /* true mean NPS / 10 */
    double in, out;              /* USD per million tokens */
    double latency_ms;
} model_spec_t;

typedef struct world_t {
    const char *name;
    int n;
    model_spec_t m[MAXM];        /* m[0] is the route's default */
    int newcomer;                /* the model with a strong benchmark prior; -1 none */
    double bench_q, bench_w;
    int degrade_model, degrade_at; /* degrade_model < 0: no degradation */
    double degrade_q;
    fl_limits_t limits;
} world_t;

typedef struct options_t {
    int sessions, seeds, refresh;
    int bernoulli;               /* NPS 0 or 10 */
    double usage_decay;          /* per session: the rolling window of usage */
    double epsilon;
    double max_regression, max_cost_increase, confidence_threshold; /* the constrained runs */
    fl_policy_t pol;
} options_t;

/* What the gateway's database holds for one (org, route, model), and the baseline's counts. */
typedef struct arm_t {
    fl_quality_t own;
    fl_usage_stat_t usage;
    double eg_n, eg_s;           /* epsilon-greedy: undiscounted mean reward */
} arm_t;

typedef struct result_t {
    double regret, util_last, oracle_last, util_all, oracle_all;
    double cost, cost_best, q_sum, q_best_sum, requests;
    double day0, moved;          /* moved: -1 never within the run, -2 not applicable */
    double v_excluded, v_quality, v_cost, fallbacks;
    double served[MAXM], served_last[MAXM]; /* requests per model: all, last 1,000 sessions */
    double v_by[MAXM];           /* violations per served model */
} result_t;

typedef struct run_t {
    const world_t *w;
    const options_t *o;
    policy_kind_e kind;
    apr_pool_t *pool, *snap_pool, *req_pool;
    fl_snapshot_t *snap;
    fl_sticky_t *sticky;
    fl_provider_t provider;
    fl_model_t models[MAXM];
    fl_route_t route;
    arm_t arms[MAXM];
    fl_rng_t seeds, choice, sess, nps;
    double q[MAXM];              /* true quality now (degradation changes it) */
    double cost[MAXM];           /* true expected cost per request */
    double max_cost;
    int best_q;                  /* highest true quality at the start: "always-best" */
} run_t;

/* --- the world ------------------------------------------------------------------------------ */

static double expected_cost(const model_spec_t *m)
{
    return (IN_TOKENS * m->in + OUT_TOKENS * m->out) / 1e6;
}

static double utility(const run_t *r, int i)
{
    return r->q[i] - r->o->pol.cost_weight * r->cost[i] / r->max_cost;
}

static int oracle(const run_t *r)
{
    int i, best = 0;
    for (i = 1; i < r->w->n; i++) {
        if (utility(r, i) > utility(r, best)) best = i;
    }
    return best;
}

static int binomial10(fl_rng_t *g, double p)
{
    int i, k = 0;
    for (i = 0; i < 10; i++) k += fl_rng_uniform(g) < p;
    return k;
}

/* --- the gateway's side: snapshot refresh, routing, learning ------------------------------- */

static void rebuild_snapshot(run_t *r)
{
    apr_pool_t *np;
    fl_snapshot_t *s;
    int i;
    apr_pool_create(&np, r->pool);
    s = fl_snapshot_create(np, &r->o->pol);
    for (i = 0; i < r->w->n; i++) {
        const arm_t *a = &r->arms[i];
        if (a->own.n > 0) fl_snapshot_set_quality(s, ORG, ROUTE, r->models[i].id, &a->own);
        if (a->usage.requests > 0) fl_snapshot_add_usage(s, ORG, ROUTE, r->models[i].id, &a->usage);
    }
    if (r->w->newcomer >= 0) {
        fl_snapshot_set_benchmark(s, r->models[r->w->newcomer].id, r->w->bench_q, r->w->bench_w);
    }
    fl_snapshot_finish(s);
    /* the previous snapshot goes once the new one is in place, as the gateway swaps them */
    if (r->snap_pool) apr_pool_destroy(r->snap_pool);
    r->snap_pool = np;
    r->snap = s;
}

static int model_index(const run_t *r, const fl_model_t *m)
{
    int i;
    for (i = 0; i < r->w->n; i++) {
        if (m == &r->models[i]) return i;
    }
    return -1;
}

static int listed(const json_t *excluded, const char *id)
{
    const char *key;
    json_t *list, *v;
    size_t i;
    json_object_foreach((json_t *)excluded, key, list) {
        json_array_foreach(list, i, v) {
            if (!strcmp(json_string_value(v), id)) return 1;
        }
    }
    return 0;
}

/* Checks a served decision against the definitions of a violation (see the top). */
static void check_violations(run_t *r, const fl_decision_t *d, int chosen, result_t *res)
{
    const fl_limits_t *l = &r->w->limits;
    json_t *cons = fl_json_pool_own(d->alternatives->pool, json_loads(d->constraints, 0, NULL));
    int fell_back = json_is_true(json_object_get(cons, "fell_back_to_default"));
    double rolling = json_real_value(json_object_get(cons, "rolling_cost_per_request_usd"));
    const fl_quality_t *own = fl_snapshot_own(r->snap, ORG, ROUTE, r->models[chosen].id);
    if (fell_back) {
        res->fallbacks++;
        return;
    }
    if (listed(json_object_get(cons, "excluded"), r->models[chosen].id)) {
        res->v_excluded++;
        res->v_by[chosen]++;
    }
    else if (l->max_regression >= 0 && chosen != 0 && own && own->n >= r->o->pol.auto_n
        && r->q[chosen] < r->q[0] - l->max_regression / 100.0) {
        res->v_quality++;
        res->v_by[chosen]++;
    }
    else if (l->max_cost_increase >= 0
        && r->cost[chosen] > rolling * (1.0 + l->max_cost_increase / 100.0) * 1.02) {
        res->v_cost++;
        res->v_by[chosen]++;
    }
}

static int route_request(run_t *r, const char *session, apr_time_t now, result_t *res)
{
    fl_route_ctx_t ctx;
    fl_decision_t *d;
    fl_rng_t rng;
    int chosen;
    memset(&ctx, 0, sizeof(ctx));
    apr_pool_clear(r->req_pool);
    d = fl_decision_create(r->req_pool, now);
    ctx.snap = r->snap;
    ctx.policy = &r->o->pol;
    ctx.org_id = ORG;
    ctx.limits = r->w->limits;
    ctx.seed = fl_rng_next(&r->seeds);
    fl_rng_seed(&rng, ctx.seed);
    ctx.rng = &rng;
    ctx.sticky = fl_sticky_get(r->sticky, ORG, ROUTE, session, now);
    fl_router_choose(&r->route, &ctx, d);
    fl_sticky_put(r->sticky, ORG, ROUTE, session, d->chosen->id, now);
    chosen = model_index(r, d->chosen);
    if (chosen < 0) {
        fprintf(stderr, "sim: the router chose a model outside the route\n");
        exit(2);
    }
    check_violations(r, d, chosen, res);
    return chosen;
}

/* --- the baselines (the comparison, so written here) --------------------------------------- */

static double est_cost(const run_t *r, int i)
{
    const fl_usage_stat_t *u = &r->arms[i].usage;
    return u->priced >= MIN_PRICED ? u->cost_usd / u->priced : r->cost[i];
}

static int baseline_choose(run_t *r)
{
    double max_cost = 0, best_v = 0;
    int i, best = -1, n = r->w->n;
    switch (r->kind) {
    case P_STATIC:
        return 0;
    case P_RANDOM:
        return (int)(fl_rng_uniform(&r->choice) * n);
    default:
        break;
    }
    if (fl_rng_uniform(&r->choice) < r->o->epsilon) return (int)(fl_rng_uniform(&r->choice) * n);
    for (i = 0; i < n; i++) {
        if (r->arms[i].eg_n <= 0) return i;      /* every arm once before any greed */
        if (est_cost(r, i) > max_cost) max_cost = est_cost(r, i);
    }
    for (i = 0; i < n; i++) {
        double v = r->arms[i].eg_s / r->arms[i].eg_n
                   - r->o->pol.cost_weight * (max_cost > 0 ? est_cost(r, i) / max_cost : 0);
        if (best < 0 || v > best_v) best = i, best_v = v;
    }
    return best;
}

/* --- one run: a world, a policy, a seed ---------------------------------------------------- */

static void run_init(run_t *r, const world_t *w, const options_t *o, policy_kind_e kind,
                     apr_uint64_t seed, apr_pool_t *parent)
{
    int i;
    memset(r, 0, sizeof(*r));
    r->w = w;
    r->o = o;
    r->kind = kind;
    apr_pool_create(&r->pool, parent);
    apr_pool_create(&r->req_pool, r->pool);
    if (fl_sticky_create(&r->sticky, r->pool, 4096, apr_time_from_sec(1800)) != APR_SUCCESS) {
        fprintf(stderr, "sim: fl_sticky_create failed\n");
        exit(2);
    }
    r->provider.name = "sim";
    r->provider.type = "openai";
    r->route.name = ROUTE;
    r->route.explore = -1;
    r->route.candidates = apr_array_make(r->pool, w->n, sizeof(fl_model_t *));
    for (i = 0; i < w->n; i++) {
        fl_model_t *m = &r->models[i];
        m->id = w->m[i].id;
        m->name = strchr(m->id, '/') ? strchr(m->id, '/') + 1 : m->id;
        m->provider = &r->provider;
        m->priced = 1;
        m->input_per_m = w->m[i].in;
        m->output_per_m = w->m[i].out;
        m->cached_input_per_m = w->m[i].in;
        m->breaker_slot = -1;
        APR_ARRAY_PUSH(r->route.candidates, fl_model_t *) = m;
        r->q[i] = w->m[i].q;
        r->cost[i] = expected_cost(&w->m[i]);
        if (r->cost[i] > r->max_cost) r->max_cost = r->cost[i];
        if (w->m[i].q > w->m[r->best_q].q) r->best_q = i;
    }
    /* separate streams, so every policy meets the same sessions, tokens and NPS luck (common
     * random numbers): differences in the figures come from the choices */
    fl_rng_seed(&r->sess, seed * 4 + 0);
    fl_rng_seed(&r->nps, seed * 4 + 1);
    fl_rng_seed(&r->seeds, seed * 4 + 2);
    fl_rng_seed(&r->choice, seed * 4 + 3);
    rebuild_snapshot(r);
}

static void run(const world_t *w, const options_t *o, policy_kind_e kind, apr_uint64_t seed,
                apr_pool_t *parent, result_t *res)
{
    run_t r;
    int s, i, window[MOVE_WINDOW], on_degraded = 0, day0 = 0;
    apr_time_t now = apr_time_from_sec(1700000000);
    run_init(&r, w, o, kind, seed, parent);
    memset(res, 0, sizeof(*res));
    res->moved = -1;
    memset(window, 0, sizeof(window));
    for (s = 0; s < o->sessions; s++) {
        char session[32];
        int k = 1 + (int)(fl_rng_uniform(&r.sess) * 5), used[5], first = -1;
        double q_mean = 0, u_mean = 0, reward, u_oracle;
        if (w->degrade_model >= 0 && s == w->degrade_at) r.q[w->degrade_model] = w->degrade_q;
        u_oracle = utility(&r, oracle(&r));
        apr_snprintf(session, sizeof(session), "sess-%" APR_UINT64_T_FMT "-%d", seed, s);
        for (i = 0; i < k; i++) {
            double tin = IN_TOKENS * (0.5 + fl_rng_uniform(&r.sess));
            double tout = OUT_TOKENS * (0.5 + fl_rng_uniform(&r.sess));
            double lat = 0.7 + 0.6 * fl_rng_uniform(&r.sess);
            int m;
            fl_usage_stat_t u;
            now += apr_time_from_sec(2);
            if (kind == P_ROUTER) m = route_request(&r, session, now, res);
            else m = i == 0 ? baseline_choose(&r) : used[0];
            used[i] = m;
            if (i == 0) first = m;
            res->served[m]++;
            if (s >= o->sessions - LAST_SESSIONS) res->served_last[m]++;
            u.requests = 1;
            u.priced = 1;
            u.cost_usd = (tin * w->m[m].in + tout * w->m[m].out) / 1e6;
            u.latency_ms = w->m[m].latency_ms * lat;
            u.tokens = tin + tout;
            r.arms[m].usage.requests += u.requests;
            r.arms[m].usage.priced += u.priced;
            r.arms[m].usage.cost_usd += u.cost_usd;
            r.arms[m].usage.latency_ms += u.latency_ms;
            r.arms[m].usage.tokens += u.tokens;
            res->cost += u.cost_usd;
            res->cost_best += (tin * w->m[r.best_q].in + tout * w->m[r.best_q].out) / 1e6;
            res->q_sum += r.q[m];
            res->q_best_sum += r.q[r.best_q];
            res->requests++;
            q_mean += r.q[m] / k;
            u_mean += utility(&r, m) / k;
        }
        reward = (o->bernoulli ? 10 * (fl_rng_uniform(&r.nps) < q_mean)
                               : binomial10(&r.nps, q_mean)) / 10.0;
        for (i = 0; i < k; i++) {
            int j, times = 0;
            r.arms[used[i]].eg_n += 1.0 / k;
            r.arms[used[i]].eg_s += reward / k;
            /* one observation per model, of weight (its requests) / k, as the gateway credits a
             * session (floopy_feedback.c groups its decisions by model): k observations of 1/k
             * with one reward would pass for k independent outcomes */
            for (j = 0; j < i && used[j] != used[i]; j++);
            if (j < i) continue;
            for (j = i; j < k; j++) times += used[j] == used[i];
            fl_quality_observe(&r.arms[used[i]].own, &o->pol, (double)times / k, reward);
        }
        /* the rolling window of usage, as decayed sums */
        for (i = 0; i < w->n; i++) {
            fl_usage_stat_t *u = &r.arms[i].usage;
            u->requests *= o->usage_decay;
            u->priced *= o->usage_decay;
            u->cost_usd *= o->usage_decay;
            u->latency_ms *= o->usage_decay;
            u->tokens *= o->usage_decay;
        }
        res->regret += u_oracle - u_mean;
        res->util_all += u_mean;
        res->oracle_all += u_oracle;
        if (s >= o->sessions - LAST_SESSIONS) {
            res->util_last += u_mean;
            res->oracle_last += u_oracle;
        }
        if (s < DAY0_SESSIONS && first == w->newcomer) day0++;
        if (w->degrade_model >= 0) {
            /* a policy that hardly used the model before has nothing to leave */
            if (s == w->degrade_at && on_degraded < MOVE_SHARE * MOVE_WINDOW) res->moved = -2;
            on_degraded += (first == w->degrade_model) - window[s % MOVE_WINDOW];
            window[s % MOVE_WINDOW] = first == w->degrade_model;
            if (s >= w->degrade_at && res->moved == -1
                && on_degraded < MOVE_SHARE * MOVE_WINDOW) {
                res->moved = s - w->degrade_at + 1;
            }
        }
        if (kind == P_ROUTER && (s + 1) % o->refresh == 0) rebuild_snapshot(&r);
    }
    res->day0 = (double)day0 / (o->sessions < DAY0_SESSIONS ? o->sessions : DAY0_SESSIONS);
    apr_pool_destroy(r.pool);
}

/* --- scenarios and report ------------------------------------------------------------------ */

/* The main world. The default is the best and dearest; acme/small is nearly as good at a
 * fourteenth of the price (the oracle's pick); new/shiny has a benchmark prior of 0.95 but a
 * true quality of 0.45. */
static void main_world(world_t *w)
{
    static const model_spec_t m[] = {
        { "acme/big",    0.86, 10.0, 30.0, 2500 },
        { "acme/mid",    0.79,  1.0,  3.0,  900 },
        { "acme/small",  0.83,  0.6,  2.4,  600 },
        { "acme/tiny",   0.55,  0.1,  0.4,  300 },
        { "beta/large",  0.80,  5.0, 15.0, 1800 },
        { "new/shiny",   0.45,  2.0,  8.0, 1200 },
    };
    memset(w, 0, sizeof(*w));
    w->name = "main";
    w->n = (int)(sizeof(m) / sizeof(m[0]));
    memcpy(w->m, m, sizeof(m));
    w->newcomer = 5;
    w->bench_q = 0.95;
    w->bench_w = 1000;           /* capped by the policy's bench_cap */
    w->degrade_model = -1;
    fl_limits_none(&w->limits);
}

typedef struct summary_t {
    result_t mean;               /* over the seeds */
    double share_last, share_all, cost_ratio, q_ratio;
    /* the seed that did worst, per figure */
    double worst_share_last, worst_cost_ratio, worst_q_ratio, worst_moved, worst_violations;
    int moved_na;                /* seeds where the policy never used the degraded model */
} summary_t;

static void summarise(const world_t *w, const options_t *o, policy_kind_e kind,
                      apr_pool_t *p, summary_t *sm)
{
    int sd, i;
    memset(sm, 0, sizeof(*sm));
    sm->worst_share_last = 1e9;
    sm->worst_q_ratio = 1e9;
    for (sd = 0; sd < o->seeds; sd++) {
        result_t r;
        double share, cr, qr;
        run(w, o, kind, (apr_uint64_t)(sd + 1), p, &r);
#define ADD(f) sm->mean.f += r.f / o->seeds
        ADD(regret); ADD(util_last); ADD(oracle_last); ADD(util_all); ADD(oracle_all);
        ADD(cost); ADD(cost_best); ADD(q_sum); ADD(q_best_sum); ADD(requests); ADD(day0);
        ADD(v_excluded); ADD(v_quality); ADD(v_cost); ADD(fallbacks);
        for (i = 0; i < w->n; i++) {
            ADD(served[i]); ADD(served_last[i]); ADD(v_by[i]);
        }
#undef ADD
        share = r.util_last / r.oracle_last;
        cr = r.cost / r.cost_best;
        qr = r.q_sum / r.q_best_sum;
        if (share < sm->worst_share_last) sm->worst_share_last = share;
        if (cr > sm->worst_cost_ratio) sm->worst_cost_ratio = cr;
        if (qr < sm->worst_q_ratio) sm->worst_q_ratio = qr;
        if (w->degrade_model >= 0 && r.moved == -2) {
            sm->moved_na++;
        }
        else if (w->degrade_model >= 0) {
            /* never moving counts as the whole remaining run */
            double mv = r.moved >= 0 ? r.moved : o->sessions - w->degrade_at;
            sm->mean.moved += mv / o->seeds;
            if (mv > sm->worst_moved) sm->worst_moved = mv;
        }
        if (r.v_excluded + r.v_quality + r.v_cost > sm->worst_violations) {
            sm->worst_violations = r.v_excluded + r.v_quality + r.v_cost;
        }
    }
    sm->share_last = sm->mean.util_last / sm->mean.oracle_last;
    sm->share_all = sm->mean.util_all / sm->mean.oracle_all;
    sm->cost_ratio = sm->mean.cost / sm->mean.cost_best;
    sm->q_ratio = sm->mean.q_sum / sm->mean.q_best_sum;
}

static int failures;

static void target(const char *what, int ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void target(const char *what, int ok, const char *fmt, ...)
{
    va_list ap;
    printf("  %-4s %s: ", ok ? "PASS" : "MISS", what);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    failures += !ok;
}

static void header(const world_t *w, const options_t *o)
{
    int i;
    printf("\n== scenario: %s (%d sessions x %d seeds, snapshot every %d sessions, NPS %s)\n",
           w->name, o->sessions, o->seeds, o->refresh, o->bernoulli ? "0/10" : "Binomial(10,q)");
    printf("   models (default first):");
    for (i = 0; i < w->n; i++) {
        printf(" %s q=%.2f $%.5f/req%s", w->m[i].id, w->m[i].q, expected_cost(&w->m[i]),
               i == w->newcomer ? " [bench 0.95]" : "");
        if (i + 1 < w->n) printf(",");
    }
    printf("\n");
    if (w->limits.max_regression >= 0 || w->limits.max_cost_increase >= 0
        || w->limits.confidence_threshold >= 0) {
        printf("   limits: max_regression=%g max_cost_increase=%g confidence_threshold=%g"
               " (negative: not set)\n", w->limits.max_regression, w->limits.max_cost_increase,
               w->limits.confidence_threshold);
    }
    if (w->degrade_model >= 0) {
        printf("   degradation: %s q %.2f -> %.2f at session %d\n", w->m[w->degrade_model].id,
               w->m[w->degrade_model].q, w->degrade_q, w->degrade_at);
    }
    printf("   %-10s %9s %10s %10s %9s %9s %7s %11s %9s %8s\n", "policy", "regret",
           "util-last", "util-all", "cost/best", "q/best", "day0", "violations", "fallback",
           "moved");
}

static void row(const world_t *w, policy_kind_e kind, const summary_t *sm)
{
    char moved[32] = "-", viol[48] = "-";
    /* the baselines know no limits: only the router's decisions are checked */
    if (kind == P_ROUTER) {
        apr_snprintf(viol, sizeof(viol), "%.1f/%.1f/%.1f", sm->mean.v_excluded,
                     sm->mean.v_quality, sm->mean.v_cost);
    }
    if (w->degrade_model >= 0 && sm->moved_na) apr_snprintf(moved, sizeof(moved), "n/a");
    else if (w->degrade_model >= 0) apr_snprintf(moved, sizeof(moved), "%.0f", sm->mean.moved);
    printf("   %-10s %9.1f %9.1f%% %9.1f%% %8.1f%% %8.1f%% %6.1f%% %11s %9.1f %8s\n",
           policy_names[kind], sm->mean.regret, 100 * sm->share_last, 100 * sm->share_all,
           100 * sm->cost_ratio, 100 * sm->q_ratio, 100 * sm->mean.day0, viol,
           sm->mean.fallbacks, moved);
}

/* Where the router's traffic went: the figures above are explained by it. */
static void traffic(const world_t *w, const summary_t *sm)
{
    double all = 0, last = 0;
    int i;
    for (i = 0; i < w->n; i++) {
        all += sm->mean.served[i];
        last += sm->mean.served_last[i];
    }
    printf("   router's requests per model, all / last %d sessions (violations):", LAST_SESSIONS);
    for (i = 0; i < w->n; i++) {
        printf(" %s %.1f%%/%.1f%%", w->m[i].id, 100 * sm->mean.served[i] / all,
               100 * sm->mean.served_last[i] / last);
        if (sm->mean.v_by[i] > 0) printf(" (%.1f)", sm->mean.v_by[i]);
        if (i + 1 < w->n) printf(",");
    }
    printf("\n");
}

static void scenario(const world_t *w, const options_t *o, apr_pool_t *p, summary_t *router)
{
    policy_kind_e k;
    header(w, o);
    for (k = 0; k < P_N; k++) {
        summary_t sm;
        summarise(w, o, k, p, &sm);
        row(w, k, &sm);
        if (k == P_ROUTER) *router = sm;
    }
    traffic(w, router);
}

/* Zero violations is also what a router that never leaves the default scores: say so. */
static void stuck(const world_t *w, const summary_t *sm)
{
    double all = 0;
    int i;
    for (i = 0; i < w->n; i++) all += sm->mean.served[i];
    if (sm->mean.served[0] > 0.95 * all) {
        printf("  WARN the router served the default %.1f%% of requests (utility %.1f%% of the"
               " oracle's over the last %d sessions): these limits keep it from ever learning"
               " the alternatives, so zero violations costs all of the gain\n",
               100 * sm->mean.served[0] / all, 100 * sm->share_last, LAST_SESSIONS);
    }
}

static int set_option(options_t *o, const char *arg)
{
    const char *eq = strchr(arg, '=');
    char key[64];
    double v;
    if (!eq || eq - arg >= (int)sizeof(key)) return 0;
    memcpy(key, arg, eq - arg);
    key[eq - arg] = '\0';
    if (!strcmp(key, "nps")) {
        o->bernoulli = !strcmp(eq + 1, "bernoulli");
        return o->bernoulli || !strcmp(eq + 1, "binomial");
    }
    v = atof(eq + 1);
#define OPT(name, field) if (!strcmp(key, name)) { field = v; return 1; }
    OPT("sessions", o->sessions);
    OPT("seeds", o->seeds);
    OPT("refresh", o->refresh);
    OPT("usage_decay", o->usage_decay);
    OPT("epsilon", o->epsilon);
    OPT("max_regression", o->max_regression);
    OPT("max_cost_increase", o->max_cost_increase);
    OPT("confidence_threshold", o->confidence_threshold);
    OPT("discount", o->pol.discount);
    OPT("cost_weight", o->pol.cost_weight);
    OPT("explore", o->pol.explore);
    OPT("learning_n", o->pol.learning_n);
    OPT("auto_n", o->pol.auto_n);
    OPT("bench_cap", o->pol.bench_cap);
    OPT("conf_day0_cap", o->pol.conf_day0_cap);
    OPT("conf_ceiling", o->pol.conf_ceiling);
    OPT("conf_tau", o->pol.conf_tau);
    OPT("conf_prior_tau", o->pol.conf_prior_tau);
    OPT("regression_z", o->pol.regression_z);
#undef OPT
    return 0;
}

int main(int argc, char **argv)
{
    apr_pool_t *p;
    options_t o;
    world_t w;
    summary_t sm;
    int i;

    apr_initialize();
    atexit(apr_terminate);
    apr_pool_create(&p, NULL);
    memset(&o, 0, sizeof(o));
    o.sessions = 5000;
    o.seeds = 5;
    o.refresh = 5;
    o.usage_decay = 0.999;       /* about 1,000 sessions of usage: the gateway keeps 7 days */
    o.epsilon = 0.1;
    o.max_regression = 5;
    o.max_cost_increase = 50;
    o.confidence_threshold = 0.5;
    fl_policy_defaults(&o.pol);
    for (i = 1; i < argc; i++) {
        if (!set_option(&o, argv[i])) {
            fprintf(stderr, "usage: %s [sessions=N seeds=N refresh=N nps=binomial|bernoulli "
                    "usage_decay=X epsilon=X <fl_policy_t field>=X ...]\n", argv[0]);
            return 2;
        }
    }
    if (o.sessions < LAST_SESSIONS || o.seeds < 1 || o.refresh < 1) {
        fprintf(stderr, "sim: sessions >= %d, seeds >= 1, refresh >= 1\n", LAST_SESSIONS);
        return 2;
    }
    printf("policy: discount=%g cost_weight=%g explore=%g learning_n=%g auto_n=%g bench_cap=%g"
           " conf_day0_cap=%g conf_tau=%g regression_z=%g\n", o.pol.discount, o.pol.cost_weight,
           o.pol.explore, o.pol.learning_n, o.pol.auto_n, o.pol.bench_cap, o.pol.conf_day0_cap,
           o.pol.conf_tau, o.pol.regression_z);
    printf("columns: regret = cumulative, utility units; util-last / util-all = share of the"
           " oracle's utility over the last %d / all sessions; cost/best, q/best = cost and"
           " quality against always-best (%s); day0 = share of the first %d sessions on the new"
           " model; violations = excluded/quality/cost; fallback = decisions that fell back to"
           " the default; moved = sessions to leave a degraded model. Means over seeds.\n",
           LAST_SESSIONS, "acme/big", DAY0_SESSIONS);

    main_world(&w);
    scenario(&w, &o, p, &sm);
    printf("  targets (router, mean over seeds; worst seed in brackets):\n");
    target("utility over the last 1,000 sessions >= 95% of the oracle's",
           sm.share_last >= 0.95, "%.1f%% [%.1f%%]", 100 * sm.share_last,
           100 * sm.worst_share_last);
    target("cost <= 60% of always-best at >= 95% of its quality",
           sm.cost_ratio <= 0.60 && sm.q_ratio >= 0.95,
           "cost %.1f%% [%.1f%%], quality %.1f%% [%.1f%%]", 100 * sm.cost_ratio,
           100 * sm.worst_cost_ratio, 100 * sm.q_ratio, 100 * sm.worst_q_ratio);
    printf("  (Day-0: the new model took %.1f%% of the first %d sessions; explore share %g)\n",
           100 * sm.mean.day0, DAY0_SESSIONS, o.pol.explore);

    main_world(&w);
    w.name = "constrained";
    w.limits.max_regression = o.max_regression;
    w.limits.max_cost_increase = o.max_cost_increase;
    scenario(&w, &o, p, &sm);
    target("zero constraint violations (max_regression and max_cost_increase)",
           sm.mean.v_excluded + sm.mean.v_quality + sm.mean.v_cost == 0,
           "%.1f per run [worst seed %.0f]", sm.mean.v_excluded + sm.mean.v_quality
           + sm.mean.v_cost, sm.worst_violations);
    stuck(&w, &sm);

    main_world(&w);
    w.name = "constrained + confidence_threshold";
    w.limits.max_regression = o.max_regression;
    w.limits.max_cost_increase = o.max_cost_increase;
    w.limits.confidence_threshold = o.confidence_threshold;
    scenario(&w, &o, p, &sm);
    target("zero constraint violations (and confidence_threshold)",
           sm.mean.v_excluded + sm.mean.v_quality + sm.mean.v_cost == 0,
           "%.1f per run [worst seed %.0f]", sm.mean.v_excluded + sm.mean.v_quality
           + sm.mean.v_cost, sm.worst_violations);
    stuck(&w, &sm);

    main_world(&w);
    w.name = "degradation";
    w.degrade_model = 2;         /* acme/small: the oracle's pick, so the router's main model */
    w.degrade_at = o.sessions / 2;
    w.degrade_q = 0.40;
    scenario(&w, &o, p, &sm);
    target("the router leaves the degraded model within 500 sessions",
           sm.moved_na == 0 && sm.worst_moved <= 500,
           "%.0f sessions [worst seed %.0f]", sm.mean.moved, sm.worst_moved);

    printf("\n%s: %d target(s) missed\n", failures ? "FAIL" : "OK", failures);
    apr_pool_destroy(p);
    return failures ? 1 : 0;
}
