/* OpenAI's Chat Completions wire format as the OpenAI-type providers speak it: upstream bodies,
 * answers, stream chunks and errors, and a stream's chunks gathered back into one answer. The
 * client's request it starts from is fl_chat_request.h's. */
#ifndef FL_OPENAI_H
#define FL_OPENAI_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <jansson.h>

#include "fl_chat_request.h"
#include "fl_decision.h"
#include "fl_error.h"

/* The body to send upstream: the client's, with the provider's model name, and in a stream
 * include_usage switched on so the gateway always learns the usage. */
char *fl_openai_upstream_body(apr_pool_t *p, const fl_chat_request_t *cr, const char *model,
                              apr_size_t *plen);

/* Checks a non-streamed 200 answer and takes its usage; an error (502) if it is not a chat
 * completion. */
fl_error_t *fl_openai_parse_response(apr_pool_t *p, const char *body, apr_size_t len,
                                     fl_usage_t *usage);

typedef enum {
    FL_CHUNK_FORWARD,            /* send *out on to the client */
    FL_CHUNK_DROP,               /* the usage chunk the client did not ask for */
    FL_CHUNK_DONE,               /* [DONE] */
    FL_CHUNK_ERROR               /* an error event: forward it, the stream failed */
} fl_chunk_kind_e;

/* One data: payload of an upstream stream. Takes usage when the chunk carries it. *out is the
 * payload to forward (the input itself unless it had to be rewritten). */
fl_chunk_kind_e fl_openai_stream_chunk(apr_pool_t *p, const char *data, apr_size_t len,
                                       int strip_usage, fl_usage_t *usage,
                                       const char **out, apr_size_t *outlen);

/* A streamed answer's text gathered from the OpenAI chunks the client got (choices[0]'s
 * delta.content), so that it can be judged as a whole answer afterwards. Past max bytes it stops
 * gathering and has no answer to give. */
typedef struct fl_stream_text_t fl_stream_text_t;
fl_stream_text_t *fl_stream_text_create(apr_pool_t *p, apr_size_t max);
void fl_stream_text_feed(fl_stream_text_t *t, const char *chunk, apr_size_t len);
/* The text as a chat.completion body with one assistant message; NULL when the stream carried
 * no text (tool calls only) or more than max. */
const char *fl_stream_text_answer(fl_stream_text_t *t, apr_pool_t *p, apr_size_t *len);

/* Maps an upstream error answer to the client's error (status and OpenAI body). */
fl_error_t *fl_openai_map_upstream_error(apr_pool_t *p, const char *provider, int status,
                                         apr_table_t *headers, const char *body,
                                         apr_size_t len);

#endif
