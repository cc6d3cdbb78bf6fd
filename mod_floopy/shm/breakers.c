/* The circuit breakers' shared memory: one slot per configured model, made by the parent at
 * start-up and inherited by every child, so a model that fails in one child is rested in all. */
#include <apr_shm.h>
#include <apr_strings.h>

#include "config/config.h"
#include "shm.h"

static int assign_slots(server_rec *s, apr_pool_t *p, int *pn)
{
    apr_hash_t *seen = apr_hash_make(p);
    int n = 0, i;
    for (; s; s = s->next) {
        const fl_catalog_t *cat = floopy_srv(s)->catalog;
        if (apr_hash_get(seen, &cat, sizeof(cat))) continue;
        apr_hash_set(seen, apr_pmemdup(p, &cat, sizeof(cat)), sizeof(cat), cat);
        for (i = 0; i < cat->model_list->nelts; i++) {
            APR_ARRAY_IDX(cat->model_list, i, fl_model_t *)->breaker_slot = n++;
        }
    }
    *pn = n;
    return n;
}

apr_status_t floopy_breakers_create(floopy_state_t *st, apr_pool_t *pconf, apr_pool_t *ptemp,
                                    server_rec *s)
{
    apr_shm_t *shm;
    apr_status_t rv;
    fl_breaker_slot_t *slots = NULL;
    int n = 0;

    if (assign_slots(s, ptemp, &n) > 0) {
        rv = apr_shm_create(&shm, sizeof(fl_breaker_slot_t) * (apr_size_t)n, NULL, pconf);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                         "FL008: no shared memory for %d circuit breakers", n);
            return rv;
        }
        slots = apr_shm_baseaddr_get(shm);
        memset(slots, 0, sizeof(fl_breaker_slot_t) * (apr_size_t)n);
    }
    st->breakers = slots;
    return APR_SUCCESS;
}

fl_breaker_slot_t *floopy_breaker(server_rec *s, const fl_model_t *m)
{
    fl_breaker_slot_t *slots = floopy_state(s)->breakers;
    return (slots && m->breaker_slot >= 0) ? &slots[m->breaker_slot] : NULL;
}
