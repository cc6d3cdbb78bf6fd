/* The child's own threads (decision writer, router snapshot, judge, an export's reader) share a
 * shape: a mutex, a condition, a stop flag under that mutex, a join. Stopping is written once. */
#include <apr_thread_cond.h>
#include <apr_thread_proc.h>

#include "mod_floopy.h"

void floopy_thread_stop(apr_thread_mutex_t *mutex, apr_thread_cond_t *cond, int *stopping,
                        apr_thread_t *thread)
{
    apr_status_t st;
    apr_thread_mutex_lock(mutex);
    *stopping = 1;
    apr_thread_cond_broadcast(cond);
    apr_thread_mutex_unlock(mutex);
    apr_thread_join(&st, thread);
}
