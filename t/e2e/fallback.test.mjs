// Retries, fallbacks and circuit breaking: route "fallback" puts deadb/cheap (nobody listens)
// before mock/mock-small; deadb's breaker opens after 3 failed tries (t/conf/test.conf).
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { chat, createOrg, getDecision } from './lib.mjs';

let key;
before(async () => { ({ clientKey: key } = await createOrg('pro')); });

const ask = (model, content = 'fall back please') =>
  chat(key, { model, messages: [{ role: 'user', content }] });

test('a dead cheapest candidate is retried, then the route falls back to the next one', async () => {
  const r = await ask('fallback');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.choices[0].message.content, 'Echo: fall back please');
  assert.equal(r.headers.get('x-floopy-provider'), 'mock');
  assert.equal(r.headers.get('x-floopy-model'), 'mock-small');
  const d = await getDecision(key, r.headers.get('x-floopy-decision-id'));
  assert.equal(d.status, 'ok');
  assert.deepEqual(d.chosen && [d.chosen.provider, d.chosen.model], ['mock', 'mock-small']);
  assert.equal(d.signals.fallback_from, 'deadb/cheap');
  const tried = d.attempts.map((a) => `${a.provider}/${a.model}`);
  assert.deepEqual(tried, ['deadb/cheap', 'deadb/cheap', 'mock/mock-small'], JSON.stringify(d.attempts));
  assert.ok(d.attempts[0].reason && d.attempts[2].reason === null, JSON.stringify(d.attempts));
});

test('after repeated failures the breaker skips the dead candidate at once', async () => {
  // the first test's two tries plus these make at least 3: the breaker is open afterwards
  for (let i = 0; i < 2; i++) assert.equal((await ask('fallback')).status, 200);
  const t0 = Date.now();
  const r = await ask('fallback', 'skip the dead one');
  const took = Date.now() - t0;
  assert.equal(r.status, 200, r.text);
  const d = await getDecision(key, r.headers.get('x-floopy-decision-id'));
  assert.equal(d.attempts.length, 2, JSON.stringify(d.attempts));
  assert.match(d.attempts[0].reason, /circuit open/);
  assert.equal(d.attempts[1].model, 'mock-small');
  assert.ok(took < 1000, `took ${took} ms with the breaker open`);
});

test('a pinned model that answers 500 is tried twice, then 502', async () => {
  const r = await ask('mock/fail-500');
  assert.equal(r.status, 502, r.text);
  const d = await getDecision(key, r.headers.get('x-floopy-decision-id'));
  assert.equal(d.attempts.length, 2, JSON.stringify(d.attempts));
  assert.ok(d.attempts.every((a) => a.http_status === 500));
});

test('a 429 whose retry-after is longer than worth waiting is not retried', async () => {
  const t0 = Date.now();
  const r = await ask('mock/fail-429');
  assert.equal(r.status, 429, r.text);
  assert.equal(r.headers.get('retry-after'), '7');
  assert.ok(Date.now() - t0 < 2000);
  const d = await getDecision(key, r.headers.get('x-floopy-decision-id'));
  assert.equal(d.attempts.length, 1, JSON.stringify(d.attempts));
});

test('a quota 429 is final at once', async () => {
  const r = await ask('mock/quota-429');
  assert.equal(r.status, 429, r.text);
  const d = await getDecision(key, r.headers.get('x-floopy-decision-id'));
  assert.equal(d.attempts.length, 1, JSON.stringify(d.attempts));
});
