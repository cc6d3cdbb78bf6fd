/* Unit tests of the bedrock adapter(s) on recorded wire traffic: being written (issue 3). */
#include "fl_test.h"

void test_bedrock(apr_pool_t *p)
{
    (void)p;
}
