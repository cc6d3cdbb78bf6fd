/* Session stickiness in shared memory: the table (core's fl_sticky, lock-free slots) is made by
 * the parent and inherited by every child, so a session keeps its model whichever child serves
 * its next request. */
#include <apr_shm.h>

#include "config/config.h"
#include "shm.h"
#include "fl_learn.h"

#define STICKY_SLOTS 65536

struct floopy_sticky_t {
    fl_sticky_t *table;
};

apr_status_t floopy_sticky_create(floopy_state_t *st, apr_pool_t *pconf, server_rec *s)
{
    apr_size_t size = fl_sticky_size(STICKY_SLOTS);
    apr_shm_t *shm;
    apr_status_t rv = apr_shm_create(&shm, size, NULL, pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "FL013: no shared memory for session "
                     "stickiness (%" APR_SIZE_T_FMT " bytes)", size);
        return rv;
    }
    st->sticky = apr_pcalloc(pconf, sizeof(*st->sticky));
    st->sticky->table = fl_sticky_init(apr_shm_baseaddr_get(shm), STICKY_SLOTS,
                                       apr_time_from_sec(floopy_srv(s)->sticky_ttl_sec));
    return APR_SUCCESS;
}

apr_uint64_t floopy_sticky_get(server_rec *s, const char *org, const char *route,
                               const char *session, apr_time_t now)
{
    floopy_sticky_t *sk = floopy_state(s)->sticky;
    return sk ? fl_sticky_get(sk->table, org, route, session, now) : 0;
}

void floopy_sticky_put(server_rec *s, const char *org, const char *route, const char *session,
                       const char *model, apr_time_t now)
{
    floopy_sticky_t *sk = floopy_state(s)->sticky;
    if (sk) fl_sticky_put(sk->table, org, route, session, model, now);
}
