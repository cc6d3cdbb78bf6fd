/* The endpoint table: one place that knows which method and path reach which handler, answers
 * 404 and 405 (with Allow), and checks the caller's role, for /v1 and the admin API alike. */
#include <apr_strings.h>
#include <http_protocol.h>

#include "http.h"

/* 1 when path matches pattern; its {name} segments (non-empty, no '/') go to arg. */
static int match(apr_pool_t *p, const char *pattern, const char *path, const char **arg)
{
    int n = 0;
    while (*pattern && *path) {
        if (*pattern == '{') {
            apr_size_t len = strcspn(path, "/");
            if (!len || n == FLOOPY_MAX_PARAMS) return 0;
            arg[n++] = apr_pstrmemdup(p, path, len);
            path += len;
            pattern += strcspn(pattern, "}");
            if (*pattern) pattern++;
        }
        else if (*pattern++ != *path++) {
            return 0;
        }
    }
    return !*pattern && !*path;
}

static const char *method_name(int m)
{
    switch (m) {
    case M_GET: return "GET";
    case M_POST: return "POST";
    case M_PUT: return "PUT";
    case M_PATCH: return "PATCH";
    case M_DELETE: return "DELETE";
    default: return "?";
    }
}

int floopy_dispatch(request_rec *r, const floopy_endpoint_t *table,
                    const floopy_principal_t *who, const char *path)
{
    const char *arg[FLOOPY_MAX_PARAMS] = { NULL }, *allow = NULL;
    const floopy_endpoint_t *ep;

    for (ep = table; ep->pattern; ep++) {
        if (!match(r->pool, ep->pattern, path, arg)) continue;
        if (ep->method != r->method_number) {
            allow = allow ? apr_pstrcat(r->pool, allow, ", ", method_name(ep->method), NULL)
                          : method_name(ep->method);
            continue;
        }
        if (ep->role == FLOOPY_ROLE_ADMIN && who && strcmp(who->role, "admin")) {
            return floopy_fail_as(r, FLOOPY_E_ROLE, NULL,
                                  apr_pstrcat(r->pool, ep->what, " needs an admin key of the "
                                              "organisation", NULL));
        }
        return ep->handler(r, who, arg);
    }
    if (allow) {
        apr_table_setn(r->err_headers_out, "Allow", allow);
        return floopy_fail_as(r, FLOOPY_E_METHOD, NULL,
                              apr_psprintf(r->pool, "use %s for %s", allow,
                                           ap_escape_html(r->pool, path)));
    }
    return floopy_fail_as(r, FLOOPY_E_UNKNOWN_URL, NULL,
                          apr_psprintf(r->pool, "no endpoint at %s %s", r->method,
                                       ap_escape_html(r->pool, r->uri)));
}
