/* Google's generateContent wire format, reached two ways: the Gemini API (type=gemini, an API
 * key in x-goog-api-key) and Vertex AI (type=vertex, a service account's OAuth2 token). The
 * translation both ways is the same; only the URL and the credential differ.
 *
 * Gemini gives function calls no ids and matches results by name, so the ids handed to the
 * client are made up here, and a result's name is found through its id in the earlier assistant
 * turn. Gemini 3 attaches an opaque thoughtSignature to function calls that must come back on
 * the next request; the client only keeps the id, so the signature travels inside it. */
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include <apr_escape.h>
#include <apr_lib.h>

#include "fl_adapter.h"
#include "fl_gtoken.h"
#include "fl_json.h"
#include "fl_chat_build.h"
#include "fl_sse.h"

#define MAX_SSE_EVENT (8 * 1024 * 1024)
#define GEMINI_BASE "https://generativelanguage.googleapis.com/v1beta"
#define GOOGLE_TOKEN_URI "https://oauth2.googleapis.com/token"
/* Between the made-up part of a tool-call id and the thoughtSignature: "ts" a standard base64
 * signature written URL-safe, "tr" any other one as it came. */
#define SIG_B64 "__ts_"
#define SIG_RAW "__tr_"
/* A token exchange is a small form post: it gets at most this long, whatever timeout= says. */
#define TOKEN_TIMEOUT_MS 30000L

typedef struct gem_conf_t {
    const char *model_base;      /* the URL up to and including ".../models/" */
    fl_gsa_t *sa;                /* Vertex: the service account */
} gem_conf_t;

static const char *const vertex_options[] = {
    "project", "location", "service_account_file", "token_url", NULL
};

/* --- configuration ---------------------------------------------------------------------- */

static int resource_name(const char *s)
{
    if (!s || !*s) return 0;
    for (; *s; s++) {
        if (!apr_isalnum(*s) && *s != '-' && *s != '_' && *s != '.') return 0;
    }
    return 1;
}

static const char *vertex_check(const fl_provider_t *pv, apr_pool_t *p)
{
    static const char *const need[] = { "project", "location", "service_account_file" };
    size_t i;
    for (i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
        if (!apr_table_get(pv->opts, need[i])) {
            return apr_psprintf(p, "type=vertex needs %s=", need[i]);
        }
    }
    if (!resource_name(apr_table_get(pv->opts, "project"))) {
        return "project= may hold only letters, digits, '-', '_', '.'";
    }
    if (!resource_name(apr_table_get(pv->opts, "location"))) {
        return "location= may hold only letters, digits, '-', '_', '.'";
    }
    return NULL;
}

static const char *gemini_configure(fl_provider_t *pv, apr_pool_t *p)
{
    gem_conf_t *c = apr_pcalloc(p, sizeof(*c));
    c->model_base = apr_pstrcat(p, pv->resolved_base ? pv->resolved_base : GEMINI_BASE,
                                "/models/", NULL);
    pv->adapter_conf = c;
    return NULL;
}

static const char *vertex_configure(fl_provider_t *pv, apr_pool_t *p)
{
    gem_conf_t *c = apr_pcalloc(p, sizeof(*c));
    const char *project = apr_table_get(pv->opts, "project");
    const char *loc = apr_table_get(pv->opts, "location");
    const char *token_url = apr_table_get(pv->opts, "token_url");
    const char *base = pv->resolved_base, *err;

    if (!project || !loc || !apr_table_get(pv->opts, "service_account_file")) {
        return "type=vertex needs project=, location= and service_account_file=";
    }
    if ((err = fl_gsa_load(p, apr_table_get(pv->opts, "service_account_file"), &c->sa))) {
        return err;
    }
    if (token_url) c->sa->token_uri = token_url;
    else if (!c->sa->token_uri) c->sa->token_uri = GOOGLE_TOKEN_URI;
    if (!base) {
        base = !strcmp(loc, "global") ? "https://aiplatform.googleapis.com/v1"
             : apr_pstrcat(p, "https://", loc, "-aiplatform.googleapis.com/v1", NULL);
    }
    c->model_base = apr_pstrcat(p, base, "/projects/", project, "/locations/", loc,
                                "/publishers/google/models/", NULL);
    pv->adapter_conf = c;
    return NULL;
}

static apr_status_t vertex_child_init(const fl_provider_t *pv, apr_pool_t *pchild, void **ps)
{
    const gem_conf_t *c = pv->adapter_conf;
    return fl_gtoken_create((fl_gtoken_t **)ps, pchild, c->sa);
}

/* --- the request ------------------------------------------------------------------------ */

static json_t *text_part(const char *t)
{
    return json_pack("{s:s}", "text", t);
}

static const char *mime_from_url(const char *url)
{
    static const char *const map[][2] = {
        { ".png", "image/png" }, { ".gif", "image/gif" }, { ".webp", "image/webp" },
        { ".heic", "image/heic" }, { ".heif", "image/heif" }, { ".pdf", "application/pdf" },
    };
    const char *end = url + strcspn(url, "?#");
    size_t i, n;
    for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        n = strlen(map[i][0]);
        if ((size_t)(end - url) > n && !strncasecmp(end - n, map[i][0], n)) return map[i][1];
    }
    return "image/jpeg";
}

/* A data URL goes inline; any other URL as a file reference Google fetches itself. */
static json_t *image_part(apr_pool_t *p, const json_t *part)
{
    const char *url = fl_json_str(json_object_get(part, "image_url"), "url", NULL), *mime, *b64;
    if (!url) url = fl_json_str(part, "image_url", NULL);
    if (!url) return NULL;
    if (fl_data_url_parse(p, url, &mime, &b64)) {
        return json_pack("{s:{s:s,s:s}}", "inlineData", "mimeType", mime, "data", b64);
    }
    return json_pack("{s:{s:s,s:s}}", "fileData", "mimeType", mime_from_url(url), "fileUri", url);
}

static json_t *content_parts(apr_pool_t *p, const json_t *content, fl_error_t **err)
{
    json_t *parts = json_array(), *part;
    size_t i;
    if (json_is_string(content)) {
        json_array_append_new(parts, text_part(json_string_value(content)));
        return parts;
    }
    json_array_foreach(content, i, part) {
        const char *type = fl_json_str(part, "type", "");
        if (!strcmp(type, "text")) {
            json_array_append_new(parts, text_part(fl_json_str(part, "text", "")));
        }
        else if (!strcmp(type, "image_url")) {
            json_t *img = image_part(p, part);
            if (!img) {
                *err = fl_error_invalid(p, "invalid_value", "messages",
                                        "an image_url part has no url");
                json_decref(parts);
                return NULL;
            }
            json_array_append_new(parts, img);
        }
    }
    return parts;
}

/* "call_" and 24 alphanumerics, then the signature when there is one. */
static const char *tool_call_id(apr_pool_t *p, const char *sig)
{
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char rnd[24];
    char id[5 + 24 + 1];
    char *s;
    int i, b64 = 1;
    apr_generate_random_bytes(rnd, sizeof(rnd));
    memcpy(id, "call_", 5);
    for (i = 0; i < 24; i++) id[5 + i] = alnum[rnd[i] % 62];
    id[29] = '\0';
    if (!sig || !*sig) return apr_pstrdup(p, id);
    for (i = 0; sig[i]; i++) {
        if (!apr_isalnum(sig[i]) && !strchr("+/=", sig[i])) b64 = 0;
    }
    if (!b64) return apr_pstrcat(p, id, SIG_RAW, sig, NULL);
    s = apr_pstrcat(p, id, SIG_B64, sig, NULL);
    for (i = 29 + 5; s[i]; i++) {
        if (s[i] == '+') s[i] = '-';
        else if (s[i] == '/') s[i] = '_';
    }
    return s;
}

/* The thoughtSignature a tool-call id carries, or NULL. */
static const char *id_signature(apr_pool_t *p, const char *id)
{
    const char *m = strstr(id, SIG_B64);
    char *s;
    size_t i;
    if (!m) {
        m = strstr(id, SIG_RAW);
        return m ? m + strlen(SIG_RAW) : NULL;
    }
    s = apr_pstrdup(p, m + strlen(SIG_B64));
    for (i = 0; s[i]; i++) {
        if (s[i] == '-') s[i] = '+';
        else if (s[i] == '_') s[i] = '/';
    }
    return s;
}

static json_t *function_call_part(apr_pool_t *p, const json_t *tc, fl_error_t **err)
{
    const json_t *fn = json_object_get(tc, "function");
    const char *args = fl_json_str(fn, "arguments", ""), *id = fl_json_str(tc, "id", "");
    const char *sig = id_signature(p, id);
    json_t *a = *args ? json_loads(args, JSON_DECODE_ANY, NULL) : json_object(), *part;
    if (!json_is_object(a)) {
        json_decref(a);
        *err = fl_error_invalid(p, "invalid_value", "messages",
                                "the arguments of tool call %s are not a JSON object", id);
        return NULL;
    }
    part = json_pack("{s:{s:s,s:o}}", "functionCall", "name", fl_json_str(fn, "name", ""),
                     "args", a);
    if (sig) json_object_set_new(part, "thoughtSignature", json_string(sig));
    return part;
}

static json_t *assistant_parts(apr_pool_t *p, const json_t *msg, fl_error_t **err)
{
    const json_t *content = json_object_get(msg, "content"), *tc;
    const char *text = fl_oai_content_text(p, content);
    json_t *parts = json_array(), *part;
    size_t i;
    if (*text) json_array_append_new(parts, text_part(text));
    json_array_foreach(json_object_get(msg, "tool_calls"), i, tc) {
        if (!(part = function_call_part(p, tc, err))) {
            json_decref(parts);
            return NULL;
        }
        json_array_append_new(parts, part);
    }
    return parts;
}

/* The function a tool result answers: Gemini matches by name, the client by id. */
static const char *tool_name(const json_t *messages, size_t before, const char *id)
{
    size_t i, j;
    for (i = before; i-- > 0;) {
        const json_t *m = json_array_get(messages, i), *tc;
        if (strcmp(fl_json_str(m, "role", ""), "assistant")) continue;
        json_array_foreach(json_object_get(m, "tool_calls"), j, tc) {
            if (!strcmp(fl_json_str(tc, "id", ""), id)) {
                return fl_json_str(json_object_get(tc, "function"), "name", NULL);
            }
        }
    }
    return NULL;
}

static json_t *function_response_part(apr_pool_t *p, const json_t *messages, size_t i,
                                      fl_error_t **err)
{
    const json_t *m = json_array_get(messages, i);
    const char *id = fl_json_str(m, "tool_call_id", ""), *name = tool_name(messages, i, id);
    const char *text = fl_oai_content_text(p, json_object_get(m, "content"));
    json_t *resp;
    if (!name) {
        *err = fl_error_invalid(p, "invalid_value", "messages",
                                "tool message with tool_call_id '%s' answers no earlier tool call",
                                id);
        return NULL;
    }
    /* Google wants an object; a result that is not one goes under "output", as it documents */
    resp = json_loads(text, 0, NULL);
    if (!json_is_object(resp)) {
        json_decref(resp);
        resp = json_pack("{s:s}", "output", text);
    }
    return json_pack("{s:{s:s,s:o}}", "functionResponse", "name", name, "response", resp);
}

/* Appends parts as a turn of role, or to the last turn when it has that role already: Gemini
 * wants the answers to parallel calls together, and alternating turns. */
static void add_turn(json_t *contents, const char *role, json_t *parts)
{
    json_t *last = json_array_get(contents, json_array_size(contents) - 1);
    if (!json_array_size(parts)) {
        json_decref(parts);
        return;
    }
    if (last && !strcmp(fl_json_str(last, "role", ""), role)) {
        json_array_extend(json_object_get(last, "parts"), parts);
        json_decref(parts);
        return;
    }
    json_array_append_new(contents, json_pack("{s:s,s:o}", "role", role, "parts", parts));
}

static fl_error_t *build_contents(apr_pool_t *p, const json_t *messages, json_t *req)
{
    json_t *contents = json_array(), *sys = json_array(), *parts;
    fl_error_t *err = NULL;
    size_t i;
    for (i = 0; i < json_array_size(messages) && !err; i++) {
        const json_t *m = json_array_get(messages, i);
        const char *role = fl_json_str(m, "role", "");
        if (!strcmp(role, "system") || !strcmp(role, "developer")) {
            json_array_append_new(sys, text_part(fl_oai_content_text(p, json_object_get(m, "content"))));
        }
        else if (!strcmp(role, "assistant")) {
            if ((parts = assistant_parts(p, m, &err))) add_turn(contents, "model", parts);
        }
        else if (!strcmp(role, "tool")) {
            if ((parts = function_response_part(p, messages, i, &err))) {
                add_turn(contents, "user", json_pack("[o]", parts));
            }
        }
        else if ((parts = content_parts(p, json_object_get(m, "content"), &err))) {
            add_turn(contents, "user", parts);
        }
    }
    if (json_array_size(sys)) json_object_set_new(req, "systemInstruction", json_pack("{s:o}", "parts", sys));
    else json_decref(sys);
    json_object_set_new(req, "contents", contents);
    return err;
}

/* JSON Schema keywords OpenAI's strict mode adds that Gemini's schema subset refuses. */
static void scrub_schema(json_t *s)
{
    const char *k;
    json_t *v;
    size_t i;
    if (json_is_array(s)) {
        json_array_foreach(s, i, v) scrub_schema(v);
        return;
    }
    if (!json_is_object(s)) return;
    json_object_del(s, "$schema");
    json_object_del(s, "additionalProperties");
    json_object_del(s, "strict");
    json_object_foreach(s, k, v) scrub_schema(v);
}

static void build_tools(const json_t *root, json_t *req)
{
    json_t *decls = json_array(), *t;
    const json_t *tc = json_object_get(root, "tool_choice");
    size_t i;
    json_array_foreach(json_object_get(root, "tools"), i, t) {
        const json_t *fn = json_object_get(t, "function");
        json_t *d, *params = json_object_get(fn, "parameters");
        if (!fl_json_str(fn, "name", NULL)) continue;
        d = json_pack("{s:s}", "name", fl_json_str(fn, "name", ""));
        if (fl_json_str(fn, "description", NULL)) {
            json_object_set_new(d, "description", json_string(fl_json_str(fn, "description", "")));
        }
        if (json_is_object(params)) {
            json_t *copy = json_deep_copy(params);
            scrub_schema(copy);
            json_object_set_new(d, "parameters", copy);
        }
        json_array_append_new(decls, d);
    }
    if (!json_array_size(decls)) {
        json_decref(decls);
        return;
    }
    json_object_set_new(req, "tools", json_pack("[{s:o}]", "functionDeclarations", decls));
    if (json_is_string(tc)) {
        const char *s = json_string_value(tc);
        const char *mode = !strcmp(s, "none") ? "NONE" : !strcmp(s, "required") ? "ANY" : "AUTO";
        json_object_set_new(req, "toolConfig",
                            json_pack("{s:{s:s}}", "functionCallingConfig", "mode", mode));
    }
    else if (json_is_object(tc)) {
        const char *name = fl_json_str(json_object_get(tc, "function"), "name", "");
        json_object_set_new(req, "toolConfig",
                            json_pack("{s:{s:s,s:[s]}}", "functionCallingConfig", "mode", "ANY",
                                      "allowedFunctionNames", name));
    }
}

static void copy_number(const json_t *from, const char *k, json_t *to, const char *gk)
{
    json_t *v = json_object_get(from, k);
    if (json_is_number(v)) json_object_set(to, gk, v);
}

static void build_generation_config(const json_t *root, json_t *req)
{
    json_t *gc = json_object(), *stop = json_object_get(root, "stop");
    const json_t *rf = json_object_get(root, "response_format");
    copy_number(root, "temperature", gc, "temperature");
    copy_number(root, "top_p", gc, "topP");
    copy_number(root, "max_tokens", gc, "maxOutputTokens");
    copy_number(root, "max_completion_tokens", gc, "maxOutputTokens");
    copy_number(root, "presence_penalty", gc, "presencePenalty");
    copy_number(root, "frequency_penalty", gc, "frequencyPenalty");
    copy_number(root, "seed", gc, "seed");
    if (json_is_string(stop)) json_object_set_new(gc, "stopSequences", json_pack("[O]", stop));
    else if (json_is_array(stop) && json_array_size(stop)) json_object_set(gc, "stopSequences", stop);
    if (!strcmp(fl_json_str(rf, "type", ""), "json_object")) {
        json_object_set_new(gc, "responseMimeType", json_string("application/json"));
    }
    if (json_object_size(gc)) json_object_set_new(req, "generationConfig", gc);
    else json_decref(gc);
}

static fl_error_t *build_body(const fl_call_t *call, fl_upstream_t *up)
{
    const json_t *root = call->cr->root;
    const gem_conf_t *c = call->provider->adapter_conf;
    const char *model = call->model->name;
    json_t *req = json_object();
    fl_error_t *err = build_contents(call->pool, json_object_get(root, "messages"), req);
    if (err) {
        json_decref(req);
        return err;
    }
    build_tools(root, req);
    build_generation_config(root, req);
    up->body = fl_json_dump(call->pool, req, 1);
    up->body_len = strlen(up->body);
    /* Google's own resource name "models/x" names the same model as "x" */
    if (!strncmp(model, "models/", 7)) model += 7;
    up->url = apr_pstrcat(call->pool, c->model_base, apr_pescape_path_segment(call->pool, model),
                          call->cr->stream ? ":streamGenerateContent?alt=sse" : ":generateContent",
                          NULL);
    up->accept = call->cr->stream ? "text/event-stream" : "application/json";
    return NULL;
}

static fl_error_t *gemini_prepare(const fl_call_t *call, fl_upstream_t *up)
{
    fl_error_t *err = build_body(call, up);
    if (!err && call->provider->api_key) {
        fl_upstream_header(up, "x-goog-api-key", call->provider->api_key);
    }
    return err;
}

static fl_error_t *vertex_prepare(const fl_call_t *call, fl_upstream_t *up)
{
    const fl_provider_t *pv = call->provider;
    const char *token;
    fl_error_t *err = build_body(call, up);
    if (err) return err;
    if (!call->state || !call->http) {
        return fl_error_make(call->pool, 503, "service_unavailable", "provider_unavailable", NULL,
                             "provider %s has no token cache in this process", pv->name);
    }
    if ((err = fl_gtoken_get(call->state, call->http, call->pool, call->now, pv->connect_timeout_ms,
                             pv->timeout_ms < TOKEN_TIMEOUT_MS ? pv->timeout_ms : TOKEN_TIMEOUT_MS,
                             pv->name, &token))) {
        return err;
    }
    fl_upstream_header(up, "Authorization", apr_pstrcat(call->pool, "Bearer ", token, NULL));
    return NULL;
}

/* --- answers ---------------------------------------------------------------------------- */

static void take_usage(const json_t *root, fl_usage_t *u)
{
    const json_t *um = json_object_get(root, "usageMetadata");
    apr_int64_t prompt, tool, cand, thoughts, cached;
    if (!json_is_object(um)) return;
    prompt = fl_json_count(um, "promptTokenCount");
    tool = fl_json_count(um, "toolUsePromptTokenCount");
    cand = fl_json_count(um, "candidatesTokenCount");
    thoughts = fl_json_count(um, "thoughtsTokenCount");
    cached = fl_json_count(um, "cachedContentTokenCount");
    /* promptTokenCount includes the cached tokens; candidates exclude the thoughts */
    u->prompt = (prompt > 0 ? prompt : 0) + (tool > 0 ? tool : 0);
    u->completion = (cand > 0 ? cand : 0) + (thoughts > 0 ? thoughts : 0);
    u->reasoning = thoughts > 0 ? thoughts : 0;
    u->cached = cached > 0 ? cached : 0;
    u->total = u->prompt + u->completion;
}

static const char *map_finish(const char *fr, int has_calls)
{
    static const char *const filtered[] = {
        "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
        "LANGUAGE", NULL
    };
    const char *const *f;
    if (!strcmp(fr, "MAX_TOKENS")) return "length";
    for (f = filtered; *f; f++) {
        if (!strcmp(fr, *f)) return "content_filter";
    }
    /* Gemini says STOP after function calls too */
    return has_calls ? "tool_calls" : "stop";
}

/* What one candidate's parts say: the text (thought summaries left out) and the function
 * calls, numbered from first_index. */
typedef struct parts_t {
    const char *text;            /* NULL when no text part had any */
    json_t *calls;               /* array of OpenAI tool calls, or NULL */
} parts_t;

static void read_parts(apr_pool_t *p, const json_t *cand, int stream, int first_index,
                       parts_t *out)
{
    const json_t *part;
    size_t i;
    out->text = NULL;
    out->calls = NULL;
    json_array_foreach(json_object_get(json_object_get(cand, "content"), "parts"), i, part) {
        const json_t *fc = json_object_get(part, "functionCall");
        const char *t = fl_json_str(part, "text", NULL);
        if (json_is_object(fc)) {
            json_t *args = json_object_get(fc, "args");
            const char *a = args ? fl_json_dump(p, args, 0) : "{}";
            const char *id = tool_call_id(p, fl_json_str(part, "thoughtSignature", NULL));
            int index = first_index + (out->calls ? (int)json_array_size(out->calls) : 0);
            if (!out->calls) out->calls = json_array();
            json_array_append_new(out->calls, fl_oai_tool_call(stream ? index : -1, id,
                                                               fl_json_str(fc, "name", ""), a));
        }
        else if (t && *t && !json_is_true(json_object_get(part, "thought"))) {
            out->text = out->text ? apr_pstrcat(p, out->text, t, NULL) : t;
        }
    }
}

static fl_error_t *bad_answer(apr_pool_t *p, const char *provider, const char *why)
{
    return fl_error_make(p, 502, "upstream_error", "upstream_error", NULL,
                         "provider %s sent an answer the gateway cannot read: %s", provider, why);
}

static fl_error_t *gem_response(const fl_call_t *call, const char *body, apr_size_t len,
                                const char **out, apr_size_t *outlen, fl_usage_t *usage)
{
    apr_pool_t *p = call->pool;
    json_t *root = fl_json_pool_own(p, json_loadb(body, len, 0, NULL));
    const json_t *cand;
    const char *fr;
    parts_t parts;
    char *s;

    if (!json_is_object(root)) return bad_answer(p, call->provider->name, "not a JSON object");
    cand = json_array_get(json_object_get(root, "candidates"), 0);
    if (!cand && !json_object_get(root, "promptFeedback")) {
        return bad_answer(p, call->provider->name, "no candidates");
    }
    take_usage(root, usage);
    read_parts(p, cand, 0, 0, &parts);
    /* a prompt blocked before any candidate has no finishReason: the filter stopped it */
    fr = cand ? map_finish(fl_json_str(cand, "finishReason", "STOP"), parts.calls != NULL)
              : "content_filter";
    s = fl_oai_completion(p, call->model->name, parts.text, parts.calls, fr, usage);
    *out = s;
    *outlen = strlen(s);
    return NULL;
}

/* --- errors ----------------------------------------------------------------------------- */

/* google.rpc.RetryInfo's retryDelay ("7s", "34.4s") in milliseconds, or -1. */
static apr_int64_t retry_delay_ms(const json_t *details)
{
    const json_t *d;
    size_t i;
    json_array_foreach(details, i, d) {
        const char *type = fl_json_str(d, "@type", ""), *delay = fl_json_str(d, "retryDelay", NULL);
        char *end;
        double sec;
        if (!strstr(type, "RetryInfo") || !delay) continue;
        sec = strtod(delay, &end);
        if (end != delay && sec >= 0 && (!*end || !strcmp(end, "s"))) {
            return (apr_int64_t)(sec * 1000 + 0.5); /* whole ms; no libm for ceil */
        }
    }
    return -1;
}

static int has_reason(const json_t *details, const char *reason)
{
    const json_t *d;
    size_t i;
    json_array_foreach(details, i, d) {
        if (!strcmp(fl_json_str(d, "reason", ""), reason)) return 1;
    }
    return 0;
}

/* Google's {"error":{code,message,status,details}} said as OpenAI's, handed to the common
 * mapping; RetryInfo becomes retry-after when the answer had no such header. */
static fl_error_t *gem_error(const fl_call_t *call, int status, apr_table_t *headers,
                             const char *body, apr_size_t len)
{
    apr_pool_t *p = call->pool;
    json_t *root = fl_json_pool_own(p, body ? json_loadb(body, len, 0, NULL) : NULL);
    const json_t *err, *details;
    const char *gstatus, *ob;
    apr_table_t *h = headers ? apr_table_copy(p, headers) : apr_table_make(p, 2);
    apr_int64_t delay;
    json_t *oe;

    if (json_is_array(root)) root = json_array_get(root, 0); /* the non-SSE stream shape */
    err = json_object_get(root, "error");
    details = json_object_get(err, "details");
    gstatus = fl_json_str(err, "status", NULL);
    /* a bad API key comes back as 400 INVALID_ARGUMENT; it is the gateway's credential */
    if (status == 400 && has_reason(details, "API_KEY_INVALID")) status = 401;
    oe = json_pack("{s:s}", "message", fl_json_str(err, "message", gstatus ? gstatus : "no detail"));
    if (status == 429) json_object_set_new(oe, "code", json_string("rate_limit_exceeded"));
    else if (gstatus) json_object_set_new(oe, "code", json_string(apr_pstrdup(p, gstatus)));
    if (status == 429 || status == 503) {
        if ((delay = retry_delay_ms(details)) >= 0 && !apr_table_get(h, "retry-after")) {
            apr_table_setn(h, "retry-after", apr_psprintf(p, "%" APR_INT64_T_FMT,
                                                          (delay + 999) / 1000));
            if (!apr_table_get(h, "retry-after-ms")) {
                apr_table_setn(h, "retry-after-ms", apr_psprintf(p, "%" APR_INT64_T_FMT, delay));
            }
        }
    }
    {
        json_t *code = json_object_get(oe, "code");
        if (json_is_string(code) && status != 429) {
            char *lc = apr_pstrdup(p, json_string_value(code)), *c;
            for (c = lc; *c; c++) *c = (char)apr_tolower(*c);
            json_object_set_new(oe, "code", json_string(lc));
        }
    }
    ob = fl_json_dump(p, json_pack("{s:o}", "error", oe), 1);
    return fl_openai_map_upstream_error(p, call->provider->name, status, h, ob, strlen(ob));
}

/* --- streams ---------------------------------------------------------------------------- */

struct fl_stream_t {
    fl_sse_t *sse;
    apr_pool_t *chunk_pool;      /* cleared for every event: memory stays flat on long streams */
    const fl_call_t *call;
    fl_usage_t *usage;
    fl_emit_cb *emit;
    void *baton;
    fl_oai_stream_t st;
    int ncalls;                  /* tool calls so far: the next one's index */
    int over;                    /* finished or failed: later bytes are ignored */
};

static apr_status_t stream_fail(fl_stream_t *s, const char *message, const char *type,
                                const char *code)
{
    const char *ev = fl_oai_error_event(s->chunk_pool, message, type, code);
    s->over = 1;
    return s->emit(s->baton, FL_CHUNK_ERROR, ev, strlen(ev));
}

static apr_status_t stream_error_event(fl_stream_t *s, int status, const char *data,
                                       apr_size_t len)
{
    fl_call_t c = *s->call;
    fl_error_t *e;
    c.pool = s->chunk_pool;
    e = gem_error(&c, status, NULL, data, len);
    return stream_fail(s, e->message, e->type, e->code);
}

static apr_status_t stream_finish(fl_stream_t *s, const char *fr)
{
    apr_pool_t *p = s->chunk_pool;
    const char *c = fl_oai_chunk(p, &s->st, NULL, fr), *u;
    apr_status_t rv = s->emit(s->baton, FL_CHUNK_FORWARD, c, strlen(c));
    s->over = 1;
    if (rv != APR_SUCCESS) return rv;
    if ((u = fl_oai_usage_chunk(p, &s->st, s->usage))
        && (rv = s->emit(s->baton, FL_CHUNK_FORWARD, u, strlen(u))) != APR_SUCCESS) {
        return rv;
    }
    return s->emit(s->baton, FL_CHUNK_DONE, "[DONE]", 6);
}

static apr_status_t stream_chunk(fl_stream_t *s, const json_t *root)
{
    apr_pool_t *p = s->chunk_pool;
    const json_t *cand = json_array_get(json_object_get(root, "candidates"), 0);
    const char *fr = fl_json_str(cand, "finishReason", NULL);
    apr_status_t rv;
    parts_t parts;

    take_usage(root, s->usage);
    read_parts(p, cand, 1, s->ncalls, &parts);
    if (parts.text || parts.calls) {
        json_t *delta = json_object();
        const char *c;
        if (parts.text) json_object_set_new(delta, "content", json_string(parts.text));
        if (parts.calls) {
            s->ncalls += (int)json_array_size(parts.calls);
            json_object_set_new(delta, "tool_calls", parts.calls);
        }
        c = fl_oai_chunk(p, &s->st, delta, NULL);
        if ((rv = s->emit(s->baton, FL_CHUNK_FORWARD, c, strlen(c))) != APR_SUCCESS) return rv;
    }
    if (fr) return stream_finish(s, map_finish(fr, s->ncalls > 0));
    if (!cand && json_object_get(json_object_get(root, "promptFeedback"), "blockReason")) {
        return stream_finish(s, "content_filter");
    }
    return APR_SUCCESS;
}

static apr_status_t gem_event(void *baton, const char *event, const char *data, apr_size_t len)
{
    fl_stream_t *s = baton;
    json_t *root;
    const json_t *err;
    apr_status_t rv;
    if (s->over) return APR_SUCCESS;
    apr_pool_clear(s->chunk_pool);
    root = json_loadb(data, len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return stream_fail(s, apr_psprintf(s->chunk_pool, "provider %s sent a stream event that "
                                           "is not a JSON object", s->call->provider->name),
                           "upstream_error", "upstream_error");
    }
    if (json_is_object(err = json_object_get(root, "error"))) {
        json_int_t code = json_integer_value(json_object_get(err, "code"));
        rv = stream_error_event(s, code >= 400 ? (int)code : 500, data, len);
    }
    else rv = stream_chunk(s, root);
    json_decref(root);
    return rv;
}

static apr_status_t gem_stream_open(const fl_call_t *call, fl_usage_t *usage, fl_emit_cb *emit,
                                    void *baton, fl_stream_t **ps)
{
    fl_stream_t *s = apr_pcalloc(call->pool, sizeof(*s));
    apr_status_t rv = apr_pool_create(&s->chunk_pool, call->pool);
    if (rv != APR_SUCCESS) return rv;
    s->call = call;
    s->usage = usage;
    s->emit = emit;
    s->baton = baton;
    fl_oai_stream_init(&s->st, call->pool, call->model->name, call->cr->include_usage);
    *ps = s;
    return fl_sse_create(&s->sse, call->pool, MAX_SSE_EVENT, gem_event, s);
}

static apr_status_t gem_stream_feed(fl_stream_t *s, const char *buf, apr_size_t len)
{
    return s->over ? APR_SUCCESS : fl_sse_feed(s->sse, buf, len);
}

const fl_adapter_t fl_adapter_gemini = {
    .type = "gemini", .vision = 1,
    .configure = gemini_configure,
    .prepare = gemini_prepare, .response = gem_response, .error = gem_error,
    .stream_open = gem_stream_open, .stream_feed = gem_stream_feed,
};

const fl_adapter_t fl_adapter_vertex = {
    .type = "vertex", .vision = 1, .options = vertex_options,
    .check = vertex_check, .configure = vertex_configure, .child_init = vertex_child_init,
    .prepare = vertex_prepare, .response = gem_response, .error = gem_error,
    .stream_open = gem_stream_open, .stream_feed = gem_stream_feed,
};
