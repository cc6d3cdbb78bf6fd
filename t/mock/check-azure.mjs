#!/usr/bin/env node
// Fidelity check of t/mock/azure-mock.mjs against the official `openai` package's AzureOpenAI
// client (t/node_modules): the client builds the deployment URL, the api-version query and the
// api-key header itself, so the mock must accept exactly what Azure accepts. Prints
// "N passed, N failed"; exits non-zero on any failure.
//
//   node t/mock/check-azure.mjs

import assert from 'node:assert/strict';
import { AzureOpenAI, APIError, RateLimitError, InternalServerError, BadRequestError, AuthenticationError, APIConnectionError } from 'openai';

import { startMock, check, expectThrow, run } from './check-lib.mjs';

const user = (content) => ({ role: 'user', content });
const TOOLS = [{ type: 'function', function: { name: 'lookup', description: 'look up', parameters: { type: 'object', properties: { q: { type: 'string' } } } } }];

async function main() {
  const mock = await startMock('azure-mock.mjs', { env: { MOCK_CHUNK_DELAY_MS: '1', MOCK_REQUIRE_KEY: 'az-test-key' } });
  const az = (deployment, opts = {}) => new AzureOpenAI({
    endpoint: mock.base, apiKey: 'az-test-key', apiVersion: '2024-10-21', deployment, maxRetries: 0, timeout: 10000, ...opts,
  });
  const lastRequest = async () => (await (await fetch(`${mock.base}/__mock/requests`)).json()).at(-1);

  await check('plain: deployment URL, api-version, api-key, Azure annotations', async () => {
    const { data, response } = await az('gpt-4o').chat.completions
      .create({ model: 'ignored-by-azure', messages: [user('hello there')] }).withResponse();
    assert.equal(data.object, 'chat.completion');
    assert.equal(data.model, 'gpt-4o-2024-11-20');
    assert.equal(data.choices[0].message.content, 'Echo: hello there');
    assert.equal(data.choices[0].finish_reason, 'stop');
    assert.ok(data.choices[0].content_filter_results.hate, 'content_filter_results');
    assert.equal(data.prompt_filter_results[0].prompt_index, 0);
    assert.equal(data.usage.prompt_tokens, 3);
    assert.equal(data.usage.completion_tokens, 3);
    assert.ok(response.headers.get('apim-request-id'));
    const q = await lastRequest();
    assert.equal(q.path, '/openai/deployments/gpt-4o/chat/completions');
    assert.match(q.url, /\?api-version=2024-10-21$/);
    assert.equal(q.headers['api-key'], 'az-test-key');
  });

  await check('images', async () => {
    const r = await az('gpt-4o').chat.completions.create({
      model: 'x',
      messages: [user([{ type: 'text', text: 'what' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }])],
    });
    assert.equal(r.choices[0].message.content, 'Echo: what [images: 1]');
  });

  await check('stream: the SDK tolerates the leading prompt_filter_results chunk; usage chunk', async () => {
    const stream = await az('gpt-4o-mini').chat.completions.create({
      model: 'x', messages: [user('one two three')], stream: true, stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    assert.deepEqual(chunks[0].choices, []);
    assert.ok(chunks[0].prompt_filter_results);
    assert.equal(chunks[0].id, '');
    assert.deepEqual(chunks[1].choices[0].delta, { content: '', refusal: null, role: 'assistant' });
    const text = chunks.map((c) => (c.choices[0] && c.choices[0].delta.content) || '').join('');
    assert.equal(text, 'Echo: one two three');
    assert.equal(chunks.filter((c) => c.choices[0] && c.choices[0].finish_reason === 'stop').length, 1);
    const last = chunks.at(-1);
    assert.deepEqual(last.choices, []);
    assert.equal(last.usage.total_tokens, 8);
    assert.equal(last.model, 'gpt-4o-mini-2024-07-18');
  });

  await check('stream tool call assembled by chat.completions.stream()', async () => {
    const runner = az('gpt-4o').chat.completions.stream({ model: 'x', messages: [user('weather in Paris')], tools: TOOLS });
    const final = await runner.finalChatCompletion();
    const c = final.choices[0];
    assert.equal(c.finish_reason, 'tool_calls');
    assert.equal(c.message.tool_calls[0].function.name, 'lookup');
    assert.deepEqual(JSON.parse(c.message.tool_calls[0].function.arguments), { q: 'weather in Paris' });
  });

  await check('tool round trip', async () => {
    const client = az('gpt-4o');
    const first = await client.chat.completions.create({ model: 'x', messages: [user('find it')], tools: TOOLS });
    const call = first.choices[0].message.tool_calls[0];
    assert.match(call.id, /^call_/);
    const second = await client.chat.completions.create({
      model: 'x', tools: TOOLS,
      messages: [user('find it'), first.choices[0].message, { role: 'tool', tool_call_id: call.id, content: 'forty-two' }],
    });
    assert.equal(second.choices[0].message.content, 'Tool said: forty-two');
  });

  await check('429: RateLimitError with Azure code and retry-after', async () => {
    const err = await expectThrow(az('fail-429').chat.completions.create({ model: 'x', messages: [user('a')] }), RateLimitError);
    assert.equal(err.status, 429);
    assert.equal(err.code, '429');
    assert.match(err.message, /retry after 7 seconds/);
    assert.equal(err.headers.get('retry-after'), '7');
    assert.equal(err.headers.get('retry-after-ms'), '7000');
  });

  await check('500: InternalServerError', async () => {
    const err = await expectThrow(az('fail-500').chat.completions.create({ model: 'x', messages: [user('a')] }), InternalServerError);
    assert.equal(err.status, 500);
  });

  await check('content filter: BadRequestError code content_filter', async () => {
    const err = await expectThrow(az('fail-400').chat.completions.create({ model: 'x', messages: [user('a')] }), BadRequestError);
    assert.equal(err.code, 'content_filter');
    assert.equal(err.param, 'prompt');
  });

  await check('wrong key: AuthenticationError', async () => {
    await expectThrow(az('gpt-4o', { apiKey: 'nope' }).chat.completions.create({ model: 'x', messages: [user('a')] }), AuthenticationError);
  });

  await check('no api-version: 404', async () => {
    const r = await fetch(`${mock.base}/openai/deployments/gpt-4o/chat/completions`, {
      method: 'POST', headers: { 'api-key': 'az-test-key', 'content-type': 'application/json' }, body: '{"messages":[]}',
    });
    assert.equal(r.status, 404);
    assert.deepEqual(await r.json(), { error: { code: '404', message: 'Resource not found' } });
  });

  await check('cut stream: the SDK sees the stream fail', async () => {
    const stream = await az('cut').chat.completions.create({ model: 'x', messages: [user('a b c d e')], stream: true });
    let n = 0;
    await assert.rejects(async () => { for await (const c of stream) { n++; void c; } }, (e) => e instanceof Error);
    assert.ok(n >= 1 && n <= 4, `${n} chunks before the cut`);
  });

  await check('stall: the SDK times out', async () => {
    await expectThrow(az('stall', { timeout: 300 }).chat.completions.create({ model: 'x', messages: [user('a')] }), APIConnectionError);
  });

  void APIError;
}

await run(main);
