/* The endpoints of /v1 besides the model requests (gateway/): one file per family, each a
 * floopy_endpoint_fn that the table in routes.c reaches. They read and write through store/
 * and read the router through route/. */
#ifndef FLOOPY_API_H
#define FLOOPY_API_H

#include "http/http.h"
#include "fl_digest.h"

/* The /v1 endpoint table (routes.c). */
extern const floopy_endpoint_t floopy_v1_endpoints[];

floopy_endpoint_fn floopy_handle_models, floopy_handle_decision, floopy_handle_decision_list,
    floopy_handle_audit_list, floopy_handle_export, floopy_handle_explain,
    floopy_handle_feedback, floopy_handle_constraints_get, floopy_handle_constraints_put,
    floopy_handle_savings, floopy_handle_experiment_start, floopy_handle_experiment_list,
    floopy_handle_experiment, floopy_handle_experiment_rollback;

/* --- keyset paging shared by the lists (paging.c) --- */
typedef struct floopy_page_query_t {
    apr_table_t *args;
    int limit;
    const char *below;           /* list ids below this one */
    const char *from_sql, *to_sql;
} floopy_page_query_t;
/* Reads limit, cursor, from and to (and checks that every parameter is in known); rows younger
 * than settle are left out of the window. */
fl_error_t *floopy_page_parse(request_rec *r, const char *const *known,
                              apr_interval_time_t settle, floopy_page_query_t *q);
/* Runs the page statement (label prefix + page size) and answers
 * {"object":"list","data",...,"has_more","next_cursor"}, each row through conv. */
int floopy_page_send(request_rec *r, const char *prefix, const floopy_page_query_t *q,
                     int nargs, const char **args,
                     json_t *(*conv)(apr_pool_t *, const char **));
/* 'param' with why, as a 400 invalid_value. */
fl_error_t *floopy_bad_param(request_rec *r, const char *param, const char *why);
/* A stored number, or null. */
json_t *floopy_num_or_null(const char *v);

/* --- the export's digest (export_filter.c) --- */
typedef struct floopy_export_trailer_t {
    fl_digest_t *digest;
    apr_int64_t rows;
    int truncated;
    const char *reason;          /* why it was cut: "max_rows", "store_error"; NULL when whole */
    const char *next_after;
} floopy_export_trailer_t;
void floopy_export_register(void);
/* Hashes every byte r sends from here on and appends t's trailer line at the end. */
void floopy_export_filter_add(request_rec *r, floopy_export_trailer_t *t);

#endif
