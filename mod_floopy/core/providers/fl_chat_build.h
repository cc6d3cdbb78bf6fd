/* Building OpenAI-shaped answers for adapters that translate from another wire format, and
 * reading the parts of OpenAI requests every translator needs. One place, so every adapter
 * produces the same shapes the official clients expect. */
#ifndef FL_CHAT_BUILD_H
#define FL_CHAT_BUILD_H

#include <apr_pools.h>
#include <jansson.h>

#include "fl_decision.h"

/* The fixed parts of every chunk of one answer. */
typedef struct fl_oai_stream_t {
    const char *id;              /* chatcmpl-... */
    const char *model;
    apr_int64_t created;         /* Unix seconds */
    int include_usage;           /* the client asked for the usage chunk */
    int role_sent;               /* the first delta carried role: assistant */
} fl_oai_stream_t;

void fl_oai_stream_init(fl_oai_stream_t *st, apr_pool_t *p, const char *model,
                        int include_usage);

/* A chat.completion.chunk payload: choices[0] with the delta (stolen; NULL = {}), and a
 * finish_reason (NULL = null). Adds role: "assistant" to the first delta. "usage": null is
 * added when the client asked for usage, as OpenAI does. */
char *fl_oai_chunk(apr_pool_t *p, fl_oai_stream_t *st, json_t *delta, const char *finish_reason);

/* The final usage chunk (choices: []), or NULL when the client did not ask for it. */
char *fl_oai_usage_chunk(apr_pool_t *p, const fl_oai_stream_t *st, const fl_usage_t *u);

/* OpenAI's usage object from ours (unknown counts become 0). */
json_t *fl_oai_usage_json(const fl_usage_t *u);

/* A whole chat.completion: message {role, content (NULL = null), tool_calls (stolen, may be
 * NULL)}, finish_reason, usage. */
char *fl_oai_completion(apr_pool_t *p, const char *model, const char *content,
                        json_t *tool_calls, const char *finish_reason, const fl_usage_t *u);

/* A tool call as OpenAI writes it; in a stream the index is set and id/name only on the first
 * delta. arguments is the JSON text. */
json_t *fl_oai_tool_call(int index, const char *id, const char *name, const char *arguments);

/* The text of a message's content: a string, or the "text" parts of an array joined. */
const char *fl_oai_content_text(apr_pool_t *p, const json_t *content);

/* "data:image/png;base64,AAAA" into its media type and base64 payload; 0 if not a data URL. */
int fl_data_url_parse(apr_pool_t *p, const char *url, const char **mime, const char **b64);

/* An OpenAI error object as the payload of an error event that ends a stream. */
char *fl_oai_error_event(apr_pool_t *p, const char *message, const char *type, const char *code);

#endif
