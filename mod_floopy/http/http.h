/* The HTTP side of every endpoint: reading requests, answering in OpenAI's error shape, API keys,
 * and the endpoint table that dispatches a path, answers 404/405 (with Allow) and checks the
 * caller's role once for every endpoint. */
#ifndef FLOOPY_HTTP_H
#define FLOOPY_HTTP_H

#include <jansson.h>

#include "floopy_module.h"
#include "fl_error.h"

/* What a valid key says about its bearer. */
typedef struct floopy_principal_t {
    const char *org_id, *key_id, *role, *plan;
} floopy_principal_t;

/* --- reading (request.c) --- */
const char *floopy_path(request_rec *r);  /* the URI below the Location, always starting "/" */
/* Reads the whole body within FloopyMaxBodySize; an error to send otherwise. */
fl_error_t *floopy_read_body(request_rec *r, char **pbody, apr_size_t *plen);
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
/* The x-floopy-session-id header (at most 255 bytes), or NULL. */
const char *floopy_session_of(request_rec *r);

/* --- answering (respond.c) --- */
int floopy_send_json(request_rec *r, int status, json_t *body); /* steals body */
int floopy_send_error(request_rec *r, const fl_error_t *e);
int floopy_fail(request_rec *r, int status, const char *type, const char *code,
                const char *param, const char *msg);

/* The failures many endpoints share, each with its status, type and code written once. */
typedef enum {
    FLOOPY_E_UNAVAILABLE,        /* 503: the database cannot be reached; nothing was done */
    FLOOPY_E_INTERNAL,           /* 500: the store (or something of ours) failed */
    FLOOPY_E_NOT_FOUND,          /* 404: no such thing (of the caller's organisation) */
    FLOOPY_E_UNKNOWN_URL,        /* 404: no endpoint at that path */
    FLOOPY_E_METHOD,             /* 405: the path is there, the method is not */
    FLOOPY_E_ROLE,               /* 403: the key's role may not do this */
    FLOOPY_E_NOT_READY,          /* 503: this process could not set itself up */
    FLOOPY_E_N
} floopy_canned_e;
/* The canned error; msg NULL gives its default message (FLOOPY_E_NOT_FOUND: "no such " + what,
 * where msg names what). */
fl_error_t *floopy_canned(apr_pool_t *p, floopy_canned_e which, const char *param,
                          const char *msg);
int floopy_fail_as(request_rec *r, floopy_canned_e which, const char *param, const char *msg);

/* --- keys (auth.c) --- */
apr_status_t floopy_keycache_create(floopy_keycache_t **pkc, apr_pool_t *p, int ttl_sec);
/* 401 error (503 when the key store is down) or NULL with *pp filled. */
fl_error_t *floopy_authenticate(request_rec *r, floopy_principal_t **pp);

/* --- the endpoint table (dispatch.c) --- */
typedef enum {
    FLOOPY_ROLE_ANY,             /* any valid key of the organisation (or the admin token) */
    FLOOPY_ROLE_ADMIN            /* an admin key of the organisation */
} floopy_role_e;

#define FLOOPY_MAX_PARAMS 2
/* arg holds the path's {name} segments in order. */
typedef int floopy_endpoint_fn(request_rec *r, const floopy_principal_t *who,
                               const char *const *arg);

typedef struct floopy_endpoint_t {
    int method;                  /* M_GET (HEAD too), M_POST, M_PUT, M_PATCH, M_DELETE */
    const char *pattern;         /* "/experiments/{id}/rollback": a {name} is one segment */
    floopy_role_e role;
    floopy_endpoint_fn *handler;
    const char *what;            /* what it does, for the 403: "starting an experiment" */
} floopy_endpoint_t;

/* Finds path's endpoint in table (ended by a NULL pattern) and calls it; 404 when no pattern
 * matches, 405 with Allow when only other methods do, 403 when who's role falls short. */
int floopy_dispatch(request_rec *r, const floopy_endpoint_t *table,
                    const floopy_principal_t *who, const char *path);

#endif
