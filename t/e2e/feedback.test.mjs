// POST /v1/feedback: session NPS and per-decision scores, validated, stored durably; a repeated
// session score replaces the earlier one without losing it; one organisation never scores
// another's sessions or decisions.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { chat, createOrg, dbQuery, expectOpenAIError, nonce, request } from './lib.mjs';

let A, B, session, decisionA, decisionB;
const fb = (key, body) => request('POST', '/v1/feedback', { key, body });

before(async () => {
  A = await createOrg('pro');
  B = await createOrg('pro');
  session = nonce('sess');
  for (let i = 0; i < 2; i++) {
    const r = await chat(A.clientKey, { model: 'auto', messages: [{ role: 'user', content: `s${i}` }] }, { 'x-floopy-session-id': session });
    decisionA = r.headers.get('x-floopy-decision-id');
  }
  decisionB = (await chat(B.clientKey, { model: 'auto', messages: [{ role: 'user', content: 'b' }] })).headers.get('x-floopy-decision-id');
});

test('a session NPS is stored; a second one replaces it and both stay on record', async () => {
  const first = await fb(A.clientKey, { session_id: session, nps: 9, comment: 'great' });
  assert.equal(first.status, 201, first.text);
  assert.equal(first.json.object, 'feedback');
  assert.equal(first.json.kind, 'session');
  assert.equal(first.json.nps, 9);
  assert.deepEqual(first.json.replaces, []);
  const second = await fb(A.clientKey, { session_id: session, nps: 3 });
  assert.equal(second.status, 201, second.text);
  assert.deepEqual(second.json.replaces, [first.json.id]);
  const rows = dbQuery(`SELECT id, score, IFNULL(replaced_by, '-') FROM feedback WHERE org_id = '${A.org.id}' AND session_id = '${session}' ORDER BY id`);
  assert.deepEqual(rows, [[first.json.id, '9', second.json.id], [second.json.id, '3', '-']]);
});

test('a score for one decision, right after the request', async () => {
  const r = await fb(A.clientKey, { decision_id: decisionA, score: 7.5 });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.json.kind, 'decision');
  assert.equal(r.json.decision_id, decisionA);
  assert.equal(r.json.score, 7.5);
  assert.deepEqual(dbQuery(`SELECT score FROM feedback WHERE id = '${r.json.id}'`), [['7.5']]);
});

test('the error matrix', async () => {
  const k = A.clientKey;
  expectOpenAIError(await request('POST', '/v1/feedback', { key: k, raw: '{nope' }), 400, 'invalid_json');
  expectOpenAIError(await fb(k, { nps: 5 }), 400, 'missing_required_parameter');
  expectOpenAIError(await fb(k, { session_id: session, decision_id: decisionA, nps: 5 }), 400, 'missing_required_parameter');
  expectOpenAIError(await fb(k, { session_id: session }), 400, 'missing_required_parameter');
  for (const [body, code, param] of [
    [{ session_id: session, nps: 11 }, 'invalid_value', 'nps'],
    [{ session_id: session, nps: -1 }, 'invalid_value', 'nps'],
    [{ session_id: session, nps: 7.5 }, 'invalid_value', 'nps'],
    [{ session_id: session, nps: '9' }, 'invalid_type', 'nps'],
    [{ session_id: 42, nps: 9 }, 'invalid_type', 'session_id'],
    [{ decision_id: 'not-an-id', score: 1 }, 'invalid_type', 'decision_id'],
    [{ decision_id: decisionA, score: 10.5 }, 'invalid_value', 'score'],
    [{ session_id: session, nps: 9, stars: 5 }, 'invalid_value', 'stars'],
    [{ session_id: session, nps: 9, comment: 7 }, 'invalid_type', 'comment'],
  ]) {
    const r = await fb(k, body);
    expectOpenAIError(r, 400, code);
    assert.equal(r.json.error.param, param, JSON.stringify(body));
  }
  expectOpenAIError(await fb(k, { session_id: nonce('never'), nps: 5 }), 404, 'not_found');
  expectOpenAIError(await fb(k, { decision_id: '00000000-0000-7000-8000-000000000001', score: 5 }), 404, 'not_found');
  expectOpenAIError(await request('GET', '/v1/feedback', { key: k }), 405, 'method_not_allowed');
  expectOpenAIError(await request('POST', '/v1/feedback', { body: { session_id: session, nps: 5 } }), 401, 'missing_api_key');
});

test('an organisation cannot score another\'s decisions or sessions', async () => {
  expectOpenAIError(await fb(B.clientKey, { decision_id: decisionA, score: 1 }), 404, 'not_found');
  expectOpenAIError(await fb(B.clientKey, { session_id: session, nps: 0 }), 404, 'not_found');
  expectOpenAIError(await fb(A.clientKey, { decision_id: decisionB, score: 1 }), 404, 'not_found');
  assert.equal(Number(dbQuery(`SELECT COUNT(*) FROM feedback WHERE org_id = '${B.org.id}'`)[0][0]), 0);
});
