#include <stdlib.h>
#include <string.h>

#include "fl_buf.h"

static apr_status_t buf_cleanup(void *v)
{
    fl_buf_t *b = v;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    return APR_SUCCESS;
}

fl_buf_t *fl_buf_create(apr_pool_t *p, apr_size_t max)
{
    fl_buf_t *b = apr_pcalloc(p, sizeof(*b));
    b->max = max;
    apr_pool_cleanup_register(p, b, buf_cleanup, apr_pool_cleanup_null);
    return b;
}

apr_status_t fl_buf_append(fl_buf_t *b, const char *s, apr_size_t n)
{
    if (b->len + n > b->max) {
        return APR_ENOSPC;
    }
    if (b->len + n + 1 > b->cap) {
        apr_size_t cap = b->cap ? b->cap : 256;
        char *nd;
        while (cap < b->len + n + 1) cap *= 2;
        if (cap > b->max + 1) cap = b->max + 1;
        if (!(nd = realloc(b->data, cap))) {
            return APR_ENOMEM;
        }
        b->data = nd;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return APR_SUCCESS;
}

void fl_buf_reset(fl_buf_t *b)
{
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}
