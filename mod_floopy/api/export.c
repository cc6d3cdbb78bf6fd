/* GET /export/decisions: the organisation's decisions as JSON Lines, oldest first, streamed in
 * batches through a chunked response in constant memory. The FLOOPY_EXPORT output filter hashes
 * every byte that passes and, at the end, appends one trailer line:
 *   {"object":"floopy.export.trailer","sha256":"<hex>","rows":N,"truncated":bool,"next_after":...}
 * where sha256 is the SHA-256 of every byte before the trailer line, so that
 * `head -n -1 export.jsonl | sha256sum` prints it. One export per organisation at a time across
 * every child and thread: a slot in shared memory, freed when the request ends. */
#include <apr_strings.h>
#include <http_protocol.h>
#include <http_request.h>
#include <util_filter.h>

#include "config/config.h"
#include "http/http.h"
#include "store/store.h"
#include "shm/shm.h"
#include "api.h"
#include "fl_decision.h"
#include "fl_digest.h"
#include "fl_thread.h"
#include "fl_util.h"

#define SETTLE apr_time_from_sec(2)

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
    floopy_export_trailer_t *ctx;
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

/* --- writing -------------------------------------------------------------------------------- */

/* Writes one batch; 1 when the export should go on. A store that fails mid-way ends the export
 * with a trailer that says so, and where to resume, rather than one that claims it complete. */
static int export_batch(request_rec *r, const floopy_export_batch_t *rb, batch_t *b)
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

int floopy_handle_export(request_rec *r, const floopy_principal_t *who, const char *const *arg)
{
    floopy_export_trailer_t *ctx = apr_pcalloc(r->pool, sizeof(*ctx));
    char after[FL_UUID_LEN + 1];
    const char *args[4], *from = NULL, *to = NULL;
    out_t out;
    batch_t batch;
    floopy_export_reader_t *rd;
    floopy_export_batch_t *rb;
    ap_dbd_t *db;
    fl_error_t *e;

    if ((e = export_params(r, &from, &to, after))) return floopy_send_error(r, e);
    if (floopy_export_slot_take(r->server, r->pool, who->org_id) != APR_SUCCESS) {
        apr_table_setn(r->err_headers_out, "Retry-After", "5");
        return floopy_fail(r, 429, "rate_limit_error", "export_in_progress", NULL,
                           "an export of this organisation is already running; one at a time");
    }
    if (!(db = floopy_db_acquire(r)) || fl_digest_create(&ctx->digest, r->pool)) {
        return floopy_fail_as(r, FLOOPY_E_UNAVAILABLE, NULL, NULL);
    }
    floopy_export_filter_add(r, ctx);
    r->status = 200;
    ap_set_content_type(r, "application/x-ndjson");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    out.r = r;
    out.bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    out.buf = apr_palloc(r->pool, OUTBUF);
    out.len = 0;
    out.rv = APR_SUCCESS;
    args[0] = who->org_id; args[1] = after; args[2] = from; args[3] = to;
    if (fl_pool_own_allocator(&batch.p, r->pool) != APR_SUCCESS
        || floopy_export_reader_start(&rd, r, db, args) != APR_SUCCESS) {
        return floopy_fail_as(r, FLOOPY_E_INTERNAL, NULL, "the export could not start");
    }
    batch.ctx = ctx;
    batch.out = &out;
    batch.after = after;
    batch.max = floopy_srv(r->server)->export_max_rows;
    batch.writer = fl_row_writer_create(r->pool);
    batch.stop = 0;
    while ((rb = floopy_export_reader_next(rd))) {
        int more = export_batch(r, rb, &batch);
        floopy_export_reader_release(rd);
        if (!more) break;
    }
    floopy_export_reader_stop(rd);           /* its cleanup then has nothing to do */
    out_flush(&out);
    return OK;
}
