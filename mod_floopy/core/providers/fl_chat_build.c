#include <string.h>
#include <apr_strings.h>

#include "fl_chat_build.h"
#include "fl_adapter.h"
#include "fl_json.h"
#include "fl_error.h"

void fl_oai_stream_init(fl_oai_stream_t *st, apr_pool_t *p, const char *model,
                        int include_usage)
{
    memset(st, 0, sizeof(*st));
    st->id = fl_completion_id(p);
    st->model = model;
    st->created = apr_time_sec(apr_time_now());
    st->include_usage = include_usage;
}

static json_t *chunk_head(const fl_oai_stream_t *st)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(st->id));
    json_object_set_new(o, "object", json_string("chat.completion.chunk"));
    json_object_set_new(o, "created", json_integer(st->created));
    json_object_set_new(o, "model", json_string(st->model));
    return o;
}

char *fl_oai_chunk(apr_pool_t *p, fl_oai_stream_t *st, json_t *delta, const char *finish_reason)
{
    json_t *o = chunk_head(st), *choice = json_object(), *choices = json_array();
    if (!delta) delta = json_object();
    if (!st->role_sent) {
        json_object_set_new(delta, "role", json_string("assistant"));
        st->role_sent = 1;
    }
    json_object_set_new(choice, "index", json_integer(0));
    json_object_set_new(choice, "delta", delta);
    json_object_set_new(choice, "logprobs", json_null());
    json_object_set_new(choice, "finish_reason", finish_reason ? json_string(finish_reason)
                                                               : json_null());
    json_array_append_new(choices, choice);
    json_object_set_new(o, "choices", choices);
    if (st->include_usage) json_object_set_new(o, "usage", json_null());
    return fl_json_dump(p, o, 1);
}

json_t *fl_oai_usage_json(const fl_usage_t *u)
{
    json_t *o = json_object(), *pd = json_object(), *cd = json_object();
    apr_int64_t pr = u->prompt > 0 ? u->prompt : 0, co = u->completion > 0 ? u->completion : 0;
    json_object_set_new(o, "prompt_tokens", json_integer(pr));
    json_object_set_new(o, "completion_tokens", json_integer(co));
    json_object_set_new(o, "total_tokens", json_integer(u->total > 0 ? u->total : pr + co));
    json_object_set_new(pd, "cached_tokens", json_integer(u->cached > 0 ? u->cached : 0));
    json_object_set_new(cd, "reasoning_tokens", json_integer(u->reasoning > 0 ? u->reasoning : 0));
    json_object_set_new(o, "prompt_tokens_details", pd);
    json_object_set_new(o, "completion_tokens_details", cd);
    return o;
}

char *fl_oai_usage_chunk(apr_pool_t *p, const fl_oai_stream_t *st, const fl_usage_t *u)
{
    json_t *o;
    if (!st->include_usage) return NULL;
    o = chunk_head(st);
    json_object_set_new(o, "choices", json_array());
    json_object_set_new(o, "usage", fl_oai_usage_json(u));
    return fl_json_dump(p, o, 1);
}

char *fl_oai_completion(apr_pool_t *p, const char *model, const char *content,
                        json_t *tool_calls, const char *finish_reason, const fl_usage_t *u)
{
    json_t *o = json_object(), *msg = json_object(), *choice = json_object();
    json_t *choices = json_array();
    json_object_set_new(o, "id", json_string(fl_completion_id(p)));
    json_object_set_new(o, "object", json_string("chat.completion"));
    json_object_set_new(o, "created", json_integer(apr_time_sec(apr_time_now())));
    json_object_set_new(o, "model", json_string(model));
    json_object_set_new(msg, "role", json_string("assistant"));
    json_object_set_new(msg, "content", content ? json_string(content) : json_null());
    json_object_set_new(msg, "refusal", json_null());
    if (tool_calls) json_object_set_new(msg, "tool_calls", tool_calls);
    json_object_set_new(choice, "index", json_integer(0));
    json_object_set_new(choice, "message", msg);
    json_object_set_new(choice, "logprobs", json_null());
    json_object_set_new(choice, "finish_reason", json_string(finish_reason ? finish_reason : "stop"));
    json_array_append_new(choices, choice);
    json_object_set_new(o, "choices", choices);
    json_object_set_new(o, "usage", fl_oai_usage_json(u));
    return fl_json_dump(p, o, 1);
}

json_t *fl_oai_tool_call(int index, const char *id, const char *name, const char *arguments)
{
    json_t *tc = json_object(), *fn = json_object();
    if (index >= 0) json_object_set_new(tc, "index", json_integer(index));
    if (id) {
        json_object_set_new(tc, "id", json_string(id));
        json_object_set_new(tc, "type", json_string("function"));
    }
    if (name) json_object_set_new(fn, "name", json_string(name));
    json_object_set_new(fn, "arguments", json_string(arguments ? arguments : ""));
    json_object_set_new(tc, "function", fn);
    return tc;
}

const char *fl_oai_content_text(apr_pool_t *p, const json_t *content)
{
    const char *s = "";
    size_t i;
    json_t *part;
    if (json_is_string(content)) return json_string_value(content);
    if (!json_is_array(content)) return "";
    json_array_foreach(content, i, part) {
        const char *t = fl_json_str(part, "text", NULL);
        if (t && !strcmp(fl_json_str(part, "type", ""), "text")) {
            s = *s ? apr_pstrcat(p, s, " ", t, NULL) : t;
        }
    }
    return s;
}

int fl_data_url_parse(apr_pool_t *p, const char *url, const char **mime, const char **b64)
{
    const char *semi, *comma;
    if (strncmp(url, "data:", 5)) return 0;
    semi = strstr(url, ";base64,");
    comma = strchr(url, ',');
    if (!semi || !comma || comma < semi) return 0;
    *mime = apr_pstrmemdup(p, url + 5, (apr_size_t)(semi - url - 5));
    *b64 = semi + 8;
    return 1;
}

char *fl_oai_error_event(apr_pool_t *p, const char *message, const char *type, const char *code)
{
    return fl_error_json(p, fl_error_make(p, 200, type, code, NULL, "%s", message));
}
