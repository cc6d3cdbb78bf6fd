/* Keyset paging for every list (decisions, audit events, experiments): newest first, with an
 * opaque cursor. A page never repeats or skips a row while new ones arrive: rows are ordered by
 * their time-ordered id, new rows sort above every page already served, and the lists the
 * decision writer feeds leave out rows younger than it may still be storing. */
#include <stdlib.h>
#include <apr_strings.h>

#include "store/store.h"
#include "api.h"
#include "fl_util.h"

#define CURSOR_PREFIX "c1_"
#define MAX_LIMIT 1000

fl_error_t *floopy_bad_param(request_rec *r, const char *param, const char *why)
{
    return fl_error_invalid(r->pool, "invalid_value", param, "'%s' %s", param, why);
}

fl_error_t *floopy_page_parse(request_rec *r, const char *const *known,
                              apr_interval_time_t settle, floopy_page_query_t *q)
{
    const char *v;
    fl_error_t *e;

    if ((e = floopy_query(r, known, &q->args))) return e;
    q->limit = 50;
    if ((v = apr_table_get(q->args, "limit"))) {
        char *end;
        long n = strtol(v, &end, 10);
        if (*end || n < 1 || n > MAX_LIMIT) return floopy_bad_param(r, "limit", "must be a whole number from 1 to 1000");
        q->limit = (int)n;
    }
    q->below = "ffffffff-ffff-ffff-ffff-ffffffffffff";
    if ((v = apr_table_get(q->args, "cursor"))) {
        if (strncmp(v, CURSOR_PREFIX, 3) || !fl_uuid_valid(v + 3)) {
            return floopy_bad_param(r, "cursor", "is not a cursor this API gave out");
        }
        q->below = v + 3;
    }
    return floopy_time_window(r, q->args, settle, &q->from_sql, &q->to_sql);
}

static const char *page_label(apr_pool_t *p, const char *prefix, int limit, int *rows)
{
    int i;
    for (i = 0; i < FLOOPY_NPAGE && floopy_page_sizes[i] < limit + 1; i++);
    *rows = floopy_page_sizes[i];
    return apr_psprintf(p, "%s%d", prefix, floopy_page_sizes[i]);
}

int floopy_page_send(request_rec *r, const char *prefix, const floopy_page_query_t *q,
                     int nargs, const char **args,
                     json_t *(*conv)(apr_pool_t *, const char **))
{
    ap_dbd_t *db = floopy_db_acquire(r);
    apr_array_header_t *rows;
    json_t *out, *data;
    int sized, i, shown;

    if (!db) return floopy_fail_as(r, FLOOPY_E_UNAVAILABLE, NULL, NULL);
    if (floopy_db_select(r->pool, db, page_label(r->pool, prefix, q->limit, &sized), nargs,
                         args, &rows, NULL)) {
        return floopy_fail_as(r, FLOOPY_E_INTERNAL, NULL, NULL);
    }
    shown = rows->nelts < q->limit ? rows->nelts : q->limit;
    data = json_array();
    for (i = 0; i < shown; i++) {
        json_array_append_new(data, conv(r->pool, APR_ARRAY_IDX(rows, i, const char **)));
    }
    out = json_object();
    json_object_set_new(out, "object", json_string("list"));
    json_object_set_new(out, "data", data);
    json_object_set_new(out, "has_more", json_boolean(rows->nelts > q->limit));
    json_object_set_new(out, "next_cursor", rows->nelts > q->limit
        ? json_string(apr_pstrcat(r->pool, CURSOR_PREFIX,
                                  APR_ARRAY_IDX(rows, shown - 1, const char **)[0], NULL))
        : json_null());
    return floopy_send_json(r, 200, out);
}

json_t *floopy_num_or_null(const char *v)
{
    return v ? json_real(strtod(v, NULL)) : json_null();
}
