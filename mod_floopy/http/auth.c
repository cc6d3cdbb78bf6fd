/* API keys: Bearer secret -> SHA-256 -> organisation, role and plan. Each child keeps what it
 * looked up for FloopyKeyCacheTTL seconds, so the hot path makes no database round trip and a
 * revoked key stops working within that many seconds. */
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include <apr_hash.h>
#include <apr_thread_mutex.h>

#include "store/store.h"
#include "http.h"
#include "fl_util.h"

#define KEYCACHE_MAX 10000          /* entries before the cache starts afresh */
#define NEGATIVE_TTL apr_time_from_sec(1)
/* While one thread refreshes an expired entry, the others keep using it for at most this long
 * instead of all asking the database at once (and all waiting for new connections). */
#define REFRESH_GRACE apr_time_from_sec(2)

typedef struct keyentry_t {
    char hash[FL_SHA256_HEX_LEN + 1];
    int found;
    int refreshing;              /* a thread is asking the database */
    apr_time_t expires;
    floopy_principal_t who;      /* strings live in the cache's own pool */
} keyentry_t;

struct floopy_keycache_t {
    apr_thread_mutex_t *mutex;
    apr_pool_t *pool;            /* entries; recreated when the cache is flushed */
    apr_pool_t *parent;
    apr_hash_t *entries;
    apr_interval_time_t ttl;
};

apr_status_t floopy_keycache_create(floopy_keycache_t **pkc, apr_pool_t *p, int ttl_sec)
{
    floopy_keycache_t *kc = apr_pcalloc(p, sizeof(*kc));
    apr_status_t rv = apr_thread_mutex_create(&kc->mutex, APR_THREAD_MUTEX_DEFAULT, p);
    if (rv != APR_SUCCESS) return rv;
    kc->parent = p;
    kc->ttl = apr_time_from_sec(ttl_sec);
    if ((rv = apr_pool_create(&kc->pool, p)) != APR_SUCCESS) return rv;
    kc->entries = apr_hash_make(kc->pool);
    *pkc = kc;
    return APR_SUCCESS;
}

/* Copies the cached answer out under the lock: 1 found, 0 known bad, -1 not cached (the caller
 * asks the database and must then call cache_put or cache_abandon). */
static int cache_get(floopy_keycache_t *kc, const char *hash, apr_pool_t *p,
                     floopy_principal_t *out)
{
    int res = -1;
    keyentry_t *e;
    apr_time_t now = apr_time_now();
    apr_thread_mutex_lock(kc->mutex);
    e = apr_hash_get(kc->entries, hash, FL_SHA256_HEX_LEN);
    if (e && e->expires <= now && !(e->refreshing && now < e->expires + REFRESH_GRACE)) {
        e->refreshing = 1;       /* this caller refreshes; the others use the entry meanwhile */
        e = NULL;
    }
    if (e) {
        res = e->found;
        if (e->found) {
            out->org_id = apr_pstrdup(p, e->who.org_id);
            out->key_id = apr_pstrdup(p, e->who.key_id);
            out->role = apr_pstrdup(p, e->who.role);
            out->plan = apr_pstrdup(p, e->who.plan);
        }
    }
    apr_thread_mutex_unlock(kc->mutex);
    return res;
}

static void cache_put(floopy_keycache_t *kc, const char *hash, const floopy_principal_t *who)
{
    keyentry_t *e;
    apr_thread_mutex_lock(kc->mutex);
    if (apr_hash_count(kc->entries) >= KEYCACHE_MAX) {
        apr_pool_clear(kc->pool);
        kc->entries = apr_hash_make(kc->pool);
    }
    e = apr_hash_get(kc->entries, hash, FL_SHA256_HEX_LEN);
    if (!e) {
        e = apr_pcalloc(kc->pool, sizeof(*e));
        memcpy(e->hash, hash, FL_SHA256_HEX_LEN + 1);
        apr_hash_set(kc->entries, e->hash, FL_SHA256_HEX_LEN, e);
    }
    e->found = who != NULL;
    e->refreshing = 0;
    e->expires = apr_time_now() + (who ? kc->ttl : NEGATIVE_TTL);
    if (who) {
        /* a refreshed entry re-copies its strings; the pool is bounded by the flush above */
        e->who.org_id = apr_pstrdup(kc->pool, who->org_id);
        e->who.key_id = apr_pstrdup(kc->pool, who->key_id);
        e->who.role = apr_pstrdup(kc->pool, who->role);
        e->who.plan = apr_pstrdup(kc->pool, who->plan);
    }
    apr_thread_mutex_unlock(kc->mutex);
}

static void cache_abandon(floopy_keycache_t *kc, const char *hash)
{
    keyentry_t *e;
    apr_thread_mutex_lock(kc->mutex);
    if ((e = apr_hash_get(kc->entries, hash, FL_SHA256_HEX_LEN))) e->refreshing = 0;
    apr_thread_mutex_unlock(kc->mutex);
}

/* 1 found, 0 not found, -1 the database could not answer. */
static int db_lookup(request_rec *r, const char *hash, floopy_principal_t *out)
{
    ap_dbd_t *db = floopy_db_acquire(r);
    apr_array_header_t *rows;
    const char *args[1] = { hash };
    const char **row;
    if (!db || floopy_db_select(r->pool, db, FLOOPY_SQL_KEY_LOOKUP, 1, args, &rows, NULL)) {
        return -1;
    }
    if (rows->nelts == 0) return 0;
    row = APR_ARRAY_IDX(rows, 0, const char **);
    out->key_id = row[0];
    out->org_id = row[1];
    out->role = row[2];
    out->plan = row[3];
    return 1;
}

fl_error_t *floopy_authenticate(request_rec *r, floopy_principal_t **pp)
{
    floopy_keycache_t *kc = floopy_proc(r->server)->keys;
    const char *secret = floopy_bearer(r);
    char hash[FL_SHA256_HEX_LEN + 1];
    floopy_principal_t *who = apr_pcalloc(r->pool, sizeof(*who));
    int found;

    if (!secret) {
        return fl_error_make(r->pool, 401, "authentication_error", "missing_api_key", NULL,
                             "no API key: send 'Authorization: Bearer <key>'");
    }
    fl_sha256_hex(secret, strlen(secret), hash);
    found = cache_get(kc, hash, r->pool, who);
    if (found < 0) {
        found = db_lookup(r, hash, who);
        if (found < 0) {
            cache_abandon(kc, hash);
            return floopy_canned(r->pool, FLOOPY_E_UNAVAILABLE, NULL,
                                 "the key store cannot be reached; try again shortly");
        }
        cache_put(kc, hash, found ? who : NULL);
    }
    if (!found) {
        return fl_error_make(r->pool, 401, "authentication_error", "invalid_api_key", NULL,
                             "the API key is not valid (unknown or revoked)");
    }
    *pp = who;
    return NULL;
}
