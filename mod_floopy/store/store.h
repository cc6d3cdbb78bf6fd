/* The one door to the database: every SQL statement is prepared here (statements.c) under a
 * label, run through the helpers of db.c, and no other area calls apr_dbd itself. The decision
 * writer and the prices snapshot live here too: they are the child's background users of it. */
#ifndef FLOOPY_STORE_H
#define FLOOPY_STORE_H

#include <apr_dbd.h>
#include <jansson.h>

#include "floopy_module.h"
#include "fl_catalog.h"
#include "fl_decision.h"

#define FLOOPY_SQL_DECISION_INS "floopy_decision_ins_"
#define FLOOPY_SQL_DECISION_GET "floopy_decision_get"
#define FLOOPY_SQL_KEY_LOOKUP   "floopy_key_lookup"
#define FLOOPY_SQL_AUDIT_INS    "floopy_audit_ins"
#define FLOOPY_SQL_ORG_INS      "floopy_org_ins"
#define FLOOPY_SQL_ORG_LIST     "floopy_org_list"
#define FLOOPY_SQL_ORG_GET      "floopy_org_get"
#define FLOOPY_SQL_KEY_INS      "floopy_key_ins"
#define FLOOPY_SQL_KEY_LIST     "floopy_key_list"
#define FLOOPY_SQL_KEY_GET      "floopy_key_get"
#define FLOOPY_SQL_KEY_REVOKE   "floopy_key_revoke"
#define FLOOPY_SQL_PRICES       "floopy_prices"
#define FLOOPY_SQL_ORG_UPDATE   "floopy_org_update"
#define FLOOPY_SQL_SESSION_SEEN "floopy_session_seen"
#define FLOOPY_SQL_CONSTRAINTS_GET "floopy_constraints_get"
#define FLOOPY_SQL_CONSTRAINTS_PUT "floopy_constraints_put"
#define FLOOPY_SQL_FEEDBACK_INS "floopy_feedback_ins"
#define FLOOPY_SQL_FEEDBACK_ACTIVE "floopy_feedback_active"
#define FLOOPY_SQL_FEEDBACK_REPLACE "floopy_feedback_replace"
#define FLOOPY_SQL_DECISION_LIST "floopy_decision_list_"   /* + page size */
#define FLOOPY_SQL_AUDIT_LIST   "floopy_audit_list_"       /* + page size */
#define FLOOPY_SQL_DECISION_EXPORT "floopy_decision_export"
#define FLOOPY_SQL_ARM_QUALITY_ALL "floopy_arm_quality_all"
#define FLOOPY_SQL_ARM_QUALITY_LOCK "floopy_arm_quality_lock"
#define FLOOPY_SQL_ARM_QUALITY_PUT "floopy_arm_quality_put"
#define FLOOPY_SQL_ARM_USAGE_RECENT "floopy_arm_usage_recent"
#define FLOOPY_SQL_ARM_USAGE_ADD "floopy_arm_usage_add"
#define FLOOPY_SQL_BENCHMARK_PRIORS "floopy_benchmark_priors"
#define FLOOPY_SQL_OPTED_OUT    "floopy_opted_out"
#define FLOOPY_SQL_CONSTRAINTS_ALL "floopy_constraints_all"
#define FLOOPY_SQL_SESSION_ARMS "floopy_session_arms"
#define FLOOPY_SQL_DECISION_ARM "floopy_decision_arm"
#define FLOOPY_SQL_CREDITS_OF   "floopy_credits_of"
#define FLOOPY_SQL_CREDIT_INS   "floopy_credit_ins"
#define FLOOPY_SQL_JUDGE_INS    "floopy_judge_ins"
#define FLOOPY_SQL_OUTCOMES_FEEDBACK "floopy_outcomes_feedback"
#define FLOOPY_SQL_OUTCOMES_JUDGE "floopy_outcomes_judge"
#define FLOOPY_SQL_SAVINGS      "floopy_savings"
#define FLOOPY_SQL_SAVINGS_EXCLUDED "floopy_savings_excluded"
#define FLOOPY_SQL_EXPERIMENT_INS "floopy_experiment_ins"
#define FLOOPY_SQL_EXPERIMENT_GET "floopy_experiment_get"
#define FLOOPY_SQL_EXPERIMENT_LIST "floopy_experiment_list_"   /* + page size */
#define FLOOPY_SQL_EXPERIMENT_STOP "floopy_experiment_stop"
#define FLOOPY_SQL_EXPERIMENTS_RUNNING "floopy_experiments_running"
#define FLOOPY_SQL_EXPERIMENT_TAKE "floopy_experiment_take"
#define FLOOPY_SQL_EXPERIMENT_RESULT_INS "floopy_experiment_result_ins"
#define FLOOPY_SQL_OUTCOMES_EXPERIMENT "floopy_outcomes_experiment"

/* The columns of an experiment as GET /experiments shows it (view experiment_outcomes), in the
 * order FLOOPY_SQL_EXPERIMENT_GET and _LIST select them. */
enum {
    FLOOPY_XC_ID, FLOOPY_XC_ORG, FLOOPY_XC_ROUTE, FLOOPY_XC_CANDIDATE, FLOOPY_XC_RATE,
    FLOOPY_XC_CAP, FLOOPY_XC_STATUS, FLOOPY_XC_SAMPLED, FLOOPY_XC_CREATED_BY,
    FLOOPY_XC_CREATED_AT, FLOOPY_XC_STOPPED_AT, FLOOPY_XC_STOPPED_BY, FLOOPY_XC_COMPARED,
    FLOOPY_XC_CAND_ERRORS, FLOOPY_XC_JUDGED, FLOOPY_XC_LIVE_Q, FLOOPY_XC_LIVE_Q_SE,
    FLOOPY_XC_CAND_Q, FLOOPY_XC_CAND_Q_SE, FLOOPY_XC_DELTA_Q, FLOOPY_XC_DELTA_Q_SE,
    FLOOPY_XC_COSTED, FLOOPY_XC_COST_DELTA, FLOOPY_XC_LIVE_COST, FLOOPY_XC_CAND_COST,
    FLOOPY_XC_TIMED, FLOOPY_XC_LAT_DELTA, FLOOPY_XC_LIVE_LAT, FLOOPY_XC_CAND_LAT,
    FLOOPY_XC_N
};

/* Page sizes a list statement is prepared for (a page asks for one row more than it shows, to
 * know whether another page follows): the smallest that holds limit + 1 is used. */
#define FLOOPY_NPAGE 5
extern const int floopy_page_sizes[FLOOPY_NPAGE];
#define FLOOPY_EXPORT_BATCH 1000

/* Multi-row insert statements exist for these batch sizes, largest first. */
#define FLOOPY_NBATCH 5
extern const int floopy_batch_sizes[FLOOPY_NBATCH];
const char *floopy_batch_label(int i);

/* --- running statements (db.c) --- */
/* mod_dbd prepares these on every connection it opens for the main server. */
void floopy_store_prepare(server_rec *s, apr_pool_t *p);
/* The request's connection (released with r->pool); NULL when the database is down. */
ap_dbd_t *floopy_db_acquire(request_rec *r);
/* A connection for a background thread, and its return; NULL when the database is down. */
ap_dbd_t *floopy_db_open(server_rec *s, apr_pool_t *p);
void floopy_db_close(server_rec *s, ap_dbd_t *db);
/* Runs a prepared select and hands back every row as an array of column strings (NULL for SQL
 * NULL); rows are drained so the connection stays usable. */
apr_status_t floopy_db_select(apr_pool_t *p, ap_dbd_t *db, const char *label, int nargs,
                              const char **args, apr_array_header_t **prows, int *pncols);
/* The same, the statement's work in scratch and the rows copied into `into` (which can then
 * outlive scratch, or go to another thread). */
apr_status_t floopy_db_select_into(apr_pool_t *scratch, apr_pool_t *into, ap_dbd_t *db,
                                   const char *label, int nargs, const char **args,
                                   apr_array_header_t **prows, int *pncols);
/* Hands each row to fn as it is read, its values valid only during the call (nothing copied);
 * fn's non-zero return skips the rest. */
typedef int (*floopy_row_fn)(void *baton, const char *const *vals, int ncols);
apr_status_t floopy_db_each(apr_pool_t *p, ap_dbd_t *db, const char *label, int nargs,
                            const char **args, floopy_row_fn fn, void *baton, int *pncols);
apr_status_t floopy_db_exec(apr_pool_t *p, ap_dbd_t *db, const char *label, int nargs,
                            const char **args, int *paffected);
typedef struct floopy_stmt_t {
    const char *label;
    int nargs;
    const char **args;
} floopy_stmt_t;

/* Runs body(p, db, baton) in one transaction, committed when it returns APR_SUCCESS and rolled
 * back otherwise. */
typedef apr_status_t floopy_tx_fn(apr_pool_t *p, ap_dbd_t *db, void *baton);
apr_status_t floopy_db_transaction(apr_pool_t *p, ap_dbd_t *db, floopy_tx_fn *body, void *baton);

/* Runs the statements and their audit event in one transaction; each statement must change a
 * row (APR_NOTFOUND otherwise, and nothing is kept), so a change that lost a race records no
 * event. */
apr_status_t floopy_write_audited(apr_pool_t *p, ap_dbd_t *db, const floopy_stmt_t *st, int n,
                                  const char *org, const char *actor, const char *action,
                                  const char *target, json_t *before, json_t *after);

/* --- an export's reading thread (export_reader.c) --- */
typedef struct floopy_export_reader_t floopy_export_reader_t;
typedef struct floopy_export_batch_t {
    apr_pool_t *p;               /* the rows; cleared by the reader when it refills the slot */
    apr_array_header_t *rows;    /* const char ** rows of FLOOPY_SQL_DECISION_EXPORT */
    int failed, last;
} floopy_export_batch_t;
/* Starts reading args = { org, after, from, to } in batches on a thread of its own; it is
 * joined before r->pool goes, whatever ends the export. */
apr_status_t floopy_export_reader_start(floopy_export_reader_t **prd, request_rec *r,
                                        ap_dbd_t *db, const char *const *args);
/* The next filled batch (waits for it), NULL when the reader has finished; hand it back with
 * _release when written. */
floopy_export_batch_t *floopy_export_reader_next(floopy_export_reader_t *rd);
void floopy_export_reader_release(floopy_export_reader_t *rd);
void floopy_export_reader_stop(floopy_export_reader_t *rd);

/* --- prices (prices.c) --- */
apr_status_t floopy_prices_create(floopy_prices_t **pp, apr_pool_t *pchild);
/* The operator's table first, then the model's FloopyModel prices; known = 0 for neither. */
void floopy_price_of(floopy_prices_t *pr, apr_pool_t *p, const fl_model_t *m, fl_price_t *out);
apr_status_t floopy_prices_load(floopy_prices_t *pr, apr_pool_t *parent, ap_dbd_t *db);

/* --- the decision writer (writer.c) --- */
/* The writer also keeps prices fresh: it is the child's one background user of the database. */
apr_status_t floopy_writer_start(floopy_writer_t **pw, apr_pool_t *pchild, server_rec *s,
                                 floopy_prices_t *prices);
/* 0 when the queue is full: the caller must not take the request. */
int floopy_writer_has_room(floopy_writer_t *w);
void floopy_writer_enqueue(floopy_writer_t *w, const char *const *args);

#endif
