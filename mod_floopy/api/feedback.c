/* POST /feedback: an organisation's outcome signal, stored durably before the answer.
 *   {"session_id": "...", "nps": 0..10 (whole number), "comment"?}  one score for a session
 *   {"decision_id": "...", "score": 0..10, "comment"?}             a score for one decision
 * The session or decision must exist in the caller's organisation (another organisation's
 * answers as unknown). A repeated session score is added, and the earlier one is marked
 * replaced_by the new one in the same transaction: the replacement is recorded, not lost. */
#include <math.h>
#include <stdlib.h>
#include <apr_strings.h>
#include <http_protocol.h>

#include "config/config.h"
#include "store/store.h"
#include "route/route.h"
#include "api.h"
#include "fl_json.h"
#include "fl_util.h"

#define FRESH_WAIT apr_time_from_msec(150)  /* a decision the writer is about to store */

typedef struct fb_t {
    const char *kind, *session_id, *decision_id, *comment;
    double score;
} fb_t;

static fl_error_t *number_field(request_rec *r, json_t *body, const char *k, int whole,
                                double *out)
{
    json_t *v = json_object_get(body, k);
    if (!v) return fl_error_invalid(r->pool, "missing_required_parameter", k, "'%s' is required", k);
    if (!json_is_number(v)) return fl_error_invalid(r->pool, "invalid_type", k, "'%s' must be a number", k);
    *out = json_number_value(v);
    if (*out < 0 || *out > 10 || (whole && floor(*out) != *out)) {
        return fl_error_invalid(r->pool, "invalid_value", k, "'%s' must be %s from 0 to 10", k,
                                whole ? "a whole number" : "a number");
    }
    return NULL;
}

static fl_error_t *parse_feedback(request_rec *r, json_t *body, fb_t *fb)
{
    static const char *const known[] = { "session_id", "nps", "decision_id", "score", "comment", NULL };
    const char *key, *const *k;
    json_t *v, *sid = json_object_get(body, "session_id"), *did = json_object_get(body, "decision_id");
    json_object_foreach(body, key, v) {
        for (k = known; *k && strcmp(*k, key); k++);
        if (!*k) return fl_error_invalid(r->pool, "invalid_value", key, "'%s' is not a field of feedback", key);
    }
    if ((sid && did) || (!sid && !did)) {
        return fl_error_invalid(r->pool, "missing_required_parameter", "session_id",
                                "give either session_id with nps, or decision_id with score");
    }
    if ((v = json_object_get(body, "comment")) && !json_is_null(v)) {
        if (!json_is_string(v) || strlen(json_string_value(v)) > 4000) {
            return fl_error_invalid(r->pool, "invalid_type", "comment", "'comment' must be a string of at most 4000 bytes");
        }
        fb->comment = json_string_value(v);
    }
    if (sid) {
        if (!json_is_string(sid) || !*json_string_value(sid) || strlen(json_string_value(sid)) > 255) {
            return fl_error_invalid(r->pool, "invalid_type", "session_id", "'session_id' must be a non-empty string of at most 255 bytes");
        }
        fb->kind = "session";
        fb->session_id = json_string_value(sid);
        return number_field(r, body, "nps", 1, &fb->score);
    }
    if (!json_is_string(did) || !fl_uuid_valid(json_string_value(did))) {
        return fl_error_invalid(r->pool, "invalid_type", "decision_id", "'decision_id' must be a decision id");
    }
    fb->kind = "decision";
    fb->decision_id = json_string_value(did);
    return number_field(r, body, "score", 0, &fb->score);
}

/* 1 when the session or decision is the organisation's; waits once for a brand-new one. */
static int target_exists(request_rec *r, ap_dbd_t *db, const floopy_principal_t *who,
                         const fb_t *fb)
{
    const char *args[2];
    apr_array_header_t *rows;
    const char *label = fb->session_id ? FLOOPY_SQL_SESSION_SEEN : FLOOPY_SQL_DECISION_GET;
    int tries;
    if (fb->session_id) { args[0] = who->org_id; args[1] = fb->session_id; }
    else { args[0] = fb->decision_id; args[1] = who->org_id; }
    for (tries = 0; tries < 2; tries++) {
        if (floopy_db_select(r->pool, db, label, 2, args, &rows, NULL) == APR_SUCCESS
            && rows->nelts > 0) {
            return 1;
        }
        if (tries == 0) apr_sleep(FRESH_WAIT);
    }
    return 0;
}

static json_t *feedback_json(apr_pool_t *p, const char *id, const fb_t *fb, const char *created,
                             json_t *replaces, json_t *credited)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "object", json_string("feedback"));
    json_object_set_new(o, "kind", json_string(fb->kind));
    json_object_set_new(o, "session_id", fb->session_id ? json_string(fb->session_id) : json_null());
    json_object_set_new(o, "decision_id", fb->decision_id ? json_string(fb->decision_id) : json_null());
    json_object_set_new(o, fb->session_id ? "nps" : "score", json_real(fb->score));
    json_object_set_new(o, "comment", fb->comment ? json_string(fb->comment) : json_null());
    json_object_set_new(o, "replaces", replaces);
    json_object_set_new(o, "credited", credited);
    json_object_set_new(o, "created_at", json_string(fl_time_sql_to_iso(p, created)));
    return o;
}

static apr_status_t credit_one(request_rec *r, ap_dbd_t *db, const floopy_principal_t *who,
                               const char *fid, const char *route, const char *model,
                               double weight, double revise_from, double reward, json_t *credited)
{
    const fl_policy_t *pol = &floopy_srv(r->server)->policy;
    const char *ins[6];
    json_t *o;
    apr_status_t rv = floopy_credit(r->pool, db, pol, who->org_id, route, model, &weight,
                                          revise_from, reward);
    if (rv != APR_SUCCESS) return rv;
    ins[0] = fid; ins[1] = who->org_id; ins[2] = route; ins[3] = model;
    ins[4] = apr_psprintf(r->pool, "%.10g", weight);
    ins[5] = apr_psprintf(r->pool, "%.10g", reward);
    o = json_object();
    json_object_set_new(o, "route", json_string(route));
    json_object_set_new(o, "model", json_string(model));
    json_object_set_new(o, "weight", json_real(weight));
    json_array_append_new(credited, o);
    return floopy_db_exec(r->pool, db, FLOOPY_SQL_CREDIT_INS, 6, ins, NULL);
}

#define COL(rows, i, k) APR_ARRAY_IDX(rows, i, const char **)[k]

/* Credits the outcome to the routed models it judges: a session's NPS is spread over every
 * routed decision of the session (weight count/total per model, one unit in all); a score
 * credits its decision's model, with more weight once the model is in Auto; a replacing NPS
 * rewrites exactly what the replaced one credited. Pinned decisions chose nothing: no credit. */
static apr_status_t credit(request_rec *r, ap_dbd_t *db, const floopy_principal_t *who,
                           const fb_t *fb, const char *id, json_t *replaces, json_t *credited)
{
    const char *args[2];
    apr_array_header_t *rows;
    apr_status_t rv;
    double reward = fb->score / 10.0, total = 0;
    int i;

    if (fb->session_id && json_array_size(replaces)) {
        args[0] = json_string_value(json_array_get(replaces, 0));
        args[1] = who->org_id;
        rv = floopy_db_select(r->pool, db, FLOOPY_SQL_CREDITS_OF, 2, args, &rows, NULL);
        for (i = 0; rv == APR_SUCCESS && i < rows->nelts; i++) {
            rv = credit_one(r, db, who, id, COL(rows, i, 0), COL(rows, i, 1),
                            strtod(COL(rows, i, 2), NULL), strtod(COL(rows, i, 3), NULL),
                            reward, credited);
        }
        return rv;
    }
    if (fb->session_id) {
        args[0] = who->org_id;
        args[1] = fb->session_id;
        rv = floopy_db_select(r->pool, db, FLOOPY_SQL_SESSION_ARMS, 2, args, &rows, NULL);
        for (i = 0; rv == APR_SUCCESS && i < rows->nelts; i++) total += strtod(COL(rows, i, 2), NULL);
        for (i = 0; rv == APR_SUCCESS && i < rows->nelts; i++) {
            rv = credit_one(r, db, who, id, COL(rows, i, 0), COL(rows, i, 1),
                            strtod(COL(rows, i, 2), NULL) / total, -1, reward, credited);
        }
        return rv;
    }
    args[0] = fb->decision_id;
    args[1] = who->org_id;
    rv = floopy_db_select(r->pool, db, FLOOPY_SQL_DECISION_ARM, 2, args, &rows, NULL);
    if (rv == APR_SUCCESS && rows->nelts && !strcmp(COL(rows, 0, 2), "0")) {
        rv = credit_one(r, db, who, id, COL(rows, 0, 0), COL(rows, 0, 1), -1, -1, reward, credited);
    }
    return rv;
}

typedef struct store_t {
    request_rec *r;
    const floopy_principal_t *who;
    const fb_t *fb;
    const char *id, *created;
    json_t *replaces, *credited;
} store_t;

/* The feedback, the session's earlier score marked replaced, and the credits, as one
 * transaction's body. */
static apr_status_t store_body(apr_pool_t *p, ap_dbd_t *db, void *baton)
{
    const store_t *st = baton;
    const fb_t *fb = st->fb;
    apr_array_header_t *rows;
    const char *ins[9], *act[2] = { st->who->org_id, fb->session_id }, *rep[4];
    apr_status_t rv = APR_SUCCESS;
    int i;

    if (fb->session_id) {
        rv = floopy_db_select(p, db, FLOOPY_SQL_FEEDBACK_ACTIVE, 2, act, &rows, NULL);
        for (i = 0; rv == APR_SUCCESS && i < rows->nelts; i++) {
            json_array_append_new(st->replaces,
                                  json_string(APR_ARRAY_IDX(rows, i, const char **)[0]));
        }
    }
    ins[0] = st->id; ins[1] = st->who->org_id; ins[2] = st->who->key_id; ins[3] = fb->kind;
    ins[4] = fb->session_id; ins[5] = fb->decision_id;
    ins[6] = apr_psprintf(p, "%.6f", fb->score); ins[7] = fb->comment; ins[8] = st->created;
    if (rv == APR_SUCCESS) rv = floopy_db_exec(p, db, FLOOPY_SQL_FEEDBACK_INS, 9, ins, NULL);
    if (rv == APR_SUCCESS && fb->session_id) {
        rep[0] = st->id; rep[1] = st->who->org_id; rep[2] = fb->session_id; rep[3] = st->id;
        rv = floopy_db_exec(p, db, FLOOPY_SQL_FEEDBACK_REPLACE, 4, rep, NULL);
    }
    if (rv == APR_SUCCESS) {
        rv = credit(st->r, db, st->who, fb, st->id, st->replaces, st->credited);
    }
    return rv;
}

static apr_status_t store(request_rec *r, ap_dbd_t *db, const floopy_principal_t *who,
                          const fb_t *fb, const char *id, const char *created, json_t *replaces,
                          json_t *credited)
{
    store_t st = { r, who, fb, id, created, replaces, credited };
    return floopy_db_transaction(r->pool, db, store_body, &st);
}

int floopy_handle_feedback(request_rec *r, const floopy_principal_t *who, const char *const *arg)
{
    fb_t fb = { 0 };
    json_t *body, *replaces, *credited;
    apr_status_t rv;
    int tries;
    fl_error_t *e;
    ap_dbd_t *db;
    char id[FL_UUID_LEN + 1];
    const char *created;
    apr_time_t now = apr_time_now();
    if ((e = floopy_read_json(r, &body)) || (e = parse_feedback(r, body, &fb))) {
        return floopy_send_error(r, e);
    }
    if (!(db = floopy_db_acquire(r))) {
        return floopy_fail_as(r, FLOOPY_E_UNAVAILABLE, NULL, NULL);
    }
    if (!target_exists(r, db, who, &fb)) {
        return floopy_fail_as(r, FLOOPY_E_NOT_FOUND, fb.session_id ? "session_id" : "decision_id",
                              fb.session_id ? "session among this organisation's decisions"
                                            : "decision");
    }
    fl_uuid7(id, now);
    created = fl_time_sql(r->pool, now);
    replaces = fl_json_pool_own(r->pool, json_array());
    credited = fl_json_pool_own(r->pool, json_array());
    for (tries = 0; (rv = store(r, db, who, &fb, id, created, replaces, credited)) != APR_SUCCESS
                    && tries < 2; tries++) {
        /* two outcomes crediting the same models in one instant may deadlock; InnoDB undoes
         * one of them whole, and it goes again */
        json_array_clear(replaces);
        json_array_clear(credited);
        apr_sleep(apr_time_from_msec(10 << tries));
    }
    if (rv != APR_SUCCESS) {
        return floopy_fail_as(r, FLOOPY_E_INTERNAL, NULL,
                              "the feedback could not be stored; nothing was stored, retry");
    }
    floopy_router_changed(floopy_proc(r->server)->router);
    return floopy_send_json(r, 201, feedback_json(r->pool, id, &fb, created, json_incref(replaces),
                                                  json_incref(credited)));
}
