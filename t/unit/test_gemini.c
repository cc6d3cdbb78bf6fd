/* Unit tests of the gemini adapter(s) on recorded wire traffic: being written (issue 3). */
#include "fl_test.h"

void test_gemini(apr_pool_t *p)
{
    (void)p;
}
