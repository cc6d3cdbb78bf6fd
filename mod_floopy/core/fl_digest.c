#include <openssl/evp.h>

#include "fl_digest.h"

struct fl_digest_t {
    EVP_MD_CTX *ctx;
};

static apr_status_t digest_cleanup(void *v)
{
    fl_digest_t *d = v;
    EVP_MD_CTX_free(d->ctx);
    d->ctx = NULL;
    return APR_SUCCESS;
}

apr_status_t fl_digest_create(fl_digest_t **pd, apr_pool_t *p)
{
    fl_digest_t *d = apr_pcalloc(p, sizeof(*d));
    if (!(d->ctx = EVP_MD_CTX_new()) || EVP_DigestInit_ex(d->ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(d->ctx);
        return APR_EGENERAL;
    }
    apr_pool_cleanup_register(p, d, digest_cleanup, apr_pool_cleanup_null);
    *pd = d;
    return APR_SUCCESS;
}

void fl_digest_update(fl_digest_t *d, const void *data, apr_size_t len)
{
    if (len) EVP_DigestUpdate(d->ctx, data, len);
}

const char *fl_digest_hex(fl_digest_t *d, apr_pool_t *p)
{
    static const char HEX[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0, i;
    char *out;
    EVP_DigestFinal_ex(d->ctx, md, &n);
    out = apr_palloc(p, 2 * n + 1);
    for (i = 0; i < n; i++) {
        out[2 * i] = HEX[md[i] >> 4];
        out[2 * i + 1] = HEX[md[i] & 15];
    }
    out[2 * n] = '\0';
    return out;
}
