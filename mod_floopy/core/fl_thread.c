/* Stopping a background thread is written once (see fl_thread.h). */
#include "fl_thread.h"

apr_status_t fl_thread_start(apr_thread_mutex_t **pmutex, apr_thread_cond_t **pcond,
                             apr_thread_t **pthread, apr_pool_t *p,
                             apr_thread_start_t fn, void *data)
{
    apr_status_t rv;
    if ((rv = apr_thread_mutex_create(pmutex, APR_THREAD_MUTEX_DEFAULT, p)) != APR_SUCCESS
        || (rv = apr_thread_cond_create(pcond, p)) != APR_SUCCESS) {
        return rv;
    }
    return apr_thread_create(pthread, NULL, fn, data, p);
}

void fl_thread_stop(apr_thread_mutex_t *mutex, apr_thread_cond_t *cond, int *stopping,
                    apr_thread_t *thread)
{
    apr_status_t st;
    apr_thread_mutex_lock(mutex);
    *stopping = 1;
    apr_thread_cond_broadcast(cond);
    apr_thread_mutex_unlock(mutex);
    apr_thread_join(&st, thread);
}

apr_status_t fl_pool_own_allocator(apr_pool_t **pp, apr_pool_t *parent)
{
    apr_allocator_t *alloc;
    apr_status_t rv = apr_allocator_create(&alloc);
    if (rv != APR_SUCCESS) return rv;
    if ((rv = apr_pool_create_ex(pp, parent, NULL, alloc)) != APR_SUCCESS) {
        apr_allocator_destroy(alloc);
        return rv;
    }
    apr_allocator_owner_set(alloc, *pp);
    return APR_SUCCESS;
}
