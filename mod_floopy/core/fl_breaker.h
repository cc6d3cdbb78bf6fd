/* A circuit breaker per provider, in memory shared by all child processes: a provider that
 * keeps failing is taken out of rotation for a cool-down, then one request probes it back in.
 * Lock-free: three 32-bit words per provider updated with atomics, so any child may read and
 * write them at any time. */
#ifndef FL_BREAKER_H
#define FL_BREAKER_H

#include <apr_pools.h>
#include <apr_time.h>

typedef struct fl_breaker_slot_t {
    volatile apr_uint32_t failures;    /* consecutive failed requests */
    volatile apr_uint32_t open_until;  /* Unix seconds; 0 = closed */
    volatile apr_uint32_t opened;      /* times it opened, for traces */
} fl_breaker_slot_t;

typedef enum {
    FL_BREAKER_CLOSED,                 /* go ahead */
    FL_BREAKER_PROBE,                  /* cool-down over: this caller probes */
    FL_BREAKER_OPEN                    /* skip the provider */
} fl_breaker_e;

/* May this request use the provider? A PROBE holds the breaker open for the others until the
 * probe's outcome is reported (or probe_sec pass). */
fl_breaker_e fl_breaker_check(fl_breaker_slot_t *s, apr_time_t now, int probe_sec);

void fl_breaker_success(fl_breaker_slot_t *s);

/* A failure that says something about the provider (not a client's bad request). Returns 1
 * when this failure opened the breaker. */
int fl_breaker_failure(fl_breaker_slot_t *s, apr_time_t now, int threshold, int cooldown_sec);

#endif
