/* GET /decisions, GET /audit-events and GET /experiments: newest first, filtered, keyset-paged with an opaque
 * cursor. A page never repeats or skips a row while new ones arrive: rows are ordered by their
 * time-ordered id, new rows sort above every page already served, and rows younger than
 * SETTLE are left out because the decision writer may still be storing their elders. */
#include <apr_strings.h>
#include <http_protocol.h>

#include "mod_floopy.h"
#include "floopy_store.h"
#include "fl_decision.h"
#include "fl_json.h"
#include "fl_util.h"

#define SETTLE apr_time_from_sec(2)
#define CURSOR_PREFIX "c1_"
#define MAX_LIMIT 1000

typedef struct list_query_t {
    apr_table_t *args;
    int limit;
    const char *below;           /* list ids below this one */
    const char *from_sql, *to_sql;
} list_query_t;

static fl_error_t *bad(request_rec *r, const char *param, const char *why)
{
    return fl_error_invalid(r->pool, "invalid_value", param, "'%s' %s", param, why);
}

static fl_error_t *parse_query(request_rec *r, const char *const *known, list_query_t *q)
{
    const char *v;
    fl_error_t *e;

    if ((e = floopy_query(r, known, &q->args))) return e;
    q->limit = 50;
    if ((v = apr_table_get(q->args, "limit"))) {
        char *end;
        long n = strtol(v, &end, 10);
        if (*end || n < 1 || n > MAX_LIMIT) return bad(r, "limit", "must be a whole number from 1 to 1000");
        q->limit = (int)n;
    }
    q->below = "ffffffff-ffff-ffff-ffff-ffffffffffff";
    if ((v = apr_table_get(q->args, "cursor"))) {
        if (strncmp(v, CURSOR_PREFIX, 3) || !fl_uuid_valid(v + 3)) {
            return bad(r, "cursor", "is not a cursor this API gave out");
        }
        q->below = v + 3;
    }
    return floopy_time_window(r, q->args, SETTLE, &q->from_sql, &q->to_sql);
}

static const char *page_label(apr_pool_t *p, const char *prefix, int limit, int *rows)
{
    int i;
    for (i = 0; i < FLOOPY_NPAGE && floopy_page_sizes[i] < limit + 1; i++);
    *rows = floopy_page_sizes[i];
    return apr_psprintf(p, "%s%d", prefix, floopy_page_sizes[i]);
}

/* Runs the page query and answers {"object":"list","data",...,"has_more","next_cursor"}. */
static int send_page(request_rec *r, const char *prefix, const list_query_t *q, int nargs,
                     const char **args, json_t *(*conv)(apr_pool_t *, const char **))
{
    ap_dbd_t *db = floopy_db_acquire(r);
    apr_array_header_t *rows;
    json_t *out, *data;
    int sized, i, shown;

    if (!db) {
        return floopy_fail(r, 503, "service_unavailable", "database_unavailable", NULL,
                           "the store cannot be reached; try again shortly");
    }
    if (floopy_db_select(r->pool, db, page_label(r->pool, prefix, q->limit, &sized), nargs,
                         args, &rows, NULL)) {
        return floopy_fail(r, 500, "api_error", "internal_error", NULL, "the store failed");
    }
    shown = rows->nelts < q->limit ? rows->nelts : q->limit;
    data = json_array();
    for (i = 0; i < shown; i++) {
        json_array_append_new(data, conv(r->pool, APR_ARRAY_IDX(rows, i, const char **)));
    }
    out = json_object();
    json_object_set_new(out, "object", json_string("list"));
    json_object_set_new(out, "data", data);
    json_object_set_new(out, "has_more", json_boolean(rows->nelts > q->limit));
    json_object_set_new(out, "next_cursor", rows->nelts > q->limit
        ? json_string(apr_pstrcat(r->pool, CURSOR_PREFIX,
                                  APR_ARRAY_IDX(rows, shown - 1, const char **)[0], NULL))
        : json_null());
    return floopy_send_json(r, 200, out);
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
    if (*end || end == v || d < 0 || d > 1) return bad(r, k, "must be a number from 0 to 1");
    *out = v;
    return NULL;
}

int floopy_handle_decision_list(request_rec *r, const floopy_principal_t *who)
{
    static const char *const known[] = { "limit", "cursor", "from", "to", "provider", "model",
        "route", "session_id", "status", "cache_hit", "min_confidence", "max_confidence", NULL };
    list_query_t q;
    fl_error_t *e;
    const char *args[20], *provider, *model, *cache_hit = NULL, *slash;

    if (!strcmp(who->plan, "free")) {
        return floopy_fail(r, 403, "permission_error", "plan_required", NULL,
                           "listing decisions needs the pro or enterprise plan; "
                           "GET /v1/decisions/{id} works on every plan");
    }
    if ((e = parse_query(r, known, &q))) return floopy_send_error(r, e);
    provider = apr_table_get(q.args, "provider");
    model = apr_table_get(q.args, "model");
    if (model && (slash = strchr(model, '/'))) {   /* provider/model in one */
        provider = apr_pstrmemdup(r->pool, model, (apr_size_t)(slash - model));
        model = slash + 1;
    }
    if (apr_table_get(q.args, "cache_hit")) {
        const char *v = apr_table_get(q.args, "cache_hit");
        if (strcmp(v, "true") && strcmp(v, "false")) {
            return floopy_send_error(r, bad(r, "cache_hit", "must be true or false"));
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
    return send_page(r, FLOOPY_SQL_DECISION_LIST, &q, 18, args, decision_row);
}

static json_t *json_col(const char *v)
{
    json_t *j = v ? json_loads(v, JSON_DECODE_ANY, NULL) : NULL;
    return j ? j : json_null();
}

static json_t *audit_row(apr_pool_t *p, const char **row)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(row[0]));
    json_object_set_new(o, "object", json_string("audit_event"));
    json_object_set_new(o, "organization_id", row[1] ? json_string(row[1]) : json_null());
    json_object_set_new(o, "actor", json_string(row[2]));
    json_object_set_new(o, "action", json_string(row[3]));
    json_object_set_new(o, "target", row[4] ? json_string(row[4]) : json_null());
    json_object_set_new(o, "before", json_col(row[5]));
    json_object_set_new(o, "after", json_col(row[6]));
    json_object_set_new(o, "created_at", json_string(fl_time_sql_to_iso(p, row[7])));
    return o;
}

int floopy_handle_audit_list(request_rec *r, const floopy_principal_t *who)
{
    static const char *const known[] = { "limit", "cursor", "from", "to", "action", "actor", NULL };
    list_query_t q;
    fl_error_t *e;
    const char *args[8];

    if (strcmp(who->role, "admin")) {
        return floopy_fail(r, 403, "permission_error", "insufficient_role", NULL,
                           "audit events need an admin key of the organisation");
    }
    if ((e = parse_query(r, known, &q))) return floopy_send_error(r, e);
    args[0] = who->org_id; args[1] = q.below; args[2] = q.from_sql; args[3] = q.to_sql;
    args[4] = args[5] = apr_table_get(q.args, "action");
    args[6] = args[7] = apr_table_get(q.args, "actor");
    return send_page(r, FLOOPY_SQL_AUDIT_LIST, &q, 8, args, audit_row);
}

static json_t *experiment_row(apr_pool_t *p, const char **row)
{
    return floopy_experiment_json(p, row);
}

/* Experiments are written as the API call returns, not by the decision writer, so their list
 * needs no settling; it is paged like the others all the same. */
int floopy_handle_experiment_list(request_rec *r, const floopy_principal_t *who)
{
    static const char *const known[] = { "limit", "cursor", "status", "route", NULL };
    list_query_t q;
    fl_error_t *e;
    const char *args[6], *status;

    if ((e = parse_query(r, known, &q))) return floopy_send_error(r, e);
    status = apr_table_get(q.args, "status");
    if (status && strcmp(status, "running") && strcmp(status, "stopped")
        && strcmp(status, "completed")) {
        return floopy_send_error(r, bad(r, "status", "must be running, stopped or completed"));
    }
    args[0] = who->org_id; args[1] = q.below;
    args[2] = args[3] = status;
    args[4] = args[5] = apr_table_get(q.args, "route");
    return send_page(r, FLOOPY_SQL_EXPERIMENT_LIST, &q, 6, args, experiment_row);
}
