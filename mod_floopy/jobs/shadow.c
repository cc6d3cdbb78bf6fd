/* Shadow experiments on the chat path. After a non-streamed answer went out, a request on a
 * route where the caller's organisation runs an experiment is drawn (from its decision id, so a
 * replay draws alike); a sampled one becomes a job for the child's judge thread, which takes a
 * sample in the store (the cap holds there), sends the client's request to the candidate, has
 * the judge score both answers and writes the comparison (experiment_results, shown with the
 * decision). The client's answer, headers and timing are settled before any of this starts. */
#include <stdlib.h>
#include <apr_strings.h>

#include "config/config.h"
#include "store/store.h"
#include "route/route.h"
#include "jobs.h"
#include "fl_json.h"
#include "fl_openai.h"
#include "fl_rng.h"
#include "fl_util.h"

#define MAX_SHADOW_BYTES (256 * 1024)  /* a longer request or answer is not shadowed */
#define DRAW_SALT 0x65787074           /* "expt": independent of the judge's own draw */

typedef struct shadow_t {
    const char *experiment_id, *org_id, *decision_id;
    fl_model_t *candidate;
    const char *live_model;
    double live_cost, live_ms;   /* < 0: unknown */
    apr_int64_t live_tokens;     /* < 0: unknown */
    const char *body;            /* the client's request */
    const char *answer;          /* the live answer as the client got it */
    apr_size_t answer_len;
} shadow_t;

/* What the candidate and the judge made of one sample. */
typedef struct outcome_t {
    const char *error;           /* why the candidate gave no answer */
    const char *note;            /* why there are no scores */
    int scored;
    double live[4], cand[4];
    double cost, ms;
    apr_int64_t tokens;
} outcome_t;

/* --- offering (request thread) ------------------------------------------------------------ */

static shadow_t *shadow_make(apr_pool_t *p, const fl_decision_t *d, const floopy_experiment_t *x,
                             fl_model_t *candidate, const char *body, const char *answer,
                             apr_size_t len)
{
    shadow_t *sh = apr_pcalloc(p, sizeof(*sh));
    double cost = fl_cost_usd(&d->price, &d->usage);
    sh->experiment_id = apr_pstrdup(p, x->id);
    sh->org_id = apr_pstrdup(p, d->org_id);
    sh->decision_id = apr_pstrdup(p, d->id);
    sh->candidate = candidate;
    sh->live_model = apr_pstrdup(p, d->chosen->id);
    sh->live_cost = cost;
    sh->live_ms = d->latency_upstream_ms;
    sh->live_tokens = d->usage.total;
    sh->body = apr_pstrdup(p, body);
    sh->answer = apr_pstrmemdup(p, answer, len);
    sh->answer_len = len;
    return sh;
}

static void shadow_run(server_rec *s, apr_pool_t *p, void *baton);

void floopy_shadow_offer(request_rec *r, const fl_decision_t *d, const fl_chat_request_t *cr,
                         const char *answer, apr_size_t len)
{
    floopy_srv_t *conf = floopy_srv(r->server);
    const floopy_experiment_t *x;
    const fl_route_t *route;
    fl_model_t *candidate = NULL;
    apr_pool_t *p;
    char *body;

    if (!d->chosen || d->pinned || !d->route || len > MAX_SHADOW_BYTES
        || !(x = floopy_router_experiment(r, d->org_id, d->route, d->chosen->id, fl_hash_unit(d->id, DRAW_SALT)))) {
        return;
    }
    if (!(body = json_dumps(cr->root, JSON_COMPACT))) return;
    if (strlen(body) > MAX_SHADOW_BYTES
        || apr_pool_create_unmanaged_ex(&p, NULL, NULL) != APR_SUCCESS) {
        free(body);
        return;
    }
    /* a model without a FloopyModel line is made up in the pool it is looked up in, around the
     * very string it was looked up by: both must be the job's */
    if (fl_catalog_lookup(conf->catalog, p, apr_pstrdup(p, x->candidate), &route, &candidate)
        || !candidate) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "FL060: experiment %s: candidate %s is not "
                      "configured here; decision %s is not shadowed", x->id, x->candidate, d->id);
        free(body);
        apr_pool_destroy(p);
        return;
    }
    if (floopy_jobs_submit(floopy_proc(r->server)->jobs, p, shadow_run,
                            shadow_make(p, d, x, candidate, body, answer, len)) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "FL061: job queue full: decision %s is not "
                      "shadowed by experiment %s", d->id, x->id);
    }
    free(body);
}

/* --- running (judge thread) -------------------------------------------------------------- */

/* 1: a sample was taken; 0: none is left (the experiment stopped or completed); -1: the store
 * failed. */
static int take(server_rec *s, apr_pool_t *p, const shadow_t *sh)
{
    ap_dbd_t *db = floopy_db_open(s, p);
    const char *a[3] = { fl_time_sql(p, apr_time_now()), sh->experiment_id, sh->org_id };
    int n = 0;
    apr_status_t rv;
    if (!db) return -1;
    rv = floopy_db_exec(p, db, FLOOPY_SQL_EXPERIMENT_TAKE, 3, a, &n);
    floopy_db_close(s, db);
    return rv != APR_SUCCESS ? -1 : n > 0;
}

static void judge_both(server_rec *s, apr_pool_t *p, const shadow_t *sh, json_t *messages,
                       const char *cand_answer, outcome_t *o)
{
    const floopy_srv_t *conf = floopy_srv(s);
    fl_error_t *e;
    if (!conf->judge_model) {
        o->note = "no judge is configured (FloopyJudge): compared without scores";
        return;
    }
    if ((e = floopy_judge_rate(s, p, messages, sh->answer, sh->answer_len, o->live, NULL))
        || (e = floopy_judge_rate(s, p, messages, cand_answer, strlen(cand_answer), o->cand,
                                  NULL))) {
        o->note = apr_psprintf(p, "the judge could not score: %s", e->message);
        if (strcmp(e->code ? e->code : "", "not_judged")) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "FL062: judge %s could "
                         "not score the shadow comparison of decision %s: %s",
                         conf->judge_model->id, sh->decision_id, e->message);
        }
        return;
    }
    o->scored = 1;
}

/* The candidate's answer to the client's request, then the judge's scores of both answers. */
static void compare(server_rec *s, apr_pool_t *p, const shadow_t *sh, outcome_t *o)
{
    const char *cand_answer = NULL;
    json_t *req = fl_json_pool_own(p, json_loads(sh->body, 0, NULL));
    fl_usage_t usage;
    fl_price_t price;
    fl_error_t *e;

    o->cost = o->ms = -1;
    o->tokens = -1;
    fl_usage_clear(&usage);
    e = floopy_ask(s, p, sh->candidate, sh->body, &cand_answer, &o->ms, &usage);
    if (e) {
        o->error = e->message ? e->message : "the candidate failed";
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, "FL063: experiment %s: "
                     "candidate %s failed on decision %s: %s", sh->experiment_id,
                     sh->candidate->id, sh->decision_id, o->error);
        return;
    }
    floopy_price_of(floopy_proc(s)->prices, p, sh->candidate, &price);
    o->cost = fl_cost_usd(&price, &usage);
    o->tokens = usage.total;
    judge_both(s, p, sh, json_object_get(req, "messages"), cand_answer, o);
}

static const char *num_arg(apr_pool_t *p, double v, int known)
{
    return known ? apr_psprintf(p, "%.10g", v) : NULL;
}

static apr_status_t store(server_rec *s, apr_pool_t *p, const shadow_t *sh, const outcome_t *o)
{
    const floopy_srv_t *conf = floopy_srv(s);
    ap_dbd_t *db = floopy_db_open(s, p);
    char id[FL_UUID_LEN + 1];
    const char *a[24];
    apr_status_t rv;
    int i;
    if (!db) return APR_EGENERAL;
    fl_uuid7(id, apr_time_now());
    a[0] = id; a[1] = sh->experiment_id; a[2] = sh->decision_id; a[3] = sh->org_id;
    a[4] = sh->live_model; a[5] = sh->candidate->id;
    a[6] = o->scored ? conf->judge_model->id : NULL;
    for (i = 0; i < 4; i++) {
        a[7 + i] = num_arg(p, o->live[i], o->scored);
        a[11 + i] = num_arg(p, o->cand[i], o->scored);
    }
    a[15] = num_arg(p, sh->live_cost, sh->live_cost >= 0);
    a[16] = num_arg(p, o->cost, o->cost >= 0);
    a[17] = num_arg(p, sh->live_ms, sh->live_ms >= 0);
    a[18] = num_arg(p, o->ms, !o->error && o->ms >= 0);
    a[19] = sh->live_tokens >= 0 ? apr_psprintf(p, "%" APR_INT64_T_FMT, sh->live_tokens) : NULL;
    a[20] = o->tokens >= 0 ? apr_psprintf(p, "%" APR_INT64_T_FMT, o->tokens) : NULL;
    a[21] = o->error;
    a[22] = o->error ? NULL : o->note;
    a[23] = fl_time_sql(p, apr_time_now());
    rv = floopy_db_exec(p, db, FLOOPY_SQL_EXPERIMENT_RESULT_INS, 24, a, NULL);
    floopy_db_close(s, db);
    return rv;
}

static void shadow_run(server_rec *s, apr_pool_t *p, void *baton)
{
    const shadow_t *sh = baton;
    outcome_t o = { 0 };
    int took = take(s, p, sh);
    if (took == 0) {
        /* stopped or completed since this child's snapshot: have it catch up now */
        floopy_router_changed(floopy_proc(s)->router);
        return;
    }
    if (took < 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "FL064: experiment %s: no sample could be "
                     "taken for decision %s (store failed)", sh->experiment_id, sh->decision_id);
        return;
    }
    compare(s, p, sh, &o);
    if (store(s, p, sh, &o) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "FL065: experiment %s: the comparison of "
                     "decision %s could not be stored", sh->experiment_id, sh->decision_id);
    }
}
