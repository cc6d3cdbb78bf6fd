/* A lock of one 32-bit word, for critical sections of a few instructions in memory that several
 * processes share. It is taken by compare-and-swap with the holder's pid, so a holder that died
 * inside (a child the parent killed) is recognised and its lock taken over, instead of the word
 * staying locked until the server restarts. Not fair, and meant for sections far shorter than
 * a time slice: a waiter spins briefly, then yields, and gives up after a bound. */
#ifndef FL_SPINLOCK_H
#define FL_SPINLOCK_H

#include <apr.h>
#include <apr_errno.h>

/* 0 = free; otherwise the pid of the process whose thread holds it. */
typedef apr_uint32_t fl_spinlock_t;

/* APR_SUCCESS with the lock held, or APR_EBUSY when a live process kept it past the bound
 * (some tens of milliseconds of yielding): the caller decides whether to fail open or closed.
 * A holder counts as dead once kill(pid, 0) says it does not exist, so the parent must have
 * reaped it (httpd does). */
apr_status_t fl_spin_lock(volatile fl_spinlock_t *lock);
void fl_spin_unlock(volatile fl_spinlock_t *lock);

#endif
