/* The OpenAI adapter's pieces that adapters speaking OpenAI's wire format with a twist (Azure
 * OpenAI, the OpenAI-compatible profiles) reuse: the request, the answer check, the stream
 * translator and the error mapping, each written once here with the twists as parameters. */
#ifndef FL_ADAPTER_OPENAI_H
#define FL_ADAPTER_OPENAI_H

#include "fl_adapter.h"

/* Rewrites the upstream body (a private copy) for one provider's documented quirks; an error
 * for what it cannot take at all. */
typedef fl_error_t *fl_openai_fix_fn(apr_pool_t *p, json_t *body, const char *model);

/* How a provider's stream differs from OpenAI's; all zero for OpenAI itself. */
typedef struct fl_openai_stream_quirks_t {
    /* Chunks with no choice that carry no usage (Azure's leading prompt_filter_results chunks)
     * are dropped: clients index choices[0] of every chunk that is not the usage chunk. */
    int drop_filter_chunks;
    /* Takes usage the provider reports outside OpenAI's top-level field from a payload (after
     * OpenAI's own was read; *usage is the stream's). When set, a usage chunk is made before
     * [DONE] if the client asked for usage and only such a field gave it. May be NULL. */
    void (*usage_elsewhere)(fl_usage_t *usage, const char *data, apr_size_t len);
} fl_openai_stream_quirks_t;

/* OpenAI's body for the call (the provider's model name, include_usage asked for in streams)
 * and the accept type into up; fix, when not NULL, is applied to a private parse of it so the
 * client's request stays as it was for fallbacks. */
fl_error_t *fl_adapter_openai_body(const fl_call_t *call, fl_openai_fix_fn *fix,
                                   fl_upstream_t *up);

/* The whole request: the body above, POSTed to pv->chat_url with the key as a Bearer token. */
fl_error_t *fl_adapter_openai_prepare(const fl_call_t *call, fl_openai_fix_fn *fix,
                                      fl_upstream_t *up);

/* pv->chat_url from the resolved base URL. */
const char *fl_adapter_openai_configure(fl_provider_t *pv, apr_pool_t *p);

fl_error_t *fl_adapter_openai_response(const fl_call_t *call, const char *body, apr_size_t len,
                                       const char **out, apr_size_t *outlen, fl_usage_t *usage);

/* The pass-through stream translator, with the provider's quirks (never NULL). */
apr_status_t fl_adapter_openai_stream_open(const fl_call_t *call, fl_usage_t *usage,
                                           fl_emit_cb *emit, void *baton,
                                           const fl_openai_stream_quirks_t *quirks,
                                           fl_stream_t **pstream);

apr_status_t fl_adapter_openai_stream_feed(fl_stream_t *s, const char *buf, apr_size_t len);

fl_error_t *fl_adapter_openai_error(const fl_call_t *call, int status, apr_table_t *headers,
                                    const char *body, apr_size_t len);

#endif
