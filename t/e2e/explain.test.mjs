// POST /v1/routing/explain: the decision the router would make, in the decision's shape, with no
// provider called and nothing recorded; the next real request agrees with it.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { chat, createOrg, dbQuery, expectOpenAIError, getDecision, mockRequestsWith, nonce, request } from './lib.mjs';

let org, key;
before(async () => { ({ org, clientKey: key } = await createOrg('pro')); });

const explain = (body, k = key) => request('POST', '/v1/routing/explain', { key: k, body });
const count = () => Number(dbQuery(`SELECT COUNT(*) FROM decisions WHERE org_id = '${org.id}'`)[0][0]);

test('explain shows the choice, alternatives, signals, confidence and phase; calls and records nothing', async () => {
  const marker = nonce('explain');
  const before = count();
  const r = await explain({ model: 'auto', messages: [{ role: 'user', content: marker }] });
  assert.equal(r.status, 200, r.text);
  const x = r.json;
  assert.equal(x.object, 'floopy.routing_explanation');
  assert.equal(x.route, 'auto');
  assert.equal(x.pinned, false);
  assert.deepEqual([x.chosen.provider, x.chosen.model], ['mock', 'mock-small']);
  assert.ok(x.alternatives.some((a) => a.model === 'mock-large'));
  assert.equal(x.signals.policy, 'thompson');
  assert.equal(x.signals.default, 'mock/mock-small');
  assert.ok(Array.isArray(x.signals.candidates) && x.signals.candidates.length === 2);
  assert.ok(x.confidence >= 0 && x.confidence <= 1);
  assert.equal(x.phase, 'day0');
  for (const k of ['id', 'status', 'usage', 'cost_usd', 'attempts', 'latency_ms']) assert.ok(!(k in x), k);
  await new Promise((res) => setTimeout(res, 300));
  assert.equal(count(), before, 'explain recorded a decision');
  assert.deepEqual(await mockRequestsWith(marker), [], 'explain called the provider');
});

test('the next real request agrees with explain (same x-floopy-seed)', async () => {
  const body = { model: 'learn', messages: [{ role: 'user', content: 'agree' }] };
  const headers = { 'x-floopy-seed': '4242' };
  const x = (await request('POST', '/v1/routing/explain', { key, body, headers })).json;
  const r = await chat(key, body, headers);
  assert.equal(r.status, 200);
  const d = await getDecision(key, r.headers.get('x-floopy-decision-id'));
  assert.deepEqual(d.chosen, x.chosen);
  assert.deepEqual(d.alternatives, x.alternatives);
  assert.equal(d.confidence, x.confidence);
  assert.equal(d.phase, x.phase);
  assert.deepEqual(d.signals.candidates, x.signals.candidates);
  assert.equal(d.signals.seed, '4242');
});

test('explain and chat refuse a seed that is not a whole number', async () => {
  const body = { model: 'learn', messages: [{ role: 'user', content: 'x' }] };
  for (const seed of ['-1', 'abc', '1.5', '99999999999999999999999']) {
    const headers = { 'x-floopy-seed': seed };
    expectOpenAIError(await request('POST', '/v1/routing/explain', { key, body, headers }), 400, 'invalid_value', { param: 'x-floopy-seed' });
    expectOpenAIError(await chat(key, body, headers), 400, 'invalid_value', { param: 'x-floopy-seed' });
  }
});

test('explain of a pinned model', async () => {
  const r = await explain({ model: 'mock/mock-large', messages: [{ role: 'user', content: 'x' }] });
  assert.equal(r.status, 200);
  assert.equal(r.json.pinned, true);
  assert.deepEqual([r.json.chosen.provider, r.json.chosen.model], ['mock', 'mock-large']);
});

test('explain refuses what chat would refuse', async () => {
  expectOpenAIError(await request('POST', '/v1/routing/explain', { key, raw: '{nope' }), 400, 'invalid_json');
  expectOpenAIError(await explain({ model: 'no-such-route', messages: [{ role: 'user', content: 'x' }] }), 404, 'model_not_found');
  expectOpenAIError(await explain({ model: 'auto' }), 400, 'missing_required_parameter');
  expectOpenAIError(await request('GET', '/v1/routing/explain', { key }), 405, 'method_not_allowed');
  expectOpenAIError(await explain({ model: 'auto', messages: [{ role: 'user', content: 'x' }] }, 'fl-wrong'), 401, 'invalid_api_key');
});
