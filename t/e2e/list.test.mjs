// GET /v1/decisions (keyset paging, filters, plan gating, isolation, index use) and
// GET /v1/audit-events (admin role).
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { chat, createOrg, dbQuery, expectOpenAIError, getDecision, request, sleep } from './lib.mjs';

let A, B;
const made = [];   // A's decisions, in order of creation

async function ask(key, model, headers = {}) {
  const r = await chat(key, { model, messages: [{ role: 'user', content: 'list me' }] }, headers);
  return r.headers.get('x-floopy-decision-id');
}

async function listAll(key, query, limit) {
  const ids = [];
  let cursor = null;
  for (let pages = 0; pages < 100; pages++) {
    const q = new URLSearchParams({ ...query, limit: String(limit), ...(cursor ? { cursor } : {}) });
    const r = await request('GET', `/v1/decisions?${q}`, { key });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.object, 'list');
    ids.push(...r.json.data.map((d) => d.id));
    assert.ok(r.json.data.length <= limit);
    if (!r.json.has_more) { assert.equal(r.json.next_cursor, null); return ids; }
    cursor = r.json.next_cursor;
    assert.equal(typeof cursor, 'string');
  }
  throw new Error('more than 100 pages');
}

before(async () => {
  A = await createOrg('pro');
  B = await createOrg('pro');
  for (let i = 0; i < 12; i++) made.push(await ask(A.clientKey, i % 3 ? 'auto' : 'mock/mock-large', { 'x-floopy-session-id': i < 4 ? 'sess-1' : 'sess-2' }));
  made.push(await ask(A.clientKey, 'mock/fail-400'));
  await ask(B.clientKey, 'auto');
  await sleep(2600); // rows younger than 2 s are not listed yet (the writer may still be storing)
});

test('pages are newest first, never repeat or skip, and end with has_more false', async () => {
  const ids = await listAll(A.clientKey, {}, 5);
  assert.deepEqual(ids, [...made].reverse());
});

test('paging stays exact while new decisions arrive between pages', async () => {
  const seen = [];
  let cursor = null;
  let extra = 0;
  do {
    const q = new URLSearchParams({ limit: '4', ...(cursor ? { cursor } : {}) });
    const r = await request('GET', `/v1/decisions?${q}`, { key: A.clientKey });
    assert.equal(r.status, 200, r.text);
    seen.push(...r.json.data.map((d) => d.id));
    cursor = r.json.next_cursor;
    // new decisions land while we page
    await Promise.all([1, 2, 3].map(() => ask(A.clientKey, 'auto')));
    extra += 3;
  } while (cursor);
  assert.equal(new Set(seen).size, seen.length, 'a row repeated');
  for (const id of made) assert.ok(seen.includes(id), `skipped ${id}`);
  const sorted = [...seen].sort().reverse();
  assert.deepEqual(seen, sorted, 'not newest first');
  assert.ok(extra > 0);
});

test('filters: model, provider/model, session, status, confidence, time', async () => {
  const large = await listAll(A.clientKey, { model: 'mock/mock-large' }, 50);
  assert.deepEqual(large, made.filter((_, i) => i < 12 && i % 3 === 0).reverse());
  const sess = await listAll(A.clientKey, { session_id: 'sess-1' }, 50);
  assert.deepEqual(sess, made.slice(0, 4).reverse());
  const bad = await listAll(A.clientKey, { status: 'invalid_request' }, 50);
  assert.deepEqual(bad, [made[12]]);
  const none = await listAll(A.clientKey, { min_confidence: '0.5' }, 50);
  assert.deepEqual(none, []); // day-0 decisions carry confidence 0
  const future = await listAll(A.clientKey, { from: new Date(Date.now() + 3600e3).toISOString() }, 50);
  assert.deepEqual(future, []);
  const d = await getDecision(A.clientKey, made[0]);
  const exactly = await listAll(A.clientKey, { from: d.created_at, to: d.created_at }, 50);
  assert.ok(exactly.includes(made[0]));
});

test('bad parameters get 400 with the parameter named', async () => {
  for (const [q, param] of [['limit=0', 'limit'], ['limit=1001', 'limit'], ['limit=ten', 'limit'],
    ['cursor=abc', 'cursor'], ['from=yesterday', 'from'], ['min_confidence=2', 'min_confidence'],
    ['cache_hit=maybe', 'cache_hit'], ['colour=blue', 'colour']]) {
    const r = await request('GET', `/v1/decisions?${q}`, { key: A.clientKey });
    expectOpenAIError(r, 400, 'invalid_value');
    assert.equal(r.json.error.param, param, q);
  }
});

test('one organisation never sees another\'s decisions or audit events', async () => {
  const ids = await listAll(B.clientKey, {}, 50);
  assert.equal(ids.length, 1);
  for (const id of made) assert.ok(!ids.includes(id));
  // a cursor taken from A's list shows B nothing of A's
  const r = await request('GET', `/v1/decisions?cursor=c1_${made[5]}`, { key: B.clientKey });
  assert.equal(r.status, 200);
  for (const d of r.json.data) assert.ok(!made.includes(d.id));
  const ev = await request('GET', '/v1/audit-events?limit=100', { key: B.adminKey });
  assert.equal(ev.status, 200, ev.text);
  assert.ok(ev.json.data.every((e) => e.organization_id === B.org.id));
});

test('a free organisation gets 403 for the list, the single decision stays open', async () => {
  const F = await createOrg('free');
  const id = await ask(F.clientKey, 'auto');
  const r = await request('GET', '/v1/decisions', { key: F.clientKey });
  expectOpenAIError(r, 403, 'plan_required');
  assert.match(r.json.error.message, /plan/);
  const d = await getDecision(F.clientKey, id);
  assert.equal(d.id, id);
});

test('the list query is an index range scan on (org_id, id), with no sort', () => {
  // the statement's shape as floopy_store.c prepares it
  const plan = dbQuery(`EXPLAIN SELECT id, model, status FROM decisions FORCE INDEX (PRIMARY) WHERE org_id = '${A.org.id}' AND id < 'ffffffff-ffff-ffff-ffff-ffffffffffff' ORDER BY id DESC LIMIT 51`);
  assert.ok(plan && plan.length === 1, JSON.stringify(plan));
  assert.equal(plan[0][5], 'PRIMARY', `plan: ${plan[0].join(' | ')}`);
  assert.equal(plan[0][3], 'range', `plan: ${plan[0].join(' | ')}`);
  assert.ok(!plan[0].join(' ').includes('filesort'), `plan: ${plan[0].join(' | ')}`);
  // the primary key is (org_id, id): an organisation's decisions are one range of the table
  const pk = dbQuery(`SELECT GROUP_CONCAT(column_name ORDER BY seq_in_index) FROM information_schema.statistics
    WHERE table_schema = DATABASE() AND table_name = 'decisions' AND index_name = 'PRIMARY'`);
  assert.ok(pk, 'the database is reachable');
  assert.equal(pk[0][0], 'org_id,id');
});

test('audit events: the admin key sees its organisation\'s key creations; a client key gets 403', async () => {
  const r = await request('GET', '/v1/audit-events?action=api_key.create', { key: A.adminKey });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.data.length, 2); // the client key and the admin key of createOrg
  for (const e of r.json.data) {
    assert.equal(e.object, 'audit_event');
    assert.equal(e.action, 'api_key.create');
    assert.equal(e.organization_id, A.org.id);
    assert.equal(e.before, null);
    assert.equal(e.after.organization_id, A.org.id);
    assert.ok(!('key' in e.after), 'a secret in the audit trail');
  }
  const c = await request('GET', '/v1/audit-events', { key: A.clientKey });
  expectOpenAIError(c, 403, 'insufficient_role');
});
