/* The decision writer: one thread per child process that takes the decisions the request
 * threads queue and stores them with multi-row inserts through its own mod_dbd connection.
 * It flushes at least every FloopyWriterInterval ms, retries what the database refused, and
 * drains the queue before the child exits (graceful stop and graceful restart included). */
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>
#include <apr_thread_mutex.h>
#include <apr_thread_cond.h>

#include "config/config.h"
#include "store.h"
#include "fl_decision.h"
#include "fl_thread.h"

#define WAKE_AT 256                      /* a queue this long is flushed without waiting */
#define DRAIN_DEADLINE apr_time_from_sec(10)

typedef struct entry_t {
    struct entry_t *next;
    const char *args[FL_DECISION_NCOLS];
    char data[];                         /* the strings args point into */
} entry_t;

struct floopy_writer_t {
    server_rec *s;
    floopy_srv_t *conf;
    apr_thread_mutex_t *mutex;
    apr_thread_cond_t *cond;
    entry_t *head, *tail;
    int count, max, stopping;
    apr_interval_time_t interval;
    apr_thread_t *thread;
    apr_pool_t *pool;                    /* the writer thread's; with an allocator of its own */
    floopy_prices_t *prices;
    apr_time_t prices_due;
};

static void free_list(entry_t *e)
{
    while (e) {
        entry_t *next = e->next;
        free(e);
        e = next;
    }
}

int floopy_writer_has_room(floopy_writer_t *w)
{
    int room;
    apr_thread_mutex_lock(w->mutex);
    room = w->count < w->max && !w->stopping;
    apr_thread_mutex_unlock(w->mutex);
    return room;
}

void floopy_writer_enqueue(floopy_writer_t *w, const char *const *args)
{
    apr_size_t total = 0, lens[FL_DECISION_NCOLS];
    entry_t *e;
    char *d;
    int i;

    for (i = 0; i < FL_DECISION_NCOLS; i++) {
        lens[i] = args[i] ? strlen(args[i]) + 1 : 0;
        total += lens[i];
    }
    e = malloc(sizeof(*e) + total);
    if (!e) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, APR_ENOMEM, w->s,
                     "FL020: out of memory: decision %s not queued", args[0]);
        return;
    }
    e->next = NULL;
    d = e->data;
    for (i = 0; i < FL_DECISION_NCOLS; i++) {
        e->args[i] = args[i] ? memcpy(d, args[i], lens[i]) : NULL;
        d += lens[i];
    }
    apr_thread_mutex_lock(w->mutex);
    if (w->tail) w->tail->next = e; else w->head = e;
    w->tail = e;
    if (++w->count >= WAKE_AT) apr_thread_cond_signal(w->cond);
    apr_thread_mutex_unlock(w->mutex);
}

/* Stores the first n entries of list in as few statements as the batch sizes allow. */
static apr_status_t insert_batches(floopy_writer_t *w, apr_pool_t *p, ap_dbd_t *db,
                                   const entry_t *list, int n)
{
    const char **args = apr_palloc(p, sizeof(const char *) * FL_DECISION_NCOLS
                                          * (apr_size_t)floopy_batch_sizes[0]);
    int b, i;
    for (b = 0; b < FLOOPY_NBATCH; b++) {
        int size = floopy_batch_sizes[b];
        for (; n >= size; n -= size) {
            for (i = 0; i < size; i++, list = list->next) {
                memcpy(args + i * FL_DECISION_NCOLS, list->args, sizeof(list->args));
            }
            if (floopy_db_exec(p, db, floopy_batch_label(b), size * FL_DECISION_NCOLS, args,
                               NULL) != APR_SUCCESS) {
                return APR_EGENERAL;
            }
        }
    }
    return APR_SUCCESS;
}

/* Rolling usage per organisation, route, model and day for the router's cost and latency
 * estimates: summed from the batch, one upsert per arm, in the batch's transaction. */
typedef struct usage_t {
    const char *org, *route, *model, *day;
    apr_int64_t requests, priced, tokens;
    double cost, latency;
} usage_t;

static apr_status_t add_usage(apr_pool_t *p, ap_dbd_t *db, const entry_t *list, int n)
{
    apr_hash_t *arms = apr_hash_make(p);
    apr_hash_index_t *hi;
    for (; list && n > 0; list = list->next, n--) {
        const char *const *a = list->args;
        const char *model, *key;
        usage_t *u;
        if (!a[FL_COL_PROVIDER] || strcmp(a[FL_COL_PINNED], "0")) continue;
        model = apr_pstrcat(p, a[FL_COL_PROVIDER], "/", a[FL_COL_MODEL], NULL);
        key = apr_pstrcat(p, a[FL_COL_ORG], "\x1f", a[FL_COL_ROUTE], "\x1f", model, "\x1f",
                          apr_pstrndup(p, a[FL_COL_CREATED], 10), NULL);
        if (!(u = apr_hash_get(arms, key, APR_HASH_KEY_STRING))) {
            u = apr_pcalloc(p, sizeof(*u));
            u->org = a[FL_COL_ORG];
            u->route = a[FL_COL_ROUTE];
            u->model = model;
            u->day = apr_pstrndup(p, a[FL_COL_CREATED], 10);
            apr_hash_set(arms, key, APR_HASH_KEY_STRING, u);
        }
        u->requests++;
        if (a[FL_COL_COST]) {
            u->priced++;
            u->cost += strtod(a[FL_COL_COST], NULL);
        }
        u->latency += a[FL_COL_LAT_TOTAL] ? strtod(a[FL_COL_LAT_TOTAL], NULL) : 0;
        u->tokens += (a[FL_COL_IN] ? apr_atoi64(a[FL_COL_IN]) : 0)
                     + (a[FL_COL_OUT] ? apr_atoi64(a[FL_COL_OUT]) : 0);
    }
    for (hi = apr_hash_first(p, arms); hi; hi = apr_hash_next(hi)) {
        const usage_t *u = apr_hash_this_val(hi);
        const char *args[9] = { u->org, u->route, u->model, u->day,
            apr_ltoa(p, (long)u->requests), apr_ltoa(p, (long)u->priced),
            apr_psprintf(p, "%.10f", u->cost), apr_psprintf(p, "%.3f", u->latency),
            apr_ltoa(p, (long)u->tokens) };
        if (floopy_db_exec(p, db, FLOOPY_SQL_ARM_USAGE_ADD, 9, args, NULL) != APR_SUCCESS) {
            return APR_EGENERAL;
        }
    }
    return APR_SUCCESS;
}

/* Writes the list in one transaction (one log flush however many rows); on any failure nothing
 * is kept and the whole list comes back to be retried. INSERT IGNORE makes a retry of rows the
 * database did store (the answer lost on the way) harmless: ids are unique. */
typedef struct flush_t {
    floopy_writer_t *w;
    const entry_t *list;
    int n;
} flush_t;

static apr_status_t flush_body(apr_pool_t *p, ap_dbd_t *db, void *baton)
{
    const flush_t *f = baton;
    apr_status_t rv = insert_batches(f->w, p, db, f->list, f->n);
    return rv == APR_SUCCESS ? add_usage(p, db, f->list, f->n) : rv;
}

static entry_t *write_list(floopy_writer_t *w, apr_pool_t *p, entry_t *list, int n)
{
    ap_dbd_t *db = floopy_db_open(w->s, p);
    flush_t f = { w, list, n };
    apr_status_t rv;

    if (!db) return list;
    rv = floopy_db_transaction(p, db, flush_body, &f);
    floopy_db_close(w->s, db);
    if (rv != APR_SUCCESS) return list;
    free_list(list);
    return NULL;
}

static void refresh_prices(floopy_writer_t *w)
{
    apr_pool_t *p;
    ap_dbd_t *db;
    if (apr_time_now() < w->prices_due || apr_pool_create(&p, w->pool) != APR_SUCCESS) return;
    w->prices_due = apr_time_now() + apr_time_from_sec(w->conf->price_refresh_sec);
    if ((db = floopy_db_open(w->s, p))) {
        if (floopy_prices_load(w->prices, w->pool, db) != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, w->s,
                         "FL024: model prices could not be reloaded; keeping the last ones");
        }
        floopy_db_close(w->s, db);
    }
    apr_pool_destroy(p);
}

static int list_length(const entry_t *e)
{
    int n = 0;
    for (; e; e = e->next) n++;
    return n;
}

static void *APR_THREAD_FUNC writer_main(apr_thread_t *t, void *data)
{
    floopy_writer_t *w = data;
    apr_pool_t *p;               /* scratch for one flush; cleared, unlike w->pool, whose
                                  * children (the price snapshots) must live on */
    apr_time_t drain_until = 0;
    int failing = 0;

    apr_pool_create(&p, w->pool);
    apr_thread_mutex_lock(w->mutex);
    for (;;) {
        entry_t *list, *rest;
        int n, stopping;
        if (!w->stopping && (w->count < WAKE_AT || failing)) {
            apr_thread_cond_timedwait(w->cond, w->mutex, w->interval);
        }
        list = w->head;
        n = w->count;
        w->head = w->tail = NULL;
        w->count = 0;
        stopping = w->stopping;
        apr_thread_mutex_unlock(w->mutex);

        rest = list ? write_list(w, p, list, n) : NULL;
        apr_pool_clear(p);
        if (!stopping) refresh_prices(w);

        apr_thread_mutex_lock(w->mutex);
        if (rest) {
            /* what failed goes back in front, so decisions are stored in the order they came */
            entry_t *tail = rest;
            int nrest = list_length(rest);
            while (tail->next) tail = tail->next;
            tail->next = w->head;
            if (!w->head) w->tail = tail;
            w->head = rest;
            w->count += nrest;
            if (!failing) {
                ap_log_error(APLOG_MARK, APLOG_ERR, 0, w->s,
                             "FL021: decision writer: the database refused %d decisions; "
                             "keeping them and retrying", nrest);
            }
        }
        else if (failing) {
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, w->s,
                         "FL022: decision writer: the database takes decisions again");
        }
        failing = rest != NULL;
        if (stopping) {
            if (!drain_until) drain_until = apr_time_now() + DRAIN_DEADLINE;
            if (w->count == 0) break;
            if (apr_time_now() > drain_until) {
                ap_log_error(APLOG_MARK, APLOG_CRIT, 0, w->s,
                             "FL023: decision writer: %d decisions could not be stored before "
                             "the child exited", w->count);
                break;
            }
        }
    }
    apr_thread_mutex_unlock(w->mutex);
    free_list(w->head);
    w->head = w->tail = NULL;
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

/* Runs before the child's pools go (a pre-cleanup), while mod_dbd's connections still exist. */
static apr_status_t writer_stop(void *data)
{
    floopy_writer_t *w = data;
    fl_thread_stop(w->mutex, w->cond, &w->stopping, w->thread);
    return APR_SUCCESS;
}

apr_status_t floopy_writer_start(floopy_writer_t **pw, apr_pool_t *pchild, server_rec *s,
                                 floopy_prices_t *prices)
{
    floopy_writer_t *w = apr_pcalloc(pchild, sizeof(*w));
    apr_status_t rv;

    w->s = s;
    w->conf = floopy_srv(s);
    w->max = w->conf->writer_queue;
    w->prices = prices;
    w->interval = apr_time_from_msec(w->conf->writer_interval_ms);
    if ((rv = fl_pool_own_allocator(&w->pool, pchild)) != APR_SUCCESS) return rv;
    if ((rv = fl_thread_start(&w->mutex, &w->cond, &w->thread, pchild, writer_main, w))) return rv;
    apr_pool_pre_cleanup_register(pchild, w, writer_stop);
    *pw = w;
    return APR_SUCCESS;
}
