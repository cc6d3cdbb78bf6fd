/* A provider's wire format. The client always speaks OpenAI's Chat Completions; an adapter turns
 * that request into the provider's, and the provider's answers, streams and errors back into
 * OpenAI's shape, so the glue never learns which format is behind a provider.
 *
 * Adding a wire type: a file fl_adapter_<type>.c that defines one const fl_adapter_t, a line in
 * fl_adapter.c's table, unit tests on recorded traffic in t/unit/, a mock in t/mock/. */
#ifndef FL_ADAPTER_H
#define FL_ADAPTER_H

#include <apr_pools.h>
#include <apr_tables.h>

#include "fl_catalog.h"
#include "fl_chat_request.h"
#include "fl_decision.h"
#include "fl_error.h"
#include "fl_http.h"
#include "fl_openai.h"

/* One call of a provider for one client request; everything an adapter may read. */
typedef struct fl_call_t {
    apr_pool_t *pool;                  /* the request's */
    const fl_provider_t *provider;
    const fl_model_t *model;
    const fl_chat_request_t *cr;       /* the client's request, parsed and checked */
    fl_http_t *http;                   /* for credential exchanges (Vertex's token endpoint) */
    void *state;                       /* the adapter's per-process state for this provider */
    apr_time_t now;
} fl_call_t;

/* What to send upstream. */
typedef struct fl_upstream_t {
    const char *url;
    apr_array_header_t *headers;       /* "Name: value" strings, no CR/LF */
    const char *body;
    apr_size_t body_len;
    const char *accept;
    const char *content_type;          /* NULL = application/json */
} fl_upstream_t;

/* A stream translator hands OpenAI chunk payloads (the JSON after "data: ") to this. kind says
 * what the payload is: FORWARD a chunk, DONE the end ("[DONE]"), ERROR an error object that
 * ends the stream. DROP is never emitted by a translator. */
typedef apr_status_t fl_emit_cb(void *baton, fl_chunk_kind_e kind, const char *data,
                                apr_size_t len);

typedef struct fl_stream_t fl_stream_t; /* each adapter defines its own */

typedef struct fl_adapter_t {
    const char *type;                  /* the FloopyProvider type= that selects it */
    int vision;                        /* takes image parts */
    const char *const *options;        /* the FloopyProvider options it adds, NULL-terminated */
    /* Checks a provider's options as the directive is read (no environment, no files yet);
     * an error text naming the option, or NULL. May be NULL. */
    const char *(*check)(const fl_provider_t *pv, apr_pool_t *p);
    /* Checks and resolves a provider's options at start-up (pv->opts, pv->api_key,
     * pv->base_url...), setting pv->chat_url or whatever the adapter needs; an error text
     * naming the option, or NULL. May leave data for later in pv->adapter_conf. */
    const char *(*configure)(fl_provider_t *pv, apr_pool_t *p);
    /* Per-process state for a provider (a token cache, say), made in each child; may be NULL. */
    apr_status_t (*child_init)(const fl_provider_t *pv, apr_pool_t *pchild, void **pstate);
    /* The request to send; an error (400 for what the provider cannot take) otherwise. An error
     * of status 5xx (a credential exchange that failed, say) lets the glue try the next
     * candidate; any other is the client's answer. */
    fl_error_t *(*prepare)(const fl_call_t *call, fl_upstream_t *up);
    /* A 200 answer to a non-streamed request, as an OpenAI chat.completion; takes usage. */
    fl_error_t *(*response)(const fl_call_t *call, const char *body, apr_size_t len,
                            const char **out, apr_size_t *outlen, fl_usage_t *usage);
    /* A 200 streamed answer: a translator fed the raw bytes as they come. Usage is filled as
     * the provider reports it; the usage chunk is emitted only if the client asked for it. */
    apr_status_t (*stream_open)(const fl_call_t *call, fl_usage_t *usage, fl_emit_cb *emit,
                                void *baton, fl_stream_t **pstream);
    apr_status_t (*stream_feed)(fl_stream_t *s, const char *buf, apr_size_t len);
    /* An answer with status >= 400, as the client's error (status, OpenAI body, retry-after). */
    fl_error_t *(*error)(const fl_call_t *call, int status, apr_table_t *headers,
                         const char *body, apr_size_t len);
    /* The streamed body ended cleanly (the transfer completed). A translator that still owes the
     * end of the stream emits it now if the stream was complete enough (Bedrock: messageStop
     * without the metadata frame); otherwise it emits nothing and the glue reports a cut stream.
     * May be NULL. */
    apr_status_t (*stream_close)(fl_stream_t *s);
} fl_adapter_t;

/* The adapter for a FloopyProvider type=, or NULL. */
const fl_adapter_t *fl_adapter_find(const char *type);

/* The types there are, for messages: "openai, anthropic, ...". */
const char *fl_adapter_types(apr_pool_t *p);

/* What to send for one call: the provider's adapter prepares it, once the request is one the
 * provider can take at all (a 400 unsupported_content for images to a text-only provider). */
fl_error_t *fl_call_prepare(const fl_call_t *call, fl_upstream_t *up);

/* Helpers adapters share. */
fl_upstream_t *fl_upstream_make(apr_pool_t *p);
/* The HTTP exchange that sends up to the provider with its timeouts (a stream has no overall
 * timeout: its idle timeout guards it); callbacks are left for the caller. */
void fl_upstream_request(const fl_upstream_t *up, const fl_provider_t *pv, int stream,
                         fl_http_request_t *req);
void fl_upstream_header(fl_upstream_t *up, const char *name, const char *value);
/* "chatcmpl-" + 29 random alphanumerics, as OpenAI's ids look. */
const char *fl_completion_id(apr_pool_t *p);

#endif
