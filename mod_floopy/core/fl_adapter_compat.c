/* OpenAI-compatible providers (DeepSeek, Mistral, xAI, Groq, Cerebras, SambaNova, Together AI,
 * Fireworks AI, Perplexity, AI21, DeepInfra, Nebius, Novita): the OpenAI adapter with a profile
 * of base URL and quirks each. Being built (issue 3): none is listed yet. */
#include "fl_adapter.h"

const fl_adapter_t *const fl_adapters_compat[] = { NULL };
