// The error matrix of docs/design.md: authentication, request validation, size limit, unknown
// routes/ids/paths/methods, and every upstream failure the mock can produce. Every error body
// must be exactly {"error":{"message","type","param","code"}}; every chat request that was read
// and parsed must yield a decision whose status matches.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { before, test } from 'node:test';
import OpenAI from 'openai';
import {
  BASE, CONFIG, chat, checkDecision, checkErrorObject, createOrg, expectOpenAIError, getDecision,
  mockRequestsWith, nonce, openaiClient, request, sse,
} from './lib.mjs';

let org; let key; let keyInfo;

before(async () => {
  ({ org, clientKey: key, clientKeyInfo: keyInfo } = await createOrg('pro'));
});

const msg = (text) => [{ role: 'user', content: text }];

/** The decision named by the response header, read back and checked. */
async function decisionOf(r, expect) {
  const id = r.headers.get('x-floopy-decision-id');
  assert.ok(id, `no x-floopy-decision-id on ${r.status} ${r.text ?? ''}`);
  return checkDecision(await getDecision(key, id), { org, keyId: keyInfo.id, ...expect });
}

/** If the gateway did name a decision (not required: the request was not parsed), it must be right. */
async function optionalDecision(r, expect) {
  if (r.headers.get('x-floopy-decision-id')) await decisionOf(r, expect);
}

// ------------------------------------------------------------------ authentication

test('no key: 401 missing_api_key', async () => {
  const r = await chat(undefined, { model: 'auto', messages: msg('hi') });
  expectOpenAIError(r, 401, 'missing_api_key', { type: 'authentication_error' });
  assert.equal(r.headers.get('x-floopy-decision-id'), null, 'an unauthenticated request yields no decision');
  const m = await request('GET', '/v1/models');
  expectOpenAIError(m, 401, 'missing_api_key', { type: 'authentication_error' });
  const d = await request('GET', `/v1/decisions/${crypto.randomUUID()}`);
  expectOpenAIError(d, 401, 'missing_api_key', { type: 'authentication_error' });
});

test('wrong key: 401 invalid_api_key', async () => {
  for (const bad of [`fl-${crypto.randomBytes(32).toString('base64url')}`, 'sk-not-a-floopy-key', `${key}x`, key.slice(0, -1)]) {
    const r = await chat(bad, { model: 'auto', messages: msg('hi') });
    expectOpenAIError(r, 401, 'invalid_api_key', { type: 'authentication_error' });
    assert.equal(r.headers.get('x-floopy-decision-id'), null);
  }
});

// ------------------------------------------------------------------ request validation

test('malformed JSON and a non-object body: 400 invalid_json', async () => {
  for (const raw of ['{"model": "auto", "messages": [', '[{"model":"auto"}]', '"just a string"', '']) {
    const r = await chat(key, raw);
    expectOpenAIError(r, 400, 'invalid_json', { type: 'invalid_request_error' });
    await optionalDecision(r, { status: 'invalid_request', http_status: 400 });
  }
});

test('wrong field types: 400 invalid_type with param', async () => {
  const cases = [
    [{ model: 'auto', messages: 'hello' }, 'messages'],
    [{ model: 'auto', messages: { role: 'user', content: 'hi' } }, 'messages'],
    [{ model: 42, messages: msg('hi') }, 'model'],
    [{ model: 'auto', messages: msg('hi'), stream: 'yes' }, 'stream'],
  ];
  for (const [body, param] of cases) {
    const r = await chat(key, body);
    expectOpenAIError(r, 400, 'invalid_type', { type: 'invalid_request_error', param });
    await decisionOf(r, { status: 'invalid_request', http_status: 400 });
  }
});

test('missing fields: 400 missing_required_parameter with param', async () => {
  for (const [body, param] of [[{ model: 'auto' }, 'messages'], [{ messages: msg('hi') }, 'model']]) {
    const r = await chat(key, body);
    expectOpenAIError(r, 400, 'missing_required_parameter', { type: 'invalid_request_error', param });
    await decisionOf(r, { status: 'invalid_request', http_status: 400 });
  }
});

test('body over FloopyMaxBodySize: 413 request_too_large, nothing forwarded', async () => {
  const marker = nonce('big');
  const body = JSON.stringify({ model: 'auto', messages: msg(`${marker} ${'x'.repeat(CONFIG.maxBody + 4096)}`) });
  assert.ok(body.length > CONFIG.maxBody);
  const r = await chat(key, body);
  expectOpenAIError(r, 413, 'request_too_large', { type: 'invalid_request_error' });
  await optionalDecision(r, { http_status: 413 });

  // the same without Content-Length (chunked request body)
  const bytes = Buffer.from(body);
  const stream = new ReadableStream({
    start(c) {
      for (let i = 0; i < bytes.length; i += 8192) c.enqueue(bytes.subarray(i, i + 8192));
      c.close();
    },
  });
  const res = await fetch(`${BASE}/v1/chat/completions`, {
    method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: stream, duplex: 'half',
  });
  const text = await res.text();
  let json; try { json = JSON.parse(text); } catch { /* checked below */ }
  expectOpenAIError({ status: res.status, headers: res.headers, text, json, url: 'chunked' }, 413, 'request_too_large');

  assert.equal((await mockRequestsWith(marker)).length, 0, 'an oversized body was forwarded upstream');
});

test('a body just under the limit is served', async () => {
  const marker = nonce('fits');
  const skeleton = JSON.stringify({ model: 'auto', messages: msg(`${marker} `) });
  const pad = CONFIG.maxBody - skeleton.length - 64;
  const body = { model: 'auto', messages: msg(`${marker} ${'y'.repeat(pad)}`) };
  assert.ok(JSON.stringify(body).length <= CONFIG.maxBody);
  const r = await chat(key, body);
  assert.equal(r.status, 200, `${r.status} ${r.text.slice(0, 300)}`);
  assert.equal(r.json.choices[0].message.content, `Echo: ${marker} ${'y'.repeat(pad)}`);
});

// ------------------------------------------------------------------ unknown things

test('unknown route and unknown provider: 404 model_not_found (param model)', async () => {
  for (const model of ['no-such-route', 'nope/x', 'mock']) {
    const r = await chat(key, { model, messages: msg('hi') });
    expectOpenAIError(r, 404, 'model_not_found', { type: 'invalid_request_error', param: 'model' });
    const d = await decisionOf(r, { status: 'not_found', http_status: 404, route: model });
    assert.equal(d.chosen, null, 'nothing was chosen');
  }
});

test('unknown decision id and another organisation\'s decision id: the same 404', async () => {
  const other = await createOrg('pro');
  const r = await chat(other.clientKey, { model: 'auto', messages: msg('mine, not yours') });
  assert.equal(r.status, 200, r.text);
  const theirs = r.headers.get('x-floopy-decision-id');
  await getDecision(other.clientKey, theirs); // it exists

  const unknown = crypto.randomUUID();
  const a = await request('GET', `/v1/decisions/${unknown}`, { key });
  const ea = expectOpenAIError(a, 404, 'not_found', { type: 'not_found_error' });
  const b = await request('GET', `/v1/decisions/${theirs}`, { key });
  const eb = expectOpenAIError(b, 404, 'not_found', { type: 'not_found_error' });
  const norm = (e, id) => JSON.stringify({ ...e, message: e.message.split(id).join('<id>') });
  assert.equal(norm(eb, theirs), norm(ea, unknown), 'another organisation\'s decision is told apart from an unknown one');

  const junk = await request('GET', '/v1/decisions/not-a-decision-id', { key });
  expectOpenAIError(junk, 404, 'not_found', { type: 'not_found_error' });
});

test('unknown path: 404 unknown_url; wrong method: 405 method_not_allowed', async () => {
  for (const [method, path] of [['GET', '/v1/nope'], ['POST', '/v1/embeddings'], ['GET', '/v1/chat/completions/extra']]) {
    const r = await request(method, path, { key, body: method === 'POST' ? { input: 'x' } : undefined });
    expectOpenAIError(r, 404, 'unknown_url', { type: 'invalid_request_error' });
  }
  for (const [method, path] of [['GET', '/v1/chat/completions'], ['PUT', '/v1/chat/completions'], ['DELETE', '/v1/models'],
    ['POST', '/v1/models']]) {
    const r = await request(method, path, { key });
    expectOpenAIError(r, 405, 'method_not_allowed', { type: 'invalid_request_error' });
  }
});

// ------------------------------------------------------------------ upstream failures

async function upstream(model, { status, code, type, decision, stream = false }) {
  const marker = nonce('up');
  const t0 = Date.now();
  const body = { model, messages: msg(`failure case ${marker}`) };
  if (stream) body.stream = true;
  const r = await chat(key, body);
  const elapsed = Date.now() - t0;
  const e = expectOpenAIError(r, status, code, type ? { type } : {});
  const d = await decisionOf(r, { status: decision, http_status: status, route: model, pinned: true, stream });
  const [prov, ...rest] = model.split('/');
  assert.equal(d.chosen?.provider, prov, 'chosen provider of a failed request');
  assert.equal(d.chosen?.model, rest.join('/'), 'chosen model of a failed request');
  return { r, e, d, elapsed };
}

test('upstream 500 and 503: 502 upstream_error', async () => {
  for (const model of ['mock/fail-500', 'mock/fail-503']) {
    const { r } = await upstream(model, { status: 502, code: 'upstream_error', type: 'upstream_error', decision: 'upstream_error' });
    assert.equal(r.headers.get('x-floopy-provider'), 'mock');
  }
  await upstream('mock/fail-500', { status: 502, code: 'upstream_error', type: 'upstream_error', decision: 'upstream_error', stream: true });
});

test('upstream answers garbage or a cut body: 502 upstream_error', async () => {
  await upstream('mock/garbage', { status: 502, code: 'upstream_error', type: 'upstream_error', decision: 'upstream_error' });
  await upstream('mock/cut', { status: 502, code: 'upstream_error', type: 'upstream_error', decision: 'upstream_error' });
});

test('provider refuses connections: 502 upstream_error, quickly', async () => {
  const { elapsed } = await upstream('dead/any-model',
    { status: 502, code: 'upstream_error', type: 'upstream_error', decision: 'upstream_error' });
  assert.ok(elapsed < 2500, `a refused connection took ${elapsed} ms`);
});

test('upstream stall: 504 upstream_timeout after the timeout', async () => {
  const { elapsed } = await upstream('mock/stall',
    { status: 504, code: 'upstream_timeout', type: 'timeout_error', decision: 'upstream_timeout' });
  assert.ok(elapsed >= CONFIG.idleTimeoutMs - 100, `504 after only ${elapsed} ms`);
  assert.ok(elapsed <= 5500, `504 after ${elapsed} ms (timeout=${CONFIG.timeoutMs})`);
});

test('upstream stall before any byte of a stream: 504 upstream_timeout', async () => {
  const { elapsed } = await upstream('mock/stall',
    { status: 504, code: 'upstream_timeout', type: 'timeout_error', decision: 'upstream_timeout', stream: true });
  assert.ok(elapsed >= CONFIG.idleTimeoutMs - 100, `504 after only ${elapsed} ms`);
  assert.ok(elapsed <= 5500, `504 after ${elapsed} ms`);
});

test('upstream 429: 429 rate_limit_error, retry-after kept', async () => {
  const { r } = await upstream('mock/fail-429',
    { status: 429, code: 'rate_limit_exceeded', type: 'rate_limit_error', decision: 'rate_limited' });
  assert.equal(r.headers.get('retry-after'), '7');
});

test('upstream quota 429: 429 rate_limit_error with the upstream code', async () => {
  await upstream('mock/quota-429', { status: 429, code: 'insufficient_quota', type: 'rate_limit_error', decision: 'rate_limited' });
});

test('upstream 400 and 401 are reported OpenAI-shaped, with a decision', async () => {
  // The contract does not fix these statuses; the shape and the decision it does fix.
  for (const model of ['mock/fail-400', 'mock/fail-401']) {
    const r = await chat(key, { model, messages: msg('hi') });
    assert.ok(r.status >= 400 && r.status < 600, `${model}: ${r.status}`);
    assert.notEqual(r.status, 401, `${model}: the provider's credential problem is reported as the client's 401`);
    expectOpenAIError(r, r.status);
    const d = await decisionOf(r, { http_status: r.status });
    assert.notEqual(d.status, 'ok');
  }
});

test('stream cut after bytes went out: error event, no [DONE], decision stream_error', async () => {
  const marker = nonce('cut');
  const body = { model: 'mock/cut', messages: msg(`cut me off ${marker} please now`), stream: true };
  const r = await sse(key, body);
  assert.equal(r.status, 200);
  assert.equal(r.done, false, 'a cut stream ended with [DONE]');
  assert.equal(r.transportError, null, `the gateway broke the client connection instead of sending an error event: ${r.transportError}`);
  assert.ok(r.events.length >= 2, `events: ${r.events}`);
  const last = JSON.parse(r.events.at(-1));
  checkErrorObject(last);
  const content = r.events.slice(0, -1).map((e) => JSON.parse(e).choices?.[0]?.delta?.content ?? '').join('');
  assert.ok(`Echo: cut me off ${marker} please now`.startsWith(content) && content.length > 0, `partial content ${content}`);
  await decisionOf(r, { status: 'stream_error', stream: true, route: 'mock/cut' });

  // the openai client's stream iteration throws an APIError built from the error event
  const client = openaiClient(key);
  const { data: stream, response } = await client.chat.completions.create(body).withResponse();
  let threw = null;
  let chunks = 0;
  try {
    for await (const c of stream) { void c; chunks++; }
  } catch (e) { threw = e; }
  assert.ok(threw, 'the openai client finished a cut stream without an error');
  assert.ok(threw instanceof OpenAI.APIError, `expected an APIError from the error event, got ${threw}`);
  assert.ok(chunks >= 1);
  await decisionOf({ headers: response.headers }, { status: 'stream_error', stream: true });
});

test('stream stalls after the first chunk: error event after idle_timeout', async () => {
  const marker = nonce('sst');
  const body = { model: 'mock/stall-stream', messages: msg(`stall after one ${marker}`), stream: true };
  let firstAt = null;
  const t0 = Date.now();
  const r = await sse(key, body, { onEvent: () => { firstAt ??= Date.now() - t0; } });
  const elapsed = Date.now() - t0;
  assert.equal(r.status, 200);
  assert.equal(r.done, false);
  assert.equal(r.transportError, null, `no error event, the connection broke: ${r.transportError}`);
  assert.ok(r.events.length >= 2, `events: ${r.events}`);
  checkErrorObject(JSON.parse(r.events.at(-1)));
  assert.ok(firstAt !== null && firstAt < 1000, `first chunk after ${firstAt} ms`);
  assert.ok(elapsed >= CONFIG.idleTimeoutMs - 100, `error event after only ${elapsed} ms`);
  assert.ok(elapsed <= CONFIG.idleTimeoutMs + 2500, `error event after ${elapsed} ms`);
  const d = await decisionOf(r, { stream: true, route: 'mock/stall-stream' });
  // The contract does not say which of the two a stall after bytes went out is.
  assert.ok(['stream_error', 'upstream_timeout'].includes(d.status), `decision status ${d.status}`);
});
