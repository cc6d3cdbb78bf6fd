#include <stddef.h>
#include <string.h>

#include "fl_limit_table.h"
#include "fl_rng.h"
#include "fl_spinlock.h"

#define SLOTS 8                  /* per bucket: what one lock guards and one lookup compares */
#define MAGIC 0x544c4c46u        /* "FLLT" */

typedef struct slot_t {
    fl_limit_key_t key;          /* hash 0: never used */
    apr_time_t idle_at;          /* from then on the state is as good as a fresh one, so the slot
                                  * may go to another key; 0 = already */
    fl_limit_state_t st;
} slot_t;

/* Why a lock and not fl_sticky's sequence number: a sticky writer that finds the slot busy may
 * drop its write, a counter may not, and an update is two words read and written together (no
 * portable CAS covers them). Why one lock for a bucket and not one for each slot: a new key is
 * placed under the same lock as it is looked up, so two children seeing it first cannot give it
 * two slots, which would let it through twice as often. */
typedef struct bucket_t {
    fl_spinlock_t lock;
    apr_uint32_t unused;
    slot_t slots[SLOTS];
} bucket_t;

struct fl_limit_table_t {
    apr_uint32_t magic;
    apr_uint32_t slots;          /* SLOTS when laid: a table from another build is refused */
    apr_uint64_t nbuckets;
    bucket_t buckets[];
};

apr_status_t fl_limit_key_make(fl_limit_key_t *key, fl_limit_scope_e scope, const char *id)
{
    apr_size_t len = strlen(id);
    apr_uint32_t sc = (apr_uint32_t)scope;
    if (len == 0 || len > FL_LIMIT_ID_MAX) return APR_EINVAL;
    memset(key, 0, sizeof(*key));
    key->scope = sc;
    key->len = (apr_uint32_t)len;
    memcpy(key->id, id, len);
    key->hash = fl_hash64(id, len, fl_hash64(&sc, sizeof(sc), 0));
    if (!key->hash) key->hash = 1;
    return APR_SUCCESS;
}

static apr_size_t buckets_for(apr_size_t n)
{
    return n ? (n + SLOTS - 1) / SLOTS : 1;
}

apr_size_t fl_limit_table_size(apr_size_t n)
{
    return offsetof(fl_limit_table_t, buckets) + sizeof(bucket_t) * buckets_for(n);
}

apr_status_t fl_limit_table_init(fl_limit_table_t **ptable, void *mem, apr_size_t n)
{
    fl_limit_table_t *t = mem;
    memset(mem, 0, fl_limit_table_size(n));
    t->nbuckets = buckets_for(n);
    t->slots = SLOTS;
    t->magic = MAGIC;
    *ptable = t;
    return APR_SUCCESS;
}

apr_status_t fl_limit_table_attach(fl_limit_table_t **ptable, void *mem, apr_size_t size)
{
    fl_limit_table_t *t = mem;
    if (size < offsetof(fl_limit_table_t, buckets) || t->magic != MAGIC || t->slots != SLOTS
        || t->nbuckets == 0 || t->nbuckets > size / sizeof(bucket_t)
        || fl_limit_table_size(t->nbuckets * SLOTS) > size) {
        return APR_EINVAL;
    }
    *ptable = t;
    return APR_SUCCESS;
}

static int same_key(const fl_limit_key_t *a, const fl_limit_key_t *b)
{
    return a->hash == b->hash && a->scope == b->scope && a->len == b->len
           && !memcmp(a->id, b->id, a->len);
}

/* The key's slot, or a slot for it: one never used or back to idle. NULL when every slot
 * holds a live counter of another key. */
static slot_t *slot_for(bucket_t *b, const fl_limit_key_t *key, apr_time_t now)
{
    slot_t *spare = NULL;
    int i;
    for (i = 0; i < SLOTS; i++) {
        slot_t *s = &b->slots[i];
        if (same_key(&s->key, key)) return s;
        if (!spare && (!s->key.hash || s->idle_at <= now)) spare = s;
    }
    if (spare) {
        memset(spare, 0, sizeof(*spare));
        spare->key = *key;
    }
    return spare;
}

/* One operation of fl_limit.h and its arguments, so that the locking is written once. */
typedef enum { OP_ADMIT, OP_RESERVE, OP_RECONCILE, OP_SPEND_CHECK, OP_SPEND_ADD } op_e;

typedef struct op_t {
    op_e kind;
    const fl_limit_rate_t *rate;          /* rate operations */
    const fl_limit_budget_t *budget;      /* spend operations */
    apr_uint64_t n;                       /* tokens, actual tokens or micro-USD */
    apr_uint64_t max_tokens;
    const fl_limit_ticket_t *given;       /* reconcile */
    fl_limit_ticket_t *ticket;            /* reserve */
} op_t;

static apr_status_t apply(fl_limit_state_t *st, const op_t *op, apr_time_t now,
                          fl_limit_result_t *res)
{
    switch (op->kind) {
    case OP_ADMIT: return fl_limit_admit(st, op->rate, now, res);
    case OP_RESERVE:
        return fl_limit_reserve(st, op->rate, op->n, op->max_tokens, now, op->ticket, res);
    case OP_RECONCILE: return fl_limit_reconcile(st, op->rate, op->given, op->n, now, res);
    case OP_SPEND_CHECK: return fl_limit_spend_check(st, op->budget, now, res);
    case OP_SPEND_ADD: return fl_limit_spend_add(st, op->budget, op->n, now, res);
    }
    return APR_EINVAL;
}

static apr_status_t run(fl_limit_table_t *t, const fl_limit_key_t *key, const op_t *op,
                        apr_time_t now, fl_limit_result_t *res)
{
    bucket_t *b = &t->buckets[key->hash % t->nbuckets];
    slot_t *s;
    apr_status_t rv = fl_spin_lock(&b->lock);
    if (rv != APR_SUCCESS) return rv;
    s = slot_for(b, key, now);
    if (!s) {
        rv = APR_ENOSPC;
    }
    else if ((rv = apply(&s->st, op, now, res)) == APR_SUCCESS && !res->too_large) {
        /* A bucket is idle once it has leaked empty (its state's time may run ahead of now);
         * a spend once its window is over. A refusal for good left the state as it was. */
        s->idle_at = !s->st.level ? 0 : (op->budget ? now : s->st.at) + res->reset;
    }
    fl_spin_unlock(&b->lock);
    return rv;
}

apr_status_t fl_limit_table_admit(fl_limit_table_t *t, const fl_limit_key_t *key,
                                  const fl_limit_rate_t *rate, apr_time_t now,
                                  fl_limit_result_t *res)
{
    return run(t, key, &(op_t){ .kind = OP_ADMIT, .rate = rate }, now, res);
}

apr_status_t fl_limit_table_reserve(fl_limit_table_t *t, const fl_limit_key_t *key,
                                    const fl_limit_rate_t *rate, apr_uint64_t tokens,
                                    apr_uint64_t max_tokens, apr_time_t now,
                                    fl_limit_ticket_t *ticket, fl_limit_result_t *res)
{
    op_t op = { .kind = OP_RESERVE, .rate = rate, .n = tokens, .max_tokens = max_tokens,
                .ticket = ticket };
    return run(t, key, &op, now, res);
}

apr_status_t fl_limit_table_reconcile(fl_limit_table_t *t, const fl_limit_key_t *key,
                                      const fl_limit_rate_t *rate, const fl_limit_ticket_t *ticket,
                                      apr_uint64_t actual, apr_time_t now, fl_limit_result_t *res)
{
    op_t op = { .kind = OP_RECONCILE, .rate = rate, .n = actual, .given = ticket };
    return run(t, key, &op, now, res);
}

apr_status_t fl_limit_table_spend_check(fl_limit_table_t *t, const fl_limit_key_t *key,
                                        const fl_limit_budget_t *budget,
                                        apr_time_t now, fl_limit_result_t *res)
{
    return run(t, key, &(op_t){ .kind = OP_SPEND_CHECK, .budget = budget }, now, res);
}

apr_status_t fl_limit_table_spend_add(fl_limit_table_t *t, const fl_limit_key_t *key,
                                      const fl_limit_budget_t *budget, apr_uint64_t micro_usd,
                                      apr_time_t now, fl_limit_result_t *res)
{
    op_t op = { .kind = OP_SPEND_ADD, .budget = budget, .n = micro_usd };
    return run(t, key, &op, now, res);
}
