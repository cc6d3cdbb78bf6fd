/* An export's reading thread: batches of FLOOPY_EXPORT_BATCH decisions are read by a thread of
 * their own while the request's thread writes the previous ones out, so MariaDB's work and the
 * driver's stay off the writing thread, which renders, hashes and sends (on one thread they
 * added up). A ring of NBATCH batches bounds the memory. */
#include <apr_strings.h>
#include <apr_thread_cond.h>
#include <apr_thread_proc.h>

#include "store.h"
#include "fl_thread.h"
#include "fl_util.h"

/* Batches are read by a thread of their own while the request's thread writes the previous ones
 * out: MariaDB's work and the driver's stay off the writing thread, which renders, hashes and
 * sends (on one thread they added up). A ring of NBATCH batches bounds the memory. */
#define NBATCH 3

struct floopy_export_reader_t {
    ap_dbd_t *db;
    server_rec *s;
    const char *args[4];
    char after[FL_UUID_LEN + 1]; /* the reader's cursor */
    apr_pool_t *scratch;         /* the statements' work, the reader's alone */
    apr_thread_mutex_t *mu;
    apr_thread_cond_t *cond;
    floopy_export_batch_t ring[NBATCH];
    int head, count;             /* the oldest filled batch, and how many are filled */
    int stop, done;              /* the writer wants no more; the reader has finished */
    int joined;
    apr_thread_t *thread;
};

static void reader_post(floopy_export_reader_t *rd, int done)
{
    apr_thread_mutex_lock(rd->mu);
    if (done) rd->done = 1;
    else rd->count++;
    apr_thread_cond_broadcast(rd->cond);
    apr_thread_mutex_unlock(rd->mu);
}

static void *APR_THREAD_FUNC reader_main(apr_thread_t *t, void *data)
{
    floopy_export_reader_t *rd = data;
    floopy_export_batch_t *b;
    do {
        apr_thread_mutex_lock(rd->mu);
        while (rd->count == NBATCH && !rd->stop) apr_thread_cond_wait(rd->cond, rd->mu);
        b = rd->stop ? NULL : &rd->ring[(rd->head + rd->count) % NBATCH];
        apr_thread_mutex_unlock(rd->mu);
        if (!b) break;
        apr_pool_clear(b->p);
        b->failed = floopy_db_select_into(rd->scratch, b->p, rd->db, FLOOPY_SQL_DECISION_EXPORT,
                                          4, rd->args, &b->rows, NULL) != APR_SUCCESS;
        apr_pool_clear(rd->scratch);
        b->last = b->failed || b->rows->nelts < FLOOPY_EXPORT_BATCH;
        if (!b->failed && b->rows->nelts) {
            const char **row = APR_ARRAY_IDX(b->rows, b->rows->nelts - 1, const char **);
            apr_cpystrn(rd->after, row[0], sizeof(rd->after));
        }
        reader_post(rd, 0);
    } while (!b->last);
    reader_post(rd, 1);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

/* The next filled batch, NULL when the reader has finished. */
floopy_export_batch_t *floopy_export_reader_next(floopy_export_reader_t *rd)
{
    floopy_export_batch_t *b = NULL;
    apr_thread_mutex_lock(rd->mu);
    while (rd->count == 0 && !rd->done) apr_thread_cond_wait(rd->cond, rd->mu);
    if (rd->count) b = &rd->ring[rd->head];
    apr_thread_mutex_unlock(rd->mu);
    return b;
}

void floopy_export_reader_release(floopy_export_reader_t *rd)
{
    apr_thread_mutex_lock(rd->mu);
    rd->head = (rd->head + 1) % NBATCH;
    rd->count--;
    apr_thread_cond_broadcast(rd->cond);
    apr_thread_mutex_unlock(rd->mu);
}

void floopy_export_reader_stop(floopy_export_reader_t *rd)
{
    if (rd->joined) return;
    rd->joined = 1;
    fl_thread_stop(rd->mu, rd->cond, &rd->stop, rd->thread);
}

static apr_status_t reader_cleanup(void *data)
{
    floopy_export_reader_stop(data);
    return APR_SUCCESS;
}

/* Starts the reader; its pools and thread are made here, on the request's thread, and it is
 * joined before the request's pool goes (the cleanup), whatever ends the export. */
apr_status_t floopy_export_reader_start(floopy_export_reader_t **prd, request_rec *r,
                                       ap_dbd_t *db, const char *const *args)
{
    floopy_export_reader_t *rd = apr_pcalloc(r->pool, sizeof(*rd));
    apr_pool_t *tp;
    apr_status_t rv;
    int i;
    rd->db = db;
    rd->s = r->server;
    apr_cpystrn(rd->after, args[1], sizeof(rd->after));
    rd->args[0] = args[0]; rd->args[1] = rd->after; rd->args[2] = args[2]; rd->args[3] = args[3];
    if ((rv = fl_pool_own_allocator(&rd->scratch, r->pool))
        || (rv = fl_pool_own_allocator(&tp, r->pool))) {
        return rv;
    }
    for (i = 0; i < NBATCH; i++) {
        if ((rv = fl_pool_own_allocator(&rd->ring[i].p, r->pool))) return rv;
    }
    if ((rv = fl_thread_start(&rd->mu, &rd->cond, &rd->thread, tp, reader_main, rd))) return rv;
    apr_pool_pre_cleanup_register(r->pool, rd, reader_cleanup);
    *prd = rd;
    return APR_SUCCESS;
}

