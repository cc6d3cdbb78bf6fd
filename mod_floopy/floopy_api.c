/* The read-side endpoints of the gateway: GET /models and GET /decisions/{id}. */
#include <stdlib.h>
#include <apr_strings.h>
#include <http_protocol.h>
#include <scoreboard.h>

#include "mod_floopy.h"
#include "floopy_store.h"
#include "fl_decision.h"
#include "fl_util.h"
#include "fl_openai.h"

static json_t *model_entry(const char *id, apr_time_t created)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "object", json_string("model"));
    json_object_set_new(o, "created", json_integer(apr_time_sec(created)));
    json_object_set_new(o, "owned_by", json_string("floopy"));
    return o;
}

int floopy_handle_models(request_rec *r, const floopy_principal_t *who)
{
    const fl_catalog_t *cat = floopy_srv(r->server)->catalog;
    json_t *list = json_object(), *data = json_array();
    apr_time_t started = ap_scoreboard_image ? ap_scoreboard_image->global->restart_time : 0;
    int i;

    if (r->method_number != M_GET) {
        return floopy_fail(r, 405, "invalid_request_error", "method_not_allowed", NULL,
                           "use GET for /models");
    }
    for (i = 0; i < cat->route_list->nelts; i++) {
        json_array_append_new(data, model_entry(APR_ARRAY_IDX(cat->route_list, i,
                                                              fl_route_t *)->name, started));
    }
    for (i = 0; i < cat->model_list->nelts; i++) {
        json_array_append_new(data, model_entry(APR_ARRAY_IDX(cat->model_list, i,
                                                              fl_model_t *)->id, started));
    }
    json_object_set_new(list, "object", json_string("list"));
    json_object_set_new(list, "data", data);
    return floopy_send_json(r, 200, list);
}

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

static json_t *num_or_null(const char *v)
{
    return v ? json_real(strtod(v, NULL)) : json_null();
}

/* One side of a shadow comparison: row[i..i+4] = model, quality, cost, latency, tokens. */
static json_t *side(const char **row, int i)
{
    json_t *o = json_object();
    json_object_set_new(o, "model", json_string(row[i]));
    json_object_set_new(o, "quality", num_or_null(row[i + 1]));
    json_object_set_new(o, "cost_usd", num_or_null(row[i + 2]));
    json_object_set_new(o, "latency_ms", num_or_null(row[i + 3]));
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

int floopy_handle_decision(request_rec *r, const floopy_principal_t *who, const char *id)
{
    ap_dbd_t *db;
    const char **row = NULL;
    apr_int64_t born;

    if (r->method_number != M_GET) {
        return floopy_fail(r, 405, "invalid_request_error", "method_not_allowed", NULL,
                           "use GET for /decisions/{id}");
    }
    if (!fl_uuid_valid(id)) {
        return floopy_fail(r, 404, "not_found_error", "not_found", "id", "no such decision");
    }
    if (!(db = floopy_db_acquire(r))) {
        return floopy_fail(r, 503, "service_unavailable", "database_unavailable", NULL,
                           "the decision store cannot be reached; try again shortly");
    }
    if (select_decision(r, db, id, who->org_id, &row) != APR_SUCCESS) {
        return floopy_fail(r, 500, "api_error", "internal_error", NULL, "the decision store failed");
    }
    born = fl_uuid7_millis(id);
    if (!row && born >= 0 && apr_time_as_msec(apr_time_now()) - born < FRESH_MS) {
        apr_sleep(FRESH_WAIT);
        select_decision(r, db, id, who->org_id, &row);
    }
    if (!row) {
        /* Another organisation's decision answers exactly as an unknown one does. */
        return floopy_fail(r, 404, "not_found_error", "not_found", "id", "no such decision");
    }
    {
        json_t *d = fl_decision_row_json(r->pool, row);
        json_object_set_new(d, "outcomes", outcomes(r, db, who->org_id, row));
        return floopy_send_json(r, 200, d);
    }
}

/* POST /routing/explain: the decision the router would make now for this chat request, without
 * calling a provider or recording anything. It is built by the same code as a real decision and
 * shown in the same shape, less what only an outcome has. */
int floopy_handle_explain(request_rec *r, const floopy_principal_t *who)
{
    static const char *const outcome[] = { "id", "status", "http_status", "latency_ms", "usage",
        "cost_usd", "cache_hit", "error", "attempts", "completed_at", "created_at", NULL };
    fl_decision_t *d = fl_decision_create(r->pool, apr_time_now());
    const fl_route_t *route = NULL;
    fl_model_t *pinned = NULL;
    fl_chat_request_t *cr;
    const char *args[FL_DECISION_NCOLS], *const *k;
    fl_error_t *e;
    json_t *out;

    if (r->method_number != M_POST) {
        return floopy_fail(r, 405, "invalid_request_error", "method_not_allowed", NULL,
                           "use POST for /routing/explain");
    }
    if ((e = floopy_chat_read(r, &cr, &route, &pinned))) return floopy_send_error(r, e);
    d->org_id = who->org_id;
    d->api_key_id = who->key_id;
    d->stream = cr->stream;
    d->session_id = floopy_session_of(r);
    if ((e = floopy_choose(r, d, route, pinned, 1))) return floopy_send_error(r, e);
    fl_decision_row_args(r->pool, d, args);
    out = fl_decision_row_json(r->pool, args);
    for (k = outcome; *k; k++) json_object_del(out, *k);
    json_object_set_new(out, "object", json_string("floopy.routing_explanation"));
    return floopy_send_json(r, 200, out);
}
