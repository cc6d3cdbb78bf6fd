/* The router's snapshot. Each child keeps a snapshot of every organisation's statistics
 * (fl_snapshot_t, plus each organisation's constraints) that its request threads share
 * read-only; a thread of its own rebuilds it from MariaDB every FloopyRouter refresh= ms, and at
 * once when this child credits an outcome, so new feedback reaches routing within a second and
 * the hot path reads no database. The running shadow experiments ride in the same snapshot, so
 * the chat path finds them without a query. */
#include <stdlib.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>
#include <apr_thread_cond.h>
#include <apr_atomic.h>
#include <http_protocol.h>

#include "config/config.h"
#include "store/store.h"
#include "route.h"
#include "fl_thread.h"
#include "fl_util.h"

#define FIRST_LOAD_WAIT apr_time_from_sec(2)

typedef struct floopy_snap_t {
    apr_pool_t *pool;            /* unmanaged: the last reader may free it from any thread */
    fl_snapshot_t *snap;
    apr_hash_t *limits;          /* org -> fl_limits_t */
    apr_hash_t *experiments;     /* "org route" -> floopy_experiment_t (running ones) */
    apr_uint32_t refs;           /* readers, plus one while it is the current snapshot */
} floopy_snap_t;

struct floopy_router_t {
    server_rec *s;
    floopy_srv_t *conf;
    apr_thread_mutex_t *mutex;
    apr_thread_cond_t *cond;     /* wakes the refresher early, and readers on the first load */
    floopy_snap_t *cur;
    int stopping, dirty;
    apr_uint64_t begun, ended;   /* refreshes started and finished: floopy_router_settle waits */
    apr_thread_t *thread;
};

static void snap_release(floopy_router_t *L, floopy_snap_t *sn)
{
    int last;
    apr_thread_mutex_lock(L->mutex);
    last = --sn->refs == 0;
    apr_thread_mutex_unlock(L->mutex);
    if (last) apr_pool_destroy(sn->pool);
}

typedef struct hold_t {
    floopy_router_t *L;
    floopy_snap_t *sn;
} hold_t;

static apr_status_t hold_end(void *data)
{
    hold_t *h = data;
    snap_release(h->L, h->sn);
    return APR_SUCCESS;
}

#define HOLD_KEY "floopy_snap_hold"

/* The current snapshot, held until p is cleared; NULL before the first load (waits briefly).
 * One request takes it once: routing and the experiment check after the answer read the same
 * snapshot, and the second asks neither the mutex nor a new cleanup. */
static floopy_snap_t *snap_acquire(floopy_router_t *L, apr_pool_t *p)
{
    floopy_snap_t *sn;
    apr_time_t until = apr_time_now() + FIRST_LOAD_WAIT;
    void *held = NULL;
    if (apr_pool_userdata_get(&held, HOLD_KEY, p) == APR_SUCCESS && held) {
        return ((hold_t *)held)->sn;
    }
    apr_thread_mutex_lock(L->mutex);
    while (!L->cur && !L->stopping && apr_time_now() < until) {
        apr_thread_cond_timedwait(L->cond, L->mutex, apr_time_from_msec(50));
    }
    if ((sn = L->cur)) sn->refs++;
    apr_thread_mutex_unlock(L->mutex);
    if (sn) {
        hold_t *h = apr_palloc(p, sizeof(*h));
        h->L = L;
        h->sn = sn;
        apr_pool_cleanup_register(p, h, hold_end, apr_pool_cleanup_null);
        apr_pool_userdata_setn(h, HOLD_KEY, NULL, p);
    }
    return sn;
}

/* --- loading --------------------------------------------------------------------------------- */

static double num(const char *v)
{
    return v ? strtod(v, NULL) : 0;
}

static double limit(const char *v)
{
    return v ? strtod(v, NULL) : -1;
}

static apr_status_t load_rows(floopy_router_t *L, apr_pool_t *p, ap_dbd_t *db, const char *label,
                              apr_array_header_t **rows)
{
    apr_status_t rv = floopy_db_select(p, db, label, 0, NULL, rows, NULL);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, L->s,
                     "FL040: router statistics could not be read (%s); keeping the last ones",
                     label);
    }
    return rv;
}

#define ROW(rows, i) APR_ARRAY_IDX(rows, i, const char **)

static const char *experiment_key(apr_pool_t *p, const char *org, const char *route)
{
    return apr_pstrcat(p, org, " ", route, NULL);
}

static void load_experiments(floopy_snap_t *sn, apr_array_header_t *x)
{
    int i;
    sn->experiments = apr_hash_make(sn->pool);
    for (i = 0; i < x->nelts; i++) {
        const char **r = ROW(x, i);
        floopy_experiment_t *e = apr_pcalloc(sn->pool, sizeof(*e));
        e->id = apr_pstrdup(sn->pool, r[0]);
        e->org_id = apr_pstrdup(sn->pool, r[1]);
        e->route = apr_pstrdup(sn->pool, r[2]);
        e->candidate = apr_pstrdup(sn->pool, r[3]);
        e->sample_rate = num(r[4]);
        e->sample_cap = apr_atoi64(r[5]);
        e->sampled = apr_atoi64(r[6]);
        apr_hash_set(sn->experiments, experiment_key(sn->pool, e->org_id, e->route),
                     APR_HASH_KEY_STRING, e);
    }
}

static apr_status_t load_snapshot(floopy_router_t *L, apr_pool_t *sp, ap_dbd_t *db,
                                  floopy_snap_t *sn)
{
    apr_array_header_t *q, *u, *b, *o, *l, *x;
    apr_status_t rv;
    int i;
    if ((rv = load_rows(L, sp, db, FLOOPY_SQL_ARM_QUALITY_ALL, &q))
        || (rv = load_rows(L, sp, db, FLOOPY_SQL_ARM_USAGE_RECENT, &u))
        || (rv = load_rows(L, sp, db, FLOOPY_SQL_BENCHMARK_PRIORS, &b))
        || (rv = load_rows(L, sp, db, FLOOPY_SQL_OPTED_OUT, &o))
        || (rv = load_rows(L, sp, db, FLOOPY_SQL_CONSTRAINTS_ALL, &l))
        || (rv = load_rows(L, sp, db, FLOOPY_SQL_EXPERIMENTS_RUNNING, &x))) {
        return rv;
    }
    load_experiments(sn, x);
    sn->snap = fl_snapshot_create(sn->pool, &L->conf->policy);
    sn->limits = apr_hash_make(sn->pool);
    for (i = 0; i < o->nelts; i++) fl_snapshot_opt_out(sn->snap, ROW(o, i)[0]);
    for (i = 0; i < q->nelts; i++) {
        const char **r = ROW(q, i);
        fl_quality_t aq = { num(r[3]), num(r[4]), num(r[5]), num(r[6]) };
        fl_snapshot_set_quality(sn->snap, r[0], r[1], r[2], &aq);
    }
    for (i = 0; i < u->nelts; i++) {
        const char **r = ROW(u, i);
        fl_usage_stat_t us = { num(r[3]), num(r[4]), num(r[5]), num(r[6]), num(r[7]) };
        fl_snapshot_add_usage(sn->snap, r[0], r[1], r[2], &us);
    }
    for (i = 0; i < b->nelts; i++) {
        fl_snapshot_set_benchmark(sn->snap, ROW(b, i)[0], num(ROW(b, i)[1]), num(ROW(b, i)[2]));
    }
    for (i = 0; i < l->nelts; i++) {
        const char **r = ROW(l, i);
        fl_limits_t *lim = apr_palloc(sn->pool, sizeof(*lim));
        lim->max_regression = limit(r[1]);
        lim->max_cost_increase = limit(r[2]);
        lim->confidence_threshold = limit(r[3]);
        apr_hash_set(sn->limits, apr_pstrdup(sn->pool, r[0]), APR_HASH_KEY_STRING, lim);
    }
    fl_snapshot_finish(sn->snap);
    return APR_SUCCESS;
}

static void refresh(floopy_router_t *L, apr_pool_t *scratch)
{
    floopy_snap_t *sn, *old;
    ap_dbd_t *db = floopy_db_open(L->s, scratch);
    apr_pool_t *sp;
    if (!db) return;
    if (apr_pool_create_unmanaged_ex(&sp, NULL, NULL) != APR_SUCCESS) {
        floopy_db_close(L->s, db);
        return;
    }
    sn = apr_pcalloc(sp, sizeof(*sn));
    sn->pool = sp;
    sn->refs = 1;
    if (load_snapshot(L, scratch, db, sn) != APR_SUCCESS) {
        apr_pool_destroy(sp);
        floopy_db_close(L->s, db);
        return;
    }
    floopy_db_close(L->s, db);
    apr_thread_mutex_lock(L->mutex);
    old = L->cur;
    L->cur = sn;
    apr_thread_cond_broadcast(L->cond);
    apr_thread_mutex_unlock(L->mutex);
    if (old) snap_release(L, old);
}

static void *APR_THREAD_FUNC snapshot_main(apr_thread_t *t, void *data)
{
    floopy_router_t *L = data;
    apr_pool_t *scratch;
    apr_pool_create_unmanaged_ex(&scratch, NULL, NULL);
    for (;;) {
        apr_thread_mutex_lock(L->mutex);
        L->begun++;
        L->dirty = 0;
        apr_thread_mutex_unlock(L->mutex);
        refresh(L, scratch);
        apr_pool_clear(scratch);
        apr_thread_mutex_lock(L->mutex);
        L->ended = L->begun;
        apr_thread_cond_broadcast(L->cond);
        if (!L->stopping && !L->dirty) {
            apr_thread_cond_timedwait(L->cond, L->mutex,
                                      apr_time_from_msec(L->conf->router_refresh_ms));
        }
        if (L->stopping) {
            apr_thread_mutex_unlock(L->mutex);
            break;
        }
        apr_thread_mutex_unlock(L->mutex);
    }
    apr_pool_destroy(scratch);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static apr_status_t snapshot_stop(void *data)
{
    floopy_router_t *L = data;
    fl_thread_stop(L->mutex, L->cond, &L->stopping, L->thread);
    if (L->cur) snap_release(L, L->cur);
    L->cur = NULL;
    return APR_SUCCESS;
}

apr_status_t floopy_router_start(floopy_router_t **pL, apr_pool_t *pchild, server_rec *s)
{
    floopy_router_t *L = apr_pcalloc(pchild, sizeof(*L));
    apr_status_t rv;
    L->s = s;
    L->conf = floopy_srv(s);
    if ((rv = fl_thread_start(&L->mutex, &L->cond, &L->thread, pchild, snapshot_main, L))) return rv;
    apr_pool_pre_cleanup_register(pchild, L, snapshot_stop);
    *pL = L;
    return APR_SUCCESS;
}

void floopy_router_changed(floopy_router_t *L)
{
    apr_thread_mutex_lock(L->mutex);
    L->dirty = 1;
    apr_thread_cond_broadcast(L->cond);
    apr_thread_mutex_unlock(L->mutex);
}

void floopy_router_settle(floopy_router_t *L, apr_interval_time_t max)
{
    apr_time_t until = apr_time_now() + max;
    apr_uint64_t want;
    apr_thread_mutex_lock(L->mutex);
    /* a refresh already under way may have read the tables before the caller's commit: wait
     * for the one after it */
    want = L->begun + 1;
    L->dirty = 1;
    apr_thread_cond_broadcast(L->cond);
    while (L->ended < want && !L->stopping && apr_time_now() < until) {
        apr_thread_cond_timedwait(L->cond, L->mutex, apr_time_from_msec(50));
    }
    apr_thread_mutex_unlock(L->mutex);
}

const fl_snapshot_t *floopy_router_snapshot(request_rec *r, const char *org, fl_limits_t *lim)
{
    floopy_snap_t *sn = snap_acquire(floopy_proc(r->server)->router, r->pool);
    const fl_limits_t *l = sn ? apr_hash_get(sn->limits, org, APR_HASH_KEY_STRING) : NULL;
    if (l) *lim = *l; else fl_limits_none(lim);
    return sn ? sn->snap : NULL;
}

const floopy_experiment_t *floopy_router_experiment(request_rec *r, const char *org,
                                                   const char *route, const char *live, double u)
{
    floopy_snap_t *sn = snap_acquire(floopy_proc(r->server)->router, r->pool);
    floopy_experiment_t *x, *copy;
    if (!sn || !(x = apr_hash_get(sn->experiments, experiment_key(r->pool, org, route),
                                  APR_HASH_KEY_STRING))) {
        return NULL;
    }
    if (u >= x->sample_rate || !strcmp(x->candidate, live)) return NULL;
    /* threads race here: the atomic count admits no more than the cap leaves, in this child;
     * the store's count, raised as each sample is taken, holds it across children */
    if (x->sampled + (apr_int64_t)apr_atomic_inc32(&x->admitted) >= x->sample_cap) return NULL;
    copy = apr_pmemdup(r->pool, x, sizeof(*x));
    copy->id = apr_pstrdup(r->pool, x->id);
    copy->org_id = apr_pstrdup(r->pool, x->org_id);
    copy->route = apr_pstrdup(r->pool, x->route);
    copy->candidate = apr_pstrdup(r->pool, x->candidate);
    return copy;
}

