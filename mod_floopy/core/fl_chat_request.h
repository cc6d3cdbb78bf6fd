/* The client's chat request: the OpenAI Chat Completions body every client sends, parsed and
 * checked once. In the shared ground because the glue reads it before any provider is chosen
 * (model, stream, images decide the route) and every adapter then translates from it. */
#ifndef FL_CHAT_REQUEST_H
#define FL_CHAT_REQUEST_H

#include <apr_pools.h>
#include <jansson.h>

#include "fl_error.h"

typedef struct fl_chat_request_t {
    json_t *root;                /* owned by the pool it was parsed in */
    const char *model;
    int stream;
    int include_usage;           /* the client asked for the usage chunk */
    int has_images;              /* some message holds an image_url part */
} fl_chat_request_t;

/* Parses and checks a client's body; NULL and *perr on a bad request. */
fl_chat_request_t *fl_openai_parse_request(apr_pool_t *p, const char *body, apr_size_t len,
                                           fl_error_t **perr);

#endif
