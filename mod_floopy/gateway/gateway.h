/* A model request as a pipeline of stages. Every API a client speaks for a model (Chat
 * Completions today; Responses, Messages and Embeddings next) is an ingress: a translator from
 * the client's body to the internal request (OpenAI's chat request, which every provider adapter
 * takes) and from the internal answer, or stream, back to the client's shape. Between them the
 * request passes the same stages:
 *
 *   before the call  limits, firewall, cache lookup, routing (the order: pipeline.c)
 *   the call         retries and fallbacks over the candidates    (call.c)
 *   each event       of a streamed answer, in the internal shape, before the client gets it
 *   after            cache store, body log, metrics, judge, shadow
 *
 * A stage may answer the request itself (a cache hit, a block, a 429); whatever way it ends,
 * an exchange records exactly one decision (floopy_exchange_end). */
#ifndef FLOOPY_GATEWAY_H
#define FLOOPY_GATEWAY_H

#include <apr_buckets.h>

#include "http/http.h"
#include "fl_catalog.h"
#include "fl_decision.h"
#include "fl_openai.h"

typedef struct floopy_exchange_t floopy_exchange_t;
typedef struct floopy_stage_t floopy_stage_t;

/* The API a client spoke. */
typedef struct floopy_ingress_t {
    const char *name;            /* "chat.completions" */
    /* The client's body as the internal request; an error in the ingress's terms otherwise. */
    fl_chat_request_t *(*parse)(apr_pool_t *p, const char *body, apr_size_t len,
                                fl_error_t **perr);
    /* The internal (OpenAI chat.completion) answer as the client's. */
    fl_error_t *(*answer)(floopy_exchange_t *x, const char *in, apr_size_t len,
                          const char **pout, apr_size_t *poutlen);
    /* One internal stream event (an OpenAI chunk, the end, or an error object) as the
     * client's events, written with floopy_exchange_write_event. */
    apr_status_t (*event)(floopy_exchange_t *x, fl_chunk_kind_e kind, const char *data,
                          apr_size_t len);
    /* The client's error answer (before any byte of an answer went out). */
    int (*fail)(request_rec *r, const fl_error_t *e);
} floopy_ingress_t;

struct floopy_exchange_t {
    request_rec *r;
    const floopy_principal_t *who;
    const floopy_ingress_t *ingress;
    const floopy_stage_t *const *stages;  /* the pipeline's, in order */
    apr_size_t nstages;
    fl_chat_request_t *cr;       /* the internal request (NULL until it parsed) */
    const fl_route_t *route;     /* the route the client named, or NULL when it pinned a model */
    fl_model_t *pinned;
    fl_decision_t *d;            /* exactly one, recorded by floopy_exchange_end */
    const char *answer;          /* a complete non-streamed answer, internal shape */
    apr_size_t answer_len;
    fl_stream_text_t *text;      /* a streamed answer's text, when a stage asked for it */
    int streaming;               /* the head went out: no retry, no error answer from here */
    int recorded;
    apr_bucket_brigade *bb;      /* reused for every event */
};

#define FLOOPY_STAGE_NEXT 0
#define FLOOPY_STAGE_ANSWERED 1

struct floopy_stage_t {
    const char *name;
    /* Before the call. FLOOPY_STAGE_ANSWERED when the stage answered the request itself (it
     * then ended the exchange with floopy_exchange_end); may be NULL. */
    int (*before)(floopy_exchange_t *x);
    /* A stream is about to start (the provider answered 200); may be NULL. */
    void (*stream_open)(floopy_exchange_t *x);
    /* Each event of a streamed answer, in the internal shape, before the client gets it; a
     * stage may rewrite *data and *len, turn it into FL_CHUNK_DROP, or end the stream with an
     * error status. May be NULL. */
    apr_status_t (*on_event)(floopy_exchange_t *x, fl_chunk_kind_e *kind, const char **data,
                             apr_size_t *len);
    /* After the exchange ended and its decision was recorded; may be NULL. */
    void (*after)(floopy_exchange_t *x);
};

/* --- the pipeline (pipeline.c): the stages in order, and running them --- */
/* Runs one model request of the ingress's API through every stage. */
int floopy_gateway_run(request_rec *r, const floopy_principal_t *who,
                       const floopy_ingress_t *ingress);
/* Reads the body, parses it through the ingress and resolves its model (a route or a pinned
 * provider/model); the error to answer otherwise (*pcr is set once the body parsed, even when
 * the model is unknown). Shared with /routing/explain so both refuse alike. */
fl_error_t *floopy_gateway_read(request_rec *r, const floopy_ingress_t *ingress,
                                fl_chat_request_t **pcr, const fl_route_t **proute,
                                fl_model_t **ppinned);
/* --- the exchange (exchange.c) --- */
/* Stamps the outcome on the decision and queues it for the writer; only the first call of an
 * exchange counts. e (may be NULL) is the error summary it keeps. */
void floopy_exchange_end(floopy_exchange_t *x, const char *status, int http_status,
                         const fl_error_t *e);
/* Ends the exchange with e and answers it in the ingress's shape. */
int floopy_exchange_fail(floopy_exchange_t *x, const char *status, const fl_error_t *e);
/* A decision status for an error that ends an exchange. */
const char *floopy_status_of(const fl_error_t *e);
/* Passes a stream event through the stages' on_event, then to the ingress. */
apr_status_t floopy_exchange_event(floopy_exchange_t *x, fl_chunk_kind_e kind, const char *data,
                                   apr_size_t len);
/* Writes one server-sent event ("event: name" when name is not NULL, then "data: ...") and
 * flushes it; APR_ECONNABORTED when the client went away. */
apr_status_t floopy_exchange_write_event(floopy_exchange_t *x, const char *name,
                                         const char *data, apr_size_t len);
/* Starts the streamed answer's head (200, text/event-stream) and tells the stages. */
void floopy_exchange_stream_open(floopy_exchange_t *x);

/* --- the call (call.c) --- */
/* Calls the decision's chosen model, then its alternatives, with retries, within one deadline,
 * only before the first byte reached the client; answers the client and ends the exchange. */
int floopy_call_providers(floopy_exchange_t *x);

/* --- ingresses --- */
extern const floopy_ingress_t floopy_ingress_chat;     /* chat.c */
floopy_endpoint_fn floopy_handle_chat;

/* --- stages (stages.c) --- */
extern const floopy_stage_t floopy_stage_limits, floopy_stage_firewall, floopy_stage_cache,
    floopy_stage_route, floopy_stage_body_log, floopy_stage_metrics, floopy_stage_judge,
    floopy_stage_shadow;

#endif
