#!/usr/bin/env node
// Fidelity check of t/mock/openai-mock.mjs against the official `openai` npm client
// (installed in t/node_modules). Starts the mock on a free port, drives it through the SDK
// and prints "N passed, N failed"; exits non-zero on any failure.
//
//   node t/mock/check-fidelity.mjs

import assert from 'node:assert/strict';
import OpenAI from 'openai';

import { startMock, check, expectThrow, run } from './check-lib.mjs';

const user = (content) => ({ role: 'user', content });
const TOOLS = [
  {
    type: 'function',
    function: {
      name: 'lookup',
      description: 'look something up',
      parameters: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] },
    },
  },
  { type: 'function', function: { name: 'other', parameters: { type: 'object', properties: {} } } },
];

async function main() {
  const mock = await startMock('openai-mock.mjs', { env: { MOCK_CHUNK_DELAY_MS: '1' }, args: ['--host', '127.0.0.1'] });
  const client = new OpenAI({ apiKey: 'sk-test', baseURL: `${mock.base}/v1`, maxRetries: 0, timeout: 10000 });

  await check('plain completion: shape, echo, usage, headers', async () => {
    const { data, response } = await client.chat.completions
      .create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'system', content: 'You are terse.' }, user('hello there world')],
      })
      .withResponse();
    assert.match(data.id, /^chatcmpl-[A-Za-z0-9]{20,}$/);
    assert.equal(data.object, 'chat.completion');
    assert.equal(data.model, 'gpt-4o-mini');
    assert.equal(typeof data.created, 'number');
    assert.match(data.system_fingerprint, /^fp_/);
    assert.equal(data.choices.length, 1);
    const c = data.choices[0];
    assert.equal(c.index, 0);
    assert.equal(c.finish_reason, 'stop');
    assert.equal(c.logprobs, null);
    assert.deepEqual(c.message, { role: 'assistant', content: 'Echo: hello there world', refusal: null, annotations: [] });
    // prompt: "You are terse." (3) + 1, "hello there world" (3) + 1 = 8; completion: 4 words
    assert.equal(data.usage.prompt_tokens, 8);
    assert.equal(data.usage.completion_tokens, 4);
    assert.equal(data.usage.total_tokens, 12);
    assert.deepEqual(data.usage.prompt_tokens_details, { cached_tokens: 0, audio_tokens: 0 });
    assert.equal(data.usage.completion_tokens_details.reasoning_tokens, 0);
    assert.match(response.headers.get('content-type'), /^application\/json/);
    assert.match(response.headers.get('x-request-id'), /^req_/);
    assert.ok(Number(response.headers.get('openai-processing-ms')) >= 1);
    for (const h of ['limit', 'remaining', 'reset']) {
      assert.ok(response.headers.get(`x-ratelimit-${h}-requests`), `x-ratelimit-${h}-requests`);
      assert.ok(response.headers.get(`x-ratelimit-${h}-tokens`), `x-ratelimit-${h}-tokens`);
    }
  });

  await check('array content with images', async () => {
    const r = await client.chat.completions.create({
      model: 'gpt-4o',
      messages: [
        user([
          { type: 'text', text: 'what is' },
          { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
          { type: 'text', text: 'this' },
          { type: 'image_url', image_url: { url: 'data:image/png;base64,BBBB', detail: 'low' } },
        ]),
      ],
    });
    assert.equal(r.choices[0].message.content, 'Echo: what is this [images: 2]');
    assert.equal(r.usage.prompt_tokens, 4);
  });

  await check('stream with include_usage', async () => {
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [user('one two three four')],
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const ch of stream) chunks.push(ch);
    assert.ok(chunks.length >= 5, `only ${chunks.length} chunks`);
    const ids = new Set(chunks.map((c) => c.id));
    assert.equal(ids.size, 1);
    for (const c of chunks) {
      assert.equal(c.object, 'chat.completion.chunk');
      assert.equal(c.model, 'gpt-4o-mini');
    }
    assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: '', refusal: null });
    const contentChunks = chunks.filter((c) => c.choices[0] && typeof c.choices[0].delta.content === 'string' && c.choices[0].delta.content !== '');
    assert.ok(contentChunks.length >= 2, 'content split over several deltas');
    const text = chunks.map((c) => (c.choices[0] && c.choices[0].delta.content) || '').join('');
    assert.equal(text, 'Echo: one two three four');
    const fin = chunks.filter((c) => c.choices[0] && c.choices[0].finish_reason);
    assert.equal(fin.length, 1);
    assert.equal(fin[0].choices[0].finish_reason, 'stop');
    const last = chunks[chunks.length - 1];
    assert.deepEqual(last.choices, []);
    assert.equal(last.usage.prompt_tokens, 5);
    assert.equal(last.usage.completion_tokens, 5);
    assert.equal(last.usage.total_tokens, 10);
    for (const c of chunks.slice(0, -1)) assert.equal(c.usage, null);
  });

  await check('stream without include_usage has no usage key', async () => {
    const r = await fetch(`${mock.base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', stream: true, messages: [user('hi')] }),
    });
    assert.match(r.headers.get('content-type'), /^text\/event-stream/);
    const raw = await r.text();
    assert.ok(raw.endsWith('data: [DONE]\n\n'));
    const events = raw.split('\n\n').filter(Boolean);
    for (const e of events) assert.ok(e.startsWith('data: '), e);
    for (const e of events.slice(0, -1)) assert.ok(!('usage' in JSON.parse(e.slice(6))));
  });

  await check('stream tool call assembled by chat.completions.stream()', async () => {
    const runner = client.chat.completions.stream({
      model: 'gpt-4o-mini',
      messages: [user('weather in Paris today')],
      tools: TOOLS,
      stream_options: { include_usage: true },
    });
    let deltas = 0;
    runner.on('chunk', (ch) => {
      if (ch.choices[0] && ch.choices[0].delta.tool_calls) deltas++;
    });
    const final = await runner.finalChatCompletion();
    assert.ok(deltas >= 3, `tool call split over deltas (${deltas})`);
    const c = final.choices[0];
    assert.equal(c.finish_reason, 'tool_calls');
    assert.equal(c.message.content, null);
    assert.equal(c.message.tool_calls.length, 1);
    const tc = c.message.tool_calls[0];
    assert.match(tc.id, /^call_[A-Za-z0-9]{10,}$/);
    assert.equal(tc.type, 'function');
    assert.equal(tc.function.name, 'lookup');
    assert.deepEqual(JSON.parse(tc.function.arguments), { q: 'weather in Paris today' });
    assert.ok(final.usage && final.usage.total_tokens > 0);
  });

  await check('non-stream tool call, then tool result round trip', async () => {
    const messages = [user('find cats')];
    const r1 = await client.chat.completions.create({ model: 'gpt-4o', messages, tools: TOOLS });
    const c = r1.choices[0];
    assert.equal(c.finish_reason, 'tool_calls');
    assert.equal(c.message.content, null);
    const tc = c.message.tool_calls[0];
    assert.equal(tc.function.name, 'lookup');
    assert.equal(tc.function.arguments, '{"q":"find cats"}');
    messages.push(c.message, { role: 'tool', tool_call_id: tc.id, content: 'three cats found' });
    const r2 = await client.chat.completions.create({ model: 'gpt-4o', messages, tools: TOOLS });
    assert.equal(r2.choices[0].finish_reason, 'stop');
    assert.equal(r2.choices[0].message.content, 'Tool said: three cats found');
  });

  await check('429 rate limit -> RateLimitError with retry-after', async () => {
    const err = await expectThrow(
      client.chat.completions.create({ model: 'fail-429', messages: [user('x')] }),
      OpenAI.RateLimitError,
    );
    assert.equal(err.status, 429);
    assert.equal(err.code, 'rate_limit_exceeded');
    assert.equal(err.type, 'requests');
    assert.equal(err.param, null);
    assert.match(err.message, /Rate limit reached for requests/);
    assert.equal(err.headers.get('retry-after'), '7');
    assert.equal(err.headers.get('retry-after-ms'), '7000');
    assert.equal(err.headers.get('x-ratelimit-remaining-requests'), '0');
    assert.match(err.requestID, /^req_/);
  });

  await check('429 quota (pinned name mock/quota-429) -> RateLimitError insufficient_quota', async () => {
    const err = await expectThrow(
      client.chat.completions.create({ model: 'mock/quota-429', messages: [user('x')] }),
      OpenAI.RateLimitError,
    );
    assert.equal(err.code, 'insufficient_quota');
    assert.equal(err.type, 'insufficient_quota');
    assert.equal(err.headers.get('retry-after'), null);
  });

  await check('500 -> InternalServerError', async () => {
    const err = await expectThrow(
      client.chat.completions.create({ model: 'fail-500', messages: [user('x')] }),
      OpenAI.InternalServerError,
    );
    assert.equal(err.status, 500);
    assert.equal(err.type, 'server_error');
    assert.match(err.message, /The server had an error while processing your request/);
  });

  await check('503 -> InternalServerError server_is_overloaded', async () => {
    const err = await expectThrow(
      client.chat.completions.create({ model: 'fail-503', messages: [user('x')] }),
      OpenAI.InternalServerError,
    );
    assert.equal(err.status, 503);
    assert.equal(err.code, 'server_is_overloaded');
  });

  await check('400 -> BadRequestError with param', async () => {
    const err = await expectThrow(
      client.chat.completions.create({ model: 'fail-400', messages: [user('x')] }),
      OpenAI.BadRequestError,
    );
    assert.equal(err.param, 'max_tokens');
    assert.equal(err.code, 'unsupported_parameter');
    assert.equal(err.type, 'invalid_request_error');
  });

  await check('401 -> AuthenticationError invalid_api_key', async () => {
    const err = await expectThrow(
      client.chat.completions.create({ model: 'fail-401', messages: [user('x')] }),
      OpenAI.AuthenticationError,
    );
    assert.equal(err.code, 'invalid_api_key');
  });

  await check('cut stream -> SDK iteration throws or ends without finish_reason', async () => {
    const stream = await client.chat.completions.create({
      model: 'cut',
      messages: [user('alpha beta gamma delta')],
      stream: true,
    });
    const got = [];
    let threw = null;
    try {
      for await (const ch of stream) got.push(ch);
    } catch (e) {
      threw = e;
    }
    const finished = got.some((c) => c.choices[0] && c.choices[0].finish_reason);
    assert.ok(threw || !finished, 'cut stream looked complete');
    assert.equal(finished, false);
    assert.equal(got.length, 3, `role + two content chunks, got ${got.length}`);
    assert.equal(got.map((c) => c.choices[0].delta.content).join(''), 'Echo: alpha');
  });

  await check('cut stream -> finalChatCompletion() rejects', async () => {
    const runner = client.chat.completions.stream({ model: 'cut', messages: [user('alpha beta gamma')] });
    runner.on('error', () => {});
    await expectThrow(runner.finalChatCompletion());
  });

  await check('cut non-stream -> SDK throws', async () => {
    await expectThrow(client.chat.completions.create({ model: 'cut', messages: [user('a b c')] }));
  });

  await check('garbage -> SDK throws', async () => {
    await expectThrow(client.chat.completions.create({ model: 'garbage', messages: [user('a')] }));
  });

  await check('slow-300 waits, then answers normally', async () => {
    const t0 = Date.now();
    const r = await client.chat.completions.create({ model: 'slow-300', messages: [user('zz')] });
    assert.ok(Date.now() - t0 >= 290, `took ${Date.now() - t0} ms`);
    assert.equal(r.choices[0].message.content, 'Echo: zz');
  });

  await check('stall -> SDK timeout', async () => {
    const c2 = new OpenAI({ apiKey: 'k', baseURL: `${mock.base}/v1`, maxRetries: 0, timeout: 400 });
    await expectThrow(c2.chat.completions.create({ model: 'stall', messages: [user('a')] }), OpenAI.APIConnectionTimeoutError);
  });

  await check('stall-stream -> first chunk then silence', async () => {
    const ac = new AbortController();
    const stream = await client.chat.completions.create(
      { model: 'stall-stream', messages: [user('a b')], stream: true },
      { signal: ac.signal },
    );
    const got = [];
    const timer = setTimeout(() => ac.abort(), 500);
    try {
      for await (const ch of stream) got.push(ch);
    } catch (e) {
      // aborted
    }
    clearTimeout(timer);
    assert.equal(got.length, 1);
    assert.equal(got[0].choices[0].delta.role, 'assistant');
  });

  await check('models.list()', async () => {
    const list = await client.models.list();
    const ids = list.data.map((m) => m.id);
    assert.ok(ids.includes('gpt-4o-mini'));
    for (const m of list.data) {
      assert.equal(m.object, 'model');
      assert.equal(typeof m.created, 'number');
      assert.equal(typeof m.owned_by, 'string');
    }
  });

  await check('bad JSON -> 400, unknown path -> 404 (OpenAI error shape)', async () => {
    let r = await fetch(`${mock.base}/v1/chat/completions`, { method: 'POST', body: '{nope' });
    assert.equal(r.status, 400);
    let j = await r.json();
    assert.equal(j.error.type, 'invalid_request_error');
    assert.ok('param' in j.error && 'code' in j.error);
    r = await fetch(`${mock.base}/v1/nothing`, { method: 'POST', body: '{}' });
    assert.equal(r.status, 404);
    j = await r.json();
    assert.equal(j.error.message, 'Invalid URL (POST /v1/nothing)');
  });

  await check('introspection: /__mock/requests and /__mock/stats', async () => {
    let r = await fetch(`${mock.base}/__mock/requests`, { method: 'DELETE' });
    assert.equal(r.status, 200);
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [user('logged')] }, { headers: { 'x-test': 'yes' } });
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [user('again')] });
    await expectThrow(client.chat.completions.create({ model: 'fail-500', messages: [user('x')] }));
    r = await fetch(`${mock.base}/__mock/requests`);
    const log = await r.json();
    assert.equal(log.length, 3);
    assert.equal(log[0].method, 'POST');
    assert.equal(log[0].path, '/v1/chat/completions');
    assert.equal(log[0].headers['x-test'], 'yes');
    assert.equal(log[0].headers.authorization, 'Bearer sk-test');
    assert.deepEqual(log[0].body.messages, [user('logged')]);
    r = await fetch(`${mock.base}/__mock/stats`);
    const st = await r.json();
    assert.deepEqual(st, { total: 3, models: { 'gpt-4o-mini': 2, 'fail-500': 1 } });
  });

  const keyed = await startMock('openai-mock.mjs', { env: { MOCK_REQUIRE_KEY: 'sk-right-key-123' }, args: ['--host', '127.0.0.1'] });
  await check('MOCK_REQUIRE_KEY enforces the Authorization header', async () => {
    const bad = new OpenAI({ apiKey: 'sk-wrong-key-456', baseURL: `${keyed.base}/v1`, maxRetries: 0 });
    const err = await expectThrow(bad.chat.completions.create({ model: 'm', messages: [user('a')] }), OpenAI.AuthenticationError);
    assert.equal(err.code, 'invalid_api_key');
    const r = await fetch(`${keyed.base}/v1/chat/completions`, { method: 'POST', body: '{}' });
    assert.equal(r.status, 401);
    const good = new OpenAI({ apiKey: 'sk-right-key-123', baseURL: `${keyed.base}/v1`, maxRetries: 0 });
    const ok = await good.chat.completions.create({ model: 'm', messages: [user('a')] });
    assert.equal(ok.choices[0].message.content, 'Echo: a');
  });

  await check('SIGTERM stops the mock promptly (with a stalled request open)', async () => {
    fetch(`${keyed.base}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk-right-key-123' },
      body: JSON.stringify({ model: 'stall', messages: [user('a')] }),
    }).catch(() => {});
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    const exited = new Promise((r) => keyed.child.once('exit', (code, sig) => r({ code, sig })));
    keyed.child.kill('SIGTERM');
    const { code } = await exited;
    assert.equal(code, 0);
    assert.ok(Date.now() - t0 < 1500, `took ${Date.now() - t0} ms`);
  });
}

await run(main, 'setup');
