#include <string.h>
#include <apr_strings.h>

#include "fl_chat_request.h"
#include "fl_json.h"

static fl_error_t *type_error(apr_pool_t *p, const char *param, const char *want)
{
    return fl_error_invalid(p, "invalid_type", param, "'%s' must be %s", param, want);
}

static int has_image_part(const json_t *m)
{
    json_t *content = json_object_get(m, "content"), *part;
    size_t i;
    if (!json_is_array(content)) return 0;
    json_array_foreach(content, i, part) {
        if (!strcmp(fl_json_str(part, "type", ""), "image_url")) return 1;
    }
    return 0;
}

static fl_error_t *check_messages(apr_pool_t *p, json_t *msgs, fl_chat_request_t *cr)
{
    size_t i;
    json_t *m;
    if (!msgs) {
        return fl_error_invalid(p, "missing_required_parameter", "messages",
                                "'messages' is required");
    }
    if (!json_is_array(msgs)) return type_error(p, "messages", "an array");
    if (json_array_size(msgs) == 0) {
        return fl_error_invalid(p, "invalid_value", "messages",
                                "'messages' must hold at least one message");
    }
    json_array_foreach(msgs, i, m) {
        if (!json_is_object(m) || !json_is_string(json_object_get(m, "role"))) {
            return fl_error_invalid(p, "invalid_type",
                                    apr_psprintf(p, "messages[%lu]", (unsigned long)i),
                                    "messages[%lu] must be an object with a string 'role'",
                                    (unsigned long)i);
        }
        cr->has_images |= has_image_part(m);
    }
    return NULL;
}

static fl_error_t *check_stream(apr_pool_t *p, json_t *root, fl_chat_request_t *cr)
{
    json_t *st = json_object_get(root, "stream"), *so = json_object_get(root, "stream_options");
    json_t *iu;
    if (st && !json_is_boolean(st) && !json_is_null(st)) return type_error(p, "stream", "a boolean");
    cr->stream = json_is_true(st);
    if (so && !json_is_null(so)) {
        if (!json_is_object(so)) return type_error(p, "stream_options", "an object");
        iu = json_object_get(so, "include_usage");
        if (iu && !json_is_boolean(iu) && !json_is_null(iu)) {
            return type_error(p, "stream_options.include_usage", "a boolean");
        }
        cr->include_usage = json_is_true(iu);
    }
    return NULL;
}

fl_chat_request_t *fl_openai_parse_request(apr_pool_t *p, const char *body, apr_size_t len,
                                           fl_error_t **perr)
{
    json_error_t jerr;
    fl_chat_request_t *cr = apr_pcalloc(p, sizeof(*cr));
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr), *model;

    *perr = NULL;
    if (!root) {
        *perr = fl_error_invalid(p, "invalid_json", NULL,
                                 "the body is not valid JSON: %s (line %d, column %d)",
                                 jerr.text, jerr.line, jerr.column);
        return NULL;
    }
    cr->root = fl_json_pool_own(p, root);
    if (!json_is_object(root)) {
        *perr = fl_error_invalid(p, "invalid_json", NULL, "the body must be a JSON object");
        return NULL;
    }
    model = json_object_get(root, "model");
    if (!model) {
        *perr = fl_error_invalid(p, "missing_required_parameter", "model", "'model' is required");
    }
    else if (!json_is_string(model) || !*json_string_value(model)) {
        *perr = type_error(p, "model", "a non-empty string");
    }
    else if (!(*perr = check_messages(p, json_object_get(root, "messages"), cr))) {
        *perr = check_stream(p, root, cr);
    }
    if (*perr) {
        return NULL;
    }
    cr->model = json_string_value(model);
    return cr;
}
