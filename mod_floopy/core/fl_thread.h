/* The shape every background thread of a child shares (decision writer, router snapshot, jobs,
 * an export's reader): a mutex, a condition, a stop flag under that mutex, a join. */
#ifndef FL_THREAD_H
#define FL_THREAD_H

#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <apr_thread_proc.h>

/* Makes the mutex and the condition, then starts fn(thread, data); all in p. */
apr_status_t fl_thread_start(apr_thread_mutex_t **pmutex, apr_thread_cond_t **pcond,
                             apr_thread_t **pthread, apr_pool_t *p,
                             apr_thread_start_t fn, void *data);
/* Raises *stopping under mutex, wakes every waiter on cond and joins the thread. */
void fl_thread_stop(apr_thread_mutex_t *mutex, apr_thread_cond_t *cond, int *stopping,
                    apr_thread_t *thread);

/* A pool with an allocator of its own, destroyed with it: for work on another thread, and for
 * work that frees and takes back large blocks (it keeps what it frees, no max-free). */
apr_status_t fl_pool_own_allocator(apr_pool_t **pp, apr_pool_t *parent);

#endif
