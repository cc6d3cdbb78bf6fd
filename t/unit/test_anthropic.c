/* Unit tests of the anthropic adapter(s) on recorded wire traffic: being written (issue 3). */
#include "fl_test.h"

void test_anthropic(apr_pool_t *p)
{
    (void)p;
}
