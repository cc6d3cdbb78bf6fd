#!/usr/bin/env node
// Mock Cohere v2 Chat (Node stdlib only).
//
//   node t/mock/cohere-mock.mjs --port N [--host 127.0.0.1]
//
// Port 0 picks a free port. Once listening it prints exactly one line, {"port":N}, and runs
// until SIGTERM/SIGINT.
//
// Endpoint: POST /v2/chat, `Authorization: Bearer <key>` (missing -> 401 {"id","message":"no api
// key supplied"}; MOCK_REQUIRE_KEY, when set, is the only key accepted, another -> 498
// {"message":"invalid api token"}). Wire shapes follow Cohere's documentation:
//   answer   {"id","message":{"role":"assistant","content":[{"type":"text","text"}] | "tool_plan",
//             "tool_calls":[{"id","type":"function","function":{"name","arguments"}}]},
//             "finish_reason":"COMPLETE"|"TOOL_CALL"|"MAX_TOKENS","usage":{"billed_units":
//             {"input_tokens","output_tokens"},"tokens":{"input_tokens","output_tokens"},
//             "cached_tokens":0}}                       [https://docs.cohere.com/reference/chat]
//   stream   SSE with event: lines: message-start, content-start, content-delta, content-end,
//             tool-plan-delta, tool-call-start, tool-call-delta, tool-call-end, message-end
//             (finish_reason + usage); no [DONE]       [https://docs.cohere.com/v2/docs/streaming,
//                                                      https://docs.cohere.com/docs/tool-use-streaming]
//   images   {"type":"image_url","image_url":{"url","detail"?}} parts, vision models only
//                                                     [https://docs.cohere.com/v2/docs/image-inputs]
//   errors   {"id","message"} with the HTTP status.
// Usage: billed input = words of every message + 1 per message; the "tokens" count adds 7
// (the prompt template Cohere wraps around the conversation); output = words of the reply.
// Introspection: GET /__mock/requests (last 200: {method, path, headers, body}), DELETE.
//
// Behaviour by model name (substring): fail-429 (retry-after: 7), fail-500, fail-400, fail-401,
// stall, stall-stream, cut, slow-MS, error-finish (stream/answer ends with finish_reason ERROR),
// max-tokens (finish MAX_TOKENS). Otherwise "Echo: <last user text>" (+ " [images: N]"), a tool
// call to the first tool when tools are given and no tool result follows the last user
// message, "Tool said: <content>" after a tool result. Images sent to a model whose name lacks
// "vision" get a 400.

import crypto from 'node:crypto';
import {
  mockName, parseArgs, stall, dieSoon, record, loggedBody, introspect, randAlnum, words, countImages,
  promptWords, echoPlan, splitPieces, splitArgs, sseEvent, writeAsync, writeEach, writeHalf, slowDown, serve,
} from './mock-lib.mjs';

mockName('cohere-mock');
const args = parseArgs({ strict: false });
const REQUIRE_KEY = process.env.MOCK_REQUIRE_KEY || '';
const TEMPLATE_TOKENS = 7;
const randId = (n) => randAlnum(n, 'abcdefghijklmnopqrstuvwxyz0123456789');

// Text of a Cohere message's content: a string, or text parts (and tool documents) joined.
function contentText(content) {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.map((p) => {
    if (p && p.type === 'text' && typeof p.text === 'string') return p.text;
    if (p && p.type === 'document' && p.document) return typeof p.document.data === 'string' ? p.document.data : JSON.stringify(p.document.data);
    return null;
  }).filter((s) => s !== null).join(' ');
}

function sendJson(res, status, obj, extra = {}) {
  if (res.destroyed || res.headersSent) return;
  const body = JSON.stringify(obj);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-trial-endpoint-call-limit': '20',
    'x-trial-endpoint-call-remaining': '19',
    'x-debug-trace-id': randId(32),
    'num_chars': '0',
    ...extra,
  });
  res.end(body);
}
const cohereError = (message) => ({ id: crypto.randomUUID(), message });

function cannedError(res, kind) {
  switch (kind) {
    case 'fail-429':
      return sendJson(res, 429, cohereError("You are using a Trial key, which is limited to 20 API calls / minute. You can continue to use the Trial key for free or upgrade to a Production key with higher rate limits."),
        { 'retry-after': '7', 'x-trial-endpoint-call-remaining': '0' });
    case 'fail-500':
      return sendJson(res, 500, cohereError('internal server error, this has been reported to our developers'));
    case 'fail-400':
      return sendJson(res, 400, cohereError("invalid request: max_tokens must be greater than or equal to 1"));
    case 'fail-401':
      return sendJson(res, 401, cohereError('invalid api token'));
    default:
      throw new Error(`unknown canned error ${kind}`);
  }
}

// ---------------------------------------------------------------- the answer

function planReply(body) {
  return echoPlan(body, {
    text: contentText,
    none: 'NONE',
    toolCall(tools, userText) {
      const name = tools[0].function.name;
      return { kind: 'tool', id: `${name}_${randId(12)}`, name, plan: `I will call ${name}.`, args: JSON.stringify({ q: userText }) };
    },
  });
}

function usageOf(body, plan) {
  const input = promptWords(Array.isArray(body.messages) ? body.messages : [], contentText);
  const output = plan.kind === 'text' ? words(plan.text) : words(plan.args);
  return {
    billed_units: { input_tokens: input, output_tokens: output },
    tokens: { input_tokens: input + TEMPLATE_TOKENS, output_tokens: output },
    cached_tokens: 0,
  };
}

function finishOf(model, plan) {
  if (model.includes('error-finish')) return 'ERROR';
  if (model.includes('max-tokens')) return 'MAX_TOKENS';
  return plan.kind === 'tool' ? 'TOOL_CALL' : 'COMPLETE';
}

function answerObject(body, plan, id) {
  const message = plan.kind === 'text'
    ? { role: 'assistant', content: [{ type: 'text', text: plan.text }] }
    : { role: 'assistant', tool_plan: plan.plan, tool_calls: [{ id: plan.id, type: 'function', function: { name: plan.name, arguments: plan.args } }] };
  return { id, message, finish_reason: finishOf(String(body.model), plan), usage: usageOf(body, plan) };
}

// The stream's events as [event, data] pairs.
function streamEvents(body, plan, id) {
  const ev = [['message-start', { id, type: 'message-start', delta: { message: { role: 'assistant', content: [], tool_plan: '', tool_calls: [], citations: [] } } }]];
  if (plan.kind === 'text') {
    ev.push(['content-start', { type: 'content-start', index: 0, delta: { message: { content: { type: 'text', text: '' } } } }]);
    for (const p of splitPieces(plan.text)) ev.push(['content-delta', { type: 'content-delta', index: 0, delta: { message: { content: { text: p } } } }]);
    ev.push(['content-end', { type: 'content-end', index: 0 }]);
  } else {
    for (const p of splitPieces(plan.plan)) ev.push(['tool-plan-delta', { type: 'tool-plan-delta', delta: { message: { tool_plan: p } } }]);
    ev.push(['tool-call-start', { type: 'tool-call-start', index: 0, delta: { message: { tool_calls: { id: plan.id, type: 'function', function: { name: plan.name, arguments: '' } } } } }]);
    for (const frag of splitArgs(plan.args)) {
      ev.push(['tool-call-delta', { type: 'tool-call-delta', index: 0, delta: { message: { tool_calls: { function: { arguments: frag } } } } }]);
    }
    ev.push(['tool-call-end', { type: 'tool-call-end', index: 0 }]);
  }
  const finish = finishOf(String(body.model), plan);
  const end = { finish_reason: finish, usage: usageOf(body, plan) };
  if (finish === 'ERROR') end.error = 'an internal error occurred while generating';
  ev.push(['message-end', { type: 'message-end', id, delta: end }]);
  return ev;
}

const sse = ([event, data]) => sseEvent(event, data);

async function answer(req, res, body) {
  const model = String(body.model);
  if (!(await slowDown(model, res))) return;
  for (const kind of ['fail-429', 'fail-500', 'fail-400', 'fail-401']) if (model.includes(kind)) return cannedError(res, kind);
  const stallStream = model.includes('stall-stream');
  if (model.includes('stall') && !stallStream) return stall(res);
  const lastUser = [...body.messages].reverse().find((m) => m && m.role === 'user');
  if (lastUser && countImages(lastUser.content) && !model.includes('vision')) {
    return sendJson(res, 400, cohereError(`invalid request: model '${model}' does not support image inputs`));
  }
  const cut = model.includes('cut');
  const plan = planReply(body);
  const id = crypto.randomUUID();

  if (body.stream !== true) {
    const obj = answerObject(body, plan, id);
    if (!cut) return sendJson(res, 200, obj);
    const full = Buffer.from(JSON.stringify(obj));
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': full.length });
    return writeHalf(res, full);
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-debug-trace-id': randId(32) });
  res.flushHeaders();
  const events = streamEvents(body, plan, id);
  if (stallStream) {
    await writeAsync(res, sse(events[0]));
    return stall(res);
  }
  // cut: message-start, content-start and two deltas, then the connection dies
  if (!(await writeEach(res, (cut ? events.slice(0, 4) : events).map(sse)))) return;
  if (cut) dieSoon(res);
  else res.end();
}

// ---------------------------------------------------------------- routing

async function handle(req, res, raw) {
  const path = req.url.split('?')[0];
  if (path.startsWith('/__mock/')) {
    if (introspect(req, path, (status, obj) => sendJson(res, status, obj))) return;
    return sendJson(res, 404, cohereError(`Not found: ${path}`));
  }
  const body = loggedBody(raw);
  record({ method: req.method, path, headers: req.headers, body });

  if (path !== '/v2/chat' || req.method !== 'POST') return sendJson(res, 404, cohereError(`Not found: ${req.method} ${path}`));
  const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization || '');
  if (!bearer) return sendJson(res, 401, cohereError('no api key supplied'));
  if (REQUIRE_KEY && bearer[1].trim() !== REQUIRE_KEY) return sendJson(res, 498, cohereError('invalid api token'));
  if (!body || typeof body !== 'object' || Array.isArray(body)) return sendJson(res, 400, cohereError('invalid request: could not parse JSON body'));
  if (typeof body.model !== 'string' || !body.model) return sendJson(res, 400, cohereError('invalid request: model must be specified'));
  if (!Array.isArray(body.messages) || !body.messages.length) return sendJson(res, 400, cohereError('invalid request: messages must contain at least one message'));
  for (const m of body.messages) {
    if (!m || !['system', 'user', 'assistant', 'tool'].includes(m.role)) {
      return sendJson(res, 400, cohereError(`invalid request: invalid role ${JSON.stringify(m && m.role)}`));
    }
    if (m.role === 'tool' && !m.tool_call_id) return sendJson(res, 400, cohereError('invalid request: tool message needs tool_call_id'));
  }
  for (const k of ['top_p', 'stop', 'max_completion_tokens', 'stream_options', 'n']) {
    if (k in body) return sendJson(res, 400, cohereError(`invalid request: unknown field: parameter ${k} is not a valid field`));
  }
  return answer(req, res, body);
}

serve(args, handle, (res) => sendJson(res, 500, cohereError('mock internal error')));
