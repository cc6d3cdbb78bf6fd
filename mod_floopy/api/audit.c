/* GET /audit-events: an organisation's audit trail (admin keys), newest first, keyset-paged. */
#include <apr_strings.h>

#include "store/store.h"
#include "api.h"
#include "fl_util.h"

/* the trail is written with the change it records, but paged like the decisions */
#define SETTLE apr_time_from_sec(2)

static json_t *json_col(const char *v)
{
    json_t *j = v ? json_loads(v, JSON_DECODE_ANY, NULL) : NULL;
    return j ? j : json_null();
}

static json_t *audit_row(apr_pool_t *p, const char **row)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(row[0]));
    json_object_set_new(o, "object", json_string("audit_event"));
    json_object_set_new(o, "organization_id", row[1] ? json_string(row[1]) : json_null());
    json_object_set_new(o, "actor", json_string(row[2]));
    json_object_set_new(o, "action", json_string(row[3]));
    json_object_set_new(o, "target", row[4] ? json_string(row[4]) : json_null());
    json_object_set_new(o, "before", json_col(row[5]));
    json_object_set_new(o, "after", json_col(row[6]));
    json_object_set_new(o, "created_at", json_string(fl_time_sql_to_iso(p, row[7])));
    return o;
}

int floopy_handle_audit_list(request_rec *r, const floopy_principal_t *who, const char *const *arg)
{
    static const char *const known[] = { "limit", "cursor", "from", "to", "action", "actor", NULL };
    floopy_page_query_t q;
    fl_error_t *e;
    const char *args[8];

    if ((e = floopy_page_parse(r, known, SETTLE, &q))) return floopy_send_error(r, e);
    args[0] = who->org_id; args[1] = q.below; args[2] = q.from_sql; args[3] = q.to_sql;
    args[4] = args[5] = apr_table_get(q.args, "action");
    args[6] = args[7] = apr_table_get(q.args, "actor");
    return floopy_page_send(r, FLOOPY_SQL_AUDIT_LIST, &q, 8, args, audit_row);
}

