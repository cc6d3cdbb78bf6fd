// A type=cohere provider (t/conf/providers/cohere.conf) through the gateway with the official
// openai client: what reaches t/mock/cohere-mock.mjs is a Cohere v2 chat request (path, Bearer
// key, messages, tool_calls/tool_plan, tool results, image parts, tools, p, stop_sequences,
// max_tokens), and what comes back is OpenAI's shape (answers, streams with and without usage,
// tool calls, errors, decisions with usage and cost on Cohere's billed units).
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import {
  assertClose, chat, checkErrorObject, checkUsage, costOf, cutStream, decisionHelpers,
  expectOpenAIError, mockReceived, nonce, PNG, providerKey, providerOrg, quietStream,
  readToolCalls, sse, usageStream,
} from './lib.mjs';

const PORT = process.env.FLOOPY_MOCK_COHERE_PORT;
const MOCK = `http://127.0.0.1:${PORT}`;
const KEY = providerKey('cohere');
const PRICES = {
  'cohere/command-a-03-2025': { input: 2.5, output: 10, cached_input: null },
  'cohere/command-r-08-2024': { input: 0.15, output: 0.6, cached_input: null },
};

let org; let key; let keyInfo; let client;
before(async () => ({ org, key, keyInfo, client } = await providerOrg(PORT, 'FLOOPY_MOCK_COHERE_PORT')));
const { decision, failing } = decisionHelpers(() => ({ org, key, keyInfo }), 'cfail');

async function forwarded(marker) {
  const list = await mockReceived(MOCK, marker);
  assert.equal(list.length, 1, `the cohere mock received ${list.length} requests containing ${marker}`);
  const q = list[0];
  assert.equal(q.method, 'POST');
  assert.equal(q.path, '/v2/chat');
  assert.equal(q.headers.authorization, `Bearer ${KEY}`, 'the key from key_file, as Bearer');
  assert.match(q.headers['content-type'] ?? '', /^application\/json/);
  assert.ok(!JSON.stringify(q.headers).includes(key), 'the client key leaked to the provider');
  return q;
}

/** The billed usage the mock reports for a Cohere body, asked directly, in OpenAI's names. */
async function mockUsage(body) {
  const r = await fetch(`${MOCK}/v2/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}`, 'x-e2e-direct': '1' },
    body: JSON.stringify({ ...body, stream: false }),
  });
  assert.equal(r.status, 200);
  const u = (await r.json()).usage;
  assert.notEqual(u.tokens.input_tokens, u.billed_units.input_tokens, 'the mock makes them differ');
  const b = u.billed_units;
  return { prompt_tokens: b.input_tokens, completion_tokens: b.output_tokens, total_tokens: b.input_tokens + b.output_tokens };
}

test('cohere: plain answer, request in Cohere\'s names, billed units priced', async () => {
  const text = `hello cohere ${nonce('cplain')}`;
  const body = {
    model: 'cohere/command-a-03-2025',
    messages: [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: text }],
    temperature: 0.3, top_p: 0.8, max_tokens: 64, stop: 'END', seed: 7, user: 'u-1',
  };
  const { data, response } = await client.chat.completions.create(body).withResponse();
  assert.equal(data.object, 'chat.completion');
  assert.equal(data.choices[0].message.role, 'assistant');
  assert.equal(data.choices[0].message.content, `Echo: ${text}`);
  assert.equal(data.choices[0].finish_reason, 'stop');
  assert.equal(response.headers.get('x-floopy-provider'), 'cohere');

  const q = await forwarded(text);
  assert.deepEqual(q.body, {
    model: 'command-a-03-2025',
    messages: [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: text }],
    temperature: 0.3, seed: 7, max_tokens: 64, p: 0.8, stop_sequences: ['END'],
  });
  const want = await mockUsage(q.body);
  checkUsage(data.usage, want, 'answer');
  const d = await decision(response.headers, { status: 'ok', http_status: 200, route: 'cohere/command-a-03-2025', pinned: true, stream: false });
  checkUsage(d.usage, want, 'decision');
  assertClose(d.cost_usd, costOf(d.usage, PRICES['cohere/command-a-03-2025']), 'cost_usd');
});

test('cohere: the route picks the cheaper model', async () => {
  const text = `route me ${nonce('croute')}`;
  const { data, response } = await client.chat.completions.create({ model: 'cohere-auto', messages: [{ role: 'user', content: text }] }).withResponse();
  assert.equal(data.choices[0].message.content, `Echo: ${text}`);
  assert.equal((await forwarded(text)).body.model, 'command-r-08-2024');
  const d = await decision(response.headers, { status: 'ok', route: 'cohere-auto', pinned: false });
  assert.equal(d.chosen.model, 'command-r-08-2024');
});

test('cohere: stream with include_usage: content, finish, exactly one usage chunk, [DONE]', async () => {
  const text = `stream to me ${nonce('csu')} one two three`;
  const body = { model: 'cohere/command-r-08-2024', messages: [{ role: 'user', content: text }], stream: true, stream_options: { include_usage: true } };
  const { response, usage, ids } = await usageStream(client, body, text);
  assert.equal(ids.size, 1, 'one id for the whole stream');
  const q = await forwarded(text);
  assert.equal(q.body.stream, true);
  assert.ok(!('stream_options' in q.body));
  const want = await mockUsage(q.body);
  checkUsage(usage, want, 'usage chunk');
  const d = await decision(response.headers, { status: 'ok', http_status: 200, stream: true });
  checkUsage(d.usage, want, 'decision');
  assertClose(d.cost_usd, costOf(d.usage, PRICES['cohere/command-r-08-2024']), 'cost_usd of a stream');
});

test('cohere: stream without include_usage: no usage chunk, [DONE], the decision has usage', async () => {
  const text = `quiet stream ${nonce('csnu')}`;
  const r = await sse(key, { model: 'cohere/command-a-03-2025', messages: [{ role: 'user', content: text }], stream: true });
  quietStream(r, text);
  const q = await forwarded(text);
  const d = await decision(r.headers, { status: 'ok', stream: true });
  checkUsage(d.usage, await mockUsage(q.body), 'decision');
});

const TOOLS = [
  { type: 'function', function: { name: 'lookup_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] } } },
  { type: 'function', function: { name: 'other_tool', parameters: { type: 'object', properties: {} } } },
];

test('cohere: tool call round trip: tool_plan as content, tool_calls back, tool result in', async () => {
  const n = nonce('ctool');
  const question = `weather in Paris ${n}`;
  const first = await client.chat.completions.create({ model: 'cohere/command-a-03-2025', messages: [{ role: 'user', content: question }], tools: TOOLS, tool_choice: 'required' });
  const m1 = first.choices[0].message;
  assert.equal(first.choices[0].finish_reason, 'tool_calls');
  assert.equal(m1.content, 'I will call lookup_weather.', 'the tool plan');
  assert.equal(m1.tool_calls.length, 1);
  const call = m1.tool_calls[0];
  assert.equal(call.type, 'function');
  assert.equal(call.function.name, 'lookup_weather');
  assert.match(call.id, /^lookup_weather_/);
  assert.deepEqual(JSON.parse(call.function.arguments), { q: question });

  const result = `sunny, 21 °C ${n}`;
  const messages = [{ role: 'user', content: question }, m1, { role: 'tool', tool_call_id: call.id, content: result }];
  const second = await client.chat.completions.create({ model: 'cohere/command-a-03-2025', messages, tools: TOOLS });
  assert.equal(second.choices[0].message.content, `Tool said: ${result}`);
  assert.equal(second.choices[0].finish_reason, 'stop');

  const reqs = await mockReceived(MOCK, n);
  assert.equal(reqs.length, 2);
  assert.deepEqual(reqs[0].body.tools, TOOLS);
  assert.equal(reqs[0].body.tool_choice, 'REQUIRED');
  assert.deepEqual(reqs[1].body.messages, [
    { role: 'user', content: question },
    { role: 'assistant', tool_calls: [{ id: call.id, type: 'function', function: call.function }], tool_plan: 'I will call lookup_weather.' },
    { role: 'tool', tool_call_id: call.id, content: result },
  ]);
  assert.ok(!('tool_choice' in reqs[1].body));
});

test('cohere: streamed tool call: id and name first, argument fragments reassemble', async () => {
  const n = nonce('cstool');
  const stream = await client.chat.completions.create({ model: 'cohere/command-a-03-2025', messages: [{ role: 'user', content: `find ${n}` }], tools: TOOLS, stream: true });
  const { calls, finish, content } = await readToolCalls(stream);
  assert.equal(finish, 'tool_calls');
  assert.equal(content, 'I will call lookup_weather.');
  assert.equal(calls.length, 1);
  assert.ok(calls[0].first.id && calls[0].first.function.name, 'the first delta carries id and name');
  assert.equal(calls[0].name, 'lookup_weather');
  assert.deepEqual(JSON.parse(calls[0].args), { q: `find ${n}` });

  const runner = client.chat.completions.stream({ model: 'cohere/command-a-03-2025', messages: [{ role: 'user', content: `again ${n}` }], tools: TOOLS });
  const final = await runner.finalChatCompletion();
  assert.equal(final.choices[0].finish_reason, 'tool_calls');
  assert.deepEqual(JSON.parse(final.choices[0].message.tool_calls[0].function.arguments), { q: `again ${n}` });
});

test('cohere: image parts go to a vision model as image_url parts', async () => {
  const text = `what is this ${nonce('cimg')}`;
  const content = [{ type: 'text', text }, { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}`, detail: 'low' } }];
  const data = await client.chat.completions.create({ model: 'cohere/command-a-vision-07-2025', messages: [{ role: 'user', content }] });
  assert.equal(data.choices[0].message.content, `Echo: ${text} [images: 1]`);
  const q = await forwarded(text);
  assert.deepEqual(q.body.messages[0].content, content);
});

test('cohere: images for a model without vision: 400 unsupported_content, nothing forwarded', async () => {
  const marker = nonce('cnovis');
  const r = await chat(key, { model: 'cohere/command-a-03-2025', messages: [{ role: 'user', content: [{ type: 'text', text: marker }, { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } }] }] });
  expectOpenAIError(r, 400, 'unsupported_content', { param: 'messages', type: 'invalid_request_error' });
  assert.equal((await mockReceived(MOCK, marker)).length, 0);
  await decision(r.headers, { status: 'invalid_request', http_status: 400 });
});

test('cohere: 429 rate_limit_error keeps retry-after and Cohere\'s message', async () => {
  const { r, e } = await failing('cohere/fail-429', 429, 'rate_limit_exceeded', 'rate_limit_error', 'rate_limited');
  assert.equal(r.headers.get('retry-after'), '7');
  assert.match(e.message, /Trial key/);
});

test('cohere: 400 passes with its message; 500 -> 502; 401 -> 502 upstream_auth_failed', async () => {
  const { e } = await failing('cohere/fail-400', 400, null, 'invalid_request_error', 'invalid_request');
  assert.match(e.message, /max_tokens must be greater/);
  await failing('cohere/fail-500', 502, 'upstream_error', 'upstream_error', 'upstream_error');
  await failing('cohere/fail-500', 502, 'upstream_error', 'upstream_error', 'upstream_error', true);
  await failing('cohere/fail-401', 502, 'upstream_auth_failed', 'upstream_error', 'upstream_error');
});

test('cohere: finish_reason ERROR: 502 for an answer, an error event for a stream', async () => {
  await failing('cohere/error-finish', 502, 'upstream_error', 'upstream_error', 'upstream_error');
  const r = await sse(key, { model: 'cohere/error-finish', messages: [{ role: 'user', content: `one two ${nonce('cerr')}` }], stream: true });
  assert.equal(r.status, 200);
  assert.equal(r.done, false);
  const e = checkErrorObject(JSON.parse(r.events.at(-1)));
  assert.match(e.message, /ERROR/);
  const d = await decision(r.headers, { status: 'stream_error', stream: true });
  assert.ok(d.usage.prompt_tokens > 0, 'usage of the failed stream kept');
});

test('cohere: MAX_TOKENS is finish_reason length', async () => {
  const data = await client.chat.completions.create({ model: 'cohere/max-tokens', messages: [{ role: 'user', content: 'a b c' }] });
  assert.equal(data.choices[0].finish_reason, 'length');
});

test('cohere: stall -> 504', async () => {
  await failing('cohere/stall', 504, 'upstream_timeout', 'timeout_error', 'upstream_timeout');
});

test('cohere: cut stream: error event, no [DONE], decision stream_error', async () => {
  await cutStream({ key, client, decision, model: 'cohere/cut', tag: 'ccut' });
});
