/* decide.c - the core's own cost of one routing decision, without httpd, MariaDB or a network:
 * what a chat request's thread spends on the router and on the decision's stored columns.
 *
 *   t/bench/decide.sh [CANDIDATES [DECISIONS]]     (1 and 200000 by default)
 *
 * A route of 1 or 3 candidates over a snapshot like the bench's (the default with rolling
 * usage; with 3, a second one in Auto and a third the organisation never used) is decided
 * DECISIONS times, each in a cleared pool, and the mean of each step is printed in ns. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <apr_general.h>
#include <apr_strings.h>

#include "fl_catalog.h"
#include "fl_router.h"

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static const fl_route_t *bench_route(apr_pool_t *p, int n)
{
    const char *pv[] = { "type=openai", "base_url=http://127.0.0.1:9/v1" };
    const char *price[] = { "input=0.15", "output=0.6" };
    const char *ids[] = { "bench/gpt-bench", "bench/b", "bench/c" };
    fl_catalog_t *cat = fl_catalog_create(p);
    int i;
    fl_catalog_add_provider(cat, p, "bench", pv, 2);
    for (i = 0; i < 3; i++) fl_catalog_add_model(cat, p, ids[i], price, 2);
    fl_catalog_add_route(cat, p, "auto", ids, n);
    return apr_hash_get(cat->routes, "auto", APR_HASH_KEY_STRING);
}

static fl_snapshot_t *bench_snapshot(apr_pool_t *p, const fl_policy_t *pol)
{
    fl_snapshot_t *s = fl_snapshot_create(p, pol);
    fl_usage_stat_t u = { 1000, 1000, 0.0067, 1200, 18000 };
    fl_quality_t q = { 40, 30, 25, 40 };
    fl_snapshot_add_usage(s, "org", "auto", "bench/gpt-bench", &u);
    fl_snapshot_add_usage(s, "org", "auto", "bench/b", &u);
    fl_snapshot_set_quality(s, "org", "auto", "bench/b", &q);
    fl_snapshot_finish(s);
    return s;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1, runs = argc > 2 ? atoi(argv[2]) : 200000, i;
    double t[4] = { 0, 0, 0, 0 }, t0;
    const char *args[FL_DECISION_NCOLS];
    const fl_route_t *route;
    fl_snapshot_t *snap;
    apr_pool_t *p, *rp;
    fl_policy_t pol;

    if (n != 1 && n != 3) n = 1;
    apr_initialize();
    apr_pool_create(&p, NULL);
    apr_pool_create(&rp, p);
    fl_policy_defaults(&pol);
    route = bench_route(p, n);
    snap = bench_snapshot(p, &pol);
    for (i = 0; i < runs; i++) {
        fl_route_ctx_t ctx = { 0 };
        fl_decision_t *d;
        fl_rng_t rng;
        t0 = now_ns();
        d = fl_decision_create(rp, apr_time_now());
        d->org_id = "org";
        d->api_key_id = "key";
        ctx.seed = fl_hash64(d->id, strlen(d->id), 0);
        fl_rng_seed(&rng, ctx.seed);
        ctx.snap = snap;
        ctx.policy = &pol;
        ctx.org_id = "org";
        ctx.rng = &rng;
        fl_limits_none(&ctx.limits);
        t[0] += now_ns() - t0;
        t0 = now_ns();
        fl_router_choose(route, &ctx, d);
        t[1] += now_ns() - t0;
        t0 = now_ns();
        fl_decision_add_attempt(d, d->chosen, 200, 0.9, NULL);
        d->usage.prompt = d->usage.completion = 9;
        d->usage.total = 18;
        d->completed = apr_time_now();
        fl_decision_row_args(rp, d, args);
        t[2] += now_ns() - t0;
        t0 = now_ns();
        apr_pool_clear(rp);
        t[3] += now_ns() - t0;
    }
    printf("%d candidate(s), %d decisions, ns per decision: create %.0f, choose %.0f, "
           "row args %.0f, pool clear %.0f, total %.0f\n", n, runs, t[0] / runs, t[1] / runs,
           t[2] / runs, t[3] / runs, (t[0] + t[1] + t[2] + t[3]) / runs);
    return 0;
}
