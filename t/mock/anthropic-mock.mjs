#!/usr/bin/env node
// Mock Anthropic Messages API provider (Node stdlib only).
//
//   node t/mock/anthropic-mock.mjs --port N [--host 127.0.0.1]
//
// Port 0 picks a free port. Once listening it prints exactly one line to stdout,
// {"port":N}, and runs until SIGTERM/SIGINT.
//
// Endpoint (Anthropic wire format, base URL = http://host:port, as the SDK takes it):
//   POST /v1/messages   (stream and non-stream, tools, images)
// Every request needs an `anthropic-version` header and a key, as `x-api-key` (what the API
// documents) or `Authorization: Bearer` (what @anthropic-ai/sdk 1.x sends); ANTHROPIC_MOCK_REQUIRE_KEY set =
// the key must equal it. The body is checked as strictly as the real API checks it: max_tokens
// required, only user/assistant roles, alternating turns, no empty text blocks, every tool_use
// answered by a tool_result in the next user turn, no unknown top-level fields (so a gateway
// that forwards OpenAI-only parameters gets the 400 the real API gives).
//
// Introspection (never logged, never authenticated):
//   GET    /__mock/requests  -> the last 200 requests, oldest first: {method, path, headers, body}
//   DELETE /__mock/requests  -> clears the log and the stats
//   GET    /__mock/stats     -> {"total":N,"models":{"<model>":N}}
//
// Deterministic content:
//   reply = "Echo: " + text of the last user turn (text blocks joined by a space), plus
//   " [images: N]" when that turn holds image blocks.
//   Last user turn holds tool_result blocks -> "Tool said: <content of the last tool_result>".
//   `tools` present, no tool_result in the last user turn, tool_choice not {"type":"none"}
//     -> tool_use of the first tool (or tool_choice.name), id "toolu_01<22 alnum>",
//        input {"q":"<last user text>"}, stop_reason "tool_use".
//   input_tokens = words over system and all text + 1 per message; output_tokens = words in the
//   reply (tool call: words in the JSON of the input). A model name containing "cached" reports
//   cache_read_input_tokens 100 and cache_creation_input_tokens 20 besides.
//
// Behaviour by model name (substring match):
//   fail-429      429 rate_limit_error, retry-after: 7, anthropic-ratelimit-* headers
//   fail-500      500 api_error
//   fail-529      529 overloaded_error
//   fail-400      400 invalid_request_error
//   fail-401      401 authentication_error
//   stall-stream  stream: headers + message_start, then silence (non-stream: normal)
//   stall         read the body and never answer (socket destroyed after 120 s)
//   cut           stream: message_start, block start, two text deltas, then the socket dies;
//                 non-stream: half the JSON body, then the socket dies
//   error-stream  stream: message_start, a text delta, then `event: error` overloaded_error
//   slow-MS       wait MS milliseconds, then behave as the rest of the name says
//   garbage       200 application/json, body that is not JSON
//   anything else normal answer
//
// Environment: ANTHROPIC_MOCK_REQUIRE_KEY (above), MOCK_CHUNK_DELAY_MS (between stream events, default 2).

import {
  mockName, parseArgs, stall, dieSoon, record, loggedBody, countModel, introspect, randAlnum, words, splitPieces,
  writeAsync, writeEach, writeHalf, slowDown, serve,
} from './mock-lib.mjs';

mockName('anthropic-mock');
const args = parseArgs();
const REQUIRE_KEY = process.env.ANTHROPIC_MOCK_REQUIRE_KEY || '';
const requestId = () => 'req_011C' + randAlnum(20);

// ---------------------------------------------------------------- responses and errors

function sendJson(res, status, obj, extra = {}) {
  if (res.destroyed || res.headersSent) return;
  const body = JSON.stringify(obj);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'request-id': obj?.request_id ?? requestId(),
    'anthropic-organization-id': '00000000-0000-4000-8000-000000000000',
    ...extra,
  });
  res.end(body);
}

// Anthropic's error body: {"type":"error","error":{"type","message"},"request_id"}
function sendError(res, status, type, message, extra = {}) {
  sendJson(res, status, { type: 'error', error: { type, message }, request_id: requestId() }, extra);
}

function rateHeaders(remaining) {
  const reset = new Date(Date.now() + 7000).toISOString().replace(/\.\d+Z$/, 'Z');
  return {
    'anthropic-ratelimit-requests-limit': '4000',
    'anthropic-ratelimit-requests-remaining': String(remaining),
    'anthropic-ratelimit-requests-reset': reset,
    'anthropic-ratelimit-input-tokens-limit': '2000000',
    'anthropic-ratelimit-input-tokens-remaining': remaining ? '1999000' : '0',
    'anthropic-ratelimit-input-tokens-reset': reset,
    'anthropic-ratelimit-output-tokens-limit': '400000',
    'anthropic-ratelimit-output-tokens-remaining': remaining ? '399000' : '0',
    'anthropic-ratelimit-output-tokens-reset': reset,
  };
}

function sendCanned(res, kind) {
  switch (kind) {
    case 'fail-429':
      return sendError(res, 429, 'rate_limit_error',
        'This request would exceed the rate limit for your organization of 4,000 requests per minute. Please try again later.',
        { ...rateHeaders(0), 'retry-after': '7' });
    case 'fail-500':
      return sendError(res, 500, 'api_error', 'Internal server error');
    case 'fail-529':
      return sendError(res, 529, 'overloaded_error', 'Overloaded');
    case 'fail-400':
      return sendError(res, 400, 'invalid_request_error', 'prompt is too long: 205351 tokens > 200000 maximum');
    case 'fail-401':
      return sendError(res, 401, 'authentication_error', 'invalid x-api-key');
    default:
      throw new Error(`unknown canned error ${kind}`);
  }
}

// ---------------------------------------------------------------- request checks

const TOP_LEVEL = new Set(['model', 'messages', 'max_tokens', 'system', 'stop_sequences', 'stream',
  'temperature', 'top_p', 'top_k', 'tools', 'tool_choice', 'metadata', 'thinking', 'service_tier',
  'container', 'mcp_servers', 'context_management', 'output_config', 'inference_geo']);

// The first problem the real API would report, or null.
function validate(body) {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return 'body: Input should be an object';
  for (const k of Object.keys(body)) if (!TOP_LEVEL.has(k)) return `${k}: Extra inputs are not permitted`;
  if (typeof body.model !== 'string' || !body.model) return 'model: Field required';
  if (!Number.isInteger(body.max_tokens) || body.max_tokens < 1) return 'max_tokens: Field required';
  if (!Array.isArray(body.messages)) return 'messages: Field required';
  if (body.system !== undefined && typeof body.system !== 'string' && !Array.isArray(body.system)) {
    return 'system: Input should be a valid string';
  }
  if (body.temperature !== undefined && (typeof body.temperature !== 'number' || body.temperature < 0 || body.temperature > 1)) {
    return 'temperature: Input should be less than or equal to 1';
  }
  if (body.stop_sequences !== undefined && !Array.isArray(body.stop_sequences)) return 'stop_sequences: Input should be a valid list';
  let prev = null;
  let pendingToolUse = [];
  for (let i = 0; i < body.messages.length; i++) {
    const m = body.messages[i];
    const where = `messages.${i}`;
    if (!m || (m.role !== 'user' && m.role !== 'assistant')) {
      return `${where}.role: Input should be 'user' or 'assistant'`;
    }
    if (prev === m.role) return 'messages: roles must alternate between "user" and "assistant"';
    prev = m.role;
    const blocks = typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : m.content;
    if (!Array.isArray(blocks)) return `${where}.content: Input should be a valid list`;
    if (blocks.length === 0 && i < body.messages.length - 1) return `${where}: all messages must have non-empty content`;
    const results = new Set();
    for (let j = 0; j < blocks.length; j++) {
      const b = blocks[j];
      const bw = `${where}.content.${j}`;
      if (!b || typeof b !== 'object') return `${bw}: Input should be an object`;
      if (b.type === 'text') {
        if (typeof b.text !== 'string' || b.text === '') return `${where}: text content blocks must be non-empty`;
      } else if (b.type === 'image') {
        if (m.role !== 'user') return `${bw}: image blocks are only allowed in user messages`;
        const s = b.source || {};
        if (s.type === 'base64') {
          if (!/^image\/(jpeg|png|gif|webp)$/.test(s.media_type || '')) return `${bw}.source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'`;
          if (typeof s.data !== 'string' || !s.data) return `${bw}.source.base64.data: Field required`;
        } else if (s.type === 'url') {
          if (typeof s.url !== 'string' || !/^https?:\/\//.test(s.url)) return `${bw}.source.url.url: invalid URL`;
        } else return `${bw}.source: Input tag '${s.type}' found using 'type' does not match any of the expected tags`;
      } else if (b.type === 'tool_use') {
        if (m.role !== 'assistant') return `${bw}: tool_use blocks are only allowed in assistant messages`;
        if (typeof b.id !== 'string' || typeof b.name !== 'string') return `${bw}: id and name are required`;
        if (!b.input || typeof b.input !== 'object' || Array.isArray(b.input)) return `${bw}.input: Input should be a valid dictionary`;
      } else if (b.type === 'tool_result') {
        if (m.role !== 'user') return `${bw}: tool_result blocks are only allowed in user messages`;
        if (results.size !== j) return `${where}: tool_result blocks must come first in the content`;
        results.add(b.tool_use_id);
      } else return `${bw}: Input tag '${b.type}' found using 'type' does not match any of the expected tags`;
    }
    if (m.role === 'user') {
      for (const id of results) {
        if (!pendingToolUse.includes(id)) return `${where}.content: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${id}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`;
      }
      const missing = pendingToolUse.filter((id) => !results.has(id));
      if (missing.length) return `messages.${i}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${missing.join(', ')}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`;
      pendingToolUse = [];
    } else {
      pendingToolUse = blocks.filter((b) => b.type === 'tool_use').map((b) => b.id);
    }
  }
  if (body.tools !== undefined) {
    if (!Array.isArray(body.tools)) return 'tools: Input should be a valid list';
    for (let i = 0; i < body.tools.length; i++) {
      const t = body.tools[i];
      if (!t || typeof t.name !== 'string') return `tools.${i}.name: Field required`;
      if (!t.input_schema || t.input_schema.type !== 'object') return `tools.${i}.input_schema: Input should be a valid dictionary`;
      if (t.type !== undefined && t.type !== 'custom') return `tools.${i}: unexpected tool type`;
    }
  }
  if (body.tool_choice !== undefined) {
    const tc = body.tool_choice;
    if (!tc || !['auto', 'any', 'tool', 'none'].includes(tc.type)) return 'tool_choice: Input tag does not match any of the expected tags';
    if (tc.type === 'tool' && typeof tc.name !== 'string') return 'tool_choice.tool.name: Field required';
  }
  return null;
}

// ---------------------------------------------------------------- the answer

const blocksOf = (m) => (typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : m.content || []);
const textOf = (blocks) => blocks.filter((b) => b.type === 'text').map((b) => b.text).join(' ');
const resultText = (c) => (typeof c === 'string' ? c : Array.isArray(c) ? textOf(c) : '');

function planReply(body) {
  const msgs = body.messages;
  let last = null;
  for (let i = msgs.length - 1; i >= 0; i--) if (msgs[i].role === 'user') { last = msgs[i]; break; }
  const blocks = last ? blocksOf(last) : [];
  const results = blocks.filter((b) => b.type === 'tool_result');
  if (results.length) return { kind: 'text', text: `Tool said: ${resultText(results[results.length - 1].content)}` };
  const userText = textOf(blocks);
  const tools = Array.isArray(body.tools) ? body.tools : [];
  const tc = body.tool_choice;
  if (tools.length && !(tc && tc.type === 'none')) {
    const name = tc && tc.type === 'tool' ? tc.name : tools[0].name;
    return { kind: 'tool', id: 'toolu_01' + randAlnum(22), name, input: { q: userText } };
  }
  const images = blocks.filter((b) => b.type === 'image').length;
  return { kind: 'text', text: `Echo: ${userText}${images ? ` [images: ${images}]` : ''}` };
}

function usageOf(body, plan) {
  let input = typeof body.system === 'string' ? words(body.system)
    : Array.isArray(body.system) ? words(textOf(body.system)) : 0;
  for (const m of body.messages) {
    const bl = blocksOf(m);
    input += words(textOf(bl)) + 1;
    for (const b of bl) if (b.type === 'tool_result') input += words(resultText(b.content));
  }
  const cached = String(body.model).includes('cached');
  return {
    input_tokens: input,
    cache_creation_input_tokens: cached ? 20 : 0,
    cache_read_input_tokens: cached ? 100 : 0,
    cache_creation: { ephemeral_5m_input_tokens: cached ? 20 : 0, ephemeral_1h_input_tokens: 0 },
    output_tokens: plan.kind === 'text' ? words(plan.text) : words(JSON.stringify(plan.input)),
    service_tier: 'standard',
  };
}

function messageObject(body, plan, id) {
  const content = plan.kind === 'text'
    ? [{ type: 'text', text: plan.text }]
    : [{ type: 'tool_use', id: plan.id, name: plan.name, input: plan.input }];
  return {
    id, type: 'message', role: 'assistant', model: body.model, content,
    stop_reason: plan.kind === 'text' ? 'end_turn' : 'tool_use', stop_sequence: null,
    usage: usageOf(body, plan),
  };
}

// The stream as [event, data] pairs, in the order the API sends them.
function streamEvents(body, plan, id) {
  const usage = usageOf(body, plan);
  const ev = [];
  ev.push(['message_start', { type: 'message_start', message: { id, type: 'message', role: 'assistant', model: body.model,
    content: [], stop_reason: null, stop_sequence: null, usage: { ...usage, output_tokens: 1 } } }]);
  if (plan.kind === 'text') {
    ev.push(['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }]);
    ev.push(['ping', { type: 'ping' }]);
    for (const p of splitPieces(plan.text)) {
      ev.push(['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: p } }]);
    }
  } else {
    ev.push(['content_block_start', { type: 'content_block_start', index: 0,
      content_block: { type: 'tool_use', id: plan.id, name: plan.name, input: {} } }]);
    ev.push(['ping', { type: 'ping' }]);
    const json = JSON.stringify(plan.input);
    const frags = [''];
    for (let i = 0; i < json.length; i += 7) frags.push(json.slice(i, i + 7));
    for (const f of frags) {
      ev.push(['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: f } }]);
    }
  }
  ev.push(['content_block_stop', { type: 'content_block_stop', index: 0 }]);
  ev.push(['message_delta', { type: 'message_delta',
    delta: { stop_reason: plan.kind === 'text' ? 'end_turn' : 'tool_use', stop_sequence: null },
    usage: { input_tokens: usage.input_tokens, cache_creation_input_tokens: usage.cache_creation_input_tokens,
      cache_read_input_tokens: usage.cache_read_input_tokens, output_tokens: usage.output_tokens } }]);
  ev.push(['message_stop', { type: 'message_stop' }]);
  return ev;
}

// The ping's JSON has a space after the colon on the real wire.
const sse = ([event, data]) => `event: ${event}\ndata: ${event === 'ping' ? '{"type": "ping"}' : JSON.stringify(data)}\n\n`;

async function answer(req, res, body) {
  const model = body.model;
  if (!(await slowDown(model, res))) return;
  for (const kind of ['fail-429', 'fail-500', 'fail-529', 'fail-400', 'fail-401']) {
    if (model.includes(kind)) return sendCanned(res, kind);
  }
  const stallStream = model.includes('stall-stream');
  if (model.includes('stall') && !stallStream) return stall(res);
  if (model.includes('garbage')) {
    const junk = '<html><body>upstream said something that is not JSON {"content": [</body></html>\n';
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(junk) });
    return res.end(junk);
  }
  const plan = planReply(body);
  const id = 'msg_01' + randAlnum(22);
  const cut = model.includes('cut');

  if (body.stream !== true) {
    const obj = messageObject(body, plan, id);
    if (!cut) return sendJson(res, 200, obj, rateHeaders(3999));
    const full = Buffer.from(JSON.stringify(obj));
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': full.length, 'request-id': requestId() });
    return writeHalf(res, full);
  }

  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    'request-id': requestId(),
    'anthropic-organization-id': '00000000-0000-4000-8000-000000000000',
    ...rateHeaders(3999),
  });
  res.flushHeaders();
  let events = streamEvents(body, plan, id);
  if (stallStream) {
    await writeAsync(res, sse(events[0]));
    return stall(res);
  }
  if (cut) events = events.filter((e) => e[0] !== 'ping').slice(0, 4);
  if (model.includes('error-stream')) {
    events = events.filter((e) => e[0] !== 'ping').slice(0, 3);
    events.push(['error', { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }]);
  }
  if (!(await writeEach(res, events.map(sse)))) return;
  if (cut) dieSoon(res);
  else res.end();
}

// ---------------------------------------------------------------- routing

function checkAuth(req, res) {
  const xkey = req.headers['x-api-key'];
  const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization || '')?.[1];
  const key = (xkey ?? bearer ?? '').trim();
  if (!key) {
    sendError(res, 401, 'authentication_error', 'x-api-key header is required');
    return false;
  }
  if (REQUIRE_KEY && key !== REQUIRE_KEY) {
    sendError(res, 401, 'authentication_error', 'invalid x-api-key');
    return false;
  }
  return true;
}

async function handle(req, res, raw) {
  const path = req.url.split('?')[0];
  if (path.startsWith('/__mock/')) {
    if (introspect(req, path, (status, obj) => sendJson(res, status, obj), { withStats: true })) return;
    return sendError(res, 404, 'not_found_error', 'Not found');
  }
  record({ method: req.method, path, headers: req.headers, body: loggedBody(raw) });
  if (path !== '/v1/messages' || req.method !== 'POST') return sendError(res, 404, 'not_found_error', 'Not found');
  if (!checkAuth(req, res)) return;
  if (!req.headers['anthropic-version']) {
    return sendError(res, 400, 'invalid_request_error', 'anthropic-version: header is required');
  }
  let body;
  try {
    body = JSON.parse(raw);
  } catch {
    return sendError(res, 400, 'invalid_request_error', 'There was an issue with your request body: invalid JSON');
  }
  const problem = validate(body);
  if (problem) return sendError(res, 400, 'invalid_request_error', problem);
  countModel(body.model);
  return answer(req, res, body);
}

serve(args, handle, (res) => sendError(res, 500, 'api_error', 'mock internal error'));
