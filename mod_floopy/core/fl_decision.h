/* A routing decision: what was chosen and why, and how the request ended. One per chat request;
 * its column list is the single place the decisions table's shape is spelled out in C. */
#ifndef FL_DECISION_H
#define FL_DECISION_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <jansson.h>

#include "fl_util.h"

typedef struct fl_model_t fl_model_t;

typedef struct fl_usage_t {
    apr_int64_t prompt, completion, total, cached, reasoning; /* -1 = unknown */
} fl_usage_t;

/* USD per million tokens. */
typedef struct fl_price_t {
    int known;
    double input, output, cached_input;
} fl_price_t;

typedef struct fl_alternative_t {
    const fl_model_t *model;
    double score;
    const char *excluded_by;     /* NULL when the candidate stayed in the running */
} fl_alternative_t;

typedef struct fl_decision_t {
    char id[FL_UUID_LEN + 1];
    apr_time_t created, completed;
    const char *org_id, *api_key_id, *session_id;
    const char *route;           /* the route name, or the pinned provider/model */
    int pinned, stream;
    const fl_model_t *chosen;    /* NULL when nothing could be chosen */
    double chosen_score;
    apr_array_header_t *alternatives; /* fl_alternative_t */
    json_t *signals;             /* owned by the decision's pool; without candidates */
    const char *candidates;      /* signals.candidates as JSON text (the router renders it:
                                  * fl_router.c), NULL when there are none */
    const char *constraints;     /* JSON text (the router renders it: fl_router.c) */
    double confidence;           /* 0..1 */
    const char *phase;
    const char *status;
    int http_status;
    double latency_total_ms;
    double latency_upstream_ms;  /* < 0 when no upstream call was made */
    fl_usage_t usage;
    fl_price_t price;            /* of the chosen model when the decision was recorded */
    int cache_hit;
    json_t *error;               /* NULL when the request succeeded */
    json_t *attempts;            /* [{provider, model, status, latency_ms, reason}] */
} fl_decision_t;

/* Column names of the decisions table in the order fl_decision_row_args fills them. */
extern const char *const fl_decision_columns[];
#define FL_DECISION_NCOLS 29

/* Positions in fl_decision_columns (and in a row's args). */
enum {
    FL_COL_ID, FL_COL_ORG, FL_COL_KEY, FL_COL_SESSION, FL_COL_ROUTE, FL_COL_PINNED, FL_COL_STREAM,
    FL_COL_PROVIDER, FL_COL_MODEL, FL_COL_SCORE, FL_COL_ALTS, FL_COL_SIGNALS, FL_COL_CONSTRAINTS,
    FL_COL_CONFIDENCE, FL_COL_PHASE, FL_COL_STATUS, FL_COL_HTTP, FL_COL_LAT_TOTAL, FL_COL_LAT_UP,
    FL_COL_IN, FL_COL_OUT, FL_COL_CACHED, FL_COL_REASONING, FL_COL_COST, FL_COL_CACHE_HIT,
    FL_COL_ERROR, FL_COL_ATTEMPTS, FL_COL_CREATED, FL_COL_COMPLETED
};

fl_decision_t *fl_decision_create(apr_pool_t *p, apr_time_t now);

void fl_usage_clear(fl_usage_t *u);

/* Reads OpenAI's usage object (prompt_tokens, completion_tokens, the details). 0 if absent. */
int fl_usage_from_openai(fl_usage_t *u, const json_t *usage);

/* USD for the usage at the prices; -1 when unpriced or usage unknown. Cached prompt tokens are
 * priced at the cached rate. */
double fl_cost_usd(const fl_price_t *price, const fl_usage_t *u);

/* The signals as stored: candidates first, then the members of d->signals. */
const char *fl_decision_signals_text(apr_pool_t *p, const fl_decision_t *d);
/* The same as one object, owned by p, for what reads the signals back. */
json_t *fl_decision_signals(apr_pool_t *p, const fl_decision_t *d);

/* Fills args[FL_DECISION_NCOLS] with SQL parameter strings (NULL for SQL NULL). */
void fl_decision_row_args(apr_pool_t *p, const fl_decision_t *d, const char **args);

/* Builds the API's decision object from a row of fl_decision_columns (NULL = SQL NULL). */
json_t *fl_decision_row_json(apr_pool_t *p, const char *const *vals);
/* Writes rows straight out as that object, one line's text to cb, byte for byte what dumping
 * fl_decision_row_json gives for documents the decision writer stored, without parsing them and
 * reusing one template of objects from row to row (the export's speed). One writer per thread;
 * it lives as long as p. write: 0, or -1 when cb failed; scratch takes what a row needs. */
typedef struct fl_row_writer_t fl_row_writer_t;
fl_row_writer_t *fl_row_writer_create(apr_pool_t *p);
int fl_row_writer_write(fl_row_writer_t *w, apr_pool_t *scratch, const char *const *vals,
                        json_dump_callback_t cb, void *baton);

/* Records one attempt at a provider on the decision's trace. */
void fl_decision_add_attempt(fl_decision_t *d, const fl_model_t *m, int http_status,
                             double latency_ms, const char *reason);

#endif
