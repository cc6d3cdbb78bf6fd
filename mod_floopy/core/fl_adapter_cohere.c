/* Cohere v2 Chat: being built (issue 3). Until it is, a provider of this type is refused at start-up
 * with a message that says so. */
#include "fl_adapter.h"

static const char *cohere_configure(fl_provider_t *pv, apr_pool_t *p)
{
    return "type=cohere is not built yet";
}

const fl_adapter_t fl_adapter_cohere = {
    "cohere", 0, NULL, NULL, cohere_configure, NULL, NULL, NULL, NULL, NULL, NULL
};
