/* The child's background worker: one thread that runs jobs from a bounded queue, so model calls
 * and database writes that no client waits for stay off the request threads. A full queue
 * drops the new job (its pool freed), never blocks the request that offered it. */
#include <apr_strings.h>
#include <apr_thread_proc.h>
#include <apr_thread_cond.h>

#include "config/config.h"
#include "jobs.h"
#include "fl_thread.h"

typedef struct job_t {
    struct job_t *next;
    apr_pool_t *pool;            /* unmanaged: made by the request thread, freed by the worker */
    floopy_job_fn *run;
    void *baton;
} job_t;


struct floopy_jobs_t {
    server_rec *s;
    long max;                    /* FloopyJudge queue=: jobs waiting before more are skipped */
    apr_thread_mutex_t *mutex;
    apr_thread_cond_t *cond;
    job_t *head, *tail;
    long count;
    int stopping;
    apr_thread_t *thread;
};


apr_status_t floopy_jobs_submit(floopy_jobs_t *J, apr_pool_t *pool, floopy_job_fn *run,
                                 void *baton)
{
    job_t *job = apr_pcalloc(pool, sizeof(*job));
    job->pool = pool;
    job->run = run;
    job->baton = baton;
    apr_thread_mutex_lock(J->mutex);
    if (J->count >= J->max || J->stopping) {
        apr_thread_mutex_unlock(J->mutex);
        apr_pool_destroy(pool);
        return APR_EAGAIN;
    }
    if (J->tail) J->tail->next = job; else J->head = job;
    J->tail = job;
    J->count++;
    apr_thread_cond_signal(J->cond);
    apr_thread_mutex_unlock(J->mutex);
    return APR_SUCCESS;
}


static void *APR_THREAD_FUNC jobs_main(apr_thread_t *t, void *data)
{
    floopy_jobs_t *J = data;
    apr_thread_mutex_lock(J->mutex);
    for (;;) {
        job_t *job;
        while (!J->head && !J->stopping) apr_thread_cond_wait(J->cond, J->mutex);
        if (J->stopping) break;
        job = J->head;
        J->head = job->next;
        if (!J->head) J->tail = NULL;
        J->count--;
        apr_thread_mutex_unlock(J->mutex);
        job->run(J->s, job->pool, job->baton);
        apr_pool_destroy(job->pool);
        apr_thread_mutex_lock(J->mutex);
    }
    /* jobs still waiting are samples (judgements, shadows), not accepted data: they go with
     * the child */
    while (J->head) {
        job_t *job = J->head;
        J->head = job->next;
        apr_pool_destroy(job->pool);
    }
    J->tail = NULL;
    apr_thread_mutex_unlock(J->mutex);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static apr_status_t jobs_stop(void *data)
{
    floopy_jobs_t *J = data;
    fl_thread_stop(J->mutex, J->cond, &J->stopping, J->thread);
    return APR_SUCCESS;
}

apr_status_t floopy_jobs_start(floopy_jobs_t **pJ, apr_pool_t *pchild, server_rec *s)
{
    floopy_jobs_t *J;
    apr_status_t rv;
    *pJ = NULL;
    J = apr_pcalloc(pchild, sizeof(*J));
    J->s = s;
    J->max = floopy_srv(s)->judge_queue;
    if ((rv = fl_thread_start(&J->mutex, &J->cond, &J->thread, pchild, jobs_main, J))) return rv;
    apr_pool_pre_cleanup_register(pchild, J, jobs_stop);
    *pJ = J;
    return APR_SUCCESS;
}
