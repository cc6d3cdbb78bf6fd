// A type=azure provider (t/conf/providers/azure.conf) through the gateway with the official
// openai client: what reaches t/mock/azure-mock.mjs is OpenAI's request on Azure's deployment
// URL (api-version, api-key), and what comes back is OpenAI's shape with Azure's leading
// prompt_filter_results chunk dropped (answers, streams with and without usage, tool calls,
// images, errors, decisions with usage and cost).
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import {
  assertClose, chat, checkErrorObject, checkUsage, costOf, cutStream, decisionHelpers,
  mockReceived, nonce, PNG, providerKey, providerOrg, sse,
} from './lib.mjs';

const PORT = process.env.FLOOPY_MOCK_AZURE_PORT;
const MOCK = `http://127.0.0.1:${PORT}`;
const KEY = providerKey('azure');
const PRICES = {
  'az/gpt-4o': { input: 2.5, output: 10, cached_input: 1.25 },
  'az/gpt-4o-mini': { input: 0.15, output: 0.6, cached_input: 0.075 },
};

let org; let key; let keyInfo; let client;
before(async () => ({ org, key, keyInfo, client } = await providerOrg(PORT, 'FLOOPY_MOCK_AZURE_PORT')));
const { decision, failing } = decisionHelpers(() => ({ org, key, keyInfo }), 'zfail');

/** The one request the gateway sent for a marker, checked for Azure's URL and auth. */
async function forwarded(marker, deployment) {
  const list = await mockReceived(MOCK, marker);
  assert.equal(list.length, 1, `the azure mock received ${list.length} requests containing ${marker}`);
  const q = list[0];
  assert.equal(q.method, 'POST');
  assert.equal(q.path, `/openai/deployments/${deployment}/chat/completions`);
  assert.equal(q.url, `/openai/deployments/${deployment}/chat/completions?api-version=2024-10-21`);
  assert.equal(q.headers['api-key'], KEY, 'the key from key_file, as api-key');
  assert.equal(q.headers.authorization, undefined, 'no Authorization header besides api-key');
  assert.ok(!JSON.stringify(q.headers).includes(key), 'the client key leaked to the provider');
  return q;
}

/** The usage the mock reports for a body, asked directly. */
async function mockUsage(deployment, body) {
  const r = await fetch(`${MOCK}/openai/deployments/${deployment}/chat/completions?api-version=2024-10-21`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'api-key': KEY, 'x-e2e-direct': '1' },
    body: JSON.stringify({ ...body, stream: false }),
  });
  assert.equal(r.status, 200);
  return (await r.json()).usage;
}

test('azure: plain answer on the deployment URL with api-key; Azure annotations pass; cost', async () => {
  const text = `hello azure ${nonce('zplain')}`;
  const body = { model: 'az/gpt-4o', messages: [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: text }], temperature: 0.2 };
  const { data, response } = await client.chat.completions.create(body).withResponse();
  assert.equal(data.object, 'chat.completion');
  assert.equal(data.choices[0].message.content, `Echo: ${text}`);
  assert.equal(data.choices[0].finish_reason, 'stop');
  assert.ok(data.choices[0].content_filter_results, 'content_filter_results kept');
  assert.equal(response.headers.get('x-floopy-provider'), 'az');
  const q = await forwarded(text, 'gpt-4o');
  assert.equal(q.body.model, 'gpt-4o');
  assert.equal(q.body.temperature, 0.2);
  assert.deepEqual(q.body.messages, body.messages);
  const want = await mockUsage('gpt-4o', q.body);
  checkUsage(data.usage, want, 'answer');
  const d = await decision(response.headers, { status: 'ok', http_status: 200, route: 'az/gpt-4o', pinned: true, stream: false });
  checkUsage(d.usage, want, 'decision');
  assertClose(d.cost_usd, costOf(d.usage, PRICES['az/gpt-4o']), 'cost_usd');
});

test('azure: the route picks the cheaper deployment', async () => {
  const text = `route me ${nonce('zroute')}`;
  const { data, response } = await client.chat.completions.create({ model: 'az-auto', messages: [{ role: 'user', content: text }] }).withResponse();
  assert.equal(data.choices[0].message.content, `Echo: ${text}`);
  await forwarded(text, 'gpt-4o-mini');
  const d = await decision(response.headers, { status: 'ok', route: 'az-auto', pinned: false });
  assert.equal(d.chosen.model, 'gpt-4o-mini');
});

test('azure: stream with include_usage: the prompt_filter_results chunk never reaches the client', async () => {
  const text = `stream to me ${nonce('zsu')} one two three`;
  const body = { model: 'az/gpt-4o-mini', messages: [{ role: 'user', content: text }], stream: true, stream_options: { include_usage: true } };
  const r = await sse(key, body);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.done, true);
  const chunks = r.events.map((e) => JSON.parse(e));
  assert.ok(!r.text.includes('prompt_filter_results'), 'a prompt_filter_results chunk was forwarded');
  const usageChunks = chunks.filter((c) => c.choices.length === 0);
  assert.equal(usageChunks.length, 1, 'only the usage chunk has no choice');
  assert.ok(chunks.at(-1).usage && chunks.at(-1).choices.length === 0, 'the usage chunk comes last');
  for (const c of chunks.slice(0, -1)) assert.equal(c.choices.length, 1);
  assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), `Echo: ${text}`);
  const q = await forwarded(text, 'gpt-4o-mini');
  assert.equal(q.body.stream, true);
  const want = await mockUsage('gpt-4o-mini', q.body);
  checkUsage(chunks.at(-1).usage, want, 'usage chunk');
  const d = await decision(r.headers, { status: 'ok', http_status: 200, stream: true });
  checkUsage(d.usage, want, 'decision');
  assertClose(d.cost_usd, costOf(d.usage, PRICES['az/gpt-4o-mini']), 'cost_usd of a stream');

  // and through the SDK, which indexes choices[0] of every chunk
  const stream = await client.chat.completions.create(body);
  let content = '';
  for await (const c of stream) content += c.choices[0]?.delta?.content ?? '';
  assert.equal(content, `Echo: ${text}`);
});

test('azure: stream without include_usage: usage asked upstream, not forwarded; decision has it', async () => {
  const text = `quiet stream ${nonce('zsnu')}`;
  const r = await sse(key, { model: 'az/gpt-4o', messages: [{ role: 'user', content: text }], stream: true });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.done, true);
  for (const e of r.events.map((x) => JSON.parse(x))) {
    assert.ok(!e.error, `error event ${JSON.stringify(e)}`);
    assert.ok(e.usage === undefined || e.usage === null, 'a usage chunk reached the client');
    assert.equal(e.choices.length, 1);
  }
  const q = await forwarded(text, 'gpt-4o');
  assert.deepEqual(q.body.stream_options, { include_usage: true }, 'the gateway asks for usage');
  const d = await decision(r.headers, { status: 'ok', stream: true });
  checkUsage(d.usage, await mockUsage('gpt-4o', q.body), 'decision');
});

const TOOLS = [
  { type: 'function', function: { name: 'lookup_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] } } },
];

test('azure: tool call round trip, and a streamed tool call', async () => {
  const n = nonce('ztool');
  const question = `weather in Oslo ${n}`;
  const first = await client.chat.completions.create({ model: 'az/gpt-4o', messages: [{ role: 'user', content: question }], tools: TOOLS });
  const m1 = first.choices[0].message;
  assert.equal(first.choices[0].finish_reason, 'tool_calls');
  const call = m1.tool_calls[0];
  assert.equal(call.function.name, 'lookup_weather');
  assert.deepEqual(JSON.parse(call.function.arguments), { q: question });
  const result = `cold ${n}`;
  const second = await client.chat.completions.create({
    model: 'az/gpt-4o', tools: TOOLS,
    messages: [{ role: 'user', content: question }, m1, { role: 'tool', tool_call_id: call.id, content: result }],
  });
  assert.equal(second.choices[0].message.content, `Tool said: ${result}`);
  const reqs = await mockReceived(MOCK, n);
  assert.equal(reqs.length, 2);
  assert.deepEqual(reqs[0].body.tools, TOOLS);
  assert.equal(reqs[1].body.messages[2].tool_call_id, call.id);

  const runner = client.chat.completions.stream({ model: 'az/gpt-4o', messages: [{ role: 'user', content: `stream ${question}` }], tools: TOOLS });
  const final = await runner.finalChatCompletion();
  assert.equal(final.choices[0].finish_reason, 'tool_calls');
  assert.deepEqual(JSON.parse(final.choices[0].message.tool_calls[0].function.arguments), { q: `stream ${question}` });
});

test('azure: image parts pass as they are', async () => {
  const text = `what is this ${nonce('zimg')}`;
  const content = [{ type: 'text', text }, { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}`, detail: 'low' } }];
  const data = await client.chat.completions.create({ model: 'az/gpt-4o', messages: [{ role: 'user', content }] });
  assert.equal(data.choices[0].message.content, `Echo: ${text} [images: 1]`);
  const q = await forwarded(text, 'gpt-4o');
  assert.deepEqual(q.body.messages[0].content, content);
});

test('azure: 429 (code "429" upstream) is rate_limit_exceeded and keeps retry-after', async () => {
  const { r, e } = await failing('az/fail-429', 429, 'rate_limit_exceeded', 'rate_limit_error', 'rate_limited');
  assert.equal(r.headers.get('retry-after'), '7');
  assert.match(e.message, /retry after 7 seconds/);
});

test('azure: content filter 400 passes as 400 content_filter', async () => {
  const { e } = await failing('az/fail-400', 400, 'content_filter', 'invalid_request_error', 'invalid_request');
  assert.equal(e.param, 'prompt');
  assert.match(e.message, /content management policy/);
});

test('azure: 500 -> 502, 401 -> 502 upstream_auth_failed, stall -> 504', async () => {
  await failing('az/fail-500', 502, 'upstream_error', 'upstream_error', 'upstream_error');
  await failing('az/fail-500', 502, 'upstream_error', 'upstream_error', 'upstream_error', true);
  await failing('az/fail-401', 502, 'upstream_auth_failed', 'upstream_error', 'upstream_error');
  await failing('az/stall', 504, 'upstream_timeout', 'timeout_error', 'upstream_timeout');
});

test('azure: cut stream: error event, no [DONE], decision stream_error', async () => {
  await cutStream({ key, client, decision, model: 'az/cut', tag: 'zcut' });
});

test('azure: a stream that stalls after its first chunk ends with an error event', async () => {
  const r = await sse(key, { model: 'az/stall-stream', messages: [{ role: 'user', content: `stall ${nonce('zss')}` }], stream: true });
  assert.equal(r.status, 200);
  assert.equal(r.done, false);
  const e = checkErrorObject(JSON.parse(r.events.at(-1)));
  assert.equal(e.code, 'upstream_timeout');
  await decision(r.headers, { status: 'stream_error', stream: true });
});
