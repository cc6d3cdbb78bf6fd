#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <apr_strings.h>

#include "fl_router.h"
#include "fl_json.h"

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

/* The first limit that excludes a candidate is the one recorded. */
static void exclude(cand_t *c, const char *by)
{
    if (!c->excluded_by) c->excluded_by = by;
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
            if (c->lower < ch->floor) exclude(c, "max_regression");
        }
        else if (i > 0 && l->max_regression >= 0 && !ch->exploring && c->mean < ch->floor) {
            exclude(c, "max_regression");
        }
        if (l->max_cost_increase >= 0
            && c->cost > ch->rolling_cost * (1.0 + l->max_cost_increase / 100.0) + 1e-12) {
            exclude(c, "max_cost_increase");
        }
        if (i > 0 && l->confidence_threshold >= 0 && !ch->exploring
            && c->conf < l->confidence_threshold) {
            exclude(c, "confidence_threshold");
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

/* --- what a decision records ------------------------------------------------------------
 * Dumping the signals and constraints cost a decision more than choosing does, yet most of
 * what they show stays put while a snapshot lasts. So each is rendered (by Jansson) from a key
 * holding exactly the values it shows, and the rendering is kept with the snapshot
 * (fl_snapshot_memo), found by the key and reused only for an equal one: whatever the values
 * come from (the snapshot, live prices, limits), a decision shows what rendering it afresh
 * would. A decision in steady state dumps only its own draw. */

/* A rendering kept with the snapshot (one malloc'd block): its key, then its text. */
typedef struct kept_t {
    apr_size_t key_len, text_len;
    char data[];                 /* key_len bytes of key, then the text and a NUL */
} kept_t;

typedef const char *render_fn(apr_pool_t *p, const void *key, apr_size_t *len);

/* What render makes of key: the snapshot's rendering of an equal key when it has one, else one
 * made now (and kept when the snapshot's slot for it is free). NULL when Jansson fails. */
static const char *memo(apr_pool_t *p, const fl_snapshot_t *snap, const void *key,
                        apr_size_t klen, render_fn *render, apr_size_t *len)
{
    const kept_t *kept = NULL;
    apr_uint64_t h = 0;
    const char *text;
    kept_t *k;
    if (snap) {
        h = fl_hash64(key, klen, 0);
        kept = fl_snapshot_memo(snap, h);
        if (kept && kept->key_len == klen && !memcmp(kept->data, key, klen)) {
            *len = kept->text_len;
            return kept->data + klen;
        }
    }
    if (!(text = render(p, key, len)) || kept || !snap) return text;
    if ((k = malloc(sizeof(*k) + klen + *len + 1))) {
        k->key_len = klen;
        k->text_len = *len;
        memcpy(k->data, key, klen);
        memcpy(k->data + klen, text, *len + 1);
        if (!fl_snapshot_memo_keep(snap, h, k)) free(k);
    }
    return text;
}

/* What a candidate's signals show besides its draw. Zeroed before it is filled: keys compare
 * and hash as bytes. */
typedef struct cand_key_t {
    const fl_model_t *m;
    double mean, sd, own_n, bench_n, pool_n, cost, latency, conf, lower;
    int phase, cost_from_usage, has_latency, spare;
} cand_key_t;

static void cand_key(const cand_t *c, cand_key_t *k)
{
    memset(k, 0, sizeof(*k));
    k->m = c->m;
    k->mean = c->mean;
    k->sd = c->sd;
    k->own_n = c->v.own.n;
    k->bench_n = c->v.bench.n;
    k->pool_n = c->v.pool.n;
    k->cost = c->cost;
    k->has_latency = c->v.usage.requests > 0;
    k->latency = k->has_latency ? c->v.usage.latency_ms / c->v.usage.requests : 0;
    k->conf = c->conf;
    k->lower = c->lower;
    k->phase = c->phase;
    k->cost_from_usage = c->cost_from_usage;
}

/* The members before the draw and those after it, each run without braces, joined by a NUL. */
static const char *cand_render(apr_pool_t *p, const void *key, apr_size_t *len)
{
    const cand_key_t *k = key;
    json_t *head = json_object(), *tail = json_object();
    const char *h, *t;
    char *out = NULL;
    apr_size_t hn, tn;
    json_object_set_new(head, "model", json_string(k->m->id));
    json_object_set_new(head, "phase", json_string(fl_phase_name(k->phase)));
    json_object_set_new(head, "quality", json_real(k->mean));
    json_object_set_new(head, "quality_sd", json_real(k->sd));
    json_object_set_new(head, "observations", json_real(k->own_n));
    json_object_set_new(head, "prior_benchmark", json_real(k->bench_n));
    json_object_set_new(head, "prior_pooled", json_real(k->pool_n));
    json_object_set_new(head, "cost_per_request_usd", json_real(k->cost));
    json_object_set_new(head, "cost_source", json_string(k->cost_from_usage ? "usage" : "price"));
    json_object_set_new(head, "latency_ms", k->has_latency ? json_real(k->latency) : json_null());
    json_object_set_new(tail, "confidence", json_real(k->conf));
    json_object_set_new(tail, "quality_lower_bound",
                        k->lower >= 0 ? json_real(k->lower) : json_null());
    if ((h = fl_json_members(p, head, &hn)) && (t = fl_json_members(p, tail, &tn))) {
        out = apr_palloc(p, hn + tn + 2);
        memcpy(out, h, hn + 1);
        memcpy(out + hn + 1, t, tn + 1);
        *len = hn + 1 + tn;
    }
    json_decref(head);
    json_decref(tail);
    return out;
}

/* signals.candidates: each candidate's rendering around its own draw (dumped by Jansson), as
 * one array; only the brackets, braces and commas that join the runs are written here. */
static const char *candidates_text(apr_pool_t *p, const choice_t *ch)
{
    struct iovec *vec = apr_palloc(p, sizeof(*vec) * (apr_size_t)(ch->n * 6 + 1));
    json_t *draw = json_object(), *sample = json_real(0), *utility = json_real(0);
    const char *out = NULL;
    int i, nv = 0, ok = 1;
    json_object_set(draw, "sample", sample);
    json_object_set(draw, "utility", utility);
#define PUT(s, n) (vec[nv].iov_base = (void *)(s), vec[nv++].iov_len = (n))
    for (i = 0; i < ch->n && ok; i++) {
        cand_key_t k;
        apr_size_t len, hn, dn;
        const char *text, *d;
        cand_key(&ch->c[i], &k);
        text = memo(p, ch->ctx->snap, &k, sizeof(k), cand_render, &len);
        json_real_set(sample, ch->c[i].sample);
        json_real_set(utility, ch->c[i].utility);
        d = fl_json_members(p, draw, &dn);
        if (!text || !d) {
            ok = 0;
            break;
        }
        hn = strlen(text);
        PUT(i ? "},{" : "[{", i ? 3u : 2u);
        PUT(text, hn);
        PUT(",", 1);
        PUT(d, dn);
        PUT(",", 1);
        PUT(text + hn + 1, len - hn - 1);
    }
    PUT("}]", 2);
#undef PUT
    if (ok) out = apr_pstrcatv(p, vec, (apr_size_t)nv, NULL);
    json_decref(sample);
    json_decref(utility);
    json_decref(draw);
    return out;
}

/* What the constraints show: the limits and what they judged with, and which candidate each
 * excluded (in candidate order, as they were judged). */
typedef struct limits_key_t {
    double limit[3], floor, z, rolling;
    int fell_back, n;
    struct {
        const fl_model_t *m;
        const char *by;          /* one of apply_limits' constants, or NULL */
    } c[];
} limits_key_t;

static const char *limits_render(apr_pool_t *p, const void *key, apr_size_t *len)
{
    static const char *const names[3] = { "max_regression", "max_cost_increase",
                                          "confidence_threshold" };
    const limits_key_t *k = key;
    json_t *o = json_object(), *excluded = json_object();
    const char *out;
    int i;
    for (i = 0; i < 3; i++) {
        json_object_set_new(o, names[i], k->limit[i] >= 0 ? json_real(k->limit[i]) : json_null());
    }
    /* what max_regression's bound had to clear, and how wide the bound was drawn */
    json_object_set_new(o, "quality_floor", k->limit[0] >= 0 ? json_real(k->floor) : json_null());
    json_object_set_new(o, "regression_z", k->limit[0] >= 0 ? json_real(k->z) : json_null());
    json_object_set_new(o, "rolling_cost_per_request_usd", json_real(k->rolling));
    for (i = 0; i < k->n; i++) {
        json_t *list;
        if (!k->c[i].by) continue;
        if (!(list = json_object_get(excluded, k->c[i].by))) {
            json_object_set_new(excluded, k->c[i].by, list = json_array());
        }
        json_array_append_new(list, json_string(k->c[i].m->id));
    }
    json_object_set_new(o, "excluded", excluded);
    json_object_set_new(o, "fell_back_to_default", json_boolean(k->fell_back));
    out = fl_json_dump(p, o, 1);
    *len = strlen(out);
    return out;
}

static const char *constraints_text(apr_pool_t *p, const choice_t *ch, int fell_back)
{
    const fl_limits_t *l = &ch->ctx->limits;
    apr_size_t size = sizeof(limits_key_t) + sizeof(((limits_key_t *)0)->c[0]) * (apr_size_t)ch->n;
    limits_key_t *k = apr_pcalloc(p, size);
    const char *text;
    apr_size_t len;
    int i;
    k->limit[0] = l->max_regression;
    k->limit[1] = l->max_cost_increase;
    k->limit[2] = l->confidence_threshold;
    if (l->max_regression >= 0) {
        k->floor = ch->floor;
        k->z = ch->pol->regression_z;
    }
    k->rolling = ch->rolling_cost;
    k->fell_back = fell_back;
    k->n = ch->n;
    for (i = 0; i < ch->n; i++) {
        k->c[i].m = ch->c[i].m;
        k->c[i].by = ch->c[i].excluded_by;
    }
    /* a copy: the decision may outlive its hold on the snapshot that keeps the rendering */
    text = memo(p, ch->ctx->snap, k, size, limits_render, &len);
    return text ? apr_pstrmemdup(p, text, len) : NULL;
}

static int by_utility(const void *a, const void *b)
{
    const fl_alternative_t *x = a, *y = b;
    if (!x->excluded_by != !y->excluded_by) return x->excluded_by ? 1 : -1;
    return x->score < y->score ? 1 : x->score > y->score ? -1 : 0;
}

static void fill(const choice_t *ch, int chosen, fl_decision_t *d)
{
    int i;
    for (i = 0; i < ch->n; i++) {
        const cand_t *c = &ch->c[i];
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
    d->candidates = candidates_text(d->alternatives->pool, ch);
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
    d->constraints = constraints_text(d->alternatives->pool, &ch, fell_back);
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
