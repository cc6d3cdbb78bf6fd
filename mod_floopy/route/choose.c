/* Choosing a model for one request: the router (core's fl_router_choose) over this child's
 * snapshot, the organisation's constraints, live prices and the session's stickiness. */
#include <errno.h>
#include <stdlib.h>
#include <apr_strings.h>

#include "config/config.h"
#include "store/store.h"
#include "shm/shm.h"
#include "route.h"
#include "fl_rng.h"
#include "fl_util.h"

typedef struct price_baton_t {
    floopy_prices_t *prices;
    apr_pool_t *p;
} price_baton_t;

static void live_price(void *baton, const fl_model_t *m, fl_price_t *out)
{
    price_baton_t *pb = baton;
    floopy_price_of(pb->prices, pb->p, m, out);
}

/* x-floopy-seed replays a choice (explain, then the real request); otherwise the decision's
 * own random id seeds it. */
static fl_error_t *seed_of(request_rec *r, const fl_decision_t *d, apr_uint64_t *seed)
{
    const char *h = apr_table_get(r->headers_in, "x-floopy-seed");
    char *end;
    if (!h) {
        *seed = fl_hash64(d->id, strlen(d->id), 0);
        return NULL;
    }
    errno = 0;
    *seed = (apr_uint64_t)strtoull(h, &end, 10);
    if (!*h || *end || errno || *h == '-') {
        return fl_error_make(r->pool, 400, "invalid_request_error", "invalid_value",
                             "x-floopy-seed", "the x-floopy-seed header must be a whole number "
                             "from 0 to 18446744073709551615");
    }
    return NULL;
}

fl_error_t *floopy_choose(request_rec *r, fl_decision_t *d, const fl_route_t *route,
                          fl_model_t *pinned, int dry_run)
{
    floopy_srv_t *conf = floopy_srv(r->server);
    fl_route_ctx_t ctx = { 0 };
    price_baton_t pb = { floopy_proc(r->server)->prices, r->pool };
    fl_rng_t rng;
    fl_error_t *e;

    if (!route) {
        fl_router_pin(pinned, d);
        return NULL;
    }
    if ((e = seed_of(r, d, &ctx.seed))) return e;
    fl_rng_seed(&rng, ctx.seed);
    ctx.snap = floopy_router_snapshot(r, d->org_id, &ctx.limits);
    ctx.policy = &conf->policy;
    ctx.org_id = d->org_id;
    ctx.rng = &rng;
    ctx.price = live_price;
    ctx.price_baton = &pb;
    if (d->session_id) {
        ctx.sticky = floopy_sticky_get(r->server, d->org_id, route->name, d->session_id,
                                       apr_time_now());
    }
    fl_router_choose(route, &ctx, d);
    if (!ctx.snap) json_object_set_new(d->signals, "statistics", json_string("not loaded yet"));
    if (!dry_run && d->session_id && !ctx.sticky) {
        floopy_sticky_put(r->server, d->org_id, route->name, d->session_id, d->chosen->id,
                          apr_time_now());
    }
    return NULL;
}

