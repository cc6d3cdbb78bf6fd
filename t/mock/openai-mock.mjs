#!/usr/bin/env node
// Mock OpenAI Chat Completions provider (Node stdlib only).
//
//   node t/mock/openai-mock.mjs --port N [--host 127.0.0.1]
//
// Port 0 picks a free port. Once listening it prints exactly one line to stdout,
// {"port":N}, and runs until SIGTERM/SIGINT.
//
// Endpoints (OpenAI wire format):
//   POST /v1/chat/completions   (stream and non-stream, tools)
//   GET  /v1/models, GET /v1/models/{id}
// Introspection (never logged, never authenticated):
//   GET    /__mock/requests  -> JSON array of the last 200 requests received,
//                               oldest first: {method, path, headers, body}
//                               (body parsed as JSON; the raw string when it is not JSON;
//                               null when empty)
//   DELETE /__mock/requests  -> clears the log and the stats; answers {"cleared":true}
//   GET    /__mock/stats     -> {"total":N,"models":{"<model as received>":N,…}}
//                               (chat requests only; the model is counted as received)
//
// Deterministic content:
//   reply = "Echo: " + text of the last user message (array content: text parts joined by
//   a space; image_url parts add " [images: N]").
//   Last message role "tool"          -> "Tool said: <tool content>".
//   `tools` present and no tool message after the last user message (and tool_choice is
//   not "none")                       -> tool call to the first tool (or the one named by
//   tool_choice), id "call_<24 alnum>", arguments {"q":"<last user text>"},
//   content null, finish_reason "tool_calls".
//   prompt_tokens = whitespace-separated words over all message text + 1 per message;
//   completion_tokens = words in the reply (for a tool call: words in the arguments string).
//
// Behaviour by model name (substring match on the model received; "mock/fail-429" and
// "fail-429" both work):
//   fail-429      429 rate_limit_exceeded, retry-after: 7, retry-after-ms: 7000, remaining 0
//   quota-429     429 insufficient_quota (no retry-after)
//   fail-500      500 server_error
//   fail-503      503 server_is_overloaded
//   fail-400      400 invalid_request_error, param "max_tokens", code "unsupported_parameter"
//   fail-401      401 invalid_api_key
//   stall-stream  stream requests: headers + first chunk, then silence (non-stream: normal)
//   stall         read the body and never answer (socket destroyed after 120 s)
//   cut           stream: role chunk + two content chunks, then the socket is destroyed
//                 (no [DONE]); non-stream: headers + half the JSON body, then destroyed
//   slow-MS       wait MS milliseconds, then behave as the rest of the name says
//   garbage       200, content-type application/json, body that is not JSON
//   judge         an LLM-as-judge answer: content is the JSON object
//                 {"relevance":N,"coherence":N,"helpfulness":N,"safety":N}, N from the first
//                 "[score:N]" in the last user message (1..10), else 7; "[score:bad]" gives a
//                 content that is not JSON, so the gateway's refusal of a bad verdict is tested
//   anything else normal answer
//
// Environment:
//   MOCK_REQUIRE_KEY     when set, /v1/* requests need "Authorization: Bearer $MOCK_REQUIRE_KEY"
//   MOCK_CHUNK_DELAY_MS  delay between stream chunks (default 2)

import crypto from 'node:crypto';
import {
  mockName, parseArgs, stall, dieSoon, record, loggedBody, countModel, introspect, randAlnum, words,
  promptWords, echoPlan, splitPieces, splitArgs, sseData as sse, writeAsync, writeEach, writeHalf, slowDown, serve,
} from './mock-lib.mjs';

mockName('openai-mock');
const args = parseArgs();
const REQUIRE_KEY = process.env.MOCK_REQUIRE_KEY || '';
const FINGERPRINT = 'fp_f0e1d2c3b4';
const RL_LIMIT_REQUESTS = 10000;
const RL_LIMIT_TOKENS = 30000000;

let served = 0;

// ---------------------------------------------------------------- helpers

function rateHeaders(remaining = RL_LIMIT_REQUESTS - 1 - (served % RL_LIMIT_REQUESTS)) {
  return {
    'x-ratelimit-limit-requests': String(RL_LIMIT_REQUESTS),
    'x-ratelimit-limit-tokens': String(RL_LIMIT_TOKENS),
    'x-ratelimit-remaining-requests': String(remaining),
    'x-ratelimit-remaining-tokens': String(remaining === 0 ? 0 : RL_LIMIT_TOKENS - 1000),
    'x-ratelimit-reset-requests': remaining === 0 ? '7s' : '6ms',
    'x-ratelimit-reset-tokens': remaining === 0 ? '7s' : '2ms',
  };
}

function commonHeaders(started) {
  return {
    'x-request-id': 'req_' + crypto.randomBytes(16).toString('hex'),
    'openai-processing-ms': String(Math.max(1, Date.now() - started)),
    'openai-version': '2020-10-01',
    'openai-organization': 'mock-org',
  };
}

function sendJson(res, status, obj, extraHeaders = {}, started = Date.now()) {
  if (res.destroyed || res.headersSent) return;
  const body = JSON.stringify(obj);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    ...commonHeaders(started),
    ...extraHeaders,
  });
  res.end(body);
}

function openaiError(message, type, param = null, code = null) {
  return { error: { message, type, param, code } };
}

// ---------------------------------------------------------------- canned errors

function sendCannedError(res, kind, started) {
  switch (kind) {
    case 'fail-429':
      return sendJson(
        res,
        429,
        openaiError(
          'Rate limit reached for requests per min (RPM) on mock: Limit 10000, Used 10000, Requested 1. Please try again in 7s.',
          'requests',
          null,
          'rate_limit_exceeded',
        ),
        { ...rateHeaders(0), 'retry-after': '7', 'retry-after-ms': '7000' },
        started,
      );
    case 'quota-429':
      return sendJson(
        res,
        429,
        openaiError(
          'You exceeded your current quota, please check your plan and billing details.',
          'insufficient_quota',
          null,
          'insufficient_quota',
        ),
        rateHeaders(),
        started,
      );
    case 'fail-500':
      return sendJson(
        res,
        500,
        openaiError(
          'The server had an error while processing your request. Sorry about that!',
          'server_error',
          null,
          null,
        ),
        rateHeaders(),
        started,
      );
    case 'fail-503':
      return sendJson(
        res,
        503,
        openaiError(
          'The engine is currently overloaded, please try again later.',
          'server_error',
          null,
          'server_is_overloaded',
        ),
        rateHeaders(),
        started,
      );
    case 'fail-400':
      return sendJson(
        res,
        400,
        openaiError(
          "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
          'invalid_request_error',
          'max_tokens',
          'unsupported_parameter',
        ),
        rateHeaders(),
        started,
      );
    case 'fail-401':
      return sendInvalidKey(res, 'sk-mock', started);
    default:
      throw new Error(`unknown canned error ${kind}`);
  }
}

function sendInvalidKey(res, presented, started) {
  const shown = presented.length > 8 ? `${presented.slice(0, 3)}*****${presented.slice(-4)}` : '*****';
  return sendJson(
    res,
    401,
    openaiError(
      `Incorrect API key provided: ${shown}. You can find your API key in your account settings.`,
      'invalid_request_error',
      null,
      'invalid_api_key',
    ),
    {},
    started,
  );
}

function checkAuth(req, res, started) {
  if (!REQUIRE_KEY) return true;
  const h = req.headers['authorization'] || '';
  const m = /^Bearer\s+(.+)$/i.exec(h);
  if (!m) {
    sendJson(
      res,
      401,
      openaiError(
        "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        'invalid_request_error',
        null,
        null,
      ),
      {},
      started,
    );
    return false;
  }
  if (m[1].trim() !== REQUIRE_KEY) {
    sendInvalidKey(res, m[1].trim(), started);
    return false;
  }
  return true;
}

// ---------------------------------------------------------------- the answer

// A judge's verdict on the conversation it was shown (see "judge" above).
function judgePlan(body) {
  const messages = Array.isArray(body.messages) ? body.messages : [];
  const user = [...messages].reverse().find((m) => m && m.role === 'user');
  const text = user && typeof user.content === 'string' ? user.content : '';
  const m = /\[score:(\d+|bad)\]/.exec(text);
  if (m && m[1] === 'bad') return { kind: 'text', text: 'I would rather not say.' };
  const n = m ? Math.min(10, Math.max(1, Number(m[1]))) : 7;
  return { kind: 'text', text: JSON.stringify({ relevance: n, coherence: n, helpfulness: n, safety: n }) };
}

// Decide what the assistant says: {kind:'text', text} or {kind:'tool', name, args}.
function planReply(body) {
  if (String(body.model).includes('judge')) return judgePlan(body);
  return echoPlan(body, {
    toolCall(tools, userText) {
      let name = tools[0].function.name;
      const tc = body.tool_choice;
      if (tc && typeof tc === 'object' && tc.function && typeof tc.function.name === 'string') name = tc.function.name;
      return { kind: 'tool', id: 'call_' + randAlnum(24), name, args: JSON.stringify({ q: userText }) };
    },
  });
}

function computeUsage(body, plan) {
  const prompt = promptWords(Array.isArray(body.messages) ? body.messages : []);
  const completion = plan.kind === 'text' ? words(plan.text) : words(plan.args);
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

function completionObject(body, plan, id, created) {
  const message =
    plan.kind === 'text'
      ? { role: 'assistant', content: plan.text, refusal: null, annotations: [] }
      : {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: plan.id, type: 'function', function: { name: plan.name, arguments: plan.args } }],
          refusal: null,
          annotations: [],
        };
  return {
    id,
    object: 'chat.completion',
    created,
    model: body.model,
    choices: [
      { index: 0, message, logprobs: null, finish_reason: plan.kind === 'text' ? 'stop' : 'tool_calls' },
    ],
    usage: computeUsage(body, plan),
    service_tier: 'default',
    system_fingerprint: FINGERPRINT,
  };
}

// The full list of SSE chunk objects for a stream answer (without [DONE]).
function streamChunks(body, plan, id, created) {
  const includeUsage = !!(body.stream_options && body.stream_options.include_usage);
  const base = () => {
    const c = { id, object: 'chat.completion.chunk', created, model: body.model, service_tier: 'default', system_fingerprint: FINGERPRINT, choices: [] };
    if (includeUsage) c.usage = null;
    return c;
  };
  const choice = (delta, finish = null) => [{ index: 0, delta, logprobs: null, finish_reason: finish }];
  const chunks = [];
  let c = base();
  c.choices = choice({ role: 'assistant', content: plan.kind === 'text' ? '' : null, refusal: null });
  chunks.push(c);
  if (plan.kind === 'text') {
    for (const p of splitPieces(plan.text)) {
      c = base();
      c.choices = choice({ content: p });
      chunks.push(c);
    }
    c = base();
    c.choices = choice({}, 'stop');
    chunks.push(c);
  } else {
    c = base();
    c.choices = choice({
      tool_calls: [{ index: 0, id: plan.id, type: 'function', function: { name: plan.name, arguments: '' } }],
    });
    chunks.push(c);
    for (const frag of splitArgs(plan.args)) {
      c = base();
      c.choices = choice({ tool_calls: [{ index: 0, function: { arguments: frag } }] });
      chunks.push(c);
    }
    c = base();
    c.choices = choice({}, 'tool_calls');
    chunks.push(c);
  }
  if (includeUsage) {
    c = base();
    c.choices = [];
    c.usage = computeUsage(body, plan);
    chunks.push(c);
  }
  return chunks;
}

async function answerChat(req, res, body, started) {
  const model = String(body.model);
  const stream = body.stream === true;

  if (!(await slowDown(model, res))) return;

  for (const kind of ['fail-429', 'quota-429', 'fail-500', 'fail-503', 'fail-400', 'fail-401']) {
    if (model.includes(kind)) return sendCannedError(res, kind, started);
  }
  const stallStream = model.includes('stall-stream');
  if (model.includes('stall') && !stallStream) return stall(res);

  if (model.includes('garbage')) {
    const junk = '<html><body>upstream said something that is not JSON {"choices": [</body></html>\n';
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(junk),
      ...commonHeaders(started),
      ...rateHeaders(),
    });
    return res.end(junk);
  }

  const cut = model.includes('cut');
  const plan = planReply(body);
  const id = 'chatcmpl-' + randAlnum(29);
  const created = Math.floor(Date.now() / 1000);

  if (!stream) {
    const obj = completionObject(body, plan, id, created);
    if (!cut) return sendJson(res, 200, obj, rateHeaders(), started);
    const full = Buffer.from(JSON.stringify(obj));
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': full.length,
      ...commonHeaders(started),
      ...rateHeaders(),
    });
    return writeHalf(res, full);
  }

  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, must-revalidate',
    ...commonHeaders(started),
    ...rateHeaders(),
  });
  res.flushHeaders();
  const chunks = streamChunks(body, plan, id, created);

  if (stallStream) {
    await writeAsync(res, sse(chunks[0]));
    return stall(res);
  }
  if (cut) {
    // role chunk + two content chunks, then the connection dies.
    if (await writeEach(res, chunks.slice(0, 3).map(sse))) dieSoon(res);
    return;
  }
  if (await writeEach(res, chunks.map(sse))) res.end('data: [DONE]\n\n');
}

// ---------------------------------------------------------------- models

const MODEL_LIST = ['gpt-4o-mini', 'gpt-4o', 'gpt-4.1-nano', 'gpt-4.1-mini', 'mock-echo'];
const modelObj = (id) => ({ id, object: 'model', created: 1715367049, owned_by: 'system' });

// ---------------------------------------------------------------- routing

function invalidUrl(res, req, started) {
  sendJson(
    res,
    404,
    openaiError(`Invalid URL (${req.method} ${req.url.split('?')[0]})`, 'invalid_request_error', null, null),
    {},
    started,
  );
}

async function handle(req, res, raw) {
  const started = Date.now();
  const path = req.url.split('?')[0];

  if (path.startsWith('/__mock/')) {
    if (introspect(req, path, (status, obj) => sendJson(res, status, obj), { withStats: true })) return;
    return invalidUrl(res, req, started);
  }

  record({ method: req.method, path, headers: req.headers, body: loggedBody(raw) });
  served++;

  if (!checkAuth(req, res, started)) return;

  if (path === '/v1/models' && req.method === 'GET') {
    return sendJson(res, 200, { object: 'list', data: MODEL_LIST.map(modelObj) }, rateHeaders(), started);
  }
  if (path.startsWith('/v1/models/') && req.method === 'GET') {
    const id = decodeURIComponent(path.slice('/v1/models/'.length));
    if (MODEL_LIST.includes(id)) return sendJson(res, 200, modelObj(id), rateHeaders(), started);
    return sendJson(
      res,
      404,
      openaiError(`The model '${id}' does not exist`, 'invalid_request_error', 'model', 'model_not_found'),
      {},
      started,
    );
  }
  if (path !== '/v1/chat/completions' || req.method !== 'POST') return invalidUrl(res, req, started);

  let body;
  try {
    body = JSON.parse(raw);
  } catch {
    return sendJson(
      res,
      400,
      openaiError(
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
        'invalid_request_error',
        null,
        null,
      ),
      {},
      started,
    );
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    return sendJson(
      res,
      400,
      openaiError('Invalid type for request body: expected an object.', 'invalid_request_error', null, 'invalid_type'),
      {},
      started,
    );
  }
  if (typeof body.model !== 'string' || body.model === '') {
    return sendJson(res, 400, openaiError('you must provide a model parameter', 'invalid_request_error', null, null), {}, started);
  }
  countModel(body.model);
  if (!Array.isArray(body.messages)) {
    return sendJson(
      res,
      400,
      openaiError("Missing required parameter: 'messages'.", 'invalid_request_error', 'messages', 'missing_required_parameter'),
      {},
      started,
    );
  }
  return answerChat(req, res, body, started);
}

serve(args, handle, (res) => sendJson(res, 500, openaiError('mock internal error', 'server_error')));
