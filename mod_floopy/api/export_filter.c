/* The FLOOPY_EXPORT output filter: hashes every byte of an export that passes and, at its end,
 * appends the trailer line whose sha256 is the SHA-256 of every byte before it. */
#include <apr_strings.h>
#include <util_filter.h>

#include "api.h"
#include "fl_json.h"

#define FILTER "FLOOPY_EXPORT"

static apr_status_t export_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    floopy_export_trailer_t *ctx = f->ctx;
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

void floopy_export_filter_add(request_rec *r, floopy_export_trailer_t *t)
{
    ap_add_output_filter(FILTER, t, r, r->connection);
}

