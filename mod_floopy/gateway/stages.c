/* The stages of the request pipeline (gateway.h). Limits, firewall, cache, body log and metrics
 * have their place in the order already and pass everything on until their issues land; routing,
 * the judge and shadow experiments are the stages that work today. */
#include <string.h>

#include "route/route.h"
#include "jobs/jobs.h"
#include "gateway.h"

/* --- placeholders: each keeps its place in the order (pipeline.c) --- */

const floopy_stage_t floopy_stage_limits = { .name = "limits" };
const floopy_stage_t floopy_stage_firewall = { .name = "firewall" };
const floopy_stage_t floopy_stage_cache = { .name = "cache" };
const floopy_stage_t floopy_stage_body_log = { .name = "body_log" };
const floopy_stage_t floopy_stage_metrics = { .name = "metrics" };

/* --- routing --- */

static int route_before(floopy_exchange_t *x)
{
    fl_error_t *e = floopy_choose(x->r, x->d, x->route, x->pinned, 0);
    if (!e) return FLOOPY_STAGE_NEXT;
    floopy_exchange_fail(x, floopy_status_of(e), e);
    return FLOOPY_STAGE_ANSWERED;
}

const floopy_stage_t floopy_stage_route = { .name = "route", .before = route_before };

/* --- the judge: a streamed answer is judged as the message its chunks add up to --- */

static void judge_stream_open(floopy_exchange_t *x)
{
    if (floopy_judge_wants(x->r, x->d)) {
        x->text = fl_stream_text_create(x->r->pool, FLOOPY_JUDGE_MAX_BYTES);
    }
}

static apr_status_t judge_event(floopy_exchange_t *x, fl_chunk_kind_e *kind, const char **data,
                                apr_size_t *len)
{
    if (*kind == FL_CHUNK_FORWARD && x->text) fl_stream_text_feed(x->text, *data, *len);
    return APR_SUCCESS;
}

static void judge_after(floopy_exchange_t *x)
{
    const char *answer = x->answer;
    apr_size_t len = x->answer_len;
    if (!x->d->status || strcmp(x->d->status, "ok")) return;
    if (x->streaming && !(x->text && (answer = fl_stream_text_answer(x->text, x->r->pool, &len)))) {
        return;
    }
    if (answer) floopy_judge_offer(x->r, x->d, x->cr, answer, len);
}

const floopy_stage_t floopy_stage_judge = {
    .name = "judge", .stream_open = judge_stream_open, .on_event = judge_event,
    .after = judge_after,
};

/* --- shadow experiments: non-streamed answers only (a candidate would be asked for a
 * non-streamed answer to another request body) --- */

static void shadow_after(floopy_exchange_t *x)
{
    if (x->streaming || !x->answer || !x->d->status || strcmp(x->d->status, "ok")) return;
    floopy_shadow_offer(x->r, x->d, x->cr, x->answer, x->answer_len);
}

const floopy_stage_t floopy_stage_shadow = { .name = "shadow", .after = shadow_after };
