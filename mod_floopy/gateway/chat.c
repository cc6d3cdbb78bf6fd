/* POST /chat/completions: OpenAI's Chat Completions, the internal shape itself, so its
 * translators pass the request, the answer and the stream through as they are. */
#include <apr_strings.h>

#include "gateway.h"

static apr_status_t chat_event(floopy_exchange_t *x, fl_chunk_kind_e kind, const char *data,
                               apr_size_t len)
{
    return floopy_exchange_write_event(x, NULL, data, len);
}

static fl_error_t *chat_answer(floopy_exchange_t *x, const char *in, apr_size_t len,
                               const char **pout, apr_size_t *poutlen)
{
    *pout = in;
    *poutlen = len;
    return NULL;
}

const floopy_ingress_t floopy_ingress_chat = {
    .name = "chat.completions",
    .parse = fl_openai_parse_request,
    .answer = chat_answer,
    .event = chat_event,
    .fail = floopy_send_error,
};

int floopy_handle_chat(request_rec *r, const floopy_principal_t *who, const char *const *arg)
{
    return floopy_gateway_run(r, who, &floopy_ingress_chat);
}
