// The learning router end to end: outcomes (session NPS, per-request scores, the judge) reach
// the decisions they judge and move the estimates the router reads within a second; priors,
// pooling opt-out, constraints and the Day-0 cap. Route "learn" (t/conf/test.conf): default
// mock/mock-large, then mock/mock-mid and mock/mock-small; every answer on it is judged.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  admin, chat, createOrg, dbQuery, getDecision, mockRequestsWith, nonce, request, sleep, sse,
} from './lib.mjs';

const explain = (key, model = 'learn', headers = {}) =>
  request('POST', '/v1/routing/explain', { key, body: { model, messages: [{ role: 'user', content: 'x' }] }, headers });
const feedback = (key, body) => request('POST', '/v1/feedback', { key, body });

async function candidates(key, route = 'learn') {
  const r = await explain(key, route);
  assert.equal(r.status, 200, r.text);
  return Object.fromEntries(r.json.signals.candidates.map((c) => [c.model, c]));
}

/** Polls explain until pred(candidates) holds; the snapshot is rebuilt within a second. */
async function until(key, pred, what, route = 'learn', ms = 3000) {
  const deadline = Date.now() + ms;
  let c;
  while (Date.now() < deadline) {
    c = await candidates(key, route);
    if (pred(c)) return { c, ms: ms - (deadline - Date.now()) };
    await sleep(50);
  }
  assert.fail(`${what} within ${ms} ms; candidates now ${JSON.stringify(c)}`);
}

async function session(key, n, content = 'hello', route = 'learn') {
  const sid = nonce('sess');
  const ids = [];
  for (let i = 0; i < n; i++) {
    const r = await chat(key, { model: route, messages: [{ role: 'user', content: `${content} ${i}` }] },
      { 'x-floopy-session-id': sid });
    assert.equal(r.status, 200, r.text);
    ids.push(r.headers.get('x-floopy-decision-id'));
  }
  for (const id of ids) await getDecision(key, id);
  return { sid, ids };
}

test('a session NPS credits every decision of the session and moves the estimate within a second', async () => {
  const { clientKey: key } = await createOrg('pro');
  const { sid, ids } = await session(key, 3);
  const decisions = await Promise.all(ids.map((id) => getDecision(key, id)));
  const model = `${decisions[0].chosen.provider}/${decisions[0].chosen.model}`;
  for (const d of decisions) {
    assert.equal(`${d.chosen.provider}/${d.chosen.model}`, model, 'the session kept its model (stickiness)');
  }
  assert.equal(decisions[1].signals.sticky, true);
  const before = (await candidates(key))[model];
  const f = await feedback(key, { session_id: sid, nps: 10 });
  assert.equal(f.status, 201, f.text);
  assert.deepEqual(f.json.credited.map((c) => [c.route, c.model]), [['learn', model]]);
  assert.ok(Math.abs(f.json.credited[0].weight - 1) < 1e-9, 'one NPS is one observation in all');
  for (const id of ids) {
    const d = await getDecision(key, id);
    const nps = d.outcomes.feedback.find((x) => x.id === f.json.id);
    assert.ok(nps, `decision ${id} does not show the session's NPS`);
    assert.equal(nps.nps, 10);
    assert.ok(Math.abs(nps.credited_weight - 1) < 1e-9);
  }
  const { c, ms } = await until(key, (c) => c[model].observations > before.observations + 0.99, 'the NPS reaching the estimate');
  assert.ok(ms <= 1500, `the snapshot took ${ms} ms`);
  assert.ok(c[model].quality > before.quality, `quality ${before.quality} -> ${c[model].quality}`);

  // a second score for the session replaces the first: same credits, revised, nothing lost
  const g = await feedback(key, { session_id: sid, nps: 0 });
  assert.equal(g.status, 201, g.text);
  assert.deepEqual(g.json.replaces, [f.json.id]);
  const after = await until(key, (x) => x[model].quality < c[model].quality - 0.05, 'the replaced NPS revising the estimate');
  assert.ok(Math.abs(after.c[model].observations - c[model].observations) < 0.05, 'a replacement adds no weight');
  const rows = dbQuery(`SELECT replaced_by FROM feedback WHERE id = '${f.json.id}'`);
  assert.equal(rows[0][0], g.json.id);
});

test('a per-request score credits its decision with half weight before Auto; pinned decisions credit nothing', async () => {
  const { clientKey: key } = await createOrg('pro');
  const { ids } = await session(key, 1);
  const d = await getDecision(key, ids[0]);
  const model = `${d.chosen.provider}/${d.chosen.model}`;
  const before = (await candidates(key))[model];
  const f = await feedback(key, { decision_id: ids[0], score: 2, comment: 'meh' });
  assert.equal(f.status, 201, f.text);
  assert.equal(f.json.credited.length, 1);
  assert.equal(f.json.credited[0].weight, 0.5);
  await until(key, (c) => c[model].observations > before.observations + 0.49, 'the score reaching the estimate');
  const shown = (await getDecision(key, ids[0])).outcomes.feedback.find((x) => x.id === f.json.id);
  assert.equal(shown.score, 2);
  assert.equal(shown.comment, 'meh');

  const p = await chat(key, { model: 'mock/mock-mid', messages: [{ role: 'user', content: 'pinned' }] });
  const pid = p.headers.get('x-floopy-decision-id');
  await getDecision(key, pid);
  const g = await feedback(key, { decision_id: pid, score: 9 });
  assert.equal(g.status, 201, g.text);
  assert.deepEqual(g.json.credited, [], 'a pinned decision chose nothing, so it credits no route');
});

test('the judge scores a sampled answer off the request path; its scores show on the decision', async () => {
  const { clientKey: key } = await createOrg('pro');
  const before = await candidates(key);
  const t0 = Date.now();
  const { ids } = await session(key, 1, 'please answer well [score:9]');
  const elapsed = Date.now() - t0;
  let d;
  const deadline = Date.now() + 3000;
  do {
    d = await getDecision(key, ids[0]);
    if (d.outcomes.judge.length) break;
    await sleep(50);
  } while (Date.now() < deadline);
  assert.equal(d.outcomes.judge.length, 1, JSON.stringify(d.outcomes));
  const j = d.outcomes.judge[0];
  assert.equal(j.judge_model, 'mock/mock-judge');
  assert.equal(j.model, `${d.chosen.provider}/${d.chosen.model}`);
  for (const k of ['relevance', 'coherence', 'helpfulness', 'safety']) assert.equal(j[k], 9, k);
  assert.ok(elapsed < 2000, `the client waited ${elapsed} ms`);
  const c = await until(key, (c) => c[j.model].observations >= 0.49, 'the judge score reaching the estimate');
  assert.ok(c.c[j.model].quality > before[j.model].quality, 'a 9/10 verdict raises the estimate');

  // a verdict that is not JSON is refused (FL053 in the log), and nothing is recorded
  const bad = await session(key, 1, 'judge me [score:bad]');
  await sleep(600);
  assert.deepEqual((await getDecision(key, bad.ids[0])).outcomes.judge, []);
});

test('a streamed answer is judged as the message its chunks add up to', async () => {
  const { clientKey: key } = await createOrg('pro');
  const marker = nonce('streamed');
  const text = `stream me ${marker} [score:6]`;
  const s = await sse(key, { model: 'learn', stream: true, messages: [{ role: 'user', content: text }] });
  assert.equal(s.status, 200, s.text);
  assert.ok(s.done, 'the stream ended with [DONE]');
  const said = s.events.map((e) => JSON.parse(e).choices?.[0]?.delta?.content ?? '').join('');
  const id = s.headers.get('x-floopy-decision-id');
  let d;
  const deadline = Date.now() + 3000;
  do {
    d = await getDecision(key, id);
    if (d.outcomes.judge.length) break;
    await sleep(50);
  } while (Date.now() < deadline);
  assert.equal(d.stream, true);
  assert.equal(d.outcomes.judge.length, 1, JSON.stringify(d.outcomes));
  for (const k of ['relevance', 'coherence', 'helpfulness', 'safety']) assert.equal(d.outcomes.judge[0][k], 6, k);
  // the judge was shown the whole answer the client read, not a piece of it
  const asked = (await mockRequestsWith(marker)).filter((q) => String(q.body.model).includes('judge'));
  assert.equal(asked.length, 1);
  const shown = JSON.parse(asked[0].body.messages.at(-1).content);
  assert.equal(shown.response, said);
  assert.ok(said.includes(marker), said);
});

test('Day-0: priors alone never lift confidence over the cap, and a benchmark is capped', async () => {
  const { clientKey: key } = await createOrg('pro');
  dbQuery("INSERT INTO benchmark_priors (model_id, quality, weight, source, updated_at) VALUES ('mock/mock-small', 0.99, 1000, 'e2e', NOW(3)) ON DUPLICATE KEY UPDATE quality = 0.99, weight = 1000");
  try {
    const { c } = await until(key, (c) => c['mock/mock-small'].prior_benchmark > 0, 'the benchmark prior loading');
    assert.equal(c['mock/mock-small'].prior_benchmark, 3, 'a benchmark lends at most bench_cap observations');
    assert.equal(c['mock/mock-small'].phase, 'day0');
    assert.ok(c['mock/mock-small'].confidence <= 0.3, `confidence ${c['mock/mock-small'].confidence}`);
    let taken = 0;
    for (let seed = 0; seed < 40; seed++) {
      const r = await explain(key, 'learn', { 'x-floopy-seed': String(seed) });
      assert.ok(r.json.confidence <= 0.3, `decision confidence ${r.json.confidence} over the Day-0 cap`);
      assert.equal(r.json.phase, 'day0');
      if (r.json.chosen.model === 'mock-small') {
        taken++;
        assert.equal(r.json.signals.explored, true, 'a Day-0 candidate is chosen only when exploring');
      }
    }
    assert.ok(taken <= 12, `the benchmark-only model took ${taken} of 40 decisions`);
  } finally {
    dbQuery("DELETE FROM benchmark_priors WHERE model_id = 'mock/mock-small'");
  }
});

test('one organisation\'s outcomes never move another\'s own estimates', async () => {
  const a = await createOrg('pro');
  const b = await createOrg('pro');
  const before = await candidates(a.clientKey);
  const { sid } = await session(b.clientKey, 2);
  assert.equal((await feedback(b.clientKey, { session_id: sid, nps: 10 })).status, 201);
  await until(b.clientKey, (c) => Object.values(c).some((x) => x.observations > 0.99), 'B\'s own estimate moving');
  const after = await candidates(a.clientKey);
  for (const m of Object.keys(before)) assert.equal(after[m].observations, before[m].observations, m);
  // and A cannot credit B's session or decision
  const r = await feedback(a.clientKey, { session_id: sid, nps: 3 });
  assert.equal(r.status, 404);
});

test('pooled priors: aggregated across organisations; an opted-out organisation gives and reads nothing', async () => {
  // route "pool" (explore=0): models mock/pool-a (default) and mock/pool-b, used by no other test
  const poolers = [await createOrg('pro'), await createOrg('pro')];
  const outsider = await createOrg('enterprise');
  const reader = await createOrg('pro');
  const patch = await admin('PATCH', `/organizations/${outsider.org.id}`, { pooling_opt_out: true });
  assert.equal(patch.status, 200, patch.text);
  for (const o of poolers) {
    const { sid } = await session(o.clientKey, 1, 'pool', 'pool');
    assert.equal((await feedback(o.clientKey, { session_id: sid, nps: 8 })).status, 201);
  }
  const seen = await until(reader.clientKey, (c) => c['mock/pool-a'].prior_pooled >= 1.99, 'the pool reaching a third organisation', 'pool');
  const q = seen.c['mock/pool-a'].quality;
  // the opted-out organisation's outcomes stay out of the pool ...
  const { sid } = await session(outsider.clientKey, 1, 'pool', 'pool');
  assert.equal((await feedback(outsider.clientKey, { session_id: sid, nps: 0 })).status, 201);
  await until(outsider.clientKey, (c) => c['mock/pool-a'].observations > 0.99, 'the outsider\'s own estimate', 'pool');
  await sleep(400);
  const later = (await candidates(reader.clientKey, 'pool'))['mock/pool-a'];
  assert.equal(later.prior_pooled, seen.c['mock/pool-a'].prior_pooled);
  assert.equal(later.quality, q, 'an opted-out organisation moved the shared prior');
  // ... and it reads nothing from the pool
  const own = (await candidates(outsider.clientKey, 'pool'))['mock/pool-a'];
  assert.equal(own.prior_pooled, 0);
  // the view an admin reads holds aggregates only: no organisation column
  const cols = dbQuery("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_NAME = 'shared_priors' AND TABLE_SCHEMA = DATABASE()").map((r) => r[0]);
  assert.deepEqual(cols.sort(), ['mean_quality', 'model_id', 'observations', 'organizations']);
});

test('constraints are applied on every decision and recorded with what each excluded', async () => {
  const { clientKey: key, adminKey } = await createOrg('pro');
  const put = (body) => request('PUT', '/v1/constraints', { key: adminKey, body });
  assert.equal((await put({ max_regression: null, max_cost_increase: null, confidence_threshold: 0.5 })).status, 200);
  const deadline = Date.now() + 2000;
  let x;
  do {
    x = (await explain(key, 'learn', { 'x-floopy-seed': '7' })).json;
    if (x.constraints.confidence_threshold === 0.5) break;
    await sleep(50);
  } while (Date.now() < deadline);
  assert.equal(x.constraints.confidence_threshold, 0.5, 'the constraint reached the router within 2 s');
  assert.deepEqual([x.chosen.provider, x.chosen.model], ['mock', 'mock-large'], 'the default serves');
  // on route auto (default mock-small, the cheapest) a cost limit keeps the dear model out
  assert.equal((await put({ max_regression: null, max_cost_increase: 10, confidence_threshold: null })).status, 200);
  let y;
  const d2 = Date.now() + 2000;
  do {
    const r = await chat(key, { model: 'auto', messages: [{ role: 'user', content: 'limits' }] });
    assert.equal(r.status, 200);
    y = await getDecision(key, r.headers.get('x-floopy-decision-id'));
    if (y.constraints.max_cost_increase === 10) break;
    await sleep(50);
  } while (Date.now() < d2);
  assert.equal(y.constraints.max_cost_increase, 10);
  assert.deepEqual(y.constraints.excluded.max_cost_increase, ['mock/mock-large']);
  assert.equal(y.alternatives.find((a) => a.model === 'mock-large').excluded_by, 'max_cost_increase');
  assert.equal(y.constraints.fell_back_to_default, false);
});

test('the spread of the outcomes is stored with each arm: squared rewards and squared weights, revised with the reward', async () => {
  // route auto (explore=0, no judge): one session, one model, one credit of weight 1
  const { org, clientKey: key } = await createOrg('pro');
  const { sid, ids } = await session(key, 1, 'spread', 'auto');
  const d = await getDecision(key, ids[0]);
  const model = `${d.chosen.provider}/${d.chosen.model}`;
  const row = () => dbQuery(`SELECT n, s, ss, n2 FROM arm_quality WHERE org_id = '${org.id}' AND route = 'auto' AND model_id = '${model}'`)[0].map(Number);
  assert.equal((await feedback(key, { session_id: sid, nps: 8 })).status, 201);
  let [n, s, ss, n2] = row();
  assert.deepEqual([n, s, n2], [1, 0.8, 1]);
  assert.ok(Math.abs(ss - 0.64) < 1e-9, `ss ${ss}: one reward of 0.8, squared`);
  // a replacing NPS rewrites the reward in s and in ss, and adds no weight to n or n2
  assert.equal((await feedback(key, { session_id: sid, nps: 10 })).status, 201);
  [n, s, ss, n2] = row();
  assert.deepEqual([n, s, ss, n2], [1, 1, 1, 1]);
});

test('max_regression passes a proven candidate only when a lower bound of its own quality clears the limit', async () => {
  const { org, clientKey: key, adminKey } = await createOrg('pro');
  // this organisation's made-up statistics must not reach another's pooled prior
  assert.equal((await admin('PATCH', `/organizations/${org.id}`, { pooling_opt_out: true })).status, 200);
  // n unit-weight outcomes of the given mean, spread as NPS is (sd 0.12)
  const arm = (model, n, mean) => dbQuery(`INSERT INTO arm_quality (org_id, route, model_id, n, s, ss, n2, updated_at)
    VALUES ('${org.id}', 'learn', '${model}', ${n}, ${n * mean}, ${n * (mean * mean + 0.0144)}, ${n}, NOW(6))
    ON DUPLICATE KEY UPDATE n = VALUES(n), s = VALUES(s), ss = VALUES(ss), n2 = VALUES(n2)`);
  arm('mock/mock-large', 200, 0.86);   // the default: the floor is 0.86 - 0.05 = 0.81
  arm('mock/mock-mid', 40, 0.84);      // clears 0.81 by its mean, not by 40 outcomes' bound
  const put = (body) => request('PUT', '/v1/constraints', { key: adminKey, body });
  assert.equal((await put({ max_regression: 5, max_cost_increase: null, confidence_threshold: null })).status, 200);
  const seeded = async (seed) => (await explain(key, 'learn', { 'x-floopy-seed': String(seed) })).json;
  const deadline = Date.now() + 2000;
  let x;
  do {
    x = await seeded(0);
    if (x.constraints.max_regression === 5 && x.signals.candidates.find((c) => c.model === 'mock/mock-mid').observations === 40) break;
    await sleep(50);
  } while (Date.now() < deadline);
  assert.equal(x.constraints.max_regression, 5, 'the constraint reached the router within 2 s');
  assert.ok(Math.abs(x.constraints.quality_floor - 0.81) < 1e-9, `floor ${x.constraints.quality_floor}`);
  assert.equal(x.constraints.regression_z, 2);
  for (let seed = 0; seed < 40; seed++) {
    const y = await seeded(seed);
    const mid = y.signals.candidates.find((c) => c.model === 'mock/mock-mid');
    assert.equal(mid.phase, 'auto');
    assert.ok(mid.quality_lower_bound < 0.81 && mid.quality_lower_bound > 0.7, `bound ${mid.quality_lower_bound}`);
    // (mock-small, in Day-0, is listed too outside the exploration share: its prior's mean is under the floor)
    assert.ok(y.constraints.excluded.max_regression.includes('mock/mock-mid'), `seed ${seed} (explored ${y.signals.explored})`);
    assert.notEqual(y.chosen.model, 'mock-mid');
  }
  // ten times the evidence at the same mean: the bound clears the floor and the candidate serves
  arm('mock/mock-mid', 400, 0.84);
  const d2 = Date.now() + 2000;
  do {
    x = await seeded(0);
    if (x.signals.candidates.find((c) => c.model === 'mock/mock-mid').observations === 400) break;
    await sleep(50);
  } while (Date.now() < d2);
  const mid = x.signals.candidates.find((c) => c.model === 'mock/mock-mid');
  assert.equal(mid.observations, 400, 'the new statistics reached the router within 2 s');
  assert.ok(mid.quality_lower_bound > 0.81 && mid.quality_lower_bound < 0.84, `bound ${mid.quality_lower_bound}`);
  assert.ok(!(x.constraints.excluded.max_regression ?? []).includes('mock/mock-mid'));
  let served = 0;
  for (let seed = 0; seed < 20; seed++) served += (await seeded(seed)).chosen.model === 'mock-mid';
  assert.ok(served >= 10, `the cheaper, proven candidate served ${served} of 20`);
});

test('Baseline vs Floopy: routed cost against the default model on the same tokens, matched or not', async () => {
  const { clientKey: key } = await createOrg('pro');
  // a seed whose decision explores mock-small (the cheapest) instead of the default mock-large,
  // and one that keeps the default
  let seed, stay;
  for (let s = 0; s < 500 && (seed === undefined || stay === undefined); s++) {
    const r = await explain(key, 'learn', { 'x-floopy-seed': String(s) });
    if (r.json.chosen.model === 'mock-small') seed ??= String(s);
    if (r.json.chosen.model === 'mock-large') stay ??= String(s);
  }
  assert.ok(seed !== undefined && stay !== undefined, 'no seed explores mock-small');
  const served = [];
  for (const h of [{ 'x-floopy-seed': seed }, { 'x-floopy-seed': stay }]) {
    const r = await chat(key, { model: 'learn', messages: [{ role: 'user', content: 'one two three four' }] }, h);
    assert.equal(r.status, 200, r.text);
    served.push(await getDecision(key, r.headers.get('x-floopy-decision-id')));
  }
  const pinned = await chat(key, { model: 'mock/mock-mid', messages: [{ role: 'user', content: 'p' }] });
  await getDecision(key, pinned.headers.get('x-floopy-decision-id'));
  await sleep(2100);  // decisions settle two seconds after they are made
  const r = await request('GET', '/v1/reports/savings', { key });
  assert.equal(r.status, 200, r.text);
  const rep = r.json;
  assert.equal(rep.object, 'floopy.savings');
  assert.equal(rep.excluded.pinned, 1);
  const small = rep.models.find((m) => m.model === 'mock/mock-small');
  const d = served[0];
  assert.equal(d.chosen.model, 'mock-small');
  const large = { input: 2.5, output: 10 };  // mock/mock-large in t/conf/test.conf
  const want = (d.usage.prompt_tokens * large.input + d.usage.completion_tokens * large.output) / 1e6;
  assert.ok(Math.abs(small.baseline_cost_usd - want) < 1e-9, `baseline ${small.baseline_cost_usd}, want ${want}`);
  assert.ok(Math.abs(small.actual_cost_usd - d.cost_usd) < 1e-9);
  assert.equal(small.matched, false, 'no outcomes yet: the cheaper model is not shown to match the default');
  assert.ok(rep.unmatched.savings_usd > 0);
  assert.equal(rep.models.filter((m) => m.matched).every((m) => m.model === m.default), true);
  const total = rep.matched.requests + rep.unmatched.requests;
  assert.equal(total, served.length);
  for (const [q, code] of [['?from=yesterday', 'invalid_value'], ['?bogus=1', 'unknown_parameter']]) {
    const bad = await request('GET', `/v1/reports/savings${q}`, { key });
    assert.equal(bad.status, 400, bad.text);
    assert.ok(bad.json.error.code === code || bad.json.error.code === 'invalid_value', bad.text);
  }
  assert.equal((await request('POST', '/v1/reports/savings', { key, body: {} })).status, 405);
  assert.equal((await request('GET', '/v1/reports/savings', { key: 'fl-nope' })).status, 401);
});
