/* The operator's admin API (SetHandler floopy-admin): organisations and their API keys, behind
 * the deployment's own credential (FloopyAdminTokenFile). Organisation keys never reach it.
 * Every write is an audit event, stored in the same transaction as the change. */
#include <apr_strings.h>
#include <http_protocol.h>

#include "config/config.h"
#include "http/http.h"
#include "store/store.h"
#include "floopy_admin.h"
#include "fl_json.h"
#include "fl_util.h"

#define ACTOR "deployment-admin"

typedef struct admin_t {
    request_rec *r;
    ap_dbd_t *db;
} admin_t;

static json_t *org_json(apr_pool_t *p, const char **row)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(row[0]));
    json_object_set_new(o, "object", json_string("organization"));
    json_object_set_new(o, "name", json_string(row[1]));
    json_object_set_new(o, "plan", json_string(row[2]));
    json_object_set_new(o, "pooling_opt_out", json_boolean(row[3] && strcmp(row[3], "0")));
    json_object_set_new(o, "created_at", json_string(fl_time_sql_to_iso(p, row[4])));
    return o;
}

static json_t *key_json(apr_pool_t *p, const char **row)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(row[0]));
    json_object_set_new(o, "object", json_string("api_key"));
    json_object_set_new(o, "organization_id", json_string(row[1]));
    json_object_set_new(o, "name", row[2] ? json_string(row[2]) : json_null());
    json_object_set_new(o, "role", json_string(row[3]));
    json_object_set_new(o, "key_prefix", json_string(row[4]));
    json_object_set_new(o, "created_at", json_string(fl_time_sql_to_iso(p, row[5])));
    json_object_set_new(o, "revoked_at",
                        row[6] ? json_string(fl_time_sql_to_iso(p, row[6])) : json_null());
    return o;
}

static int db_failed(request_rec *r)
{
    return floopy_fail_as(r, FLOOPY_E_INTERNAL, NULL, "the database refused the change");
}

/* The admin handler acquired the request's connection before dispatching. */
static admin_t admin_of(request_rec *r)
{
    admin_t a = { r, floopy_db_acquire(r) };
    return a;
}

static int send_list(request_rec *r, apr_array_header_t *rows,
                     json_t *(*conv)(apr_pool_t *, const char **))
{
    json_t *list = json_object(), *data = json_array();
    int i;
    for (i = 0; i < rows->nelts; i++) {
        json_array_append_new(data, conv(r->pool, APR_ARRAY_IDX(rows, i, const char **)));
    }
    json_object_set_new(list, "object", json_string("list"));
    json_object_set_new(list, "data", data);
    return floopy_send_json(r, 200, list);
}

/* Statements and their audit event in one transaction (floopy_store.c). */
static apr_status_t write_audited(admin_t *a, const floopy_stmt_t *st, int n, const char *org,
                                  const char *action, const char *target, json_t *before,
                                  json_t *after)
{
    return floopy_write_audited(a->r->pool, a->db, st, n, org, ACTOR, action, target, before,
                                after);
}

static const char *str_field(json_t *body, const char *key, int required, apr_size_t max,
                             request_rec *r, fl_error_t **pe)
{
    json_t *v = json_object_get(body, key);
    if (!v || json_is_null(v)) {
        if (required) *pe = fl_error_invalid(r->pool, "missing_required_parameter", key,
                                             "'%s' is required", key);
        return NULL;
    }
    if (!json_is_string(v) || !*json_string_value(v) || strlen(json_string_value(v)) > max) {
        *pe = fl_error_invalid(r->pool, "invalid_type", key,
                               "'%s' must be a non-empty string of at most %lu bytes", key,
                               (unsigned long)max);
        return NULL;
    }
    return json_string_value(v);
}

/* A string field that must be one of allowed; absent means allowed[0]. */
static const char *enum_field(json_t *body, const char *key, const char *const *allowed,
                              request_rec *r, fl_error_t **pe)
{
    const char *v = str_field(body, key, 0, 32, r, pe), *list = "";
    int i;
    if (*pe) return NULL;
    if (!v) return allowed[0];
    for (i = 0; allowed[i]; i++) {
        if (!strcmp(v, allowed[i])) return allowed[i];
        list = apr_pstrcat(r->pool, list, i ? ", " : "", allowed[i], NULL);
    }
    *pe = fl_error_invalid(r->pool, "invalid_value", key, "'%s' must be one of: %s", key, list);
    return NULL;
}

static int org_create(request_rec *r, const floopy_principal_t *who, const char *const *arg)
{
    admin_t a_ = admin_of(r), *a = &a_;
    static const char *const plans[] = { "free", "pro", "enterprise", NULL };
    json_t *body;
    fl_error_t *e = NULL;
    const char *name, *plan, *args[5];
    char id[FL_UUID_LEN + 1];
    apr_time_t now = apr_time_now();

    if ((e = floopy_read_json(r, &body))) return floopy_send_error(r, e);
    name = str_field(body, "name", 1, 200, r, &e);
    plan = e ? NULL : enum_field(body, "plan", plans, r, &e);
    if (e) return floopy_send_error(r, e);
    fl_uuid7(id, now);
    args[0] = id; args[1] = name; args[2] = plan; args[3] = "0"; args[4] = fl_time_sql(r->pool, now);
    {
        floopy_stmt_t st = { FLOOPY_SQL_ORG_INS, 5, args };
        if (write_audited(a, &st, 1, id, "organization.create", id, NULL,
                          fl_json_pool_own(r->pool, org_json(r->pool, args)))) {
            return db_failed(r);
        }
    }
    return floopy_send_json(r, 201, org_json(r->pool, args));
}

static const char **org_row(admin_t *a, const char *org_id)
{
    apr_array_header_t *rows;
    const char *args[1] = { org_id };
    if (!fl_uuid_valid(org_id)
        || floopy_db_select(a->r->pool, a->db, FLOOPY_SQL_ORG_GET, 1, args, &rows, NULL)
        || rows->nelts == 0) {
        return NULL;
    }
    return APR_ARRAY_IDX(rows, 0, const char **);
}

static int no_such(request_rec *r, const char *what)
{
    return floopy_fail_as(r, FLOOPY_E_NOT_FOUND, "id", what);
}

static int key_create(request_rec *r, const floopy_principal_t *who, const char *const *arg)
{
    admin_t a_ = admin_of(r), *a = &a_;
    const char *org_id = arg[0];
    static const char *const roles[] = { "client", "admin", NULL };
    json_t *body, *out;
    fl_error_t *e = NULL;
    const char *role, *name, *secret, *args[7];
    char id[FL_UUID_LEN + 1], hash[FL_SHA256_HEX_LEN + 1];
    apr_time_t now = apr_time_now();

    if (!org_row(a, org_id)) return no_such(r, "organization");
    if ((e = floopy_read_json(r, &body))) return floopy_send_error(r, e);
    role = enum_field(body, "role", roles, r, &e);
    name = e ? NULL : str_field(body, "name", 0, 200, r, &e);
    if (e) return floopy_send_error(r, e);
    if (fl_key_generate(r->pool, &secret) != APR_SUCCESS) return db_failed(r);
    fl_uuid7(id, now);
    fl_sha256_hex(secret, strlen(secret), hash);
    args[0] = id; args[1] = org_id; args[2] = name; args[3] = hash;
    args[4] = apr_pstrndup(r->pool, secret, 7); args[5] = role; args[6] = fl_time_sql(r->pool, now);
    {
        const char *row[7] = { id, org_id, name, role, args[4], args[6], NULL };
        out = key_json(r->pool, row);
    }
    {
        floopy_stmt_t st = { FLOOPY_SQL_KEY_INS, 7, args };
        if (write_audited(a, &st, 1, org_id, "api_key.create", id, NULL,
                          fl_json_pool_own(r->pool, json_deep_copy(out)))) {
            json_decref(out);
            return db_failed(r);
        }
    }
    json_object_set_new(out, "key", json_string(secret)); /* shown this once, never stored */
    return floopy_send_json(r, 201, out);
}

static int key_revoke(request_rec *r, const floopy_principal_t *who, const char *const *arg)
{
    admin_t a_ = admin_of(r), *a = &a_;
    const char *key_id = arg[0];
    apr_array_header_t *rows;
    const char *args[2], **row;
    apr_status_t rv;

    args[0] = key_id;
    if (!fl_uuid_valid(key_id)
        || floopy_db_select(r->pool, a->db, FLOOPY_SQL_KEY_GET, 1, args, &rows, NULL)
        || rows->nelts == 0) {
        return no_such(r, "API key");
    }
    row = APR_ARRAY_IDX(rows, 0, const char **);
    if (!row[6]) {
        floopy_stmt_t st = { FLOOPY_SQL_KEY_REVOKE, 2, args };
        args[0] = fl_time_sql(r->pool, apr_time_now());
        args[1] = key_id;
        rv = write_audited(a, &st, 1, row[1], "api_key.revoke", key_id,
                           fl_json_pool_own(r->pool, key_json(r->pool, row)), NULL);
        if (rv != APR_SUCCESS && rv != APR_NOTFOUND) return db_failed(r); /* NOTFOUND: raced */
    }
    args[0] = key_id;
    if (floopy_db_select(r->pool, a->db, FLOOPY_SQL_KEY_GET, 1, args, &rows, NULL)
        || rows->nelts == 0) {
        return db_failed(r);
    }
    return floopy_send_json(r, 200, key_json(r->pool, APR_ARRAY_IDX(rows, 0, const char **)));
}

/* PATCH /organizations/{id} {"plan"?, "pooling_opt_out"?}: the keys of the organisation see a
 * new plan within FloopyKeyCacheTTL. */
static int org_update(request_rec *r, const floopy_principal_t *who, const char *const *arg)
{
    admin_t a_ = admin_of(r), *a = &a_;
    const char *org_id = arg[0];
    static const char *const plans[] = { "free", "pro", "enterprise", NULL };
    const char **row = org_row(a, org_id), *args[3], *after_row[5];
    json_t *body, *opt;
    fl_error_t *e = NULL;
    floopy_stmt_t st = { FLOOPY_SQL_ORG_UPDATE, 3, args };
    apr_status_t rv;

    if (!row) return no_such(r, "organization");
    if ((e = floopy_read_json(r, &body))) return floopy_send_error(r, e);
    args[0] = json_is_string(json_object_get(body, "plan")) || (json_object_get(body, "plan")
               && !json_is_null(json_object_get(body, "plan")))
              ? enum_field(body, "plan", plans, r, &e) : row[2];
    if (e) return floopy_send_error(r, e);
    opt = json_object_get(body, "pooling_opt_out");
    if (opt && !json_is_boolean(opt)) {
        return floopy_fail(r, 400, "invalid_request_error", "invalid_type", "pooling_opt_out",
                           "'pooling_opt_out' must be a boolean");
    }
    args[1] = opt ? (json_is_true(opt) ? "1" : "0") : row[3];
    args[2] = org_id;
    if (!strcmp(args[0], row[2]) && !strcmp(args[1], row[3])) {
        return floopy_send_json(r, 200, org_json(r->pool, row));   /* nothing changes */
    }
    memcpy(after_row, row, sizeof(after_row));
    after_row[2] = args[0];
    after_row[3] = args[1];
    rv = write_audited(a, &st, 1, org_id, "organization.update", org_id,
                       fl_json_pool_own(r->pool, org_json(r->pool, row)),
                       fl_json_pool_own(r->pool, org_json(r->pool, after_row)));
    if (rv != APR_SUCCESS) return db_failed(r);
    return floopy_send_json(r, 200, org_json(r->pool, after_row));
}

/* POST /keys/{id}/rotate: a new secret under a new key id with the same organisation, role and
 * name; the old key is revoked in the same transaction. The new secret is shown this once. */
static int key_rotate(request_rec *r, const floopy_principal_t *who, const char *const *arg)
{
    admin_t a_ = admin_of(r), *a = &a_;
    const char *key_id = arg[0];
    apr_array_header_t *rows;
    const char *get[1] = { key_id }, **old, *secret, *ins[7], *rev[2];
    char id[FL_UUID_LEN + 1], hash[FL_SHA256_HEX_LEN + 1];
    apr_time_t now = apr_time_now();
    floopy_stmt_t st[2] = { { FLOOPY_SQL_KEY_REVOKE, 2, rev }, { FLOOPY_SQL_KEY_INS, 7, ins } };
    json_t *out;

    if (!fl_uuid_valid(key_id)
        || floopy_db_select(r->pool, a->db, FLOOPY_SQL_KEY_GET, 1, get, &rows, NULL)
        || rows->nelts == 0) {
        return no_such(r, "API key");
    }
    old = APR_ARRAY_IDX(rows, 0, const char **);
    if (old[6]) {
        return floopy_fail(r, 409, "invalid_request_error", "key_revoked", "id",
                           "a revoked key cannot be rotated; create a new one");
    }
    if (fl_key_generate(r->pool, &secret) != APR_SUCCESS) return db_failed(r);
    fl_uuid7(id, now);
    fl_sha256_hex(secret, strlen(secret), hash);
    rev[0] = fl_time_sql(r->pool, now); rev[1] = key_id;
    ins[0] = id; ins[1] = old[1]; ins[2] = old[2]; ins[3] = hash;
    ins[4] = apr_pstrndup(r->pool, secret, 7); ins[5] = old[3]; ins[6] = rev[0];
    {
        const char *row[7] = { id, old[1], old[2], old[3], ins[4], ins[6], NULL };
        out = key_json(r->pool, row);
    }
    if (write_audited(a, st, 2, old[1], "api_key.rotate", key_id,
                      fl_json_pool_own(r->pool, key_json(r->pool, old)),
                      fl_json_pool_own(r->pool, json_deep_copy(out)))) {
        json_decref(out);
        return floopy_fail(r, 409, "invalid_request_error", "key_revoked", "id",
                           "the key was revoked meanwhile; nothing was changed");
    }
    json_object_set_new(out, "key", json_string(secret));
    json_object_set_new(out, "rotated_from", json_string(key_id));
    return floopy_send_json(r, 201, out);
}

static int list_rows(admin_t *a, const char *label, int nargs, const char **args,
                     json_t *(*conv)(apr_pool_t *, const char **))
{
    apr_array_header_t *rows;
    if (floopy_db_select(a->r->pool, a->db, label, nargs, args, &rows, NULL)) {
        return db_failed(a->r);
    }
    return send_list(a->r, rows, conv);
}

static int org_list(request_rec *r, const floopy_principal_t *who, const char *const *arg)
{
    admin_t a = admin_of(r);
    return list_rows(&a, FLOOPY_SQL_ORG_LIST, 0, NULL, org_json);
}

static int org_get(request_rec *r, const floopy_principal_t *who, const char *const *arg)
{
    admin_t a = admin_of(r);
    const char **row = org_row(&a, arg[0]);
    if (!row) return no_such(r, "organization");
    return floopy_send_json(r, 200, org_json(r->pool, row));
}

static int key_list(request_rec *r, const floopy_principal_t *who, const char *const *arg)
{
    admin_t a = admin_of(r);
    if (!org_row(&a, arg[0])) return no_such(r, "organization");
    return list_rows(&a, FLOOPY_SQL_KEY_LIST, 1, (const char **)arg, key_json);
}

/* The deployment's admin token reaches every endpoint; no organisation key reaches any. */
static const floopy_endpoint_t ADMIN_ENDPOINTS[] = {
    { M_POST, "/organizations", FLOOPY_ROLE_ANY, org_create, NULL },
    { M_GET, "/organizations", FLOOPY_ROLE_ANY, org_list, NULL },
    { M_GET, "/organizations/{id}", FLOOPY_ROLE_ANY, org_get, NULL },
    { M_PATCH, "/organizations/{id}", FLOOPY_ROLE_ANY, org_update, NULL },
    { M_POST, "/organizations/{id}/keys", FLOOPY_ROLE_ANY, key_create, NULL },
    { M_GET, "/organizations/{id}/keys", FLOOPY_ROLE_ANY, key_list, NULL },
    { M_POST, "/keys/{id}/revoke", FLOOPY_ROLE_ANY, key_revoke, NULL },
    { M_POST, "/keys/{id}/rotate", FLOOPY_ROLE_ANY, key_rotate, NULL },
    { 0, NULL, 0, NULL, NULL }
};

static fl_error_t *admin_auth(request_rec *r)
{
    floopy_srv_t *c = floopy_srv(r->server);
    const char *tok = floopy_bearer(r);
    char hash[FL_SHA256_HEX_LEN + 1];
    if (!tok) {
        return fl_error_make(r->pool, 401, "authentication_error", "missing_api_key", NULL,
                             "the admin API needs 'Authorization: Bearer <admin token>'");
    }
    fl_sha256_hex(tok, strlen(tok), hash);
    if (!fl_secure_equals(hash, c->admin_token_hash)) {
        return fl_error_make(r->pool, 401, "authentication_error", "invalid_api_key", NULL,
                             "not the deployment's admin token");
    }
    return NULL;
}

int floopy_admin_handler(request_rec *r)
{
    fl_error_t *e;
    if (!r->handler || strcmp(r->handler, "floopy-admin")) {
        return DECLINED;
    }
    if (!floopy_srv(r->server)->admin_token_hash) {
        return floopy_fail(r, 503, "service_unavailable", "admin_disabled", NULL,
                           "the admin API is off: set FloopyAdminTokenFile");
    }
    if ((e = admin_auth(r))) {
        return floopy_send_error(r, e);
    }
    if (!floopy_db_acquire(r)) return floopy_fail_as(r, FLOOPY_E_UNAVAILABLE, NULL, NULL);
    return floopy_dispatch(r, ADMIN_ENDPOINTS, NULL, floopy_path(r));
}
