#!/usr/bin/env node
// Fidelity check of t/mock/compat-mock.mjs with the official `openai` npm client (the client
// every one of these providers documents): for each profile, at its base URL, a plain and a
// streamed completion, a tool call (Perplexity: refused), a 429 with retry-after, a 500, a cut
// stream, and the documented rejection the gateway must fix. Prints "N passed, N failed".
//
//   node t/mock/check-compat.mjs

import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startMock, check as checkWith, run } from './check-lib.mjs';

const BASES = {
  deepseek: '', mistral: '/v1', xai: '/v1', groq: '/openai/v1', cerebras: '/v1', sambanova: '/v1',
  together: '/v1', fireworks: '/inference/v1', perplexity: '', ai21: '/studio/v1',
  deepinfra: '/v1/openai', nebius: '/v1', novita: '/openai',
};
const TOOLS = [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string' } } } } }];

const check = (name, fn) => checkWith(name, fn, { quiet: true, stackLines: 4 });

async function expectStatus(promise, status) {
  try {
    await promise;
  } catch (e) {
    assert.equal(e.status, status, `status ${e.status}: ${e.message}`);
    return e;
  }
  throw new Error(`expected HTTP ${status}`);
}

const { port } = await startMock('compat-mock.mjs');
await run(async () => {
  for (const [name, suffix] of Object.entries(BASES)) {
    const client = new OpenAI({ apiKey: 'k-test', baseURL: `http://127.0.0.1:${port}/${name}${suffix}`, maxRetries: 0, timeout: 5000 });
    const msgs = [{ role: 'user', content: 'hello there' }];
    await check(`${name} plain`, async () => {
      const r = await client.chat.completions.create({ model: 'm', messages: msgs });
      assert.equal(r.choices[0].message.content, 'Echo: hello there');
      assert.ok(r.usage.prompt_tokens > 0);
      if (name === 'perplexity') assert.ok(Array.isArray(r.citations) && Array.isArray(r.search_results));
      if (name === 'deepseek') assert.ok(r.usage.prompt_cache_hit_tokens >= 0);
    });
    await check(`${name} stream`, async () => {
      const s = await client.chat.completions.create({ model: 'm', messages: msgs, stream: true, stream_options: { include_usage: true } });
      let text = '';
      let usage = null;
      for await (const c of s) {
        text += c.choices[0]?.delta?.content ?? '';
        if (c.usage) usage = c.usage;
      }
      assert.equal(text, 'Echo: hello there');
      assert.ok(usage && usage.total_tokens > 0);
    });
    if (name === 'perplexity') {
      await check(`${name} tools refused`, () => expectStatus(client.chat.completions.create({ model: 'm', messages: msgs, tools: TOOLS }), 400));
    } else {
      await check(`${name} tool call`, async () => {
        const r = await client.chat.completions.create({ model: 'm', messages: msgs, tools: TOOLS });
        const tc = r.choices[0].message.tool_calls[0];
        assert.equal(r.choices[0].finish_reason, 'tool_calls');
        assert.equal(tc.function.name, 'lookup');
        if (name === 'mistral') assert.match(tc.id, /^[a-zA-Z0-9]{9}$/);
        const r2 = await client.chat.completions.create({
          model: 'm',
          messages: [...msgs, r.choices[0].message, { role: 'tool', tool_call_id: tc.id, content: '42' }],
          tools: TOOLS,
        });
        assert.equal(r2.choices[0].message.content, 'Tool said: 42');
      });
    }
    await check(`${name} 429`, async () => {
      const e = await expectStatus(client.chat.completions.create({ model: 'fail-429', messages: msgs }), 429);
      assert.equal(e.headers.get('retry-after'), '7');
    });
    await check(`${name} 500`, () => expectStatus(client.chat.completions.create({ model: 'fail-500', messages: msgs }), 500));
    await check(`${name} cut stream`, async () => {
      const s = await client.chat.completions.create({ model: 'cut', messages: msgs, stream: true });
      await assert.rejects(async () => { for await (const c of s) void c; });
    });
  }
  const c = (n) => new OpenAI({ apiKey: 'k', baseURL: `http://127.0.0.1:${port}/${n}${BASES[n]}`, maxRetries: 0 });
  await check('groq rejects logprobs', () => expectStatus(c('groq').chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }], logprobs: true }), 400));
  await check('cerebras rejects presence_penalty', () => expectStatus(c('cerebras').chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }], presence_penalty: 1 }), 400));
  await check('xai rejects stop on grok-4', () => expectStatus(c('xai').chat.completions.create({ model: 'grok-4', messages: [{ role: 'user', content: 'x' }], stop: ['z'] }), 400));
  await check('mistral rejects call_ ids', () => expectStatus(c('mistral').chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: null, tool_calls: [{ id: 'call_abc', type: 'function', function: { name: 'f', arguments: '{}' } }] }, { role: 'tool', tool_call_id: 'call_abc', content: '1' }] }), 400));
  await check('ai21 rejects content parts', () => expectStatus(c('ai21').chat.completions.create({ model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: 'x' }] }] }), 422));
  await check('deepseek-reasoner rejects logprobs', () => expectStatus(c('deepseek').chat.completions.create({ model: 'deepseek-reasoner', messages: [{ role: 'user', content: 'x' }], logprobs: true }), 400));
});
