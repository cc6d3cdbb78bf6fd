#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>

#include "fl_json.h"

/* One set of flags for every serialisation: the export and the API must print a decision alike. */
#define DUMP_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY | JSON_REAL_PRECISION(12))

char *fl_json_dump(apr_pool_t *p, json_t *v, int steal)
{
    char *raw = json_dumps(v, DUMP_FLAGS);
    char *s = raw ? apr_pstrdup(p, raw) : apr_pstrdup(p, "null");
    free(raw);
    if (steal) {
        json_decref(v);
    }
    return s;
}

int fl_json_dump_cb(const json_t *v, json_dump_callback_t cb, void *data)
{
    return json_dump_callback(v, cb, data, DUMP_FLAGS);
}

size_t fl_json_dumpb(const json_t *v, char *buf, size_t size)
{
    return json_dumpb(v, buf, size, DUMP_FLAGS);
}

const char *fl_json_members_in(apr_pool_t *p, const json_t *obj, char *local, apr_size_t size,
                               apr_size_t *len)
{
    char *buf = local;
    size_t n = fl_json_dumpb(obj, local, size);
    if (n > size) {
        buf = apr_palloc(p, n);
        n = fl_json_dumpb(obj, buf, n);
    }
    if (n < 2) return NULL;
    *len = n - 2;
    return buf + 1;
}

char *fl_json_members(apr_pool_t *p, const json_t *obj, apr_size_t *len)
{
    char local[2048];
    const char *m = fl_json_members_in(p, obj, local, sizeof(local), len);
    return m ? apr_pstrmemdup(p, m, *len) : NULL;
}

const char *fl_json_str(const json_t *obj, const char *key, const char *dflt)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : dflt;
}

static apr_status_t json_release(void *v)
{
    json_decref((json_t *)v);
    return APR_SUCCESS;
}

json_t *fl_json_pool_own(apr_pool_t *p, json_t *v)
{
    if (v) {
        apr_pool_cleanup_register(p, v, json_release, apr_pool_cleanup_null);
    }
    return v;
}

apr_int64_t fl_json_count(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        return json_integer_value(v);
    }
    return -1;
}
