#!/usr/bin/env node
// Fidelity check of t/mock/gemini-mock.mjs against Google's official `@google/genai` client
// (installed in t/node_modules), pointed at the mock through httpOptions.baseUrl: the Gemini API
// with an API key, and Vertex AI with a service-account token the mock's token endpoint issued
// for a JWT signed here with the committed test key. Prints "N passed, N failed"; exits non-zero
// on any failure.
//
//   node t/mock/check-gemini.mjs

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import assert from 'node:assert/strict';
import { GoogleGenAI, ApiError } from '@google/genai';
import { AuthClient } from 'google-auth-library';

const here = path.dirname(fileURLToPath(import.meta.url));
const MOCK = path.join(here, 'gemini-mock.mjs');
const PROVIDERS = path.join(here, '..', 'conf', 'providers');
const API_KEY = fs.readFileSync(path.join(PROVIDERS, 'gemini.key'), 'utf8').trim();
const SA = JSON.parse(fs.readFileSync(path.join(PROVIDERS, 'gemini-vertex-sa.json'), 'utf8'));
const PNG_B64 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
let child;

function startMock() {
  return new Promise((resolve, reject) => {
    child = spawn(process.execPath, [MOCK, '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const rl = readline.createInterface({ input: child.stdout });
    const timer = setTimeout(() => reject(new Error('mock did not report its port')), 5000);
    rl.once('line', (line) => {
      clearTimeout(timer);
      resolve(`http://127.0.0.1:${JSON.parse(line).port}`);
    });
    child.once('exit', (code) => reject(new Error(`mock exited early (${code})`)));
  });
}

let passed = 0;
let failed = 0;
async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok - ${name}`);
  } catch (err) {
    failed++;
    console.log(`not ok - ${name}`);
    console.log(`  ${String(err && err.stack ? err.stack : err).split('\n').slice(0, 8).join('\n  ')}`);
  }
}

async function expectApiError(promise, status) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof ApiError, `not an ApiError: ${e}`);
    assert.equal(e.status, status, e.message);
    return e;
  }
  assert.fail(`no error, expected HTTP ${status}`);
}

const b64url = (s) => Buffer.from(s).toString('base64url');

// A service-account credential the way Google's token endpoint wants it (RFC 7523), fetched
// from the mock: google-auth-library itself only talks to Google's own token URL.
class MockServiceAccount extends AuthClient {
  constructor(tokenUrl) {
    super();
    this.tokenUrl = tokenUrl;
    this.token = null;
  }

  async fetchToken() {
    const now = Math.floor(Date.now() / 1000);
    const head = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: SA.private_key_id }));
    const claims = b64url(JSON.stringify({ iss: SA.client_email, scope: 'https://www.googleapis.com/auth/cloud-platform',
      aud: this.tokenUrl, iat: now, exp: now + 3600 }));
    const sig = crypto.sign('sha256', Buffer.from(`${head}.${claims}`), SA.private_key).toString('base64url');
    const r = await fetch(this.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `grant_type=${encodeURIComponent('urn:ietf:params:oauth:grant-type:jwt-bearer')}&assertion=${head}.${claims}.${sig}`,
    });
    const j = await r.json();
    if (r.status !== 200) throw new Error(`token endpoint: ${r.status} ${JSON.stringify(j)}`);
    assert.equal(j.token_type, 'Bearer');
    assert.ok(j.expires_in > 3000);
    this.token = j.access_token;
    return j;
  }

  async getAccessToken() {
    if (!this.token) await this.fetchToken();
    return { token: this.token };
  }

  async getRequestHeaders() {
    await this.getAccessToken();
    return new Headers({ authorization: `Bearer ${this.token}` });
  }

  async request() {
    throw new Error('not used');
  }
}

async function main() {
  const base = await startMock();
  const httpOptions = { baseUrl: base, retryOptions: { attempts: 1 } };
  const ai = new GoogleGenAI({ apiKey: API_KEY, httpOptions });
  const vertexAuth = new MockServiceAccount(`${base}/token`);
  const vertex = new GoogleGenAI({
    vertexai: true, project: 'floopy-test', location: 'us-central1',
    httpOptions: { ...httpOptions, apiVersion: 'v1' },
    googleAuthOptions: { authClient: vertexAuth },
  });
  const log = async () => (await fetch(`${base}/__mock/requests`)).json();

  await check('gemini: plain generateContent', async () => {
    const r = await ai.models.generateContent({ model: 'gemini-2.5-flash', contents: 'hello there',
      config: { systemInstruction: 'Be terse.', temperature: 0.2, maxOutputTokens: 50 } });
    assert.equal(r.text, 'Echo: hello there');
    assert.equal(r.candidates[0].finishReason, 'STOP');
    assert.equal(r.usageMetadata.promptTokenCount, 2 + 1 + 2 + 1);
    assert.equal(r.usageMetadata.candidatesTokenCount, 3);
    assert.equal(r.usageMetadata.thoughtsTokenCount, 4);
    const q = (await log()).at(-1);
    assert.equal(q.path, '/v1beta/models/gemini-2.5-flash:generateContent');
    assert.equal(q.headers['x-goog-api-key'], API_KEY);
    assert.deepEqual(q.body.systemInstruction, { parts: [{ text: 'Be terse.' }], role: 'user' });
    assert.equal(q.body.generationConfig.maxOutputTokens, 50);
  });

  await check('gemini: streamGenerateContent (alt=sse, CRLF framing, cumulative usage)', async () => {
    const stream = await ai.models.generateContentStream({ model: 'gemini-2.5-flash', contents: 'one two three' });
    let text = ''; let finish = null; let usage = null; let n = 0;
    for await (const c of stream) {
      n++;
      text += c.text ?? '';
      if (c.candidates?.[0]?.finishReason) finish = c.candidates[0].finishReason;
      usage = c.usageMetadata;
    }
    assert.equal(text, 'Echo: one two three');
    assert.equal(finish, 'STOP');
    assert.ok(n >= 3, `${n} chunks`);
    assert.equal(usage.candidatesTokenCount, 4);
    assert.equal((await log()).at(-1).path, '/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse');
    const raw = await fetch(`${base}/v1beta/models/m:streamGenerateContent?alt=sse`, {
      method: 'POST', headers: { 'x-goog-api-key': API_KEY, 'content-type': 'application/json' },
      body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'x' }] }] }),
    });
    const body = await raw.text();
    assert.match(body, /^data: \{.*\}\r\n\r\n/);
    assert.ok(!body.includes('[DONE]'));
  });

  await check('gemini: function calling round trip with thoughtSignature', async () => {
    const tools = [{ functionDeclarations: [{ name: 'get_weather', description: 'weather',
      parameters: { type: 'OBJECT', properties: { city: { type: 'STRING' } } } }] }];
    const contents = [{ role: 'user', parts: [{ text: 'weather in Paris' }] }];
    const r = await ai.models.generateContent({ model: 'gemini-2.5-flash', contents, config: { tools } });
    assert.equal(r.functionCalls.length, 1);
    assert.equal(r.functionCalls[0].name, 'get_weather');
    assert.deepEqual(r.functionCalls[0].args, { q: 'weather in Paris' });
    assert.equal(r.candidates[0].finishReason, 'STOP');
    const modelTurn = r.candidates[0].content;
    assert.equal(typeof modelTurn.parts[0].thoughtSignature, 'string');
    const r2 = await ai.models.generateContent({ model: 'gemini-2.5-flash', config: { tools }, contents: [
      ...contents, modelTurn,
      { role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: { output: 'sunny' } } }] },
    ] });
    assert.equal(r2.text, 'Tool said: sunny');
    // without the signature Gemini 3 refuses the history
    const stripped = { role: 'model', parts: [{ functionCall: modelTurn.parts[0].functionCall }] };
    const e = await expectApiError(ai.models.generateContent({ model: 'gemini-2.5-flash', config: { tools }, contents: [
      ...contents, stripped,
      { role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: { output: 'sunny' } } }] },
    ] }), 400);
    assert.match(e.message, /thought_signature/);
    const none = await ai.models.generateContent({ model: 'gemini-2.5-flash', contents,
      config: { tools, toolConfig: { functionCallingConfig: { mode: 'NONE' } } } });
    assert.equal(none.text, 'Echo: weather in Paris');
  });

  await check('gemini: images as inlineData and fileData', async () => {
    const r = await ai.models.generateContent({ model: 'gemini-2.5-flash', contents: [{ role: 'user', parts: [
      { text: 'what is it' }, { inlineData: { mimeType: 'image/png', data: PNG_B64 } },
      { fileData: { mimeType: 'image/jpeg', fileUri: 'https://example.com/x.jpg' } }] }] });
    assert.equal(r.text, 'Echo: what is it [images: 2]');
  });

  await check('gemini: 429 RESOURCE_EXHAUSTED with RetryInfo, no Retry-After header', async () => {
    const e = await expectApiError(ai.models.generateContent({ model: 'fail-429', contents: 'hi' }), 429);
    assert.match(e.message, /RESOURCE_EXHAUSTED/);
    assert.match(e.message, /"retryDelay":"7s"/);
    const raw = await fetch(`${base}/v1beta/models/fail-429:generateContent`, { method: 'POST',
      headers: { 'x-goog-api-key': API_KEY }, body: '{"contents":[{"role":"user","parts":[{"text":"x"}]}]}' });
    assert.equal(raw.headers.get('retry-after'), null);
  });

  await check('gemini: 500 INTERNAL, 400 API_KEY_INVALID', async () => {
    const e = await expectApiError(ai.models.generateContent({ model: 'fail-500', contents: 'hi' }), 500);
    assert.match(e.message, /INTERNAL/);
    const bad = new GoogleGenAI({ apiKey: 'AIza-wrong', httpOptions });
    const e2 = await expectApiError(bad.models.generateContent({ model: 'gemini-2.5-flash', contents: 'hi' }), 400);
    assert.match(e2.message, /API_KEY_INVALID/);
  });

  await check('gemini: a cut stream never reaches finishReason', async () => {
    let finish = null; let threw = null; let text = '';
    try {
      const stream = await ai.models.generateContentStream({ model: 'cut', contents: 'a b c d e' });
      for await (const c of stream) {
        text += c.text ?? '';
        if (c.candidates?.[0]?.finishReason) finish = c.candidates[0].finishReason;
      }
    } catch (e) {
      threw = e;
    }
    assert.equal(finish, null, 'no finishReason before the cut');
    assert.ok(threw || text.length > 0, 'some text, then the end');
    assert.ok(text.startsWith('Echo:'), text);
  });

  await check('gemini: an error event inside a stream', async () => {
    let threw = null;
    try {
      const stream = await ai.models.generateContentStream({ model: 'error-stream', contents: 'a b' });
      for await (const c of stream) void c;
    } catch (e) {
      threw = e;
    }
    assert.ok(threw, 'the SDK raises on the error event');
    assert.match(String(threw.message), /overloaded/);
  });

  await check('vertex: token endpoint verifies the JWT and issues a Bearer token', async () => {
    const t = await vertexAuth.fetchToken();
    assert.match(t.access_token, /^ya29\.mock-/);
    const forged = await fetch(`${base}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=${b64url('{"alg":"RS256"}')}.${b64url('{}')}.AAAA` });
    assert.equal(forged.status, 400);
    assert.equal((await forged.json()).error, 'invalid_grant');
  });

  await check('vertex: generateContent and stream on the Vertex path with the Bearer token', async () => {
    const r = await vertex.models.generateContent({ model: 'gemini-2.5-flash', contents: 'vertex hi' });
    assert.equal(r.text, 'Echo: vertex hi');
    let text = '';
    for await (const c of await vertex.models.generateContentStream({ model: 'gemini-2.5-flash', contents: 'vertex stream' })) {
      text += c.text ?? '';
    }
    assert.equal(text, 'Echo: vertex stream');
    const qs = (await log()).slice(-2);
    assert.equal(qs[0].path, '/v1/projects/floopy-test/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent');
    assert.equal(qs[1].path, '/v1/projects/floopy-test/locations/us-central1/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse');
    assert.equal(qs[0].headers.authorization, `Bearer ${vertexAuth.token}`);
  });

  await check('vertex: an unknown token is 401 UNAUTHENTICATED, 429 as on the Gemini API', async () => {
    vertexAuth.token = 'ya29.not-issued';
    const e = await expectApiError(vertex.models.generateContent({ model: 'gemini-2.5-flash', contents: 'x' }), 401);
    assert.match(e.message, /UNAUTHENTICATED/);
    vertexAuth.token = null;
    await expectApiError(vertex.models.generateContent({ model: 'fail-429', contents: 'x' }), 429);
  });
}

try {
  await main();
} catch (e) {
  failed++;
  console.log(`not ok - setup: ${e && e.stack ? e.stack : e}`);
} finally {
  if (child && child.exitCode === null) child.kill('SIGTERM');
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
