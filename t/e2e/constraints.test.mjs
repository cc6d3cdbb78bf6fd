// GET/PUT /v1/constraints: admin keys set them, bad values get 400, every PUT is an audit event
// with the actor and the values before and after; organisations do not see each other's.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { createOrg, expectOpenAIError, request, sleep } from './lib.mjs';

let A, B;
before(async () => { A = await createOrg('pro'); B = await createOrg('pro'); });

const get = (key) => request('GET', '/v1/constraints', { key });
const put = (key, body) => request('PUT', '/v1/constraints', { key, body });

test('unset constraints read as null', async () => {
  const r = await get(A.clientKey);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual([r.json.max_regression, r.json.max_cost_increase, r.json.confidence_threshold, r.json.updated_by], [null, null, null, null]);
});

test('an admin PUT sets them; the audit event has the actor, before and after', async () => {
  let r = await put(A.adminKey, { max_regression: 2, max_cost_increase: 15, confidence_threshold: 0.6 });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual([r.json.max_regression, r.json.max_cost_increase, r.json.confidence_threshold], [2, 15, 0.6]);
  assert.equal(r.json.updated_by, `api_key:${A.adminKeyInfo.id}`);
  r = await put(A.adminKey, { max_regression: 1.5, max_cost_increase: null, confidence_threshold: 0.7 });
  assert.equal(r.status, 200, r.text);
  assert.equal((await get(A.clientKey)).json.max_cost_increase, null);
  await sleep(2200); // audit events list 2 s after they are written
  const ev = (await request('GET', '/v1/audit-events?action=constraints.update', { key: A.adminKey })).json.data;
  assert.equal(ev.length, 2);
  const [last, first] = ev; // newest first
  assert.equal(first.actor, `api_key:${A.adminKeyInfo.id}`);
  assert.equal(first.before.max_regression, null);
  assert.deepEqual([first.after.max_regression, first.after.max_cost_increase, first.after.confidence_threshold], [2, 15, 0.6]);
  assert.deepEqual([last.before.max_regression, last.before.max_cost_increase], [2, 15]);
  assert.deepEqual([last.after.max_regression, last.after.max_cost_increase, last.after.confidence_threshold], [1.5, null, 0.7]);
});

test('a client key cannot change them; bad values get 400 and change nothing', async () => {
  expectOpenAIError(await put(B.clientKey, { max_regression: 1 }), 403, 'insufficient_role');
  for (const [body, code, param] of [
    [{ confidence_threshold: 1.5 }, 'invalid_value', 'confidence_threshold'],
    [{ max_regression: -1 }, 'invalid_value', 'max_regression'],
    [{ max_cost_increase: '10%' }, 'invalid_type', 'max_cost_increase'],
    [{ min_quality: 3 }, 'invalid_value', 'min_quality'],
  ]) {
    const r = await put(B.adminKey, body);
    expectOpenAIError(r, 400, code);
    assert.equal(r.json.error.param, param);
  }
  expectOpenAIError(await request('PUT', '/v1/constraints', { key: B.adminKey, raw: '[1' }), 400, 'invalid_json');
  expectOpenAIError(await request('DELETE', '/v1/constraints', { key: B.adminKey }), 405, 'method_not_allowed');
  const r = await get(B.clientKey);
  assert.equal(r.json.max_regression, null);
  assert.equal(r.json.updated_at, null);
});

test('one organisation\'s constraints are not another\'s', async () => {
  await put(A.adminKey, { max_regression: 4 });
  assert.equal((await get(B.clientKey)).json.max_regression, null);
});
