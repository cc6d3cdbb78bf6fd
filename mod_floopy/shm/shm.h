/* State the child processes share, in shared memory the parent makes at start-up and every child
 * inherits (offsets and values only, never pointers): the circuit breakers, the export slots
 * and which model each session is on. */
#ifndef FLOOPY_SHM_H
#define FLOOPY_SHM_H

#include "floopy_module.h"
#include "fl_breaker.h"
#include "fl_catalog.h"

/* --- circuit breakers (breakers.c): one slot per configured model --- */
apr_status_t floopy_breakers_create(floopy_state_t *st, apr_pool_t *pconf, apr_pool_t *ptemp,
                                    server_rec *s);
fl_breaker_slot_t *floopy_breaker(server_rec *s, const fl_model_t *m);

/* --- export slots (export_slots.c): one export per organisation at a time --- */
apr_status_t floopy_export_slots_create(floopy_state_t *st, apr_pool_t *pconf, server_rec *s);
/* Takes the organisation's slot until p is cleared; APR_EBUSY when an export of it runs
 * already (in any child) or no slot is free. */
apr_status_t floopy_export_slot_take(server_rec *s, apr_pool_t *p, const char *org);

/* --- session stickiness (sticky.c): which model a session is on, whichever child serves it --- */
apr_status_t floopy_sticky_create(floopy_state_t *st, apr_pool_t *pconf, server_rec *s);
/* fl_hash64 of the model the session was given on the route, 0 for none or expired. */
apr_uint64_t floopy_sticky_get(server_rec *s, const char *org, const char *route,
                               const char *session, apr_time_t now);
void floopy_sticky_put(server_rec *s, const char *org, const char *route, const char *session,
                       const char *model, apr_time_t now);

#endif
