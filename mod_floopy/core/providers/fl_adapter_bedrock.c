/* AWS Bedrock Converse and ConverseStream (type=bedrock): OpenAI chat requests become Converse
 * bodies signed with SigV4 (or sent with a Bedrock API key), Converse answers and the binary
 * event stream of ConverseStream become OpenAI completions and chunks, AWS errors OpenAI's.
 *
 * Credentials are read once at start-up: from credentials_file= (AWS's shared-credentials
 * format, profile= picks the section, "default" otherwise), else from the environment variables
 * access_key_env= / secret_key_env= / session_token_env= name (AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN by default). key_env= / key_file= instead give a
 * Bedrock API key, sent as a bearer token without SigV4. */
#include <string.h>
#include <apr_strings.h>
#include <apr_env.h>
#include <apr_file_io.h>
#include <apr_lib.h>

#include "fl_adapter.h"
#include "fl_eventstream.h"
#include "fl_json.h"
#include "fl_chat_build.h"
#include "fl_sigv4.h"

#define MAX_EVENT_MESSAGE (8 * 1024 * 1024)
#define MAX_CREDENTIALS_FILE (64 * 1024)
#define SIGNING_SERVICE "bedrock"   /* the host says bedrock-runtime; the signature says bedrock */

typedef struct bedrock_conf_t {
    const char *region;
    const char *base;               /* scheme://host[:port][/prefix], no trailing '/' */
    const char *host;               /* the Host header libcurl will send */
    const char *prefix;             /* the base URL's path ("" for none) */
    fl_sigv4_creds_t creds;
    const char *bearer;             /* a Bedrock API key: no SigV4 then */
} bedrock_conf_t;

static const char *const bedrock_options[] = {
    "region", "access_key_env", "secret_key_env", "session_token_env", "credentials_file",
    "profile", NULL
};

/* --- configuration ------------------------------------------------------------------------ */

static int valid_region(const char *r)
{
    if (!r || !*r) return 0;
    for (; *r; r++) {
        if (!(apr_islower(*r) || apr_isdigit(*r) || *r == '-')) return 0;
    }
    return 1;
}

static const char *bedrock_check(const fl_provider_t *pv, apr_pool_t *p)
{
    const char *region = apr_table_get(pv->opts, "region");
    if (!region) return "needs region= (the AWS region that signs the requests, e.g. us-east-1)";
    if (!valid_region(region)) return apr_psprintf(p, "bad option region=%s", region);
    if (apr_table_get(pv->opts, "profile") && !apr_table_get(pv->opts, "credentials_file")) {
        return "profile= needs credentials_file=";
    }
    return NULL;
}

static char *read_small_file(apr_pool_t *p, const char *path, const char **perr)
{
    apr_file_t *f;
    apr_finfo_t fi;
    apr_size_t n;
    char *buf;
    if (apr_file_open(&f, path, APR_FOPEN_READ, APR_FPROT_OS_DEFAULT, p) != APR_SUCCESS) {
        *perr = apr_psprintf(p, "cannot open credentials_file=%s", path);
        return NULL;
    }
    if (apr_file_info_get(&fi, APR_FINFO_SIZE, f) != APR_SUCCESS || fi.size > MAX_CREDENTIALS_FILE) {
        apr_file_close(f);
        *perr = apr_psprintf(p, "credentials_file=%s is not a small regular file", path);
        return NULL;
    }
    n = (apr_size_t)fi.size;
    buf = apr_palloc(p, n + 1);
    if (n && apr_file_read_full(f, buf, n, &n) != APR_SUCCESS) {
        apr_file_close(f);
        *perr = apr_psprintf(p, "cannot read credentials_file=%s", path);
        return NULL;
    }
    apr_file_close(f);
    buf[n] = '\0';
    return buf;
}

static char *trim(char *s)
{
    char *e;
    while (apr_isspace(*s)) s++;
    e = s + strlen(s);
    while (e > s && apr_isspace(e[-1])) *--e = '\0';
    return s;
}

/* AWS's shared-credentials format: [profile] sections of key = value lines, # and ; comments. */
static const char *read_credentials_file(apr_pool_t *p, const char *path, const char *profile,
                                         fl_sigv4_creds_t *c)
{
    const char *err = NULL;
    char *text = read_small_file(p, path, &err), *line, *last;
    int in_profile = 0, found = 0;
    if (!text) return err;
    for (line = apr_strtok(text, "\r\n", &last); line; line = apr_strtok(NULL, "\r\n", &last)) {
        char *l = trim(line), *eq;
        if (!*l || *l == '#' || *l == ';') continue;
        if (*l == '[') {
            char *close = strchr(l, ']');
            if (close) *close = '\0';
            in_profile = !strcmp(trim(l + 1), profile);
            found |= in_profile;
            continue;
        }
        if (!in_profile || !(eq = strchr(l, '='))) continue;
        *eq = '\0';
        l = trim(l);
        if (!strcmp(l, "aws_access_key_id")) c->access_key = trim(eq + 1);
        else if (!strcmp(l, "aws_secret_access_key")) c->secret_key = trim(eq + 1);
        else if (!strcmp(l, "aws_session_token")) c->session_token = trim(eq + 1);
    }
    if (!found) return apr_psprintf(p, "credentials_file=%s has no [%s] profile", path, profile);
    if (!c->access_key || !c->secret_key) {
        return apr_psprintf(p, "credentials_file=%s: profile [%s] needs aws_access_key_id and "
                            "aws_secret_access_key", path, profile);
    }
    return NULL;
}

static const char *env_or_null(apr_pool_t *p, const char *name)
{
    char *v = NULL;
    return apr_env_get(&v, name, p) == APR_SUCCESS && *v ? v : NULL;
}

static const char *read_env_credentials(apr_pool_t *p, const fl_provider_t *pv,
                                        fl_sigv4_creds_t *c)
{
    const char *ak = apr_table_get(pv->opts, "access_key_env");
    const char *sk = apr_table_get(pv->opts, "secret_key_env");
    const char *st = apr_table_get(pv->opts, "session_token_env");
    ak = ak ? ak : "AWS_ACCESS_KEY_ID";
    sk = sk ? sk : "AWS_SECRET_ACCESS_KEY";
    c->access_key = env_or_null(p, ak);
    c->secret_key = env_or_null(p, sk);
    c->session_token = env_or_null(p, st ? st : "AWS_SESSION_TOKEN");
    if (!c->access_key || !c->secret_key) {
        return apr_psprintf(p, "needs AWS credentials: %s and %s are not set (access_key_env=, "
                            "secret_key_env=), and there is no credentials_file= or Bedrock API "
                            "key (key_env=, key_file=)", ak, sk);
    }
    return NULL;
}

static int has_line_break(const char *s)
{
    return s && strpbrk(s, "\r\n") != NULL;
}

/* Host (as libcurl sends it: no default port) and path prefix of the base URL. */
static const char *split_base(apr_pool_t *p, bedrock_conf_t *bc)
{
    const char *b = bc->base, *hs, *slash;
    int https;
    apr_size_t hl;
    if (!strncmp(b, "https://", 8)) https = 1;
    else if (!strncmp(b, "http://", 7)) https = 0;
    else return apr_psprintf(p, "base_url %s is not http:// or https://", b);
    hs = b + (https ? 8 : 7);
    slash = strchr(hs, '/');
    hl = slash ? (apr_size_t)(slash - hs) : strlen(hs);
    if (!hl) return apr_psprintf(p, "base_url %s has no host", b);
    bc->host = apr_pstrmemdup(p, hs, hl);
    bc->prefix = slash ? slash : "";
    if ((https && hl > 4 && !strcmp(bc->host + hl - 4, ":443"))
        || (!https && hl > 3 && !strcmp(bc->host + hl - 3, ":80"))) {
        bc->host = apr_pstrmemdup(p, hs, hl - (https ? 4 : 3));
    }
    return NULL;
}

static const char *bedrock_configure(fl_provider_t *pv, apr_pool_t *p)
{
    bedrock_conf_t *bc = apr_pcalloc(p, sizeof(*bc));
    const char *file = apr_table_get(pv->opts, "credentials_file"), *err;
    const char *profile = apr_table_get(pv->opts, "profile");
    bc->region = apr_table_get(pv->opts, "region");
    bc->base = pv->resolved_base ? pv->resolved_base
               : apr_psprintf(p, "https://bedrock-runtime.%s.amazonaws.com", bc->region);
    if ((err = split_base(p, bc))) return err;
    if (pv->api_key) bc->bearer = pv->api_key;
    else if (file) err = read_credentials_file(p, file, profile ? profile : "default", &bc->creds);
    else err = read_env_credentials(p, pv, &bc->creds);
    if (err) return err;
    if (has_line_break(bc->creds.access_key) || has_line_break(bc->creds.secret_key)
        || has_line_break(bc->creds.session_token)) {
        return "an AWS credential holds a line break";
    }
    pv->adapter_conf = bc;
    return NULL;
}

/* --- the request ---------------------------------------------------------------------------- */

/* Converse's turns: consecutive messages of one role share a turn (tool results and the user's
 * next words go in one user turn), as Bedrock wants roles to alternate. */
typedef struct turns_t {
    json_t *messages;
    json_t *content;                /* the open turn's content array */
    const char *role;
    int tool_blocks;                /* history holds toolUse/toolResult: toolConfig is required */
} turns_t;

static void turn_add(turns_t *t, const char *role, json_t *block)
{
    if (!t->role || strcmp(t->role, role)) {
        json_t *m = json_object();
        t->content = json_array();
        json_object_set_new(m, "role", json_string(role));
        json_object_set_new(m, "content", t->content);
        json_array_append_new(t->messages, m);
        t->role = role;
    }
    json_array_append_new(t->content, block);
}

static json_t *text_block(const char *text)
{
    return json_pack("{s:s}", "text", text);
}

static fl_error_t *unsupported(apr_pool_t *p, const char *what)
{
    return fl_error_make(p, 400, "invalid_request_error", "unsupported_content", "messages",
                         "AWS Bedrock does not take %s", what);
}

static fl_error_t *image_block(apr_pool_t *p, const json_t *part, json_t **out)
{
    json_t *iu = json_object_get(part, "image_url");
    const char *url = json_is_object(iu) ? fl_json_str(iu, "url", NULL) : json_string_value(iu);
    const char *mime, *b64, *format;
    if (!url) {
        return fl_error_invalid(p, "invalid_value", "messages", "an image_url part needs a url");
    }
    if (!fl_data_url_parse(p, url, &mime, &b64)) {
        return unsupported(p, "images by URL: send the image inline as a data: URL "
                              "(data:image/png;base64,...)");
    }
    if (!strcasecmp(mime, "image/png")) format = "png";
    else if (!strcasecmp(mime, "image/jpeg") || !strcasecmp(mime, "image/jpg")) format = "jpeg";
    else if (!strcasecmp(mime, "image/gif")) format = "gif";
    else if (!strcasecmp(mime, "image/webp")) format = "webp";
    else return unsupported(p, apr_psprintf(p, "%s images (png, jpeg, gif and webp only)", mime));
    *out = json_pack("{s:{s:s,s:{s:s}}}", "image", "format", format, "source", "bytes", b64);
    return NULL;
}

static fl_error_t *user_content(apr_pool_t *p, turns_t *t, const json_t *content)
{
    size_t i;
    json_t *part;
    if (json_is_string(content)) {
        if (*json_string_value(content)) turn_add(t, "user", text_block(json_string_value(content)));
        return NULL;
    }
    json_array_foreach(content, i, part) {
        const char *type = fl_json_str(part, "type", "");
        json_t *block = NULL;
        fl_error_t *e;
        if (!strcmp(type, "text")) {
            const char *text = fl_json_str(part, "text", "");
            if (*text) turn_add(t, "user", text_block(text));
        }
        else if (!strcmp(type, "image_url")) {
            if ((e = image_block(p, part, &block))) return e;
            turn_add(t, "user", block);
        }
        else {
            return unsupported(p, apr_psprintf(p, "content parts of type '%s'", type));
        }
    }
    return NULL;
}

static fl_error_t *tool_use_block(apr_pool_t *p, const json_t *tc, json_t **out)
{
    json_t *fn = json_object_get(tc, "function"), *input;
    const char *args = fl_json_str(fn, "arguments", "");
    const char *id = fl_json_str(tc, "id", NULL), *name = fl_json_str(fn, "name", NULL);
    if (!id || !name) {
        return fl_error_invalid(p, "invalid_value", "messages",
                                "an assistant tool call needs an id and a function name");
    }
    input = *args ? json_loads(args, JSON_DECODE_ANY, NULL) : json_object();
    if (!json_is_object(input)) {
        json_decref(input);
        return fl_error_invalid(p, "invalid_value", "messages",
                                "the arguments of tool call %s are not a JSON object", id);
    }
    *out = json_pack("{s:{s:s,s:s,s:o}}", "toolUse", "toolUseId", id, "name", name, "input", input);
    return NULL;
}

static fl_error_t *assistant_content(apr_pool_t *p, turns_t *t, const json_t *m)
{
    const char *text = fl_oai_content_text(p, json_object_get(m, "content"));
    json_t *tcs = json_object_get(m, "tool_calls"), *tc;
    size_t i;
    if (*text) turn_add(t, "assistant", text_block(text));
    json_array_foreach(tcs, i, tc) {
        json_t *block = NULL;
        fl_error_t *e = tool_use_block(p, tc, &block);
        if (e) return e;
        turn_add(t, "assistant", block);
        t->tool_blocks = 1;
    }
    return NULL;
}

/* A tool's answer: JSON objects travel as {json}, anything else as {text}. */
static void tool_result(apr_pool_t *p, turns_t *t, const json_t *m)
{
    const char *text = fl_oai_content_text(p, json_object_get(m, "content"));
    json_t *parsed = json_loads(text, 0, NULL), *item;
    if (json_is_object(parsed)) item = json_pack("{s:o}", "json", parsed);
    else {
        json_decref(parsed);
        item = text_block(text);
    }
    turn_add(t, "user", json_pack("{s:{s:s,s:[o]}}", "toolResult", "toolUseId",
                                  fl_json_str(m, "tool_call_id", ""), "content", item));
    t->tool_blocks = 1;
}

static fl_error_t *translate_messages(apr_pool_t *p, const json_t *msgs, turns_t *t,
                                      json_t *system)
{
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        const char *role = fl_json_str(m, "role", "");
        fl_error_t *e = NULL;
        if (!strcmp(role, "system") || !strcmp(role, "developer")) {
            const char *text = fl_oai_content_text(p, json_object_get(m, "content"));
            if (*text) json_array_append_new(system, text_block(text));
        }
        else if (!strcmp(role, "user")) e = user_content(p, t, json_object_get(m, "content"));
        else if (!strcmp(role, "assistant")) e = assistant_content(p, t, m);
        else if (!strcmp(role, "tool")) tool_result(p, t, m);
        else {
            e = fl_error_invalid(p, "invalid_value", apr_psprintf(p, "messages[%lu].role",
                                                                  (unsigned long)i),
                                 "AWS Bedrock does not take messages of role '%s'", role);
        }
        if (e) return e;
    }
    return NULL;
}

static json_t *tool_spec(const json_t *tool)
{
    json_t *fn = json_object_get(tool, "function"), *spec = json_object();
    json_t *schema = json_object_get(fn, "parameters");
    const char *desc = fl_json_str(fn, "description", NULL);
    json_object_set_new(spec, "name", json_string(fl_json_str(fn, "name", "")));
    if (desc && *desc) json_object_set_new(spec, "description", json_string(desc));
    /* Converse insists on a schema; a tool without parameters takes an empty object */
    schema = json_is_object(schema) ? json_incref(schema)
             : json_pack("{s:s,s:{}}", "type", "object", "properties");
    json_object_set_new(spec, "inputSchema", json_pack("{s:o}", "json", schema));
    return json_pack("{s:o}", "toolSpec", spec);
}

/* OpenAI's tool_choice as Converse's; NULL for auto (Converse's default) and "none". */
static json_t *tool_choice(const json_t *tc)
{
    const char *s = json_string_value(tc);
    if (s && !strcmp(s, "required")) return json_pack("{s:{}}", "any");
    if (json_is_object(tc)) {
        const char *name = fl_json_str(json_object_get(tc, "function"), "name", NULL);
        if (name) return json_pack("{s:{s:s}}", "tool", "name", name);
    }
    return NULL;
}

static fl_error_t *translate_tools(apr_pool_t *p, const json_t *root, int tool_blocks,
                                   json_t *body)
{
    json_t *tools = json_object_get(root, "tools"), *tc = json_object_get(root, "tool_choice");
    json_t *specs, *choice, *t;
    const char *tcs = json_string_value(tc);
    size_t i;
    if (!json_is_array(tools) || !json_array_size(tools)) return NULL;
    /* Converse has no "none": the tools stay out unless the history needs them declared */
    if (tcs && !strcmp(tcs, "none") && !tool_blocks) return NULL;
    specs = json_array();
    json_array_foreach(tools, i, t) {
        if (strcmp(fl_json_str(t, "type", "function"), "function")
            || !fl_json_str(json_object_get(t, "function"), "name", NULL)) {
            json_decref(specs);
            return fl_error_invalid(p, "invalid_value", apr_psprintf(p, "tools[%lu]", (unsigned long)i),
                                    "AWS Bedrock takes only function tools with a name");
        }
        json_array_append_new(specs, tool_spec(t));
    }
    choice = tcs && !strcmp(tcs, "none") ? NULL : tool_choice(tc);
    json_object_set_new(body, "toolConfig", choice ? json_pack("{s:o,s:o}", "tools", specs,
                                                               "toolChoice", choice)
                                                   : json_pack("{s:o}", "tools", specs));
    return NULL;
}

static void translate_inference(const json_t *root, json_t *body)
{
    json_t *ic = json_object(), *v, *stop = json_object_get(root, "stop");
    if (json_is_integer(v = json_object_get(root, "max_completion_tokens"))
        || json_is_integer(v = json_object_get(root, "max_tokens"))) {
        json_object_set(ic, "maxTokens", v);
    }
    if (json_is_number(v = json_object_get(root, "temperature"))) json_object_set(ic, "temperature", v);
    if (json_is_number(v = json_object_get(root, "top_p"))) json_object_set(ic, "topP", v);
    if (json_is_string(stop)) json_object_set_new(ic, "stopSequences", json_pack("[O]", stop));
    else if (json_is_array(stop) && json_array_size(stop)) json_object_set(ic, "stopSequences", stop);
    if (json_object_size(ic)) json_object_set_new(body, "inferenceConfig", ic);
    else json_decref(ic);
}

/* The Converse body for the client's request, or a 400 for what Bedrock cannot take. */
static fl_error_t *converse_body(apr_pool_t *p, const json_t *root, char **out)
{
    json_t *body = json_object(), *system = json_array();
    turns_t t = { json_array(), NULL, NULL, 0 };
    fl_error_t *e = translate_messages(p, json_object_get(root, "messages"), &t, system);
    if (!e) e = translate_tools(p, root, t.tool_blocks, body);
    if (e) {
        json_decref(body);
        json_decref(system);
        json_decref(t.messages);
        return e;
    }
    json_object_set_new(body, "messages", t.messages);
    if (json_array_size(system)) json_object_set_new(body, "system", system);
    else json_decref(system);
    translate_inference(root, body);
    *out = fl_json_dump(p, body, 1);
    return NULL;
}

static fl_error_t *sign(const fl_call_t *call, const bedrock_conf_t *bc, const char *path,
                        fl_upstream_t *up)
{
    apr_pool_t *p = call->pool;
    char date[FL_SIGV4_DATE_LEN + 1];
    fl_sigv4_request_t req;
    fl_sigv4_result_t res;
    apr_array_header_t *extra = apr_array_make(p, 1, sizeof(const char *));
    int i;

    /* content-type goes under the signature too, as the AWS SDK does: fl_http sends this one */
    APR_ARRAY_PUSH(extra, const char *) = "content-type: application/json";
    fl_sigv4_amz_date(call->now ? call->now : apr_time_now(), date);
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.host = bc->host;
    req.path = path;
    req.query = "";
    req.body = up->body;
    req.body_len = up->body_len;
    req.region = bc->region;
    req.service = SIGNING_SERVICE;
    req.amz_date = date;
    req.encode_path_twice = 1;
    req.sign_content_sha256 = 1;
    req.extra = extra;
    if (fl_sigv4_sign(p, &req, &bc->creds, &res) != APR_SUCCESS) {
        return fl_error_make(p, 500, "internal_error", "signing_failed", NULL,
                             "the request to provider %s could not be signed",
                             call->provider->name);
    }
    for (i = 0; i < res.headers->nelts; i++) {
        APR_ARRAY_PUSH(up->headers, const char *) = APR_ARRAY_IDX(res.headers, i, const char *);
    }
    fl_upstream_header(up, "Authorization", res.authorization);
    return NULL;
}

static fl_error_t *bedrock_prepare(const fl_call_t *call, fl_upstream_t *up)
{
    const bedrock_conf_t *bc = call->provider->adapter_conf;
    apr_pool_t *p = call->pool;
    const char *tail;
    char *body = NULL;
    fl_error_t *e;

    if ((e = converse_body(p, call->cr->root, &body))) return e;
    up->body = body;
    up->body_len = strlen(body);
    /* the model id is one path segment: ':' and '/' (ARNs, profiles) are encoded */
    tail = apr_pstrcat(p, "/model/", fl_sigv4_uri_encode(p, call->model->name, 0),
                       call->cr->stream ? "/converse-stream" : "/converse", NULL);
    up->url = apr_pstrcat(p, bc->base, tail, NULL);
    up->accept = call->cr->stream ? "application/vnd.amazon.eventstream" : "application/json";
    if (bc->bearer) {
        fl_upstream_header(up, "Authorization", apr_pstrcat(p, "Bearer ", bc->bearer, NULL));
        return NULL;
    }
    return sign(call, bc, apr_pstrcat(p, bc->prefix, tail, NULL), up);
}

/* --- answers ------------------------------------------------------------------------------ */

static const char *finish_reason(const char *stop)
{
    if (!stop) return "stop";
    if (!strcmp(stop, "tool_use")) return "tool_calls";
    if (!strcmp(stop, "max_tokens") || !strcmp(stop, "model_context_window_exceeded")) {
        return "length";
    }
    if (!strcmp(stop, "guardrail_intervened") || !strcmp(stop, "content_filtered")) {
        return "content_filter";
    }
    return "stop";              /* end_turn, stop_sequence, and the malformed_* kinds */
}

/* Bedrock counts cache reads and writes apart from inputTokens; OpenAI's prompt_tokens holds
 * them all, cached_tokens the reads. Bedrock breaks out no reasoning tokens. */
static void usage_from(fl_usage_t *u, const json_t *usage)
{
    apr_int64_t in = fl_json_count(usage, "inputTokens"), out = fl_json_count(usage, "outputTokens");
    apr_int64_t cr = fl_json_count(usage, "cacheReadInputTokens");
    apr_int64_t cw = fl_json_count(usage, "cacheWriteInputTokens");
    if (!json_is_object(usage) || (in < 0 && out < 0)) return;
    u->prompt = (in > 0 ? in : 0) + (cr > 0 ? cr : 0) + (cw > 0 ? cw : 0);
    u->completion = out > 0 ? out : 0;
    u->total = u->prompt + u->completion;
    u->cached = cr > 0 ? cr : 0;
    u->reasoning = 0;
}

static fl_error_t *bedrock_response(const fl_call_t *call, const char *body, apr_size_t len,
                                    const char **out, apr_size_t *outlen, fl_usage_t *usage)
{
    apr_pool_t *p = call->pool;
    json_t *root = fl_json_pool_own(p, json_loadb(body, len, 0, NULL));
    json_t *content = json_object_get(json_object_get(json_object_get(root, "output"), "message"),
                                      "content");
    json_t *block, *tool_calls = NULL;
    const char *text = NULL;
    size_t i;

    if (!json_is_array(content)) {
        return fl_error_make(p, 502, "upstream_error", "upstream_error", NULL,
                             "provider %s answered with something that is not a Converse "
                             "response", call->provider->name);
    }
    json_array_foreach(content, i, block) {
        const char *t = fl_json_str(block, "text", NULL);
        json_t *tu = json_object_get(block, "toolUse");
        if (t) text = text ? apr_pstrcat(p, text, t, NULL) : t;
        if (json_is_object(tu)) {
            json_t *input = json_object_get(tu, "input");
            if (!tool_calls) tool_calls = json_array();
            json_array_append_new(tool_calls, fl_oai_tool_call(
                -1, fl_json_str(tu, "toolUseId", ""), fl_json_str(tu, "name", ""),
                input ? fl_json_dump(p, input, 0) : "{}"));
        }
    }
    usage_from(usage, json_object_get(root, "usage"));
    *out = fl_oai_completion(p, call->model->name, text, tool_calls,
                             finish_reason(fl_json_str(root, "stopReason", NULL)), usage);
    *outlen = strlen(*out);
    return NULL;
}

/* --- the stream ---------------------------------------------------------------------------- */

struct fl_stream_t {
    fl_es_t *es;
    apr_pool_t *ev_pool;         /* cleared for every message: memory stays flat */
    fl_usage_t *usage;
    fl_oai_stream_t st;
    fl_emit_cb *emit;
    void *baton;
    const char *provider;
    int tools;                   /* tool calls started; the open one has index tools - 1 */
    int ended;                   /* [DONE] or an error went out: whatever follows is ignored */
    int stopped;                 /* messageStop came: the answer is complete */
};

static apr_status_t send_chunk(fl_stream_t *s, json_t *delta, const char *finish)
{
    char *c = fl_oai_chunk(s->ev_pool, &s->st, delta, finish);
    return s->emit(s->baton, FL_CHUNK_FORWARD, c, strlen(c));
}

static apr_status_t send_error(fl_stream_t *s, const char *type, const char *code,
                               const char *message)
{
    char *c = fl_oai_error_event(s->ev_pool, message, type, code);
    s->ended = 1;
    return s->emit(s->baton, FL_CHUNK_ERROR, c, strlen(c));
}

/* The usage (metadata) comes after messageStop: the usage chunk and [DONE] close the stream. */
static apr_status_t send_end(fl_stream_t *s)
{
    char *u = fl_oai_usage_chunk(s->ev_pool, &s->st, s->usage);
    apr_status_t rv;
    s->ended = 1;
    if (u && (rv = s->emit(s->baton, FL_CHUNK_FORWARD, u, strlen(u))) != APR_SUCCESS) return rv;
    return s->emit(s->baton, FL_CHUNK_DONE, "[DONE]", 6);
}

/* An exception or error frame (throttlingException, modelStreamErrorException, ...). */
static apr_status_t stream_exception(fl_stream_t *s, const char *kind, const json_t *payload)
{
    const char *msg = fl_json_str(payload, "message", fl_json_str(payload, "Message", ""));
    int throttled = kind && (!strcmp(kind, "throttlingException")
                             || !strcmp(kind, "ThrottlingException"));
    return send_error(s, throttled ? "rate_limit_error" : "upstream_error",
                      throttled ? "rate_limit_exceeded" : "upstream_stream_error",
                      apr_psprintf(s->ev_pool, "provider %s sent %s mid-stream%s%s", s->provider,
                                   kind ? kind : "an exception", *msg ? ": " : "", msg));
}

static apr_status_t block_start(fl_stream_t *s, const json_t *ev)
{
    json_t *tu = json_object_get(json_object_get(ev, "start"), "toolUse");
    if (!json_is_object(tu)) return APR_SUCCESS;
    return send_chunk(s, json_pack("{s:[o]}", "tool_calls",
                                   fl_oai_tool_call(s->tools++, fl_json_str(tu, "toolUseId", ""),
                                                    fl_json_str(tu, "name", ""), "")), NULL);
}

static apr_status_t block_delta(fl_stream_t *s, const json_t *ev)
{
    json_t *d = json_object_get(ev, "delta");
    const char *text = fl_json_str(d, "text", NULL);
    const char *input = fl_json_str(json_object_get(d, "toolUse"), "input", NULL);
    if (text) return send_chunk(s, json_pack("{s:s}", "content", text), NULL);
    if (input && s->tools > 0) {
        return send_chunk(s, json_pack("{s:[o]}", "tool_calls",
                                       fl_oai_tool_call(s->tools - 1, NULL, NULL, input)), NULL);
    }
    return APR_SUCCESS;         /* reasoning and other block kinds have no OpenAI chunk */
}

static apr_status_t stream_event(fl_stream_t *s, const char *type, const json_t *ev)
{
    if (!strcmp(type, "messageStart")) return send_chunk(s, json_pack("{s:s}", "content", ""), NULL);
    if (!strcmp(type, "contentBlockStart")) return block_start(s, ev);
    if (!strcmp(type, "contentBlockDelta")) return block_delta(s, ev);
    if (!strcmp(type, "messageStop")) {
        s->stopped = 1;
        return send_chunk(s, NULL, finish_reason(fl_json_str(ev, "stopReason", NULL)));
    }
    if (!strcmp(type, "metadata")) {
        usage_from(s->usage, json_object_get(ev, "usage"));
        return send_end(s);
    }
    return APR_SUCCESS;         /* contentBlockStop, and kinds this gateway does not know */
}

static apr_status_t on_message(void *baton, const fl_es_message_t *m)
{
    fl_stream_t *s = baton;
    const char *mtype, *etype;
    json_t *ev;
    apr_pool_clear(s->ev_pool);
    if (s->ended) return APR_SUCCESS;
    mtype = fl_es_header_str(s->ev_pool, m, ":message-type");
    ev = fl_json_pool_own(s->ev_pool, json_loadb(m->payload, m->payload_len, 0, NULL));
    if (mtype && !strcmp(mtype, "exception")) {
        return stream_exception(s, fl_es_header_str(s->ev_pool, m, ":exception-type"), ev);
    }
    if (mtype && !strcmp(mtype, "error")) {
        const char *text = fl_es_header_str(s->ev_pool, m, ":error-message");
        json_t *err = fl_json_pool_own(s->ev_pool, json_pack("{s:s}", "message", text ? text : ""));
        return stream_exception(s, fl_es_header_str(s->ev_pool, m, ":error-code"), err);
    }
    etype = fl_es_header_str(s->ev_pool, m, ":event-type");
    if (!etype) return APR_SUCCESS;
    if (!json_is_object(ev)) {
        return send_error(s, "upstream_error", "upstream_stream_error",
                          apr_psprintf(s->ev_pool, "provider %s sent a %s event that is not a "
                                       "JSON object", s->provider, etype));
    }
    return stream_event(s, etype, ev);
}

static apr_status_t bedrock_stream_open(const fl_call_t *call, fl_usage_t *usage,
                                        fl_emit_cb *emit, void *baton, fl_stream_t **ps)
{
    fl_stream_t *s = apr_pcalloc(call->pool, sizeof(*s));
    apr_status_t rv = apr_pool_create(&s->ev_pool, call->pool);
    if (rv != APR_SUCCESS) return rv;
    s->usage = usage;
    s->emit = emit;
    s->baton = baton;
    s->provider = call->provider->name;
    fl_oai_stream_init(&s->st, call->pool, call->model->name, call->cr->include_usage);
    *ps = s;
    return fl_es_create(&s->es, call->pool, MAX_EVENT_MESSAGE, on_message, s);
}

static apr_status_t bedrock_stream_feed(fl_stream_t *s, const char *buf, apr_size_t len)
{
    apr_status_t rv;
    if (s->ended) return APR_SUCCESS;
    rv = fl_es_feed(s->es, buf, len);
    if (rv == APR_SUCCESS || !fl_es_error(s->es)) return rv; /* the emitter's own status */
    /* a corrupt frame is never skipped: the client learns the stream broke */
    apr_pool_clear(s->ev_pool);
    return send_error(s, "upstream_error", "upstream_stream_error",
                      apr_psprintf(s->ev_pool, "provider %s sent a corrupt event stream (%s)",
                                   s->provider, fl_es_error(s->es)));
}

/* A body that ends after messageStop without its metadata frame still completed the answer:
 * the stream ends with [DONE] (and the usage chunk, if asked, with what was reported). */
static apr_status_t bedrock_stream_close(fl_stream_t *s)
{
    if (s->ended || !s->stopped) return APR_SUCCESS;
    apr_pool_clear(s->ev_pool);
    return send_end(s);
}

/* --- errors -------------------------------------------------------------------------------- */

typedef struct aws_error_t {
    const char *name;            /* x-amzn-ErrorType, before any ':' */
    int status;                  /* the client's */
    const char *type, *code;
} aws_error_t;

static const aws_error_t AWS_ERRORS[] = {
    { "ThrottlingException", 429, "rate_limit_error", "rate_limit_exceeded" },
    { "ModelNotReadyException", 429, "rate_limit_error", "model_not_ready" },
    /* a used-up quota: "quota" in the code tells the glue a retry is pointless */
    { "ServiceQuotaExceededException", 429, "rate_limit_error", "quota_exceeded" },
    { "ValidationException", 400, "invalid_request_error", "invalid_request" },
    { "ResourceNotFoundException", 404, "invalid_request_error", "model_not_found" },
    { "ModelTimeoutException", 504, "timeout_error", "upstream_timeout" },
    { "ModelErrorException", 502, "upstream_error", "upstream_error" },
    { "InternalServerException", 502, "upstream_error", "upstream_error" },
    { "ServiceUnavailableException", 502, "upstream_error", "upstream_error" },
    /* the gateway's credentials, not the client's fault */
    { "AccessDeniedException", 502, "upstream_error", "upstream_auth_failed" },
    { "UnrecognizedClientException", 502, "upstream_error", "upstream_auth_failed" },
    { "InvalidSignatureException", 502, "upstream_error", "upstream_auth_failed" },
    { "IncompleteSignatureException", 502, "upstream_error", "upstream_auth_failed" },
    { "ExpiredTokenException", 502, "upstream_error", "upstream_auth_failed" },
    { "MissingAuthenticationTokenException", 502, "upstream_error", "upstream_auth_failed" },
    { NULL, 0, NULL, NULL }
};

/* The AWS error name: x-amzn-ErrorType ("ValidationException:http://..."), else the body's
 * __type ("com.amazon...#ValidationException") or code. */
static const char *error_name(apr_pool_t *p, apr_table_t *headers, const json_t *root)
{
    const char *n = headers ? apr_table_get(headers, "x-amzn-errortype") : NULL, *hash;
    if (!n) n = fl_json_str(root, "__type", fl_json_str(root, "code", NULL));
    if (!n) return NULL;
    if ((hash = strrchr(n, '#'))) n = hash + 1;
    return apr_pstrndup(p, n, strcspn(n, ":"));
}

static const aws_error_t *by_status(int status)
{
    static const aws_error_t RATE = { NULL, 429, "rate_limit_error", "rate_limit_exceeded" };
    static const aws_error_t AUTH = { NULL, 502, "upstream_error", "upstream_auth_failed" };
    static const aws_error_t TIME = { NULL, 504, "timeout_error", "upstream_timeout" };
    static const aws_error_t FAIL = { NULL, 502, "upstream_error", "upstream_error" };
    static const aws_error_t MISS = { NULL, 404, "invalid_request_error", "model_not_found" };
    static const aws_error_t BAD = { NULL, 400, "invalid_request_error", NULL };
    if (status == 429) return &RATE;
    if (status == 401 || status == 403) return &AUTH;
    if (status == 408 || status == 504) return &TIME;
    if (status == 404) return &MISS;
    return status >= 500 || status < 400 ? &FAIL : &BAD;
}

static fl_error_t *bedrock_error(const fl_call_t *call, int status, apr_table_t *headers,
                                 const char *body, apr_size_t len)
{
    apr_pool_t *p = call->pool;
    json_t *root = fl_json_pool_own(p, body && len ? json_loadb(body, len, 0, NULL) : NULL);
    const char *name = error_name(p, headers, root);
    const char *msg = fl_json_str(root, "message", fl_json_str(root, "Message", NULL));
    const aws_error_t *ae = NULL;
    fl_error_t *e;
    int i;
    for (i = 0; name && AWS_ERRORS[i].name && !ae; i++) {
        if (!strcmp(AWS_ERRORS[i].name, name)) ae = &AWS_ERRORS[i];
    }
    if (!ae) ae = by_status(status);
    e = fl_error_make(p, ae->status, ae->type, ae->code, ae->status == 404 ? "model" : NULL,
                      "provider %s answered HTTP %d%s%s%s%s%s", call->provider->name, status,
                      name ? " (" : "", name ? name : "", name ? ")" : "", msg ? ": " : "",
                      msg ? msg : "");
    if (headers) {
        const char *ra = apr_table_get(headers, "retry-after");
        const char *ram = apr_table_get(headers, "retry-after-ms");
        e->retry_after = ra ? apr_pstrdup(p, ra) : NULL;
        e->retry_after_ms = ram ? apr_pstrdup(p, ram) : NULL;
    }
    return e;
}

const fl_adapter_t fl_adapter_bedrock = {
    .type = "bedrock", .vision = 1, .options = bedrock_options,
    .check = bedrock_check, .configure = bedrock_configure,
    .prepare = bedrock_prepare, .response = bedrock_response, .error = bedrock_error,
    .stream_open = bedrock_stream_open, .stream_feed = bedrock_stream_feed,
    .stream_close = bedrock_stream_close,
};
