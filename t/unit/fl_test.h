/* A minimal unit-test harness for the core: each check counts; main prints "N passed, N failed". */
#ifndef FL_TEST_H
#define FL_TEST_H

#include <stdio.h>
#include <string.h>
#include <apr_pools.h>

extern int fl_test_passed, fl_test_failed;

#define CHECK(cond) do { \
    if (cond) fl_test_passed++; \
    else { fl_test_failed++; fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); } \
} while (0)

#define CHECK_STR(a, b) do { \
    const char *a_ = (a), *b_ = (b); \
    if (a_ && b_ && !strcmp(a_, b_)) fl_test_passed++; \
    else { fl_test_failed++; \
        fprintf(stderr, "FAIL %s:%d: %s == \"%s\", want \"%s\"\n", __FILE__, __LINE__, #a, \
                a_ ? a_ : "(null)", b_ ? b_ : "(null)"); } \
} while (0)

typedef void fl_suite_fn(apr_pool_t *p);

void test_util(apr_pool_t *p);
void test_sse(apr_pool_t *p);
void test_catalog(apr_pool_t *p);
void test_openai(apr_pool_t *p);
void test_decision(apr_pool_t *p);
void test_http(apr_pool_t *p);
void test_anthropic(apr_pool_t *p);
void test_gemini(apr_pool_t *p);
void test_bedrock(apr_pool_t *p);
void test_compat(apr_pool_t *p);
void test_router(apr_pool_t *p);
void test_sticky(apr_pool_t *p);
void test_cache_key(apr_pool_t *p);
void test_cache_entry(apr_pool_t *p);
void test_limit(apr_pool_t *p);
void test_limit_table(apr_pool_t *p);

#endif
