#!/usr/bin/env node
// Mock Google Gemini API and Vertex AI provider (Node stdlib only).
//
//   node t/mock/gemini-mock.mjs --port N [--host 127.0.0.1]
//
// Port 0 picks a free port. Once listening it prints exactly one line to stdout,
// {"port":N}, and runs until SIGTERM/SIGINT.
//
// Endpoints (Google's wire format):
//   POST /v1beta/models/{model}:generateContent                  Gemini API, x-goog-api-key
//   POST /v1beta/models/{model}:streamGenerateContent?alt=sse    (or ?key=)
//   POST /v1/projects/{p}/locations/{l}/publishers/google/models/{model}:generateContent
//   POST /v1/projects/{p}/locations/{l}/publishers/google/models/{model}:streamGenerateContent?alt=sse
//                                                                Vertex AI, Authorization: Bearer
//                                                                <a token this mock issued>
//   POST /token   OAuth2 JWT-bearer grant (RFC 7523): form grant_type=urn:ietf:params:oauth:
//                 grant-type:jwt-bearer&assertion=<RS256 JWT>; the signature is checked with
//                 t/conf/providers/gemini-vertex-sa.pub.pem, and iss, scope, aud, iat, exp too.
//                 Answers {"access_token","expires_in":3599,"token_type":"Bearer"}.
// Introspection (never logged, never authenticated):
//   GET    /__mock/requests  -> the last 200 requests {method, path, headers, body}
//   DELETE /__mock/requests  -> clears the log and the stats
//   GET    /__mock/stats     -> {"total":N,"tokens":N,"models":{...}}  (tokens = tokens issued)
//
// Keys: the API key is the content of t/conf/providers/gemini.key (MOCK_GEMINI_KEY overrides);
// a wrong one gets Google's 400 API_KEY_INVALID, none 403 PERMISSION_DENIED.
//
// Deterministic content, driven by the model name as in openai-mock.mjs:
//   reply "Echo: <text of the last user turn>" (+ " [images: N]" for inlineData/fileData parts);
//   after a functionResponse: "Tool said: <response.output, or the response as JSON>";
//   tools declared and no functionResponse in the last user turn (mode not NONE): a
//   functionCall to the first declaration (or allowedFunctionNames[0]) with args {"q": text},
//   carrying a thoughtSignature, finishReason STOP (as Gemini does).
//   A model turn whose functionCall has no thoughtSignature this mock issued is refused with
//   400 INVALID_ARGUMENT, as Gemini 3 refuses it.
//   usageMetadata: promptTokenCount = words of all text + 1 per turn, candidatesTokenCount =
//   words of the reply (arguments for a call), thoughtsTokenCount = 4, cachedContentTokenCount =
//   floor(prompt/2) when the model name contains "cached"; streams repeat it cumulatively.
//   fail-429 (RESOURCE_EXHAUSTED, RetryInfo 7s, no Retry-After header), fail-500 (INTERNAL),
//   fail-503 (UNAVAILABLE), fail-400 (INVALID_ARGUMENT), fail-401 (bad credential), stall,
//   stall-stream, cut, slow-MS, garbage, error-stream (a stream that ends with an error event).

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { mockName, serve } from './mock-lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PROVIDERS = path.join(HERE, '..', 'conf', 'providers');

function parseArgs(argv) {
  const out = { port: 0, host: '127.0.0.1' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--port') out.port = Number(argv[++i]);
    else if (a.startsWith('--port=')) out.port = Number(a.slice(7));
    else if (a === '--host') out.host = argv[++i];
    else if (a.startsWith('--host=')) out.host = a.slice(7);
    else fail(`unknown argument ${a}`);
  }
  if (!Number.isInteger(out.port) || out.port < 0 || out.port > 65535) fail('bad --port');
  return out;
}

function fail(msg) {
  process.stderr.write(`gemini-mock: ${msg}\n`);
  process.exit(2);
}

const args = parseArgs(process.argv.slice(2));
const API_KEY = (process.env.MOCK_GEMINI_KEY
  || fs.readFileSync(path.join(PROVIDERS, 'gemini.key'), 'utf8')).trim();
const PUBLIC_KEY = crypto.createPublicKey(fs.readFileSync(path.join(PROVIDERS, 'gemini-vertex-sa.pub.pem')));
const CHUNK_DELAY_MS = Math.max(0, Number(process.env.MOCK_CHUNK_DELAY_MS ?? 2) || 0);
const SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
const STALL_MS = 120000;
const LOG_MAX = 200;

const requestLog = [];
const stats = { total: 0, tokens: 0, models: {} };
const tokens = new Set();
const signatures = new Set();
const timers = new Set();

function later(ms, fn) {
  const t = setTimeout(() => { timers.delete(t); fn(); }, ms);
  timers.add(t);
  return t;
}
const sleep = (ms) => new Promise((resolve) => later(ms, resolve));
const words = (s) => (typeof s === 'string' ? s.split(/\s+/).filter(Boolean).length : 0);

// ---------------------------------------------------------------- Google's errors

const STATUS_TEXT = { 400: 'INVALID_ARGUMENT', 401: 'UNAUTHENTICATED', 403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND', 429: 'RESOURCE_EXHAUSTED', 500: 'INTERNAL', 503: 'UNAVAILABLE' };

function googleError(code, message, details) {
  const error = { code, message, status: STATUS_TEXT[code] || 'UNKNOWN' };
  if (details) error.details = details;
  return { error };
}

function sendJson(res, status, obj, extra = {}) {
  if (res.destroyed || res.headersSent) return;
  const body = JSON.stringify(obj, null, 2); // Google pretty-prints its JSON answers
  res.writeHead(status, {
    'content-type': 'application/json; charset=UTF-8',
    'content-length': Buffer.byteLength(body),
    vary: 'Origin, X-Origin, Referer',
    'server-timing': 'gfet4t7; dur=12',
    ...extra,
  });
  res.end(body);
}

function sendCanned(res, kind, vertex) {
  switch (kind) {
    case 'fail-429':
      return sendJson(res, 429, googleError(429,
        'You exceeded your current quota, please check your plan and billing details. Please retry in 7s.', [
          { '@type': 'type.googleapis.com/google.rpc.QuotaFailure',
            violations: [{ quotaMetric: 'generativelanguage.googleapis.com/generate_content_free_tier_requests',
              quotaId: 'GenerateRequestsPerMinutePerProjectPerModel-FreeTier' }] },
          { '@type': 'type.googleapis.com/google.rpc.Help',
            links: [{ description: 'Learn more about Gemini API quotas', url: 'https://ai.google.dev/gemini-api/docs/rate-limits' }] },
          { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '7s' },
        ]));
    case 'fail-500':
      return sendJson(res, 500, googleError(500, 'An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting'));
    case 'fail-503':
      return sendJson(res, 503, googleError(503, 'The model is overloaded. Please try again later.'));
    case 'fail-400':
      return sendJson(res, 400, googleError(400, '* GenerateContentRequest.generation_config.max_output_tokens: must be positive\n'));
    case 'fail-401':
      return badCredential(res, vertex);
    default:
      throw new Error(`unknown canned error ${kind}`);
  }
}

function badCredential(res, vertex) {
  if (vertex) {
    return sendJson(res, 401, googleError(401,
      'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.',
      [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'ACCESS_TOKEN_TYPE_UNSUPPORTED',
        metadata: { service: 'aiplatform.googleapis.com', method: 'google.cloud.aiplatform.v1.PredictionService.GenerateContent' } }]),
    { 'www-authenticate': 'Bearer realm="https://accounts.google.com/"' });
  }
  return sendJson(res, 400, googleError(400, 'API key not valid. Please pass a valid API key.', [
    { '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'API_KEY_INVALID', domain: 'googleapis.com',
      metadata: { service: 'generativelanguage.googleapis.com' } },
    { '@type': 'type.googleapis.com/google.rpc.LocalizedMessage', locale: 'en-US', message: 'API key not valid. Please pass a valid API key.' },
  ]));
}

// ---------------------------------------------------------------- credentials

function checkApiKey(req, res, url) {
  const key = req.headers['x-goog-api-key'] || url.searchParams.get('key');
  if (!key) {
    sendJson(res, 403, googleError(403, 'Method doesn\'t allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.'));
    return false;
  }
  if (key !== API_KEY) {
    badCredential(res, false);
    return false;
  }
  return true;
}

function checkBearer(req, res) {
  const m = /^Bearer (.+)$/.exec(req.headers.authorization || '');
  if (!m || !tokens.has(m[1])) {
    badCredential(res, true);
    return false;
  }
  return true;
}

const b64urlJson = (s) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));

// The JWT-bearer grant: answers Google's token endpoint errors for a bad assertion.
function issueToken(req, res, raw) {
  const form = new URLSearchParams(raw);
  const bad = (desc) => sendJson(res, 400, { error: 'invalid_grant', error_description: desc });
  if ((req.headers['content-type'] || '').split(';')[0] !== 'application/x-www-form-urlencoded') {
    return sendJson(res, 400, { error: 'invalid_request', error_description: 'Bad Request' });
  }
  if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') {
    return sendJson(res, 400, { error: 'unsupported_grant_type', error_description: 'Invalid grant_type: ' + form.get('grant_type') });
  }
  const parts = (form.get('assertion') || '').split('.');
  if (parts.length !== 3) return bad('Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.');
  let head, claims;
  try {
    head = b64urlJson(parts[0]);
    claims = b64urlJson(parts[1]);
  } catch {
    return bad('Invalid JWT: not JSON');
  }
  const ok = head.alg === 'RS256' && crypto.verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`),
    PUBLIC_KEY, Buffer.from(parts[2], 'base64url'));
  if (!ok) return bad('Invalid JWT Signature.');
  const now = Math.floor(Date.now() / 1000);
  const aud = `http://${req.headers.host}/token`;
  if (claims.aud !== aud) return bad(`Invalid JWT: audience ${claims.aud} is not ${aud}`);
  if (claims.scope !== SCOPE) return bad('Invalid OAuth scope or ID token audience provided.');
  if (typeof claims.iss !== 'string' || !claims.iss.includes('@')) return bad('Invalid JWT: no issuer');
  if (!(claims.iat <= now + 60 && claims.exp > now && claims.exp - claims.iat <= 3600)) {
    return bad('Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.');
  }
  const token = 'ya29.mock-' + crypto.randomBytes(24).toString('base64url');
  tokens.add(token);
  stats.tokens++;
  return sendJson(res, 200, { access_token: token, expires_in: 3599, token_type: 'Bearer' });
}

// ---------------------------------------------------------------- the answer

const partText = (parts) => (parts || []).filter((p) => typeof p.text === 'string').map((p) => p.text).join(' ');
const countImages = (parts) => (parts || []).filter((p) => p.inlineData || p.fileData).length;

// A request Gemini would refuse, or null.
function invalidRequest(body) {
  if (!Array.isArray(body.contents) || body.contents.length === 0) {
    return '* GenerateContentRequest.contents: contents is not specified\n';
  }
  for (const c of body.contents) {
    if (c.role !== 'user' && c.role !== 'model') return `Please use a valid role: user, model.`;
    for (const p of c.parts || []) {
      if (p.functionCall && !signatures.has(p.thoughtSignature)) {
        return 'Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call `default_api:' + p.functionCall.name + '` , position 2. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details.';
      }
      if (p.functionResponse && (typeof p.functionResponse.response !== 'object' || !p.functionResponse.name)) {
        return '* GenerateContentRequest.contents[].parts[].function_response.response: must be an object\n';
      }
    }
  }
  return null;
}

function planReply(body) {
  const contents = body.contents;
  const last = contents[contents.length - 1];
  const responses = (last.parts || []).filter((p) => p.functionResponse);
  if (last.role === 'user' && responses.length) {
    const r = responses[responses.length - 1].functionResponse.response;
    const said = r && typeof r.output === 'string' && Object.keys(r).length === 1 ? r.output : JSON.stringify(r);
    return { kind: 'text', text: `Tool said: ${said}` };
  }
  let lastUser = null;
  for (let i = contents.length - 1; i >= 0; i--) {
    if (contents[i].role === 'user') { lastUser = contents[i]; break; }
  }
  const userText = partText(lastUser && lastUser.parts);
  const decls = (body.tools || []).flatMap((t) => t.functionDeclarations || []);
  const fcc = (body.toolConfig && body.toolConfig.functionCallingConfig) || {};
  if (decls.length && fcc.mode !== 'NONE') {
    const name = (fcc.allowedFunctionNames && fcc.allowedFunctionNames[0]) || decls[0].name;
    const sig = crypto.randomBytes(30).toString('base64');
    signatures.add(sig);
    return { kind: 'tool', name, args: { q: userText }, sig };
  }
  let text = `Echo: ${userText}`;
  const images = countImages(lastUser && lastUser.parts);
  if (images) text += ` [images: ${images}]`;
  return { kind: 'text', text };
}

function usageFor(body, model, plan, completionWords) {
  let prompt = 0;
  for (const c of body.contents) prompt += words(partText(c.parts)) + 1;
  if (body.systemInstruction) prompt += words(partText(body.systemInstruction.parts)) + 1;
  const u = { promptTokenCount: prompt, candidatesTokenCount: completionWords, thoughtsTokenCount: 4 };
  if (model.includes('cached')) u.cachedContentTokenCount = Math.floor(prompt / 2);
  u.totalTokenCount = prompt + completionWords + 4;
  u.promptTokensDetails = [{ modality: 'TEXT', tokenCount: prompt }];
  return u;
}

const replyWords = (plan) => (plan.kind === 'text' ? words(plan.text) : words(JSON.stringify(plan.args)));

function candidate(parts, finish) {
  const c = { content: { parts, role: 'model' }, index: 0 };
  if (finish) c.finishReason = finish;
  if (finish && parts.some((p) => p.functionCall)) c.finishMessage = 'Model generated function call(s).';
  return c;
}

function wholeAnswer(body, model, plan, responseId) {
  const parts = plan.kind === 'text'
    ? [{ text: plan.text }]
    : [{ functionCall: { name: plan.name, args: plan.args }, thoughtSignature: plan.sig }];
  return { candidates: [candidate(parts, 'STOP')], usageMetadata: usageFor(body, model, plan, replyWords(plan)),
    modelVersion: model, responseId };
}

// Stream chunks: text pieces (usage cumulative in each), then the finish chunk.
function streamChunks(body, model, plan, responseId) {
  const meta = (n) => ({ usageMetadata: usageFor(body, model, plan, n), modelVersion: model, responseId });
  if (plan.kind === 'tool') return [wholeAnswer(body, model, plan, responseId)];
  const pieces = plan.text.match(/\s*\S+/g) || [plan.text];
  const out = [];
  let sofar = '';
  for (const p of pieces) {
    sofar += p;
    out.push({ candidates: [candidate([{ text: p }])], ...meta(words(sofar)) });
  }
  out.push({ candidates: [candidate([{ text: '', thoughtSignature: crypto.randomBytes(12).toString('base64') }], 'STOP')],
    ...meta(words(sofar)) });
  return out;
}

const sse = (obj) => `data: ${JSON.stringify(obj)}\r\n\r\n`;

function writeAsync(res, data) {
  return new Promise((resolve) => {
    if (res.destroyed || res.writableEnded) return resolve(false);
    res.write(data, () => resolve(!res.destroyed));
  });
}

function stall(res) {
  const t = later(STALL_MS, () => res.socket && res.socket.destroy());
  res.on('close', () => { clearTimeout(t); timers.delete(t); });
}

async function answer(req, res, body, model, stream, vertex) {
  const slow = /slow-(\d+)/.exec(model);
  if (slow) {
    await sleep(Number(slow[1]));
    if (res.destroyed) return;
  }
  for (const kind of ['fail-429', 'fail-500', 'fail-503', 'fail-400', 'fail-401']) {
    if (model.includes(kind)) return sendCanned(res, kind, vertex);
  }
  const stallStream = model.includes('stall-stream');
  if (model.includes('stall') && !stallStream) return stall(res);
  if (model.includes('garbage')) {
    res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8' });
    return res.end('<html><body>not JSON {"candidates": [</body></html>\n');
  }
  const invalid = invalidRequest(body);
  if (invalid) return sendJson(res, 400, googleError(400, invalid));

  const plan = planReply(body);
  const responseId = crypto.randomBytes(16).toString('base64url').slice(0, 22);
  const cut = model.includes('cut');
  if (!stream) {
    const full = Buffer.from(JSON.stringify(wholeAnswer(body, model, plan, responseId), null, 2));
    if (!cut) {
      res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8', 'content-length': full.length });
      return res.end(full);
    }
    res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8', 'content-length': full.length });
    res.write(full.subarray(0, full.length >> 1), () => later(20, () => res.socket && res.socket.destroy()));
    return;
  }
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'content-disposition': 'attachment',
    vary: 'Origin, X-Origin, Referer',
    'x-xss-protection': '0',
  });
  res.flushHeaders();
  const chunks = streamChunks(body, model, plan, responseId);
  if (stallStream) {
    await writeAsync(res, sse(chunks[0]));
    return stall(res);
  }
  if (cut) {
    // text chunks without the one that carries finishReason, then the connection dies
    for (const c of chunks.slice(0, Math.max(1, chunks.length - 1)).slice(0, 2)) {
      if (c.candidates[0].finishReason) delete c.candidates[0].finishReason;
      if (!(await writeAsync(res, sse(c)))) return;
      if (CHUNK_DELAY_MS) await sleep(CHUNK_DELAY_MS);
    }
    later(20, () => res.socket && res.socket.destroy());
    return;
  }
  if (model.includes('error-stream')) {
    await writeAsync(res, sse(chunks[0]));
    return res.end(sse(googleError(503, 'The model is overloaded. Please try again later.')));
  }
  for (const c of chunks) {
    if (!(await writeAsync(res, sse(c)))) return;
    if (CHUNK_DELAY_MS) await sleep(CHUNK_DELAY_MS);
  }
  res.end();
}

// ---------------------------------------------------------------- routing

const GEMINI_RE = /^\/v1beta\/models\/([^/:]+):(generateContent|streamGenerateContent)$/;
const VERTEX_RE = /^\/v1\/projects\/([^/]+)\/locations\/([^/]+)\/publishers\/google\/models\/([^/:]+):(generateContent|streamGenerateContent)$/;

function record(req, p, raw) {
  let body = null;
  if (raw.length) {
    try { body = JSON.parse(raw); } catch { body = raw; }
  }
  requestLog.push({ method: req.method, path: req.url, headers: req.headers, body });
  while (requestLog.length > LOG_MAX) requestLog.shift();
}

async function handle(req, res, raw) {
  const url = new URL(req.url, 'http://mock');
  const p = url.pathname;
  if (p.startsWith('/__mock/')) {
    if (p === '/__mock/requests' && req.method === 'GET') return sendJson(res, 200, requestLog);
    if (p === '/__mock/requests' && req.method === 'DELETE') {
      requestLog.length = 0;
      Object.assign(stats, { total: 0, tokens: 0, models: {} });
      return sendJson(res, 200, { cleared: true });
    }
    if (p === '/__mock/stats' && req.method === 'GET') return sendJson(res, 200, stats);
    return sendJson(res, 404, googleError(404, 'Not found'));
  }
  record(req, p, raw);
  if (p === '/token' && req.method === 'POST') return issueToken(req, res, raw);

  const g = GEMINI_RE.exec(p);
  const v = VERTEX_RE.exec(p);
  if (!(g || v) || req.method !== 'POST') {
    return sendJson(res, 404, googleError(404, `The requested URL ${p} was not found on this server.`));
  }
  const vertex = !!v;
  if (vertex ? !checkBearer(req, res) : !checkApiKey(req, res, url)) return;
  const model = decodeURIComponent(vertex ? v[3] : g[1]);
  const stream = (vertex ? v[4] : g[2]) === 'streamGenerateContent';
  if (stream && url.searchParams.get('alt') !== 'sse') {
    return sendJson(res, 400, googleError(400, 'this mock serves streams only with alt=sse'));
  }
  let body;
  try {
    body = JSON.parse(raw);
  } catch {
    return sendJson(res, 400, googleError(400, `Invalid JSON payload received. Unexpected token.\n${raw.slice(0, 40)}\n^`));
  }
  stats.total++;
  stats.models[model] = (stats.models[model] || 0) + 1;
  return answer(req, res, body, model, stream, vertex);
}

mockName('gemini-mock');
serve(args, handle, (res) => sendJson(res, 500, googleError(500, 'mock internal error')));
