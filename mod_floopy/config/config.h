/* The directives: what the operator wrote in httpd.conf, checked and resolved at start-up. A bad
 * directive stops httpd with a message that names it. Nothing here changes after start-up. */
#ifndef FLOOPY_CONFIG_H
#define FLOOPY_CONFIG_H

#include "floopy_module.h"
#include "fl_catalog.h"
#include "fl_learn.h"

typedef struct floopy_srv_t {
    fl_catalog_t *catalog;       /* FloopyProvider, FloopyModel, FloopyRoute */
    int key_cache_ttl;           /* seconds a child trusts a looked-up key (-1 = unset) */
    int writer_interval_ms;      /* decision writer flush interval (-1 = unset) */
    int writer_queue;            /* decisions held per child before requests get 503 */
    int price_refresh_sec;       /* how often a child reloads model_prices */
    long export_max_rows;        /* rows of one export before it is cut (-1 = unset) */
    fl_policy_t policy;          /* FloopyRouter: the learning router's parameters */
    int policy_set;              /* a FloopyRouter line was given here */
    long router_refresh_ms;      /* how often a child reloads the router's statistics */
    long sticky_ttl_sec;         /* how long a session keeps its model */
    const char *judge_id;        /* FloopyJudge provider/model, NULL = no judge */
    double judge_sample;         /* share of answered requests that are judged */
    apr_hash_t *judge_routes;    /* only these routes' answers are judged; NULL = all */
    long judge_queue;            /* background jobs waiting per child before more are skipped */
    const char *admin_token_file;
    /* resolved at start-up from the above */
    const char *admin_token_hash; /* SHA-256 of the admin token */
    fl_model_t *judge_model;
    floopy_state_t *state;       /* not a directive: the one runtime state, see floopy_module.h */
} floopy_srv_t;

typedef struct floopy_dir_t {
    apr_off_t max_body;          /* -1 = unset */
} floopy_dir_t;

#define FLOOPY_DEFAULT_MAX_BODY (10 * 1024 * 1024)

floopy_srv_t *floopy_srv(server_rec *s);
floopy_dir_t *floopy_dir(request_rec *r);
/* The request body limit in force for r (FloopyMaxBodySize). */
apr_off_t floopy_max_body(request_rec *r);

extern const command_rec floopy_cmds[];
void *floopy_create_srv(apr_pool_t *p, server_rec *s);
void *floopy_merge_srv(apr_pool_t *p, void *base, void *add);
void *floopy_create_dir(apr_pool_t *p, char *dir);
void *floopy_merge_dir(apr_pool_t *p, void *base, void *add);
/* Fills in defaults and resolves what names other things (the judge's model, the admin token),
 * for every virtual host; logs and fails on the first bad one. */
apr_status_t floopy_config_check(apr_pool_t *p, server_rec *s);
/* Makes the one runtime state and hangs it on every virtual host's configuration. */
floopy_state_t *floopy_state_create(apr_pool_t *pconf, server_rec *s);

#endif
