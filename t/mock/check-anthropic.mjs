#!/usr/bin/env node
// Fidelity check of t/mock/anthropic-mock.mjs against the official `@anthropic-ai/sdk` client
// (installed in t/node_modules): if the SDK parses what the mock says (answers, event streams,
// tool-input JSON deltas, errors), the mock speaks Anthropic's wire format. Starts the mock on a
// free port, prints "N passed, N failed"; exits non-zero on any failure.
//
//   node t/mock/check-anthropic.mjs

import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { startMock, check, expectThrow, run } from './check-lib.mjs';

const KEY = 'sk-ant-mock-check';
const TOOLS = [
  { name: 'lookup', description: 'look something up', input_schema: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] } },
  { name: 'other', input_schema: { type: 'object', properties: {} } },
];
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

async function main() {
  const { base } = await startMock('anthropic-mock.mjs', { env: { ANTHROPIC_MOCK_REQUIRE_KEY: KEY } });
  const client = new Anthropic({ apiKey: KEY, baseURL: base, maxRetries: 0, timeout: 10000 });
  const user = (content) => ({ role: 'user', content });

  await check('plain message', async () => {
    const m = await client.messages.create({ model: 'claude-haiku-4-5', max_tokens: 100, system: 'terse', messages: [user('hello there')] });
    assert.equal(m.type, 'message');
    assert.equal(m.role, 'assistant');
    assert.deepEqual(m.content, [{ type: 'text', text: 'Echo: hello there' }]);
    assert.equal(m.stop_reason, 'end_turn');
    assert.equal(m.usage.input_tokens, 1 + 2 + 1);
    assert.equal(m.usage.output_tokens, 3);
    const log = await (await fetch(`${base}/__mock/requests`)).json();
    const q = log[log.length - 1];
    assert.equal(q.path, '/v1/messages');
    assert.ok(q.headers['anthropic-version'], 'the SDK sends anthropic-version');
  });

  await check('stream: SDK helper assembles text and final usage', async () => {
    const s = client.messages.stream({ model: 'claude-haiku-4-5', max_tokens: 100, messages: [user('one two three four')] });
    let text = '';
    s.on('text', (t) => { text += t; });
    const m = await s.finalMessage();
    assert.equal(text, 'Echo: one two three four');
    assert.equal(m.content[0].text, text);
    assert.equal(m.stop_reason, 'end_turn');
    assert.equal(m.usage.output_tokens, 5);
    assert.equal(m.usage.input_tokens, 5);
  });

  await check('stream: raw events in the documented order', async () => {
    const stream = await client.messages.create({ model: 'claude-haiku-4-5', max_tokens: 100, stream: true, messages: [user('hi')] });
    const types = [];
    for await (const ev of stream) types.push(ev.type);
    assert.equal(types[0], 'message_start');
    assert.equal(types[1], 'content_block_start');
    assert.ok(types.includes('content_block_delta'));
    assert.deepEqual(types.slice(-3), ['content_block_stop', 'message_delta', 'message_stop']);
  });

  await check('tools: tool_use, then tool_result -> answer', async () => {
    const m = await client.messages.create({ model: 'claude-haiku-4-5', max_tokens: 100, tools: TOOLS, messages: [user('find cats')] });
    assert.equal(m.stop_reason, 'tool_use');
    const tu = m.content.find((b) => b.type === 'tool_use');
    assert.equal(tu.name, 'lookup');
    assert.match(tu.id, /^toolu_/);
    assert.deepEqual(tu.input, { q: 'find cats' });
    const m2 = await client.messages.create({
      model: 'claude-haiku-4-5', max_tokens: 100, tools: TOOLS,
      messages: [user('find cats'), { role: 'assistant', content: m.content },
        user([{ type: 'tool_result', tool_use_id: tu.id, content: 'three cats' }])],
    });
    assert.equal(m2.content[0].text, 'Tool said: three cats');
    assert.equal(m2.stop_reason, 'end_turn');
    const named = await client.messages.create({ model: 'c', max_tokens: 10, tools: TOOLS, tool_choice: { type: 'tool', name: 'other' }, messages: [user('x')] });
    assert.equal(named.content[0].name, 'other');
    const none = await client.messages.create({ model: 'c', max_tokens: 10, tools: TOOLS, tool_choice: { type: 'none' }, messages: [user('x')] });
    assert.equal(none.content[0].text, 'Echo: x');
  });

  await check('tools in a stream: the SDK parses the input_json_delta fragments', async () => {
    const s = client.messages.stream({ model: 'claude-haiku-4-5', max_tokens: 100, tools: TOOLS, messages: [user('weather in Paris please')] });
    const m = await s.finalMessage();
    assert.equal(m.stop_reason, 'tool_use');
    assert.deepEqual(m.content[0].input, { q: 'weather in Paris please' });
  });

  await check('a tool_use without its tool_result is refused (400)', async () => {
    const err = await expectThrow(client.messages.create({
      model: 'c', max_tokens: 10, tools: TOOLS,
      messages: [user('a'), { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_x', name: 'lookup', input: {} }] }, user('b')],
    }), Anthropic.BadRequestError);
    assert.match(err.message, /tool_result/);
  });

  await check('images: base64 and URL sources', async () => {
    const m = await client.messages.create({
      model: 'c', max_tokens: 10,
      messages: [user([{ type: 'text', text: 'what is this' },
        { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } },
        { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } }])],
    });
    assert.equal(m.content[0].text, 'Echo: what is this [images: 2]');
  });

  await check('missing max_tokens and unknown fields: 400 invalid_request_error', async () => {
    let err = await expectThrow(client.messages.create({ model: 'c', messages: [user('x')] }), Anthropic.BadRequestError);
    assert.equal(err.status, 400);
    assert.equal(err.error?.error?.type, 'invalid_request_error');
    err = await expectThrow(client.messages.create({ model: 'c', max_tokens: 5, n: 2, messages: [user('x')] }), Anthropic.BadRequestError);
    assert.match(err.message, /n: Extra inputs/);
    err = await expectThrow(client.messages.create({ model: 'c', max_tokens: 5, messages: [user('x'), user('y')] }), Anthropic.BadRequestError);
    assert.match(err.message, /alternate/);
  });

  await check('429: RateLimitError, retry-after 7', async () => {
    const err = await expectThrow(client.messages.create({ model: 'fail-429', max_tokens: 5, messages: [user('x')] }), Anthropic.RateLimitError);
    assert.equal(err.status, 429);
    assert.equal(err.headers.get('retry-after'), '7');
    assert.equal(err.error.error.type, 'rate_limit_error');
    assert.match(err.requestID ?? '', /^req_/);
  });

  await check('500: InternalServerError api_error', async () => {
    const err = await expectThrow(client.messages.create({ model: 'fail-500', max_tokens: 5, messages: [user('x')] }), Anthropic.InternalServerError);
    assert.equal(err.status, 500);
    assert.equal(err.error.error.type, 'api_error');
  });

  await check('529: overloaded_error (the SDK raises InternalServerError for any status >= 500)', async () => {
    const err = await expectThrow(client.messages.create({ model: 'fail-529', max_tokens: 5, messages: [user('x')] }), Anthropic.InternalServerError);
    assert.equal(err.status, 529);
    assert.equal(err.error.error.type, 'overloaded_error');
  });

  await check('401: wrong key -> AuthenticationError', async () => {
    const bad = new Anthropic({ apiKey: 'sk-ant-wrong', baseURL: base, maxRetries: 0 });
    const err = await expectThrow(bad.messages.create({ model: 'c', max_tokens: 5, messages: [user('x')] }), Anthropic.AuthenticationError);
    assert.equal(err.error.error.type, 'authentication_error');
  });

  await check('error event mid-stream: the SDK raises overloaded_error', async () => {
    const stream = await client.messages.create({ model: 'error-stream', max_tokens: 10, stream: true, messages: [user('x y')] });
    let text = '';
    const err = await expectThrow((async () => {
      for await (const ev of stream) if (ev.type === 'content_block_delta') text += ev.delta.text;
    })(), Anthropic.APIError);
    assert.equal(err.error?.error?.type, 'overloaded_error');
    assert.ok(text.length > 0, 'text before the error');
  });

  await check('cut stream: the SDK sees the stream end without message_stop', async () => {
    const s = client.messages.stream({ model: 'cut', max_tokens: 10, messages: [user('a b c d e')] });
    s.on('error', () => {});
    await expectThrow(s.finalMessage());
  });

  await check('stall: the SDK times out', async () => {
    const quick = new Anthropic({ apiKey: KEY, baseURL: base, maxRetries: 0, timeout: 500 });
    await expectThrow(quick.messages.create({ model: 'stall', max_tokens: 5, messages: [user('x')] }), Anthropic.APIConnectionTimeoutError);
  });

}

await run(main);
