#!/usr/bin/env node
// Fidelity check of t/mock/cohere-mock.mjs. No Cohere SDK is installed, so the mock is driven
// with fetch and an SSE reader, and what it sends is compared with the examples in Cohere's
// v2 documentation (every key path of an example below must be in the mock's output with the
// same JSON type). The examples follow the shapes of:
//   - chat answer:   https://docs.cohere.com/reference/chat (response example; message.content
//                    text parts, finish_reason, usage.billed_units / usage.tokens)
//   - stream events: https://docs.cohere.com/v2/docs/streaming ("Basic Chat Stream Events")
//   - tool events:   https://docs.cohere.com/docs/tool-use-streaming ("Events stream")
//   - images:        https://docs.cohere.com/v2/docs/image-inputs (image_url content parts)
// and the types of Cohere's own SDK (cohere-ai/cohere-python src/cohere/types/:
// chat_message_end_event_delta.py, chat_tool_call_start_event_delta_message.py — tool_calls is
// one object in a stream event —, chat_finish_reason.py, image_url.py, tool_message_v2.py).
// The ids and numbers in the examples are illustrative; only their shape is compared.
// Prints "N passed, N failed"; exits non-zero on any failure.
//
//   node t/mock/check-cohere.mjs

import assert from 'node:assert/strict';
import { startMock, check, run } from './check-lib.mjs';

const KEY = 'co-test-key';

// ---------------------------------------------------------------- documented examples

const DOC_ANSWER = {
  id: 'c14c80c3-18eb-4519-9460-6c92edd8cfb4',
  finish_reason: 'COMPLETE',
  message: { role: 'assistant', content: [{ type: 'text', text: 'LLMs stand for Large Language Models...' }] },
  usage: { billed_units: { input_tokens: 5, output_tokens: 418 }, tokens: { input_tokens: 71, output_tokens: 418 } },
};
const DOC_TOOL_ANSWER = {
  id: '7f2c0ab3-e0d0-4b3e-8e83-ac8a5a3b6a0e',
  finish_reason: 'TOOL_CALL',
  message: {
    role: 'assistant',
    tool_plan: 'I will search for the weather in Toronto.',
    tool_calls: [{ id: 'get_weather_1byjy32y4hvq', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Toronto"}' } }],
  },
  usage: { billed_units: { input_tokens: 37, output_tokens: 28 }, tokens: { input_tokens: 913, output_tokens: 81 } },
};
const DOC_EVENTS = {
  'message-start': { id: '29f14a5a-11de-4cae-9800-25e4747408ea', type: 'message-start', delta: { message: { role: 'assistant', content: [], tool_plan: '', tool_calls: [], citations: [] } } },
  'content-start': { type: 'content-start', index: 0, delta: { message: { content: { type: 'text', text: '' } } } },
  'content-delta': { type: 'content-delta', index: 0, delta: { message: { content: { text: 'A' } } } },
  'content-end': { type: 'content-end', index: 0 },
  'tool-plan-delta': { type: 'tool-plan-delta', delta: { message: { tool_plan: 'I' } } },
  'tool-call-start': { type: 'tool-call-start', index: 0, delta: { message: { tool_calls: { id: 'get_weather_nsz5zm3w56q3', type: 'function', function: { name: 'get_weather', arguments: '' } } } } },
  'tool-call-delta': { type: 'tool-call-delta', index: 0, delta: { message: { tool_calls: { function: { arguments: '{\n    "' } } } } },
  'tool-call-end': { type: 'tool-call-end', index: 0 },
  'message-end': { type: 'message-end', delta: { finish_reason: 'COMPLETE', usage: { billed_units: { input_tokens: 3, output_tokens: 258 }, tokens: { input_tokens: 69, output_tokens: 258 } } } },
};

const typeOf = (v) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
/** every key path of `doc` is in `got` with the same JSON type (arrays: their first elements) */
function sameShape(got, doc, where = '$') {
  assert.equal(typeOf(got), typeOf(doc), `${where}: ${typeOf(got)} where the docs have ${typeOf(doc)}`);
  if (Array.isArray(doc) && doc.length) {
    assert.ok(got.length > 0, `${where}: empty array where the docs have elements`);
    sameShape(got[0], doc[0], `${where}[0]`);
  } else if (typeOf(doc) === 'object') {
    for (const k of Object.keys(doc)) {
      assert.ok(Object.hasOwn(got, k), `${where}.${k} missing`);
      sameShape(got[k], doc[k], `${where}.${k}`);
    }
  }
}

// ---------------------------------------------------------------- harness

let BASE;
async function chat(body, { key = KEY } = {}) {
  const headers = { 'content-type': 'application/json', accept: body.stream ? 'text/event-stream' : 'application/json' };
  if (key) headers.authorization = `Bearer ${key}`;
  return fetch(`${BASE}/v2/chat`, { method: 'POST', headers, body: JSON.stringify(body) });
}

/** reads an SSE body into [{event, data}] (LF/CRLF); `cut` is set when the transport failed */
async function events(res) {
  const out = [];
  let buf = '';
  let cut = false;
  const dec = new TextDecoder();
  try {
    for await (const chunk of res.body) {
      buf += dec.decode(chunk, { stream: true });
      let i;
      while ((i = buf.search(/\r?\n\r?\n/)) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i).replace(/^\r?\n\r?\n/, '');
        let event = '';
        const data = [];
        for (const line of block.split(/\r?\n/)) {
          if (line.startsWith('event:')) event = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        }
        if (data.length) out.push({ event, data: JSON.parse(data.join('\n')) });
      }
    }
  } catch {
    cut = true;
  }
  return { list: out, cut, rest: buf };
}

const user = (content) => ({ role: 'user', content });
const TOOLS = [{ type: 'function', function: { name: 'get_weather', description: 'gets the weather', parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] } } }];

async function main() {
  BASE = (await startMock('cohere-mock.mjs', { env: { MOCK_CHUNK_DELAY_MS: '1', MOCK_REQUIRE_KEY: KEY } })).base;

  await check('plain answer has the documented shape', async () => {
    const r = await chat({ model: 'command-a-03-2025', messages: [{ role: 'system', content: 'Be terse.' }, user('what is an LLM')] });
    assert.equal(r.status, 200);
    const j = await r.json();
    sameShape(j, DOC_ANSWER);
    assert.equal(j.message.content[0].text, 'Echo: what is an LLM');
    assert.equal(j.finish_reason, 'COMPLETE');
    assert.equal(j.usage.billed_units.input_tokens, 2 + 4 + 2);
    assert.equal(j.usage.tokens.input_tokens, j.usage.billed_units.input_tokens + 7);
  });

  await check('stream: documented events in the documented order, event: line = type', async () => {
    const r = await chat({ model: 'command-a-03-2025', messages: [user('one two three')], stream: true });
    assert.match(r.headers.get('content-type'), /^text\/event-stream/);
    const { list, cut } = await events(r);
    assert.ok(!cut);
    for (const e of list) {
      assert.equal(e.event, e.data.type);
      if (DOC_EVENTS[e.data.type]) sameShape(e.data, DOC_EVENTS[e.data.type], e.data.type);
    }
    const kinds = list.map((e) => e.data.type);
    assert.equal(kinds[0], 'message-start');
    assert.equal(kinds[1], 'content-start');
    assert.equal(kinds.at(-2), 'content-end');
    assert.equal(kinds.at(-1), 'message-end');
    assert.ok(kinds.filter((k) => k === 'content-delta').length >= 2);
    assert.equal(list.filter((e) => e.data.type === 'content-delta').map((e) => e.data.delta.message.content.text).join(''), 'Echo: one two three');
    assert.equal(list.at(-1).data.delta.finish_reason, 'COMPLETE');
  });

  await check('tools: TOOL_CALL answer with tool_plan and tool_calls as documented', async () => {
    const r = await chat({ model: 'command-a-03-2025', messages: [user('weather in Toronto')], tools: TOOLS });
    const j = await r.json();
    sameShape(j, DOC_TOOL_ANSWER);
    assert.equal(j.finish_reason, 'TOOL_CALL');
    assert.deepEqual(JSON.parse(j.message.tool_calls[0].function.arguments), { q: 'weather in Toronto' });
  });

  await check('tools stream: tool-plan-delta, tool-call-start/-delta/-end, message-end TOOL_CALL', async () => {
    const { list } = await events(await chat({ model: 'command-a-03-2025', messages: [user('weather in Toronto')], tools: TOOLS, stream: true }));
    for (const e of list) if (DOC_EVENTS[e.data.type]) sameShape(e.data, DOC_EVENTS[e.data.type], e.data.type);
    const kinds = list.map((e) => e.data.type);
    for (const k of ['tool-plan-delta', 'tool-call-start', 'tool-call-delta', 'tool-call-end']) assert.ok(kinds.includes(k), k);
    const args = list.filter((e) => e.data.type === 'tool-call-delta').map((e) => e.data.delta.message.tool_calls.function.arguments).join('');
    assert.deepEqual(JSON.parse(args), { q: 'weather in Toronto' });
    assert.equal(list.at(-1).data.delta.finish_reason, 'TOOL_CALL');
  });

  await check('tool round trip: assistant tool_calls + tool message with tool_call_id', async () => {
    const first = await (await chat({ model: 'command-a-03-2025', messages: [user('weather')], tools: TOOLS })).json();
    const tc = first.message.tool_calls[0];
    const r = await chat({
      model: 'command-a-03-2025', tools: TOOLS,
      messages: [user('weather'), { role: 'assistant', tool_plan: first.message.tool_plan, tool_calls: first.message.tool_calls },
        { role: 'tool', tool_call_id: tc.id, content: [{ type: 'document', document: { data: '{"temp":"20C"}' } }] }],
    });
    assert.equal((await r.json()).message.content[0].text, 'Tool said: {"temp":"20C"}');
  });

  await check('images: image_url parts on a vision model; 400 elsewhere', async () => {
    const img = user([{ type: 'text', text: 'what is this' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA', detail: 'low' } }]);
    const ok = await (await chat({ model: 'command-a-vision-07-2025', messages: [img] })).json();
    assert.equal(ok.message.content[0].text, 'Echo: what is this [images: 1]');
    const r = await chat({ model: 'command-a-03-2025', messages: [img] });
    assert.equal(r.status, 400);
    sameShape(await r.json(), { id: 'x', message: 'y' });
  });

  await check('OpenAI-only fields are refused (the adapter must translate them)', async () => {
    const r = await chat({ model: 'command-a-03-2025', messages: [user('a')], top_p: 0.5 });
    assert.equal(r.status, 400);
  });

  await check('429: {id, message} and retry-after', async () => {
    const r = await chat({ model: 'fail-429', messages: [user('a')] });
    assert.equal(r.status, 429);
    assert.equal(r.headers.get('retry-after'), '7');
    const j = await r.json();
    sameShape(j, { id: 'x', message: 'y' });
    assert.match(j.message, /Trial key/);
  });

  await check('500', async () => {
    const r = await chat({ model: 'fail-500', messages: [user('a')] });
    assert.equal(r.status, 500);
    sameShape(await r.json(), { id: 'x', message: 'y' });
  });

  await check('auth: no key 401, wrong key 498', async () => {
    assert.equal((await chat({ model: 'm', messages: [user('a')] }, { key: '' })).status, 401);
    assert.equal((await chat({ model: 'm', messages: [user('a')] }, { key: 'nope' })).status, 498);
  });

  await check('ERROR finish: message-end says ERROR', async () => {
    const { list } = await events(await chat({ model: 'error-finish', messages: [user('a')], stream: true }));
    assert.equal(list.at(-1).data.delta.finish_reason, 'ERROR');
  });

  await check('cut stream: ends without message-end', async () => {
    const { list, cut } = await events(await chat({ model: 'cut', messages: [user('a b c d e')], stream: true }));
    assert.ok(cut || list.every((e) => e.data.type !== 'message-end'));
    assert.ok(!list.some((e) => e.data.type === 'message-end'));
  });

  await check('stall: nothing comes', async () => {
    const ctl = new AbortController();
    const t = setTimeout(() => ctl.abort(), 300);
    await assert.rejects(fetch(`${BASE}/v2/chat`, {
      method: 'POST', signal: ctl.signal,
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'stall', messages: [user('a')] }),
    }));
    clearTimeout(t);
  });
}

await run(main);
