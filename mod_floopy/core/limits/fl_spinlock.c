#include <errno.h>
#include <signal.h>
#include <unistd.h>
#include <apr_thread_proc.h>

#include "fl_spinlock.h"

#define SPINS 64                 /* busy tries before yielding: the holder is most likely running */
#define TRIES 20000              /* in all, then APR_EBUSY */
#define PROBE_EVERY 1024         /* how often a waiter asks whether the holder still exists */

static int holder_gone(apr_uint32_t pid)
{
    return kill((pid_t)pid, 0) == -1 && errno == ESRCH;
}

apr_status_t fl_spin_lock(volatile fl_spinlock_t *lock)
{
    apr_uint32_t self = (apr_uint32_t)getpid(), held;
    int tries;
    for (tries = 0; tries < TRIES; tries++) {
        held = 0;
        if (__atomic_compare_exchange_n(lock, &held, self, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
            return APR_SUCCESS;
        }
        /* Taking over from a dead holder is itself a CAS on the pid seen: when several waiters
         * find it dead, one wins and the others wait for that one. */
        if (tries % PROBE_EVERY == PROBE_EVERY - 1 && held != self && holder_gone(held)
            && __atomic_compare_exchange_n(lock, &held, self, 0, __ATOMIC_ACQUIRE,
                                           __ATOMIC_RELAXED)) {
            return APR_SUCCESS;
        }
        if (tries >= SPINS) apr_thread_yield();
    }
    return APR_EBUSY;
}

void fl_spin_unlock(volatile fl_spinlock_t *lock)
{
    __atomic_store_n(lock, 0, __ATOMIC_RELEASE);
}
