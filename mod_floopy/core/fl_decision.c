#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>

#include "fl_decision.h"
#include "fl_catalog.h"
#include "fl_json.h"

const char *const fl_decision_columns[FL_DECISION_NCOLS] = {
    "id", "org_id", "api_key_id", "session_id", "route", "pinned", "stream", "provider", "model",
    "chosen_score", "alternatives", "signals", "constraints_applied", "confidence", "phase",
    "status", "http_status", "latency_total_ms", "latency_upstream_ms", "input_tokens",
    "output_tokens", "cached_tokens", "reasoning_tokens", "cost_usd", "cache_hit", "error",
    "attempts", "created_at", "completed_at"
};


void fl_usage_clear(fl_usage_t *u)
{
    u->prompt = u->completion = u->total = u->cached = u->reasoning = -1;
}

fl_decision_t *fl_decision_create(apr_pool_t *p, apr_time_t now)
{
    fl_decision_t *d = apr_pcalloc(p, sizeof(*d));
    fl_uuid7(d->id, now);
    d->created = now;
    d->alternatives = apr_array_make(p, 4, sizeof(fl_alternative_t));
    d->signals = fl_json_pool_own(p, json_object());
    d->constraints = fl_json_pool_own(p, json_object());
    d->attempts = fl_json_pool_own(p, json_array());
    d->phase = "day0";
    d->status = "ok";
    d->latency_upstream_ms = -1;
    fl_usage_clear(&d->usage);
    return d;
}

int fl_usage_from_openai(fl_usage_t *u, const json_t *usage)
{
    json_t *det;
    if (!json_is_object(usage)) {
        return 0;
    }
    u->prompt = fl_json_count(usage, "prompt_tokens");
    u->completion = fl_json_count(usage, "completion_tokens");
    u->total = fl_json_count(usage, "total_tokens");
    det = json_object_get(usage, "prompt_tokens_details");
    u->cached = json_is_object(det) ? fl_json_count(det, "cached_tokens") : -1;
    det = json_object_get(usage, "completion_tokens_details");
    u->reasoning = json_is_object(det) ? fl_json_count(det, "reasoning_tokens") : -1;
    if (u->total < 0 && u->prompt >= 0 && u->completion >= 0) {
        u->total = u->prompt + u->completion;
    }
    return 1;
}

double fl_cost_usd(const fl_price_t *price, const fl_usage_t *u)
{
    apr_int64_t cached;
    if (!price || !price->known || u->prompt < 0 || u->completion < 0) {
        return -1;
    }
    cached = u->cached > 0 ? (u->cached < u->prompt ? u->cached : u->prompt) : 0;
    return ((double)(u->prompt - cached) * price->input
            + (double)cached * price->cached_input
            + (double)u->completion * price->output) / 1e6;
}

static const char *i64_or_null(apr_pool_t *p, apr_int64_t v)
{
    return v < 0 ? NULL : apr_psprintf(p, "%" APR_INT64_T_FMT, v);
}

static json_t *alternatives_json(const fl_decision_t *d)
{
    json_t *a = json_array();
    int i;
    for (i = 0; i < d->alternatives->nelts; i++) {
        const fl_alternative_t *alt = &APR_ARRAY_IDX(d->alternatives, i, fl_alternative_t);
        json_t *o = json_object();
        json_object_set_new(o, "provider", json_string(alt->model->provider->name));
        json_object_set_new(o, "model", json_string(alt->model->name));
        json_object_set_new(o, "score", json_real(alt->score));
        json_object_set_new(o, "excluded_by",
                            alt->excluded_by ? json_string(alt->excluded_by) : json_null());
        json_array_append_new(a, o);
    }
    return a;
}

void fl_decision_row_args(apr_pool_t *p, const fl_decision_t *d, const char **args)
{
    double cost = fl_cost_usd(&d->price, &d->usage);
    args[FL_COL_ID] = d->id;
    args[FL_COL_ORG] = d->org_id;
    args[FL_COL_KEY] = d->api_key_id;
    args[FL_COL_SESSION] = d->session_id;
    args[FL_COL_ROUTE] = d->route ? d->route : "";
    args[FL_COL_PINNED] = d->pinned ? "1" : "0";
    args[FL_COL_STREAM] = d->stream ? "1" : "0";
    args[FL_COL_PROVIDER] = d->chosen ? d->chosen->provider->name : NULL;
    args[FL_COL_MODEL] = d->chosen ? d->chosen->name : NULL;
    args[FL_COL_SCORE] = d->chosen ? apr_psprintf(p, "%.6f", d->chosen_score) : NULL;
    args[FL_COL_ALTS] = fl_json_dump(p, alternatives_json(d), 1);
    args[FL_COL_SIGNALS] = fl_json_dump(p, d->signals, 0);
    args[FL_COL_CONSTRAINTS] = fl_json_dump(p, d->constraints, 0);
    args[FL_COL_CONFIDENCE] = apr_psprintf(p, "%.6f", d->confidence);
    args[FL_COL_PHASE] = d->phase;
    args[FL_COL_STATUS] = d->status;
    args[FL_COL_HTTP] = apr_itoa(p, d->http_status);
    args[FL_COL_LAT_TOTAL] = apr_psprintf(p, "%.3f", d->latency_total_ms);
    args[FL_COL_LAT_UP] = d->latency_upstream_ms < 0 ? NULL
                     : apr_psprintf(p, "%.3f", d->latency_upstream_ms);
    args[FL_COL_IN] = i64_or_null(p, d->usage.prompt);
    args[FL_COL_OUT] = i64_or_null(p, d->usage.completion);
    args[FL_COL_CACHED] = i64_or_null(p, d->usage.cached);
    args[FL_COL_REASONING] = i64_or_null(p, d->usage.reasoning);
    args[FL_COL_COST] = cost < 0 ? NULL : apr_psprintf(p, "%.10f", cost);
    args[FL_COL_CACHE_HIT] = d->cache_hit ? "1" : "0";
    args[FL_COL_ERROR] = d->error ? fl_json_dump(p, d->error, 0) : NULL;
    args[FL_COL_ATTEMPTS] = fl_json_dump(p, d->attempts, 0);
    args[FL_COL_CREATED] = fl_time_sql(p, d->created);
    args[FL_COL_COMPLETED] = fl_time_sql(p, d->completed ? d->completed : d->created);
}

void fl_decision_add_attempt(fl_decision_t *d, const fl_model_t *m, int http_status,
                             double latency_ms, const char *reason)
{
    json_t *o = json_object();
    json_object_set_new(o, "provider", json_string(m->provider->name));
    json_object_set_new(o, "model", json_string(m->name));
    json_object_set_new(o, "http_status", http_status ? json_integer(http_status) : json_null());
    json_object_set_new(o, "latency_ms", json_real(latency_ms));
    json_object_set_new(o, "reason", reason ? json_string(reason) : json_null());
    json_array_append_new(d->attempts, o);
}

/* --- reading a row back ---------------------------------------------------------------- */

static json_t *col_str(const char *v)
{
    return v ? json_string(v) : json_null();
}

static json_t *col_int(const char *v)
{
    return v ? json_integer(apr_atoi64(v)) : json_null();
}

static json_t *col_real(const char *v)
{
    return v ? json_real(strtod(v, NULL)) : json_null();
}

static json_t *col_bool(const char *v)
{
    return json_boolean(v && strcmp(v, "0") != 0);
}

static json_t *col_json(const char *v, json_t *dflt)
{
    json_t *j = v ? json_loads(v, JSON_DECODE_ANY, NULL) : NULL;
    if (j) {
        json_decref(dflt);
        return j;
    }
    return dflt;
}

static json_t *usage_json(const char *const *v)
{
    json_t *u = json_object();
    json_object_set_new(u, "prompt_tokens", col_int(v[FL_COL_IN]));
    json_object_set_new(u, "completion_tokens", col_int(v[FL_COL_OUT]));
    json_object_set_new(u, "total_tokens", (v[FL_COL_IN] && v[FL_COL_OUT])
                        ? json_integer(apr_atoi64(v[FL_COL_IN]) + apr_atoi64(v[FL_COL_OUT])) : json_null());
    json_object_set_new(u, "cached_tokens", col_int(v[FL_COL_CACHED]));
    json_object_set_new(u, "reasoning_tokens", col_int(v[FL_COL_REASONING]));
    return u;
}

/* A row reads back in three runs of plain columns around the two runs of JSON documents; the
 * runs are built apart so the export can splice the stored documents in without parsing them. */
static json_t *row_head(apr_pool_t *p, const char *const *v)
{
    json_t *o = json_object(), *chosen = json_null();
    if (v[FL_COL_PROVIDER]) {
        chosen = json_object();
        json_object_set_new(chosen, "provider", json_string(v[FL_COL_PROVIDER]));
        json_object_set_new(chosen, "model", col_str(v[FL_COL_MODEL]));
        json_object_set_new(chosen, "score", col_real(v[FL_COL_SCORE]));
    }
    json_object_set_new(o, "id", col_str(v[FL_COL_ID]));
    json_object_set_new(o, "object", json_string("floopy.decision"));
    json_object_set_new(o, "created_at", col_str(fl_time_sql_to_iso(p, v[FL_COL_CREATED])));
    json_object_set_new(o, "organization_id", col_str(v[FL_COL_ORG]));
    json_object_set_new(o, "api_key_id", col_str(v[FL_COL_KEY]));
    json_object_set_new(o, "session_id", col_str(v[FL_COL_SESSION]));
    json_object_set_new(o, "route", col_str(v[FL_COL_ROUTE]));
    json_object_set_new(o, "pinned", col_bool(v[FL_COL_PINNED]));
    json_object_set_new(o, "stream", col_bool(v[FL_COL_STREAM]));
    json_object_set_new(o, "chosen", chosen);
    return o;
}

static json_t *row_middle(const char *const *v)
{
    json_t *o = json_object(), *lat = json_object();
    json_object_set_new(lat, "total", col_real(v[FL_COL_LAT_TOTAL]));
    json_object_set_new(lat, "upstream", col_real(v[FL_COL_LAT_UP]));
    json_object_set_new(o, "confidence", col_real(v[FL_COL_CONFIDENCE]));
    json_object_set_new(o, "phase", col_str(v[FL_COL_PHASE]));
    json_object_set_new(o, "status", col_str(v[FL_COL_STATUS]));
    json_object_set_new(o, "http_status", col_int(v[FL_COL_HTTP]));
    json_object_set_new(o, "latency_ms", lat);
    json_object_set_new(o, "usage", usage_json(v));
    json_object_set_new(o, "cost_usd", col_real(v[FL_COL_COST]));
    json_object_set_new(o, "cache_hit", col_bool(v[FL_COL_CACHE_HIT]));
    return o;
}

static json_t *row_tail(apr_pool_t *p, const char *const *v)
{
    json_t *o = json_object();
    json_object_set_new(o, "completed_at", col_str(fl_time_sql_to_iso(p, v[FL_COL_COMPLETED])));
    return o;
}

/* The stored documents in the order the object shows them, with what an absent one reads as. */
typedef struct doc_col_t {
    const char *key;
    int col;
    const char *absent;
} doc_col_t;

static const doc_col_t DOCS_A[] = {
    { "alternatives", FL_COL_ALTS, "[]" },
    { "signals", FL_COL_SIGNALS, "{}" },
    { "constraints", FL_COL_CONSTRAINTS, "{}" },
};
static const doc_col_t DOCS_B[] = {
    { "error", FL_COL_ERROR, "null" },
    { "attempts", FL_COL_ATTEMPTS, "[]" },
};

static json_t *doc_json(const char *const *v, const doc_col_t *d)
{
    return col_json(v[d->col], json_loads(d->absent, JSON_DECODE_ANY, NULL));
}

static void set_docs(json_t *o, const char *const *v, const doc_col_t *d, int n)
{
    int i;
    for (i = 0; i < n; i++) json_object_set_new(o, d[i].key, doc_json(v, &d[i]));
}

json_t *fl_decision_row_json(apr_pool_t *p, const char *const *v)
{
    json_t *o = row_head(p, v), *mid = row_middle(v), *tail = row_tail(p, v);
    set_docs(o, v, DOCS_A, 3);
    json_object_update(o, mid);
    set_docs(o, v, DOCS_B, 2);
    json_object_update(o, tail);
    json_decref(mid);
    json_decref(tail);
    return o;
}

/* --- writing a row straight out (the export) --------------------------------------------- */

typedef struct row_out_t {
    json_dump_callback_t cb;
    void *baton;
    int failed;
} row_out_t;

static void emit(row_out_t *o, const char *s, size_t n)
{
    if (!o->failed && n && o->cb(s, n, o->baton)) o->failed = 1;
}

/* An object's members without its braces: Jansson dumps it whole into buf and the braces are
 * cut off, so a run of members joins the line. */
static void emit_members(row_out_t *o, apr_pool_t *p, json_t *obj, int comma)
{
    char local[2048], *buf = local;
    size_t n = fl_json_dumpb(obj, local, sizeof(local));
    if (n > sizeof(local)) {
        buf = apr_palloc(p, n);
        n = fl_json_dumpb(obj, buf, n);
    }
    json_decref(obj);
    if (n < 2) {
        o->failed = 1;
        return;
    }
    if (comma) emit(o, ",", 1);
    emit(o, buf + 1, n - 2);
}

/* A stored document goes out as stored when it can: the writer dumped it with Jansson's compact
 * flags (re-dumping would give the same bytes) and MariaDB's JSON type checks it is valid. One
 * that spans lines (written by hand, say) would break JSON Lines: it is parsed and re-dumped. */
static void emit_docs(row_out_t *o, apr_pool_t *p, const char *const *v, const doc_col_t *d,
                      int n)
{
    int i;
    for (i = 0; i < n; i++) {
        const char *doc = v[d[i].col];
        json_t *key = json_string(d[i].key);
        emit(o, ",", 1);
        if (!o->failed && fl_json_dump_cb(key, o->cb, o->baton)) o->failed = 1;
        json_decref(key);
        emit(o, ":", 1);
        if (!doc) {
            emit(o, d[i].absent, strlen(d[i].absent));
        }
        else if (!strpbrk(doc, "\r\n") && (*doc == '{' || *doc == '[' || !strcmp(doc, "null"))) {
            emit(o, doc, strlen(doc));
        }
        else {
            char *redone = fl_json_dump(p, doc_json(v, &d[i]), 1);
            emit(o, redone, strlen(redone));
        }
    }
}

int fl_decision_row_write(apr_pool_t *p, const char *const *v, json_dump_callback_t cb,
                          void *baton)
{
    row_out_t o = { cb, baton, 0 };
    emit(&o, "{", 1);
    emit_members(&o, p, row_head(p, v), 0);
    emit_docs(&o, p, v, DOCS_A, 3);
    emit_members(&o, p, row_middle(v), 1);
    emit_docs(&o, p, v, DOCS_B, 2);
    emit_members(&o, p, row_tail(p, v), 1);
    emit(&o, "}", 1);
    return o.failed ? -1 : 0;
}
