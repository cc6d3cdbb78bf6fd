#!/usr/bin/env node
// Mock AWS Bedrock Runtime, Converse and ConverseStream (Node stdlib only).
//
//   node t/mock/bedrock-mock.mjs --port N [--host 127.0.0.1]
//
// Port 0 picks a free port. Once listening it prints exactly one line to stdout,
// {"port":N}, and runs until SIGTERM/SIGINT.
//
// Endpoints (Bedrock's REST-JSON wire format):
//   POST /model/{modelId}/converse          JSON answer
//   POST /model/{modelId}/converse-stream   application/vnd.amazon.eventstream frames
// The model id is percent-encoded in the path (':' as %3A) and decoded here.
//
// Authentication: every request must carry a SigV4 signature (service "bedrock", region
// MOCK_AWS_REGION or us-east-1) made with the access key MOCK_AWS_ACCESS_KEY_ID /
// MOCK_AWS_SECRET_ACCESS_KEY (defaults: the fake pair in t/conf/providers/bedrock.credentials).
// The mock recomputes the signature itself: the canonical URI encodes each path segment once
// more (%3A -> %253A, as AWS does for every service but S3), the signed headers come from
// SignedHeaders, the payload hash must match the body (and x-amz-content-sha256 when sent), and
// x-amz-date must be within 15 minutes of now. A Bedrock API key (Authorization: Bearer
// $MOCK_BEDROCK_API_KEY) is accepted instead when that variable is set.
// Failures answer as AWS does: 403 with x-amzn-ErrorType MissingAuthenticationTokenException,
// IncompleteSignatureException, UnrecognizedClientException, InvalidSignatureException.
//
// Introspection (never authenticated):
//   GET    /__mock/requests  -> the last 200 requests, oldest first: {method, path, headers,
//                               body, model, sigv4: {ok, error, canonical}}
//   DELETE /__mock/requests  -> clears the log
//
// Deterministic content (from the Converse request):
//   last message's last block is a toolResult  -> "Tool said: <its content>" (text blocks
//                                                 joined; json blocks as JSON.stringify)
//   toolConfig.tools present otherwise         -> toolUse of the first tool (or toolChoice.tool
//                                                 .name), id "tooluse_<22 alnum>",
//                                                 input {"q": "<last user text>"}, stopReason
//                                                 tool_use
//   else                                       -> "Echo: <text blocks of the last message>",
//                                                 plus " [images: N]" when it holds images
//   inputTokens = words over all text blocks (system included) + 1 per message;
//   outputTokens = words of the reply (for a tool call: of JSON.stringify(input)).
//
// Behaviour by model id (substring match):
//   fail-429   429 ThrottlingException, retry-after: 7
//   fail-500   500 InternalServerException
//   fail-503   503 ServiceUnavailableException
//   fail-400   400 ValidationException
//   fail-403   403 AccessDeniedException
//   fail-408   408 ModelTimeoutException
//   stall      read the body and never answer (socket destroyed after 120 s)
//   stall-stream  stream: messageStart frame, then silence
//   cut        stream: messageStart + two deltas, then the socket is destroyed; non-stream:
//              half the JSON body, then destroyed
//   exc-throttle / exc-model  stream: messageStart + one delta, then a throttlingException /
//              modelStreamErrorException frame (:message-type exception), end of body
//   bad-crc    stream: messageStart, then a frame whose message CRC is wrong
//   no-metadata  stream: ends after messageStop, without the metadata (usage) frame
//   cached     usage also reports cacheReadInputTokens: 10, cacheWriteInputTokens: 0
//   slow-MS    wait MS milliseconds first
//
// Environment: MOCK_CHUNK_DELAY_MS (delay between frames, default 2).

import crypto from 'node:crypto';
import zlib from 'node:zlib';
import {
  mockName, parseArgs, stall, dieSoon, record, loggedBody, introspect, randAlnum, words, splitPieces,
  writeAsync, writeEach, writeHalf, slowDown, serve,
} from './mock-lib.mjs';

mockName('bedrock-mock');
const args = parseArgs();
const ACCESS_KEY = process.env.MOCK_AWS_ACCESS_KEY_ID || 'AKIAFLOOPYTEST000001';
const SECRET_KEY = process.env.MOCK_AWS_SECRET_ACCESS_KEY || 'floopy/test/secret/key/0000000000000000000';
const REGION = process.env.MOCK_AWS_REGION || 'us-east-1';
const API_KEY = process.env.MOCK_BEDROCK_API_KEY || '';
const ERR_NS = ':http://internal.amazon.com/coral/com.amazon.bedrock/';

// ---------------------------------------------------------------- SigV4 verification

const sha256 = (data) => crypto.createHash('sha256').update(data).digest('hex');
const hmac = (key, data) => crypto.createHmac('sha256', key).update(data).digest();

// RFC 3986 encoding as AWS wants it: everything but A-Z a-z 0-9 - _ . ~
function awsEncode(s) {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

function canonicalQuery(q) {
  if (!q) return '';
  return q
    .split('&')
    .filter(Boolean)
    .map((kv) => {
      const i = kv.indexOf('=');
      const k = decodeURIComponent(i < 0 ? kv : kv.slice(0, i));
      const v = i < 0 ? '' : decodeURIComponent(kv.slice(i + 1));
      return [awsEncode(k), awsEncode(v)];
    })
    .sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

function awsError(res, status, type, message, extra = {}) {
  if (res.destroyed || res.headersSent) return;
  const body = JSON.stringify({ message });
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-amzn-requestid': crypto.randomUUID(),
    'x-amzn-errortype': type + ERR_NS,
    ...extra,
  });
  res.end(body);
}

// {ok, error:[status, type, message], canonical}
function verifySigV4(req, rawPath, query, rawBody) {
  const auth = req.headers['authorization'] || '';
  if (API_KEY && auth === `Bearer ${API_KEY}`) return { ok: true, bearer: true };
  if (!auth) return { ok: false, error: [403, 'MissingAuthenticationTokenException', 'Missing Authentication Token'] };
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) return { ok: false, error: [400, 'IncompleteSignatureException', `Authorization header requires 'Credential', 'Signature', 'SignedHeaders' parameters. Authorization=${auth.slice(0, 20)}`] };
  const [, akid, date8, region, service, signedHeaders, signature] = m;
  if (akid !== ACCESS_KEY) return { ok: false, error: [403, 'UnrecognizedClientException', 'The security token included in the request is invalid.'] };
  const amzDate = req.headers['x-amz-date'] || '';
  const names = signedHeaders.split(';');
  if (!names.includes('host') || !names.includes('x-amz-date') || !/^\d{8}T\d{6}Z$/.test(amzDate)) {
    return { ok: false, error: [400, 'IncompleteSignatureException', 'host and x-amz-date must be signed'] };
  }
  const when = Date.UTC(+amzDate.slice(0, 4), +amzDate.slice(4, 6) - 1, +amzDate.slice(6, 8), +amzDate.slice(9, 11), +amzDate.slice(11, 13), +amzDate.slice(13, 15));
  if (Math.abs(Date.now() - when) > 15 * 60 * 1000) {
    return { ok: false, error: [403, 'InvalidSignatureException', `Signature expired: ${amzDate} is now earlier or later than 15 minutes from now.`] };
  }
  if (date8 !== amzDate.slice(0, 8) || region !== REGION || service !== 'bedrock') {
    return { ok: false, error: [403, 'InvalidSignatureException', `Credential should be scoped to a valid region and service 'bedrock', not '${region}/${service}'.`] };
  }
  const bodyHash = sha256(rawBody);
  const sent = req.headers['x-amz-content-sha256'];
  if (sent && sent !== bodyHash) {
    return { ok: false, error: [400, 'InvalidSignatureException', 'The provided x-amz-content-sha256 header does not match what was computed.'] };
  }
  const canonHeaders = names
    .map((n) => `${n}:${String(req.headers[n] ?? '').trim().replace(/\s+/g, ' ')}\n`)
    .join('');
  const canonUri = rawPath.split('/').map(awsEncode).join('/');
  const canonical = [req.method, canonUri, canonicalQuery(query), canonHeaders, signedHeaders, bodyHash].join('\n');
  const scope = `${date8}/${region}/${service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
  let k = hmac('AWS4' + SECRET_KEY, date8);
  k = hmac(k, region);
  k = hmac(k, service);
  k = hmac(k, 'aws4_request');
  const want = hmac(k, toSign).toString('hex');
  if (want !== signature) {
    return {
      ok: false,
      canonical,
      error: [403, 'InvalidSignatureException', `The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.\n\nThe Canonical String for this request should have been\n'${canonical}'\n\nThe String-to-Sign should have been\n'${toSign}'\n`],
    };
  }
  return { ok: true, canonical };
}

// ---------------------------------------------------------------- event stream frames

function frame(headers, payload) {
  const hparts = [];
  for (const [name, value] of Object.entries(headers)) {
    const n = Buffer.from(name);
    const v = Buffer.from(value);
    const h = Buffer.alloc(1 + n.length + 1 + 2 + v.length);
    h[0] = n.length;
    n.copy(h, 1);
    h[1 + n.length] = 7;
    h.writeUInt16BE(v.length, 2 + n.length);
    v.copy(h, 4 + n.length);
    hparts.push(h);
  }
  const hbuf = Buffer.concat(hparts);
  const pbuf = Buffer.from(payload);
  const total = 16 + hbuf.length + pbuf.length;
  const out = Buffer.alloc(total);
  out.writeUInt32BE(total, 0);
  out.writeUInt32BE(hbuf.length, 4);
  out.writeUInt32BE(zlib.crc32(out.subarray(0, 8)), 8);
  hbuf.copy(out, 12);
  pbuf.copy(out, 12 + hbuf.length);
  out.writeUInt32BE(zlib.crc32(out.subarray(0, total - 4)), total - 4);
  return out;
}

// Bedrock pads every event payload with a random-length "p" field.
const PAD = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
function eventFrame(type, obj) {
  const padded = { ...obj, p: PAD.slice(0, 1 + crypto.randomInt(PAD.length)) };
  return frame({ ':event-type': type, ':content-type': 'application/json', ':message-type': 'event' }, JSON.stringify(padded));
}
function exceptionFrame(type, message) {
  return frame({ ':message-type': 'exception', ':exception-type': type, ':content-type': 'application/json' }, JSON.stringify({ message }));
}

// ---------------------------------------------------------------- the answer

const blockText = (content) =>
  (Array.isArray(content) ? content : []).filter((b) => b && typeof b.text === 'string').map((b) => b.text).join(' ');

function toolResultText(tr) {
  return (Array.isArray(tr.content) ? tr.content : [])
    .map((c) => (typeof c.text === 'string' ? c.text : c.json !== undefined ? JSON.stringify(c.json) : ''))
    .join(' ');
}

function planReply(body) {
  const messages = Array.isArray(body.messages) ? body.messages : [];
  const last = messages[messages.length - 1] || { content: [] };
  const blocks = Array.isArray(last.content) ? last.content : [];
  const lastBlock = blocks[blocks.length - 1];
  if (lastBlock && lastBlock.toolResult) return { kind: 'text', text: `Tool said: ${toolResultText(lastBlock.toolResult)}` };
  const userText = blockText(blocks);
  const tools = ((body.toolConfig && body.toolConfig.tools) || []).filter((t) => t && t.toolSpec && t.toolSpec.name);
  if (tools.length > 0) {
    let name = tools[0].toolSpec.name;
    const tc = body.toolConfig.toolChoice;
    if (tc && tc.tool && typeof tc.tool.name === 'string') name = tc.tool.name;
    return { kind: 'tool', id: 'tooluse_' + randAlnum(22), name, input: { q: userText } };
  }
  const images = blocks.filter((b) => b && b.image).length;
  let text = `Echo: ${userText}`;
  if (images > 0) text += ` [images: ${images}]`;
  return { kind: 'text', text };
}

function usageFor(body, plan, model) {
  let input = 0;
  for (const s of Array.isArray(body.system) ? body.system : []) input += words(s.text);
  for (const m of Array.isArray(body.messages) ? body.messages : []) input += words(blockText(m.content)) + 1;
  const output = plan.kind === 'text' ? words(plan.text) : words(JSON.stringify(plan.input));
  const u = { inputTokens: input, outputTokens: output, totalTokens: input + output };
  if (model.includes('cached')) {
    u.cacheReadInputTokens = 10;
    u.cacheWriteInputTokens = 0;
    u.totalTokens += 10;
  }
  return u;
}

function converseAnswer(body, plan, model) {
  const content = plan.kind === 'text' ? [{ text: plan.text }] : [{ toolUse: { toolUseId: plan.id, name: plan.name, input: plan.input } }];
  return {
    output: { message: { role: 'assistant', content } },
    stopReason: plan.kind === 'text' ? 'end_turn' : 'tool_use',
    usage: usageFor(body, plan, model),
    metrics: { latencyMs: 42 },
  };
}

function streamFrames(body, plan, model) {
  const frames = [eventFrame('messageStart', { role: 'assistant' })];
  if (plan.kind === 'text') {
    for (const piece of splitPieces(plan.text)) frames.push(eventFrame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: piece } }));
  } else {
    frames.push(eventFrame('contentBlockStart', { contentBlockIndex: 0, start: { toolUse: { toolUseId: plan.id, name: plan.name } } }));
    const args = JSON.stringify(plan.input);
    const size = Math.max(1, Math.ceil(args.length / 3));
    for (let i = 0; i < args.length; i += size) {
      frames.push(eventFrame('contentBlockDelta', { contentBlockIndex: 0, delta: { toolUse: { input: args.slice(i, i + size) } } }));
    }
  }
  frames.push(eventFrame('contentBlockStop', { contentBlockIndex: 0 }));
  frames.push(eventFrame('messageStop', { stopReason: plan.kind === 'text' ? 'end_turn' : 'tool_use' }));
  frames.push(eventFrame('metadata', { usage: usageFor(body, plan, model), metrics: { latencyMs: 42 } }));
  return frames;
}

const sendFrames = writeEach;

const CANNED = [
  ['fail-429', 429, 'ThrottlingException', 'Too many requests, please wait before trying again.', { 'retry-after': '7' }],
  ['fail-500', 500, 'InternalServerException', 'The server encountered an internal error.', {}],
  ['fail-503', 503, 'ServiceUnavailableException', 'The service is temporarily unavailable.', {}],
  ['fail-400', 400, 'ValidationException', 'The provided request is not valid.', {}],
  ['fail-403', 403, 'AccessDeniedException', "You don't have access to the model with the specified model ID.", {}],
  ['fail-408', 408, 'ModelTimeoutException', 'Model has timed out in processing the request.', {}],
];

async function answer(req, res, body, model, stream) {
  if (!(await slowDown(model, res))) return;
  for (const [kind, status, type, message, extra] of CANNED) {
    if (model.includes(kind)) return awsError(res, status, type, message, extra);
  }
  const stallStream = model.includes('stall-stream');
  if (model.includes('stall') && !stallStream) return stall(res);

  const plan = planReply(body);
  const reqId = crypto.randomUUID();
  if (!stream) {
    const full = Buffer.from(JSON.stringify(converseAnswer(body, plan, model)));
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': full.length, 'x-amzn-requestid': reqId });
    if (!model.includes('cut')) return res.end(full);
    return writeHalf(res, full);
  }
  res.writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream', 'x-amzn-requestid': reqId });
  res.flushHeaders();
  const frames = streamFrames(body, plan, model);
  if (stallStream) {
    await writeAsync(res, frames[0]);
    return stall(res);
  }
  if (model.includes('cut')) {
    await sendFrames(res, frames.slice(0, 3));
    dieSoon(res);
    return;
  }
  if (model.includes('exc-throttle') || model.includes('exc-model')) {
    if (!(await sendFrames(res, frames.slice(0, 2)))) return;
    res.end(model.includes('exc-throttle')
      ? exceptionFrame('throttlingException', 'Too many tokens, please wait before trying again.')
      : exceptionFrame('modelStreamErrorException', 'The model stream failed.'));
    return;
  }
  if (model.includes('bad-crc')) {
    if (!(await sendFrames(res, frames.slice(0, 1)))) return;
    const bad = Buffer.from(frames[1]);
    bad[bad.length - 1] ^= 0xff;
    res.end(bad);
    return;
  }
  if (model.includes('no-metadata')) {
    if (!(await sendFrames(res, frames.slice(0, -1)))) return;
    return res.end();
  }
  if (await sendFrames(res, frames)) res.end();
}

// ---------------------------------------------------------------- routing

function sendJson(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

async function handle(req, res, raw) {
  const [rawPath, query = ''] = req.url.split('?');
  if (rawPath.startsWith('/__mock/')) {
    if (introspect(req, rawPath, (status, obj) => sendJson(res, status, obj))) return;
    return awsError(res, 404, 'UnknownOperationException', 'unknown mock endpoint');
  }
  const m = /^\/model\/([^/]+)\/(converse|converse-stream)$/.exec(rawPath);
  const body = loggedBody(raw);
  const sig = verifySigV4(req, rawPath, query, raw);
  const model = m ? decodeURIComponent(m[1]) : null;
  record({ method: req.method, path: req.url, headers: req.headers, body, model, sigv4: { ok: sig.ok, error: sig.error ? sig.error[1] : null, canonical: sig.canonical || null } });

  if (!sig.ok) return awsError(res, sig.error[0], sig.error[1], sig.error[2]);
  if (!m || req.method !== 'POST') return awsError(res, 404, 'UnknownOperationException', `no operation for ${req.method} ${rawPath}`);
  if (!body || typeof body !== 'object' || Array.isArray(body)) return awsError(res, 400, 'ValidationException', 'The request body is not a JSON object.');
  if (!Array.isArray(body.messages) || body.messages.length === 0) {
    return awsError(res, 400, 'ValidationException', "1 validation error detected: Value null at 'messages' failed to satisfy constraint: Member must not be null");
  }
  for (let i = 0; i < body.messages.length; i++) {
    const msg = body.messages[i];
    if (!msg || !['user', 'assistant'].includes(msg.role)) return awsError(res, 400, 'ValidationException', `messages.${i}.role must be user or assistant`);
    if (!Array.isArray(msg.content) || msg.content.length === 0) {
      return awsError(res, 400, 'ValidationException', `The content field in the Message object at messages.${i} is empty. Add a ContentBlock object to the content field and try again.`);
    }
    if (i > 0 && body.messages[i - 1].role === msg.role) {
      return awsError(res, 400, 'ValidationException', 'A conversation must alternate between user and assistant roles.');
    }
  }
  return answer(req, res, body, model, m[2] === 'converse-stream');
}

serve(args, handle, (res) => awsError(res, 500, 'InternalServerException', 'mock internal error'), { raw: true });
