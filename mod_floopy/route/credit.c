/* Crediting one outcome (feedback, a judge's verdict) to an arm's statistics, in the caller's
 * transaction, through the core's maths (fl_quality_observe / fl_quality_revise). */
#include <stdlib.h>
#include <apr_strings.h>

#include "store/store.h"
#include "route.h"
#include "fl_util.h"

#define ROW(rows, i) APR_ARRAY_IDX(rows, i, const char **)

static double num(const char *v)
{
    return v ? strtod(v, NULL) : 0;
}

/* Reads the arm's row for update (in the caller's transaction), applies one outcome through the
 * core's maths and writes it back. weight < 0 asks for a per-request score's weight, which grows
 * once the arm is in its Auto phase; revise_from >= 0 rewrites an earlier reward instead. */
apr_status_t floopy_credit(apr_pool_t *p, ap_dbd_t *db, const fl_policy_t *pol, const char *org,
                           const char *route, const char *model, double *weight,
                           double revise_from, double reward)
{
    const char *key[3] = { org, route, model }, *up[8];
    apr_array_header_t *rows;
    fl_quality_t q = { 0, 0, 0, 0 };
    apr_status_t rv = floopy_db_select(p, db, FLOOPY_SQL_ARM_QUALITY_LOCK, 3, key, &rows, NULL);
    if (rv != APR_SUCCESS) return rv;
    if (rows->nelts) {
        q.n = num(ROW(rows, 0)[0]);
        q.s = num(ROW(rows, 0)[1]);
        q.ss = num(ROW(rows, 0)[2]);
        q.n2 = num(ROW(rows, 0)[3]);
        /* a row from before the spread was kept gets its widest spread before it grows */
        fl_quality_stored(&q);
    }
    if (*weight < 0) {
        *weight = pol->request_weight[fl_phase_of(pol, q.n) == FL_PHASE_AUTO];
    }
    if (revise_from >= 0) fl_quality_revise(&q, *weight, revise_from, reward);
    else fl_quality_observe(&q, pol, *weight, reward);
    up[0] = org; up[1] = route; up[2] = model;
    up[3] = apr_psprintf(p, "%.10g", q.n);
    up[4] = apr_psprintf(p, "%.10g", q.s);
    up[5] = apr_psprintf(p, "%.10g", q.ss);
    up[6] = apr_psprintf(p, "%.10g", q.n2);
    up[7] = fl_time_sql(p, apr_time_now());
    return floopy_db_exec(p, db, FLOOPY_SQL_ARM_QUALITY_PUT, 8, up, NULL);
}
