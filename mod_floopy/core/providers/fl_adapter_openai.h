/* The OpenAI adapter's pieces that adapters speaking OpenAI's wire format with a twist (Azure
 * OpenAI) reuse: the answer check, the stream translator and the error mapping. */
#ifndef FL_ADAPTER_OPENAI_H
#define FL_ADAPTER_OPENAI_H

#include "fl_adapter.h"

fl_error_t *fl_adapter_openai_response(const fl_call_t *call, const char *body, apr_size_t len,
                                       const char **out, apr_size_t *outlen, fl_usage_t *usage);

/* The pass-through stream translator. With drop_filter_chunks, chunks with no choice that carry
 * no usage (Azure's leading prompt_filter_results chunks) are dropped: clients index
 * choices[0] of every chunk that is not the usage chunk. */
apr_status_t fl_adapter_openai_stream_open(const fl_call_t *call, fl_usage_t *usage,
                                           fl_emit_cb *emit, void *baton,
                                           int drop_filter_chunks, fl_stream_t **pstream);

apr_status_t fl_adapter_openai_stream_feed(fl_stream_t *s, const char *buf, apr_size_t len);

fl_error_t *fl_adapter_openai_error(const fl_call_t *call, int status, apr_table_t *headers,
                                    const char *body, apr_size_t len);

#endif
