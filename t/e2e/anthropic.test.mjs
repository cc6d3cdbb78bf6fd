// A type=anthropic provider (t/conf/providers/anthropic.conf) through the gateway with the
// official openai client: what reaches t/mock/anthropic-mock.mjs is a Messages request (path,
// x-api-key, anthropic-version, system hoisted, tool_use/tool_result blocks, images, max_tokens,
// OpenAI-only parameters left behind), and what comes back is OpenAI's shape (answers, streams
// with and without usage, tool calls, errors, decisions with usage and cost).
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import {
  assertClose, chat, checkErrorObject, checkUsage, costOf, cutStream, decisionHelpers,
  expectOpenAIError, mockReceived, nonce, oneToolCall, PNG, providerKey, providerOrg, quietStream,
  readToolCalls, sse, usageStream,
} from './lib.mjs';

const PORT = process.env.FLOOPY_MOCK_ANTHROPIC_PORT;
const MOCK = `http://127.0.0.1:${PORT}`;
const KEY = providerKey('anthropic');
const PRICES = {
  'claude/claude-haiku-4-5': { input: 1, output: 5, cached_input: 0.1 },
  'claude/claude-opus-4-5': { input: 5, output: 25, cached_input: 0.5 },
};

let org; let key; let keyInfo; let client;
before(async () => ({ org, key, keyInfo, client } = await providerOrg(PORT, 'FLOOPY_MOCK_ANTHROPIC_PORT')));
const { decision, failing } = decisionHelpers(() => ({ org, key, keyInfo }), 'afail');

async function forwarded(marker) {
  const list = await mockReceived(MOCK, marker);
  assert.equal(list.length, 1, `the anthropic mock received ${list.length} requests containing ${marker}`);
  const q = list[0];
  assert.equal(q.method, 'POST');
  assert.equal(q.path, '/v1/messages');
  assert.equal(q.headers['x-api-key'], KEY, 'the key from key_file, as x-api-key');
  assert.equal(q.headers['anthropic-version'], '2023-06-01');
  assert.match(q.headers['content-type'] ?? '', /^application\/json/);
  assert.equal(q.headers.authorization, undefined, 'no Authorization header besides x-api-key');
  assert.ok(!JSON.stringify(q.headers).includes(key), 'the client key leaked to the provider');
  return q;
}

/** The usage the mock reports for a Messages body, asked directly. */
async function mockUsage(body) {
  const r = await fetch(`${MOCK}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': KEY, 'anthropic-version': '2023-06-01', 'x-e2e-direct': '1' },
    body: JSON.stringify({ ...body, stream: false }),
  });
  assert.equal(r.status, 200);
  return (await r.json()).usage;
}

/** Anthropic usage -> the OpenAI numbers the gateway must report. */
function openaiUsage(u) {
  const prompt = u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens;
  return { prompt_tokens: prompt, completion_tokens: u.output_tokens, total_tokens: prompt + u.output_tokens, cached_tokens: u.cache_read_input_tokens };
}

test('anthropic: plain answer, request translated, OpenAI-only parameters left behind, cost', async () => {
  const text = `hello claude ${nonce('aplain')}`;
  const body = {
    model: 'claude/claude-haiku-4-5',
    messages: [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: text }],
    temperature: 0.3, max_tokens: 64, stop: ['\n\nHuman:'], n: 1, presence_penalty: 0, seed: 7, user: 'u-1',
  };
  const { data, response } = await client.chat.completions.create(body).withResponse();
  assert.equal(data.object, 'chat.completion');
  assert.equal(data.choices[0].message.role, 'assistant');
  assert.equal(data.choices[0].message.content, `Echo: ${text}`);
  assert.equal(data.choices[0].finish_reason, 'stop');
  assert.equal(response.headers.get('x-floopy-provider'), 'claude');

  const q = await forwarded(text);
  assert.equal(q.body.model, 'claude-haiku-4-5');
  assert.equal(q.body.system, 'You are terse.');
  assert.deepEqual(q.body.messages, [{ role: 'user', content: [{ type: 'text', text }] }]);
  assert.equal(q.body.max_tokens, 64);
  assert.equal(q.body.temperature, 0.3);
  assert.deepEqual(q.body.stop_sequences, ['\n\nHuman:']);
  assert.deepEqual(q.body.metadata, { user_id: 'u-1' });
  for (const k of ['n', 'presence_penalty', 'seed', 'stop', 'user', 'stream', 'stream_options']) {
    assert.ok(!(k in q.body), `${k} was forwarded`);
  }

  const want = openaiUsage(await mockUsage(q.body));
  checkUsage({ ...data.usage, cached_tokens: data.usage.prompt_tokens_details.cached_tokens }, want, 'answer');
  const d = await decision(response.headers, { status: 'ok', http_status: 200, route: 'claude/claude-haiku-4-5', pinned: true, stream: false });
  checkUsage(d.usage, want, 'decision');
  assertClose(d.cost_usd, costOf(d.usage, PRICES['claude/claude-haiku-4-5']), 'cost_usd');
});

test('anthropic: max_tokens defaults to the provider option; the route picks the cheaper model', async () => {
  const text = `route me ${nonce('aroute')}`;
  const { data, response } = await client.chat.completions.create({ model: 'claude-auto', messages: [{ role: 'user', content: text }] }).withResponse();
  assert.equal(data.choices[0].message.content, `Echo: ${text}`);
  const q = await forwarded(text);
  assert.equal(q.body.model, 'claude-haiku-4-5');
  assert.equal(q.body.max_tokens, 1024, 'max_tokens= of the FloopyProvider line');
  const d = await decision(response.headers, { status: 'ok', route: 'claude-auto', pinned: false });
  assert.equal(d.chosen.model, 'claude-haiku-4-5');
});

test('anthropic: cache reads and writes count as prompt tokens, reads as cached', async () => {
  const text = `cache me ${nonce('acache')}`;
  const { data, response } = await client.chat.completions.create({ model: 'claude/model-cached', messages: [{ role: 'user', content: text }] }).withResponse();
  const q = await forwarded(text);
  const u = await mockUsage(q.body);
  assert.equal(u.cache_read_input_tokens, 100);
  const want = openaiUsage(u);
  assert.equal(data.usage.prompt_tokens, want.prompt_tokens);
  assert.equal(data.usage.prompt_tokens_details.cached_tokens, 100);
  const d = await decision(response.headers, { status: 'ok' });
  checkUsage(d.usage, want, 'decision');
  assert.equal(d.cost_usd, null, 'an unpriced model');
});

test('anthropic: stream with include_usage: content, finish, exactly one usage chunk', async () => {
  const text = `stream to me ${nonce('asu')} one two three`;
  const body = { model: 'claude/claude-opus-4-5', messages: [{ role: 'user', content: text }], stream: true, stream_options: { include_usage: true } };
  const { response, usage } = await usageStream(client, body, text);
  const q = await forwarded(text);
  assert.equal(q.body.stream, true);
  assert.ok(!('stream_options' in q.body));
  const want = openaiUsage(await mockUsage(q.body));
  checkUsage({ ...usage, cached_tokens: usage.prompt_tokens_details.cached_tokens }, want, 'usage chunk');
  const d = await decision(response.headers, { status: 'ok', http_status: 200, stream: true });
  checkUsage(d.usage, want, 'decision');
  assertClose(d.cost_usd, costOf(d.usage, PRICES['claude/claude-opus-4-5']), 'cost_usd of a stream');
});

test('anthropic: stream without include_usage: no usage chunk, [DONE], the decision has usage', async () => {
  const text = `quiet stream ${nonce('asnu')}`;
  const r = await sse(key, { model: 'claude/claude-haiku-4-5', messages: [{ role: 'user', content: text }], stream: true });
  quietStream(r, text);
  const q = await forwarded(text);
  const d = await decision(r.headers, { status: 'ok', stream: true });
  checkUsage(d.usage, openaiUsage(await mockUsage(q.body)), 'decision');
});

const TOOLS = [
  { type: 'function', function: { name: 'lookup_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] } } },
  { type: 'function', function: { name: 'other_tool', parameters: { type: 'object', properties: {} } } },
];

test('anthropic: tool call round trip: tool_use -> tool_calls, tool message -> tool_result', async () => {
  const n = nonce('atool');
  const question = `weather in Paris ${n}`;
  const first = await client.chat.completions.create({ model: 'claude/claude-haiku-4-5', messages: [{ role: 'user', content: question }], tools: TOOLS, tool_choice: 'required', parallel_tool_calls: false });
  const call = oneToolCall(first, 'lookup_weather', /^toolu_/, { q: question });

  const result = `sunny, 21 °C ${n}`;
  const messages = [
    { role: 'user', content: question },
    { role: 'assistant', content: null, tool_calls: [{ id: call.id, type: 'function', function: call.function }] },
    { role: 'tool', tool_call_id: call.id, content: result },
  ];
  const second = await client.chat.completions.create({ model: 'claude/claude-haiku-4-5', messages, tools: TOOLS });
  assert.equal(second.choices[0].message.content, `Tool said: ${result}`);
  assert.equal(second.choices[0].finish_reason, 'stop');

  const reqs = await mockReceived(MOCK, n);
  assert.equal(reqs.length, 2);
  assert.deepEqual(reqs[0].body.tools, [
    { name: 'lookup_weather', description: 'Weather for a city', input_schema: TOOLS[0].function.parameters },
    { name: 'other_tool', input_schema: { type: 'object', properties: {} } },
  ]);
  assert.deepEqual(reqs[0].body.tool_choice, { type: 'any', disable_parallel_tool_use: true });
  assert.deepEqual(reqs[1].body.messages, [
    { role: 'user', content: [{ type: 'text', text: question }] },
    { role: 'assistant', content: [{ type: 'tool_use', id: call.id, name: 'lookup_weather', input: { q: question } }] },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: result }] },
  ]);
});

test('anthropic: streamed tool call: id and name first, argument fragments reassemble', async () => {
  const n = nonce('astool');
  const stream = await client.chat.completions.create({ model: 'claude/claude-haiku-4-5', messages: [{ role: 'user', content: `find ${n}` }], tools: TOOLS, stream: true });
  const { calls, finish } = await readToolCalls(stream);
  assert.equal(finish, 'tool_calls');
  assert.equal(calls.length, 1);
  assert.ok(calls[0].first.id && calls[0].first.function.name, 'the first delta carries id and name');
  assert.match(calls[0].id, /^toolu_/);
  assert.equal(calls[0].name, 'lookup_weather');
  assert.deepEqual(JSON.parse(calls[0].args), { q: `find ${n}` });
});

test('anthropic: image parts: data URL as base64 source, https URL as url source', async () => {
  const text = `what is this ${nonce('aimg')}`;
  const data = await client.chat.completions.create({
    model: 'claude/claude-haiku-4-5',
    messages: [{ role: 'user', content: [{ type: 'text', text },
      { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } },
      { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg', detail: 'low' } }] }],
  });
  assert.equal(data.choices[0].message.content, `Echo: ${text} [images: 2]`);
  const q = await forwarded(text);
  assert.deepEqual(q.body.messages[0].content, [
    { type: 'text', text },
    { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } },
    { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
  ]);
});

test('anthropic: a content part it cannot take: 400 unsupported_content, nothing forwarded', async () => {
  const marker = nonce('aaudio');
  const r = await chat(key, { model: 'claude/claude-haiku-4-5', messages: [{ role: 'user', content: [{ type: 'text', text: marker }, { type: 'input_audio', input_audio: { data: 'AAAA', format: 'wav' } }] }] });
  expectOpenAIError(r, 400, 'unsupported_content', { param: 'messages', type: 'invalid_request_error' });
  assert.equal((await mockReceived(MOCK, marker)).length, 0);
  await decision(r.headers, { status: 'invalid_request', http_status: 400 });
});

test('anthropic: 429 rate_limit_error keeps retry-after', async () => {
  const { r } = await failing('claude/fail-429', 429, 'rate_limit_exceeded', 'rate_limit_error', 'rate_limited');
  assert.equal(r.headers.get('retry-after'), '7');
});

test('anthropic: 500 api_error and 529 overloaded_error: 502 upstream_error', async () => {
  await failing('claude/fail-500', 502, 'upstream_error', 'upstream_error', 'upstream_error');
  const { e } = await failing('claude/fail-529', 502, 'upstream_error', 'upstream_error', 'upstream_error');
  assert.match(e.message, /overloaded/i);
  await failing('claude/fail-500', 502, 'upstream_error', 'upstream_error', 'upstream_error', true);
});

test('anthropic: 400 passes with its message; 401 is not the client\'s 401', async () => {
  const { e } = await failing('claude/fail-400', 400, null, 'invalid_request_error', 'invalid_request');
  assert.match(e.message, /prompt is too long/);
  const r = await chat(key, { model: 'claude/fail-401', messages: [{ role: 'user', content: 'x' }] });
  assert.notEqual(r.status, 401);
  expectOpenAIError(r, 502, 'upstream_auth_failed');
});

test('anthropic: garbage 200 answer: 502; stall: 504', async () => {
  await failing('claude/garbage', 502, 'upstream_error', 'upstream_error', 'upstream_error');
  await failing('claude/stall', 504, 'upstream_timeout', 'timeout_error', 'upstream_timeout');
});

test('anthropic: cut stream: error event, no [DONE], decision stream_error', async () => {
  await cutStream({ key, client, decision, model: 'claude/cut', tag: 'acut' });
});

test('anthropic: error event mid-stream: OpenAI error event, no [DONE], decision stream_error', async () => {
  const r = await sse(key, { model: 'claude/error-stream', messages: [{ role: 'user', content: `one two ${nonce('aerr')}` }], stream: true });
  assert.equal(r.status, 200);
  assert.equal(r.done, false);
  assert.equal(r.transportError, null);
  const e = checkErrorObject(JSON.parse(r.events.at(-1)));
  assert.equal(e.code, 'overloaded_error');
  assert.match(e.message, /Overloaded/);
  await decision(r.headers, { status: 'stream_error', stream: true });
});
