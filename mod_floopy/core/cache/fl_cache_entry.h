/* What the response cache stores for one complete, successful Chat Completions answer, and the
 * two ways of replaying it: as one chat.completion, or as the chunk payloads of a stream. An
 * entry is either an answer (recorded from a non-streamed reply) or a stream (the chunks as
 * they passed); each replays either way. The glue keeps entries as bytes (socache, Redis):
 * fl_cache_entry_encode/_decode. */
#ifndef FL_CACHE_ENTRY_H
#define FL_CACHE_ENTRY_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>

#include "fl_decision.h"

typedef struct fl_cache_entry_t fl_cache_entry_t;

/* The format version, the first byte of every encoding; _decode refuses any other. */
#define FL_CACHE_ENTRY_VERSION 1

/* An entry from a non-streamed answer (the chat.completion body, len bytes). Refused with
 * APR_EINVAL unless it is a complete chat completion: an object without "error", one choice
 * with a message and a finish_reason, and a model; APR_ENOTIMPL for several choices (n > 1 is
 * not cached). The entry lives in p. */
apr_status_t fl_cache_entry_from_answer(apr_pool_t *p, const char *json, apr_size_t len,
                                        fl_cache_entry_t **pentry);

/* Records a streamed answer from its chunk payloads (the JSON after "data: ") in the order
 * they passed. Feed the chunks as the provider gave them, before the usage chunk is dropped
 * for a client that did not ask for it (the gateway always asks upstream), so that the entry
 * can serve clients of both kinds. max bounds the recorder's memory and the encoded entry
 * (about the payloads' bytes plus 4 a chunk): past it the recorder gives up, frees what it
 * held and only says so from then on. */
typedef struct fl_cache_recorder_t fl_cache_recorder_t;
apr_status_t fl_cache_recorder_create(apr_pool_t *p, apr_size_t max,
                                      fl_cache_recorder_t **prec);
/* One payload, "[DONE]" included. APR_SUCCESS while recording; APR_ENOSPC once past max;
 * APR_EINVAL for data after [DONE]. Either refusal sticks: the glue may stop feeding. */
apr_status_t fl_cache_recorder_feed(fl_cache_recorder_t *rec, const char *data, apr_size_t len);
/* The entry, once [DONE] arrived. Refused: APR_EINCOMPLETE when [DONE] did not come (a stream
 * cut short), APR_ENOSPC past max, APR_EINVAL for an error chunk, a payload that is not a
 * chunk object or no finish_reason, APR_ENOTIMPL for several choices. The glue stores only
 * what this gives. The entry lives in the recorder's pool. */
apr_status_t fl_cache_recorder_finish(fl_cache_recorder_t *rec, fl_cache_entry_t **pentry);

/* The entry as bytes for a byte store. No copy: *pbytes lives as long as the entry. */
apr_status_t fl_cache_entry_encode(apr_pool_t *p, const fl_cache_entry_t *entry,
                                   const char **pbytes, apr_size_t *plen);
/* An entry from what _encode gave (copied into p). Any other bytes are refused cleanly:
 * APR_EINVAL (or the refusals of the two constructors: a decoded entry is checked as a new
 * one is). */
apr_status_t fl_cache_entry_decode(apr_pool_t *p, const char *bytes, apr_size_t len,
                                   fl_cache_entry_t **pentry);

/* The answer as one chat.completion with the id and created (Unix seconds of it) of the new
 * response and everything else as recorded: the model, the whole message (content, tool_calls
 * assembled from a stream's deltas, reasoning_content and refusal when there were any),
 * logprobs, finish_reason, and the usage object as the provider wrote it. NUL-terminated. */
apr_status_t fl_cache_entry_answer(apr_pool_t *p, const fl_cache_entry_t *entry,
                                   const char *new_id, apr_time_t created,
                                   const char **pjson, apr_size_t *plen);

/* The chunk payloads (const char *, NUL-terminated JSON) a streaming client should get, without
 * the final "[DONE]" (the caller adds it). A recorded stream is replayed chunk for chunk with
 * the new id and created; its usage chunk stays in its place when include_usage, and is left
 * out, with every chunk's "usage": null, when not. An answer becomes the standard sequence: a
 * role chunk, reasoning_content, content, refusal, each tool call (id, type and name, then the
 * arguments), the finish_reason, then the usage chunk (choices: []) when include_usage. A
 * synthesised stream carries no logprobs and only the usage counts fl_usage_t knows. */
apr_status_t fl_cache_entry_chunks(apr_pool_t *p, const fl_cache_entry_t *entry,
                                   const char *new_id, apr_time_t created, int include_usage,
                                   apr_array_header_t **pchunks);

/* The recorded usage (-1 where unknown), for the saved cost; and the model that answered. */
void fl_cache_entry_usage(const fl_cache_entry_t *entry, fl_usage_t *usage);
const char *fl_cache_entry_model(const fl_cache_entry_t *entry);
/* 1 when the entry was recorded from a stream. */
int fl_cache_entry_streamed(const fl_cache_entry_t *entry);

#endif
