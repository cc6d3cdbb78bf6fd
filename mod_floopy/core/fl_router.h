/* Choosing a candidate for a request. The foundation's policy is the cheapest priced candidate;
 * the learning router replaces the scoring but keeps this interface and the decision's shape. */
#ifndef FL_ROUTER_H
#define FL_ROUTER_H

#include "fl_catalog.h"
#include "fl_decision.h"

/* Scores every candidate of the route, fills chosen, alternatives, signals, constraints,
 * confidence and phase. */
void fl_router_choose(const fl_route_t *route, fl_decision_t *d);

/* Fills the decision for a pinned provider/model: no choice was made. */
void fl_router_pin(fl_model_t *m, fl_decision_t *d);

/* Blended price per million tokens, assuming three input tokens for each output token. */
double fl_router_blended_price(const fl_model_t *m);

#endif
