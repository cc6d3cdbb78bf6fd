/* GET /export/decisions: the organisation's decisions as JSON Lines, oldest first, streamed in
 * batches through a chunked response in constant memory. The FLOOPY_EXPORT output filter hashes
 * every byte that passes and, at the end, appends one trailer line:
 *   {"object":"floopy.export.trailer","sha256":"<hex>","rows":N,"truncated":bool,"next_after":...}
 * where sha256 is the SHA-256 of every byte before the trailer line, so that
 * `head -n -1 export.jsonl | sha256sum` prints it. One export per organisation at a time across
 * every child and thread: a slot in shared memory, freed when the request ends. */
#include <signal.h>
#include <unistd.h>
#include <apr_shm.h>
#include <apr_thread_cond.h>
#include <apr_thread_proc.h>
#include <apr_atomic.h>
#include <apr_strings.h>
#include <http_protocol.h>
#include <http_request.h>
#include <util_filter.h>

#include "mod_floopy.h"
#include "floopy_store.h"
#include "fl_decision.h"
#include "fl_digest.h"
#include "fl_json.h"
#include "fl_util.h"

#define NSLOTS 64
#define SETTLE apr_time_from_sec(2)
#define FILTER "FLOOPY_EXPORT"

struct floopy_export_slot_t {
    volatile apr_uint32_t org;   /* hash of the exporting organisation; 0 = free */
    volatile apr_uint32_t pid;   /* its process, to free slots of a child that died */
};

typedef struct export_ctx_t {
    fl_digest_t *digest;
    apr_int64_t rows;
    int truncated;
    const char *reason;          /* why it was cut: "max_rows", "store_error"; NULL when whole */
    const char *next_after;
} export_ctx_t;

apr_status_t floopy_exports_create(apr_pool_t *pconf, server_rec *s)
{
    apr_shm_t *shm;
    server_rec *v;
    apr_status_t rv = apr_shm_create(&shm, sizeof(floopy_export_slot_t) * NSLOTS, NULL, pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "FL009: no shared memory for export slots");
        return rv;
    }
    memset(apr_shm_baseaddr_get(shm), 0, sizeof(floopy_export_slot_t) * NSLOTS);
    for (v = s; v; v = v->next) floopy_srv(v)->export_slots = apr_shm_baseaddr_get(shm);
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

/* --- the digest filter --------------------------------------------------------------------- */

static apr_status_t export_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    export_ctx_t *ctx = f->ctx;
    apr_bucket *b;
    for (b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb); b = APR_BUCKET_NEXT(b)) {
        if (APR_BUCKET_IS_EOS(b)) {
            json_t *t = json_object();
            char *line;
            json_object_set_new(t, "object", json_string("floopy.export.trailer"));
            json_object_set_new(t, "sha256", json_string(fl_digest_hex(ctx->digest, f->r->pool)));
            json_object_set_new(t, "rows", json_integer(ctx->rows));
            json_object_set_new(t, "truncated", json_boolean(ctx->truncated));
            json_object_set_new(t, "reason", ctx->reason ? json_string(ctx->reason) : json_null());
            json_object_set_new(t, "next_after", ctx->next_after ? json_string(ctx->next_after)
                                                                 : json_null());
            line = apr_pstrcat(f->r->pool, fl_json_dump(f->r->pool, t, 1), "\n", NULL);
            APR_BUCKET_INSERT_BEFORE(b, apr_bucket_pool_create(line, strlen(line), f->r->pool,
                                                               f->c->bucket_alloc));
            ap_remove_output_filter(f);
            break;
        }
        if (!APR_BUCKET_IS_METADATA(b)) {
            const char *data;
            apr_size_t len;
            apr_status_t rv = apr_bucket_read(b, &data, &len, APR_BLOCK_READ);
            if (rv != APR_SUCCESS) return rv;
            fl_digest_update(ctx->digest, data, len);
        }
    }
    return ap_pass_brigade(f->next, bb);
}

void floopy_export_register(void)
{
    ap_register_output_filter(FILTER, export_filter, NULL, AP_FTYPE_RESOURCE);
}

/* --- the handler ----------------------------------------------------------------------------- */

static fl_error_t *export_params(request_rec *r, const char **from, const char **to,
                                 char *after)
{
    static const char *const known[] = { "from", "to", "after", NULL };
    apr_table_t *args;
    const char *v;
    fl_error_t *e;

    if ((e = floopy_query(r, known, &args))
        || (e = floopy_time_window(r, args, SETTLE, from, to))) {
        return e;
    }
    strcpy(after, "00000000-0000-0000-0000-000000000000");
    if ((v = apr_table_get(args, "after"))) {
        if (!fl_uuid_valid(v)) {
            return fl_error_invalid(r->pool, "invalid_value", "after", "'after' must be a decision id (a trailer's next_after)");
        }
        apr_cpystrn(after, v, FL_UUID_LEN + 1);
    }
    return NULL;
}

/* The response body is rendered into one buffer that is handed to the output filters as a
 * transient bucket followed by a flush, then reused: the flush makes the core send it before
 * ap_pass_brigade returns, so nothing is set aside and the export allocates nothing per line.
 * (Heap buckets from apr_brigade_write came from the connection's allocator, which returned them
 * to the kernel once sent: an munmap, and its TLB shootdown, every 8 KB.) */
#define OUTBUF (256 * 1024)

typedef struct out_t {
    request_rec *r;
    apr_bucket_brigade *bb;
    char *buf;
    apr_size_t len;
    apr_status_t rv;             /* the first failure to pass; nothing is written after it */
} out_t;

static apr_status_t out_flush(out_t *o)
{
    apr_bucket_alloc_t *ba = o->r->connection->bucket_alloc;
    if (o->rv != APR_SUCCESS) goto done;
    if (o->len) APR_BRIGADE_INSERT_TAIL(o->bb, apr_bucket_transient_create(o->buf, o->len, ba));
    APR_BRIGADE_INSERT_TAIL(o->bb, apr_bucket_flush_create(ba));
    o->rv = ap_pass_brigade(o->r->output_filters, o->bb);
    if (o->rv == APR_SUCCESS && o->r->connection->aborted) o->rv = APR_ECONNABORTED;
    apr_brigade_cleanup(o->bb);
    o->len = 0;
done:
    return o->rv;
}

/* A json_dump_callback_t as well: Jansson writes a line straight into the buffer. */
static int out_write(const char *data, size_t n, void *v)
{
    out_t *o = v;
    while (n && o->rv == APR_SUCCESS) {
        apr_size_t k = OUTBUF - o->len < n ? OUTBUF - o->len : n;
        memcpy(o->buf + o->len, data, k);
        o->len += k;
        data += k;
        n -= k;
        if (o->len == OUTBUF) out_flush(o);
    }
    return o->rv == APR_SUCCESS ? 0 : -1;
}

typedef struct batch_t {
    export_ctx_t *ctx;
    out_t *out;
    apr_pool_t *p;               /* what a row needs, cleared after it */
    fl_row_writer_t *writer;
    char *after;                 /* the last id written: where the next batch starts */
    long max;
    int stop;
} batch_t;

static int export_row(void *baton, const char *const *row, int ncols)
{
    batch_t *b = baton;
    if (b->ctx->rows >= b->max) {
        b->ctx->truncated = 1;
        b->ctx->reason = "max_rows";
        b->stop = 1;
        return 1;
    }
    if (fl_row_writer_write(b->writer, b->p, row, out_write, b->out)
        || out_write("\n", 1, b->out)) {
        b->stop = 1;                                /* the client went away */
        return 1;
    }
    apr_cpystrn(b->after, row[0], FL_UUID_LEN + 1);
    b->ctx->rows++;
    return 0;
}

/* --- the reading thread ------------------------------------------------------------------- */

/* Batches are read by a thread of their own while the request's thread writes the previous ones
 * out: MariaDB's work and the driver's stay off the writing thread, which renders, hashes and
 * sends (on one thread they added up). A ring of NBATCH batches bounds the memory. */
#define NBATCH 3

typedef struct rbatch_t {
    apr_pool_t *p;               /* the rows; cleared by the reader when it refills the slot */
    apr_array_header_t *rows;
    int failed, last;
} rbatch_t;

typedef struct reader_t {
    ap_dbd_t *db;
    server_rec *s;
    const char *args[4];
    char after[FL_UUID_LEN + 1]; /* the reader's cursor */
    apr_pool_t *scratch;         /* the statements' work, the reader's alone */
    apr_thread_mutex_t *mu;
    apr_thread_cond_t *cond;
    rbatch_t ring[NBATCH];
    int head, count;             /* the oldest filled batch, and how many are filled */
    int stop, done;              /* the writer wants no more; the reader has finished */
    int joined;
    apr_thread_t *thread;
} reader_t;

static void reader_post(reader_t *rd, int done)
{
    apr_thread_mutex_lock(rd->mu);
    if (done) rd->done = 1;
    else rd->count++;
    apr_thread_cond_broadcast(rd->cond);
    apr_thread_mutex_unlock(rd->mu);
}

static void *APR_THREAD_FUNC reader_main(apr_thread_t *t, void *data)
{
    reader_t *rd = data;
    rbatch_t *b;
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
static rbatch_t *reader_next(reader_t *rd)
{
    rbatch_t *b = NULL;
    apr_thread_mutex_lock(rd->mu);
    while (rd->count == 0 && !rd->done) apr_thread_cond_wait(rd->cond, rd->mu);
    if (rd->count) b = &rd->ring[rd->head];
    apr_thread_mutex_unlock(rd->mu);
    return b;
}

static void reader_release(reader_t *rd)
{
    apr_thread_mutex_lock(rd->mu);
    rd->head = (rd->head + 1) % NBATCH;
    rd->count--;
    apr_thread_cond_broadcast(rd->cond);
    apr_thread_mutex_unlock(rd->mu);
}

static apr_status_t reader_stop(void *data)
{
    reader_t *rd = data;
    if (rd->joined) return APR_SUCCESS;
    rd->joined = 1;
    floopy_thread_stop(rd->mu, rd->cond, &rd->stop, rd->thread);
    return APR_SUCCESS;
}

/* A pool of its own allocator that keeps what it frees (no max-free): the MySQL driver takes
 * megabytes of result buffers on every execution, and handing them back to the kernel between
 * batches (the MPM's MaxMemFree) cost page faults on every one of them. */
static apr_status_t own_pool(apr_pool_t **pp, apr_pool_t *parent)
{
    apr_allocator_t *alloc;
    apr_status_t rv = apr_allocator_create(&alloc);
    if (rv == APR_SUCCESS && (rv = apr_pool_create_ex(pp, parent, NULL, alloc)) == APR_SUCCESS) {
        apr_allocator_owner_set(alloc, *pp);
    }
    return rv;
}

/* Starts the reader; its pools and thread are made here, on the request's thread, and it is
 * joined before the request's pool goes (the cleanup), whatever ends the export. */
static apr_status_t reader_start(reader_t **prd, request_rec *r, ap_dbd_t *db,
                                 const char *const *args)
{
    reader_t *rd = apr_pcalloc(r->pool, sizeof(*rd));
    apr_pool_t *tp;
    apr_status_t rv;
    int i;
    rd->db = db;
    rd->s = r->server;
    apr_cpystrn(rd->after, args[1], sizeof(rd->after));
    rd->args[0] = args[0]; rd->args[1] = rd->after; rd->args[2] = args[2]; rd->args[3] = args[3];
    if ((rv = own_pool(&rd->scratch, r->pool)) || (rv = own_pool(&tp, r->pool))
        || (rv = apr_thread_mutex_create(&rd->mu, APR_THREAD_MUTEX_DEFAULT, r->pool))
        || (rv = apr_thread_cond_create(&rd->cond, r->pool))) {
        return rv;
    }
    for (i = 0; i < NBATCH; i++) {
        if ((rv = own_pool(&rd->ring[i].p, r->pool))) return rv;
    }
    if ((rv = apr_thread_create(&rd->thread, NULL, reader_main, rd, tp))) return rv;
    apr_pool_pre_cleanup_register(r->pool, rd, reader_stop);
    *prd = rd;
    return APR_SUCCESS;
}

/* --- writing -------------------------------------------------------------------------------- */

/* Writes one batch; 1 when the export should go on. A store that fails mid-way ends the export
 * with a trailer that says so, and where to resume, rather than one that claims it complete. */
static int export_batch(request_rec *r, const rbatch_t *rb, batch_t *b)
{
    int i;
    for (i = 0; !rb->failed && !b->stop && i < rb->rows->nelts; i++) {
        export_row(b, APR_ARRAY_IDX(rb->rows, i, const char **), FL_DECISION_NCOLS);
        apr_pool_clear(b->p);
    }
    if (rb->failed) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "FL066: export cut after %" APR_INT64_T_FMT
                      " rows: the decision store failed", b->ctx->rows);
        b->ctx->truncated = 1;
        b->ctx->reason = "store_error";
        b->stop = 1;
    }
    if (b->ctx->truncated) b->ctx->next_after = apr_pstrdup(r->pool, b->after);
    return !b->stop && !rb->last;
}

int floopy_handle_export(request_rec *r, const floopy_principal_t *who)
{
    floopy_srv_t *c = floopy_srv(r->server);
    export_ctx_t *ctx = apr_pcalloc(r->pool, sizeof(*ctx));
    slot_ref_t *ref = apr_pcalloc(r->pool, sizeof(*ref));
    char after[FL_UUID_LEN + 1];
    const char *args[4], *from = NULL, *to = NULL;
    out_t out;
    batch_t batch;
    reader_t *rd;
    rbatch_t *rb;
    ap_dbd_t *db;
    fl_error_t *e;
    int slot;

    if (r->method_number != M_GET) {
        return floopy_fail(r, 405, "invalid_request_error", "method_not_allowed", NULL, "use GET");
    }
    if ((e = export_params(r, &from, &to, after))) return floopy_send_error(r, e);
    if ((slot = slot_take(c->export_slots, who->org_id)) < 0) {
        apr_table_setn(r->err_headers_out, "Retry-After", "5");
        return floopy_fail(r, 429, "rate_limit_error", "export_in_progress", NULL,
                           "an export of this organisation is already running; one at a time");
    }
    ref->slot = &c->export_slots[slot];
    apr_pool_cleanup_register(r->pool, ref, slot_release, apr_pool_cleanup_null);
    if (!(db = floopy_db_acquire(r)) || fl_digest_create(&ctx->digest, r->pool)) {
        return floopy_fail(r, 503, "service_unavailable", "database_unavailable", NULL,
                           "the decision store cannot be reached; try again shortly");
    }
    ap_add_output_filter(FILTER, ctx, r, r->connection);
    r->status = 200;
    ap_set_content_type(r, "application/x-ndjson");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    out.r = r;
    out.bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    out.buf = apr_palloc(r->pool, OUTBUF);
    out.len = 0;
    out.rv = APR_SUCCESS;
    args[0] = who->org_id; args[1] = after; args[2] = from; args[3] = to;
    if (own_pool(&batch.p, r->pool) != APR_SUCCESS || reader_start(&rd, r, db, args) != APR_SUCCESS) {
        return floopy_fail(r, 500, "api_error", "internal_error", NULL,
                           "the export could not start");
    }
    batch.ctx = ctx;
    batch.out = &out;
    batch.after = after;
    batch.max = c->export_max_rows;
    batch.writer = fl_row_writer_create(r->pool);
    batch.stop = 0;
    while ((rb = reader_next(rd))) {
        int more = export_batch(r, rb, &batch);
        reader_release(rd);
        if (!more) break;
    }
    reader_stop(rd);                                /* its cleanup then has nothing to do */
    out_flush(&out);
    return OK;
}
