// A type=bedrock provider (t/conf/providers/bedrock.conf) through the gateway with the official
// openai client: what reaches t/mock/bedrock-mock.mjs is a SigV4-signed Converse /
// ConverseStream request (path with the model id encoded, signature verified by the mock,
// system/messages/toolConfig/inferenceConfig translated, images as bytes), and what comes back
// is OpenAI's shape (answers, streams from binary event-stream frames with and without usage,
// tool calls, AWS errors and exception frames, decisions with usage and cost).
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import OpenAI from 'openai';
import {
  assertClose, chat, checkErrorObject, costOf, decisionHelpers, expectOpenAIError, nonce,
  oneToolCall, PNG, providerOrg, sse,
} from './lib.mjs';

const PORT = process.env.FLOOPY_MOCK_BEDROCK_PORT;
const MOCK = `http://127.0.0.1:${PORT}`;
const SONNET = 'anthropic.claude-3-5-sonnet-20241022-v2:0';
const PRICES = {
  [`bedrock/${SONNET}`]: { input: 3, output: 15, cached_input: 0.3 },
  'bedrock/amazon.nova-lite-v1:0': { input: 0.06, output: 0.24, cached_input: 0.015 },
};

let org; let key; let keyInfo; let client;
before(async () => ({ org, key, keyInfo, client } = await providerOrg(PORT, 'FLOOPY_MOCK_BEDROCK_PORT')));
const { decision } = decisionHelpers(() => ({ org, key, keyInfo }));

/** What the Bedrock mock received for a marker, each checked as a signed Converse call. */
async function forwarded(marker, { stream = false, model = SONNET, count = 1 } = {}) {
  const list = (await (await fetch(`${MOCK}/__mock/requests`)).json())
    .filter((q) => JSON.stringify(q.body ?? '').includes(marker));
  assert.equal(list.length, count, `the bedrock mock received ${list.length} requests containing ${marker}`);
  for (const q of list) {
    assert.equal(q.method, 'POST');
    assert.equal(q.path, `/model/${encodeURIComponent(model)}/${stream ? 'converse-stream' : 'converse'}`);
    assert.equal(q.model, model);
    assert.equal(q.sigv4.ok, true, `the mock refused the signature: ${q.sigv4.error}`);
    assert.match(q.headers.authorization, /^AWS4-HMAC-SHA256 Credential=AKIAFLOOPYTEST000001\/\d{8}\/us-east-1\/bedrock\/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, Signature=[0-9a-f]{64}$/);
    assert.match(q.headers['x-amz-date'], /^\d{8}T\d{6}Z$/);
    assert.match(q.headers['x-amz-content-sha256'], /^[0-9a-f]{64}$/);
    assert.equal(q.headers['content-type'], 'application/json');
    assert.equal(q.headers.accept, stream ? 'application/vnd.amazon.eventstream' : 'application/json');
    assert.ok(!JSON.stringify(q.headers).includes(key), 'the client key leaked to the provider');
    if (model.includes(':')) assert.match(q.sigv4.canonical, /%253A/, 'the canonical URI encodes the model id twice');
  }
  return list[count - 1];
}

function checkCost(d, model) {
  assertClose(d.cost_usd, costOf(d.usage, PRICES[model]), 'cost_usd');
}

test('plain answer: Converse request signed and translated, OpenAI completion back, usage and cost', async () => {
  const marker = nonce('bp');
  const model = `bedrock/${SONNET}`;
  const { data, response } = await client.chat.completions.create({
    model,
    messages: [{ role: 'system', content: 'Be terse.' }, { role: 'user', content: `hello ${marker}` }],
    max_tokens: 64, temperature: 0.2, top_p: 0.9, stop: ['END'],
  }).withResponse();
  assert.equal(data.object, 'chat.completion');
  assert.equal(data.choices[0].message.content, `Echo: hello ${marker}`);
  assert.equal(data.choices[0].finish_reason, 'stop');
  assert.deepEqual([data.usage.prompt_tokens, data.usage.completion_tokens, data.usage.total_tokens], [5, 3, 8]);
  assert.equal(response.headers.get('x-floopy-provider'), 'bedrock');
  const q = await forwarded(marker);
  assert.deepEqual(q.body, {
    messages: [{ role: 'user', content: [{ text: `hello ${marker}` }] }],
    system: [{ text: 'Be terse.' }],
    inferenceConfig: { maxTokens: 64, temperature: 0.2, topP: 0.9, stopSequences: ['END'] },
  });
  const d = await decision(response.headers, { status: 'ok', http_status: 200, route: model, pinned: true, stream: false });
  assert.deepEqual(d.chosen && [d.chosen.provider, d.chosen.model], ['bedrock', SONNET]);
  assert.deepEqual([d.usage.prompt_tokens, d.usage.completion_tokens, d.usage.total_tokens, d.usage.cached_tokens], [5, 3, 8, 0]);
  checkCost(d, model);
});

test('stream without include_usage: text from event-stream frames, no usage chunk, usage on the decision', async () => {
  const marker = nonce('bs');
  const { data: stream, response } = await client.chat.completions.create({
    model: `bedrock/${SONNET}`, stream: true, messages: [{ role: 'user', content: `stream this ${marker}` }],
  }).withResponse();
  let text = ''; let finish = null; let usageSeen = false; let role = null;
  for await (const c of stream) {
    if (c.usage) usageSeen = true;
    const ch = c.choices[0];
    if (!ch) continue;
    role ??= ch.delta.role;
    text += ch.delta.content ?? '';
    finish = ch.finish_reason ?? finish;
  }
  assert.equal(role, 'assistant');
  assert.equal(text, `Echo: stream this ${marker}`);
  assert.equal(finish, 'stop');
  assert.equal(usageSeen, false);
  await forwarded(marker, { stream: true });
  const d = await decision(response.headers, { status: 'ok', stream: true });
  assert.deepEqual([d.usage.prompt_tokens, d.usage.completion_tokens], [4, 4]);
  checkCost(d, `bedrock/${SONNET}`);
});

test('stream with include_usage: the usage chunk comes last, after the finish chunk, then [DONE]', async () => {
  const marker = nonce('bu');
  const r = await sse(key, {
    model: 'bedrock/amazon.nova-lite-v1:0', stream: true, stream_options: { include_usage: true },
    messages: [{ role: 'user', content: `count me ${marker}` }],
  });
  assert.equal(r.status, 200);
  assert.equal(r.done, true);
  const chunks = r.events.map((e) => JSON.parse(e));
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assert.deepEqual([last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens], [4, 4, 8]);
  assert.equal(chunks.at(-2).choices[0].finish_reason, 'stop');
  for (const c of chunks.slice(0, -1)) assert.equal(c.usage, null, 'usage: null on the other chunks');
  assert.ok(new Set(chunks.map((c) => c.id)).size === 1, 'one id for the whole stream');
  await forwarded(marker, { stream: true, model: 'amazon.nova-lite-v1:0' });
  const d = await decision(r.headers, { status: 'ok', stream: true });
  checkCost(d, 'bedrock/amazon.nova-lite-v1:0');
});

const TOOLS = [{
  type: 'function',
  function: { name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] } },
}];

test('tool call round trip: toolConfig, toolUse -> tool_calls, toolResult in a user turn', async () => {
  const marker = nonce('bt');
  const messages = [{ role: 'user', content: `weather in Paris ${marker}` }];
  const first = await client.chat.completions.create({ model: `bedrock/${SONNET}`, messages, tools: TOOLS, tool_choice: 'required' });
  const tc = oneToolCall(first, 'get_weather', /^tooluse_/, { q: `weather in Paris ${marker}` });
  const msg = first.choices[0].message;
  let q = await forwarded(marker);
  assert.deepEqual(q.body.toolConfig, {
    tools: [{ toolSpec: { name: 'get_weather', description: 'Weather for a city', inputSchema: { json: TOOLS[0].function.parameters } } }],
    toolChoice: { any: {} },
  });

  const second = await client.chat.completions.create({
    model: `bedrock/${SONNET}`, tools: TOOLS,
    messages: [...messages, msg, { role: 'tool', tool_call_id: tc.id, content: 'sunny, 21C' }],
  });
  assert.equal(second.choices[0].message.content, 'Tool said: sunny, 21C');
  q = await forwarded(marker, { count: 2 });
  assert.deepEqual(q.body.messages.slice(1), [
    { role: 'assistant', content: [{ toolUse: { toolUseId: tc.id, name: 'get_weather', input: { q: `weather in Paris ${marker}` } } }] },
    { role: 'user', content: [{ toolResult: { toolUseId: tc.id, content: [{ text: 'sunny, 21C' }] } }] },
  ]);
});

test('streamed tool call: id and name first, arguments in fragments, finish tool_calls', async () => {
  const marker = nonce('bst');
  const stream = await client.chat.completions.create({
    model: `bedrock/${SONNET}`, stream: true, tools: TOOLS, messages: [{ role: 'user', content: `find ${marker}` }],
  });
  let id = null; let name = null; let args = ''; let finish = null; let fragments = 0;
  for await (const c of stream) {
    const ch = c.choices[0];
    if (!ch) continue;
    for (const t of ch.delta.tool_calls ?? []) {
      assert.equal(t.index, 0);
      id ??= t.id; name ??= t.function?.name;
      args += t.function?.arguments ?? '';
      fragments++;
    }
    finish = ch.finish_reason ?? finish;
  }
  assert.match(id, /^tooluse_/);
  assert.equal(name, 'get_weather');
  assert.ok(fragments >= 2, `fragments ${fragments}`);
  assert.deepEqual(JSON.parse(args), { q: `find ${marker}` });
  assert.equal(finish, 'tool_calls');
});

test('image parts: data URLs go as image bytes, an http URL is a clear 400 that never leaves', async () => {
  const marker = nonce('bi');
  const r = await client.chat.completions.create({
    model: `bedrock/${SONNET}`,
    messages: [{ role: 'user', content: [{ type: 'text', text: `what is this ${marker}` }, { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } }] }],
  });
  assert.equal(r.choices[0].message.content, `Echo: what is this ${marker} [images: 1]`);
  const q = await forwarded(marker);
  assert.deepEqual(q.body.messages[0].content[1], { image: { format: 'png', source: { bytes: PNG } } });

  const m2 = nonce('biu');
  const bad = await chat(key, {
    model: `bedrock/${SONNET}`,
    messages: [{ role: 'user', content: [{ type: 'text', text: m2 }, { type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }] }],
  });
  const e = expectOpenAIError(bad, 400, 'unsupported_content', { param: 'messages' });
  assert.match(e.message, /data: URL/);
  await forwarded(m2, { count: 0 });
  await decision(bad.headers, { status: 'invalid_request', http_status: 400 });
});

test('route bedrock-auto picks a configured Bedrock model', async () => {
  const marker = nonce('br');
  const { data, response } = await client.chat.completions.create({ model: 'bedrock-auto', messages: [{ role: 'user', content: marker }] }).withResponse();
  assert.equal(data.choices[0].message.content, `Echo: ${marker}`);
  const d = await decision(response.headers, { status: 'ok', route: 'bedrock-auto', pinned: false });
  assert.ok(Object.hasOwn(PRICES, `bedrock/${d.chosen.model}`), `chosen ${d.chosen.model}`);
  checkCost(d, `bedrock/${d.chosen.model}`);
});

test('cache reads count into prompt_tokens and cached_tokens', async () => {
  const r = await chat(key, { model: 'bedrock/cached-model', messages: [{ role: 'user', content: 'one two' }] });
  assert.equal(r.status, 200);
  assert.equal(r.json.usage.prompt_tokens, 3 + 10);
  assert.equal(r.json.usage.prompt_tokens_details.cached_tokens, 10);
  const d = await decision(r.headers, { status: 'ok' });
  assert.equal(d.usage.cached_tokens, 10);
  assert.equal(d.cost_usd, null, 'an unpriced pinned model has no cost');
});

test('ThrottlingException 429: 429 rate_limit_error, retry-after kept', async () => {
  const r = await chat(key, { model: 'bedrock/fail-429', messages: [{ role: 'user', content: 'x' }] });
  const e = expectOpenAIError(r, 429, 'rate_limit_exceeded', { type: 'rate_limit_error' });
  assert.match(e.message, /ThrottlingException/);
  assert.equal(r.headers.get('retry-after'), '7');
  await decision(r.headers, { status: 'rate_limited', http_status: 429 });
});

test('InternalServerException 500: 502 upstream_error; ValidationException 400 stays 400', async () => {
  let r = await chat(key, { model: 'bedrock/fail-500', messages: [{ role: 'user', content: 'x' }] });
  expectOpenAIError(r, 502, 'upstream_error', { type: 'upstream_error' });
  await decision(r.headers, { status: 'upstream_error', http_status: 502 });
  r = await chat(key, { model: 'bedrock/fail-400', messages: [{ role: 'user', content: 'x' }] });
  const e = expectOpenAIError(r, 400, undefined, { type: 'invalid_request_error' });
  assert.match(e.message, /ValidationException/);
  r = await chat(key, { model: 'bedrock/fail-403', messages: [{ role: 'user', content: 'x' }] });
  expectOpenAIError(r, 502, 'upstream_auth_failed');
});

test('stall: 504 upstream_timeout', async () => {
  const t0 = Date.now();
  const r = await chat(key, { model: 'bedrock/stall', messages: [{ role: 'user', content: 'x' }] });
  expectOpenAIError(r, 504, 'upstream_timeout', { type: 'timeout_error' });
  assert.ok(Date.now() - t0 <= 5500);
  await decision(r.headers, { status: 'upstream_timeout', http_status: 504 });
});

async function brokenStream(model, text) {
  const r = await sse(key, { model, stream: true, messages: [{ role: 'user', content: text }] });
  assert.equal(r.status, 200);
  assert.equal(r.done, false, `${model}: a broken stream ended with [DONE]`);
  assert.equal(r.transportError, null);
  const last = JSON.parse(r.events.at(-1));
  checkErrorObject(last);
  await decision(r.headers, { status: 'stream_error', stream: true, http_status: 200 });
  return { r, error: last.error };
}

test('cut stream: error event, no [DONE], decision stream_error', async () => {
  const marker = nonce('bc');
  const { r } = await brokenStream('bedrock/cut', `cut me off ${marker} now`);
  const content = r.events.slice(0, -1).map((e) => JSON.parse(e).choices?.[0]?.delta?.content ?? '').join('');
  assert.ok(content.length > 0 && `Echo: cut me off ${marker} now`.startsWith(content), `partial ${content}`);
  // the openai client raises on the error event
  const stream = await client.chat.completions.create({ model: 'bedrock/cut', stream: true, messages: [{ role: 'user', content: 'a b c' }] });
  let threw = null;
  try { for await (const c of stream) void c; } catch (e) { threw = e; }
  assert.ok(threw instanceof OpenAI.APIError, `expected an APIError, got ${threw}`);
});

test('exception frames mid-stream become error events: modelStreamErrorException, throttlingException', async () => {
  let { error } = await brokenStream('bedrock/exc-model', 'one two three');
  assert.equal(error.code, 'upstream_stream_error');
  assert.match(error.message, /modelStreamErrorException mid-stream: The model stream failed/);
  ({ error } = await brokenStream('bedrock/exc-throttle', 'one two three'));
  assert.equal(error.type, 'rate_limit_error');
});

test('a frame with a bad CRC is an error event, never skipped', async () => {
  const { error } = await brokenStream('bedrock/bad-crc', 'one two three');
  assert.match(error.message, /corrupt event stream \(message CRC mismatch\)/);
});

test('a stream that stalls after its first frame: error event after idle_timeout', async () => {
  const t0 = Date.now();
  const { error } = await brokenStream('bedrock/stall-stream', 'one two');
  assert.equal(error.code, 'upstream_timeout');
  assert.ok(Date.now() - t0 >= 1400, 'the stall was noticed before idle_timeout');
});
