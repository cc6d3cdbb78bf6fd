/* The learning router: estimates, Day-0 rules, confidence, constraints, replay by seed,
 * stickiness, pooling. */
#include <math.h>
#include <apr_strings.h>
#include "fl_test.h"
#include "fl_catalog.h"
#include "fl_router.h"

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

static void quality(apr_pool_t *p)
{
    fl_policy_t pol;
    fl_quality_t q = { 0, 0 };
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
    fl_snapshot_set_quality(s, "o", "auto", "w/big", 100, 86);
    fl_snapshot_set_quality(s, "o", "auto", "w/mid", 100, 70);
    fl_snapshot_set_quality(s, "o", "auto", "w/small", 100, 85);
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
    fl_snapshot_set_quality(s, "a", "auto", "w/small", 500, 495);   /* pooled from others */
    fl_snapshot_set_quality(s, "b", "auto", "w/small", 500, 495);
    fl_snapshot_set_quality(s, "o", "auto", "w/big", 10, 6);
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
    fl_snapshot_set_quality(s, "a", "auto", "w/mid", 50, 40);
    fl_snapshot_set_quality(s, "b", "auto", "w/mid", 50, 45);
    fl_snapshot_set_quality(s, "x", "auto", "w/mid", 50, 5);     /* opted out */
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
    fl_snapshot_set_quality(s, "a", "auto", "w/mid", 50, 40);
    fl_snapshot_set_quality(s, "b", "auto", "w/mid", 50, 45);
    fl_snapshot_finish(s);
    fl_snapshot_arm(s, "a", "auto", "w/mid", &v);
    CHECK(v.pool_orgs == 1 && fabs(v.pool.s / v.pool.n - 0.9) < 1e-9); /* b's, never a's own */
    fl_policy_defaults(&w->pol);
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
    fl_snapshot_set_quality(s, "o", "auto", "w/big", 100, 90);
    fl_snapshot_set_quality(s, "o", "auto", "w/mid", 100, 88);
    fl_snapshot_set_quality(s, "o", "auto", "w/small", 100, 60);
    fl_snapshot_add_usage(s, "o", "auto", "w/mid", &u);
    fl_snapshot_finish(s);
    fl_limits_none(&l);
    l.max_regression = 5;        /* small is 30 points below big: out */
    d = decide(w, s, "o", 3, &l, 0);
    CHECK_STR(excluded(d, "w/small"), "max_regression");
    CHECK_STR(d->chosen->id, "w/mid");
    CHECK(json_array_size(json_object_get(json_object_get(d->constraints, "excluded"),
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
    CHECK(json_is_true(json_object_get(d->constraints, "fell_back_to_default")));
    CHECK(json_real_value(json_object_get(d->constraints, "confidence_threshold")) == 0.99);
}

static void sticky(world_t *w)
{
    fl_sticky_t *st;
    fl_snapshot_t *s = fl_snapshot_create(w->p, &w->pol);
    apr_time_t now = apr_time_now();
    apr_uint64_t h;
    fl_decision_t *d;
    fl_snapshot_set_quality(s, "o", "auto", "w/big", 100, 95);
    fl_snapshot_set_quality(s, "o", "auto", "w/small", 100, 20);
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

void test_router(apr_pool_t *p)
{
    world_t w;
    quality(p);
    rng(p);
    world(&w, p);
    learns(&w);
    day0(&w);
    pooling(&w);
    limits(&w);
    sticky(&w);
}
