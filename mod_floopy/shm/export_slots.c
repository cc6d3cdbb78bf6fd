/* Export slots: one export per organisation at a time across every child and thread. A slot
 * holds a hash of the organisation and the pid of its child, so a child that died mid-export
 * leaves no slot taken for good. */
#include <errno.h>
#include <signal.h>
#include <unistd.h>
#include <apr_shm.h>
#include <apr_atomic.h>
#include <apr_strings.h>

#include "shm.h"

#define NSLOTS 64

struct floopy_export_slot_t {
    volatile apr_uint32_t org;   /* hash of the exporting organisation; 0 = free */
    volatile apr_uint32_t pid;   /* its process, to free slots of a child that died */
};

apr_status_t floopy_export_slots_create(floopy_state_t *st, apr_pool_t *pconf, server_rec *s)
{
    apr_shm_t *shm;
    apr_status_t rv = apr_shm_create(&shm, sizeof(floopy_export_slot_t) * NSLOTS, NULL, pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "FL009: no shared memory for export slots");
        return rv;
    }
    memset(apr_shm_baseaddr_get(shm), 0, sizeof(floopy_export_slot_t) * NSLOTS);
    st->export_slots = apr_shm_baseaddr_get(shm);
    return APR_SUCCESS;
}

static apr_uint32_t org_hash(const char *org)
{
    apr_uint32_t h = 2166136261u;                  /* FNV-1a */
    for (; *org; org++) h = (h ^ (unsigned char)*org) * 16777619u;
    return h ? h : 1;
}

static int alive(apr_uint32_t pid)
{
    return pid && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

/* The index of a live slot held for h other than mine, or -1. */
static int held_elsewhere(floopy_export_slot_t *slots, apr_uint32_t h, int mine)
{
    int i;
    for (i = 0; i < NSLOTS; i++) {
        if (i != mine && apr_atomic_read32(&slots[i].org) == h) {
            if (alive(apr_atomic_read32(&slots[i].pid))) return i;
            apr_atomic_cas32(&slots[i].org, 0, h);  /* its child died mid-export */
        }
    }
    return -1;
}

/* Takes the organisation's slot; -1 when an export of it runs already (or no slot is free). */
static int slot_take(floopy_export_slot_t *slots, const char *org)
{
    apr_uint32_t h = org_hash(org);
    int i;
    if (held_elsewhere(slots, h, -1) >= 0) return -1;
    for (i = 0; i < NSLOTS; i++) {
        if (apr_atomic_cas32(&slots[i].org, h, 0) == 0) {
            apr_atomic_set32(&slots[i].pid, (apr_uint32_t)getpid());
            /* two takers racing for two free slots: both back off, the client retries */
            if (held_elsewhere(slots, h, i) >= 0) {
                apr_atomic_set32(&slots[i].org, 0);
                return -1;
            }
            return i;
        }
    }
    return -1;
}

typedef struct slot_ref_t {
    floopy_export_slot_t *slot;
} slot_ref_t;

static apr_status_t slot_release(void *v)
{
    slot_ref_t *ref = v;
    apr_atomic_set32(&ref->slot->pid, 0);
    apr_atomic_set32(&ref->slot->org, 0);
    return APR_SUCCESS;
}


apr_status_t floopy_export_slot_take(server_rec *s, apr_pool_t *p, const char *org)
{
    floopy_export_slot_t *slots = floopy_state(s)->export_slots;
    slot_ref_t *ref;
    int slot = slot_take(slots, org);
    if (slot < 0) return APR_EBUSY;
    ref = apr_palloc(p, sizeof(*ref));
    ref->slot = &slots[slot];
    apr_pool_cleanup_register(p, ref, slot_release, apr_pool_cleanup_null);
    return APR_SUCCESS;
}
