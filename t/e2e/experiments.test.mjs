// Shadow experiments (POST/GET /v1/experiments, POST /v1/experiments/{id}/rollback): a candidate
// answers a sampled share of a route's traffic off the request path; both answers are judged and
// compared. The client's answer and latency do not change, the cap holds, a rollback stops
// sampling at once and is audited, experiments survive a graceful restart, and one organisation
// never sees or samples another's. Runs on the route "exp" (t/conf/test.conf), which no other
// test uses; the judge is the mock's (FloopyJudge mock/mock-judge).
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import {
  CONFIG, chat, costOf, createOrg, dbQuery, expectOpenAIError, getDecision, httpdCtl,
  mockRequestsWith, nonce, request, sleep, unknownIdLike,
} from './lib.mjs';

const ROUTE = 'exp';
const CANDIDATE = 'mock/mock-mid';
const PRICES = { ...CONFIG.prices, 'mock/mock-mid': { input: 0.5, output: 2, cached_input: null } };
const UUIDV7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let A, B, C;
before(async () => { A = await createOrg('pro'); B = await createOrg('pro'); C = await createOrg('free'); });

const start = (key, body) => request('POST', '/v1/experiments', { key, body });
const get = (key, id) => request('GET', `/v1/experiments/${id}`, { key });
const list = (key, q = '') => request('GET', `/v1/experiments${q}`, { key });
const rollback = (key, id) => request('POST', `/v1/experiments/${id}/rollback`, { key });
const ask = (key, text, model = ROUTE) => chat(key, { model, messages: [{ role: 'user', content: text }] });

/** Polls GET /v1/experiments/{id} until ok(experiment) or the deadline; returns the last one. */
async function until(key, id, ok, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const r = await get(key, id);
    assert.equal(r.status, 200, r.text);
    if (ok(r.json) || Date.now() > deadline) return r.json;
    await sleep(100);
  }
}

async function started(key, body) {
  const r = await start(key, body);
  assert.equal(r.status, 201, r.text);
  return r.json;
}

/** Rows of experiment_results for an experiment, straight from MariaDB (null if unreachable). */
const resultRows = (id) => dbQuery(`SELECT decision_id, org_id FROM experiment_results WHERE experiment_id = '${id}'`);

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

test('the error matrix: 400s, 401, 403, 404, 405, 409', async () => {
  expectOpenAIError(await request('POST', '/v1/experiments', { body: {} }), 401, 'missing_api_key');
  expectOpenAIError(await start('fl-not-a-key', {}), 401, 'invalid_api_key');
  const good = { route: ROUTE, candidate: CANDIDATE, sample_rate: 1, sample_cap: 10 };
  expectOpenAIError(await start(B.clientKey, good), 403, 'insufficient_role', { type: 'permission_error' });
  for (const raw of ['[1', '[]', '"x"']) {
    expectOpenAIError(await request('POST', '/v1/experiments', { key: B.adminKey, raw }), 400, 'invalid_json');
  }
  for (const [change, code, param] of [
    [{ route: undefined }, 'missing_required_parameter', 'route'],
    [{ candidate: undefined }, 'missing_required_parameter', 'candidate'],
    [{ sample_rate: undefined }, 'missing_required_parameter', 'sample_rate'],
    [{ sample_cap: undefined }, 'missing_required_parameter', 'sample_cap'],
    [{ route: 5 }, 'invalid_type', 'route'],
    [{ candidate: ['mock/mock-mid'] }, 'invalid_type', 'candidate'],
    [{ sample_rate: '0.5' }, 'invalid_type', 'sample_rate'],
    [{ sample_cap: null }, 'invalid_type', 'sample_cap'],
    [{ route: 'no-such-route' }, 'invalid_value', 'route'],
    [{ route: 'mock/mock-small' }, 'invalid_value', 'route'],
    [{ candidate: 'nobody/mock-mid' }, 'invalid_value', 'candidate'],
    [{ candidate: 'auto' }, 'invalid_value', 'candidate'],
    [{ sample_rate: 0 }, 'invalid_value', 'sample_rate'],
    [{ sample_rate: 1.5 }, 'invalid_value', 'sample_rate'],
    [{ sample_cap: 0 }, 'invalid_value', 'sample_cap'],
    [{ sample_cap: 2.5 }, 'invalid_value', 'sample_cap'],
    [{ colour: 'blue' }, 'invalid_value', 'colour'],
  ]) {
    const r = await start(B.adminKey, { ...good, ...change });
    expectOpenAIError(r, 400, code, { param, type: 'invalid_request_error' });
  }
  const unknown = unknownIdLike('0190f0f0-0000-7000-8000-000000000000');
  expectOpenAIError(await get(B.clientKey, unknown), 404, 'not_found', { type: 'not_found_error' });
  expectOpenAIError(await get(B.clientKey, 'not-an-id'), 404, 'not_found');
  expectOpenAIError(await rollback(B.adminKey, unknown), 404, 'not_found');
  expectOpenAIError(await rollback(B.clientKey, unknown), 403, 'insufficient_role');
  expectOpenAIError(await request('POST', `/v1/experiments/${unknown}/pause`, { key: B.adminKey }), 404, 'unknown_url');
  for (const [method, path] of [['DELETE', '/v1/experiments'], ['PUT', `/v1/experiments/${unknown}`],
    ['POST', `/v1/experiments/${unknown}`], ['GET', `/v1/experiments/${unknown}/rollback`]]) {
    expectOpenAIError(await request(method, path, { key: B.adminKey }), 405, 'method_not_allowed');
  }
  expectOpenAIError(await list(B.clientKey, '?status=paused'), 400, 'invalid_value', { param: 'status' });
  expectOpenAIError(await list(B.clientKey, '?colour=blue'), 400);
  expectOpenAIError(await list(B.clientKey, '?limit=0'), 400, 'invalid_value', { param: 'limit' });
  // nothing of all that started anything
  const l = await list(B.clientKey);
  assert.equal(l.status, 200, l.text);
  assert.deepEqual(l.json.data, []);
});

test('start, traffic, results judged on both sides; the client\'s answer is untouched', async () => {
  const x = await started(A.adminKey, { route: ROUTE, candidate: CANDIDATE, sample_rate: 1, sample_cap: 5 });
  assert.match(x.id, UUIDV7);
  assert.equal(x.object, 'floopy.experiment');
  assert.equal(x.organization_id, A.org.id);
  assert.deepEqual([x.route, x.candidate, x.sample_rate, x.sample_cap, x.status], [ROUTE, CANDIDATE, 1, 5, 'running']);
  assert.equal(x.created_by, `api_key:${A.adminKeyInfo.id}`);
  assert.equal(x.stopped_at, null);
  assert.deepEqual(x.counts, { sampled: 0, compared: 0, candidate_errors: 0, judged: 0 });
  assert.equal(x.quality.live.mean, null);
  // one running experiment per route and organisation
  expectOpenAIError(await start(A.adminKey, { route: ROUTE, candidate: 'mock/mock-large', sample_rate: 0.5, sample_cap: 3 }),
    409, 'experiment_running', { param: 'route' });

  const marker = nonce('shadow');
  const text = `compare me ${marker} [score:8]`;
  const withX = [];
  for (let i = 0; i < 3; i++) withX.push(await ask(A.clientKey, text));
  const without = await ask(B.clientKey, text); // B runs no experiment
  for (const r of [...withX, without]) {
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].message.content, `Echo: ${text}`);
  }
  const strip = (j) => ({ ...j, id: undefined, created: undefined });
  for (const r of withX) {
    // byte for byte the answer a request without an experiment gets, less the per-answer id/time
    assert.deepEqual(strip(r.json), strip(without.json));
    assert.equal(r.headers.get('x-floopy-model'), without.headers.get('x-floopy-model'));
    assert.deepEqual(Object.keys(r.json), Object.keys(without.json));
  }
  const done = await until(A.clientKey, x.id, (e) => e.counts.compared >= 3);
  assert.deepEqual(done.counts, { sampled: 3, compared: 3, candidate_errors: 0, judged: 3 });
  assert.equal(done.status, 'running');
  // the mock's judge scores 8 on both sides: no difference, no spread
  assert.equal(done.quality.live.mean, 8);
  assert.equal(done.quality.candidate.mean, 8);
  assert.equal(done.quality.live.n, 3);
  assert.equal(done.quality.difference.mean, 0);
  assert.equal(done.quality.difference.stderr, 0);
  assert.deepEqual(done.quality.difference.ci95, [0, 0]);
  // cost: the candidate is dearer than the live model for the very same tokens
  const live = `mock/${withX[0].headers.get('x-floopy-model')}`;
  const u = withX[0].json.usage;
  const liveCost = costOf(u, PRICES[live]);
  const candCost = costOf(u, PRICES[CANDIDATE]);
  assert.ok(Math.abs(done.cost_usd.live_mean - liveCost) < 1e-12, JSON.stringify(done.cost_usd));
  assert.ok(Math.abs(done.cost_usd.candidate_mean - candCost) < 1e-12, JSON.stringify(done.cost_usd));
  assert.ok(Math.abs(done.cost_usd.delta_mean - (candCost - liveCost)) < 1e-12, JSON.stringify(done.cost_usd));
  assert.equal(done.cost_usd.n, 3);
  assert.equal(done.latency_ms.n, 3);
  for (const k of ['live_mean', 'candidate_mean', 'delta_mean']) assert.equal(typeof done.latency_ms[k], 'number');
  assert.ok(Math.abs(done.latency_ms.delta_mean - (done.latency_ms.candidate_mean - done.latency_ms.live_mean)) < 1e-6);

  // the candidate was called with the client's request, and the judge saw both answers
  const seen = await mockRequestsWith(marker);
  const models = seen.map((q) => q.body.model);
  assert.equal(models.filter((m) => m === 'mock-mid').length, 3, models.join());
  assert.equal(models.filter((m) => m === 'mock-judge').length, 6, models.join());
  assert.equal(models.filter((m) => m === 'mock-mid' || m === 'mock-judge' || m === live.slice(5)).length, models.length);
  const cand = seen.find((q) => q.body.model === 'mock-mid');
  assert.deepEqual(cand.body.messages, [{ role: 'user', content: text }]);

  // the comparison is in the decision's history; B's decision has none
  const d = await getDecision(A.clientKey, withX[0].headers.get('x-floopy-decision-id'));
  assert.equal(d.outcomes.experiments.length, 1, JSON.stringify(d.outcomes));
  const c = d.outcomes.experiments[0];
  assert.equal(c.experiment_id, x.id);
  assert.equal(c.judge_model, 'mock/mock-judge');
  assert.deepEqual([c.live.model, c.live.quality, c.candidate.model, c.candidate.quality], [live, 8, CANDIDATE, 8]);
  assert.equal(c.candidate.tokens, u.total_tokens);
  assert.equal(c.candidate_error, null);
  const db = await getDecision(B.clientKey, without.headers.get('x-floopy-decision-id'));
  assert.deepEqual(db.outcomes.experiments, []);
});

test('the sample cap holds; a completed experiment says so', async () => {
  const x = (await list(A.clientKey, '?status=running&route=exp')).json.data[0];
  assert.ok(x && x.sample_cap === 5, 'the previous test\'s experiment runs');
  const marker = nonce('cap');
  await Promise.all(Array.from({ length: 8 }, (_, i) => ask(A.clientKey, `over the cap ${i} ${marker}`)));
  const done = await until(A.clientKey, x.id, (e) => e.status === 'completed' && e.counts.compared >= 5);
  assert.equal(done.status, 'completed');
  assert.equal(done.counts.sampled, 5);
  assert.equal(done.counts.compared, 5);
  assert.ok(done.stopped_at, 'a completed experiment has stopped_at');
  assert.equal(done.stopped_by, null);
  await sleep(800);
  for (const m of ['mock-mid']) {
    const calls = (await mockRequestsWith(marker)).filter((q) => q.body.model === m).length;
    assert.equal(calls, 2, `the candidate was called for the two samples the cap left, not ${calls}`);
  }
  const rows = resultRows(x.id);
  if (rows) assert.equal(rows.length, 5);
  expectOpenAIError(await rollback(A.adminKey, x.id), 409, 'experiment_not_running');
});

test('a failing candidate is counted, not compared', async () => {
  const x = await started(A.adminKey, { route: ROUTE, candidate: 'mock/fail-500', sample_rate: 1, sample_cap: 2 });
  const r = await ask(A.clientKey, `candidate fails ${nonce('fail')}`);
  assert.equal(r.status, 200, r.text);
  const done = await until(A.clientKey, x.id, (e) => e.counts.candidate_errors >= 1);
  assert.deepEqual(done.counts, { sampled: 1, compared: 0, candidate_errors: 1, judged: 0 });
  assert.equal(done.cost_usd.delta_mean, null);
  const d = await getDecision(A.clientKey, r.headers.get('x-floopy-decision-id'));
  assert.match(d.outcomes.experiments[0].candidate_error, /.+/);
  assert.equal((await rollback(A.adminKey, x.id)).status, 200);
});

test('rollback stops sampling at once and is an audit event with before and after', async () => {
  const x = await started(A.adminKey, { route: ROUTE, candidate: CANDIDATE, sample_rate: 1, sample_cap: 1000 });
  for (let i = 0; i < 2; i++) assert.equal((await ask(A.clientKey, `before rollback ${i} ${nonce('rb')}`)).status, 200);
  await until(A.clientKey, x.id, (e) => e.counts.compared >= 2);
  const r = await rollback(A.adminKey, x.id);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.status, 'stopped');
  assert.equal(r.json.stopped_by, `api_key:${A.adminKeyInfo.id}`);
  assert.ok(r.json.stopped_at);
  const marker = nonce('after');
  for (let i = 0; i < 5; i++) assert.equal((await ask(A.clientKey, `after rollback ${i} ${marker}`)).status, 200);
  await sleep(1500);
  const after = (await get(A.clientKey, x.id)).json;
  assert.equal(after.counts.sampled, 2);
  assert.equal(after.status, 'stopped');
  assert.deepEqual((await mockRequestsWith(marker)).map((q) => q.body.model).filter((m) => m !== 'mock-small' && m !== 'mock-large'), []);
  expectOpenAIError(await rollback(A.adminKey, x.id), 409, 'experiment_not_running');

  await sleep(2200); // audit events list 2 s after they are written
  const ev = (await request('GET', '/v1/audit-events?action=experiment.rollback', { key: A.adminKey })).json.data
    .filter((e) => e.target === x.id);
  assert.equal(ev.length, 1);
  assert.equal(ev[0].actor, `api_key:${A.adminKeyInfo.id}`);
  assert.equal(ev[0].before.status, 'running');
  assert.equal(ev[0].after.status, 'stopped');
  assert.equal(ev[0].after.stopped_by, `api_key:${A.adminKeyInfo.id}`);
  const st = (await request('GET', '/v1/audit-events?action=experiment.start', { key: A.adminKey })).json.data
    .filter((e) => e.target === x.id);
  assert.equal(st.length, 1);
  assert.equal(st[0].before, null);
  assert.deepEqual([st[0].after.route, st[0].after.candidate, st[0].after.sample_cap], [ROUTE, CANDIDATE, 1000]);
});

test('isolation: another organisation sees none of it by any id or filter, and is never sampled', async () => {
  const x = await started(A.adminKey, { route: ROUTE, candidate: CANDIDATE, sample_rate: 1, sample_cap: 50 });
  const mine = (await list(A.clientKey)).json.data.map((e) => e.id);
  assert.ok(mine.length >= 4 && mine.includes(x.id));
  for (const key of [B.clientKey, B.adminKey, C.adminKey]) {
    for (const q of ['', '?status=running', '?status=stopped', '?status=completed', `?route=${ROUTE}`, '?limit=1000']) {
      const r = await list(key, q);
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json.data, [], q);
    }
    for (const id of mine) expectOpenAIError(await get(key, id), 404, 'not_found');
  }
  for (const key of [B.adminKey, C.adminKey]) {
    for (const id of mine) expectOpenAIError(await rollback(key, id), 404, 'not_found');
  }
  // B's traffic on the same route is never A's sample
  const marker = nonce('iso');
  const ids = [];
  for (let i = 0; i < 4; i++) {
    const r = await ask(B.clientKey, `not yours ${i} ${marker}`);
    assert.equal(r.status, 200, r.text);
    ids.push(r.headers.get('x-floopy-decision-id'));
  }
  assert.equal((await ask(A.clientKey, `mine ${nonce('iso')}`)).status, 200);
  await until(A.clientKey, x.id, (e) => e.counts.compared >= 1);
  await sleep(500);
  assert.deepEqual((await mockRequestsWith(marker)).map((q) => q.body.model).filter((m) => m === 'mock-mid' || m === 'mock-judge'), []);
  for (const id of ids) assert.deepEqual((await getDecision(B.clientKey, id)).outcomes.experiments, []);
  const rows = resultRows(x.id);
  if (rows) {
    assert.equal(rows.length, 1);
    for (const [, org] of rows) assert.equal(org, A.org.id);
  }
  assert.equal((await get(A.clientKey, x.id)).json.counts.sampled, 1);
  // A's filters and paging
  const running = (await list(A.clientKey, '?status=running')).json.data;
  assert.deepEqual(running.map((e) => e.id), [x.id]);
  assert.ok((await list(A.clientKey, '?status=completed')).json.data.length >= 1);
  const seen = [];
  let cursor = null;
  for (;;) {
    const r = await list(A.clientKey, `?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
    assert.equal(r.status, 200, r.text);
    seen.push(...r.json.data.map((e) => e.id));
    if (!r.json.has_more) break;
    cursor = r.json.next_cursor;
  }
  assert.deepEqual(seen, mine);
  assert.equal((await rollback(A.adminKey, x.id)).status, 200);
});

test('the client\'s latency does not change with a slow candidate in the shadow', { timeout: 120000 }, async (t) => {
  // the candidate answers after 400 ms: were it on the request path, every sampled answer would
  // be that much later
  const x = await started(A.adminKey, { route: ROUTE, candidate: 'mock/slow-400-mid', sample_rate: 1, sample_cap: 40 });
  const N = 40;
  const withX = [];
  const without = [];
  const marker = nonce('lat');
  for (let i = 0; i < N; i++) {
    for (const [key, into] of [[A.clientKey, withX], [B.clientKey, without]]) {
      const t0 = performance.now();
      const r = await ask(key, `timed ${i} ${marker}`);
      into.push(performance.now() - t0);
      assert.equal(r.status, 200, r.text);
    }
  }
  const mw = median(withX);
  const mo = median(without);
  t.diagnostic(`client latency, median of ${N}: with the experiment ${mw.toFixed(1)} ms, without ${mo.toFixed(1)} ms`);
  process.stderr.write(`[experiments] client latency, median of ${N}: with ${mw.toFixed(1)} ms, without ${mo.toFixed(1)} ms\n`);
  assert.ok(mw - mo < 100, `with ${mw} ms vs without ${mo} ms`);
  // and the shadow did run meanwhile
  const e = await until(A.clientKey, x.id, (v) => v.counts.compared >= 1, 20000);
  assert.ok(e.counts.compared >= 1);
  assert.ok(e.latency_ms.delta_mean > 300, JSON.stringify(e.latency_ms));
  assert.equal((await rollback(A.adminKey, x.id)).status, 200);
});

test('an experiment survives a graceful restart', { timeout: 60000 }, async () => {
  const x = await started(A.adminKey, { route: ROUTE, candidate: CANDIDATE, sample_rate: 1, sample_cap: 100 });
  await sleep(500); // let the slow candidate's refused jobs drain
  const g = httpdCtl('graceful');
  assert.equal(g.code, 0, `${g.stdout}${g.stderr}`);
  const deadline = Date.now() + 15000;
  let e;
  for (;;) {
    try {
      const r = await get(A.clientKey, x.id);
      if (r.status === 200) { e = r.json; break; }
    } catch { /* restarting */ }
    if (Date.now() > deadline) throw new Error('the gateway did not come back');
    await sleep(200);
  }
  assert.equal(e.status, 'running');
  await sleep(1000); // the new children load their snapshot
  for (let i = 0; i < 3; i++) assert.equal((await ask(A.clientKey, `after restart ${i} ${nonce('rs')}`)).status, 200);
  const done = await until(A.clientKey, x.id, (v) => v.counts.compared >= 3);
  assert.equal(done.counts.compared, 3);
  assert.equal((await rollback(A.adminKey, x.id)).status, 200);
});
