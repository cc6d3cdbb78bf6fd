/* What the operator configured: providers, priced models and routes. Built once at
 * configuration time and read-only afterwards, so every thread may read it without locks. */
#ifndef FL_CATALOG_H
#define FL_CATALOG_H

#include <apr_pools.h>
#include <apr_hash.h>
#include <apr_tables.h>

struct fl_adapter_t;

typedef struct fl_provider_t {
    const char *name;
    int index;                   /* position in the catalog: per-process state is kept by it */
    const char *type;            /* wire type: "openai", "anthropic", ... */
    const struct fl_adapter_t *adapter;
    apr_table_t *opts;           /* options only the adapter knows (api_version, region...) */
    void *adapter_conf;          /* what the adapter resolved from them at start-up */
    const char *base_url;        /* as configured */
    const char *base_url_env;    /* overrides base_url when set in the environment */
    const char *key_env;         /* credential from this environment variable ... */
    const char *key_file;        /* ... or from this file */
    const char *api_key;         /* resolved at start-up; never logged */
    const char *resolved_base;   /* base_url, or the environment's override, no trailing '/' */
    const char *chat_url;        /* set by adapters whose URL does not depend on the model */
    long connect_timeout_ms;
    long timeout_ms;             /* a whole non-streamed exchange */
    long idle_timeout_ms;        /* silence from upstream that counts as a stall */
    long breaker_failures;       /* consecutive failed tries of a model that open its breaker */
    long breaker_cooldown_sec;   /* how long an open breaker keeps the model out */
} fl_provider_t;

typedef struct fl_model_t {
    const char *id;              /* "provider/model" */
    const char *name;            /* the provider's model name */
    fl_provider_t *provider;
    int priced;                  /* 0 for a pinned model that has no FloopyModel line */
    double input_per_m, output_per_m, cached_input_per_m; /* USD per million tokens */
    int breaker_slot;            /* its circuit breaker in shared memory; -1 = none (pinned) */
} fl_model_t;

typedef struct fl_route_t {
    const char *name;
    apr_array_header_t *candidates; /* fl_model_t*; the first is the route's default */
    double explore;              /* share of decisions where Day-0 candidates compete; -1 =
                                  * the server's FloopyRouter explore= */
} fl_route_t;

typedef struct fl_catalog_t {
    apr_hash_t *providers;   /* name -> fl_provider_t* */
    apr_hash_t *models;      /* "provider/model" -> fl_model_t* */
    apr_hash_t *routes;      /* name -> fl_route_t* */
    apr_array_header_t *provider_list, *model_list, *route_list; /* configuration order */
} fl_catalog_t;

fl_catalog_t *fl_catalog_create(apr_pool_t *p);

/* Parses "type=openai base_url=... key_env=..." style options; returns an error text or NULL.
 * This and fl_catalog_resolve live in providers/fl_catalog_provider.c: both ask the
 * provider's adapter, which the shared ground does not know. */
const char *fl_catalog_add_provider(fl_catalog_t *c, apr_pool_t *p, const char *name,
                                    const char *const *opts, int nopts);
const char *fl_catalog_add_model(fl_catalog_t *c, apr_pool_t *p, const char *id,
                                 const char *const *opts, int nopts);
const char *fl_catalog_add_route(fl_catalog_t *c, apr_pool_t *p, const char *name,
                                 const char *const *ids, int nids);

/* Resolves environment and files (base URLs, credentials); an error text or NULL. */
const char *fl_catalog_resolve(fl_catalog_t *c, apr_pool_t *p);

/* The two halves' common checks of configuration text: a name of letters, digits, '-', '_',
 * '.'; "key=value" split into key and value (0 when there is no '='). */
int fl_catalog_name_valid(const char *s);
int fl_catalog_split_opt(apr_pool_t *p, const char *opt, const char **k, const char **v);

/* What a client's "model" names: a route, or a pinned provider/model. A pinned model with no
 * price line is made up in p, unpriced. APR_NOTFOUND when neither exists. */
apr_status_t fl_catalog_lookup(const fl_catalog_t *c, apr_pool_t *p, const char *model,
                               const fl_route_t **proute, fl_model_t **ppinned);

#endif
