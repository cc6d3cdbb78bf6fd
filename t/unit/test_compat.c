/* Unit tests of the compat adapter(s) on recorded wire traffic: being written (issue 3). */
#include "fl_test.h"

void test_compat(apr_pool_t *p)
{
    (void)p;
}
