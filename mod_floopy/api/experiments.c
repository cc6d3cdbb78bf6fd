/* Shadow experiments, the API side:
 *   POST /experiments                 start one (admin keys): {route, candidate, sample_rate, sample_cap}
 *   GET  /experiments                 the organisation's, newest first (paging.c pages it)
 *   GET  /experiments/{id}            one, with its counts, compared quality and deltas
 *   POST /experiments/{id}/rollback   stop one at once (admin keys)
 * Starting and rolling back are audit events written in the same transaction as the change. Every
 * child learns of the change from its router snapshot (floopy_learn.c): this one at once, the
 * others within FloopyRouter refresh=; a sample is only taken in the store while the experiment
 * runs, so a rollback stops sampling everywhere at once. floopy_shadow.c does the sampling. */
#include <math.h>
#include <apr_strings.h>
#include <http_protocol.h>

#include "config/config.h"
#include "store/store.h"
#include "route/route.h"
#include "api.h"
#include "fl_json.h"
#include "fl_util.h"

#define MAX_CAP 1000000000L

/* --- the experiment as the API shows it ---------------------------------------------------- */

static json_t *num_col(const char *v)
{
    double d;
    if (!v) return json_null();
    d = strtod(v, NULL);
    return isfinite(d) ? json_real(d) : json_null();
}

static json_t *int_col(const char *v)
{
    return v ? json_integer(apr_atoi64(v)) : json_integer(0);
}

static json_t *time_col(apr_pool_t *p, const char *v)
{
    return v ? json_string(fl_time_sql_to_iso(p, v)) : json_null();
}

/* mean with its standard error (null below two comparisons) */
static json_t *estimate(const char **row, int mean, int se, int n)
{
    json_t *o = json_object();
    json_object_set_new(o, "mean", num_col(row[mean]));
    json_object_set_new(o, "stderr", num_col(row[se]));
    json_object_set_new(o, "n", int_col(row[n]));
    return o;
}

static json_t *quality(const char **row)
{
    json_t *o = json_object(), *d = estimate(row, FLOOPY_XC_DELTA_Q, FLOOPY_XC_DELTA_Q_SE,
                                             FLOOPY_XC_JUDGED);
    json_t *mean = json_object_get(d, "mean"), *se = json_object_get(d, "stderr");
    json_object_set_new(o, "scale", json_string("judge score 1..10, the mean of relevance, "
                                                "coherence, helpfulness and safety"));
    json_object_set_new(o, "live", estimate(row, FLOOPY_XC_LIVE_Q, FLOOPY_XC_LIVE_Q_SE,
                                            FLOOPY_XC_JUDGED));
    json_object_set_new(o, "candidate", estimate(row, FLOOPY_XC_CAND_Q, FLOOPY_XC_CAND_Q_SE,
                                                 FLOOPY_XC_JUDGED));
    /* paired: the same requests answered by both, so the difference's error is the smaller */
    if (json_is_number(mean) && json_is_number(se)) {
        json_t *ci = json_array();
        json_array_append_new(ci, json_real(json_number_value(mean) - 1.96 * json_number_value(se)));
        json_array_append_new(ci, json_real(json_number_value(mean) + 1.96 * json_number_value(se)));
        json_object_set_new(d, "ci95", ci);
    }
    else {
        json_object_set_new(d, "ci95", json_null());
    }
    json_object_set_new(o, "difference", d);
    return o;
}

static json_t *delta(const char **row, int live, int cand, int diff, int n)
{
    json_t *o = json_object();
    json_object_set_new(o, "live_mean", num_col(row[live]));
    json_object_set_new(o, "candidate_mean", num_col(row[cand]));
    json_object_set_new(o, "delta_mean", num_col(row[diff]));
    json_object_set_new(o, "n", int_col(row[n]));
    return o;
}

static json_t *experiment_json(apr_pool_t *p, const char **row)
{
    json_t *o = json_object(), *counts = json_object();
    json_object_set_new(o, "id", json_string(row[FLOOPY_XC_ID]));
    json_object_set_new(o, "object", json_string("floopy.experiment"));
    json_object_set_new(o, "organization_id", json_string(row[FLOOPY_XC_ORG]));
    json_object_set_new(o, "route", json_string(row[FLOOPY_XC_ROUTE]));
    json_object_set_new(o, "candidate", json_string(row[FLOOPY_XC_CANDIDATE]));
    json_object_set_new(o, "sample_rate", num_col(row[FLOOPY_XC_RATE]));
    json_object_set_new(o, "sample_cap", int_col(row[FLOOPY_XC_CAP]));
    json_object_set_new(o, "status", json_string(row[FLOOPY_XC_STATUS]));
    json_object_set_new(o, "created_by", json_string(row[FLOOPY_XC_CREATED_BY]));
    json_object_set_new(o, "created_at", time_col(p, row[FLOOPY_XC_CREATED_AT]));
    json_object_set_new(o, "stopped_at", time_col(p, row[FLOOPY_XC_STOPPED_AT]));
    json_object_set_new(o, "stopped_by", row[FLOOPY_XC_STOPPED_BY]
                                         ? json_string(row[FLOOPY_XC_STOPPED_BY]) : json_null());
    json_object_set_new(counts, "sampled", int_col(row[FLOOPY_XC_SAMPLED]));
    json_object_set_new(counts, "compared", int_col(row[FLOOPY_XC_COMPARED]));
    json_object_set_new(counts, "candidate_errors", int_col(row[FLOOPY_XC_CAND_ERRORS]));
    json_object_set_new(counts, "judged", int_col(row[FLOOPY_XC_JUDGED]));
    json_object_set_new(o, "counts", counts);
    json_object_set_new(o, "quality", quality(row));
    json_object_set_new(o, "cost_usd", delta(row, FLOOPY_XC_LIVE_COST, FLOOPY_XC_CAND_COST,
                                             FLOOPY_XC_COST_DELTA, FLOOPY_XC_COSTED));
    json_object_set_new(o, "latency_ms", delta(row, FLOOPY_XC_LIVE_LAT, FLOOPY_XC_CAND_LAT,
                                               FLOOPY_XC_LAT_DELTA, FLOOPY_XC_TIMED));
    return o;
}

/* The organisation's experiment: APR_SUCCESS with *prow NULL when it has none by that id. */
static apr_status_t load(request_rec *r, ap_dbd_t *db, const char *id, const char *org,
                         const char ***prow)
{
    const char *args[2] = { id, org };
    apr_array_header_t *rows;
    apr_status_t rv = floopy_db_select(r->pool, db, FLOOPY_SQL_EXPERIMENT_GET, 2, args, &rows, NULL);
    *prow = rv == APR_SUCCESS && rows->nelts ? APR_ARRAY_IDX(rows, 0, const char **) : NULL;
    return rv;
}

static int no_such(request_rec *r)
{
    /* another organisation's experiment answers exactly as an unknown one does */
    return floopy_fail_as(r, FLOOPY_E_NOT_FOUND, "id", "experiment");
}

/* --- starting ------------------------------------------------------------------------------- */

typedef struct start_t {
    const char *route, *candidate, *rate, *cap;
} start_t;

static fl_error_t *need_string(request_rec *r, json_t *body, const char *k, const char **out)
{
    json_t *v = json_object_get(body, k);
    if (!v) {
        return fl_error_make(r->pool, 400, "invalid_request_error", "missing_required_parameter",
                             k, "'%s' is required", k);
    }
    if (!json_is_string(v) || !*json_string_value(v)) {
        return fl_error_invalid(r->pool, "invalid_type", k, "'%s' must be a non-empty string", k);
    }
    *out = json_string_value(v);
    return NULL;
}

static fl_error_t *need_number(request_rec *r, json_t *body, const char *k, double *out)
{
    json_t *v = json_object_get(body, k);
    if (!v) {
        return fl_error_make(r->pool, 400, "invalid_request_error", "missing_required_parameter",
                             k, "'%s' is required", k);
    }
    if (!json_is_number(v)) {
        return fl_error_invalid(r->pool, "invalid_type", k, "'%s' must be a number", k);
    }
    *out = json_number_value(v);
    return NULL;
}

/* route and candidate: a route of this server, and a provider/model that is not the only model
 * the route ever answers with (there would be nothing to compare). */
static fl_error_t *check_models(request_rec *r, start_t *st)
{
    const fl_catalog_t *cat = floopy_srv(r->server)->catalog;
    const fl_route_t *route = apr_hash_get(cat->routes, st->route, APR_HASH_KEY_STRING), *cr = NULL;
    fl_model_t *cand = NULL;
    if (!route) {
        return fl_error_invalid(r->pool, "invalid_value", "route", "'%s' is not a configured "
                                "route (FloopyRoute)", st->route);
    }
    if (fl_catalog_lookup(cat, r->pool, st->candidate, &cr, &cand) || !cand) {
        return fl_error_invalid(r->pool, "invalid_value", "candidate", "'%s' is not a "
                                "provider/model of a configured provider", st->candidate);
    }
    if (route->candidates->nelts == 1
        && !strcmp(APR_ARRAY_IDX(route->candidates, 0, fl_model_t *)->id, cand->id)) {
        return fl_error_invalid(r->pool, "invalid_value", "candidate", "route '%s' always "
                                "answers with %s: there is nothing to compare", st->route, cand->id);
    }
    st->candidate = cand->id;
    return NULL;
}

static fl_error_t *parse_start(request_rec *r, json_t *body, start_t *st)
{
    static const char *const known[] = { "route", "candidate", "sample_rate", "sample_cap", NULL };
    const char *key, *const *k;
    json_t *v;
    double rate, cap;
    fl_error_t *e;
    json_object_foreach(body, key, v) {
        for (k = known; *k && strcmp(*k, key); k++);
        if (!*k) {
            return fl_error_invalid(r->pool, "invalid_value", key, "'%s' is not a field of an "
                                    "experiment (route, candidate, sample_rate, sample_cap)", key);
        }
    }
    if ((e = need_string(r, body, "route", &st->route))
        || (e = need_string(r, body, "candidate", &st->candidate))
        || (e = need_number(r, body, "sample_rate", &rate))
        || (e = need_number(r, body, "sample_cap", &cap))) {
        return e;
    }
    if (!(rate > 0 && rate <= 1)) {
        return fl_error_invalid(r->pool, "invalid_value", "sample_rate", "'sample_rate' must be "
                                "more than 0 and at most 1");
    }
    if (cap < 1 || cap > MAX_CAP || cap != floor(cap)) {
        return fl_error_invalid(r->pool, "invalid_value", "sample_cap", "'sample_cap' must be a "
                                "whole number from 1 to %ld", MAX_CAP);
    }
    st->rate = apr_psprintf(r->pool, "%.10g", rate);
    st->cap = apr_psprintf(r->pool, "%ld", (long)cap);
    return check_models(r, st);
}

static json_t *start_after(const char *id, const start_t *st)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "route", json_string(st->route));
    json_object_set_new(o, "candidate", json_string(st->candidate));
    json_object_set_new(o, "sample_rate", json_real(strtod(st->rate, NULL)));
    json_object_set_new(o, "sample_cap", json_integer(apr_atoi64(st->cap)));
    json_object_set_new(o, "status", json_string("running"));
    return o;
}

static int send_experiment(request_rec *r, ap_dbd_t *db, int status, const char *id,
                           const char *org)
{
    const char **row;
    if (load(r, db, id, org, &row) != APR_SUCCESS || !row) {
        return floopy_fail_as(r, FLOOPY_E_INTERNAL, NULL, NULL);
    }
    return floopy_send_json(r, status, experiment_json(r->pool, row));
}

static int start(request_rec *r, const floopy_principal_t *who, ap_dbd_t *db)
{
    const char *actor = apr_pstrcat(r->pool, "api_key:", who->key_id, NULL), *args[10];
    char id[FL_UUID_LEN + 1];
    floopy_stmt_t stmt = { FLOOPY_SQL_EXPERIMENT_INS, 10, args };
    start_t st;
    json_t *body;
    fl_error_t *e;
    apr_status_t rv;

    if ((e = floopy_read_json(r, &body)) || (e = parse_start(r, body, &st))) {
        return floopy_send_error(r, e);
    }
    fl_uuid7(id, apr_time_now());
    args[0] = id; args[1] = who->org_id; args[2] = st.route; args[3] = st.candidate;
    args[4] = st.rate; args[5] = st.cap; args[6] = actor;
    args[7] = fl_time_sql(r->pool, apr_time_now());
    args[8] = who->org_id; args[9] = st.route;
    rv = floopy_write_audited(r->pool, db, &stmt, 1, who->org_id, actor, "experiment.start", id,
                              NULL, fl_json_pool_own(r->pool, start_after(id, &st)));
    if (rv == APR_NOTFOUND) {
        return floopy_fail(r, 409, "invalid_request_error", "experiment_running", "route",
                           apr_psprintf(r->pool, "an experiment already runs on route '%s'; "
                                        "roll it back first", st.route));
    }
    if (rv != APR_SUCCESS) {
        return floopy_fail_as(r, FLOOPY_E_INTERNAL, NULL,
                              "the experiment could not be stored; nothing started");
    }
    floopy_router_settle(floopy_proc(r->server)->router, FLOOPY_SETTLE_MAX);
    return send_experiment(r, db, 201, id, who->org_id);
}

/* --- stopping ------------------------------------------------------------------------------- */

static json_t *state(const char *status, const char *sampled, const char *at, const char *by)
{
    json_t *o = json_object();
    json_object_set_new(o, "status", json_string(status));
    json_object_set_new(o, "sampled", json_integer(apr_atoi64(sampled)));
    json_object_set_new(o, "stopped_at", at ? json_string(at) : json_null());
    json_object_set_new(o, "stopped_by", by ? json_string(by) : json_null());
    return o;
}

static int rollback(request_rec *r, const floopy_principal_t *who, ap_dbd_t *db, const char *id)
{
    const char *actor = apr_pstrcat(r->pool, "api_key:", who->key_id, NULL), *args[4], **row;
    apr_time_t now = apr_time_now();
    floopy_stmt_t stmt = { FLOOPY_SQL_EXPERIMENT_STOP, 4, args };
    json_t *before, *after;
    apr_status_t rv;

    if (load(r, db, id, who->org_id, &row) != APR_SUCCESS) {
        return floopy_fail_as(r, FLOOPY_E_INTERNAL, NULL, NULL);
    }
    if (!row) return no_such(r);
    args[0] = fl_time_sql(r->pool, now); args[1] = actor; args[2] = id; args[3] = who->org_id;
    before = fl_json_pool_own(r->pool, state(row[FLOOPY_XC_STATUS], row[FLOOPY_XC_SAMPLED],
                                             NULL, NULL));
    after = fl_json_pool_own(r->pool, state("stopped", row[FLOOPY_XC_SAMPLED],
                                            fl_time_sql_to_iso(r->pool, args[0]), actor));
    rv = strcmp(row[FLOOPY_XC_STATUS], "running") ? APR_NOTFOUND
       : floopy_write_audited(r->pool, db, &stmt, 1, who->org_id, actor, "experiment.rollback",
                              id, before, after);
    if (rv == APR_NOTFOUND) {
        /* stopped or completed already, perhaps by a sample that reached the cap just now */
        return floopy_fail(r, 409, "invalid_request_error", "experiment_not_running", "id",
                           "the experiment is not running; nothing to roll back");
    }
    if (rv != APR_SUCCESS) {
        return floopy_fail_as(r, FLOOPY_E_INTERNAL, NULL,
                              "the rollback could not be stored; the experiment still runs");
    }
    floopy_router_settle(floopy_proc(r->server)->router, FLOOPY_SETTLE_MAX);
    return send_experiment(r, db, 200, id, who->org_id);
}

/* --- the endpoints ------------------------------------------------------------------------ */

int floopy_handle_experiment(request_rec *r, const floopy_principal_t *who, const char *const *arg)
{
    const char **row;
    ap_dbd_t *db;
    if (!fl_uuid_valid(arg[0])) return no_such(r);
    if (!(db = floopy_db_acquire(r))) return floopy_fail_as(r, FLOOPY_E_UNAVAILABLE, NULL, NULL);
    if (load(r, db, arg[0], who->org_id, &row) != APR_SUCCESS) {
        return floopy_fail_as(r, FLOOPY_E_INTERNAL, NULL, NULL);
    }
    if (!row) return no_such(r);
    return floopy_send_json(r, 200, experiment_json(r->pool, row));
}

int floopy_handle_experiment_rollback(request_rec *r, const floopy_principal_t *who,
                                      const char *const *arg)
{
    ap_dbd_t *db;
    if (!fl_uuid_valid(arg[0])) return no_such(r);
    if (!(db = floopy_db_acquire(r))) return floopy_fail_as(r, FLOOPY_E_UNAVAILABLE, NULL, NULL);
    return rollback(r, who, db, arg[0]);
}

int floopy_handle_experiment_start(request_rec *r, const floopy_principal_t *who,
                                   const char *const *arg)
{
    ap_dbd_t *db = floopy_db_acquire(r);
    if (!db) return floopy_fail_as(r, FLOOPY_E_UNAVAILABLE, NULL, NULL);
    return start(r, who, db);
}

/* Experiments are written as the API call returns, not by the decision writer, so their list
 * needs no settling; it is paged like the others all the same. */
int floopy_handle_experiment_list(request_rec *r, const floopy_principal_t *who, const char *const *arg)
{
    static const char *const known[] = { "limit", "cursor", "status", "route", NULL };
    floopy_page_query_t q;
    fl_error_t *e;
    const char *args[6], *status;

    if ((e = floopy_page_parse(r, known, 0, &q))) return floopy_send_error(r, e);
    status = apr_table_get(q.args, "status");
    if (status && strcmp(status, "running") && strcmp(status, "stopped")
        && strcmp(status, "completed")) {
        return floopy_send_error(r, floopy_bad_param(r, "status", "must be running, stopped or completed"));
    }
    args[0] = who->org_id; args[1] = q.below;
    args[2] = args[3] = status;
    args[4] = args[5] = apr_table_get(q.args, "route");
    return floopy_page_send(r, FLOOPY_SQL_EXPERIMENT_LIST, &q, 6, args, experiment_json);
}
