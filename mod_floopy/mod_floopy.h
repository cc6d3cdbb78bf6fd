/* The httpd side of mod_floopy: configuration, per-process state and the helpers the handlers
 * share. Everything that does not need httpd lives in core/. */
#ifndef MOD_FLOOPY_H
#define MOD_FLOOPY_H

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <apr_dbd.h>
#include <apr_thread_cond.h>
#include <apr_thread_proc.h>
#include <mod_dbd.h>
#include <jansson.h>

#include "fl_catalog.h"
#include "fl_error.h"
#include "fl_http.h"
#include "fl_breaker.h"
#include "fl_decision.h"
#include "fl_learn.h"

#ifndef FLOOPY_MODULE_FILE /* AP_DECLARE_MODULE declares it there */
APLOG_USE_MODULE(floopy);
#endif
extern module AP_MODULE_DECLARE_DATA floopy_module;

/* Our log messages carry a tag "FLnnn:" so tests can whitelist the expected ones. */

typedef struct floopy_writer_t floopy_writer_t;
typedef struct floopy_keycache_t floopy_keycache_t;
typedef struct floopy_prices_t floopy_prices_t;
typedef struct floopy_export_slot_t floopy_export_slot_t;
typedef struct floopy_learn_t floopy_learn_t;
typedef struct floopy_snap_t floopy_snap_t;
typedef struct floopy_judge_t floopy_judge_t;

/* State of one child process, made in child_init and owned by the child's pool. */
typedef struct floopy_proc_t {
    fl_http_t *http;
    floopy_writer_t *writer;
    floopy_keycache_t *keys;
    floopy_prices_t *prices;
    floopy_learn_t *learn;
    floopy_judge_t *judge;
    apr_hash_t *provider_state;  /* fl_provider_t* -> the adapter's per-process state */
} floopy_proc_t;

typedef struct floopy_srv_t {
    fl_catalog_t *catalog;
    int key_cache_ttl;           /* seconds a child trusts a looked-up key (-1 = unset) */
    int writer_interval_ms;      /* decision writer flush interval (-1 = unset) */
    int writer_queue;            /* decisions held per child before requests get 503 */
    int price_refresh_sec;       /* how often a child reloads model_prices */
    const char *admin_token_file;
    const char *admin_token_hash; /* SHA-256 of the admin token, read at start-up */
    floopy_proc_t *proc;         /* set in the child; NULL in the parent */
    fl_breaker_slot_t *breakers; /* shared memory, one slot per configured model */
    floopy_export_slot_t *export_slots; /* shared memory: the exports running now */
    long export_max_rows;        /* rows of one export before it is cut (-1 = unset) */
    fl_policy_t policy;          /* FloopyRouter: the learning router's parameters */
    int policy_set;              /* a FloopyRouter line was given here */
    long router_refresh_ms;      /* how often a child reloads the router's statistics */
    long sticky_ttl_sec;         /* how long a session keeps its model */
    const char *judge_id;        /* FloopyJudge provider/model, NULL = no judge */
    fl_model_t *judge_model;     /* resolved at start-up */
    double judge_sample;         /* share of answered requests that are judged */
    apr_hash_t *judge_routes;    /* only these routes' answers are judged; NULL = all */
    long judge_queue;            /* judgements waiting per child before more are skipped */
    server_rec *main_server;     /* mod_dbd's connection pool lives with the main server */
    ap_dbd_t *(*dbd_open)(apr_pool_t *, server_rec *);
    void (*dbd_close)(server_rec *, ap_dbd_t *);
} floopy_srv_t;

typedef struct floopy_dir_t {
    apr_off_t max_body;          /* -1 = unset */
} floopy_dir_t;

/* What a valid key says about its bearer. */
typedef struct floopy_principal_t {
    const char *org_id, *key_id, *role, *plan;
} floopy_principal_t;

#define FLOOPY_DEFAULT_MAX_BODY (10 * 1024 * 1024)

floopy_srv_t *floopy_srv(server_rec *s);
floopy_dir_t *floopy_dir(request_rec *r);
extern const command_rec floopy_cmds[];
void *floopy_create_srv(apr_pool_t *p, server_rec *s);
void *floopy_merge_srv(apr_pool_t *p, void *base, void *add);
void *floopy_create_dir(apr_pool_t *p, char *dir);
void *floopy_merge_dir(apr_pool_t *p, void *base, void *add);
apr_status_t floopy_config_check(apr_pool_t *p, server_rec *s);

/* --- request helpers (floopy_io.c) --- */
const char *floopy_path(request_rec *r);  /* the URI below the Location, always starting "/" */
int floopy_send_json(request_rec *r, int status, json_t *body); /* steals body */
int floopy_send_error(request_rec *r, const fl_error_t *e);
int floopy_fail(request_rec *r, int status, const char *type, const char *code,
                const char *param, const char *msg);
/* Reads the whole body within the limit; an error to send otherwise. */
fl_error_t *floopy_read_body(request_rec *r, apr_off_t limit, char **pbody, apr_size_t *plen);
/* Reads a JSON object body; an error to send otherwise. The value is owned by r->pool. */
fl_error_t *floopy_read_json(request_rec *r, json_t **pobj);
const char *floopy_bearer(request_rec *r);
/* The query string as a table; a parameter not in known (NULL-terminated) is an error. */
fl_error_t *floopy_query(request_rec *r, const char *const *known, apr_table_t **pargs);
/* The from/to parameters (ISO 8601 UTC or Unix seconds) as SQL times: from defaults to the
 * epoch, to is never later than now - settle (rows younger than that may still be written). */
fl_error_t *floopy_time_window(request_rec *r, apr_table_t *args, apr_interval_time_t settle,
                               const char **pfrom, const char **pto);
int floopy_client_gone(conn_rec *c);

/* --- keys (floopy_auth.c) --- */
apr_status_t floopy_keycache_create(floopy_keycache_t **pkc, apr_pool_t *p, int ttl_sec);
/* 401 error or NULL with *pp filled. */
fl_error_t *floopy_authenticate(request_rec *r, floopy_principal_t **pp);

/* --- database (floopy_store.c) --- */
void floopy_store_prepare(server_rec *s, apr_pool_t *p);
ap_dbd_t *floopy_db_acquire(request_rec *r);
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

/* Runs the statements and their audit event in one transaction; each statement must change a
 * row (APR_NOTFOUND otherwise, and nothing is kept), so a change that lost a race records no
 * event. */
apr_status_t floopy_write_audited(apr_pool_t *p, ap_dbd_t *db, const floopy_stmt_t *st, int n,
                                  const char *org, const char *actor, const char *action,
                                  const char *target, json_t *before, json_t *after);

/* Writes an audit event; before/after may be NULL. */
apr_status_t floopy_audit(apr_pool_t *p, ap_dbd_t *db, const char *org_id, const char *actor,
                          const char *action, const char *target, json_t *before, json_t *after);

/* --- circuit breakers (floopy_breaker.c) --- */
apr_status_t floopy_breakers_create(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s);
fl_breaker_slot_t *floopy_breaker(const floopy_srv_t *c, const fl_model_t *m);

/* --- prices (floopy_prices.c) --- */
apr_status_t floopy_prices_create(floopy_prices_t **pp, apr_pool_t *pchild);
/* The operator's table first, then the model's FloopyModel prices; known = 0 for neither. */
void floopy_price_of(floopy_prices_t *pr, apr_pool_t *p, const fl_model_t *m, fl_price_t *out);
apr_status_t floopy_prices_load(floopy_prices_t *pr, apr_pool_t *parent, ap_dbd_t *db);

/* --- decision writer (floopy_writer.c) --- */
/* The writer also keeps prices fresh: it is the child's one background user of the database. */
apr_status_t floopy_writer_start(floopy_writer_t **pw, apr_pool_t *pchild, server_rec *s,
                                 floopy_prices_t *prices);
/* 0 when the queue is full: the caller must not take the request. */
int floopy_writer_has_room(floopy_writer_t *w);
void floopy_writer_enqueue(floopy_writer_t *w, const char *const *args);

/* --- LLM-as-judge (floopy_judge.c) --- */
#define FLOOPY_JUDGE_NCRITERIA 4
/* What the judge scores, in the order of the judge_scores columns. */
extern const char *const floopy_judge_criteria[FLOOPY_JUDGE_NCRITERIA];
/* Each child has one background thread for model calls off the request path: the judge's
 * verdicts and shadow experiments' candidate calls. It runs whether or not FloopyJudge names a
 * judge (an experiment then compares without scores). */
typedef struct fl_chat_request_t fl_chat_request_t;
apr_status_t floopy_judge_start(floopy_judge_t **pJ, apr_pool_t *pchild, server_rec *s,
                                floopy_proc_t *proc);
/* Queues a sampled share of answered requests for judging; never blocks the request. */
/* Whether the decision is in the judge's sample (configured, its route, the draw from its id). */
int floopy_judge_wants(request_rec *r, const fl_decision_t *d);
#define FLOOPY_JUDGE_MAX_BYTES (256 * 1024)   /* a longer conversation or answer is not judged */
void floopy_judge_offer(request_rec *r, const fl_decision_t *d, const fl_chat_request_t *cr,
                        const char *answer, apr_size_t len);
/* A job for the thread: run(s, pool, baton) is called there, then pool is destroyed. pool must
 * be unmanaged; it is the thread's from here on, also when the queue is full (APR_EAGAIN: the
 * job is dropped, nothing ran). */
typedef void floopy_job_fn(server_rec *s, apr_pool_t *pool, void *baton);
apr_status_t floopy_judge_submit(floopy_judge_t *J, apr_pool_t *pool, floopy_job_fn *run,
                                 void *baton);
/* One non-streamed exchange with a model from the thread: body is an OpenAI chat request, *pout
 * the answer in OpenAI's shape, *pms the exchange's time, *usage what it used (may be NULL). */
fl_error_t *floopy_ask(floopy_judge_t *J, apr_pool_t *p, const fl_model_t *m, const char *body,
                       const char **pout, double *pms, fl_usage_t *usage);
/* The judge's four scores (relevance, coherence, helpfulness, safety; 1..10) of an answer (OpenAI
 * shape) to a conversation (the request's messages); an error when there is no judge, the answer
 * has no text (code "not_judged"), or the judge gave no usable verdict (code "bad_verdict").
 * *pms (may be NULL) is the judge's time. */
fl_error_t *floopy_judge_rate(floopy_judge_t *J, apr_pool_t *p, json_t *messages,
                              const char *answer, apr_size_t len, double scores[4],
                              double *pms);

/* --- shadow experiments (floopy_experiments.c, floopy_shadow.c) --- */
/* A running experiment as each child knows it, from the router's snapshot (floopy_learn.c). */
typedef struct floopy_experiment_t {
    const char *id, *org_id, *route, *candidate;
    double sample_rate;
    apr_int64_t sample_cap;
    apr_int64_t sampled;         /* the store's count when the snapshot was loaded */
    apr_uint32_t admitted;       /* samples this child queued since (atomic) */
} floopy_experiment_t;
/* After a non-streamed answer went out: queues a sampled share of an experiment's route's
 * traffic for its candidate; never blocks the request, never changes its answer. */
void floopy_shadow_offer(request_rec *r, const fl_decision_t *d, const fl_chat_request_t *cr,
                         const char *answer, apr_size_t len);
/* /experiments, /experiments/{id}, /experiments/{id}/rollback; rest is the path after
 * "/experiments". */
int floopy_handle_experiments(request_rec *r, const floopy_principal_t *who, const char *rest);
int floopy_handle_experiment_list(request_rec *r, const floopy_principal_t *who);
json_t *floopy_experiment_json(apr_pool_t *p, const char **row);

/* --- chat requests (floopy_chat.c), shared by chat and explain so both refuse alike --- */
typedef struct fl_route_t fl_route_t;
/* Reads and checks the body and resolves its model; the error to answer otherwise (*pcr is set
 * once the body parsed, even when the model is unknown). */
fl_error_t *floopy_chat_read(request_rec *r, fl_chat_request_t **pcr,
                             const fl_route_t **proute, fl_model_t **ppinned);
/* The x-floopy-session-id header (at most 255 bytes), or NULL. */
const char *floopy_session_of(request_rec *r);

/* --- the child's threads (floopy_thread.c) --- */
/* Raises *stopping under mutex, wakes every waiter on cond and joins the thread. */
void floopy_thread_stop(apr_thread_mutex_t *mutex, apr_thread_cond_t *cond, int *stopping,
                        apr_thread_t *thread);

/* --- the learning router (floopy_learn.c) --- */
apr_status_t floopy_learn_start(floopy_learn_t **pL, apr_pool_t *pchild, server_rec *s);
/* This child credited an outcome: rebuild the snapshot now rather than at the next tick. */
void floopy_learn_changed(floopy_learn_t *L);
/* An operator changed what routing reads (constraints, experiments): rebuild now and wait, at
 * most max, until this child routes by the change, so the next request here sees it. Other
 * children see it within FloopyRouter refresh=. */
void floopy_learn_settle(floopy_learn_t *L, apr_interval_time_t max);
#define FLOOPY_SETTLE_MAX apr_time_from_sec(2)
/* The organisation's running experiment on the route, when the draw u (0..1) falls within its
 * sample rate, its candidate is not the live model, and its cap is not used up by the store's
 * count plus what this child admitted since; a copy in r->pool. NULL otherwise. */
const floopy_experiment_t *floopy_learn_experiment(request_rec *r, const char *org,
                                                   const char *route, const char *live, double u);
/* The router's choice for a route, or the pinned model; reads x-floopy-seed (400 if bad).
 * A dry run (explain) leaves the session's stickiness alone. */
fl_error_t *floopy_choose(request_rec *r, fl_decision_t *d, const fl_route_t *route,
                          fl_model_t *pinned, int dry_run);
/* The current statistics (held until r->pool is cleared; NULL before the first load) and the
 * organisation's constraints as the router applies them. */
typedef struct fl_limits_t fl_limits_t;
const fl_snapshot_t *floopy_learn_snapshot(request_rec *r, const char *org, fl_limits_t *lim);
/* Applies one outcome to an arm inside the caller's transaction (see floopy_learn.c). */
apr_status_t floopy_learn_credit(apr_pool_t *p, ap_dbd_t *db, const fl_policy_t *pol,
                                 const char *org, const char *route, const char *model,
                                 double *weight, double revise_from, double reward);

/* --- handlers --- */
int floopy_handle_chat(request_rec *r, const floopy_principal_t *who);
int floopy_handle_models(request_rec *r, const floopy_principal_t *who);
int floopy_handle_decision(request_rec *r, const floopy_principal_t *who, const char *id);
int floopy_handle_decision_list(request_rec *r, const floopy_principal_t *who);
int floopy_handle_audit_list(request_rec *r, const floopy_principal_t *who);
int floopy_handle_export(request_rec *r, const floopy_principal_t *who);
int floopy_handle_explain(request_rec *r, const floopy_principal_t *who);
int floopy_handle_feedback(request_rec *r, const floopy_principal_t *who);
int floopy_handle_constraints(request_rec *r, const floopy_principal_t *who);
int floopy_handle_savings(request_rec *r, const floopy_principal_t *who);
apr_status_t floopy_exports_create(apr_pool_t *pconf, server_rec *s);
void floopy_export_register(void);
int floopy_admin_handler(request_rec *r);

#endif
