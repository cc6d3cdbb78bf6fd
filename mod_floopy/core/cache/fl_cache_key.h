/* The exact-match response cache's key: which requests may share one stored answer. */
#ifndef FL_CACHE_KEY_H
#define FL_CACHE_KEY_H

#include <apr_pools.h>
#include <jansson.h>

#include "fl_util.h"

/* The endpoint a Chat Completions answer is stored under. */
#define FL_CACHE_ENDPOINT_CHAT "chat.completions"

/* SHA-256 (hex) of the canonical form of: the organisation, the route or pinned model the
 * client named, the endpoint, and every field of the client's request (a JSON object) but
 * `stream` and `stream_options`. Two requests get one key only when all of those are the same
 * JSON; any field the gateway does not know is part of the key. APR_EINVAL when a string is
 * missing or not UTF-8, or request is not an object. */
apr_status_t fl_cache_key(apr_pool_t *p, const char *org_id, const char *model_named,
                          const char *endpoint, json_t *request,
                          char out[FL_SHA256_HEX_LEN + 1]);

#endif
