/* GET /decisions/{id} (every plan) and GET /decisions (pro and enterprise): the receipts. */
#include <stdlib.h>
#include <apr_strings.h>
#include <http_protocol.h>

#include "store/store.h"
#include "jobs/jobs.h"
#include "api.h"
#include "fl_decision.h"
#include "fl_util.h"

/* rows younger than this may still be on their way to the store: lists leave them out */
#define SETTLE apr_time_from_sec(2)

/* A decision is written within FloopyWriterInterval of its answer. A read that races the
 * writer for a brand-new id waits for it once rather than answering 404 for a real decision. */
#define FRESH_MS 2000
#define FRESH_WAIT apr_time_from_msec(150)

static apr_status_t select_decision(request_rec *r, ap_dbd_t *db, const char *id,
                                    const char *org, const char ***prow)
{
    const char *args[2] = { id, org };
    apr_array_header_t *rows;
    apr_status_t rv = floopy_db_select(r->pool, db, FLOOPY_SQL_DECISION_GET, 2, args, &rows, NULL);
    *prow = (rv == APR_SUCCESS && rows->nelts) ? APR_ARRAY_IDX(rows, 0, const char **) : NULL;
    return rv;
}

/* One side of a shadow comparison: row[i..i+4] = model, quality, cost, latency, tokens. */
static json_t *side(const char **row, int i)
{
    json_t *o = json_object();
    json_object_set_new(o, "model", json_string(row[i]));
    json_object_set_new(o, "quality", floopy_num_or_null(row[i + 1]));
    json_object_set_new(o, "cost_usd", floopy_num_or_null(row[i + 2]));
    json_object_set_new(o, "latency_ms", floopy_num_or_null(row[i + 3]));
    json_object_set_new(o, "tokens", row[i + 4] ? json_integer(apr_atoi64(row[i + 4])) : json_null());
    return o;
}

/* The shadow experiments' comparisons made on this decision's request. */
static json_t *shadows(request_rec *r, ap_dbd_t *db, const char *org, const char *id)
{
    const char *a[2] = { org, id };
    apr_array_header_t *rows;
    json_t *list = json_array();
    int i;
    if (floopy_db_select(r->pool, db, FLOOPY_SQL_OUTCOMES_EXPERIMENT, 2, a, &rows, NULL)) return list;
    for (i = 0; i < rows->nelts; i++) {
        const char **x = APR_ARRAY_IDX(rows, i, const char **);
        json_t *e = json_object();
        json_object_set_new(e, "experiment_id", json_string(x[0]));
        json_object_set_new(e, "judge_model", x[1] ? json_string(x[1]) : json_null());
        json_object_set_new(e, "live", side(x, 2));
        json_object_set_new(e, "candidate", side(x, 7));
        json_object_set_new(e, "candidate_error", x[12] ? json_string(x[12]) : json_null());
        json_object_set_new(e, "judge_note", x[13] ? json_string(x[13]) : json_null());
        json_object_set_new(e, "created_at", json_string(fl_time_sql_to_iso(r->pool, x[14])));
        json_array_append_new(list, e);
    }
    return list;
}

/* What the decision's outcome signals are so far: its session's standing NPS and its own scores
 * (each with the weight it credited this decision's model), and the judge's scores. */
static json_t *outcomes(request_rec *r, ap_dbd_t *db, const char *org, const char **row)
{
    const char *model = row[FL_COL_PROVIDER]
        ? apr_pstrcat(r->pool, row[FL_COL_PROVIDER], "/", row[FL_COL_MODEL], NULL) : "";
    const char *fa[5] = { row[FL_COL_ROUTE], model, org, row[FL_COL_SESSION], row[FL_COL_ID] };
    const char *ja[2] = { org, row[FL_COL_ID] };
    apr_array_header_t *rows;
    json_t *o = json_object(), *fb = json_array(), *judge = json_array();
    int i;
    if (floopy_db_select(r->pool, db, FLOOPY_SQL_OUTCOMES_FEEDBACK, 5, fa, &rows, NULL) == APR_SUCCESS) {
        for (i = 0; i < rows->nelts; i++) {
            const char **f = APR_ARRAY_IDX(rows, i, const char **);
            json_t *e = json_object();
            json_object_set_new(e, "id", json_string(f[0]));
            json_object_set_new(e, "kind", json_string(f[1]));
            json_object_set_new(e, strcmp(f[1], "session") ? "score" : "nps", json_real(strtod(f[2], NULL)));
            json_object_set_new(e, "comment", f[3] ? json_string(f[3]) : json_null());
            json_object_set_new(e, "created_at", json_string(fl_time_sql_to_iso(r->pool, f[4])));
            json_object_set_new(e, "credited_weight", f[5] ? json_real(strtod(f[5], NULL)) : json_null());
            json_array_append_new(fb, e);
        }
    }
    if (floopy_db_select(r->pool, db, FLOOPY_SQL_OUTCOMES_JUDGE, 2, ja, &rows, NULL) == APR_SUCCESS) {
        for (i = 0; i < rows->nelts; i++) {
            const char **j = APR_ARRAY_IDX(rows, i, const char **);
            json_t *e = json_object();
            int k;
            json_object_set_new(e, "judge_model", json_string(j[0]));
            json_object_set_new(e, "model", json_string(j[1]));
            for (k = 0; k < FLOOPY_JUDGE_NCRITERIA; k++) {
                json_object_set_new(e, floopy_judge_criteria[k], json_real(strtod(j[2 + k], NULL)));
            }
            json_object_set_new(e, "created_at", json_string(fl_time_sql_to_iso(r->pool, j[6])));
            json_array_append_new(judge, e);
        }
    }
    json_object_set_new(o, "feedback", fb);
    json_object_set_new(o, "judge", judge);
    json_object_set_new(o, "experiments", shadows(r, db, org, row[FL_COL_ID]));
    return o;
}

int floopy_handle_decision(request_rec *r, const floopy_principal_t *who, const char *const *arg)
{
    const char *id = arg[0];
    ap_dbd_t *db;
    const char **row = NULL;
    apr_int64_t born;
    if (!fl_uuid_valid(id)) {
        return floopy_fail_as(r, FLOOPY_E_NOT_FOUND, "id", "decision");
    }
    if (!(db = floopy_db_acquire(r))) {
        return floopy_fail_as(r, FLOOPY_E_UNAVAILABLE, NULL, NULL);
    }
    if (select_decision(r, db, id, who->org_id, &row) != APR_SUCCESS) {
        return floopy_fail_as(r, FLOOPY_E_INTERNAL, NULL, "the decision store failed");
    }
    born = fl_uuid7_millis(id);
    if (!row && born >= 0 && apr_time_as_msec(apr_time_now()) - born < FRESH_MS) {
        apr_sleep(FRESH_WAIT);
        select_decision(r, db, id, who->org_id, &row);
    }
    if (!row) {
        /* Another organisation's decision answers exactly as an unknown one does. */
        return floopy_fail_as(r, FLOOPY_E_NOT_FOUND, "id", "decision");
    }
    {
        json_t *d = fl_decision_row_json(r->pool, row);
        json_object_set_new(d, "outcomes", outcomes(r, db, who->org_id, row));
        return floopy_send_json(r, 200, d);
    }
}


static json_t *decision_row(apr_pool_t *p, const char **row)
{
    return fl_decision_row_json(p, row);
}

static fl_error_t *confidence_arg(request_rec *r, apr_table_t *args, const char *k,
                                  const char *dflt, const char **out)
{
    const char *v = apr_table_get(args, k);
    char *end;
    double d;
    *out = dflt;
    if (!v) return NULL;
    d = strtod(v, &end);
    if (*end || end == v || d < 0 || d > 1) return floopy_bad_param(r, k, "must be a number from 0 to 1");
    *out = v;
    return NULL;
}

int floopy_handle_decision_list(request_rec *r, const floopy_principal_t *who, const char *const *arg)
{
    static const char *const known[] = { "limit", "cursor", "from", "to", "provider", "model",
        "route", "session_id", "status", "cache_hit", "min_confidence", "max_confidence", NULL };
    floopy_page_query_t q;
    fl_error_t *e;
    const char *args[20], *provider, *model, *cache_hit = NULL, *slash;

    if (!strcmp(who->plan, "free")) {
        return floopy_fail(r, 403, "permission_error", "plan_required", NULL,
                           "listing decisions needs the pro or enterprise plan; "
                           "GET /v1/decisions/{id} works on every plan");
    }
    if ((e = floopy_page_parse(r, known, SETTLE, &q))) return floopy_send_error(r, e);
    provider = apr_table_get(q.args, "provider");
    model = apr_table_get(q.args, "model");
    if (model && (slash = strchr(model, '/'))) {   /* provider/model in one */
        provider = apr_pstrmemdup(r->pool, model, (apr_size_t)(slash - model));
        model = slash + 1;
    }
    if (apr_table_get(q.args, "cache_hit")) {
        const char *v = apr_table_get(q.args, "cache_hit");
        if (strcmp(v, "true") && strcmp(v, "false")) {
            return floopy_send_error(r, floopy_bad_param(r, "cache_hit", "must be true or false"));
        }
        cache_hit = strcmp(v, "true") ? "0" : "1";
    }
    args[0] = who->org_id; args[1] = q.below; args[2] = q.from_sql; args[3] = q.to_sql;
    args[4] = args[5] = provider;
    args[6] = args[7] = model;
    args[8] = args[9] = apr_table_get(q.args, "route");
    args[10] = args[11] = apr_table_get(q.args, "session_id");
    args[12] = args[13] = apr_table_get(q.args, "status");
    args[14] = args[15] = cache_hit;
    if ((e = confidence_arg(r, q.args, "min_confidence", "0", &args[16]))
        || (e = confidence_arg(r, q.args, "max_confidence", "1", &args[17]))) {
        return floopy_send_error(r, e);
    }
    return floopy_page_send(r, FLOOPY_SQL_DECISION_LIST, &q, 18, args, decision_row);
}

