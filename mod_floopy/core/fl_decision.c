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
    d->constraints = "{}";
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

const char *fl_decision_signals_text(apr_pool_t *p, const fl_decision_t *d)
{
    apr_size_t n;
    const char *rest;
    if (!d->candidates || !(rest = fl_json_members(p, d->signals, &n))) {
        return fl_json_dump(p, d->signals, 0);
    }
    return apr_pstrcat(p, "{\"candidates\":", d->candidates, n ? "," : "", rest, "}", NULL);
}

json_t *fl_decision_signals(apr_pool_t *p, const fl_decision_t *d)
{
    return fl_json_pool_own(p, json_loads(fl_decision_signals_text(p, d), 0, NULL));
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
    args[FL_COL_SIGNALS] = fl_decision_signals_text(p, d);
    args[FL_COL_CONSTRAINTS] = d->constraints ? d->constraints : "{}";
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

/* A row reads back through a template: the objects of the plain columns are built once, in the
 * order the API shows them, and each row only changes their values, so an export of a million
 * rows does not allocate and free a million objects of thirty values. The stored JSON documents
 * sit in two runs between the plain ones (see DOCS_A/DOCS_B). */
typedef enum { K_STR, K_TIME, K_REAL, K_INT, K_BOOL, K_CONST, K_OBJ, K_CHOSEN, K_SUM } kind_e;
typedef enum { P_HEAD, P_CHOSEN, P_MIDDLE, P_LAT, P_USAGE, P_TAIL, P_N } parent_e;

typedef struct field_t {
    parent_e parent;
    const char *key;
    kind_e kind;
    int col;                     /* the column, or for K_OBJ/K_CHOSEN the object it holds */
} field_t;

static const field_t FIELDS[] = {
    { P_HEAD, "id", K_STR, FL_COL_ID },
    { P_HEAD, "object", K_CONST, -1 },
    { P_HEAD, "created_at", K_TIME, FL_COL_CREATED },
    { P_HEAD, "organization_id", K_STR, FL_COL_ORG },
    { P_HEAD, "api_key_id", K_STR, FL_COL_KEY },
    { P_HEAD, "session_id", K_STR, FL_COL_SESSION },
    { P_HEAD, "route", K_STR, FL_COL_ROUTE },
    { P_HEAD, "pinned", K_BOOL, FL_COL_PINNED },
    { P_HEAD, "stream", K_BOOL, FL_COL_STREAM },
    { P_HEAD, "chosen", K_CHOSEN, P_CHOSEN },
    { P_CHOSEN, "provider", K_STR, FL_COL_PROVIDER },
    { P_CHOSEN, "model", K_STR, FL_COL_MODEL },
    { P_CHOSEN, "score", K_REAL, FL_COL_SCORE },
    { P_MIDDLE, "confidence", K_REAL, FL_COL_CONFIDENCE },
    { P_MIDDLE, "phase", K_STR, FL_COL_PHASE },
    { P_MIDDLE, "status", K_STR, FL_COL_STATUS },
    { P_MIDDLE, "http_status", K_INT, FL_COL_HTTP },
    { P_MIDDLE, "latency_ms", K_OBJ, P_LAT },
    { P_LAT, "total", K_REAL, FL_COL_LAT_TOTAL },
    { P_LAT, "upstream", K_REAL, FL_COL_LAT_UP },
    { P_MIDDLE, "usage", K_OBJ, P_USAGE },
    { P_USAGE, "prompt_tokens", K_INT, FL_COL_IN },
    { P_USAGE, "completion_tokens", K_INT, FL_COL_OUT },
    { P_USAGE, "total_tokens", K_SUM, -1 },
    { P_USAGE, "cached_tokens", K_INT, FL_COL_CACHED },
    { P_USAGE, "reasoning_tokens", K_INT, FL_COL_REASONING },
    { P_MIDDLE, "cost_usd", K_REAL, FL_COL_COST },
    { P_MIDDLE, "cache_hit", K_BOOL, FL_COL_CACHE_HIT },
    { P_TAIL, "completed_at", K_TIME, FL_COL_COMPLETED },
};
#define NFIELDS ((int)(sizeof(FIELDS) / sizeof(FIELDS[0])))

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

#define NDOCS 5

struct fl_row_writer_t {
    const char *doc_key[NDOCS];  /* ,"key": of each document, as Jansson spells the key */
    json_t *obj[P_N];
    json_t *val[NFIELDS];        /* each field's own value object, reused from row to row */
    int shown[NFIELDS];          /* its parent holds val[i] (otherwise null or a boolean) */
};

static apr_status_t writer_free(void *v)
{
    fl_row_writer_t *w = v;
    int i;
    for (i = 0; i < P_N; i++) json_decref(w->obj[i]);
    for (i = 0; i < NFIELDS; i++) json_decref(w->val[i]);
    return APR_SUCCESS;
}

fl_row_writer_t *fl_row_writer_create(apr_pool_t *p)
{
    fl_row_writer_t *w = apr_pcalloc(p, sizeof(*w));
    int i;
    for (i = 0; i < P_N; i++) w->obj[i] = json_object();
    for (i = 0; i < NFIELDS; i++) {
        const field_t *f = &FIELDS[i];
        json_t *v = f->kind == K_REAL ? json_real(0) : f->kind == K_INT || f->kind == K_SUM
                  ? json_integer(0) : f->kind == K_STR || f->kind == K_TIME ? json_string("")
                  : NULL;
        w->val[i] = v;
        /* every key goes in now, so the order never depends on the first row's nulls */
        if (f->kind == K_CONST) {
            json_object_set_new(w->obj[f->parent], f->key, json_string("floopy.decision"));
        }
        else if (f->kind == K_OBJ || f->kind == K_CHOSEN) {
            json_object_set(w->obj[f->parent], f->key, w->obj[f->col]);
        }
        else {
            json_object_set(w->obj[f->parent], f->key, v ? v : json_false());
        }
        w->shown[i] = v != NULL;
    }
    for (i = 0; i < NDOCS; i++) {
        const doc_col_t *d = i < 3 ? &DOCS_A[i] : &DOCS_B[i - 3];
        w->doc_key[i] = apr_pstrcat(p, ",", fl_json_dump(p, json_string(d->key), 1), ":", NULL);
    }
    apr_pool_cleanup_register(p, w, writer_free, apr_pool_cleanup_null);
    return w;
}

/* Puts val[i] back under its key, or null (a boolean) in its place. */
static void show(fl_row_writer_t *w, int i, int present)
{
    const field_t *f = &FIELDS[i];
    if (present == w->shown[i]) return;
    json_object_set(w->obj[f->parent], f->key, present ? w->val[i] : json_null());
    w->shown[i] = present;
}

static void fill_field(fl_row_writer_t *w, apr_pool_t *p, const char *const *v, int i)
{
    const field_t *f = &FIELDS[i];
    const char *x = f->col >= 0 ? v[f->col] : NULL;
    switch (f->kind) {
    case K_TIME:
        x = fl_time_sql_to_iso(p, x);
        /* fall through */
    case K_STR:
        /* an invalid UTF-8 string cannot be shown; it reads as null, as it always has */
        show(w, i, x && json_string_setn(w->val[i], x, strlen(x)) == 0);
        break;
    case K_REAL:
        if (x) json_real_set(w->val[i], strtod(x, NULL));
        show(w, i, x != NULL);
        break;
    case K_INT:
        if (x) json_integer_set(w->val[i], apr_atoi64(x));
        show(w, i, x != NULL);
        break;
    case K_SUM:
        x = v[FL_COL_IN] && v[FL_COL_OUT] ? v[FL_COL_IN] : NULL;
        if (x) json_integer_set(w->val[i], apr_atoi64(x) + apr_atoi64(v[FL_COL_OUT]));
        show(w, i, x != NULL);
        break;
    case K_BOOL:
        json_object_set_new(w->obj[f->parent], f->key, json_boolean(x && strcmp(x, "0") != 0));
        break;
    case K_CHOSEN:
        json_object_set(w->obj[f->parent], f->key,
                        v[FL_COL_PROVIDER] ? w->obj[P_CHOSEN] : json_null());
        break;
    case K_CONST:
    case K_OBJ:
        break;
    }
}

static void writer_fill(fl_row_writer_t *w, apr_pool_t *p, const char *const *v)
{
    int i;
    for (i = 0; i < NFIELDS; i++) fill_field(w, p, v, i);
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
    fl_row_writer_t *w = fl_row_writer_create(p);
    json_t *o, *mid, *tail;
    writer_fill(w, p, v);
    /* copies: the template's objects are changed by the next row */
    o = json_deep_copy(w->obj[P_HEAD]);
    mid = json_deep_copy(w->obj[P_MIDDLE]);
    tail = json_deep_copy(w->obj[P_TAIL]);
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
static void emit_members(row_out_t *o, apr_pool_t *p, const json_t *obj, int comma)
{
    char local[2048];
    apr_size_t n;
    const char *m = fl_json_members_in(p, obj, local, sizeof(local), &n);
    if (!m) {
        o->failed = 1;
        return;
    }
    if (comma) emit(o, ",", 1);
    emit(o, m, n);
}

/* A stored document goes out as stored when it can: the writer dumped it with Jansson's compact
 * flags (re-dumping would give the same bytes) and MariaDB's JSON type checks it is valid. One
 * that spans lines (written by hand, say) would break JSON Lines: it is parsed and re-dumped. */
static void emit_docs(row_out_t *o, apr_pool_t *p, const char *const *v, const doc_col_t *d,
                      int n, const char *const *keys)
{
    int i;
    for (i = 0; i < n; i++) {
        const char *doc = v[d[i].col];
        emit(o, keys[i], strlen(keys[i]));
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

int fl_row_writer_write(fl_row_writer_t *w, apr_pool_t *p, const char *const *v,
                        json_dump_callback_t cb, void *baton)
{
    row_out_t o = { cb, baton, 0 };
    writer_fill(w, p, v);
    emit(&o, "{", 1);
    emit_members(&o, p, w->obj[P_HEAD], 0);
    emit_docs(&o, p, v, DOCS_A, 3, w->doc_key);
    emit_members(&o, p, w->obj[P_MIDDLE], 1);
    emit_docs(&o, p, v, DOCS_B, 2, w->doc_key + 3);
    emit_members(&o, p, w->obj[P_TAIL], 1);
    emit(&o, "}", 1);
    return o.failed ? -1 : 0;
}
