/* The learning router: estimates, Day-0 rules, confidence, constraints, replay by seed,
 * stickiness, pooling. */
#include <math.h>
#include <apr_strings.h>
#include "fl_test.h"
#include "fl_catalog.h"
#include "fl_router.h"
#include "fl_json.h"

typedef struct world_t {
    apr_pool_t *p;
    fl_catalog_t *cat;
    const fl_route_t *route;
    fl_policy_t pol;
} world_t;

/* default "w/big" (dear), then "w/mid", "w/small" (cheap) */
static void world(world_t *w, apr_pool_t *p)
{
    const char *pv[] = { "type=openai", "base_url=http://127.0.0.1:9/v1" };
    const char *big[] = { "input=10", "output=30" }, *mid[] = { "input=1", "output=3" };
    const char *small[] = { "input=0.1", "output=0.3" };
    const char *route[] = { "w/big", "w/mid", "w/small" };
    w->p = p;
    w->cat = fl_catalog_create(p);
    CHECK(fl_catalog_add_provider(w->cat, p, "w", pv, 2) == NULL);
    CHECK(fl_catalog_add_model(w->cat, p, "w/big", big, 2) == NULL);
    CHECK(fl_catalog_add_model(w->cat, p, "w/mid", mid, 2) == NULL);
    CHECK(fl_catalog_add_model(w->cat, p, "w/small", small, 2) == NULL);
    CHECK(fl_catalog_add_route(w->cat, p, "auto", route, 3) == NULL);
    w->route = apr_hash_get(w->cat->routes, "auto", APR_HASH_KEY_STRING);
    fl_policy_defaults(&w->pol);
}

static fl_decision_t *decide(world_t *w, const fl_snapshot_t *snap, const char *org,
                             apr_uint64_t seed, const fl_limits_t *lim, apr_uint64_t sticky)
{
    fl_decision_t *d = fl_decision_create(w->p, apr_time_now());
    fl_rng_t rng;
    fl_route_ctx_t ctx = { 0 };
    fl_rng_seed(&rng, seed);
    ctx.snap = snap;
    ctx.policy = &w->pol;
    ctx.org_id = org;
    ctx.rng = &rng;
    ctx.seed = seed;
    ctx.sticky = sticky;
    if (lim) ctx.limits = *lim; else fl_limits_none(&ctx.limits);
    fl_router_choose(w->route, &ctx, d);
    return d;
}

/* An arm's own statistics as n unit-weight outcomes summing to sum, spread as session NPS
 * typically is (standard deviation 0.12, less where the mean leaves no room): what
 * fl_quality_observe sums, without the fading. */
static void own_spread(fl_snapshot_t *s, const char *org, const char *model, double n, double sum,
                       double sd)
{
    double m = sum / n, v = sd * sd < m * (1 - m) ? sd * sd : m * (1 - m);
    fl_quality_t q = { n, sum, n * (m * m + v), n };
    fl_snapshot_set_quality(s, org, "auto", model, &q);
}

static void own(fl_snapshot_t *s, const char *org, const char *model, double n, double sum)
{
    own_spread(s, org, model, n, sum, 0.12);
}

static void quality(apr_pool_t *p)
{
    fl_policy_t pol;
    fl_quality_t q = { 0, 0, 0, 0 };
    int i;
    fl_policy_defaults(&pol);
    for (i = 0; i < 1000; i++) fl_quality_observe(&q, &pol, 1, 0.9);
    /* discounting caps the memory at 1 / (1 - discount) observations */
    CHECK(q.n > 190 && q.n < 200.01);
    CHECK(fabs(q.s / q.n - 0.9) < 1e-9);
    for (i = 0; i < 300; i++) fl_quality_observe(&q, &pol, 1, 0.2);
    CHECK(q.s / q.n < 0.4);             /* a degraded model's estimate follows within ~300 */
    fl_quality_revise(&q, 1, 0.2, 1.0);
    CHECK(q.s <= q.n);
    fl_quality_observe(&q, &pol, 1, 7);  /* rewards are clamped to 0..1 */
    CHECK(q.s <= q.n);
    CHECK_STR(fl_phase_name(fl_phase_of(&pol, 0)), "day0");
    CHECK_STR(fl_phase_name(fl_phase_of(&pol, 3)), "learning");
    CHECK_STR(fl_phase_name(fl_phase_of(&pol, 30)), "auto");
    (void)p;
}

/* The spread behind the max_regression bound: ss and n2 follow n and s through fading and
 * revision, and the bound reads the evidence, not the weights' scale. */
static void spread(apr_pool_t *p)
{
    fl_policy_t pol;
    fl_quality_t q = { 0, 0, 0, 0 }, a = { 0, 0, 0, 0 }, b = { 0, 0, 0, 0 };
    double g, se;
    int i;
    fl_policy_defaults(&pol);
    g = pol.discount;
    fl_quality_observe(&q, &pol, 1, 0.8);
    fl_quality_observe(&q, &pol, 0.5, 0.4);
    /* the first observation faded by discount^0.5 when the second came; its square by discount */
    CHECK(fabs(q.n - (sqrt(g) + 0.5)) < 1e-12);
    CHECK(fabs(q.s - (0.8 * sqrt(g) + 0.2)) < 1e-12);
    CHECK(fabs(q.ss - (0.64 * sqrt(g) + 0.08)) < 1e-12);
    CHECK(fabs(q.n2 - (g + 0.25)) < 1e-12);
    a = q;
    fl_quality_revise(&q, 0.5, 0.4, 1.0);          /* the 0.4 becomes 1.0: no new weight */
    CHECK(fabs(q.s - (a.s + 0.3)) < 1e-12);
    CHECK(fabs(q.ss - (a.ss + 0.5 * (1.0 - 0.16))) < 1e-12);
    CHECK(q.n == a.n && q.n2 == a.n2);
    fl_quality_revise(&q, 5, 1.0, 0.0);            /* an overshooting revision stays in range */
    CHECK(q.s >= 0 && q.ss >= 0 && q.ss <= q.s);

    /* the discount's steady state: n is about 200, the effective count (1 + g) / (1 - g) ~ 399 */
    memset(&q, 0, sizeof(q));
    for (i = 0; i < 5000; i++) fl_quality_observe(&q, &pol, 1, i % 2 ? 0.9 : 0.7);
    CHECK(fabs(q.n * q.n / q.n2 - (1 + g) / (1 - g)) < 0.5);

    /* halving every weight halves n but not the evidence: with n2 the standard error stays the
     * same (without fading, so the two differ only in the weights' scale) */
    memset(&q, 0, sizeof(q));
    memset(&a, 0, sizeof(a));
    pol.discount = 1;
    for (i = 0; i < 60; i++) {
        double r = (i % 5) / 4.0 * 0.4 + 0.6;   /* 0.6 .. 1.0: mean 0.8, sd 0.1414 */
        fl_quality_observe(&q, &pol, 1, r);
        fl_quality_observe(&a, &pol, 0.5, r);
    }
    CHECK(fabs(a.n - q.n / 2) < 1e-9);
    CHECK(fabs(fl_quality_se(&a) - fl_quality_se(&q)) < 1e-9);
    /* about sd / sqrt(n), a little wider for the prior spread pooled in */
    se = fl_quality_se(&q);
    CHECK(se > sqrt(0.02 / 60) && se < 1.15 * sqrt(0.02 / 60));
    /* four times the evidence, half the standard error (the prior's share shrinks too) */
    for (i = 0; i < 180; i++) fl_quality_observe(&q, &pol, 1, (i % 5) / 4.0 * 0.4 + 0.6);
    CHECK(fl_quality_se(&q) < 0.52 * se);

    /* a run of equal rewards has no observed spread; the error still is not small */
    memset(&q, 0, sizeof(q));
    for (i = 0; i < 3; i++) fl_quality_observe(&q, &pol, 1, 1.0);
    CHECK(fl_quality_se(&q) > 0.08);
    memset(&q, 0, sizeof(q));
    CHECK(fl_quality_se(&q) == 0.5);                       /* nothing known */

    /* a row stored before the spread was kept gets the widest spread its n and s allow */
    b.n = 50;
    b.s = 40;
    fl_quality_stored(&b);
    CHECK(b.ss == 40 && b.n2 == 50);
    b.ss = 1;                    /* below s*s/n: no data can give that */
    fl_quality_stored(&b);
    CHECK(fabs(b.ss - 32) < 1e-9);
    (void)p;
}

static void rng(apr_pool_t *p)
{
    fl_rng_t g, h;
    double sum = 0;
    int i, same = 1;
    fl_rng_seed(&g, 42);
    fl_rng_seed(&h, 42);
    for (i = 0; i < 100; i++) same &= fl_rng_next(&g) == fl_rng_next(&h);
    CHECK(same);
    for (i = 0; i < 20000; i++) sum += fl_rng_beta(&g, 8, 2);
    CHECK(fabs(sum / 20000 - 0.8) < 0.01);
    sum = 0;
    for (i = 0; i < 20000; i++) sum += fl_rng_beta(&g, 0.5, 0.5);
    CHECK(fabs(sum / 20000 - 0.5) < 0.02);
    (void)p;
}

/* The cheap model, as good as the default, takes the traffic once the data say so. */
static void learns(world_t *w)
{
    fl_snapshot_t *s = fl_snapshot_create(w->p, &w->pol);
    int i, small = 0;
    fl_decision_t *d;
    own(s, "o", "w/big", 100, 86);
    own(s, "o", "w/mid", 100, 70);
    own(s, "o", "w/small", 100, 85);
    fl_snapshot_finish(s);
    for (i = 0; i < 200; i++) {
        d = decide(w, s, "o", (apr_uint64_t)i, NULL, 0);
        small += !strcmp(d->chosen->id, "w/small");
    }
    CHECK(small > 180);
    d = decide(w, s, "o", 1, NULL, 0);
    CHECK_STR(d->phase, "auto");
    CHECK(d->confidence > 0.9 && d->confidence <= w->pol.conf_ceiling);
    /* the same seed replays the same choice and scores */
    {
        fl_decision_t *a = decide(w, s, "o", 99, NULL, 0), *b = decide(w, s, "o", 99, NULL, 0);
        CHECK(a->chosen == b->chosen && a->chosen_score == b->chosen_score);
    }
    /* another organisation has none of o's data */
    d = decide(w, s, "other", 1, NULL, 0);
    CHECK_STR(d->phase, "day0");
}

/* A model known only by benchmark numbers: explored at most at the exploration share, and its
 * confidence stays under the Day-0 cap however strong the prior. */
static void day0(world_t *w)
{
    fl_snapshot_t *s = fl_snapshot_create(w->p, &w->pol);
    int i, taken = 0;
    fl_snapshot_set_benchmark(s, "w/small", 0.99, 1000);
    own(s, "a", "w/small", 500, 495);   /* pooled from others */
    own(s, "b", "w/small", 500, 495);
    own(s, "o", "w/big", 10, 6);
    fl_snapshot_finish(s);
    for (i = 0; i < 2000; i++) {
        fl_decision_t *d = decide(w, s, "o", (apr_uint64_t)i + 1000, NULL, 0);
        if (!strcmp(d->chosen->id, "w/small")) {
            taken++;
            CHECK(d->confidence <= w->pol.conf_day0_cap + 1e-12);
            CHECK_STR(d->phase, "day0");
        }
    }
    CHECK(taken > 0 && taken <= 2000 * w->pol.explore * 1.2);
    {
        fl_arm_view_t v;
        fl_snapshot_arm(s, "o", "auto", "w/small", &v);
        CHECK(v.bench.n == w->pol.bench_cap && v.pool.n == w->pol.pool_cap && v.pool_orgs == 2);
        CHECK(fl_arm_confidence(&w->pol, &v) <= w->pol.conf_day0_cap);
        fl_snapshot_arm(s, "a", "auto", "w/small", &v);
        CHECK(v.pool.n == 0);            /* only one other contributor: below pool_min_orgs */
    }
}

static void pooling(world_t *w)
{
    fl_snapshot_t *s = fl_snapshot_create(w->p, &w->pol);
    fl_arm_view_t v;
    own(s, "a", "w/mid", 50, 40);
    own(s, "b", "w/mid", 50, 45);
    own(s, "x", "w/mid", 50, 5);     /* opted out */
    fl_snapshot_opt_out(s, "x");
    fl_snapshot_finish(s);
    fl_snapshot_arm(s, "o", "auto", "w/mid", &v);
    CHECK(v.pool_orgs == 2 && fabs(v.pool.s / v.pool.n - 0.85) < 1e-9); /* x contributes nothing */
    fl_snapshot_arm(s, "x", "auto", "w/mid", &v);
    CHECK(v.pool.n == 0 && v.own.n == 50);                             /* and reads nothing */
    fl_snapshot_arm(s, "a", "auto", "w/mid", &v);
    CHECK(v.pool.n == 0 && v.own.n == 50);  /* a's pool would be b's alone: too few */
    w->pol.pool_min_orgs = 1;
    s = fl_snapshot_create(w->p, &w->pol);
    own(s, "a", "w/mid", 50, 40);
    own(s, "b", "w/mid", 50, 45);
    fl_snapshot_finish(s);
    fl_snapshot_arm(s, "a", "auto", "w/mid", &v);
    CHECK(v.pool_orgs == 1 && fabs(v.pool.s / v.pool.n - 0.9) < 1e-9); /* b's, never a's own */
    fl_policy_defaults(&w->pol);
}

static json_t *constraints(world_t *w, const fl_decision_t *d)
{
    return fl_json_pool_own(w->p, json_loads(d->constraints, 0, NULL));
}

static const char *excluded(const fl_decision_t *d, const char *model)
{
    int i;
    for (i = 0; i < d->alternatives->nelts; i++) {
        const fl_alternative_t *a = &APR_ARRAY_IDX(d->alternatives, i, fl_alternative_t);
        if (!strcmp(a->model->id, model)) return a->excluded_by ? a->excluded_by : "";
    }
    return NULL;
}

static void limits(world_t *w)
{
    fl_snapshot_t *s = fl_snapshot_create(w->p, &w->pol);
    fl_limits_t l;
    fl_decision_t *d;
    fl_usage_stat_t u = { 100, 100, 0.05, 1000, 100000 };
    own(s, "o", "w/big", 100, 90);
    own(s, "o", "w/mid", 100, 89);
    own(s, "o", "w/small", 100, 60);
    fl_snapshot_add_usage(s, "o", "auto", "w/mid", &u);
    fl_snapshot_finish(s);
    fl_limits_none(&l);
    l.max_regression = 5;        /* small is 30 points below big: out; mid 1 point, surely in */
    d = decide(w, s, "o", 3, &l, 0);
    CHECK_STR(excluded(d, "w/small"), "max_regression");
    CHECK_STR(d->chosen->id, "w/mid");
    CHECK(json_array_size(json_object_get(json_object_get(constraints(w, d), "excluded"),
                                          "max_regression")) == 1);
    fl_limits_none(&l);
    l.max_cost_increase = 50;    /* rolling cost is mid's 0.0005/request; big costs far more */
    d = decide(w, s, "o", 3, &l, 0);
    CHECK(!strcmp(excluded(d, "w/big") ? excluded(d, "w/big") : d->chosen->id, "max_cost_increase"));
    fl_limits_none(&l);
    l.confidence_threshold = 0.99;   /* nobody has that much: the default serves */
    d = decide(w, s, "o", 3, &l, 0);
    CHECK_STR(d->chosen->id, "w/big");
    CHECK_STR(excluded(d, "w/mid"), "confidence_threshold");
    l.max_cost_increase = 0;     /* and now the default is too dear as well: all excluded */
    d = decide(w, s, "o", 3, &l, 0);
    CHECK_STR(d->chosen->id, "w/big");
    CHECK(json_is_true(json_object_get(constraints(w, d), "fell_back_to_default")));
    CHECK(json_real_value(json_object_get(constraints(w, d), "confidence_threshold")) == 0.99);
}

/* max_regression judges a proven candidate by a lower bound of its own quality: a mean that
 * clears the floor by less than the evidence can tell is not enough, in the exploration share
 * neither; more of the same evidence is. */
static void regression_bound(world_t *w)
{
    fl_snapshot_t *s;
    fl_limits_t l;
    fl_decision_t *d;
    json_t *c;
    int i, pass[2] = { 0, 0 }, explored = 0;
    fl_limits_none(&l);
    l.max_regression = 5;
    for (i = 0; i < 2; i++) {
        int k;
        s = fl_snapshot_create(w->p, &w->pol);
        own(s, "o", "w/big", 200, 172);                /* 0.86: the floor is 0.81 */
        own(s, "o", "w/small", i ? 400 : 40, i ? 336 : 33.6); /* 0.84 both times */
        fl_snapshot_finish(s);
        for (k = 0; k < 400; k++) {
            d = decide(w, s, "o", (apr_uint64_t)k + 7000, &l, 0);
            pass[i] += !strcmp(d->chosen->id, "w/small");
            explored += !i && json_is_true(json_object_get(d->signals, "explored"));
        }
        d = decide(w, s, "o", 7000, &l, 0);
        c = json_array_get(json_object_get(fl_decision_signals(w->p, d), "candidates"), 2);
        CHECK_STR(json_string_value(json_object_get(c, "model")), "w/small");
        CHECK(json_real_value(json_object_get(c, "quality_lower_bound")) > 0);
        CHECK(fabs(json_real_value(json_object_get(constraints(w, d), "quality_floor"))
                   - 0.81) < 1e-9);
        if (!i) {
            CHECK(json_real_value(json_object_get(c, "quality_lower_bound")) < 0.81);
            CHECK_STR(excluded(d, "w/small"), "max_regression");
        }
        else {
            CHECK(json_real_value(json_object_get(c, "quality_lower_bound")) > 0.81);
        }
    }
    CHECK(explored > 0);
    CHECK(pass[0] == 0);         /* 40 observations at 0.84: never, not even exploring */
    CHECK(pass[1] > 300);        /* 400 of them: it serves */
    /* the mean alone (z = 0, the rule before the bound) would have let the 40 through */
    w->pol.regression_z = 0;
    s = fl_snapshot_create(w->p, &w->pol);
    own(s, "o", "w/big", 200, 172);
    own(s, "o", "w/small", 40, 33.6);
    fl_snapshot_finish(s);
    d = decide(w, s, "o", 7000, &l, 0);
    CHECK(excluded(d, "w/small") == NULL || !strcmp(excluded(d, "w/small"), ""));
    fl_policy_defaults(&w->pol);
    /* an unset limit judges nothing and records no bound */
    d = decide(w, s, "o", 7000, NULL, 0);
    c = json_array_get(json_object_get(fl_decision_signals(w->p, d), "candidates"), 2);
    CHECK(json_is_null(json_object_get(c, "quality_lower_bound")));
    CHECK(json_is_null(json_object_get(constraints(w, d), "quality_floor")));
    CHECK(json_is_null(json_object_get(constraints(w, d), "regression_z")));
}

/* confidence_threshold keeps a switch away from the default until enough evidence stands
 * behind it, but lets the exploration share gather that evidence for a proven candidate too. */
static void confidence_explores(world_t *w)
{
    fl_snapshot_t *s = fl_snapshot_create(w->p, &w->pol);
    fl_limits_t l;
    int i, in_explore = 0, outside = 0;
    own(s, "o", "w/big", 200, 150);
    own(s, "o", "w/small", 40, 36);      /* confidence 0.70: proven, far better, but below 0.9 */
    fl_snapshot_finish(s);
    fl_limits_none(&l);
    l.confidence_threshold = 0.9;
    for (i = 0; i < 1000; i++) {
        fl_decision_t *d = decide(w, s, "o", (apr_uint64_t)i + 9000, &l, 0);
        if (strcmp(d->chosen->id, "w/small")) continue;
        if (json_is_true(json_object_get(d->signals, "explored"))) in_explore++;
        else outside++;
    }
    CHECK(in_explore > 20);
    CHECK(outside == 0);
}

static void sticky(world_t *w)
{
    fl_sticky_t *st;
    fl_snapshot_t *s = fl_snapshot_create(w->p, &w->pol);
    apr_time_t now = apr_time_now();
    apr_uint64_t h;
    fl_decision_t *d;
    own(s, "o", "w/big", 100, 95);
    own(s, "o", "w/small", 100, 20);
    fl_snapshot_finish(s);
    CHECK(fl_sticky_create(&st, w->p, 64, apr_time_from_sec(60)) == APR_SUCCESS);
    CHECK(fl_sticky_get(st, "o", "auto", "sess", now) == 0);
    fl_sticky_put(st, "o", "auto", "sess", "w/small", now);
    h = fl_sticky_get(st, "o", "auto", "sess", now);
    CHECK(h == fl_hash64("w/small", 7, 0));
    CHECK(fl_sticky_get(st, "o", "auto", "other", now) == 0);
    CHECK(fl_sticky_get(st, "o2", "auto", "sess", now) == 0);
    CHECK(fl_sticky_get(st, "o", "auto", "sess", now + apr_time_from_sec(61)) == 0);
    d = decide(w, s, "o", 5, NULL, h);
    CHECK_STR(d->chosen->id, "w/small");   /* the session keeps its model, worse or not */
    CHECK(json_is_true(json_object_get(d->signals, "sticky")));
}

/* Text is exactly what Jansson dumps for what it parses to: joined runs make one document. */
static int canonical(apr_pool_t *p, const char *text)
{
    json_t *v = json_loads(text, 0, NULL);
    return v && !strcmp(fl_json_dump(p, v, 1), text);
}

/* The signals and constraints a snapshot keeps rendered read as rendering them afresh would:
 * the same decision twice (the second from what the first kept), the kept rendering never shown
 * for other values, and every document one Jansson dump. */
static void rendering(world_t *w)
{
    fl_snapshot_t *s = fl_snapshot_create(w->p, &w->pol);
    fl_usage_stat_t u = { 10, 10, 0.01, 12, 300 };
    fl_decision_t *a, *b, *c;
    const char *sa, *sb;
    fl_limits_t l;
    json_t *cand;
    own(s, "o", "w/big", 200, 172);
    own(s, "o", "w/small", 400, 336);
    fl_snapshot_add_usage(s, "o", "auto", "w/big", &u);
    fl_snapshot_finish(s);
    a = decide(w, s, "o", 11, NULL, 0);
    b = decide(w, s, "o", 11, NULL, 0);
    sa = fl_decision_signals_text(w->p, a);
    sb = fl_decision_signals_text(w->p, b);
    CHECK_STR(sb, sa);
    CHECK_STR(b->constraints, a->constraints);
    CHECK(canonical(w->p, sa));
    CHECK(canonical(w->p, a->constraints));
    CHECK(json_array_size(json_object_get(fl_decision_signals(w->p, a), "candidates")) == 3);
    /* another draw: only sample and utility differ */
    c = decide(w, s, "o", 12, NULL, 0);
    CHECK(strcmp(fl_decision_signals_text(w->p, c), sa) != 0);
    CHECK(canonical(w->p, fl_decision_signals_text(w->p, c)));
    /* a limit changes what the same arms show: never the kept rendering of other values */
    fl_limits_none(&l);
    l.max_regression = 5;
    c = decide(w, s, "o", 11, &l, 0);
    cand = json_array_get(json_object_get(fl_decision_signals(w->p, c), "candidates"), 2);
    CHECK(json_real_value(json_object_get(cand, "quality_lower_bound")) > 0);
    CHECK(json_real_value(json_object_get(constraints(w, c), "max_regression")) == 5);
    CHECK(canonical(w->p, c->constraints));
    /* without a snapshot nothing is kept, and it reads the same way */
    c = decide(w, NULL, "o", 11, NULL, 0);
    CHECK(canonical(w->p, fl_decision_signals_text(w->p, c)));
    CHECK(canonical(w->p, c->constraints));
}

void test_router(apr_pool_t *p)
{
    world_t w;
    quality(p);
    spread(p);
    rng(p);
    world(&w, p);
    learns(&w);
    day0(&w);
    pooling(&w);
    limits(&w);
    regression_bound(&w);
    confidence_explores(&w);
    sticky(&w);
    rendering(&w);
}
