#!/usr/bin/env node
// Mock of the thirteen OpenAI-compatible providers (Node stdlib only). One server; the provider
// is chosen by the first path segment, followed by that provider's real path after its host:
//
//   /deepseek/chat/completions            /mistral/v1/chat/completions
//   /xai/v1/chat/completions              /groq/openai/v1/chat/completions
//   /cerebras/v1/chat/completions         /sambanova/v1/chat/completions
//   /together/v1/chat/completions         /fireworks/inference/v1/chat/completions
//   /perplexity/chat/completions          /ai21/studio/v1/chat/completions
//   /deepinfra/v1/openai/chat/completions /nebius/v1/chat/completions
//   /novita/openai/chat/completions
//
//   node t/mock/compat-mock.mjs --port 0    prints {"port":N}, runs until SIGTERM
//
// Each profile enforces what its provider documents as rejected, answering in that provider's
// error shape, so a test that gets a normal answer proves the gateway fixed the request first
// (sources in mod_floopy/core/providers/fl_adapter_compat.c and docs/providers.md):
//   groq        400 on logprobs, logit_bias, top_logprobs, messages[].name, n != 1
//   cerebras    400 on frequency_penalty, logit_bias, presence_penalty, parallel_tool_calls,
//               service_tier
//   mistral     400 on a tool-call id that is not 9 of [a-zA-Z0-9] (its top-level error shape);
//               422 on seed / max_completion_tokens (its schema has random_seed / max_tokens)
//   xai         400 on presence_penalty, frequency_penalty, stop for reasoning models
//               (grok-3-mini, grok-4 except *non-reasoning, grok-code); on reasoning_effort
//               for grok-3 and grok-4 models other than grok-3-mini
//   deepseek    400 on logprobs/top_logprobs for deepseek-reasoner; 422 on image parts
//   perplexity  400 on tools
//   ai21        422 on non-string content, on response_format other than text/json_object,
//               on max_completion_tokens ({"detail": ...})
// and answers with its provider's extras: DeepSeek's prompt_cache_hit/miss_tokens, Groq's
// x_groq.usage, Perplexity's citations/search_results/citation_tokens, Mistral's 9-character
// tool-call ids, usage on the final choice chunk for Fireworks, Mistral and Perplexity.
// Requests without "Authorization: Bearer ..." get 401.
//
// Behaviour by model name (as t/mock/openai-mock.mjs): fail-429 (retry-after: 7), fail-500,
// stall, stall-stream, cut, slow-MS; legacy-usage (groq: no usage chunk even when asked, only
// x_groq.usage, as Groq streamed before honouring stream_options). Normal answers
// "Echo: <last user text>" (+ " [images: N]"), a tool call to the first tool when tools are
// given and no tool result follows the last user message, "Tool said: <content>" after one.
// GET /__mock/requests: the last 200 requests {method, path, headers, body}; DELETE clears.

import {
  mockName, parseArgs, stall, dieSoon, record, loggedBody, introspect, randAlnum, words, countImages,
  promptWords, echoPlan, sseData as sse, writeAsync, writeEach, writeHalf, slowDown, serve,
} from './mock-lib.mjs';

mockName('compat-mock');
const args = parseArgs({ strict: false });

function contentText(c) {
  if (typeof c === 'string') return c;
  if (Array.isArray(c)) return c.filter((p) => p && p.type === 'text').map((p) => p.text).join(' ');
  return '';
}
const oaiError = (message, type, param = null, code = null) => ({ error: { message, type, param, code } });

// ------------------------------------------------------------------ profiles

const XAI_REASONING = (m) => !m.includes('non-reasoning') && /grok-3-mini|grok-4|grok-code/.test(m);

const PROFILES = {
  deepseek: {
    path: '/chat/completions',
    reject(b) {
      if (String(b.model).startsWith('deepseek-reasoner')) {
        for (const k of ['logprobs', 'top_logprobs']) {
          if (k in b) return [400, oaiError(`${k} is not supported with deepseek-reasoner`, 'invalid_request_error', null, 'invalid_request_error')];
        }
      }
      for (const m of b.messages) {
        if (countImages(m.content)) {
          return [422, oaiError('Failed to deserialize the JSON body into the target type: messages[0]: unknown variant `image_url`, expected `text`', 'invalid_request_error')];
        }
      }
      return null;
    },
    usage(u) {
      const hit = Math.floor(u.prompt_tokens / 2);
      delete u.prompt_tokens_details;
      return { ...u, prompt_cache_hit_tokens: hit, prompt_cache_miss_tokens: u.prompt_tokens - hit };
    },
  },
  mistral: {
    path: '/v1/chat/completions',
    errorShape: (message, type = 'invalid_request_error') => ({ object: 'error', message, type, param: null, code: null }),
    reject(b) {
      for (const k of ['seed', 'max_completion_tokens']) {
        if (k in b) {
          return [422, { object: 'error', message: { detail: [{ type: 'extra_forbidden', loc: ['body', k], msg: 'Extra inputs are not permitted', input: b[k] }] }, type: 'invalid_request_message_error', param: null, code: null }];
        }
      }
      for (const m of b.messages) {
        const ids = [];
        if (m.role === 'tool' && m.tool_call_id !== undefined) ids.push(m.tool_call_id);
        for (const tc of m.tool_calls || []) ids.push(tc.id);
        for (const id of ids) {
          if (!/^[a-zA-Z0-9]{9}$/.test(String(id))) {
            return [400, this.errorShape(`Tool call id was ${id} but must be a-z, A-Z, 0-9, with a length of 9.`)];
          }
        }
      }
      return null;
    },
    toolId: () => randAlnum(9),
    usageOnFinish: true,
  },
  xai: {
    path: '/v1/chat/completions',
    reject(b) {
      const m = String(b.model);
      if ('reasoning_effort' in b && /grok-3|grok-4/.test(m) && !m.includes('grok-3-mini')) {
        return [400, { code: 'Client specified an invalid argument', error: `Model ${m} does not support parameter reasoningEffort.` }];
      }
      if (!XAI_REASONING(m)) return null;
      const names = { presence_penalty: 'presencePenalty', frequency_penalty: 'frequencyPenalty', stop: 'stop' };
      for (const k of Object.keys(names)) {
        if (k in b) return [400, { code: 'Client specified an invalid argument', error: `Model ${b.model} does not support parameter ${names[k]}.` }];
      }
      return null;
    },
  },
  groq: {
    path: '/openai/v1/chat/completions',
    reject(b) {
      for (const k of ['logprobs', 'logit_bias', 'top_logprobs']) {
        if (k in b) return [400, oaiError(`'${k}' : not supported`, 'invalid_request_error')];
      }
      if ('n' in b && b.n !== 1) return [400, oaiError("'n' : number must be at most 1", 'invalid_request_error')];
      if (b.messages.some((m) => 'name' in m)) {
        return [400, oaiError("'messages.0' : for 'role:user' the following must be satisfied[('messages.0.name' : property 'name' is unsupported)]", 'invalid_request_error')];
      }
      return null;
    },
    xGroq: true,
  },
  cerebras: {
    path: '/v1/chat/completions',
    reject(b) {
      for (const k of ['frequency_penalty', 'logit_bias', 'presence_penalty', 'parallel_tool_calls', 'service_tier']) {
        if (k in b) return [400, { message: `${k} is not supported`, type: 'invalid_request_error', param: k, code: 'wrong_api_format' }];
      }
      return null;
    },
  },
  sambanova: { path: '/v1/chat/completions' },
  together: { path: '/v1/chat/completions' },
  fireworks: { path: '/inference/v1/chat/completions', usageOnFinish: true },
  perplexity: {
    path: '/chat/completions',
    reject(b) {
      if (Array.isArray(b.tools) && b.tools.length) return [400, oaiError('Tool calling is not supported for this model', 'invalid_request_error', 'tools')];
      return null;
    },
    extras: () => ({
      citations: ['https://docs.example/sonar'],
      search_results: [{ title: 'Sonar', url: 'https://docs.example/sonar', date: '2026-11-01', snippet: 'mock' }],
    }),
    usage: (u) => ({ ...u, citation_tokens: 7, num_search_queries: 1, search_context_size: 'low' }),
    usageOnFinish: true,
  },
  ai21: {
    path: '/studio/v1/chat/completions',
    reject(b) {
      for (const [i, m] of b.messages.entries()) {
        if (m.content !== null && m.content !== undefined && typeof m.content !== 'string') {
          return [422, { detail: [{ loc: ['body', 'messages', i, 'content'], msg: 'str type expected', type: 'type_error.str' }] }];
        }
      }
      if (b.response_format && !['text', 'json_object'].includes(b.response_format.type)) {
        return [422, { detail: 'response_format type must be text or json_object' }];
      }
      if ('max_completion_tokens' in b) return [422, { detail: 'extra fields not permitted: max_completion_tokens' }];
      return null;
    },
  },
  deepinfra: { path: '/v1/openai/chat/completions' },
  nebius: { path: '/v1/chat/completions' },
  novita: { path: '/openai/chat/completions' },
};

function errorBody(prof, message, type, code) {
  if (prof.errorShape) return prof.errorShape(message, type);
  return oaiError(message, type, null, code);
}

// ------------------------------------------------------------------ answers

function planReply(prof, body) {
  return echoPlan(body, {
    text: contentText,
    toolCall(tools, userText) {
      const id = prof.toolId ? prof.toolId() : 'call_' + randAlnum(24);
      return { kind: 'tool', id, name: tools[0].function.name, args: JSON.stringify({ q: userText }) };
    },
  });
}

function usageOf(prof, body, plan) {
  const prompt = promptWords(body.messages, contentText);
  const completion = plan.kind === 'text' ? words(plan.text) : words(plan.args);
  const u = {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: 0 },
  };
  return prof.usage ? prof.usage(u) : u;
}

function completion(prof, body, plan, id, created) {
  const message = plan.kind === 'text'
    ? { role: 'assistant', content: plan.text }
    : { role: 'assistant', content: null, tool_calls: [{ id: plan.id, type: 'function', function: { name: plan.name, arguments: plan.args } }] };
  return {
    id, object: 'chat.completion', created, model: body.model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: plan.kind === 'text' ? 'stop' : 'tool_calls' }],
    usage: usageOf(prof, body, plan),
    ...(prof.extras ? prof.extras() : {}),
    ...(prof.xGroq ? { x_groq: { id: 'req_' + randAlnum(26) } } : {}),
  };
}

function pieces(s) {
  const p = s.match(/\s*\S+|\s+$/g) || [s];
  return p.length ? p : [s];
}

function streamChunks(prof, body, plan, id, created) {
  const includeUsage = !!(body.stream_options && body.stream_options.include_usage);
  const legacy = String(body.model).includes('legacy-usage');
  const usage = usageOf(prof, body, plan);
  const base = (choices) => ({ id, object: 'chat.completion.chunk', created, model: body.model, choices, ...(prof.extras ? prof.extras() : {}) });
  const ch = (delta, finish = null) => [{ index: 0, delta, logprobs: null, finish_reason: finish }];
  const out = [base(ch({ role: 'assistant', content: '' }))];
  if (prof.xGroq) out[0].x_groq = { id: 'req_' + randAlnum(26) };
  if (plan.kind === 'text') {
    for (const p of pieces(plan.text)) out.push(base(ch({ content: p })));
  } else {
    out.push(base(ch({ tool_calls: [{ index: 0, id: plan.id, type: 'function', function: { name: plan.name, arguments: '' } }] })));
    const a = plan.args;
    const half = Math.ceil(a.length / 2);
    out.push(base(ch({ tool_calls: [{ index: 0, function: { arguments: a.slice(0, half) } }] })));
    out.push(base(ch({ tool_calls: [{ index: 0, function: { arguments: a.slice(half) } }] })));
  }
  const fin = base(ch({}, plan.kind === 'text' ? 'stop' : 'tool_calls'));
  if (prof.usageOnFinish) fin.usage = usage;
  if (prof.xGroq) fin.x_groq = { id: 'req_' + randAlnum(26), usage: { queue_time: 0.01, ...usage, prompt_time: 0.001, completion_time: 0.002, total_time: 0.003 } };
  out.push(fin);
  if (includeUsage && !prof.usageOnFinish && !(prof.xGroq && legacy)) {
    const u = base([]);
    u.usage = usage;
    out.push(u);
  }
  return out;
}

// ------------------------------------------------------------------ HTTP

function sendJson(res, status, obj, headers = {}) {
  if (res.destroyed || res.headersSent) return;
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

async function answer(prof, res, body) {
  const model = String(body.model);
  if (!(await slowDown(model, res))) return;
  if (model.includes('fail-429')) {
    return sendJson(res, 429, errorBody(prof, 'Rate limit reached for model. Please try again in 7s.', 'rate_limit_exceeded', 'rate_limit_exceeded'),
      { 'retry-after': '7', 'retry-after-ms': '7000', 'x-ratelimit-remaining-requests': '0' });
  }
  if (model.includes('fail-500')) return sendJson(res, 500, errorBody(prof, 'Internal server error', 'server_error', null));
  const stallStream = model.includes('stall-stream');
  if (model.includes('stall') && !stallStream) return stall(res);

  const rejected = prof.reject ? prof.reject(body) : null;
  if (rejected) return sendJson(res, rejected[0], rejected[1]);

  const plan = planReply(prof, body);
  const id = 'chatcmpl-' + randAlnum(29);
  const created = Math.floor(Date.now() / 1000);
  const cut = model.includes('cut');
  if (body.stream !== true) {
    const obj = completion(prof, body, plan, id, created);
    if (!cut) return sendJson(res, 200, obj);
    const full = Buffer.from(JSON.stringify(obj));
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': full.length });
    return writeHalf(res, full);
  }
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
  res.flushHeaders();
  const chunks = streamChunks(prof, body, plan, id, created);
  if (stallStream) {
    await writeAsync(res, sse(chunks[0]));
    return stall(res);
  }
  if (!(await writeEach(res, chunks.slice(0, cut ? 3 : chunks.length).map(sse)))) return;
  if (cut) return dieSoon(res);
  res.end('data: [DONE]\n\n');
}

async function handle(req, res, raw) {
  const path = req.url.split('?')[0];
  if (introspect(req, path, (status, obj) => sendJson(res, status, obj))) return;
  const body = loggedBody(raw);
  record({ method: req.method, path, headers: req.headers, body });

  const name = path.split('/')[1] || '';
  const prof = PROFILES[name];
  if (!prof || path !== `/${name}${prof.path}` || req.method !== 'POST') {
    return sendJson(res, 404, oaiError(`Invalid URL (${req.method} ${path})`, 'invalid_request_error'));
  }
  if (!/^Bearer \S+$/.test(req.headers.authorization || '')) {
    return sendJson(res, 401, errorBody(prof, 'Invalid API Key', 'invalid_request_error', 'invalid_api_key'));
  }
  if (!body || typeof body !== 'object' || typeof body.model !== 'string' || !Array.isArray(body.messages)) {
    return sendJson(res, 400, errorBody(prof, 'model and messages are required', 'invalid_request_error', null));
  }
  return answer(prof, res, body);
}

serve(args, handle, (res) => sendJson(res, 500, oaiError('mock internal error', 'server_error')), { host: '127.0.0.1', headersTimeout: 0 });
