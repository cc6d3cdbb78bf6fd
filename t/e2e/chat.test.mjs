import fs from 'node:fs';
import path from 'node:path';
// Chat Completions through the gateway with the official openai client: routes, pinning,
// streaming (with and without usage), tools, images, sessions, decisions, /v1/models.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { before, test } from 'node:test';
import {
  assertClose, checkDecision, CONF, CONFIG, costOf, createOrg, getDecision, MOCK_KEY, mockDirect,
  mockRequestsWith, nonce, oneToolCall, openaiClient, readChunks, readToolCalls, request, sse,
} from './lib.mjs';

let org; let clientKey; let clientKeyInfo; let adminKey; let client;

before(async () => {
  ({ org, clientKey, clientKeyInfo, adminKey } = await createOrg('pro'));
  client = openaiClient(clientKey);
});

function checkFloopyHeaders(headers, provider, model) {
  const id = headers.get('x-floopy-decision-id');
  assert.ok(id, 'x-floopy-decision-id missing');
  assert.equal(headers.get('x-floopy-provider'), provider, 'x-floopy-provider');
  const m = headers.get('x-floopy-model');
  assert.ok(m === model || m === `${provider}/${model}`, `x-floopy-model is ${m}, expected ${model}`);
  return id;
}

function checkDecisionUsage(d, mockUsage) {
  assert.equal(d.usage.prompt_tokens, mockUsage.prompt_tokens, 'decision prompt_tokens');
  assert.equal(d.usage.completion_tokens, mockUsage.completion_tokens, 'decision completion_tokens');
  assert.equal(d.usage.total_tokens, mockUsage.total_tokens, 'decision total_tokens');
  assert.equal(d.usage.cached_tokens, mockUsage.prompt_tokens_details?.cached_tokens ?? null, 'decision cached_tokens');
  assert.equal(d.usage.reasoning_tokens, mockUsage.completion_tokens_details?.reasoning_tokens ?? null,
    'decision reasoning_tokens');
}

/** the single request the gateway forwarded for this marker */
async function forwarded(marker) {
  const list = await mockRequestsWith(marker);
  assert.equal(list.length, 1, `the mock received ${list.length} requests containing ${marker}`);
  const q = list[0];
  assert.equal(q.method, 'POST');
  assert.equal(q.path, '/v1/chat/completions');
  return q;
}

test('plain completion via the auto route', async () => {
  const text = `hello there ${nonce('plain')}`;
  const body = { model: 'auto', messages: [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: text }] };
  const { data, response } = await client.chat.completions.create(body).withResponse();
  assert.equal(response.status, 200);
  assert.equal(data.object, 'chat.completion');
  assert.equal(data.choices.length, 1);
  assert.equal(data.choices[0].message.role, 'assistant');
  assert.equal(data.choices[0].message.content, `Echo: ${text}`);
  assert.equal(data.choices[0].finish_reason, 'stop');

  const direct = await mockDirect({ ...body, model: 'mock-small' });
  assert.deepEqual(data.usage, direct.json.usage, 'usage as the mock computes it');

  const id = checkFloopyHeaders(response.headers, 'mock', 'mock-small');
  const d = checkDecision(await getDecision(clientKey, id), {
    org, keyId: clientKeyInfo.id, status: 'ok', http_status: 200, route: 'auto', pinned: false, stream: false,
    session_id: null,
  });
  assert.equal(d.id, id);
  assert.deepEqual({ provider: d.chosen.provider, model: d.chosen.model }, { provider: 'mock', model: 'mock-small' },
    'auto picks the cheapest candidate (also the route default)');
  const seen = [d.chosen, ...d.alternatives].map((c) => `${c.provider}/${c.model}`);
  for (const cand of CONFIG.routes.auto) assert.ok(seen.includes(cand), `${cand} neither chosen nor an alternative: ${seen}`);
  checkDecisionUsage(d, direct.json.usage);
  assertClose(d.cost_usd, costOf(d.usage, CONFIG.prices['mock/mock-small']), 'cost_usd (mock-small)');
  assert.equal(typeof d.latency_ms.upstream, 'number', 'latency_ms.upstream of a served request');
  assert.ok(d.latency_ms.upstream <= d.latency_ms.total, 'upstream latency exceeds total');
  assert.equal(d.cache_hit, false);

  const q = await forwarded(text);
  assert.equal(q.body.model, 'mock-small', 'model name forwarded without the provider prefix');
  assert.deepEqual(q.body.messages, body.messages, 'messages forwarded intact');
  assert.equal(q.headers.authorization, `Bearer ${MOCK_KEY}`, 'provider credential from key_env');
  assert.ok(!JSON.stringify(q.headers).includes(clientKey), 'the client key leaked to the provider');

  // another key of the same organisation may read the decision
  const again = await getDecision(adminKey, id);
  assert.equal(again.id, id);
});

test('pinned mock/mock-large: decision shape, cost = tokens x price / 1e6', async () => {
  const text = `price me please ${nonce('large')}`;
  const body = { model: 'mock/mock-large', messages: [{ role: 'user', content: text }], temperature: 0.2, max_tokens: 50 };
  const { data, response } = await client.chat.completions.create(body).withResponse();
  assert.equal(data.choices[0].message.content, `Echo: ${text}`);
  const direct = await mockDirect({ ...body, model: 'mock-large' });
  assert.deepEqual(data.usage, direct.json.usage);

  const id = checkFloopyHeaders(response.headers, 'mock', 'mock-large');
  const d = checkDecision(await getDecision(clientKey, id), {
    org, keyId: clientKeyInfo.id, status: 'ok', http_status: 200, route: 'mock/mock-large', pinned: true, stream: false,
  });
  assert.equal(d.chosen.provider, 'mock');
  assert.equal(d.chosen.model, 'mock-large');
  checkDecisionUsage(d, direct.json.usage);
  const expected = (direct.json.usage.prompt_tokens * 2.5 + direct.json.usage.completion_tokens * 10) / 1e6;
  assertClose(d.cost_usd, expected, 'cost_usd (mock-large)');
  assert.ok(d.cost_usd > 0);
  assert.equal(d.error, null);

  const q = await forwarded(text);
  assert.equal(q.body.model, 'mock-large');
  assert.equal(q.body.temperature, 0.2, 'temperature passed on');
  assert.equal(q.body.max_tokens, 50, 'max_tokens passed on');
});

test('a pinned model without a price is served; cost_usd is null', async () => {
  const text = `no price for me ${nonce('noprice')}`;
  const body = { model: 'mock/whatever-model', messages: [{ role: 'user', content: text }] };
  const { data, response } = await client.chat.completions.create(body).withResponse();
  assert.equal(data.choices[0].message.content, `Echo: ${text}`);
  const id = checkFloopyHeaders(response.headers, 'mock', 'whatever-model');
  const d = checkDecision(await getDecision(clientKey, id), {
    org, status: 'ok', http_status: 200, route: 'mock/whatever-model', pinned: true,
  });
  assert.equal(d.chosen.model, 'whatever-model');
  assert.equal(d.cost_usd, null, 'cost_usd of an unpriced model');
  const direct = await mockDirect({ ...body, model: 'whatever-model' });
  checkDecisionUsage(d, direct.json.usage);
  const q = await forwarded(text);
  assert.equal(q.body.model, 'whatever-model');
});

test('stream with stream_options.include_usage: content assembled, one usage chunk', async () => {
  const text = `stream with usage ${nonce('su')} one two three`;
  const body = { model: 'auto', messages: [{ role: 'user', content: text }], stream: true, stream_options: { include_usage: true } };
  const { data: stream, response } = await client.chat.completions.create(body).withResponse();
  assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
  const id = checkFloopyHeaders(response.headers, 'mock', 'mock-small');
  const { content, chunks, usages, finish } = await readChunks(stream);
  assert.ok(chunks >= 3, `only ${chunks} chunks`);
  assert.equal(content, `Echo: ${text}`);
  assert.equal(finish, 'stop');
  assert.equal(usages.length, 1, 'exactly one usage chunk');
  const direct = await mockDirect({ ...body, model: 'mock-small' });
  assert.deepEqual(usages[0], direct.usage, 'streamed usage as the mock computes it');

  const d = checkDecision(await getDecision(clientKey, id), { org, status: 'ok', http_status: 200, stream: true, route: 'auto' });
  checkDecisionUsage(d, direct.usage);
  assertClose(d.cost_usd, costOf(d.usage, CONFIG.prices['mock/mock-small']), 'cost_usd of a stream');
});

test('stream without include_usage: no usage reaches the client, the decision still has it', async () => {
  const text = `stream without usage ${nonce('snu')}`;
  const body = { model: 'mock/mock-large', messages: [{ role: 'user', content: text }], stream: true };
  const r = await sse(clientKey, body);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.transportError, null, `stream broke: ${r.transportError}`);
  assert.equal(r.done, true, 'no data: [DONE]');
  const chunks = r.events.map((e) => JSON.parse(e));
  let content = '';
  for (const c of chunks) {
    assert.ok(!c.error, `error event: ${JSON.stringify(c)}`);
    assert.ok(c.usage === undefined || c.usage === null, `a usage chunk reached the client: ${JSON.stringify(c)}`);
    assert.ok(Array.isArray(c.choices) && c.choices.length > 0, `a chunk without choices: ${JSON.stringify(c)}`);
    content += c.choices[0].delta?.content ?? '';
  }
  assert.equal(content, `Echo: ${text}`);

  const q = await forwarded(text);
  assert.equal(q.body.stream, true);
  assert.equal(q.body.stream_options?.include_usage, true, 'the gateway asks upstream for usage');

  const id = checkFloopyHeaders(r.headers, 'mock', 'mock-large');
  const d = checkDecision(await getDecision(clientKey, id), { org, status: 'ok', stream: true, pinned: true });
  const direct = await mockDirect({ ...body, model: 'mock-large', stream_options: { include_usage: true } });
  assert.ok(direct.usage, 'mock gave no usage');
  checkDecisionUsage(d, direct.usage);
  assertClose(d.cost_usd, costOf(d.usage, CONFIG.prices['mock/mock-large']), 'cost_usd of a stream without usage');

  // the openai client sees the same: no usage anywhere
  const { data: stream } = await client.chat.completions.create(body).withResponse();
  let content2 = '';
  for await (const c of stream) {
    assert.ok(!c.usage, 'usage chunk');
    content2 += c.choices[0]?.delta?.content ?? '';
  }
  assert.equal(content2, `Echo: ${text}`);
});

test('tool call round trip: tools -> tool_calls -> tool result -> answer; JSON intact upstream', async () => {
  const n = nonce('tool');
  const tools = [
    {
      type: 'function',
      function: {
        name: 'lookup_weather',
        description: 'Weather for a city, "quoted" and ünïcödé',
        parameters: {
          type: 'object',
          properties: { q: { type: 'string', description: 'city' }, days: { type: 'integer', minimum: 1, maximum: 7 } },
          required: ['q'],
          additionalProperties: false,
        },
        strict: true,
      },
    },
    { type: 'function', function: { name: 'other_tool', parameters: { type: 'object', properties: {} } } },
  ];
  const question = `weather in Paris ${n}`;
  const { data: first, response: r1 } = await client.chat.completions.create(
    { model: 'auto', messages: [{ role: 'user', content: question }], tools, tool_choice: 'auto', parallel_tool_calls: false },
  ).withResponse();
  const call = oneToolCall(first, 'lookup_weather', /^call_[A-Za-z0-9]{24}$/, { q: question });

  const d1 = checkDecision(await getDecision(clientKey, r1.headers.get('x-floopy-decision-id')), { org, status: 'ok' });
  assert.ok(d1.usage.completion_tokens > 0);

  const toolResult = `sunny, 21 °C, "light" breeze ${n}`;
  const messages = [
    { role: 'user', content: question },
    { role: 'assistant', content: null, tool_calls: [{ id: call.id, type: 'function', function: { name: call.function.name, arguments: call.function.arguments } }] },
    { role: 'tool', tool_call_id: call.id, content: toolResult },
  ];
  const second = await client.chat.completions.create({ model: 'auto', messages, tools });
  assert.equal(second.choices[0].message.content, `Tool said: ${toolResult}`);
  assert.equal(second.choices[0].finish_reason, 'stop');

  const reqs = await mockRequestsWith(n);
  assert.equal(reqs.length, 2, `the mock received ${reqs.length} requests for ${n}`);
  assert.deepEqual(reqs[0].body.tools, tools, 'tools reached the mock intact');
  assert.equal(reqs[0].body.tool_choice, 'auto');
  assert.equal(reqs[0].body.parallel_tool_calls, false);
  assert.deepEqual(reqs[1].body.messages, messages, 'the tool call and tool result reached the mock intact');
  assert.equal(reqs[1].body.messages[1].tool_calls[0].function.arguments, call.function.arguments,
    'arguments string byte for byte');
});

test('streamed tool call: argument fragments reassemble', async () => {
  const n = nonce('stool');
  const tools = [{ type: 'function', function: { name: 'search', parameters: { type: 'object', properties: { q: { type: 'string' } } } } }];
  const stream = await client.chat.completions.create(
    { model: 'auto', messages: [{ role: 'user', content: `find ${n}` }], tools, stream: true },
  );
  const { calls, finish } = await readToolCalls(stream);
  assert.equal(finish, 'tool_calls');
  assert.equal(calls.length, 1);
  assert.equal(calls[0].name, 'search');
  assert.match(calls[0].id, /^call_/);
  assert.deepEqual(JSON.parse(calls[0].args), { q: `find ${n}` });
});

test('an image_url part passes through intact', async () => {
  const n = nonce('img');
  // ~24 KB data URL: well under FloopyMaxBodySize, big enough to cross buffer boundaries
  const png = `data:image/png;base64,${crypto.randomBytes(18000).toString('base64')}`;
  const messages = [{
    role: 'user',
    content: [
      { type: 'text', text: `what is in this picture ${n}` },
      { type: 'image_url', image_url: { url: png, detail: 'low' } },
    ],
  }];
  const { data, response } = await client.chat.completions.create({ model: 'auto', messages }).withResponse();
  assert.equal(data.choices[0].message.content, `Echo: what is in this picture ${n} [images: 1]`);
  const q = await forwarded(n);
  assert.deepEqual(q.body.messages, messages, 'image part reached the mock intact');
  checkDecision(await getDecision(clientKey, response.headers.get('x-floopy-decision-id')), { org, status: 'ok' });
});

test('x-floopy-session-id is recorded on the decision', async () => {
  const session = `sess-${crypto.randomUUID()}`;
  const text = `in a session ${nonce('sess')}`;
  const { data, response } = await client.chat.completions.create(
    { model: 'auto', messages: [{ role: 'user', content: text }] },
    { headers: { 'x-floopy-session-id': session } },
  ).withResponse();
  assert.equal(data.choices[0].message.content, `Echo: ${text}`);
  const d = checkDecision(await getDecision(clientKey, response.headers.get('x-floopy-decision-id')), { org, status: 'ok' });
  assert.equal(d.session_id, session);

  // and on a streamed request
  const { data: stream, response: r2 } = await client.chat.completions.create(
    { model: 'auto', messages: [{ role: 'user', content: text }], stream: true },
    { headers: { 'x-floopy-session-id': session } },
  ).withResponse();
  for await (const c of stream) void c;
  const d2 = checkDecision(await getDecision(clientKey, r2.headers.get('x-floopy-decision-id')), { org, status: 'ok', stream: true });
  assert.equal(d2.session_id, session);
  assert.notEqual(d2.id, d.id);
});

test('decision ids are unique UUIDv7s, increasing in time', async () => {
  const ids = [];
  for (let i = 0; i < 5; i++) {
    const { response } = await client.chat.completions.create(
      { model: 'auto', messages: [{ role: 'user', content: `seq ${i}` }] },
    ).withResponse();
    ids.push(response.headers.get('x-floopy-decision-id'));
    await new Promise((r) => setTimeout(r, 3));
  }
  assert.equal(new Set(ids).size, ids.length);
  assert.deepEqual([...ids].sort(), ids, 'UUIDv7 ids of successive requests sort in time order');
  for (const id of ids) checkDecision(await getDecision(clientKey, id), { org, status: 'ok' });
});

test('GET /v1/models lists the routes and every configured provider/model', async () => {
  const ids = [];
  for await (const m of client.models.list()) {
    assert.equal(m.object, 'model');
    assert.ok(Number.isInteger(m.created), `created of ${m.id}`);
    assert.equal(typeof m.owned_by, 'string');
    ids.push(m.id);
  }
  // exactly the routes and priced models the test configuration declares, helpers' included
  const dir = path.join(path.dirname(CONF), 'providers');
  const confs = [CONF, ...(fs.existsSync(dir) ? fs.readdirSync(dir) : [])
    .filter((f) => f.endsWith('.conf')).map((f) => path.join(dir, f))];
  const declared = confs.flatMap((f) => fs.readFileSync(f, 'utf8').split('\n'))
    .map((l) => l.match(/^\s*Floopy(?:Route|Model)\s+(\S+)/)).filter(Boolean).map((m) => m[1]);
  assert.ok(declared.includes('auto') && declared.includes('mock/mock-small'));
  assert.deepEqual([...ids].sort(), [...new Set(declared)].sort());
  const raw = await request('GET', '/v1/models', { key: clientKey });
  assert.equal(raw.status, 200);
  assert.equal(raw.json.object, 'list');
  assert.ok(Array.isArray(raw.json.data));
});
