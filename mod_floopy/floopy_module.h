/* The ground every httpd-side file of mod_floopy stands on: the module, and the state that lives
 * beside the configuration (what the parent sets up at start-up, and each child's own). The
 * areas, each with a header of its own, from the top down; an area includes the headers of the
 * areas below it, never above:
 *   mod_floopy.c  the module record and the hooks
 *   api/          the /v1 endpoints besides model requests, one file per family; the table
 *   gateway/      a model request as a pipeline of stages, ingress by ingress; the call
 *   jobs/         the child's background work: the worker queue, the judge, shadow experiments
 *   route/        the router's snapshot, choosing a model, crediting an outcome
 *   http/         reading requests, answering in OpenAI's shape, API keys, the endpoint table
 *   store/        every SQL statement, the decision writer, prices, an export's reader
 *   shm/          what the children share: circuit breakers, export slots, session stickiness
 *   config/       the directives
 * core/ (providers, routing maths, the shared ground) needs no httpd and no glue. */
#ifndef FLOOPY_MODULE_H
#define FLOOPY_MODULE_H

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <apr_hash.h>
#include <apr_dbd.h>
#include <mod_dbd.h>

#ifndef FLOOPY_MODULE_FILE /* AP_DECLARE_MODULE declares it there */
APLOG_USE_MODULE(floopy);
#endif
extern module AP_MODULE_DECLARE_DATA floopy_module;

/* Every log message carries a tag "FLnnn:" of its own (t/lint/log-tags.sh checks they are
 * unique), so the tests whitelist expected messages by tag. */

typedef struct fl_http_t fl_http_t;
typedef struct fl_breaker_slot_t fl_breaker_slot_t;
typedef struct floopy_writer_t floopy_writer_t;
typedef struct floopy_keycache_t floopy_keycache_t;
typedef struct floopy_prices_t floopy_prices_t;
typedef struct floopy_router_t floopy_router_t;
typedef struct floopy_jobs_t floopy_jobs_t;
typedef struct floopy_export_slot_t floopy_export_slot_t;
typedef struct floopy_sticky_t floopy_sticky_t;

/* State of one child process, made in child_init and owned by the child's pool. */
typedef struct floopy_proc_t {
    fl_http_t *http;             /* the one libcurl wrapper: easy handles reused per thread */
    floopy_writer_t *writer;     /* store/: decisions off the request path */
    floopy_keycache_t *keys;     /* http/: looked-up API keys */
    floopy_prices_t *prices;     /* store/: the model_prices snapshot */
    floopy_router_t *router;     /* route/: the statistics snapshot */
    floopy_jobs_t *jobs;         /* jobs/: the background worker */
    apr_hash_t *provider_state;  /* fl_provider_t* -> the adapter's per-process state */
} floopy_proc_t;

/* What the parent sets up once for all virtual hosts (post_config), inherited by every child. */
typedef struct floopy_state_t {
    server_rec *main_server;     /* mod_dbd's connection pool lives with the main server */
    ap_dbd_t *(*dbd_open)(apr_pool_t *, server_rec *);
    void (*dbd_close)(server_rec *, ap_dbd_t *);
    fl_breaker_slot_t *breakers; /* shared memory, one slot per configured model */
    floopy_export_slot_t *export_slots; /* shared memory: the exports running now */
    floopy_sticky_t *sticky;     /* shared memory: which model a session is on */
    floopy_proc_t *proc;         /* this child's; NULL in the parent or if the child failed */
} floopy_state_t;

floopy_state_t *floopy_state(server_rec *s);
/* This child's state; NULL when it could not be set up (handlers answer 503). */
floopy_proc_t *floopy_proc(server_rec *s);

#endif
