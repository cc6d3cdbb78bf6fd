#include <string.h>
#include <apr_strings.h>

#include "fl_cache_entry.h"
#include "fl_buf.h"
#include "fl_chat_build.h"
#include "fl_json.h"

/* The encoding: a version byte, an origin byte, then the provider's own bytes, unchanged:
 *   'A'  the answer's JSON text
 *   'S'  each chunk payload as a 4-byte big-endian length and that many bytes.
 * Keeping the provider's text (rather than a re-serialisation) makes the recorder's buffer the
 * encoding itself, with no copy at finish, and keeps every field and digit it had. Decoding
 * runs the same checks as recording, so whatever a store hands back is either an entry that
 * could have been recorded or a refusal. */
#define HEAD 2
#define ORIGIN_ANSWER 'A'
#define ORIGIN_STREAM 'S'
#define LEN_BYTES 4

#define CHUNK_OBJECT "chat.completion.chunk"

struct fl_cache_entry_t {
    const char *bytes;           /* the encoding */
    apr_size_t len;
    int streamed;
    json_t *answer;              /* the chat.completion: as received, or assembled from chunks */
    json_t *chunks;              /* a stream's chunk objects in order; NULL for an answer */
    fl_usage_t usage;
    const char *model;
};

struct fl_cache_recorder_t {
    apr_pool_t *p;
    apr_pool_t *bufp;            /* holds buf alone, so that giving up frees it at once */
    fl_buf_t *buf;               /* the encoding being written */
    apr_status_t refused;        /* sticky: once set, the recorder only says so */
    int done;                    /* [DONE] arrived */
};

/* --- checking and reading an encoding -------------------------------------------------------- */

static apr_status_t load_answer(apr_pool_t *p, fl_cache_entry_t *e, const char *text,
                                apr_size_t len)
{
    json_t *root = fl_json_pool_own(p, json_loadb(text, len, 0, NULL));
    json_t *choices = json_object_get(root, "choices"), *choice;

    if (!json_is_object(root) || json_object_get(root, "error")
        || strcmp(fl_json_str(root, "object", "chat.completion"), "chat.completion")
        || !json_is_array(choices) || !json_array_size(choices)) {
        return APR_EINVAL;
    }
    if (json_array_size(choices) > 1) {
        return APR_ENOTIMPL;
    }
    choice = json_array_get(choices, 0);
    if (!json_is_object(json_object_get(choice, "message"))
        || !fl_json_str(choice, "finish_reason", NULL)
        || !(e->model = fl_json_str(root, "model", NULL))) {
        return APR_EINVAL;
    }
    fl_usage_from_openai(&e->usage, json_object_get(root, "usage"));
    e->answer = root;
    return APR_SUCCESS;
}

/* One string field of the message gathered from the deltas (content, reasoning_content,
 * refusal, or whatever text a provider streams). */
typedef struct {
    const char *key;
    fl_buf_t *text;
} text_acc_t;

/* One tool call gathered from its deltas: the first id and name, the arguments joined. */
typedef struct {
    apr_int64_t index;
    const char *id, *name;
    fl_buf_t *args;
} call_acc_t;

typedef struct {
    apr_pool_t *scratch;         /* the accumulators' buffers, freed once the answer is built */
    apr_size_t max;              /* no gathered text can be longer than the encoding */
    apr_array_header_t *texts;   /* text_acc_t */
    apr_array_header_t *calls;   /* call_acc_t, in the order the calls began */
    const char *role, *finish, *model;
    json_t *logprobs;            /* choices[0].logprobs' arrays joined; NULL when none came */
    json_t *usage;               /* the usage chunk's object */
    json_t *first;               /* the first chunk */
} assembly_t;

static fl_buf_t *text_buf(assembly_t *a, const char *key)
{
    text_acc_t *t;
    int i;
    for (i = 0; i < a->texts->nelts; i++) {
        t = &APR_ARRAY_IDX(a->texts, i, text_acc_t);
        if (!strcmp(t->key, key)) return t->text;
    }
    t = apr_array_push(a->texts);
    t->key = key;
    t->text = fl_buf_create(a->scratch, a->max);
    return t->text;
}

static call_acc_t *call_acc(assembly_t *a, apr_int64_t index)
{
    call_acc_t *c;
    int i;
    for (i = 0; i < a->calls->nelts; i++) {
        c = &APR_ARRAY_IDX(a->calls, i, call_acc_t);
        if (c->index == index) return c;
    }
    c = apr_array_push(a->calls);
    memset(c, 0, sizeof(*c));
    c->index = index;
    c->args = fl_buf_create(a->scratch, a->max);
    return c;
}

static apr_status_t append_str(fl_buf_t *b, const json_t *s)
{
    return fl_buf_append(b, json_string_value(s), json_string_length(s));
}

static apr_status_t merge_calls(assembly_t *a, const json_t *calls)
{
    json_t *tc, *fn;
    size_t i;
    apr_status_t rv;
    if (json_is_null(calls)) return APR_SUCCESS;
    if (!json_is_array(calls)) return APR_EINVAL;
    json_array_foreach(calls, i, tc) {
        json_t *index = json_object_get(tc, "index"), *args;
        call_acc_t *c;
        if (!json_is_object(tc) || (index && !json_is_integer(index))) return APR_EINVAL;
        /* a provider that leaves the index out sends one call a delta */
        c = call_acc(a, index ? json_integer_value(index) : (apr_int64_t)i);
        fn = json_object_get(tc, "function");
        /* the id and name come once; a provider that repeats them must not double them */
        if (!c->id) c->id = fl_json_str(tc, "id", NULL);
        if (!c->name) c->name = fl_json_str(fn, "name", NULL);
        args = json_object_get(fn, "arguments");
        if (json_is_string(args) && (rv = append_str(c->args, args)) != APR_SUCCESS) return rv;
    }
    return APR_SUCCESS;
}

static apr_status_t merge_delta(assembly_t *a, const json_t *delta)
{
    const char *key;
    json_t *v;
    apr_status_t rv = APR_SUCCESS;
    if (!delta) return APR_SUCCESS;
    if (!json_is_object(delta)) return APR_EINVAL;
    json_object_foreach((json_t *)delta, key, v) {
        if (!strcmp(key, "tool_calls")) rv = merge_calls(a, v);
        else if (!strcmp(key, "role")) a->role = fl_json_str(delta, "role", a->role);
        /* null placeholders ("content": null beside a tool call) add nothing */
        else if (json_is_string(v)) rv = append_str(text_buf(a, key), v);
        if (rv != APR_SUCCESS) return rv;
    }
    return APR_SUCCESS;
}

/* logprobs.content (and .refusal) come as arrays a chunk; the answer has them joined. */
static void merge_logprobs(assembly_t *a, const json_t *lp)
{
    const char *key;
    json_t *v, *have;
    if (!json_is_object(lp)) return;
    if (!a->logprobs) a->logprobs = fl_json_pool_own(a->scratch, json_object());
    json_object_foreach((json_t *)lp, key, v) {
        if (!json_is_array(v)) continue;
        if (!(have = json_object_get(a->logprobs, key))) {
            json_object_set_new(a->logprobs, key, have = json_array());
        }
        json_array_extend(have, v);
    }
}

/* A chunk with the usage and no choice: the one include_usage adds (vLLM writes choices: null
 * or none at all). */
static int is_usage_chunk(const json_t *c)
{
    json_t *choices = json_object_get(c, "choices");
    return json_is_object(json_object_get(c, "usage"))
           && (!choices || json_is_null(choices)
               || (json_is_array(choices) && !json_array_size(choices)));
}

static apr_status_t merge_chunk(assembly_t *a, const json_t *c)
{
    json_t *choices = json_object_get(c, "choices"), *ch, *index;
    size_t i;
    apr_status_t rv;
    if (!json_is_object(c) || json_object_get(c, "error")
        || strcmp(fl_json_str(c, "object", CHUNK_OBJECT), CHUNK_OBJECT)
        || (choices && !json_is_null(choices) && !json_is_array(choices))) {
        return APR_EINVAL;
    }
    if (!a->model && *fl_json_str(c, "model", "")) a->model = fl_json_str(c, "model", NULL);
    /* OpenAI sends it in a chunk of its own; some providers put it on the last choice's */
    if (json_is_object(json_object_get(c, "usage"))) a->usage = json_object_get(c, "usage");
    json_array_foreach(choices, i, ch) {
        index = json_object_get(ch, "index");
        if (!json_is_object(ch) || (index && !json_is_integer(index))) return APR_EINVAL;
        if (json_integer_value(index) != 0) return APR_ENOTIMPL;
        if ((rv = merge_delta(a, json_object_get(ch, "delta"))) != APR_SUCCESS) return rv;
        merge_logprobs(a, json_object_get(ch, "logprobs"));
        a->finish = fl_json_str(ch, "finish_reason", a->finish);
    }
    return APR_SUCCESS;
}

/* The chat.completion the chunks add up to, in OpenAI's order of fields. */
static json_t *assembled_answer(const assembly_t *a)
{
    json_t *o = json_object(), *msg = json_object(), *choice = json_object(), *calls;
    static const char *const extra[] = { "system_fingerprint", "service_tier" };
    int i;
    size_t k;
    json_object_set_new(o, "id", json_string(fl_json_str(a->first, "id", "")));
    json_object_set_new(o, "object", json_string("chat.completion"));
    json_object_set_new(o, "created",
                        json_integer(json_integer_value(json_object_get(a->first, "created"))));
    json_object_set_new(o, "model", json_string(a->model));
    json_object_set_new(msg, "role", json_string(a->role ? a->role : "assistant"));
    json_object_set_new(msg, "content", json_null());
    for (i = 0; i < a->texts->nelts; i++) {
        const text_acc_t *t = &APR_ARRAY_IDX(a->texts, i, text_acc_t);
        json_object_set_new(msg, t->key, json_stringn(t->text->data, t->text->len));
    }
    if (!json_object_get(msg, "refusal")) json_object_set_new(msg, "refusal", json_null());
    if (a->calls->nelts) {
        calls = json_array();
        for (i = 0; i < a->calls->nelts; i++) {
            const call_acc_t *c = &APR_ARRAY_IDX(a->calls, i, call_acc_t);
            json_array_append_new(calls, fl_oai_tool_call(-1, c->id, c->name,
                                                          c->args->len ? c->args->data : ""));
        }
        json_object_set_new(msg, "tool_calls", calls);
    }
    json_object_set_new(choice, "index", json_integer(0));
    json_object_set_new(choice, "message", msg);
    json_object_set(choice, "logprobs", a->logprobs ? a->logprobs : json_null());
    json_object_set_new(choice, "finish_reason", json_string(a->finish));
    json_object_set_new(o, "choices", json_array());
    json_array_append_new(json_object_get(o, "choices"), choice);
    if (a->usage) json_object_set(o, "usage", a->usage);
    for (k = 0; k < sizeof(extra) / sizeof(extra[0]); k++) {
        json_t *v = json_object_get(a->first, extra[k]);
        if (json_is_string(v)) json_object_set(o, extra[k], v);
    }
    return o;
}

static apr_status_t load_stream(apr_pool_t *p, fl_cache_entry_t *e, const char *text,
                                apr_size_t len)
{
    assembly_t a;
    apr_size_t off = 0, n;
    const unsigned char *u;
    json_t *c;
    size_t i;
    apr_status_t rv = APR_SUCCESS;

    e->chunks = fl_json_pool_own(p, json_array());
    while (off < len) {
        if (len - off < LEN_BYTES) return APR_EINVAL;
        u = (const unsigned char *)text + off;
        n = ((apr_size_t)u[0] << 24) | ((apr_size_t)u[1] << 16) | ((apr_size_t)u[2] << 8) | u[3];
        off += LEN_BYTES;
        if (n > len - off) return APR_EINVAL;
        c = json_loadb(text + off, n, 0, NULL);
        off += n;
        if (!json_is_object(c)) {
            json_decref(c);
            return APR_EINVAL;
        }
        json_array_append_new(e->chunks, c);
    }
    if (!json_array_size(e->chunks)) return APR_EINVAL;

    memset(&a, 0, sizeof(a));
    apr_pool_create(&a.scratch, p);
    a.max = len;
    a.texts = apr_array_make(a.scratch, 4, sizeof(text_acc_t));
    a.calls = apr_array_make(a.scratch, 2, sizeof(call_acc_t));
    a.first = json_array_get(e->chunks, 0);
    json_array_foreach(e->chunks, i, c) {
        if ((rv = merge_chunk(&a, c)) != APR_SUCCESS) goto leave;
    }
    /* no finish_reason: the provider did not say the answer was complete */
    if (!a.finish || !a.model) {
        rv = APR_EINVAL;
        goto leave;
    }
    e->streamed = 1;
    e->model = a.model;
    e->answer = fl_json_pool_own(p, assembled_answer(&a));
    fl_usage_from_openai(&e->usage, a.usage);
leave:
    apr_pool_destroy(a.scratch);
    return rv;
}

/* bytes stay referenced by the entry: the callers put them where the entry lives. */
static apr_status_t load(apr_pool_t *p, const char *bytes, apr_size_t len,
                         fl_cache_entry_t **pentry)
{
    fl_cache_entry_t *e;
    apr_status_t rv;
    if (len < HEAD || (unsigned char)bytes[0] != FL_CACHE_ENTRY_VERSION) return APR_EINVAL;
    e = apr_pcalloc(p, sizeof(*e));
    e->bytes = bytes;
    e->len = len;
    fl_usage_clear(&e->usage);
    switch (bytes[1]) {
    case ORIGIN_ANSWER: rv = load_answer(p, e, bytes + HEAD, len - HEAD); break;
    case ORIGIN_STREAM: rv = load_stream(p, e, bytes + HEAD, len - HEAD); break;
    default: rv = APR_EINVAL;
    }
    if (rv == APR_SUCCESS) *pentry = e;
    return rv;
}

static void head(char *out, char origin)
{
    out[0] = FL_CACHE_ENTRY_VERSION;
    out[1] = origin;
}

/* --- the constructors ------------------------------------------------------------------------ */

apr_status_t fl_cache_entry_from_answer(apr_pool_t *p, const char *json, apr_size_t len,
                                        fl_cache_entry_t **pentry)
{
    char *bytes = apr_palloc(p, len + HEAD);
    head(bytes, ORIGIN_ANSWER);
    memcpy(bytes + HEAD, json, len);
    return load(p, bytes, len + HEAD, pentry);
}

apr_status_t fl_cache_recorder_create(apr_pool_t *p, apr_size_t max,
                                      fl_cache_recorder_t **prec)
{
    fl_cache_recorder_t *rec;
    char h[HEAD];
    apr_status_t rv;
    if (max < HEAD) return APR_EINVAL;
    rec = apr_pcalloc(p, sizeof(*rec));
    rec->p = p;
    if ((rv = apr_pool_create(&rec->bufp, p)) != APR_SUCCESS) return rv;
    rec->buf = fl_buf_create(rec->bufp, max);
    head(h, ORIGIN_STREAM);
    if ((rv = fl_buf_append(rec->buf, h, HEAD)) != APR_SUCCESS) return rv;
    *prec = rec;
    return APR_SUCCESS;
}

static apr_status_t give_up(fl_cache_recorder_t *rec, apr_status_t why)
{
    rec->refused = why;
    if (rec->bufp) {
        apr_pool_destroy(rec->bufp);
        rec->bufp = NULL;
        rec->buf = NULL;
    }
    return why;
}

apr_status_t fl_cache_recorder_feed(fl_cache_recorder_t *rec, const char *data, apr_size_t len)
{
    unsigned char n[LEN_BYTES];
    apr_status_t rv;
    if (rec->refused) return rec->refused;
    /* data after [DONE] is no clean end; the buffer is kept, an entry may point into it */
    if (rec->done) return rec->refused = APR_EINVAL;
    if (len == 6 && !memcmp(data, "[DONE]", 6)) {
        rec->done = 1;
        return APR_SUCCESS;
    }
    if (len > 0xFFFFFFFFu) return give_up(rec, APR_ENOSPC);
    n[0] = (unsigned char)(len >> 24);
    n[1] = (unsigned char)(len >> 16);
    n[2] = (unsigned char)(len >> 8);
    n[3] = (unsigned char)len;
    if ((rv = fl_buf_append(rec->buf, (const char *)n, LEN_BYTES)) != APR_SUCCESS
        || (rv = fl_buf_append(rec->buf, data, len)) != APR_SUCCESS) {
        return give_up(rec, rv);
    }
    return APR_SUCCESS;
}

apr_status_t fl_cache_recorder_finish(fl_cache_recorder_t *rec, fl_cache_entry_t **pentry)
{
    apr_status_t rv;
    if (rec->refused) return rec->refused;
    if (!rec->done) return APR_EINCOMPLETE;
    /* the entry points into the buffer, which lives as long as the recorder's pool */
    if ((rv = load(rec->p, rec->buf->data, rec->buf->len, pentry)) != APR_SUCCESS) {
        return give_up(rec, rv);
    }
    return APR_SUCCESS;
}

apr_status_t fl_cache_entry_encode(apr_pool_t *p, const fl_cache_entry_t *entry,
                                   const char **pbytes, apr_size_t *plen)
{
    *pbytes = entry->bytes;
    *plen = entry->len;
    return APR_SUCCESS;
}

apr_status_t fl_cache_entry_decode(apr_pool_t *p, const char *bytes, apr_size_t len,
                                   fl_cache_entry_t **pentry)
{
    if (!bytes || len < HEAD) return APR_EINVAL;
    return load(p, apr_pmemdup(p, bytes, len), len, pentry);
}

/* --- replaying ------------------------------------------------------------------------------- */

/* A shallow copy of a recorded object with the new response's id and created, in the places
 * they had (Jansson keeps a replaced member's position). */
static json_t *renamed(const json_t *o, const char *new_id, apr_time_t created)
{
    json_t *c = json_copy((json_t *)o);
    json_object_set_new(c, "id", json_string(new_id));
    json_object_set_new(c, "created", json_integer(apr_time_sec(created)));
    return c;
}

apr_status_t fl_cache_entry_answer(apr_pool_t *p, const fl_cache_entry_t *entry,
                                   const char *new_id, apr_time_t created,
                                   const char **pjson, apr_size_t *plen)
{
    const char *s = fl_json_dump(p, renamed(entry->answer, new_id, created), 1);
    *pjson = s;
    *plen = strlen(s);
    return APR_SUCCESS;
}

static void replay_stream(apr_pool_t *p, const fl_cache_entry_t *entry, const char *new_id,
                          apr_time_t created, int include_usage, apr_array_header_t *out)
{
    json_t *c, *o;
    size_t i;
    json_array_foreach(entry->chunks, i, c) {
        if (!include_usage && is_usage_chunk(c)) continue;
        o = renamed(c, new_id, created);
        if (!include_usage) json_object_del(o, "usage");
        APR_ARRAY_PUSH(out, const char *) = fl_json_dump(p, o, 1);
    }
}

static void push_delta(apr_pool_t *p, fl_oai_stream_t *st, apr_array_header_t *out,
                       json_t *delta)
{
    APR_ARRAY_PUSH(out, const char *) = fl_oai_chunk(p, st, delta, NULL);
}

static json_t *calls_delta(json_t *call)
{
    json_t *d = json_object(), *calls = json_array();
    json_array_append_new(calls, call);
    json_object_set_new(d, "tool_calls", calls);
    return d;
}

/* The sequence OpenAI streams for such an answer, built by the chunk builder every adapter
 * uses. Reasoning comes before content: that is the order a model writes them in. */
static void synthesise(apr_pool_t *p, const fl_cache_entry_t *entry, const char *new_id,
                       apr_time_t created, int include_usage, apr_array_header_t *out)
{
    static const char *const texts[] = { "reasoning_content", "content", "refusal" };
    json_t *choice = json_array_get(json_object_get(entry->answer, "choices"), 0);
    json_t *msg = json_object_get(choice, "message"), *tc, *fn;
    fl_oai_stream_t st;
    size_t i;
    const char *s;

    fl_oai_stream_init(&st, p, entry->model, include_usage);
    st.id = new_id;
    st.created = apr_time_sec(created);
    /* the first delta: the role, and an empty text unless the message has none (a tool call) */
    push_delta(p, &st, out, json_pack("{so}", "content",
                                      json_is_null(json_object_get(msg, "content"))
                                      ? json_null() : json_string("")));
    for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        if ((s = fl_json_str(msg, texts[i], NULL)) && *s) {
            push_delta(p, &st, out, json_pack("{ss}", texts[i], s));
        }
    }
    json_array_foreach(json_object_get(msg, "tool_calls"), i, tc) {
        fn = json_object_get(tc, "function");
        push_delta(p, &st, out, calls_delta(fl_oai_tool_call((int)i, fl_json_str(tc, "id", NULL),
                                                             fl_json_str(fn, "name", ""), "")));
        if (*(s = fl_json_str(fn, "arguments", ""))) {
            push_delta(p, &st, out, calls_delta(fl_oai_tool_call((int)i, NULL, NULL, s)));
        }
    }
    APR_ARRAY_PUSH(out, const char *) =
        fl_oai_chunk(p, &st, NULL, fl_json_str(choice, "finish_reason", "stop"));
    if (include_usage) {
        APR_ARRAY_PUSH(out, const char *) = fl_oai_usage_chunk(p, &st, &entry->usage);
    }
}

apr_status_t fl_cache_entry_chunks(apr_pool_t *p, const fl_cache_entry_t *entry,
                                   const char *new_id, apr_time_t created, int include_usage,
                                   apr_array_header_t **pchunks)
{
    apr_array_header_t *out = apr_array_make(p, entry->chunks ? (int)json_array_size(entry->chunks)
                                                              : 8, sizeof(const char *));
    if (entry->streamed) replay_stream(p, entry, new_id, created, include_usage, out);
    else synthesise(p, entry, new_id, created, include_usage, out);
    *pchunks = out;
    return APR_SUCCESS;
}

void fl_cache_entry_usage(const fl_cache_entry_t *entry, fl_usage_t *usage)
{
    *usage = entry->usage;
}

const char *fl_cache_entry_model(const fl_cache_entry_t *entry)
{
    return entry->model;
}

int fl_cache_entry_streamed(const fl_cache_entry_t *entry)
{
    return entry->streamed;
}
