#include <stdlib.h>
#include <string.h>

#include "fl_cache_key.h"

/* The first element of the hashed array: a stored answer keyed under another canonical form
 * (a future version of this file) can never be found by this one. */
#define KEY_FORM "floopy-cache-key/1"

/* Sorted keys and no whitespace make the text depend on the JSON value alone. Numbers are
 * printed as Jansson holds them: an integer stays "1" and a real keeps its point ("1.0"), so 1
 * and 1.0 are two keys. Folding them would need a walk of the whole request and is not safe in
 * general (an API may take 1 and refuse 1.0, e.g. for n), while a client library spells a value
 * the same way every time, so the split costs almost no hits. Reals get Jansson's default 17
 * digits, which tell every two different doubles apart. Strings are printed as UTF-8 with
 * Jansson's one escaping, so "\u00e9" and "é" in the client's text are one key. */
#define KEY_FLAGS (JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)

apr_status_t fl_cache_key(apr_pool_t *p, const char *org_id, const char *model_named,
                          const char *endpoint, json_t *request,
                          char out[FL_SHA256_HEX_LEN + 1])
{
    json_t *fields, *framed;
    char *text;

    if (!org_id || !model_named || !endpoint || !json_is_object(request)) {
        return APR_EINVAL;
    }
    /* Only how the answer is delivered may differ between two requests sharing an answer:
     * stream and stream_options (include_usage) are replayed from the one entry. Everything
     * else stays in, known or not, so a field the gateway has never heard of cannot make two
     * different questions share an answer. That includes `user`, `metadata`, `store` and
     * `safety_identifier`, which do not change what the model writes: keeping them costs hits
     * for clients that tag every end user, but never hands one end user an answer recorded
     * for another, which an organisation may rely on. (Shallow copy: the values are shared.) */
    fields = json_copy(request);
    json_object_del(fields, "stream");
    json_object_del(fields, "stream_options");
    /* One JSON array frames the parts: no org id, whatever characters it holds, can spill
     * into the model name or the request. */
    framed = json_pack("[sssso]", KEY_FORM, org_id, model_named, endpoint, fields);
    if (!framed) {
        return APR_EINVAL;
    }
    text = json_dumps(framed, KEY_FLAGS);
    json_decref(framed);
    if (!text) {
        return APR_ENOMEM;
    }
    fl_sha256_hex(text, strlen(text), out);
    free(text);
    return APR_SUCCESS;
}
