/* The limits' states for one node, in a fixed block of memory that the caller gives (a shared
 * memory segment every httpd child maps, at whatever address): so every child and thread counts
 * against the same numbers and a limit is exact on the node, not per child. The block holds
 * offsets only, never pointers.
 *
 * Keys are (scope, id). A key's 64-bit hash picks a bucket of a few slots, and the whole key is
 * compared, so two keys never share a counter. A new key takes a free slot, or one whose state
 * is back to idle (nothing is lost by forgetting it); when every slot of its bucket holds a live
 * counter the operation fails with APR_ENOSPC rather than evict one (which would forget what it
 * counted and let its key over its limit). Size the table at a few times the keys active in a
 * window, and leave it to the glue whether ENOSPC fails open or closed.
 *
 * Each bucket has one spin lock (fl_spinlock.h) held for the lookup and a few arithmetic
 * operations; APR_EBUSY means it could not be taken within its bound. */
#ifndef FL_LIMIT_TABLE_H
#define FL_LIMIT_TABLE_H

#include "fl_limit.h"

#define FL_LIMIT_ID_MAX 63       /* an API key's or an organisation's id: UUIDs are 36 */

/* The counters the gateway keeps; each (scope, id) is a counter of its own. */
typedef enum {
    FL_LIMIT_KEY_RPM = 1,
    FL_LIMIT_KEY_TPM,
    FL_LIMIT_ORG_RPM,
    FL_LIMIT_ORG_TPM,
    FL_LIMIT_ORG_SPEND_DAY,
    FL_LIMIT_ORG_SPEND_MONTH
} fl_limit_scope_e;

typedef struct fl_limit_key_t {
    apr_uint64_t hash;           /* of scope and id; never 0 (0 marks a free slot) */
    apr_uint32_t scope;
    apr_uint32_t len;
    char id[FL_LIMIT_ID_MAX + 1];
} fl_limit_key_t;

typedef struct fl_limit_table_t fl_limit_table_t;

/* APR_EINVAL when the id is empty or longer than FL_LIMIT_ID_MAX. */
apr_status_t fl_limit_key_make(fl_limit_key_t *key, fl_limit_scope_e scope, const char *id);

/* Bytes for a table of at least n keys (n is rounded up to whole buckets). */
apr_size_t fl_limit_table_size(apr_size_t n);

/* Lays an empty table on fl_limit_table_size(n) bytes of mem, once, before the children
 * start. */
apr_status_t fl_limit_table_init(fl_limit_table_t **ptable, void *mem, apr_size_t n);

/* The table that fl_limit_table_init laid on mem, wherever this process maps it: APR_EINVAL
 * when mem holds none, or one bigger than size. */
apr_status_t fl_limit_table_attach(fl_limit_table_t **ptable, void *mem, apr_size_t size);

/* The operations of fl_limit.h on the key's state: same arguments, same results. */
apr_status_t fl_limit_table_admit(fl_limit_table_t *t, const fl_limit_key_t *key,
                                  const fl_limit_rate_t *rate, apr_time_t now,
                                  fl_limit_result_t *res);
apr_status_t fl_limit_table_reserve(fl_limit_table_t *t, const fl_limit_key_t *key,
                                    const fl_limit_rate_t *rate, apr_uint64_t tokens,
                                    apr_uint64_t max_tokens, apr_time_t now,
                                    fl_limit_ticket_t *ticket, fl_limit_result_t *res);
apr_status_t fl_limit_table_reconcile(fl_limit_table_t *t, const fl_limit_key_t *key,
                                      const fl_limit_rate_t *rate, const fl_limit_ticket_t *ticket,
                                      apr_uint64_t actual, apr_time_t now, fl_limit_result_t *res);
apr_status_t fl_limit_table_spend_check(fl_limit_table_t *t, const fl_limit_key_t *key,
                                        const fl_limit_budget_t *budget,
                                        apr_time_t now, fl_limit_result_t *res);
apr_status_t fl_limit_table_spend_add(fl_limit_table_t *t, const fl_limit_key_t *key,
                                      const fl_limit_budget_t *budget, apr_uint64_t micro_usd,
                                      apr_time_t now, fl_limit_result_t *res);

#endif
