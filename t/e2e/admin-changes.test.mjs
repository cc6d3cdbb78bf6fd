// The admin API's changes to organisations and keys: plan and pooling opt-out, key rotation,
// every one audited with before and after; organisation keys never reach it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { admin, chat, createOrg, expectOpenAIError, request, sleep } from './lib.mjs';

const events = async (adminKey, action) =>
  (await request('GET', `/v1/audit-events?action=${action}`, { key: adminKey })).json.data;

test('PATCH an organisation: the plan gate follows, the change is audited before/after', async () => {
  const o = await createOrg('free');
  let r = await request('GET', '/v1/decisions', { key: o.clientKey });
  expectOpenAIError(r, 403, 'plan_required');
  r = await admin('PATCH', `/organizations/${o.org.id}`, { plan: 'pro', pooling_opt_out: true });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.plan, 'pro');
  assert.equal(r.json.pooling_opt_out, true);
  await sleep(3200); // FloopyKeyCacheTTL 2 in the test configuration
  r = await request('GET', '/v1/decisions', { key: o.clientKey });
  assert.equal(r.status, 200, r.text);
  await sleep(2200); // audit events list after 2 s, like decisions
  const ev = await events(o.adminKey, 'organization.update');
  assert.equal(ev.length, 1);
  assert.equal(ev[0].before.plan, 'free');
  assert.equal(ev[0].after.plan, 'pro');
  assert.equal(ev[0].before.pooling_opt_out, false);
  assert.equal(ev[0].after.pooling_opt_out, true);
  assert.equal(ev[0].actor, 'deployment-admin');
});

test('PATCH with bad values gets 400 and changes nothing', async () => {
  const o = await createOrg('pro');
  for (const [body, param] of [[{ plan: 'platinum' }, 'plan'], [{ pooling_opt_out: 'yes' }, 'pooling_opt_out']]) {
    const r = await admin('PATCH', `/organizations/${o.org.id}`, body);
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.error.param, param);
  }
  const r = await admin('GET', `/organizations/${o.org.id}`);
  assert.equal(r.json.plan, 'pro');
  assert.equal((await admin('PATCH', '/organizations/00000000-0000-7000-8000-000000000000', { plan: 'pro' })).status, 404);
});

test('rotating a key: the new secret works, the old one stops, one audited event', async () => {
  const o = await createOrg('pro');
  const ask = (key) => chat(key, { model: 'auto', messages: [{ role: 'user', content: 'rotate' }] });
  assert.equal((await ask(o.clientKey)).status, 200);
  const r = await admin('POST', `/keys/${o.clientKeyInfo.id}/rotate`);
  assert.equal(r.status, 201, r.text);
  assert.match(r.json.key, /^fl-[A-Za-z0-9_-]{43}$/);
  assert.notEqual(r.json.id, o.clientKeyInfo.id);
  assert.equal(r.json.rotated_from, o.clientKeyInfo.id);
  assert.equal(r.json.role, 'client');
  assert.equal((await ask(r.json.key)).status, 200);
  await sleep(3200);
  assert.equal((await ask(o.clientKey)).status, 401);
  const again = await admin('POST', `/keys/${o.clientKeyInfo.id}/rotate`);
  assert.equal(again.status, 409);
  await sleep(2200);
  const ev = await events(o.adminKey, 'api_key.rotate');
  assert.equal(ev.length, 1);
  assert.equal(ev[0].target, o.clientKeyInfo.id);
  assert.equal(ev[0].before.revoked_at, null);
  assert.equal(ev[0].after.id, r.json.id);
  assert.ok(!JSON.stringify(ev[0]).includes(r.json.key), 'the secret reached the audit trail');
});

test('organisation keys, admin or client, never reach the admin API', async () => {
  const o = await createOrg('enterprise');
  for (const key of [o.clientKey, o.adminKey]) {
    const r = await admin('GET', '/organizations', undefined, { token: key });
    assert.equal(r.status, 401);
  }
});
