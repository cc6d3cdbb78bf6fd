#include <math.h>
#include <stdlib.h>
#include <apr_strings.h>

#include "fl_router.h"

#define MIN_PRICED_REQUESTS 5    /* a rolling cost from fewer requests is too noisy to use */

typedef struct cand_t {
    const fl_model_t *m;
    fl_arm_view_t v;
    fl_phase_e phase;
    double alpha, beta;          /* the quality posterior */
    double mean, sd, cost, conf, sample, utility;
    double lower;                /* the own quality's lower bound max_regression judged; -1 none */
    int cost_from_usage;
    const char *excluded_by;
} cand_t;

typedef struct choice_t {
    const fl_route_t *route;
    const fl_route_ctx_t *ctx;
    const fl_policy_t *pol;
    cand_t *c;
    int n;
    double rolling_cost;         /* the route's cost per request, the cost limit's base */
    double floor;                /* the quality max_regression asks for: default's mean - limit */
    json_t *excluded;            /* constraint -> [model ids] */
    int exploring;               /* this decision is in the exploration share */
} choice_t;

void fl_limits_none(fl_limits_t *l)
{
    l->max_regression = l->max_cost_increase = l->confidence_threshold = -1;
}

double fl_router_blended_price(const fl_price_t *pr)
{
    return (3.0 * pr->input + pr->output) / 4.0;
}

static void price_of(const fl_route_ctx_t *ctx, const fl_model_t *m, fl_price_t *pr)
{
    pr->known = 0;
    if (ctx->price) ctx->price(ctx->price_baton, m, pr);
    if (!pr->known && m->priced) {
        pr->known = 1;
        pr->input = m->input_per_m;
        pr->output = m->output_per_m;
        pr->cached_input = m->cached_input_per_m;
    }
}

/* Tokens per request on this route so far, for costing a model before it has usage. */
static double route_tokens(const choice_t *ch)
{
    double req = 0, tok = 0;
    int i;
    for (i = 0; i < ch->n; i++) {
        req += ch->c[i].v.usage.requests;
        tok += ch->c[i].v.usage.tokens;
    }
    return req >= MIN_PRICED_REQUESTS && tok > 0 ? tok / req : ch->pol->typical_tokens;
}

static void estimate(choice_t *ch)
{
    double tokens, cost_sum = 0, priced = 0, max_known = 0;
    int i;
    for (i = 0; i < ch->n; i++) {
        cand_t *c = &ch->c[i];
        double a, b;
        if (ch->ctx->snap) {
            fl_snapshot_arm(ch->ctx->snap, ch->ctx->org_id, ch->route->name, c->m->id, &c->v);
        }
        fl_arm_posterior(&c->v, &c->alpha, &c->beta);
        a = c->alpha;
        b = c->beta;
        c->mean = a / (a + b);
        c->sd = sqrt(a * b / ((a + b) * (a + b) * (a + b + 1)));
        c->phase = fl_phase_of(ch->pol, c->v.own.n);
        c->conf = fl_arm_confidence(ch->pol, &c->v);
        cost_sum += c->v.usage.cost_usd;
        priced += c->v.usage.priced;
    }
    tokens = route_tokens(ch);
    for (i = 0; i < ch->n; i++) {
        cand_t *c = &ch->c[i];
        fl_price_t pr;
        if (c->v.usage.priced >= MIN_PRICED_REQUESTS) {
            c->cost = c->v.usage.cost_usd / c->v.usage.priced;
            c->cost_from_usage = 1;
        }
        else {
            price_of(ch->ctx, c->m, &pr);
            c->cost = pr.known ? fl_router_blended_price(&pr) * tokens / 1e6 : -1;
        }
        if (c->cost > max_known) max_known = c->cost;
    }
    /* an unpriced model is taken to cost as much as the dearest known one: never a bargain */
    for (i = 0; i < ch->n; i++) {
        if (ch->c[i].cost < 0) ch->c[i].cost = max_known;
    }
    ch->rolling_cost = priced >= MIN_PRICED_REQUESTS ? cost_sum / priced : ch->c[0].cost;
}

static void exclude(choice_t *ch, cand_t *c, const char *by)
{
    json_t *list = json_object_get(ch->excluded, by);
    if (c->excluded_by) return;
    c->excluded_by = by;
    if (!list) json_object_set_new(ch->excluded, by, list = json_array());
    json_array_append_new(list, json_string(c->m->id));
}

/* A model's quality by its own evidence: its own mean and that mean's standard error; with no
 * outcomes of its own, the posterior's (priors only). */
static void own_estimate(const cand_t *c, double *mean, double *se)
{
    if (c->v.own.n > 0) {
        *mean = c->v.own.s / c->v.own.n;
        *se = fl_quality_se(&c->v.own);
    }
    else {
        *mean = c->mean;
        *se = c->sd;
    }
}

/* The default is measured against, so quality and confidence limits never exclude it.
 * max_regression judges a candidate in Auto on its own evidence (the prior's pull would blur a
 * few points), by a lower confidence bound: its own mean minus regression_z standard errors of
 * its difference to the default's own mean (both are estimates) must clear the default's mean
 * minus the limit. It does so everywhere, the exploration share included, since serving a proven
 * model that may be beyond the limit is what the limit forbids. Before Auto it cannot judge a
 * candidate, so that one may be tried only inside the exploration share (pick() keeps it out
 * otherwise): judging an unproven candidate by its prior instead would exclude it for good, as an
 * excluded model gets no data.
 * confidence_threshold is about how much evidence stands behind a switch; the exploration share
 * is where that evidence is gathered, so it does not apply there (applied there, it would freeze
 * a proven candidate below the threshold for good: a model's evidence only grows with its own
 * outcomes). */
static void apply_limits(choice_t *ch)
{
    const fl_limits_t *l = &ch->ctx->limits;
    double m0, se0;
    int i;
    own_estimate(&ch->c[0], &m0, &se0);
    ch->floor = m0 - l->max_regression / 100.0;
    for (i = 0; i < ch->n; i++) {
        cand_t *c = &ch->c[i];
        c->lower = -1;
        if (i > 0 && l->max_regression >= 0 && c->phase == FL_PHASE_AUTO) {
            double m, se;
            own_estimate(c, &m, &se);
            /* never below 0: no quality is, and a floor under 0 is cleared by any */
            c->lower = fmax(0, m - ch->pol->regression_z * sqrt(se * se + se0 * se0));
            if (c->lower < ch->floor) exclude(ch, c, "max_regression");
        }
        else if (i > 0 && l->max_regression >= 0 && !ch->exploring && c->mean < ch->floor) {
            exclude(ch, c, "max_regression");
        }
        if (l->max_cost_increase >= 0
            && c->cost > ch->rolling_cost * (1.0 + l->max_cost_increase / 100.0) + 1e-12) {
            exclude(ch, c, "max_cost_increase");
        }
        if (i > 0 && l->confidence_threshold >= 0 && !ch->exploring
            && c->conf < l->confidence_threshold) {
            exclude(ch, c, "confidence_threshold");
        }
    }
}

/* Draws every candidate's quality, always in the same order, so a seed replays the choice. */
static void sample(choice_t *ch)
{
    double max_cost = 0;
    int i;
    for (i = 0; i < ch->n; i++) {
        if (ch->c[i].cost > max_cost) max_cost = ch->c[i].cost;
    }
    for (i = 0; i < ch->n; i++) {
        cand_t *c = &ch->c[i];
        c->sample = fl_rng_beta(ch->ctx->rng, c->alpha, c->beta);
        c->utility = c->sample - ch->pol->cost_weight * (max_cost > 0 ? c->cost / max_cost : 0);
    }
}

/* Day-0 candidates compete only in the exploration share: a prior alone cannot take over. */
static int pick(const choice_t *ch, int exploring, int *psticky)
{
    const fl_limits_t *l = &ch->ctx->limits;
    int i, best = -1, quality_limited = l->max_regression >= 0 || l->confidence_threshold >= 0;
    *psticky = 0;
    if (ch->ctx->sticky) {
        for (i = 0; i < ch->n; i++) {
            if (!ch->c[i].excluded_by
                && fl_hash64(ch->c[i].m->id, strlen(ch->c[i].m->id), 0) == ch->ctx->sticky) {
                *psticky = 1;
                return i;
            }
        }
    }
    for (i = 0; i < ch->n; i++) {
        const cand_t *c = &ch->c[i];
        if (c->excluded_by) continue;
        if (!exploring && i > 0 && c->phase == FL_PHASE_DAY0) continue;
        if (!exploring && i > 0 && c->phase != FL_PHASE_AUTO && quality_limited) continue;
        if (best < 0 || c->utility > ch->c[best].utility) best = i;
    }
    if (best < 0 && !exploring) return pick(ch, 1, psticky);
    return best;
}

static json_t *candidate_json(const cand_t *c)
{
    json_t *o = json_object();
    json_object_set_new(o, "model", json_string(c->m->id));
    json_object_set_new(o, "phase", json_string(fl_phase_name(c->phase)));
    json_object_set_new(o, "quality", json_real(c->mean));
    json_object_set_new(o, "quality_sd", json_real(c->sd));
    json_object_set_new(o, "observations", json_real(c->v.own.n));
    json_object_set_new(o, "prior_benchmark", json_real(c->v.bench.n));
    json_object_set_new(o, "prior_pooled", json_real(c->v.pool.n));
    json_object_set_new(o, "cost_per_request_usd", json_real(c->cost));
    json_object_set_new(o, "cost_source", json_string(c->cost_from_usage ? "usage" : "price"));
    json_object_set_new(o, "latency_ms", c->v.usage.requests > 0
                        ? json_real(c->v.usage.latency_ms / c->v.usage.requests) : json_null());
    json_object_set_new(o, "sample", json_real(c->sample));
    json_object_set_new(o, "utility", json_real(c->utility));
    json_object_set_new(o, "confidence", json_real(c->conf));
    json_object_set_new(o, "quality_lower_bound",
                        c->lower >= 0 ? json_real(c->lower) : json_null());
    return o;
}

static int by_utility(const void *a, const void *b)
{
    const fl_alternative_t *x = a, *y = b;
    if (!x->excluded_by != !y->excluded_by) return x->excluded_by ? 1 : -1;
    return x->score < y->score ? 1 : x->score > y->score ? -1 : 0;
}

static void fill(const choice_t *ch, int chosen, fl_decision_t *d)
{
    json_t *cands = json_array();
    int i;
    for (i = 0; i < ch->n; i++) {
        const cand_t *c = &ch->c[i];
        json_array_append_new(cands, candidate_json(c));
        if (i == chosen) continue;
        fl_alternative_t *alt = apr_array_push(d->alternatives);
        alt->model = c->m;
        alt->score = c->utility;
        alt->excluded_by = c->excluded_by;
    }
    qsort(d->alternatives->elts, d->alternatives->nelts, sizeof(fl_alternative_t), by_utility);
    d->chosen = ch->c[chosen].m;
    d->chosen_score = ch->c[chosen].utility;
    d->confidence = ch->c[chosen].conf;
    d->phase = fl_phase_name(ch->c[chosen].phase);
    json_object_set_new(d->signals, "candidates", cands);
}

static void constraints_json(const choice_t *ch, int fell_back, fl_decision_t *d)
{
    const fl_limits_t *l = &ch->ctx->limits;
    json_t *o = d->constraints;
#define LIMIT(k) json_object_set_new(o, #k, l->k >= 0 ? json_real(l->k) : json_null())
    LIMIT(max_regression);
    LIMIT(max_cost_increase);
    LIMIT(confidence_threshold);
#undef LIMIT
    /* what max_regression's bound had to clear, and how wide the bound was drawn */
    json_object_set_new(o, "quality_floor",
                        l->max_regression >= 0 ? json_real(ch->floor) : json_null());
    json_object_set_new(o, "regression_z",
                        l->max_regression >= 0 ? json_real(ch->pol->regression_z) : json_null());
    json_object_set_new(o, "rolling_cost_per_request_usd", json_real(ch->rolling_cost));
    json_object_set_new(o, "excluded", json_incref(ch->excluded));
    json_object_set_new(o, "fell_back_to_default", json_boolean(fell_back));
}

void fl_router_choose(const fl_route_t *route, const fl_route_ctx_t *ctx, fl_decision_t *d)
{
    choice_t ch;
    double explore_draw, explore;
    int chosen, sticky, fell_back = 0;

    ch.route = route;
    ch.ctx = ctx;
    ch.pol = ctx->snap ? fl_snapshot_policy(ctx->snap) : ctx->policy;
    ch.n = route->candidates->nelts;
    ch.c = apr_pcalloc(d->alternatives->pool, sizeof(cand_t) * ch.n);
    ch.excluded = json_object();
    for (chosen = 0; chosen < ch.n; chosen++) {
        ch.c[chosen].m = APR_ARRAY_IDX(route->candidates, chosen, fl_model_t *);
    }
    explore = route->explore >= 0 ? route->explore : ch.pol->explore;
    explore_draw = fl_rng_uniform(ctx->rng);
    ch.exploring = explore_draw < explore;
    estimate(&ch);
    apply_limits(&ch);
    sample(&ch);
    chosen = pick(&ch, explore_draw < explore, &sticky);
    if (chosen < 0) {
        /* every candidate is excluded: the route's default serves, and the decision says so */
        chosen = 0;
        fell_back = 1;
    }
    fill(&ch, chosen, d);
    d->route = route->name;
    d->pinned = 0;
    json_object_set_new(d->signals, "policy", json_string("thompson"));
    json_object_set_new(d->signals, "seed", json_string(apr_psprintf(d->alternatives->pool,
                                                          "%" APR_UINT64_T_FMT, ctx->seed)));
    json_object_set_new(d->signals, "explored", json_boolean(explore_draw < explore && !sticky));
    json_object_set_new(d->signals, "sticky", json_boolean(sticky));
    json_object_set_new(d->signals, "default", json_string(ch.c[0].m->id));
    json_object_set_new(d->signals, "cost_weight", json_real(ch.pol->cost_weight));
    constraints_json(&ch, fell_back, d);
    json_decref(ch.excluded);
}

void fl_router_pin(fl_model_t *m, fl_decision_t *d)
{
    d->chosen = m;
    d->chosen_score = 1.0;
    d->route = m->id;
    d->pinned = 1;
    d->phase = "pinned";
    d->confidence = 0.0;
    json_object_set_new(d->signals, "policy", json_string("pinned"));
    json_object_set_new(d->signals, "priced", json_boolean(m->priced));
}
