#include <string.h>
#include <apr_strings.h>

#include "fl_openai.h"
#include "fl_json.h"
#include "fl_buf.h"

char *fl_openai_upstream_body(apr_pool_t *p, const fl_chat_request_t *cr, const char *model,
                              apr_size_t *plen)
{
    json_t *up = json_copy(cr->root); /* shallow: the messages are shared, not copied */
    char *s;
    json_object_set_new(up, "model", json_string(model));
    if (cr->stream && !cr->include_usage) {
        json_t *so = json_object_get(up, "stream_options");
        so = json_is_object(so) ? json_copy(so) : json_object();
        json_object_set_new(so, "include_usage", json_true());
        json_object_set_new(up, "stream_options", so);
    }
    s = fl_json_dump(p, up, 1);
    *plen = strlen(s);
    return s;
}

fl_error_t *fl_openai_parse_response(apr_pool_t *p, const char *body, apr_size_t len,
                                     fl_usage_t *usage)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    fl_error_t *e = NULL;
    if (!json_is_object(root) || !json_is_array(json_object_get(root, "choices"))) {
        e = fl_error_make(p, 502, "upstream_error", "upstream_error", NULL,
                          "the provider's answer is not a chat completion");
    }
    else {
        fl_usage_from_openai(usage, json_object_get(root, "usage"));
    }
    json_decref(root);
    return e;
}

fl_chunk_kind_e fl_openai_stream_chunk(apr_pool_t *p, const char *data, apr_size_t len,
                                       int strip_usage, fl_usage_t *usage,
                                       const char **out, apr_size_t *outlen)
{
    json_t *root, *u, *choices;
    fl_chunk_kind_e kind = FL_CHUNK_FORWARD;

    *out = data;
    *outlen = len;
    if (len == 6 && !memcmp(data, "[DONE]", 6)) {
        return FL_CHUNK_DONE;
    }
    if (!memchr(data, '{', len)) {
        return FL_CHUNK_FORWARD;
    }
    root = json_loadb(data, len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return FL_CHUNK_FORWARD;
    }
    if (json_object_get(root, "error")) {
        json_decref(root);
        return FL_CHUNK_ERROR;
    }
    u = json_object_get(root, "usage");
    if (json_is_object(u)) {
        fl_usage_from_openai(usage, u);
    }
    if (strip_usage && u) {
        choices = json_object_get(root, "choices");
        if (json_is_object(u) && json_is_array(choices) && json_array_size(choices) == 0) {
            kind = FL_CHUNK_DROP;
        }
        else {
            json_object_del(root, "usage");
            *out = fl_json_dump(p, root, 0);
            *outlen = strlen(*out);
        }
    }
    json_decref(root);
    return kind;
}

static const char *status_type(int status)
{
    switch (status) {
    case 429: return "rate_limit_error";
    case 504: return "timeout_error";
    case 502: return "upstream_error";
    default: return "invalid_request_error";
    }
}

/* The client's status for an upstream status: its own mistakes keep theirs, the gateway's
 * (credentials) and the provider's (5xx) become 502, a rate limit stays 429. */
static int client_status(int status)
{
    switch (status) {
    case 400: case 404: case 409: case 413: case 422: case 429:
        return status;
    case 408: case 504:
        return 504;
    default:
        return 502;
    }
}

fl_error_t *fl_openai_map_upstream_error(apr_pool_t *p, const char *provider, int status,
                                         apr_table_t *headers, const char *body,
                                         apr_size_t len)
{
    json_t *root = body ? json_loadb(body, len, 0, NULL) : NULL;
    json_t *err = json_object_get(root, "error");
    int cs = client_status(status);
    const char *msg = NULL, *type = NULL, *code = NULL, *param = NULL;
    fl_error_t *e;

    if (json_is_object(err)) {
        msg = fl_json_str(err, "message", NULL);
        type = fl_json_str(err, "type", NULL);
        code = fl_json_str(err, "code", NULL);
        param = fl_json_str(err, "param", NULL);
    }
    if (status == 401 || status == 403) {
        e = fl_error_make(p, cs, "upstream_error", "upstream_auth_failed", NULL,
                          "provider %s refused the gateway's credentials (HTTP %d)%s%s",
                          provider, status, msg ? ": " : "", msg ? msg : "");
    }
    else if (cs >= 500) {
        /* the provider's own code stays in the message; the client sees the gateway's */
        e = fl_error_make(p, cs, status_type(cs), cs == 504 ? "upstream_timeout" : "upstream_error",
                          NULL, "provider %s answered HTTP %d%s%s%s%s%s", provider, status,
                          code ? " (" : "", code ? code : "", code ? ")" : "",
                          msg ? ": " : "", msg ? msg : "");
    }
    else {
        /* the client's own mistake (4xx) or a rate limit: the provider's code and param pass */
        e = fl_error_make(p, cs, cs == 429 ? "rate_limit_error"
                                           : (type ? apr_pstrdup(p, type) : status_type(cs)),
                          code ? apr_pstrdup(p, code) : (cs == 429 ? "rate_limit_exceeded" : NULL),
                          param ? apr_pstrdup(p, param) : NULL,
                          "provider %s answered HTTP %d%s%s", provider, status,
                          msg ? ": " : "", msg ? msg : "");
    }
    if (headers) {
        const char *ra = apr_table_get(headers, "retry-after");
        const char *ram = apr_table_get(headers, "retry-after-ms");
        e->retry_after = ra ? apr_pstrdup(p, ra) : NULL;
        e->retry_after_ms = ram ? apr_pstrdup(p, ram) : NULL;
    }
    json_decref(root);
    return e;
}

/* --- a streamed answer's text -------------------------------------------------------------- */

struct fl_stream_text_t {
    fl_buf_t *text;
    int over;                    /* it went past max: no answer */
    const char *finish;          /* choices[0].finish_reason, once seen */
    apr_pool_t *p;
};

fl_stream_text_t *fl_stream_text_create(apr_pool_t *p, apr_size_t max)
{
    fl_stream_text_t *t = apr_pcalloc(p, sizeof(*t));
    t->text = fl_buf_create(p, max);
    t->p = p;
    return t;
}

void fl_stream_text_feed(fl_stream_text_t *t, const char *chunk, apr_size_t len)
{
    json_t *c, *choice, *content;
    const char *s;
    if (t->over || !(c = json_loadb(chunk, len, 0, NULL))) return;
    choice = json_array_get(json_object_get(c, "choices"), 0);
    content = json_object_get(json_object_get(choice, "delta"), "content");
    if (json_is_string(content) && fl_buf_append(t->text, json_string_value(content),
                                                 json_string_length(content)) != APR_SUCCESS) {
        t->over = 1;
    }
    if ((s = json_string_value(json_object_get(choice, "finish_reason")))) {
        t->finish = apr_pstrdup(t->p, s);
    }
    json_decref(c);
}

const char *fl_stream_text_answer(fl_stream_text_t *t, apr_pool_t *p, apr_size_t *len)
{
    json_t *o, *choice, *msg;
    const char *out;
    if (t->over || !t->text->len) return NULL;
    msg = json_object();
    json_object_set_new(msg, "role", json_string("assistant"));
    json_object_set_new(msg, "content", json_stringn(t->text->data, t->text->len));
    choice = json_object();
    json_object_set_new(choice, "index", json_integer(0));
    json_object_set_new(choice, "message", msg);
    json_object_set_new(choice, "finish_reason", t->finish ? json_string(t->finish) : json_null());
    o = json_object();
    json_object_set_new(o, "object", json_string("chat.completion"));
    json_object_set_new(o, "choices", json_array());
    json_array_append_new(json_object_get(o, "choices"), choice);
    out = fl_json_dump(p, o, 1);
    *len = strlen(out);
    return out;
}
