/* Google Gemini (generateContent) and Vertex AI: being built (issue 3). Until they are, a
 * provider of these types is refused at start-up with a message that says so. */
#include "fl_adapter.h"

static const char *gemini_configure(fl_provider_t *pv, apr_pool_t *p)
{
    return "type=gemini is not built yet";
}

static const char *vertex_configure(fl_provider_t *pv, apr_pool_t *p)
{
    return "type=vertex is not built yet";
}

const fl_adapter_t fl_adapter_gemini = {
    "gemini", 0, NULL, NULL, gemini_configure, NULL, NULL, NULL, NULL, NULL, NULL
};

const fl_adapter_t fl_adapter_vertex = {
    "vertex", 0, NULL, NULL, vertex_configure, NULL, NULL, NULL, NULL, NULL, NULL
};
