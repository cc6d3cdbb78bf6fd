/* GET /reports/savings: Baseline vs Floopy. What the routed requests of a period cost, against
 * what the same tokens would have cost on each route's default model, split by whether the model
 * that served them matched the default's quality. docs/methodology/baseline-vs-floopy.md is the
 * definition; this file follows it. */
#include <stdlib.h>
#include <apr_strings.h>
#include <http_protocol.h>

#include "config/config.h"
#include "store/store.h"
#include "route/route.h"
#include "api.h"
#include "fl_router.h"
#include "fl_util.h"

#define MATCH_TOLERANCE 0.02     /* quality points a model may trail the default by without a
                                  * max_regression of the organisation's own */

typedef struct tally_t {
    apr_int64_t requests;
    double actual, baseline;
} tally_t;

static json_t *tally_json(const tally_t *t)
{
    json_t *o = json_object();
    json_object_set_new(o, "requests", json_integer(t->requests));
    json_object_set_new(o, "actual_cost_usd", json_real(t->actual));
    json_object_set_new(o, "baseline_cost_usd", json_real(t->baseline));
    json_object_set_new(o, "savings_usd", json_real(t->baseline - t->actual));
    json_object_set_new(o, "savings_pct", t->baseline > 0
                        ? json_real(100.0 * (t->baseline - t->actual) / t->baseline) : json_null());
    return o;
}

static void add(tally_t *t, apr_int64_t n, double actual, double baseline)
{
    t->requests += n;
    t->actual += actual;
    t->baseline += baseline;
}

/* The own-data quality of a model on a route (its posterior mean), and whether it has enough
 * data (Auto) for the comparison to mean anything. */
static double quality(const fl_snapshot_t *s, const fl_policy_t *pol, const char *org,
                      const char *route, const char *model, int *proven)
{
    fl_arm_view_t v;
    double a, b;
    memset(&v, 0, sizeof(v));
    if (s) fl_snapshot_arm(s, org, route, model, &v);
    v.bench.n = v.bench.s = v.pool.n = v.pool.s = 0;  /* the organisation's own outcomes only */
    fl_arm_posterior(&v, &a, &b);
    *proven = fl_phase_of(pol, v.own.n) == FL_PHASE_AUTO;
    return a / (a + b);
}

typedef struct report_t {
    request_rec *r;
    const floopy_principal_t *who;
    const fl_snapshot_t *snap;
    const fl_policy_t *pol;
    double tolerance;
    tally_t matched, unmatched;
    json_t *models;
} report_t;

static void one_row(report_t *rp, const char **row)
{
    floopy_srv_t *conf = floopy_srv(rp->r->server);
    const fl_route_t *route = apr_hash_get(conf->catalog->routes, row[0], APR_HASH_KEY_STRING);
    const fl_model_t *def;
    fl_price_t price;
    fl_usage_t u;
    double actual = strtod(row[6], NULL), baseline, qm, qd;
    apr_int64_t n = apr_atoi64(row[2]);
    int pm, pd, matched;
    json_t *o;

    if (!route) return;  /* a route no longer configured has no default to compare with */
    def = APR_ARRAY_IDX(route->candidates, 0, fl_model_t *);
    floopy_price_of(floopy_proc(rp->r->server)->prices, rp->r->pool, def, &price);
    fl_usage_clear(&u);
    u.prompt = apr_atoi64(row[3]);
    u.completion = apr_atoi64(row[4]);
    u.cached = apr_atoi64(row[5]);
    baseline = fl_cost_usd(&price, &u);
    if (baseline < 0) return;
    qm = quality(rp->snap, rp->pol, rp->who->org_id, row[0], row[1], &pm);
    qd = quality(rp->snap, rp->pol, rp->who->org_id, row[0], def->id, &pd);
    matched = !strcmp(row[1], def->id) || (pm && pd && qm >= qd - rp->tolerance);
    add(matched ? &rp->matched : &rp->unmatched, n, actual, baseline);
    o = json_object();
    json_object_set_new(o, "route", json_string(row[0]));
    json_object_set_new(o, "model", json_string(row[1]));
    json_object_set_new(o, "default", json_string(def->id));
    json_object_set_new(o, "requests", json_integer(n));
    json_object_set_new(o, "actual_cost_usd", json_real(actual));
    json_object_set_new(o, "baseline_cost_usd", json_real(baseline));
    json_object_set_new(o, "quality", pm ? json_real(qm) : json_null());
    json_object_set_new(o, "default_quality", pd ? json_real(qd) : json_null());
    json_object_set_new(o, "matched", json_boolean(matched));
    json_array_append_new(rp->models, o);
}

int floopy_handle_savings(request_rec *r, const floopy_principal_t *who, const char *const *arg)
{
    static const char *const known[] = { "from", "to", NULL };
    floopy_srv_t *conf = floopy_srv(r->server);
    report_t rp = { 0 };
    apr_table_t *args;
    const char *q[3], *from, *to;
    apr_array_header_t *rows, *ex;
    fl_limits_t lim;
    fl_error_t *e;
    ap_dbd_t *db;
    json_t *out;
    int i;
    if ((e = floopy_query(r, known, &args)) || (e = floopy_time_window(r, args, 0, &from, &to))) {
        return floopy_send_error(r, e);
    }
    if (!(db = floopy_db_acquire(r))) {
        return floopy_fail_as(r, FLOOPY_E_UNAVAILABLE, NULL, NULL);
    }
    q[0] = who->org_id; q[1] = from; q[2] = to;
    if (floopy_db_select(r->pool, db, FLOOPY_SQL_SAVINGS, 3, q, &rows, NULL) != APR_SUCCESS
        || floopy_db_select(r->pool, db, FLOOPY_SQL_SAVINGS_EXCLUDED, 3, q, &ex, NULL) != APR_SUCCESS) {
        return floopy_fail_as(r, FLOOPY_E_INTERNAL, NULL, NULL);
    }
    rp.r = r;
    rp.who = who;
    rp.snap = floopy_router_snapshot(r, who->org_id, &lim);
    rp.pol = &conf->policy;
    rp.tolerance = lim.max_regression >= 0 ? lim.max_regression / 100.0 : MATCH_TOLERANCE;
    rp.models = json_array();
    for (i = 0; i < rows->nelts; i++) one_row(&rp, APR_ARRAY_IDX(rows, i, const char **));
    out = json_object();
    json_object_set_new(out, "object", json_string("floopy.savings"));
    json_object_set_new(out, "from", json_string(fl_time_sql_to_iso(r->pool, from)));
    json_object_set_new(out, "to", json_string(fl_time_sql_to_iso(r->pool, to)));
    json_object_set_new(out, "quality_tolerance", json_real(rp.tolerance));
    json_object_set_new(out, "matched", tally_json(&rp.matched));
    json_object_set_new(out, "unmatched", tally_json(&rp.unmatched));
    {
        const char **x = APR_ARRAY_IDX(ex, 0, const char **);
        json_t *o = json_object();
        static const char *const names[4] = { "pinned", "not_ok", "cache_hits", "unpriced" };
        for (i = 0; i < 4; i++) json_object_set_new(o, names[i], json_integer(x[i] ? apr_atoi64(x[i]) : 0));
        json_object_set_new(out, "excluded", o);
    }
    json_object_set_new(out, "models", rp.models);
    json_object_set_new(out, "definition", json_string("docs/methodology/baseline-vs-floopy.md"));
    return floopy_send_json(r, 200, out);
}
