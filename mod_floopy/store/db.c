/* Running the prepared statements: a request's connection, a background thread's, selects,
 * updates and transactions. The only file that calls apr_dbd. */
#include <apr_strings.h>
#include <http_request.h>

#include "config/config.h"
#include "store.h"
#include "fl_json.h"
#include "fl_util.h"

ap_dbd_t *floopy_db_open(server_rec *s, apr_pool_t *p)
{
    floopy_state_t *st = floopy_state(s);
    return st->dbd_open ? st->dbd_open(p, st->main_server) : NULL;
}

void floopy_db_close(server_rec *s, ap_dbd_t *db)
{
    floopy_state_t *st = floopy_state(s);
    if (db) st->dbd_close(st->main_server, db);
}

static apr_status_t db_release(void *v)
{
    request_rec *r = v;
    floopy_db_close(r->server, ap_get_module_config(r->request_config, &floopy_module));
    return APR_SUCCESS;
}

/* mod_dbd's connection pool is set up for the main server only, so every virtual host borrows
 * from it; ap_dbd_acquire(r) would look at r->server's. */
ap_dbd_t *floopy_db_acquire(request_rec *r)
{
    ap_dbd_t *db = ap_get_module_config(r->request_config, &floopy_module);
    if (db) return db;
    db = floopy_db_open(r->server, r->pool);
    if (db) {
        ap_set_module_config(r->request_config, &floopy_module, db);
        apr_pool_cleanup_register(r->pool, r, db_release, apr_pool_cleanup_null);
    }
    else {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "FL010: no database connection");
    }
    return db;
}

static apr_dbd_prepared_t *statement(ap_dbd_t *db, const char *label)
{
    return apr_hash_get(db->prepared, label, APR_HASH_KEY_STRING);
}

apr_status_t floopy_db_each(apr_pool_t *p, ap_dbd_t *db, const char *label, int nargs,
                            const char **args, floopy_row_fn fn, void *baton, int *pncols)
{
    apr_dbd_prepared_t *st = statement(db, label);
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const char **vals;
    int ncols, i, rc, more = 1;

    if (!st) return APR_EGENERAL;
    rc = apr_dbd_pselect(db->driver, p, db->handle, &res, st, 0, nargs, args);
    if (rc != 0) {
        ap_log_perror(APLOG_MARK, APLOG_ERR, 0, p, "FL011: %s failed: %s", label,
                      apr_dbd_error(db->driver, db->handle, rc));
        return APR_EGENERAL;
    }
    ncols = apr_dbd_num_cols(db->driver, res);
    if (pncols) *pncols = ncols;
    vals = apr_pcalloc(p, sizeof(const char *) * (apr_size_t)(ncols + 1));
    /* a stop still drains the rest: the rows are already here (stored) and the next statement
     * on the connection needs them gone */
    while (apr_dbd_get_row(db->driver, p, res, &row, -1) == 0) {
        if (!more) continue;
        for (i = 0; i < ncols; i++) vals[i] = apr_dbd_get_entry(db->driver, row, i);
        more = fn(baton, vals, ncols) == 0;
    }
    return APR_SUCCESS;
}

typedef struct collect_t {
    apr_pool_t *p;
    apr_array_header_t *rows;
} collect_t;

static int collect(void *baton, const char *const *vals, int ncols)
{
    collect_t *c = baton;
    const char **copy = apr_pcalloc(c->p, sizeof(const char *) * (apr_size_t)(ncols + 1));
    int i;
    for (i = 0; i < ncols; i++) copy[i] = vals[i] ? apr_pstrdup(c->p, vals[i]) : NULL;
    APR_ARRAY_PUSH(c->rows, const char **) = copy;
    return 0;
}

apr_status_t floopy_db_select_into(apr_pool_t *scratch, apr_pool_t *into, ap_dbd_t *db,
                                   const char *label, int nargs, const char **args,
                                   apr_array_header_t **prows, int *pncols)
{
    collect_t c = { into, apr_array_make(into, 4, sizeof(const char **)) };
    apr_status_t rv = floopy_db_each(scratch, db, label, nargs, args, collect, &c, pncols);
    if (rv == APR_SUCCESS) *prows = c.rows;
    return rv;
}

apr_status_t floopy_db_select(apr_pool_t *p, ap_dbd_t *db, const char *label, int nargs,
                              const char **args, apr_array_header_t **prows, int *pncols)
{
    return floopy_db_select_into(p, p, db, label, nargs, args, prows, pncols);
}

apr_status_t floopy_db_exec(apr_pool_t *p, ap_dbd_t *db, const char *label, int nargs,
                            const char **args, int *paffected)
{
    apr_dbd_prepared_t *st = statement(db, label);
    int n = 0, rc;
    if (!st) return APR_EGENERAL;
    rc = apr_dbd_pquery(db->driver, p, db->handle, &n, st, nargs, args);
    if (rc != 0) {
        ap_log_perror(APLOG_MARK, APLOG_ERR, 0, p, "FL012: %s failed: %s", label,
                      apr_dbd_error(db->driver, db->handle, rc));
        return APR_EGENERAL;
    }
    if (paffected) *paffected = n;
    return APR_SUCCESS;
}

static apr_status_t audit(apr_pool_t *p, ap_dbd_t *db, const char *org_id, const char *actor,
                          const char *action, const char *target, json_t *before, json_t *after)
{
    char id[FL_UUID_LEN + 1];
    apr_time_t now = apr_time_now();
    const char *args[8];
    fl_uuid7(id, now);
    args[0] = id;
    args[1] = org_id;
    args[2] = actor;
    args[3] = action;
    args[4] = target;
    args[5] = before ? fl_json_dump(p, before, 0) : NULL;
    args[6] = after ? fl_json_dump(p, after, 0) : NULL;
    args[7] = fl_time_sql(p, now);
    return floopy_db_exec(p, db, FLOOPY_SQL_AUDIT_INS, 8, args, NULL);
}

apr_status_t floopy_db_transaction(apr_pool_t *p, ap_dbd_t *db, floopy_tx_fn *body, void *baton)
{
    apr_dbd_transaction_t *tx = NULL;
    apr_status_t rv;
    if (apr_dbd_transaction_start(db->driver, p, db->handle, &tx) != 0) return APR_EGENERAL;
    rv = body(p, db, baton);
    if (rv != APR_SUCCESS) {
        apr_dbd_transaction_mode_set(db->driver, tx, APR_DBD_TRANSACTION_ROLLBACK);
    }
    if (apr_dbd_transaction_end(db->driver, p, tx) != 0 && rv == APR_SUCCESS) rv = APR_EGENERAL;
    return rv;
}

typedef struct audited_t {
    const floopy_stmt_t *st;
    int n;
    const char *org, *actor, *action, *target;
    json_t *before, *after;
} audited_t;

static apr_status_t audited_body(apr_pool_t *p, ap_dbd_t *db, void *baton)
{
    const audited_t *a = baton;
    apr_status_t rv = APR_SUCCESS;
    int i, affected = 0;
    for (i = 0; i < a->n && rv == APR_SUCCESS; i++) {
        rv = floopy_db_exec(p, db, a->st[i].label, a->st[i].nargs, a->st[i].args, &affected);
        if (rv == APR_SUCCESS && affected < 1) rv = APR_NOTFOUND;
    }
    if (rv == APR_SUCCESS) {
        rv = audit(p, db, a->org, a->actor, a->action, a->target, a->before, a->after);
    }
    return rv;
}

apr_status_t floopy_write_audited(apr_pool_t *p, ap_dbd_t *db, const floopy_stmt_t *st, int n,
                                  const char *org, const char *actor, const char *action,
                                  const char *target, json_t *before, json_t *after)
{
    audited_t a = { st, n, org, actor, action, target, before, after };
    return floopy_db_transaction(p, db, audited_body, &a);
}
