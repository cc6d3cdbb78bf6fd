#include <apr_atomic.h>

#include "fl_breaker.h"

fl_breaker_e fl_breaker_check(fl_breaker_slot_t *s, apr_time_t now, int probe_sec)
{
    apr_uint32_t until = apr_atomic_read32(&s->open_until);
    apr_uint32_t t = (apr_uint32_t)apr_time_sec(now);
    if (until == 0) return FL_BREAKER_CLOSED;
    if (t < until) return FL_BREAKER_OPEN;
    /* Cool-down over: the one caller that moves open_until forward is the probe. */
    if (apr_atomic_cas32(&s->open_until, t + (apr_uint32_t)probe_sec, until) == until) {
        return FL_BREAKER_PROBE;
    }
    return FL_BREAKER_OPEN;
}

void fl_breaker_success(fl_breaker_slot_t *s)
{
    apr_atomic_set32(&s->failures, 0);
    apr_atomic_set32(&s->open_until, 0);
}

int fl_breaker_failure(fl_breaker_slot_t *s, apr_time_t now, int threshold, int cooldown_sec)
{
    apr_uint32_t f = apr_atomic_inc32(&s->failures) + 1;
    apr_uint32_t until = apr_atomic_read32(&s->open_until);
    apr_uint32_t t = (apr_uint32_t)apr_time_sec(now);
    /* Open when the count reaches the threshold, or when a probe failed (still open). */
    if ((int)f >= threshold || (until != 0 && f > 0 && until >= t)) {
        apr_uint32_t next = t + (apr_uint32_t)cooldown_sec;
        if (apr_atomic_cas32(&s->open_until, next, until) == until && until == 0) {
            apr_atomic_inc32(&s->opened);
            return 1;
        }
        apr_atomic_set32(&s->open_until, next);
    }
    return 0;
}
