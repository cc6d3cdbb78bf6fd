/* The learning router's httpd side: each child's snapshot of every organisation's statistics,
 * constraints and running experiments (snapshot.c), choosing a model for a request (choose.c)
 * and crediting an outcome to the statistics (credit.c). The maths is core's (fl_router,
 * fl_learn); the hot path reads no database. */
#ifndef FLOOPY_ROUTE_H
#define FLOOPY_ROUTE_H

#include "floopy_module.h"
#include "fl_catalog.h"
#include "fl_decision.h"
#include "fl_error.h"
#include "fl_learn.h"
#include "fl_router.h"

/* A running experiment as each child knows it, from the snapshot. */
typedef struct floopy_experiment_t {
    const char *id, *org_id, *route, *candidate;
    double sample_rate;
    apr_int64_t sample_cap;
    apr_int64_t sampled;         /* the store's count when the snapshot was loaded */
    apr_uint32_t admitted;       /* samples this child queued since (atomic) */
} floopy_experiment_t;

/* --- the snapshot (snapshot.c) --- */
apr_status_t floopy_router_start(floopy_router_t **pR, apr_pool_t *pchild, server_rec *s);
/* This child credited an outcome: rebuild the snapshot now rather than at the next tick. */
void floopy_router_changed(floopy_router_t *R);
/* An operator changed what routing reads (constraints, experiments): rebuild now and wait, at
 * most max, until this child routes by the change, so the next request here sees it. Other
 * children see it within FloopyRouter refresh=. */
void floopy_router_settle(floopy_router_t *R, apr_interval_time_t max);
#define FLOOPY_SETTLE_MAX apr_time_from_sec(2)
/* The current statistics (held until r->pool is cleared; NULL before the first load) and the
 * organisation's constraints as the router applies them. */
const fl_snapshot_t *floopy_router_snapshot(request_rec *r, const char *org, fl_limits_t *lim);
/* The organisation's running experiment on the route, when the draw u (0..1) falls within its
 * sample rate, its candidate is not the live model, and its cap is not used up by the store's
 * count plus what this child admitted since; a copy in r->pool. NULL otherwise. */
const floopy_experiment_t *floopy_router_experiment(request_rec *r, const char *org,
                                                    const char *route, const char *live,
                                                    double u);

/* --- choosing (choose.c) --- */
/* The router's choice for a route, or the pinned model; reads x-floopy-seed (400 if bad).
 * A dry run (explain) leaves the session's stickiness alone. */
fl_error_t *floopy_choose(request_rec *r, fl_decision_t *d, const fl_route_t *route,
                          fl_model_t *pinned, int dry_run);

/* --- crediting (credit.c) --- */
/* Applies one outcome to an arm inside the caller's transaction: weight < 0 asks for a
 * per-request score's weight (more once the arm is in Auto); revise_from >= 0 rewrites an
 * earlier reward instead. */
apr_status_t floopy_credit(apr_pool_t *p, ap_dbd_t *db, const fl_policy_t *pol, const char *org,
                           const char *route, const char *model, double *weight,
                           double revise_from, double reward);

#endif
