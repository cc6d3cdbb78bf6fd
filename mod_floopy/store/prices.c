/* Model prices the operator keeps in MariaDB (table model_prices, seeded by sql/002). Each child
 * holds a snapshot that its decision writer reloads every FloopyPriceRefresh seconds, so an UPDATE
 * reaches every decision's cost within that time, with no database work on the request path.
 * A model without a row keeps its FloopyModel prices. */
#include <apr_strings.h>
#include <apr_thread_mutex.h>

#include "store.h"

struct floopy_prices_t {
    apr_thread_mutex_t *mutex;
    apr_pool_t *pool;            /* the current snapshot's; made and destroyed by the writer */
    apr_hash_t *table;           /* "type/model" -> fl_price_t */
};

apr_status_t floopy_prices_create(floopy_prices_t **pp, apr_pool_t *pchild)
{
    floopy_prices_t *pr = apr_pcalloc(pchild, sizeof(*pr));
    apr_status_t rv = apr_thread_mutex_create(&pr->mutex, APR_THREAD_MUTEX_DEFAULT, pchild);
    if (rv == APR_SUCCESS) *pp = pr;
    return rv;
}

static const char *price_key(apr_pool_t *p, const char *type, const char *model)
{
    return apr_pstrcat(p, type, "/", model, NULL);
}

void floopy_price_of(floopy_prices_t *pr, apr_pool_t *p, const fl_model_t *m, fl_price_t *out)
{
    const fl_price_t *row = NULL;
    memset(out, 0, sizeof(*out));
    if (!m) return;
    if (pr) {
        const char *key = price_key(p, m->provider->type, m->name);
        apr_thread_mutex_lock(pr->mutex);
        if (pr->table && (row = apr_hash_get(pr->table, key, APR_HASH_KEY_STRING))) *out = *row;
        apr_thread_mutex_unlock(pr->mutex);
        if (row) return;
    }
    if (m->priced) {
        out->known = 1;
        out->input = m->input_per_m;
        out->output = m->output_per_m;
        out->cached_input = m->cached_input_per_m;
    }
}

apr_status_t floopy_prices_load(floopy_prices_t *pr, apr_pool_t *parent, ap_dbd_t *db)
{
    apr_pool_t *np, *old;
    apr_array_header_t *rows;
    apr_hash_t *table;
    apr_status_t rv;
    int i;

    if ((rv = apr_pool_create(&np, parent)) != APR_SUCCESS) return rv;
    if ((rv = floopy_db_select(np, db, FLOOPY_SQL_PRICES, 0, NULL, &rows, NULL))) {
        apr_pool_destroy(np);
        return rv;
    }
    table = apr_hash_make(np);
    for (i = 0; i < rows->nelts; i++) {
        const char **row = APR_ARRAY_IDX(rows, i, const char **);
        fl_price_t *price = apr_pcalloc(np, sizeof(*price));
        if (!row[0] || !row[1] || !row[2] || !row[3]) continue;
        price->known = 1;
        price->input = strtod(row[2], NULL);
        price->output = strtod(row[3], NULL);
        price->cached_input = row[4] ? strtod(row[4], NULL) : price->input;
        apr_hash_set(table, price_key(np, row[0], row[1]), APR_HASH_KEY_STRING, price);
    }
    apr_thread_mutex_lock(pr->mutex);
    old = pr->pool;
    pr->pool = np;
    pr->table = table;
    apr_thread_mutex_unlock(pr->mutex);
    /* readers copy prices out under the mutex, so nobody holds the old snapshot any more */
    if (old) apr_pool_destroy(old);
    return APR_SUCCESS;
}
