// Shared helpers for the end-to-end tests. Everything comes from the environment that
// t/e2e/run.mjs sets; the tests never start or configure servers themselves
// (except restart.test.mjs, which sends `-k graceful` through httpdCtl(), and
// sticky-children.test.mjs, which runs an httpd of its own under FLOOPY_TEST_SERVERS).

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set; run the suite with: node t/e2e/run.mjs`);
  return v;
}

export const BASE = need('FLOOPY_TEST_BASE');
export const ADMIN_TOKEN = need('FLOOPY_TEST_ADMIN_TOKEN');
export const MOCK_BASE = need('FLOOPY_TEST_MOCK_BASE');
export const MOCK_KEY = process.env.FLOOPY_TEST_MOCK_KEY || '';
export const CONF = process.env.FLOOPY_TEST_CONF || '';
export const APACHE = process.env.FLOOPY_TEST_APACHE || '/usr/sbin/apache2';

// Values from t/conf/test.conf
export const CONFIG = {
  maxBody: 65536,
  keyCacheTTL: 2,
  timeoutMs: 3000,
  idleTimeoutMs: 1500,
  prices: {
    'mock/mock-small': { input: 0.1, output: 0.4, cached_input: null },
    'mock/mock-large': { input: 2.5, output: 10, cached_input: 1.25 },
  },
  routes: { auto: ['mock/mock-small', 'mock/mock-large'] },
};

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const nonce = (p = 'n') => `${p}-${crypto.randomBytes(6).toString('hex')}`;

// ---------------------------------------------------------------- plain HTTP

/** fetch + read the whole body. Returns {status, headers, text, json (undefined if not JSON)}. */
export async function request(method, url, { key, token, body, raw, headers = {}, signal } = {}) {
  const h = { ...headers };
  const bearer = token ?? key;
  if (bearer !== undefined && bearer !== null) h.authorization = `Bearer ${bearer}`;
  let payload;
  if (raw !== undefined) {
    payload = raw;
    if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['content-type'] = 'application/json';
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    h['content-type'] = 'application/json';
  }
  const res = await fetch(url.startsWith('http') ? url : BASE + url, { method, headers: h, body: payload, signal });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, headers: res.headers, text, json, url };
}

export function admin(method, path, body, { token = ADMIN_TOKEN, raw, headers } = {}) {
  return request(method, `/floopy-admin${path}`, { token, body, raw, headers });
}

/** POST /v1/chat/completions with fetch; body is an object (or a string with opts.raw). */
export function chat(key, body, headers = {}) {
  if (typeof body === 'string') return request('POST', '/v1/chat/completions', { key, raw: body, headers });
  return request('POST', '/v1/chat/completions', { key, body, headers });
}

export function openaiClient(key, opts = {}) {
  return new OpenAI({ apiKey: key, baseURL: `${BASE}/v1`, maxRetries: 0, timeout: 30000, ...opts });
}

// ---------------------------------------------------------------- admin

let orgSeq = 0;
/** A fresh organisation with one client key and one admin key (through the admin API). */
export async function createOrg(plan = 'pro', name) {
  name ??= `e2e-${process.pid}-${++orgSeq}-${crypto.randomBytes(3).toString('hex')}`;
  const o = await admin('POST', '/organizations', { name, plan });
  assert.equal(o.status, 201, `create organization: ${o.status} ${o.text}`);
  const org = o.json;
  const c = await admin('POST', `/organizations/${org.id}/keys`, { role: 'client', name: 'e2e client' });
  assert.equal(c.status, 201, `create client key: ${c.status} ${c.text}`);
  const a = await admin('POST', `/organizations/${org.id}/keys`, { role: 'admin', name: 'e2e admin' });
  assert.equal(a.status, 201, `create admin key: ${a.status} ${a.text}`);
  return { org, clientKey: c.json.key, adminKey: a.json.key, clientKeyInfo: c.json, adminKeyInfo: a.json };
}

// ---------------------------------------------------------------- decisions

/** GET /v1/decisions/{id}, retrying on 404 for up to `waitMs` (the writer batches). */
export async function getDecision(key, id, waitMs = 2000) {
  assert.ok(id, 'no decision id');
  const deadline = Date.now() + waitMs;
  for (;;) {
    const r = await request('GET', `/v1/decisions/${encodeURIComponent(id)}`, { key });
    if (r.status !== 404 || Date.now() >= deadline) {
      assert.equal(r.status, 200, `GET /v1/decisions/${id}: ${r.status} ${r.text}`);
      return r.json;
    }
    await sleep(50);
  }
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
const UUIDV7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
export const STATUSES = ['ok', 'invalid_request', 'upstream_error', 'upstream_timeout', 'rate_limited',
  'stream_error', 'client_closed', 'not_found'];

const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
const isIntOrNull = (v) => v === null || Number.isInteger(v);
const isStrOrNull = (v) => v === null || typeof v === 'string';

/**
 * Checks a decision against the shape in docs/design.md. `expect` may give
 * {org, keyId, status, http_status, route, pinned, stream, session_id}.
 */
export function checkDecision(d, expect = {}) {
  const where = `decision ${JSON.stringify(d)}`;
  assert.equal(typeof d, 'object', where);
  const keys = ['id', 'object', 'created_at', 'organization_id', 'api_key_id', 'session_id', 'route', 'pinned',
    'stream', 'chosen', 'alternatives', 'signals', 'constraints', 'confidence', 'phase', 'status', 'http_status',
    'latency_ms', 'usage', 'cost_usd', 'cache_hit', 'error', 'completed_at'];
  for (const k of keys) assert.ok(Object.hasOwn(d, k), `decision lacks "${k}": ${where}`);
  assert.match(d.id, UUIDV7, `id is not a UUIDv7: ${where}`);
  assert.equal(d.object, 'floopy.decision');
  assert.match(d.created_at, ISO, `created_at: ${where}`);
  assert.match(d.completed_at, ISO, `completed_at: ${where}`);
  assert.ok(Date.parse(d.completed_at) >= Date.parse(d.created_at), `completed_at before created_at: ${where}`);
  assert.ok(typeof d.organization_id === 'string' || Number.isInteger(d.organization_id), where);
  assert.ok(typeof d.api_key_id === 'string' || Number.isInteger(d.api_key_id), where);
  assert.ok(isStrOrNull(d.session_id), `session_id: ${where}`);
  assert.equal(typeof d.route, 'string', `route: ${where}`);
  assert.equal(typeof d.pinned, 'boolean', `pinned: ${where}`);
  assert.equal(typeof d.stream, 'boolean', `stream: ${where}`);
  if (d.chosen !== null) {
    assert.equal(typeof d.chosen, 'object', `chosen: ${where}`);
    assert.equal(typeof d.chosen.provider, 'string', `chosen.provider: ${where}`);
    assert.equal(typeof d.chosen.model, 'string', `chosen.model: ${where}`);
    assert.ok(Object.hasOwn(d.chosen, 'score') && (d.chosen.score === null || isNum(d.chosen.score)), `chosen.score: ${where}`);
  }
  assert.ok(Array.isArray(d.alternatives), `alternatives: ${where}`);
  for (const a of d.alternatives) {
    assert.equal(typeof a.provider, 'string', `alternative.provider: ${where}`);
    assert.equal(typeof a.model, 'string', `alternative.model: ${where}`);
    assert.ok(Object.hasOwn(a, 'score') && (a.score === null || isNum(a.score)), `alternative.score: ${where}`);
    assert.ok(Object.hasOwn(a, 'excluded_by') && isStrOrNull(a.excluded_by), `alternative.excluded_by: ${where}`);
  }
  assert.ok(d.signals && typeof d.signals === 'object' && !Array.isArray(d.signals), `signals: ${where}`);
  assert.ok(d.constraints && typeof d.constraints === 'object' && !Array.isArray(d.constraints), `constraints: ${where}`);
  assert.ok(isNum(d.confidence) && d.confidence >= 0 && d.confidence <= 1, `confidence: ${where}`);
  assert.equal(typeof d.phase, 'string', `phase: ${where}`);
  assert.ok(d.phase.length > 0, `phase: ${where}`);
  assert.ok(STATUSES.includes(d.status), `status: ${where}`);
  assert.ok(Number.isInteger(d.http_status), `http_status: ${where}`);
  assert.ok(d.latency_ms && isNum(d.latency_ms.total) && d.latency_ms.total >= 0, `latency_ms.total: ${where}`);
  assert.ok(Object.hasOwn(d.latency_ms, 'upstream') && (d.latency_ms.upstream === null || isNum(d.latency_ms.upstream)),
    `latency_ms.upstream: ${where}`);
  if (d.status === 'ok') assert.ok(d.usage && typeof d.usage === 'object', `usage: ${where}`);
  if (d.usage !== null) {
    for (const k of ['prompt_tokens', 'completion_tokens', 'total_tokens', 'cached_tokens', 'reasoning_tokens']) {
      assert.ok(Object.hasOwn(d.usage, k) && isIntOrNull(d.usage[k]), `usage.${k}: ${where}`);
    }
  }
  assert.ok(d.cost_usd === null || isNum(d.cost_usd), `cost_usd: ${where}`);
  assert.equal(typeof d.cache_hit, 'boolean', `cache_hit: ${where}`);
  if (d.error !== null) {
    assert.equal(typeof d.error, 'object', `error: ${where}`);
    assert.equal(typeof d.error.message, 'string', `error.message: ${where}`);
    assert.equal(typeof d.error.type, 'string', `error.type: ${where}`);
    assert.ok(Object.hasOwn(d.error, 'code') && isStrOrNull(d.error.code), `error.code: ${where}`);
  }
  if (d.status === 'ok') assert.equal(d.error, null, `ok decision with an error: ${where}`);
  else assert.notEqual(d.error, null, `${d.status} decision without an error: ${where}`);

  if (expect.org !== undefined) assert.equal(String(d.organization_id), String(expect.org.id), `organization_id: ${where}`);
  if (expect.keyId !== undefined) assert.equal(String(d.api_key_id), String(expect.keyId), `api_key_id: ${where}`);
  for (const k of ['status', 'http_status', 'route', 'pinned', 'stream', 'session_id']) {
    if (expect[k] !== undefined) assert.equal(d[k], expect[k], `${k}: ${where}`);
  }
  return d;
}

/** cost in USD of a usage under a price line (USD per million tokens) */
export function costOf(usage, price) {
  const cached = usage.cached_tokens ?? 0;
  const cachedPrice = price.cached_input ?? price.input;
  return ((usage.prompt_tokens - cached) * price.input + cached * cachedPrice + usage.completion_tokens * price.output) / 1e6;
}

export function assertClose(actual, expected, what) {
  assert.ok(isNum(actual), `${what}: ${actual} is not a number`);
  const tol = Math.max(1e-12, Math.abs(expected) * 1e-6);
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: got ${actual}, expected ${expected}`);
}

// ---------------------------------------------------------------- errors

/**
 * The body must be exactly {"error":{"message","type","param","code"}}.
 * `r` is a result of request()/chat(). Returns the error object.
 */
export function expectOpenAIError(r, status, code, more = {}) {
  const where = `${r.url ?? ''} -> ${r.status} ${r.text}`;
  if (status !== undefined) assert.equal(r.status, status, `status: ${where}`);
  assert.match(r.headers.get('content-type') ?? '', /^application\/json\b/, `content-type: ${where}`);
  assert.ok(r.json && typeof r.json === 'object' && !Array.isArray(r.json), `body is not a JSON object: ${where}`);
  return checkErrorObject(r.json, code, more, where);
}

/** Same check on an already-parsed body (e.g. an SSE error event). */
export function checkErrorObject(body, code, more = {}, where = JSON.stringify(body)) {
  assert.deepEqual(Object.keys(body), ['error'], `top level keys: ${where}`);
  const e = body.error;
  assert.ok(e && typeof e === 'object', `error: ${where}`);
  assert.deepEqual(Object.keys(e).sort(), ['code', 'message', 'param', 'type'], `error keys: ${where}`);
  assert.equal(typeof e.message, 'string', `error.message: ${where}`);
  assert.ok(e.message.length > 0, `empty error.message: ${where}`);
  assert.equal(typeof e.type, 'string', `error.type: ${where}`);
  assert.ok(isStrOrNull(e.param), `error.param: ${where}`);
  assert.ok(isStrOrNull(e.code), `error.code: ${where}`);
  if (code !== undefined) assert.equal(e.code, code, `error.code: ${where}`);
  for (const [k, v] of Object.entries(more)) assert.equal(e[k], v, `error.${k}: ${where}`);
  return e;
}

// ---------------------------------------------------------------- SSE

/** Reads an SSE response with fetch. Returns {status, headers, events: [data strings], done, error (transport)} */
export async function sse(key, body, { headers = {}, onEvent, signal } = {}) {
  const res = await fetch(`${BASE}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    signal,
  });
  const out = { status: res.status, headers: res.headers, events: [], done: false, transportError: null, text: '' };
  if (!(res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    out.text = await res.text();
    try { out.json = JSON.parse(out.text); } catch { /* not JSON */ }
    return out;
  }
  const dec = new TextDecoder();
  let buf = '';
  try {
    for await (const chunk of res.body) {
      const s = dec.decode(chunk, { stream: true });
      buf += s;
      out.text += s;
      let i;
      while ((i = buf.search(/\r?\n\r?\n/)) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i).replace(/^\r?\n\r?\n/, '');
        const data = block.split(/\r?\n/).filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, '')).join('\n');
        if (!data) continue;
        if (data === '[DONE]') out.done = true;
        else out.events.push(data);
        if (onEvent) onEvent(data, out);
      }
    }
  } catch (e) {
    out.transportError = e;
  }
  out.rest = buf;
  return out;
}

// ---------------------------------------------------------------- mock provider

/** Requests the mock received, newest last; bodies parsed when they are JSON. */
export async function mockRequests() {
  const r = await fetch(`${MOCK_BASE}/__mock/requests`);
  assert.equal(r.status, 200, 'GET /__mock/requests');
  const list = await r.json();
  return list.map((q) => {
    let body = q.body;
    if (typeof body === 'string') { try { body = JSON.parse(body); } catch { /* keep */ } }
    return { ...q, body };
  });
}

/**
 * The requests the gateway sent to the mock whose body contains `marker` (e.g. a nonce in a
 * message); requests the tests sent straight to the mock (mockDirect) are left out.
 */
export async function mockRequestsWith(marker) {
  return (await mockRequests()).filter((q) => q.headers?.['x-e2e-direct'] !== '1'
    && JSON.stringify(q.body ?? '').includes(marker));
}

/** Sends a request straight to the mock (not through the gateway), e.g. to learn its usage numbers. */
export async function mockDirect(body) {
  const r = await fetch(`${MOCK_BASE}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${MOCK_KEY}`, 'x-e2e-direct': '1' },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  if (!body.stream) return { status: r.status, headers: r.headers, json: JSON.parse(text) };
  const chunks = text.split(/\r?\n\r?\n/).map((b) => b.replace(/^data: ?/, '').trim()).filter((d) => d && d !== '[DONE]')
    .map((d) => JSON.parse(d));
  return { status: r.status, headers: r.headers, chunks, usage: chunks.find((c) => c.usage)?.usage ?? null };
}

// ---------------------------------------------------------------- httpd control

/** `apache2 -f test.conf -k <action>` with the harness environment (graceful, graceful-stop …). */
export function httpdCtl(action) {
  assert.ok(CONF, 'FLOOPY_TEST_CONF is not set');
  const r = spawnSync(APACHE, ['-f', CONF, '-k', action], { env: process.env, encoding: 'utf8', timeout: 30000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, error: r.error };
}

/** The same, without blocking the event loop (requests in flight keep running). */
export function httpdCtlAsync(action) {
  assert.ok(CONF, 'FLOOPY_TEST_CONF is not set');
  return new Promise((resolve) => {
    const child = spawn(APACHE, ['-f', CONF, '-k', action], { env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    child.on('error', (error) => resolve({ code: null, out, error }));
    child.on('exit', (code) => resolve({ code, out }));
  });
}

/** A string that looks like an id of the same kind as `like` but names nothing. */
export function unknownIdLike(like) {
  const s = String(like);
  if (/^\d+$/.test(s)) return String(2000000000 + crypto.randomInt(1000000));
  if (UUIDV7.test(s)) {
    // same millisecond layout, random tail: still a valid UUIDv7
    const h = crypto.randomBytes(10).toString('hex');
    return `${s.slice(0, 14)}7${h.slice(0, 3)}-${'89ab'[crypto.randomInt(4)]}${h.slice(3, 6)}-${h.slice(6, 18)}`;
  }
  if (/^[0-9a-f-]{36}$/i.test(s)) return crypto.randomUUID();
  return `${s.slice(0, Math.max(0, s.length - 6))}${crypto.randomBytes(3).toString('hex')}`;
}

// ---------------------------------------------------------------- database (read-only checks)

/**
 * Runs one SQL statement against the private MariaDB of the test run (socket authentication as
 * the current Unix user, as apxs-build.sh does). Returns rows as arrays of strings, or null when
 * the database cannot be reached this way (e.g. not running as the user that installed it).
 */
export function dbQuery(sql) {
  const varDir = process.env.FLOOPY_VAR;
  if (!varDir) return null;
  let params;
  try {
    params = /DBDParams\s+"([^"]*)"/.exec(fs.readFileSync(path.join(varDir, 'dbd.conf'), 'utf8'))?.[1];
  } catch { return null; }
  const sock = /(?:^|\s)sock=(\S+)/.exec(params ?? '')?.[1];
  const db = /(?:^|\s)dbname=(\S+)/.exec(params ?? '')?.[1];
  if (!sock || !db) return null;
  const user = os.userInfo().username;
  const r = spawnSync('mariadb', ['--no-defaults', '-S', sock, '-u', user, '-D', db, '-N', '-B', '-e', sql],
    { encoding: 'utf8', timeout: 20000 });
  if (r.error || r.status !== 0) return null;
  return r.stdout.split('\n').filter((l) => l !== '').map((l) => l.split('\t'));
}

// ---------------------------------------------------------------- provider tests
// What the tests of one provider type (anthropic, azure, cohere, bedrock, ...) share: each
// runs its own mock on the port in FLOOPY_MOCK_<TYPE>_PORT.

/** A 1x1 PNG, base64. */
export const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

/** The key in t/conf/providers/<name>.key. */
export const providerKey = (name) =>
  fs.readFileSync(path.join(process.env.FLOOPY_ROOT, `t/conf/providers/${name}.key`), 'utf8').trim();

/** A pro organisation for a provider's tests: {org, key, keyInfo, client}. */
export async function providerOrg(port, portVar) {
  assert.ok(port, `${portVar} is not set; run with node t/e2e/run.mjs`);
  const { org, clientKey: key, clientKeyInfo: keyInfo } = await createOrg('pro');
  return { org, key, keyInfo, client: openaiClient(key) };
}

/** What the mock at `mock` received for a marker (requests sent straight to it left out). */
export async function mockReceived(mock, marker) {
  const list = await (await fetch(`${mock}/__mock/requests`)).json();
  return list.filter((q) => q.headers['x-e2e-direct'] !== '1' && JSON.stringify(q.body ?? '').includes(marker));
}

/** Token counts as `want` has them (cached_tokens too when `want` has that key). */
export function checkUsage(got, want, what) {
  assert.equal(got.prompt_tokens, want.prompt_tokens, `${what} prompt_tokens`);
  assert.equal(got.completion_tokens, want.completion_tokens, `${what} completion_tokens`);
  assert.equal(got.total_tokens, want.total_tokens, `${what} total_tokens`);
  if ('cached_tokens' in want) {
    const cached = got.cached_tokens ?? got.prompt_tokens_details?.cached_tokens;
    assert.equal(cached, want.cached_tokens, `${what} cached_tokens`);
  }
}

/**
 * decision(headers, expect): the decision of an answer, checked as the test's organisation
 * and key's; failing(model, status, code, type, decisionStatus, stream): a request the
 * gateway refuses, its error and its decision checked. who() gives {org, key, keyInfo}.
 */
export function decisionHelpers(who, failTag) {
  async function decision(headers, expect) {
    const id = headers.get('x-floopy-decision-id');
    assert.ok(id, 'no x-floopy-decision-id');
    const { org, key, keyInfo } = who();
    return checkDecision(await getDecision(key, id), { org, keyId: keyInfo.id, ...expect });
  }
  async function failing(model, status, code, type, decisionStatus, stream = false) {
    const body = { model, messages: [{ role: 'user', content: `fail ${nonce(failTag)}` }] };
    if (stream) body.stream = true;
    const r = await chat(who().key, body);
    const e = expectOpenAIError(r, status, code, { type });
    await decision(r.headers, { status: decisionStatus, http_status: status, route: model, stream });
    return { r, e };
  }
  return { decision, failing };
}

/** Reads an SDK stream, every chunk a chat.completion.chunk: {chunks, ids, content, finish, usages}. */
export async function readChunks(stream) {
  const out = { chunks: 0, ids: new Set(), content: '', finish: null, usages: [] };
  for await (const c of stream) {
    out.chunks++;
    out.ids.add(c.id);
    assert.equal(c.object, 'chat.completion.chunk');
    for (const ch of c.choices) {
      out.content += ch.delta?.content ?? '';
      if (ch.finish_reason) out.finish = ch.finish_reason;
    }
    if (c.usage) out.usages.push(c.usage);
  }
  return out;
}

/** The events of an sse() stream without usage: no error event, no usage chunk, one choice each. {content, roles} */
export function quietEvents(r) {
  let content = '';
  let roles = 0;
  for (const e of r.events.map((x) => JSON.parse(x))) {
    assert.ok(!e.error, `error event ${JSON.stringify(e)}`);
    assert.ok(e.usage === undefined || e.usage === null, 'a usage chunk reached the client');
    assert.equal(e.choices.length, 1);
    if (e.choices[0].delta?.role) roles++;
    content += e.choices[0].delta?.content ?? '';
  }
  return { content, roles };
}

/**
 * A stream the provider cuts after some content (model `<provider>/cut`): through sse() an error
 * event last, no [DONE], the content so far a prefix of the echo, decision stream_error; through
 * the SDK an APIError.
 */
export async function cutStream({ key, client, decision, model, tag }) {
  const marker = nonce(tag);
  const body = { model, messages: [{ role: 'user', content: `cut me off ${marker} please now` }], stream: true };
  const r = await sse(key, body);
  assert.equal(r.status, 200);
  assert.equal(r.done, false);
  assert.equal(r.transportError, null);
  checkErrorObject(JSON.parse(r.events.at(-1)));
  const content = r.events.slice(0, -1).map((e) => JSON.parse(e).choices?.[0]?.delta?.content ?? '').join('');
  assert.ok(content.length > 0 && `Echo: cut me off ${marker} please now`.startsWith(content), `partial content ${content}`);
  await decision(r.headers, { status: 'stream_error', stream: true, route: model });

  const { data: stream } = await client.chat.completions.create(body).withResponse();
  let threw = null;
  try {
    for await (const c of stream) void c;
  } catch (e) { threw = e; }
  assert.ok(threw instanceof OpenAI.APIError, `expected an APIError, got ${threw}`);
}

/** Reads an SDK stream of tool calls: {calls: [{id, name, args, first (the first delta)}], finish, content}. */
export async function readToolCalls(stream) {
  const calls = [];
  let finish = null;
  let content = '';
  for await (const c of stream) {
    content += c.choices[0]?.delta?.content ?? '';
    for (const tc of c.choices[0]?.delta?.tool_calls ?? []) {
      calls[tc.index] ??= { id: '', name: '', args: '', first: tc };
      if (tc.id) calls[tc.index].id = tc.id;
      if (tc.function?.name) calls[tc.index].name += tc.function.name;
      if (tc.function?.arguments) calls[tc.index].args += tc.function.arguments;
    }
    if (c.choices[0]?.finish_reason) finish = c.choices[0].finish_reason;
  }
  return { calls, finish, content };
}

/**
 * A stream with include_usage through the SDK: event-stream, at least `minChunks` chunks, the
 * echo of `text`, finish stop, exactly one usage chunk. {response, usage, ids}
 */
export async function usageStream(client, body, text, minChunks = 4) {
  const { data: stream, response } = await client.chat.completions.create(body).withResponse();
  assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
  const { content, finish, usages, chunks, ids } = await readChunks(stream);
  assert.ok(chunks >= minChunks, `only ${chunks} chunks`);
  assert.equal(content, `Echo: ${text}`);
  assert.equal(finish, 'stop');
  assert.equal(usages.length, 1);
  return { response, usage: usages[0], ids };
}

/** A stream without include_usage through sse(): 200, [DONE], the echo of `text`, one role, no usage chunk. */
export function quietStream(r, text) {
  assert.equal(r.status, 200, r.text);
  assert.equal(r.transportError, null);
  assert.equal(r.done, true, 'no data: [DONE]');
  const { content, roles } = quietEvents(r);
  assert.equal(roles, 1, 'role: assistant once, in the first chunk');
  assert.equal(content, `Echo: ${text}`);
}

/** A completion that is one call of `name` (finish tool_calls, no content), its id matching `id`, its arguments `args`: the call. */
export function oneToolCall(completion, name, id, args) {
  const m = completion.choices[0].message;
  assert.equal(completion.choices[0].finish_reason, 'tool_calls');
  assert.equal(m.content, null);
  assert.equal(m.tool_calls.length, 1);
  const call = m.tool_calls[0];
  assert.equal(call.type, 'function');
  assert.equal(call.function.name, name);
  assert.match(call.id, id);
  assert.deepEqual(JSON.parse(call.function.arguments), args);
  return call;
}
