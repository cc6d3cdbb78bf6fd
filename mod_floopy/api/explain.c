/* POST /routing/explain: the decision the router would make now for this chat request, without
 * calling a provider or recording anything. It is built by the same code as a real decision and
 * shown in the same shape, less what only an outcome has. */
#include <apr_strings.h>

#include "gateway/gateway.h"
#include "route/route.h"
#include "api.h"
#include "fl_decision.h"

int floopy_handle_explain(request_rec *r, const floopy_principal_t *who, const char *const *arg)
{
    static const char *const outcome[] = { "id", "status", "http_status", "latency_ms", "usage",
        "cost_usd", "cache_hit", "error", "attempts", "completed_at", "created_at", NULL };
    fl_decision_t *d = fl_decision_create(r->pool, apr_time_now());
    const fl_route_t *route = NULL;
    fl_model_t *pinned = NULL;
    fl_chat_request_t *cr;
    const char *args[FL_DECISION_NCOLS], *const *k;
    fl_error_t *e;
    json_t *out;
    if ((e = floopy_gateway_read(r, &floopy_ingress_chat, &cr, &route, &pinned))) {
        return floopy_send_error(r, e);
    }
    d->org_id = who->org_id;
    d->api_key_id = who->key_id;
    d->stream = cr->stream;
    d->session_id = floopy_session_of(r);
    if ((e = floopy_choose(r, d, route, pinned, 1))) return floopy_send_error(r, e);
    fl_decision_row_args(r->pool, d, args);
    out = fl_decision_row_json(r->pool, args);
    for (k = outcome; *k; k++) json_object_del(out, *k);
    json_object_set_new(out, "object", json_string("floopy.routing_explanation"));
    return floopy_send_json(r, 200, out);
}
