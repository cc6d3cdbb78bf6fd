#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include <apr_file_io.h>
#include <apr_thread_mutex.h>
#include <apr_escape.h>
#include <jansson.h>

#include "fl_gtoken.h"
#include "fl_jwt.h"
#include "fl_json.h"
#include "fl_buf.h"

#define KEY_FILE_MAX (64 * 1024)
#define TOKEN_BODY_MAX (64 * 1024)
/* Refresh this long before the token expires, so no request goes out with one about to die. */
#define REFRESH_MARGIN apr_time_from_sec(300)

static const char *read_file(apr_pool_t *p, const char *path, const char **out)
{
    apr_file_t *f;
    char *buf = apr_palloc(p, KEY_FILE_MAX + 1);
    apr_size_t n = KEY_FILE_MAX;
    apr_status_t rv;
    if (apr_file_open(&f, path, APR_FOPEN_READ, 0, p) != APR_SUCCESS) {
        return apr_psprintf(p, "cannot open service_account_file %s", path);
    }
    rv = apr_file_read_full(f, buf, KEY_FILE_MAX, &n);
    apr_file_close(f);
    if (rv != APR_SUCCESS && rv != APR_EOF) {
        return apr_psprintf(p, "cannot read service_account_file %s", path);
    }
    buf[n] = '\0';
    *out = buf;
    return NULL;
}

const char *fl_gsa_load(apr_pool_t *p, const char *path, fl_gsa_t **psa)
{
    const char *text = NULL, *err, *type;
    json_t *root;
    json_error_t je;
    fl_gsa_t *sa = apr_pcalloc(p, sizeof(*sa));

    if ((err = read_file(p, path, &text))) return err;
    root = fl_json_pool_own(p, json_loads(text, 0, &je));
    if (!json_is_object(root)) {
        return apr_psprintf(p, "service_account_file %s is not a JSON key file (line %d: %s)",
                            path, je.line, je.text);
    }
    type = fl_json_str(root, "type", NULL);
    if (type && strcmp(type, "service_account")) {
        return apr_psprintf(p, "service_account_file %s: type is \"%s\", not \"service_account\"",
                            path, type);
    }
    sa->client_email = fl_json_str(root, "client_email", NULL);
    sa->private_key = fl_json_str(root, "private_key", NULL);
    sa->private_key_id = fl_json_str(root, "private_key_id", NULL);
    sa->token_uri = fl_json_str(root, "token_uri", NULL);
    if (!sa->client_email || !*sa->client_email) {
        return apr_psprintf(p, "service_account_file %s has no client_email", path);
    }
    if (!sa->private_key) return apr_psprintf(p, "service_account_file %s has no private_key", path);
    if ((err = fl_jwt_check_key(p, sa->private_key))) {
        return apr_psprintf(p, "service_account_file %s: %s", path, err);
    }
    *psa = sa;
    return NULL;
}

const char *fl_gsa_assertion(apr_pool_t *p, const fl_gsa_t *sa, apr_time_t now,
                             const char **err)
{
    json_t *c = json_object();
    apr_int64_t iat = apr_time_sec(now);
    const char *jwt;
    json_object_set_new(c, "iss", json_string(sa->client_email));
    json_object_set_new(c, "scope", json_string(FL_GOOGLE_SCOPE));
    json_object_set_new(c, "aud", json_string(sa->token_uri));
    json_object_set_new(c, "iat", json_integer(iat));
    json_object_set_new(c, "exp", json_integer(iat + 3600));
    jwt = fl_jwt_rs256(p, sa->private_key, sa->private_key_id, c, err);
    json_decref(c);
    return jwt;
}

const char *fl_gsa_form(apr_pool_t *p, const char *assertion)
{
    /* a JWT is base64url and dots: nothing in it needs escaping, but say so in code */
    return apr_pstrcat(p, "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
                       "&assertion=", apr_pescape_urlencoded(p, assertion), NULL);
}

const char *fl_gsa_parse_token(apr_pool_t *p, const char *body, apr_size_t len,
                               const char **token, apr_int64_t *expires_in)
{
    json_t *root = fl_json_pool_own(p, json_loadb(body, len, 0, NULL));
    const char *t = fl_json_str(root, "access_token", NULL);
    json_t *ex = json_object_get(root, "expires_in");
    if (!t || !*t || strpbrk(t, "\r\n")) return "the token endpoint's answer has no access_token";
    *token = t;
    *expires_in = json_is_integer(ex) ? json_integer_value(ex) : 3600;
    return NULL;
}

struct fl_gtoken_t {
    const fl_gsa_t *sa;
    apr_thread_mutex_t *lock;    /* guards token and expires */
    apr_thread_mutex_t *refresh; /* held by the one thread that is fetching */
    char *token;                 /* heap: replaced every hour for the life of the process */
    apr_time_t expires;
};

static apr_status_t token_free(void *data)
{
    fl_gtoken_t *t = data;
    free(t->token);
    t->token = NULL;
    return APR_SUCCESS;
}

apr_status_t fl_gtoken_create(fl_gtoken_t **pt, apr_pool_t *p, const fl_gsa_t *sa)
{
    fl_gtoken_t *t = apr_pcalloc(p, sizeof(*t));
    apr_status_t rv;
    t->sa = sa;
    if ((rv = apr_thread_mutex_create(&t->lock, APR_THREAD_MUTEX_DEFAULT, p)) != APR_SUCCESS
        || (rv = apr_thread_mutex_create(&t->refresh, APR_THREAD_MUTEX_DEFAULT, p)) != APR_SUCCESS) {
        return rv;
    }
    apr_pool_cleanup_register(p, t, token_free, apr_pool_cleanup_null);
    *pt = t;
    return APR_SUCCESS;
}

/* The cached token if it is valid until at least `until`, copied into p. */
static const char *cached(fl_gtoken_t *t, apr_pool_t *p, apr_time_t until)
{
    const char *out = NULL;
    apr_thread_mutex_lock(t->lock);
    if (t->token && t->expires > until) out = apr_pstrdup(p, t->token);
    apr_thread_mutex_unlock(t->lock);
    return out;
}

static apr_status_t collect(void *baton, const char *buf, apr_size_t len)
{
    return fl_buf_append(baton, buf, len);
}

static fl_error_t *fetch(fl_gtoken_t *t, fl_http_t *http, apr_pool_t *p, apr_time_t now,
                         long connect_ms, long timeout_ms, const char *provider)
{
    fl_http_request_t req;
    fl_http_response_t resp;
    fl_buf_t *body = fl_buf_create(p, TOKEN_BODY_MAX);
    const char *err = NULL, *jwt = fl_gsa_assertion(p, t->sa, now, &err), *tok;
    apr_int64_t ttl;
    apr_status_t rv;

    if (!jwt) {
        return fl_error_make(p, 502, "upstream_error", "upstream_auth_failed", NULL,
                             "provider %s: %s", provider, err);
    }
    memset(&req, 0, sizeof(req));
    req.url = t->sa->token_uri;
    req.body = fl_gsa_form(p, jwt);
    req.body_len = strlen(req.body);
    req.accept = "application/json";
    req.content_type = "application/x-www-form-urlencoded";
    req.connect_timeout_ms = connect_ms;
    req.timeout_ms = timeout_ms;
    req.idle_timeout_ms = timeout_ms;
    req.on_data = collect;
    req.baton = body;
    rv = fl_http_perform(http, p, &req, &resp);
    if (rv == APR_TIMEUP) {
        return fl_error_make(p, 504, "timeout_error", "upstream_timeout", NULL,
                             "provider %s: the token endpoint did not answer in time", provider);
    }
    if (rv != APR_SUCCESS || resp.status != 200) {
        return fl_error_make(p, 502, "upstream_error", "upstream_auth_failed", NULL,
                             "provider %s: the token endpoint refused the service account "
                             "(HTTP %d%s%s)", provider, resp.status, resp.error ? ", " : "",
                             resp.error ? resp.error : "");
    }
    if ((err = fl_gsa_parse_token(p, body->data, body->len, &tok, &ttl))) {
        return fl_error_make(p, 502, "upstream_error", "upstream_auth_failed", NULL,
                             "provider %s: %s", provider, err);
    }
    apr_thread_mutex_lock(t->lock);
    free(t->token);
    t->token = strdup(tok);
    t->expires = t->token ? now + apr_time_from_sec(ttl) : 0;
    apr_thread_mutex_unlock(t->lock);
    return t->token ? NULL : fl_error_make(p, 503, "service_unavailable", "out_of_memory", NULL,
                                           "provider %s: out of memory", provider);
}

fl_error_t *fl_gtoken_get(fl_gtoken_t *t, fl_http_t *http, apr_pool_t *p, apr_time_t now,
                          long connect_ms, long timeout_ms, const char *provider,
                          const char **token)
{
    fl_error_t *e = NULL;
    if ((*token = cached(t, p, now + REFRESH_MARGIN))) return NULL;
    /* Someone else is refreshing: a token that has not yet expired still does for this call. */
    if (apr_thread_mutex_trylock(t->refresh) != APR_SUCCESS) {
        if ((*token = cached(t, p, now))) return NULL;
        apr_thread_mutex_lock(t->refresh);
    }
    /* Whoever held the lock before may have refreshed already. */
    if (!(*token = cached(t, p, now + REFRESH_MARGIN))) {
        e = fetch(t, http, p, now, connect_ms, timeout_ms, provider);
        if (!e && !(*token = cached(t, p, now))) {
            e = fl_error_make(p, 502, "upstream_error", "upstream_auth_failed", NULL,
                              "provider %s: the token endpoint gave an expired token", provider);
        }
    }
    apr_thread_mutex_unlock(t->refresh);
    return e;
}
