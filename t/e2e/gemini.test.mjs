// The Gemini API (type=gemini) and Vertex AI (type=vertex) adapters through the gateway with the
// official openai client, against t/mock/gemini-mock.mjs: plain, streams with and without usage,
// a tool round trip (the thoughtSignature comes back through the tool-call id), images, Google's
// errors (429 with RetryInfo, 500, stall, cut stream, error event), the service account's token
// exchange, and what reached the mock.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { before, test } from 'node:test';
import {
  APACHE, assertClose, checkDecision, checkErrorObject, costOf, createOrg, chat, expectOpenAIError, getDecision,
  nonce, openaiClient, sse,
} from './lib.mjs';

const GEMINI_MOCK = `http://127.0.0.1:${process.env.FLOOPY_MOCK_GEMINI_PORT}`;
const PRICE = { input: 0.30, output: 2.50, cached_input: 0.03 };
const PNG = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
const VERTEX_PATH = '/v1/projects/floopy-test/locations/us-central1/publishers/google/models';
const words = (s) => s.split(/\s+/).filter(Boolean).length;

let org; let clientKey; let client;

before(async () => {
  ({ org, clientKey } = await createOrg('pro'));
  client = openaiClient(clientKey);
});

async function mockLog() {
  const r = await fetch(`${GEMINI_MOCK}/__mock/requests`);
  assert.equal(r.status, 200);
  return r.json();
}

/** the generateContent requests whose body holds marker */
async function forwarded(marker) {
  return (await mockLog()).filter((q) => q.path !== '/token' && JSON.stringify(q.body ?? '').includes(marker));
}

async function decision(headers, expect) {
  const id = headers.get('x-floopy-decision-id');
  return checkDecision(await getDecision(clientKey, id), { org, ...expect });
}

test('gemini: plain completion, translated request, usage and cost', async () => {
  const text = `hello there ${nonce('gplain')}`;
  const body = {
    model: 'gemini/gemini-2.5-flash', temperature: 0.25, max_tokens: 64, stop: ['ZZZ'],
    messages: [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: text }],
  };
  const { data, response } = await client.chat.completions.create(body).withResponse();
  assert.equal(data.object, 'chat.completion');
  assert.equal(data.choices[0].message.content, `Echo: ${text}`);
  assert.equal(data.choices[0].finish_reason, 'stop');
  const prompt = words(text) + 1 + words('You are terse.') + 1;
  const reply = words(`Echo: ${text}`);
  assert.equal(data.usage.prompt_tokens, prompt);
  assert.equal(data.usage.completion_tokens, reply + 4, 'candidates + thoughts');
  assert.equal(data.usage.completion_tokens_details.reasoning_tokens, 4);
  assert.equal(data.usage.total_tokens, prompt + reply + 4);

  const d = await decision(response.headers, { status: 'ok', http_status: 200, stream: false, pinned: true });
  assert.equal(d.usage.prompt_tokens, prompt);
  assert.equal(d.usage.completion_tokens, reply + 4);
  assert.equal(d.usage.reasoning_tokens, 4);
  assertClose(d.cost_usd, costOf(d.usage, PRICE), 'cost_usd');

  const [q] = await forwarded(text);
  assert.equal(q.method, 'POST');
  assert.equal(q.path, '/v1beta/models/gemini-2.5-flash:generateContent');
  assert.match(q.headers['x-goog-api-key'], /^AIzaFAKE-/);
  assert.equal(q.headers.authorization, undefined, 'no Authorization header for the Gemini API');
  assert.deepEqual(q.body.systemInstruction, { parts: [{ text: 'You are terse.' }] });
  assert.deepEqual(q.body.contents, [{ role: 'user', parts: [{ text }] }]);
  assert.deepEqual(q.body.generationConfig, { temperature: 0.25, maxOutputTokens: 64, stopSequences: ['ZZZ'] });
  assert.equal(q.body.model, undefined);
});

test('gemini: cached and reasoning tokens reach the decision', async () => {
  const text = `some cached words here ${nonce('gcached')}`;
  const r = await chat(clientKey, { model: 'gemini/gemini-cached', messages: [{ role: 'user', content: text }] });
  assert.equal(r.status, 200, r.text);
  const prompt = words(text) + 1;
  assert.equal(r.json.usage.prompt_tokens_details.cached_tokens, Math.floor(prompt / 2));
  const d = await decision(r.headers, { status: 'ok' });
  assert.equal(d.usage.cached_tokens, Math.floor(prompt / 2));
  assert.equal(d.usage.reasoning_tokens, 4);
});

test('gemini: stream without include_usage, CRLF SSE translated, usage still recorded', async () => {
  const text = `stream me please ${nonce('gstream')}`;
  const stream = await client.chat.completions.create({
    model: 'gemini/gemini-2.5-flash', stream: true, messages: [{ role: 'user', content: text }],
  });
  let content = ''; let finish = null; let usageChunks = 0; let n = 0;
  for await (const chunk of stream) {
    n++;
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.usage) usageChunks++;
    const c = chunk.choices[0];
    if (c?.delta?.content) content += c.delta.content;
    if (c?.finish_reason) finish = c.finish_reason;
  }
  assert.equal(content, `Echo: ${text}`);
  assert.equal(finish, 'stop');
  assert.equal(usageChunks, 0, 'no usage chunk unless asked');
  assert.ok(n >= 3, `${n} chunks`);
  const [q] = await forwarded(text);
  assert.equal(q.path, '/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse');
  const r = await sse(clientKey, { model: 'gemini/gemini-2.5-flash', stream: true, messages: [{ role: 'user', content: text }] });
  assert.equal(r.done, true);
  const d = await decision(r.headers, { status: 'ok', stream: true });
  assert.equal(d.usage.prompt_tokens, words(text) + 1);
  assert.equal(d.usage.completion_tokens, words(`Echo: ${text}`) + 4, 'the last cumulative usage');
  assertClose(d.cost_usd, costOf(d.usage, PRICE), 'cost_usd');
});

test('gemini: stream with include_usage ends with the usage chunk and [DONE]', async () => {
  const text = `count the tokens ${nonce('gusage')}`;
  const r = await sse(clientKey, {
    model: 'gemini/gemini-2.5-flash', stream: true, stream_options: { include_usage: true },
    messages: [{ role: 'user', content: text }],
  });
  assert.equal(r.status, 200);
  assert.equal(r.done, true);
  const chunks = r.events.map((e) => JSON.parse(e));
  const last = chunks[chunks.length - 1];
  assert.deepEqual(last.choices, []);
  assert.equal(last.usage.prompt_tokens, words(text) + 1);
  assert.equal(last.usage.completion_tokens, words(`Echo: ${text}`) + 4);
  assert.equal(last.usage.completion_tokens_details.reasoning_tokens, 4);
  assert.equal(chunks[chunks.length - 2].choices[0].finish_reason, 'stop');
  for (const c of chunks.slice(0, -1)) assert.equal(c.usage, null);
});

test('gemini: tool call round trip; functionResponse matched by name, thoughtSignature carried back', async () => {
  const text = `weather in Paris ${nonce('gtool')}`;
  const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather of a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false } } }];
  const messages = [{ role: 'user', content: text }];
  const first = await client.chat.completions.create({ model: 'gemini/gemini-2.5-flash', messages, tools });
  const msg = first.choices[0].message;
  assert.equal(first.choices[0].finish_reason, 'tool_calls', 'STOP with a functionCall is tool_calls');
  assert.equal(msg.content, null);
  assert.equal(msg.tool_calls.length, 1);
  const tc = msg.tool_calls[0];
  assert.match(tc.id, /^call_[A-Za-z0-9]{24}__t[sr]_/, 'the id carries the signature');
  assert.equal(tc.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(tc.function.arguments), { q: text });

  const second = await client.chat.completions.create({
    model: 'gemini/gemini-2.5-flash', tools,
    messages: [...messages, msg, { role: 'tool', tool_call_id: tc.id, content: 'sunny, 21C' }],
  });
  assert.equal(second.choices[0].message.content, 'Tool said: sunny, 21C');
  assert.equal(second.choices[0].finish_reason, 'stop');

  const [q1, q2] = await forwarded(text);
  assert.deepEqual(q1.body.tools, [{ functionDeclarations: [{ name: 'get_weather', description: 'Weather of a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }] }]);
  assert.equal(q2.body.contents.length, 3);
  assert.equal(q2.body.contents[1].role, 'model');
  assert.deepEqual(q2.body.contents[1].parts[0].functionCall, { name: 'get_weather', args: { q: text } });
  assert.equal(typeof q2.body.contents[1].parts[0].thoughtSignature, 'string');
  assert.deepEqual(q2.body.contents[2], { role: 'user', parts: [{ functionResponse: { name: 'get_weather',
    response: { output: 'sunny, 21C' } } }] });
});

test('gemini: tool_choice and a streamed tool call', async () => {
  const text = `which tool ${nonce('gtoolstream')}`;
  const tools = ['alpha', 'beta'].map((name) => ({ type: 'function', function: { name, parameters: { type: 'object', properties: {} } } }));
  const stream = await client.chat.completions.create({
    model: 'gemini/gemini-2.5-flash', stream: true, tools, tool_choice: { type: 'function', function: { name: 'beta' } },
    messages: [{ role: 'user', content: text }],
  });
  const calls = []; let finish = null;
  for await (const chunk of stream) {
    for (const t of chunk.choices[0]?.delta?.tool_calls ?? []) calls.push(t);
    if (chunk.choices[0]?.finish_reason) finish = chunk.choices[0].finish_reason;
  }
  assert.equal(finish, 'tool_calls');
  assert.equal(calls.length, 1);
  assert.equal(calls[0].index, 0);
  assert.equal(calls[0].type, 'function');
  assert.equal(calls[0].function.name, 'beta');
  assert.deepEqual(JSON.parse(calls[0].function.arguments), { q: text });
  const [q] = await forwarded(text);
  assert.deepEqual(q.body.toolConfig, { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['beta'] } });
});

test('gemini: image parts become inlineData and fileData', async () => {
  const text = `what is this ${nonce('gimg')}`;
  const r = await client.chat.completions.create({
    model: 'gemini/gemini-2.5-flash',
    messages: [{ role: 'user', content: [{ type: 'text', text }, { type: 'image_url', image_url: { url: PNG } },
      { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg' } }] }],
  });
  assert.equal(r.choices[0].message.content, `Echo: ${text} [images: 2]`);
  const [q] = await forwarded(text);
  assert.deepEqual(q.body.contents[0].parts[1], { inlineData: { mimeType: 'image/png', data: PNG.split(',')[1] } });
  assert.deepEqual(q.body.contents[0].parts[2], { fileData: { mimeType: 'image/jpeg', fileUri: 'https://example.com/cat.jpg' } });
});

test('gemini: 429 RESOURCE_EXHAUSTED keeps RetryInfo as retry-after', async () => {
  const r = await chat(clientKey, { model: 'gemini/fail-429', messages: [{ role: 'user', content: 'hi' }] });
  const e = expectOpenAIError(r, 429, 'rate_limit_exceeded', { type: 'rate_limit_error' });
  assert.match(e.message, /exceeded your current quota/);
  assert.equal(r.headers.get('retry-after'), '7');
  const d = await decision(r.headers, { status: 'rate_limited', http_status: 429 });
  assert.equal(d.error.code, 'rate_limit_exceeded');
});

test('gemini: 500 INTERNAL is a 502, a bad key is the gateway\'s problem', async () => {
  let r = await chat(clientKey, { model: 'gemini/fail-500', messages: [{ role: 'user', content: 'hi' }] });
  expectOpenAIError(r, 502, 'upstream_error', { type: 'upstream_error' });
  await decision(r.headers, { status: 'upstream_error', http_status: 502 });
  r = await chat(clientKey, { model: 'gemini/fail-401', messages: [{ role: 'user', content: 'hi' }] });
  const e = expectOpenAIError(r, undefined, 'upstream_auth_failed');
  assert.ok(r.status >= 500, `status ${r.status}`);
  assert.doesNotMatch(e.message, /AIzaFAKE/, 'the key never shows');
  r = await chat(clientKey, { model: 'gemini/fail-400', messages: [{ role: 'user', content: 'hi' }] });
  expectOpenAIError(r, 400, 'invalid_argument', { type: 'invalid_request_error' });
});

test('gemini: stall is a 504', async () => {
  const r = await chat(clientKey, { model: 'gemini/stall', messages: [{ role: 'user', content: 'hi' }] });
  expectOpenAIError(r, 504, 'upstream_timeout', { type: 'timeout_error' });
  await decision(r.headers, { status: 'upstream_timeout', http_status: 504 });
});

test('gemini: a stream cut before finishReason ends with an error event, no [DONE]', async () => {
  const text = `cut me off ${nonce('gcut')}`;
  const r = await sse(clientKey, { model: 'gemini/cut', stream: true, messages: [{ role: 'user', content: text }] });
  assert.equal(r.status, 200);
  assert.equal(r.done, false, 'no [DONE] on a cut stream');
  const last = JSON.parse(r.events[r.events.length - 1]);
  checkErrorObject(last);
  assert.ok(r.events.length >= 2, 'content went out before the cut');
  const d = await decision(r.headers, { status: 'stream_error', stream: true });
  assert.ok(d.error);
});

test('gemini: an error event mid-stream becomes an OpenAI error event', async () => {
  const r = await sse(clientKey, { model: 'gemini/error-stream', stream: true, messages: [{ role: 'user', content: 'x y' }] });
  assert.equal(r.status, 200);
  assert.equal(r.done, false);
  const last = JSON.parse(r.events[r.events.length - 1]);
  checkErrorObject(last);
  assert.match(last.error.message, /overloaded/);
  await decision(r.headers, { status: 'stream_error', stream: true });
});

test('vertex: service-account token, Bearer auth, Vertex path, cached token reused', async () => {
  const before = (await mockLog()).filter((q) => q.path === '/token').length;
  const text = `vertex hello ${nonce('vplain')}`;
  const { data, response } = await client.chat.completions.create({
    model: 'vertex/gemini-2.5-flash', messages: [{ role: 'user', content: text }],
  }).withResponse();
  assert.equal(data.choices[0].message.content, `Echo: ${text}`);
  const d = await decision(response.headers, { status: 'ok', http_status: 200 });
  assertClose(d.cost_usd, costOf(d.usage, PRICE), 'cost_usd');
  for (let i = 0; i < 5; i++) {
    const s = await sse(clientKey, { model: 'vertex/gemini-2.5-flash', stream: true,
      messages: [{ role: 'user', content: `${text} ${i}` }] });
    assert.equal(s.done, true);
  }
  const log = await mockLog();
  const qs = log.filter((q) => q.path !== '/token' && JSON.stringify(q.body ?? '').includes(text));
  assert.equal(qs.length, 6);
  assert.equal(qs[0].path, `${VERTEX_PATH}/gemini-2.5-flash:generateContent`);
  assert.equal(qs[1].path, `${VERTEX_PATH}/gemini-2.5-flash:streamGenerateContent?alt=sse`);
  for (const q of qs) assert.match(q.headers.authorization, /^Bearer ya29\.mock-/);
  assert.equal(qs[0].headers['x-goog-api-key'], undefined);
  const tokenReqs = log.filter((q) => q.path === '/token');
  const fetched = tokenReqs.length - before;
  assert.ok(tokenReqs.length >= 1, 'the gateway exchanged a JWT for a token');
  assert.ok(fetched <= 1, `${fetched} token fetches for 6 requests: the token is cached`);
  if (tokenReqs.length) {
    const t = tokenReqs[tokenReqs.length - 1];
    assert.equal(t.headers['content-type'], 'application/x-www-form-urlencoded');
    assert.match(t.body, /^grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=[\w-]+\.[\w-]+\.[\w-]+$/);
  }
  assert.ok(new Set(qs.map((q) => q.headers.authorization)).size <= 2);
});

test('vertex: tool round trip and 429 through the Vertex endpoint', async () => {
  const text = `vertex tool ${nonce('vtool')}`;
  const tools = [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: {} } } }];
  const first = await client.chat.completions.create({ model: 'vertex/gemini-2.5-flash', tools,
    messages: [{ role: 'user', content: text }] });
  const msg = first.choices[0].message;
  assert.equal(first.choices[0].finish_reason, 'tool_calls');
  const second = await client.chat.completions.create({ model: 'vertex/gemini-2.5-flash', tools,
    messages: [{ role: 'user', content: text }, msg, { role: 'tool', tool_call_id: msg.tool_calls[0].id, content: '{"n":1}' }] });
  assert.equal(second.choices[0].message.content, 'Tool said: {"n":1}');
  const r = await chat(clientKey, { model: 'vertex/fail-429', messages: [{ role: 'user', content: 'hi' }] });
  expectOpenAIError(r, 429, 'rate_limit_exceeded');
  assert.equal(r.headers.get('retry-after'), '7');
});

test('gemini-auto route answers through a Google provider', async () => {
  const text = `route me ${nonce('groute')}`;
  const r = await chat(clientKey, { model: 'gemini-auto', messages: [{ role: 'user', content: text }] });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.choices[0].message.content, `Echo: ${text}`);
  assert.match(r.headers.get('x-floopy-provider'), /^(gemini|vertex)$/);
});

/** Starts httpd in the foreground with one extra line; it must refuse, naming the reason. */
function startRefused(line) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'floopy-gemini-'));
  const conf = path.join(dir, 'bad.conf');
  const port = 20000 + Math.floor(Math.random() * 20000);
  fs.writeFileSync(conf, ['Include ${FLOOPY_ROOT}/conf/floopy-common.conf', `Listen 127.0.0.1:${port}`,
    `PidFile ${dir}/httpd.pid`, `ErrorLog ${dir}/error.log`, line.replaceAll('DIR', dir), ''].join('\n'));
  fs.writeFileSync(path.join(dir, 'bad.json'), '{"type": "service_account", "client_email": ');
  const r = spawnSync(APACHE, ['-X', '-f', conf], { env: process.env, encoding: 'utf8', timeout: 15000 });
  const log = fs.existsSync(`${dir}/error.log`) ? fs.readFileSync(`${dir}/error.log`, 'utf8') : '';
  fs.rmSync(dir, { recursive: true, force: true });
  assert.notEqual(r.status, 0, `httpd accepted: ${line}`);
  return `${r.stderr}${log}`;
}

test('vertex: a missing or malformed service account file, or a missing option, stops httpd', () => {
  const v = 'FloopyProvider v type=vertex project=p location=us-central1';
  assert.match(startRefused(`${v} service_account_file=DIR/none.json`),
    /provider 'v': cannot open service_account_file .*none\.json/);
  assert.match(startRefused(`${v} service_account_file=DIR/bad.json`),
    /provider 'v': service_account_file .*bad\.json is not a JSON key file/);
  assert.match(startRefused('FloopyProvider v type=vertex location=us-central1 service_account_file=/x.json'),
    /provider 'v': type=vertex needs project=/);
  assert.match(startRefused('FloopyProvider g type=gemini region=eu'), /type=gemini has no option region=/);
});
