#include <apr_general.h>
#include "fl_test.h"
#include "fl_http.h"

int fl_test_passed, fl_test_failed;

static const struct { const char *name; fl_suite_fn *fn; } suites[] = {
    { "util", test_util }, { "sse", test_sse }, { "catalog", test_catalog },
    { "openai", test_openai }, { "decision", test_decision }, { "http", test_http },
    { "anthropic", test_anthropic }, { "gemini", test_gemini }, { "bedrock", test_bedrock },
    { "compat", test_compat }, { "router", test_router }, { "sticky", test_sticky },
    { "cache_key", test_cache_key }, { "cache_entry", test_cache_entry },
    { "limit", test_limit }, { "limittable", test_limit_table },
};

int main(void)
{
    apr_pool_t *p;
    size_t i;
    apr_initialize();
    fl_http_global_init();
    for (i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
        int before = fl_test_failed;
        apr_pool_create(&p, NULL);
        suites[i].fn(p);
        apr_pool_destroy(p);
        fprintf(stdout, "suite %-10s %s\n", suites[i].name, fl_test_failed == before ? "ok" : "FAILED");
    }
    fprintf(stdout, "unit: %d passed, %d failed\n", fl_test_passed, fl_test_failed);
    apr_terminate();
    return fl_test_failed ? 1 : 0;
}
