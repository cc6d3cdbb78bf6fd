/* GET and PUT /constraints: an organisation's routing constraints.
 *   max_regression        percentage points of quality below the current default (0..100)
 *   max_cost_increase     percent of the rolling cost (>= 0)
 *   confidence_threshold  0..1
 * Each may be null (no constraint). PUT replaces all three (admin keys only) and writes an audit
 * event with the actor, the previous values and the new ones, in the same transaction. */
#include <apr_strings.h>
#include <http_protocol.h>

#include "store/store.h"
#include "route/route.h"
#include "api.h"
#include "fl_json.h"
#include "fl_util.h"

static const struct { const char *name; double max; } FIELDS[] = {
    { "max_regression", 100 }, { "max_cost_increase", 1e6 }, { "confidence_threshold", 1 },
};
#define NFIELDS 3

/* The organisation's constraints as the API shows them; all null when none were set. */
static apr_status_t load(request_rec *r, ap_dbd_t *db, const char *org, json_t **pout)
{
    apr_array_header_t *rows;
    const char *args[1] = { org }, **row = NULL;
    json_t *o = json_object();
    int i;
    apr_status_t rv = floopy_db_select(r->pool, db, FLOOPY_SQL_CONSTRAINTS_GET, 1, args, &rows, NULL);
    if (rv != APR_SUCCESS) {
        json_decref(o);
        return rv;
    }
    if (rows->nelts) row = APR_ARRAY_IDX(rows, 0, const char **);
    json_object_set_new(o, "object", json_string("floopy.constraints"));
    for (i = 0; i < NFIELDS; i++) {
        json_object_set_new(o, FIELDS[i].name, floopy_num_or_null(row ? row[i] : NULL));
    }
    json_object_set_new(o, "updated_at", row ? json_string(fl_time_sql_to_iso(r->pool, row[3]))
                                             : json_null());
    json_object_set_new(o, "updated_by", row ? json_string(row[4]) : json_null());
    *pout = fl_json_pool_own(r->pool, o);
    return APR_SUCCESS;
}

static fl_error_t *parse(request_rec *r, json_t *body, const char **vals)
{
    const char *key;
    json_t *v;
    int i;
    json_object_foreach(body, key, v) {
        for (i = 0; i < NFIELDS && strcmp(FIELDS[i].name, key); i++);
        if (i == NFIELDS) {
            return fl_error_invalid(r->pool, "invalid_value", key, "'%s' is not a constraint "
                                    "(max_regression, max_cost_increase, confidence_threshold)", key);
        }
    }
    for (i = 0; i < NFIELDS; i++) {
        v = json_object_get(body, FIELDS[i].name);
        vals[i] = NULL;
        if (!v || json_is_null(v)) continue;
        if (!json_is_number(v)) {
            return fl_error_invalid(r->pool, "invalid_type", FIELDS[i].name, "'%s' must be a "
                                    "number or null", FIELDS[i].name);
        }
        if (json_number_value(v) < 0 || json_number_value(v) > FIELDS[i].max) {
            return fl_error_invalid(r->pool, "invalid_value", FIELDS[i].name, "'%s' must be "
                                    "from 0 to %g", FIELDS[i].name, FIELDS[i].max);
        }
        vals[i] = apr_psprintf(r->pool, "%.10g", json_number_value(v));
    }
    return NULL;
}

int floopy_handle_constraints_put(request_rec *r, const floopy_principal_t *who,
                                  const char *const *arg)
{
    ap_dbd_t *db = floopy_db_acquire(r);
    json_t *body, *before, *after;
    const char *args[6];
    fl_error_t *e;
    floopy_stmt_t st = { FLOOPY_SQL_CONSTRAINTS_PUT, 6, args };
    const char *actor = apr_pstrcat(r->pool, "api_key:", who->key_id, NULL);

    if (!db) return floopy_fail_as(r, FLOOPY_E_UNAVAILABLE, NULL, NULL);
    if ((e = floopy_read_json(r, &body)) || (e = parse(r, body, args + 1))) {
        return floopy_send_error(r, e);
    }
    if (load(r, db, who->org_id, &before) != APR_SUCCESS) {
        return floopy_fail_as(r, FLOOPY_E_INTERNAL, NULL, NULL);
    }
    args[0] = who->org_id;
    args[4] = fl_time_sql(r->pool, apr_time_now());
    args[5] = actor;
    json_object_del(before, "object");
    after = fl_json_pool_own(r->pool, json_object());
    {
        int i;
        for (i = 0; i < NFIELDS; i++) {
            json_object_set_new(after, FIELDS[i].name, floopy_num_or_null(args[1 + i]));
        }
    }
    if (floopy_write_audited(r->pool, db, &st, 1, who->org_id, actor, "constraints.update",
                             who->org_id, before, after) != APR_SUCCESS) {
        return floopy_fail_as(r, FLOOPY_E_INTERNAL, NULL,
                              "the constraints could not be stored; nothing changed");
    }
    floopy_router_settle(floopy_proc(r->server)->router, FLOOPY_SETTLE_MAX);
    if (load(r, db, who->org_id, &after) != APR_SUCCESS) {
        return floopy_fail_as(r, FLOOPY_E_INTERNAL, NULL, NULL);
    }
    return floopy_send_json(r, 200, json_incref(after));
}

int floopy_handle_constraints_get(request_rec *r, const floopy_principal_t *who,
                                  const char *const *arg)
{
    ap_dbd_t *db = floopy_db_acquire(r);
    json_t *cur;
    if (!db) return floopy_fail_as(r, FLOOPY_E_UNAVAILABLE, NULL, NULL);
    if (load(r, db, who->org_id, &cur) != APR_SUCCESS) {
        return floopy_fail_as(r, FLOOPY_E_INTERNAL, NULL, NULL);
    }
    return floopy_send_json(r, 200, json_incref(cur));
}
