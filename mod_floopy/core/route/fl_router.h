/* Choosing a candidate for a request: Thompson sampling over each candidate's quality posterior,
 * traded against its cost, with the organisation's constraints applied and Day-0 candidates kept
 * to an exploration share. docs/methodology/confidence.md says why. */
#ifndef FL_ROUTER_H
#define FL_ROUTER_H

#include "fl_catalog.h"
#include "fl_decision.h"
#include "fl_learn.h"
#include "fl_rng.h"

/* An organisation's constraints; a negative value is "not set". */
typedef struct fl_limits_t {
    double max_regression;       /* quality percentage points below the default */
    double max_cost_increase;    /* percent over the route's rolling cost per request */
    double confidence_threshold; /* 0..1: a switch away from the default needs this much */
} fl_limits_t;

typedef void fl_price_fn(void *baton, const fl_model_t *m, fl_price_t *out);

/* Everything a choice reads besides the route. */
typedef struct fl_route_ctx_t {
    const fl_snapshot_t *snap;   /* NULL: nothing is known yet */
    const fl_policy_t *policy;   /* used when snap is NULL */
    const char *org_id;
    fl_limits_t limits;
    fl_rng_t *rng;
    apr_uint64_t seed;           /* recorded on the decision: the same seed replays the choice */
    apr_uint64_t sticky;         /* fl_hash64 of the session's model id, 0 for none */
    fl_price_fn *price;          /* live prices; NULL: the FloopyModel lines */
    void *price_baton;
} fl_route_ctx_t;

void fl_limits_none(fl_limits_t *l);

/* Scores every candidate of the route, fills chosen, alternatives (best first; excluded last),
 * signals, constraints, confidence and phase. */
void fl_router_choose(const fl_route_t *route, const fl_route_ctx_t *ctx, fl_decision_t *d);

/* Fills the decision for a pinned provider/model: no choice was made. */
void fl_router_pin(fl_model_t *m, fl_decision_t *d);

/* Blended price per million tokens, assuming three input tokens for each output token. */
double fl_router_blended_price(const fl_price_t *pr);

#endif
