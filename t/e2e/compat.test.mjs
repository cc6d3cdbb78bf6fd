// The thirteen OpenAI-compatible providers through the gateway with the official openai client
// (t/conf/providers/compat.conf -> t/mock/compat-mock.mjs): for every profile a plain and a
// streamed completion (with and without include_usage) and a tool-call round trip, usage and
// cost on the decision, the provider's path and credential, and its documented quirks fixed in
// what the mock received (the mock refuses the unfixed request, so a 200 proves the fix).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import {
  assertClose, chat, checkDecision, costOf, createOrg, expectOpenAIError, getDecision, nonce,
  openaiClient, sse,
} from './lib.mjs';

const MOCK = `http://127.0.0.1:${process.env.FLOOPY_MOCK_COMPAT_PORT}`;
const KEY = fs.readFileSync(path.join(process.env.FLOOPY_ROOT ?? process.cwd(), 't/conf/providers/compat.key'), 'utf8').trim();

// provider -> [priced model, path the provider's endpoint has, price]
const P = {
  deepseek: ['deepseek-chat', '/deepseek/chat/completions', { input: 0.28, output: 0.42, cached_input: 0.028 }],
  mistral: ['mistral-small-latest', '/mistral/v1/chat/completions', { input: 0.1, output: 0.3 }],
  xai: ['grok-4', '/xai/v1/chat/completions', { input: 3, output: 15, cached_input: 0.75 }],
  groq: ['llama-3.1-8b-instant', '/groq/openai/v1/chat/completions', { input: 0.05, output: 0.08 }],
  cerebras: ['llama3.1-8b', '/cerebras/v1/chat/completions', { input: 0.1, output: 0.1 }],
  sambanova: ['Meta-Llama-3.3-70B-Instruct', '/sambanova/v1/chat/completions', { input: 0.6, output: 1.2 }],
  together: ['meta-llama/Llama-3.3-70B-Instruct-Turbo', '/together/v1/chat/completions', { input: 0.88, output: 0.88 }],
  fireworks: ['accounts/fireworks/models/llama-v3p3-70b-instruct', '/fireworks/inference/v1/chat/completions', { input: 0.9, output: 0.9 }],
  perplexity: ['sonar', '/perplexity/chat/completions', { input: 1, output: 1 }],
  ai21: ['jamba-mini', '/ai21/studio/v1/chat/completions', { input: 0.2, output: 0.4 }],
  deepinfra: ['deepseek-ai/DeepSeek-V3', '/deepinfra/v1/openai/chat/completions', { input: 0.38, output: 0.89 }],
  nebius: ['meta-llama/Llama-3.3-70B-Instruct-fast', '/nebius/v1/chat/completions', { input: 0.25, output: 0.75 }],
  novita: ['meta-llama/llama-3.3-70b-instruct', '/novita/openai/chat/completions', { input: 0.13, output: 0.39 }],
};
const TOOLS = [{ type: 'function', function: { name: 'lookup', description: 'look up', parameters: { type: 'object', properties: { q: { type: 'string' } } } } }];

let clientKey; let client;
before(async () => {
  ({ clientKey } = await createOrg('pro'));
  client = openaiClient(clientKey);
});

/** The requests the gateway sent to the compat mock whose body holds marker. */
async function received(marker) {
  const r = await fetch(`${MOCK}/__mock/requests`);
  assert.equal(r.status, 200);
  return (await r.json()).filter((q) => JSON.stringify(q.body ?? '').includes(marker));
}

async function one(marker, prov) {
  const list = await received(marker);
  assert.equal(list.length, 1, `${prov}: the mock received ${list.length} requests for ${marker}`);
  const q = list[0];
  assert.equal(q.path, P[prov][1], `${prov}: path`);
  assert.equal(q.headers.authorization, `Bearer ${KEY}`, `${prov}: credential`);
  return q;
}

function checkUsageCost(prov, d, usage) {
  assert.equal(d.usage.prompt_tokens, usage.prompt_tokens, `${prov}: decision prompt_tokens`);
  assert.equal(d.usage.completion_tokens, usage.completion_tokens, `${prov}: decision completion_tokens`);
  assert.equal(d.usage.total_tokens, usage.total_tokens, `${prov}: decision total_tokens`);
  assertClose(d.cost_usd, costOf(d.usage, P[prov][2]), `${prov}: cost_usd`);
}

for (const prov of Object.keys(P)) {
  const model = `${prov}/${P[prov][0]}`;

  test(`${prov}: plain completion`, async () => {
    const marker = nonce(prov);
    const { data, response } = await client.chat.completions.create({
      model, messages: [{ role: 'user', content: `hello ${marker}` }],
    }).withResponse();
    assert.equal(data.choices[0].message.content, `Echo: hello ${marker}`);
    assert.equal(data.choices[0].finish_reason, 'stop');
    assert.equal(response.headers.get('x-floopy-provider'), prov);
    const q = await one(marker, prov);
    assert.equal(q.body.model, P[prov][0]);
    const d = await getDecision(clientKey, response.headers.get('x-floopy-decision-id'));
    checkDecision(d, { status: 'ok', http_status: 200, route: model, pinned: true, stream: false });
    checkUsageCost(prov, d, data.usage);
    if (prov === 'perplexity') {
      assert.ok(Array.isArray(data.citations) && data.citations.length, 'perplexity citations passed through');
      assert.ok(Array.isArray(data.search_results) && data.search_results.length, 'perplexity search_results passed through');
    }
    if (prov === 'deepseek') {
      assert.equal(d.usage.cached_tokens, data.usage.prompt_cache_hit_tokens, 'deepseek cache hits are the cached tokens');
      assert.ok(d.usage.cached_tokens > 0);
    }
  });

  test(`${prov}: stream with and without include_usage`, async () => {
    for (const includeUsage of [true, false]) {
      const marker = nonce(prov);
      const body = { model, messages: [{ role: 'user', content: `stream ${marker}` }], stream: true };
      if (includeUsage) body.stream_options = { include_usage: true };
      const { data: stream, response } = await client.chat.completions.create(body).withResponse();
      let text = ''; let usage = null; let finish = null;
      for await (const c of stream) {
        if (c.choices?.[0]?.delta?.content) text += c.choices[0].delta.content;
        if (c.choices?.[0]?.finish_reason) finish = c.choices[0].finish_reason;
        if (c.usage) usage = c.usage;
      }
      assert.equal(text, `Echo: stream ${marker}`);
      assert.equal(finish, 'stop');
      if (includeUsage) assert.ok(usage && usage.total_tokens > 0, `${prov}: usage chunk asked for`);
      else assert.equal(usage, null, `${prov}: usage the client did not ask for`);
      const q = await one(marker, prov);
      assert.equal(q.body.stream_options?.include_usage, true, 'the gateway always asks for usage');
      const d = await getDecision(clientKey, response.headers.get('x-floopy-decision-id'));
      checkDecision(d, { status: 'ok', stream: true });
      assert.ok(d.usage.prompt_tokens > 0 && d.usage.completion_tokens > 0, `${prov}: stream usage on the decision`);
      if (usage) checkUsageCost(prov, d, usage);
    }
  });

  if (prov === 'perplexity') {
    test('perplexity: tools are refused with a clear 400', async () => {
      const r = await chat(clientKey, { model, messages: [{ role: 'user', content: 'x' }], tools: TOOLS });
      expectOpenAIError(r, 400, 'unsupported_parameter', { param: 'tools' });
    });
    continue;
  }

  test(`${prov}: tool call round trip`, async () => {
    const marker = nonce(prov);
    const messages = [{ role: 'user', content: `weather ${marker}` }];
    const r1 = await client.chat.completions.create({ model, messages, tools: TOOLS });
    assert.equal(r1.choices[0].finish_reason, 'tool_calls');
    const call = r1.choices[0].message.tool_calls[0];
    assert.equal(call.function.name, 'lookup');
    assert.deepEqual(JSON.parse(call.function.arguments), { q: `weather ${marker}` });
    // the history replayed with an OpenAI-style id: Mistral needs it rewritten
    const history = [...messages,
      { role: 'assistant', content: null, tool_calls: [{ ...call, id: 'call_lQnnsesjFMWMQ5IeWPHzR4th' }] },
      { role: 'tool', tool_call_id: 'call_lQnnsesjFMWMQ5IeWPHzR4th', content: `sunny ${marker}` }];
    const r2 = await client.chat.completions.create({ model, messages: history, tools: TOOLS });
    assert.equal(r2.choices[0].message.content, `Tool said: sunny ${marker}`);
    const sent = (await received(`sunny ${marker}`))[0].body.messages;
    const id = sent[1].tool_calls[0].id;
    assert.equal(sent[2].tool_call_id, id, 'the id is the same in tool_calls and the tool message');
    if (prov === 'mistral') {
      assert.match(id, /^[a-zA-Z0-9]{9}$/, 'mistral: 9-character id');
      assert.match(call.id, /^[a-zA-Z0-9]{9}$/);
    } else assert.equal(id, 'call_lQnnsesjFMWMQ5IeWPHzR4th', `${prov}: ids pass unchanged`);
  });
}

// ---------------------------------------------------------------- quirks, as the mock received them

const QUIRKS = [
  ['groq', 'llama-3.1-8b-instant', { logprobs: true, top_logprobs: 1, logit_bias: { 50256: -100 }, n: 1 },
    (b) => ['logprobs', 'top_logprobs', 'logit_bias', 'n'].every((k) => !(k in b)) && !('name' in b.messages[0]), true],
  ['cerebras', 'llama3.1-8b', { presence_penalty: 0.5, frequency_penalty: 0.5, logit_bias: { 1: 1 }, service_tier: 'auto' },
    (b) => ['presence_penalty', 'frequency_penalty', 'logit_bias', 'service_tier'].every((k) => !(k in b))],
  ['xai', 'grok-4', { presence_penalty: 0.5, frequency_penalty: 0.5, stop: ['zzz'], reasoning_effort: 'high' },
    (b) => ['presence_penalty', 'frequency_penalty', 'stop', 'reasoning_effort'].every((k) => !(k in b))],
  ['xai', 'grok-3-mini', { reasoning_effort: 'high', stop: ['zzz'] },
    (b) => b.reasoning_effort === 'high' && !('stop' in b)],
  ['xai', 'grok-4-fast-non-reasoning', { presence_penalty: 0.5, stop: ['zzz'] },
    (b) => b.presence_penalty === 0.5 && b.stop[0] === 'zzz'],
  ['deepseek', 'deepseek-reasoner', { logprobs: true, top_logprobs: 2, temperature: 0.3 },
    (b) => !('logprobs' in b) && !('top_logprobs' in b) && b.temperature === 0.3],
  ['mistral', 'mistral-small-latest', { seed: 7, max_completion_tokens: 50 },
    (b) => b.random_seed === 7 && b.max_tokens === 50 && !('seed' in b) && !('max_completion_tokens' in b)],
  ['perplexity', 'sonar', { logprobs: true },
    (b) => !('logprobs' in b)],
  ['ai21', 'jamba-mini', { max_completion_tokens: 40, response_format: { type: 'json_schema', json_schema: { name: 's', schema: { type: 'object' } } } },
    (b) => b.max_tokens === 40 && b.response_format.type === 'json_object' && typeof b.messages[0].content === 'string', false, true],
  ['together', 'meta-llama/Llama-3.3-70B-Instruct-Turbo', { seed: 7, presence_penalty: 0.5 },
    (b) => b.seed === 7 && b.presence_penalty === 0.5],
];

for (const [prov, name, extra, ok, named, parts] of QUIRKS) {
  test(`${prov}/${name}: documented quirks fixed before sending`, async () => {
    const marker = nonce(prov);
    const user = parts
      ? { role: 'user', content: [{ type: 'text', text: 'quirk' }, { type: 'text', text: marker }] }
      : { role: 'user', content: `quirk ${marker}`, ...(named ? { name: 'ann' } : {}) };
    const r = await client.chat.completions.create({ model: `${prov}/${name}`, messages: [user], ...extra });
    assert.equal(r.choices[0].message.content, `Echo: quirk ${marker}`);
    const q = await one(marker, prov);
    assert.ok(ok(q.body), `${prov}: the mock received ${JSON.stringify(q.body)}`);
  });
}

test('images: refused with 400 unsupported_content where the provider takes none, passed where it does', async () => {
  const content = [{ type: 'text', text: 'what is this' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } }];
  for (const prov of ['deepseek', 'ai21']) {
    const r = await chat(clientKey, { model: `${prov}/${P[prov][0]}`, messages: [{ role: 'user', content }] });
    expectOpenAIError(r, 400, 'unsupported_content', { param: 'messages' });
  }
  const r = await client.chat.completions.create({ model: 'groq/llama-3.1-8b-instant', messages: [{ role: 'user', content }] });
  assert.equal(r.choices[0].message.content, 'Echo: what is this [images: 1]');
});

test("groq: usage only in x_groq.usage still reaches the decision and the client's usage chunk", async () => {
  const marker = nonce('xg');
  const { data: stream, response } = await client.chat.completions.create({
    model: 'groq/llama-legacy-usage', messages: [{ role: 'user', content: `old ${marker}` }],
    stream: true, stream_options: { include_usage: true },
  }).withResponse();
  let usage = null;
  for await (const c of stream) if (c.usage) usage = c.usage;
  assert.ok(usage && usage.prompt_tokens > 0, 'a usage chunk made from x_groq.usage');
  const d = await getDecision(clientKey, response.headers.get('x-floopy-decision-id'));
  assert.equal(d.usage.prompt_tokens, usage.prompt_tokens);
  assert.equal(d.usage.completion_tokens, usage.completion_tokens);
});

// ---------------------------------------------------------------- failures (each provider's error shape)

test('429 in Mistral\'s and OpenAI\'s error shapes: 429 rate_limit_error, retry-after kept', async () => {
  for (const prov of ['mistral', 'groq']) {
    const r = await chat(clientKey, { model: `${prov}/fail-429`, messages: [{ role: 'user', content: 'x' }] });
    expectOpenAIError(r, 429, 'rate_limit_exceeded', { type: 'rate_limit_error' });
    assert.equal(r.headers.get('retry-after'), '7');
    const d = await getDecision(clientKey, r.headers.get('x-floopy-decision-id'));
    checkDecision(d, { status: 'rate_limited', http_status: 429 });
  }
});

test('500 -> 502 upstream_error; stall -> 504 upstream_timeout', async () => {
  let r = await chat(clientKey, { model: 'cerebras/fail-500', messages: [{ role: 'user', content: 'x' }] });
  expectOpenAIError(r, 502, 'upstream_error');
  r = await chat(clientKey, { model: 'nebius/stall', messages: [{ role: 'user', content: 'x' }] });
  expectOpenAIError(r, 504, 'upstream_timeout');
  const d = await getDecision(clientKey, r.headers.get('x-floopy-decision-id'));
  checkDecision(d, { status: 'upstream_timeout', http_status: 504 });
});

test('cut stream: error event, no [DONE], decision stream_error', async () => {
  const marker = nonce('cut');
  const r = await sse(clientKey, { model: 'fireworks/cut', messages: [{ role: 'user', content: `cut ${marker}` }], stream: true });
  assert.equal(r.status, 200);
  assert.equal(r.done, false, 'a cut stream ended with [DONE]');
  const last = JSON.parse(r.events[r.events.length - 1]);
  assert.ok(last.error, `last event is an error: ${r.events.at(-1)}`);
  const d = await getDecision(clientKey, r.headers.get('x-floopy-decision-id'));
  checkDecision(d, { status: 'stream_error', stream: true });
});
