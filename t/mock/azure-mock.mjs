#!/usr/bin/env node
// Mock Azure OpenAI Chat Completions (Node stdlib only).
//
//   node t/mock/azure-mock.mjs --port N [--host 127.0.0.1]
//
// Port 0 picks a free port. Once listening it prints exactly one line, {"port":N}, and runs
// until SIGTERM/SIGINT.
//
// Endpoint (Azure's data plane, as the `openai` package's AzureOpenAI client calls it):
//   POST /openai/deployments/{deployment}/chat/completions?api-version=YYYY-MM-DD[-preview]
//   Without api-version, or any other path: 404 {"error":{"code":"404","message":"Resource not found"}}.
//   Auth: header `api-key: <key>` (or `Authorization: Bearer <Entra token>`); neither -> 401
//   {"error":{"code":"401","message":"Access denied due to invalid subscription key ..."}}.
//   MOCK_REQUIRE_KEY, when set, is the only key accepted.
// Introspection: GET /__mock/requests (last 200: {method, path, url, headers, body}, path
//   without the query, url with it), DELETE /__mock/requests.
//
// Azure's differences from OpenAI that the mock reproduces:
//   - the deployment in the URL decides; the body's "model" is ignored; answers name the
//     underlying model (gpt-4o-mini-2024-07-18 for a deployment whose name holds "mini",
//     gpt-4o-2024-11-20 otherwise);
//   - answers carry prompt_filter_results (top level) and content_filter_results (per choice);
//   - streams open with a chunk whose choices are [] and that carries prompt_filter_results
//     (id "", model "", object "", created 0), as recorded in
//     vercel/ai packages/openai/src/chat/__fixtures__/azure-model-router.1.chunks.txt;
//   - throttling answers 429 with {"error":{"code":"429","message":"Requests to the
//     ChatCompletions_Create Operation ... Please retry after 7 seconds. ..."}}, retry-after: 7,
//     retry-after-ms: 7000;
//   - content filter: 400 with code "content_filter" and innererror.content_filter_result.
//
// Behaviour by deployment name (substring): fail-429, fail-500, fail-400 (content filter),
// fail-401, stall (never answers), stall-stream (first chunk then silence), cut (stream:
// filter chunk, role chunk and two content chunks then the socket is destroyed; non-stream:
// half the body), slow-MS (waits MS first). Otherwise: "Echo: <last user text>" (+ " [images: N]"),
// a tool call to the first tool when tools are given and no tool result follows the last user
// message, "Tool said: <content>" after a tool result. Usage as openai-mock.mjs counts it.

import crypto from 'node:crypto';
import {
  mockName, parseArgs, stall, dieSoon, record, loggedBody, introspect, randAlnum, words, promptWords,
  echoPlan, splitPieces, splitArgs, sseData as sse, writeAsync, writeEach, writeHalf, slowDown, serve,
} from './mock-lib.mjs';

mockName('azure-mock');
const args = parseArgs({ strict: false });
const REQUIRE_KEY = process.env.MOCK_REQUIRE_KEY || '';

// ---------------------------------------------------------------- Azure's annotations

const SAFE = { filtered: false, severity: 'safe' };
const contentFilter = () => ({ hate: SAFE, self_harm: SAFE, sexual: SAFE, violence: SAFE });
const promptFilter = () => [{
  prompt_index: 0,
  content_filter_results: { ...contentFilter(), jailbreak: { filtered: false, detected: false } },
}];

function headers(started, extra = {}) {
  return {
    'apim-request-id': crypto.randomUUID(),
    'x-request-id': crypto.randomUUID(),
    'x-ms-region': 'Sweden Central',
    'x-ms-client-request-id': 'Not-Set',
    'x-ratelimit-remaining-requests': '99',
    'x-ratelimit-limit-requests': '100',
    'x-ratelimit-remaining-tokens': '99000',
    'x-ratelimit-limit-tokens': '100000',
    'azureml-model-session': 'd001-20241108',
    'openai-processing-ms': String(Math.max(1, Date.now() - started)),
    ...extra,
  };
}

function sendJson(res, status, obj, started = Date.now(), extra = {}) {
  if (res.destroyed || res.headersSent) return;
  const body = JSON.stringify(obj);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    ...headers(started, extra),
  });
  res.end(body);
}

const azureError = (code, message, more = {}) => ({ error: { code, message, ...more } });

function cannedError(res, kind, started, apiVersion) {
  switch (kind) {
    case 'fail-429':
      return sendJson(res, 429, azureError('429',
        `Requests to the ChatCompletions_Create Operation under Azure OpenAI API version ${apiVersion} have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 7 seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.`),
      started, { 'retry-after': '7', 'retry-after-ms': '7000', 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-remaining-tokens': '0' });
    case 'fail-500':
      return sendJson(res, 500, { error: { message: 'The server had an error while processing your request. Sorry about that!', type: 'server_error', param: null, code: null } }, started);
    case 'fail-400':
      return sendJson(res, 400, { error: {
        message: "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry. To learn more about our content filtering policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766",
        type: null, param: 'prompt', code: 'content_filter', status: 400,
        innererror: { code: 'ResponsibleAIPolicyViolation', content_filter_result: { ...contentFilter(), violence: { filtered: true, severity: 'medium' } } },
      } }, started);
    case 'fail-401':
      return unauthorized(res, started);
    default:
      throw new Error(`unknown canned error ${kind}`);
  }
}

function unauthorized(res, started) {
  return sendJson(res, 401, azureError('401', 'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.'), started);
}

function authorised(req) {
  const key = req.headers['api-key'];
  const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization || '');
  const presented = key || (bearer && bearer[1].trim()) || '';
  if (!presented) return false;
  return !REQUIRE_KEY || presented === REQUIRE_KEY;
}

// ---------------------------------------------------------------- the answer

function planReply(body) {
  return echoPlan(body, {
    toolCall(tools, userText) {
      let name = tools[0].function.name;
      if (body.tool_choice && body.tool_choice.function && body.tool_choice.function.name) name = body.tool_choice.function.name;
      return { kind: 'tool', id: 'call_' + randAlnum(24), name, args: JSON.stringify({ q: userText }) };
    },
  });
}

function usageOf(body, plan) {
  const prompt = promptWords(Array.isArray(body.messages) ? body.messages : []);
  const completion = plan.kind === 'text' ? words(plan.text) : words(plan.args);
  return {
    completion_tokens: completion,
    completion_tokens_details: { accepted_prediction_tokens: 0, audio_tokens: 0, reasoning_tokens: 0, rejected_prediction_tokens: 0 },
    prompt_tokens: prompt,
    prompt_tokens_details: { audio_tokens: 0, cached_tokens: 0 },
    total_tokens: prompt + completion,
  };
}

const modelOf = (deployment) => (deployment.includes('mini') ? 'gpt-4o-mini-2024-07-18' : 'gpt-4o-2024-11-20');

function completion(body, plan, deployment, id, created) {
  const message = plan.kind === 'text'
    ? { annotations: [], content: plan.text, refusal: null, role: 'assistant' }
    : { annotations: [], content: null, refusal: null, role: 'assistant', tool_calls: [{ function: { arguments: plan.args, name: plan.name }, id: plan.id, type: 'function' }] };
  return {
    choices: [{ content_filter_results: plan.kind === 'text' ? contentFilter() : {}, finish_reason: plan.kind === 'text' ? 'stop' : 'tool_calls', index: 0, logprobs: null, message }],
    created, id, model: modelOf(deployment), object: 'chat.completion',
    prompt_filter_results: promptFilter(),
    system_fingerprint: 'fp_b705f0c291',
    usage: usageOf(body, plan),
  };
}

function streamChunks(body, plan, deployment, id, created) {
  const includeUsage = !!(body.stream_options && body.stream_options.include_usage);
  const model = modelOf(deployment);
  const chunk = (delta, finish = null, cfr = {}) => ({
    choices: [{ content_filter_results: cfr, delta, finish_reason: finish, index: 0, logprobs: null }],
    created, id, model, object: 'chat.completion.chunk', system_fingerprint: 'fp_b705f0c291',
    ...(includeUsage ? { usage: null } : {}),
  });
  const out = [{ choices: [], created: 0, id: '', model: '', object: '', prompt_filter_results: promptFilter() }];
  out.push(chunk({ content: '', refusal: null, role: 'assistant' }));
  if (plan.kind === 'text') {
    for (const p of splitPieces(plan.text)) out.push(chunk({ content: p }, null, contentFilter()));
    out.push(chunk({}, 'stop'));
  } else {
    out.push(chunk({ tool_calls: [{ function: { arguments: '', name: plan.name }, id: plan.id, index: 0, type: 'function' }] }));
    for (const frag of splitArgs(plan.args)) out.push(chunk({ tool_calls: [{ function: { arguments: frag }, index: 0 }] }));
    out.push(chunk({}, 'tool_calls'));
  }
  if (includeUsage) out.push({ choices: [], created, id, model, object: 'chat.completion.chunk', system_fingerprint: 'fp_b705f0c291', usage: usageOf(body, plan) });
  return out;
}

async function answer(req, res, body, deployment, apiVersion, started) {
  if (!(await slowDown(deployment, res))) return;
  for (const kind of ['fail-429', 'fail-500', 'fail-400', 'fail-401']) {
    if (deployment.includes(kind)) return cannedError(res, kind, started, apiVersion);
  }
  const stallStream = deployment.includes('stall-stream');
  if (deployment.includes('stall') && !stallStream) return stall(res);
  const cut = deployment.includes('cut');
  const plan = planReply(body);
  const id = 'chatcmpl-' + randAlnum(29);
  const created = Math.floor(Date.now() / 1000);

  if (body.stream !== true) {
    const obj = completion(body, plan, deployment, id, created);
    if (!cut) return sendJson(res, 200, obj, started);
    const full = Buffer.from(JSON.stringify(obj));
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': full.length, ...headers(started) });
    return writeHalf(res, full);
  }
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', ...headers(started) });
  res.flushHeaders();
  const chunks = streamChunks(body, plan, deployment, id, created);
  if (stallStream) {
    await writeAsync(res, sse(chunks[0]));
    return stall(res);
  }
  if (!(await writeEach(res, (cut ? chunks.slice(0, 4) : chunks).map(sse)))) return;
  if (cut) dieSoon(res);
  else res.end('data: [DONE]\n\n');
}

// ---------------------------------------------------------------- routing

const notFound = (res, started) => sendJson(res, 404, azureError('404', 'Resource not found'), started);

async function handle(req, res, raw) {
  const started = Date.now();
  const url = new URL(req.url, 'http://mock');
  const path = url.pathname;
  if (path.startsWith('/__mock/')) {
    if (introspect(req, path, (status, obj) => sendJson(res, status, obj))) return;
    return notFound(res, started);
  }
  const body = loggedBody(raw);
  record({ method: req.method, path, url: req.url, headers: req.headers, body });

  const m = /^\/openai\/deployments\/([^/]+)\/chat\/completions$/.exec(path);
  const apiVersion = url.searchParams.get('api-version');
  if (!m || req.method !== 'POST' || !apiVersion) return notFound(res, started);
  if (!authorised(req)) return unauthorized(res, started);
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    return sendJson(res, 400, { error: { message: "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)", type: 'invalid_request_error', param: null, code: null } }, started);
  }
  if (!Array.isArray(body.messages)) {
    return sendJson(res, 400, { error: { message: "Missing required parameter: 'messages'.", type: 'invalid_request_error', param: 'messages', code: 'missing_required_parameter' } }, started);
  }
  return answer(req, res, body, decodeURIComponent(m[1]), apiVersion, started);
}

serve(args, handle, (res) => sendJson(res, 500, azureError('InternalServerError', 'mock internal error')));
