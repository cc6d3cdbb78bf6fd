// Admin API (SetHandler floopy-admin): organisations, keys, revocation, authentication, errors.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ADMIN_TOKEN, CONFIG, admin, createOrg, expectOpenAIError, request, sleep, unknownIdLike,
} from './lib.mjs';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

// Bits of randomness a secret can carry at most, judged from its alphabet and length.
function secretBits(secret) {
  const s = secret.replace(/=+$/, '');
  let alphabet;
  if (/^[0-9a-f]+$/.test(s) || /^[0-9A-F]+$/.test(s)) alphabet = 16;
  else if (/^[0-9a-z]+$/.test(s) || /^[0-9A-Z]+$/.test(s)) alphabet = 36;
  else if (/^[0-9A-Za-z]+$/.test(s)) alphabet = 62;
  else if (/^[0-9A-Za-z_-]+$/.test(s) || /^[0-9A-Za-z+/]+$/.test(s)) alphabet = 64;
  else alphabet = 95;
  return s.length * Math.log2(alphabet);
}

function checkKeyObject(k, org, role, name) {
  for (const f of ['id', 'object', 'organization_id', 'name', 'role', 'key_prefix', 'created_at', 'revoked_at']) {
    assert.ok(Object.hasOwn(k, f), `key object lacks ${f}: ${JSON.stringify(k)}`);
  }
  assert.equal(k.object, 'api_key');
  assert.equal(String(k.organization_id), String(org.id));
  assert.equal(k.role, role);
  if (name !== undefined) assert.equal(k.name, name);
  assert.match(k.created_at, ISO);
  assert.equal(typeof k.key_prefix, 'string');
  assert.ok(k.key_prefix.length > 0, 'empty key_prefix');
}

test('create an organisation; it is listed', async () => {
  const name = `admin-e2e-${Date.now()}`;
  const r = await admin('POST', '/organizations', { name, plan: 'enterprise' });
  assert.equal(r.status, 201, r.text);
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
  const o = r.json;
  assert.deepEqual(Object.keys(o).sort(), ['created_at', 'id', 'name', 'object', 'plan', 'pooling_opt_out'].sort(),
    `organization keys: ${r.text}`);
  assert.ok(typeof o.id === 'string' && o.id.length > 0);
  assert.equal(o.object, 'organization');
  assert.equal(o.name, name);
  assert.equal(o.plan, 'enterprise');
  assert.equal(o.pooling_opt_out, false);
  assert.match(o.created_at, ISO);

  const l = await admin('GET', '/organizations');
  assert.equal(l.status, 200, l.text);
  assert.equal(l.json.object, 'list');
  assert.ok(Array.isArray(l.json.data));
  const found = l.json.data.find((x) => x.id === o.id);
  assert.ok(found, `new organisation ${o.id} not in the list`);
  assert.equal(found.name, name);
  assert.equal(found.plan, 'enterprise');

  for (const plan of ['free', 'pro']) {
    const p = await admin('POST', '/organizations', { name: `${name}-${plan}`, plan });
    assert.equal(p.status, 201, p.text);
    assert.equal(p.json.plan, plan);
  }
});

test('create client and admin keys: secret shown once, fl- prefix, >=128 bits, never listed', async () => {
  const o = (await admin('POST', '/organizations', { name: `keys-e2e-${Date.now()}`, plan: 'pro' })).json;
  const made = [];
  for (const [role, name] of [['client', 'svc one'], ['client', 'svc two'], ['admin', 'ops']]) {
    const r = await admin('POST', `/organizations/${o.id}/keys`, { role, name });
    assert.equal(r.status, 201, r.text);
    const k = r.json;
    checkKeyObject(k, o, role, name);
    assert.deepEqual(Object.keys(k).sort(),
      ['created_at', 'id', 'key', 'key_prefix', 'name', 'object', 'organization_id', 'revoked_at', 'role'].sort(),
      `key keys: ${r.text}`);
    assert.equal(k.revoked_at, null);
    assert.equal(typeof k.key, 'string');
    assert.ok(k.key.startsWith('fl-'), `key does not start with fl-: ${k.key}`);
    const bits = secretBits(k.key.slice(3));
    assert.ok(bits >= 128, `key ${k.key} carries at most ${bits.toFixed(1)} bits`);
    assert.ok(k.key.startsWith(k.key_prefix), `key_prefix ${k.key_prefix} is not a prefix of the key`);
    assert.ok(k.key_prefix.length < k.key.length, 'key_prefix is the whole key');
    made.push(k);
  }
  assert.equal(new Set(made.map((k) => k.key)).size, made.length, 'keys repeat');
  assert.equal(new Set(made.map((k) => k.id)).size, made.length, 'key ids repeat');

  // role is optional? The contract lists it as required ("role":"client"|"admin"); name is optional.
  const noName = await admin('POST', `/organizations/${o.id}/keys`, { role: 'client' });
  assert.equal(noName.status, 201, noName.text);
  made.push(noName.json);

  const l = await admin('GET', `/organizations/${o.id}/keys`);
  assert.equal(l.status, 200, l.text);
  assert.equal(l.json.object, 'list');
  assert.ok(Array.isArray(l.json.data));
  assert.deepEqual(l.json.data.map((k) => k.id).sort(), made.map((k) => k.id).sort(), 'listed keys');
  for (const k of l.json.data) {
    assert.ok(!Object.hasOwn(k, 'key'), `a listed key has a "key" field: ${JSON.stringify(k)}`);
    const mine = made.find((m) => m.id === k.id);
    checkKeyObject(k, o, mine.role);
    assert.equal(k.key_prefix, mine.key_prefix);
  }
  for (const k of made) assert.ok(!l.text.includes(k.key), 'a secret appears in the key list');

  // the keys work on the gateway
  for (const k of made) {
    const m = await request('GET', '/v1/models', { key: k.key });
    assert.equal(m.status, 200, `${k.role} key on /v1/models: ${m.status} ${m.text}`);
  }
});

test('a revoked key is refused within FloopyKeyCacheTTL + 1 s', async () => {
  const { org, clientKey, clientKeyInfo, adminKey } = await createOrg('pro');
  // warm the key caches of several children
  for (let i = 0; i < 12; i++) {
    const m = await request('GET', '/v1/models', { key: clientKey });
    assert.equal(m.status, 200, m.text);
  }
  const r = await admin('POST', `/keys/${clientKeyInfo.id}/revoke`);
  const revokedAt = Date.now();
  assert.equal(r.status, 200, r.text);
  checkKeyObject(r.json, org, 'client');
  assert.equal(r.json.id, clientKeyInfo.id);
  assert.ok(!Object.hasOwn(r.json, 'key'), 'revoke answer shows the secret');
  assert.match(r.json.revoked_at ?? '', ISO, `revoked_at: ${r.text}`);

  const l = await admin('GET', `/organizations/${org.id}/keys`);
  const listed = l.json.data.find((k) => k.id === clientKeyInfo.id);
  assert.match(listed?.revoked_at ?? '', ISO, 'list shows revoked_at');

  const limit = (CONFIG.keyCacheTTL + 1) * 1000;
  await sleep(Math.max(0, revokedAt + limit - Date.now()));
  for (let i = 0; i < 12; i++) {
    const m = await request('GET', '/v1/models', { key: clientKey });
    expectOpenAIError(m, 401, 'invalid_api_key', { type: 'authentication_error' });
  }
  const c = await request('POST', '/v1/chat/completions',
    { key: clientKey, body: { model: 'auto', messages: [{ role: 'user', content: 'still there?' }] } });
  expectOpenAIError(c, 401, 'invalid_api_key', { type: 'authentication_error' });
  assert.equal(c.headers.get('x-floopy-decision-id'), null, 'a refused key yields no decision');

  // the organisation's other key is unaffected
  const ok = await request('GET', '/v1/models', { key: adminKey });
  assert.equal(ok.status, 200, ok.text);
});

test('the admin API refuses missing, wrong and organisation credentials (401)', async () => {
  const { org, clientKey, adminKey } = await createOrg('enterprise');
  const paths = [['GET', '/organizations'], ['POST', '/organizations'], ['GET', `/organizations/${org.id}/keys`]];
  for (const [method, path] of paths) {
    const body = method === 'POST' ? { name: 'intruder', plan: 'pro' } : undefined;
    const none = await admin(method, path, body, { token: null });
    expectOpenAIError(none, 401, 'missing_api_key', { type: 'authentication_error' });
    const wrong = await admin(method, path, body, { token: `${ADMIN_TOKEN.slice(0, -4)}beef` });
    expectOpenAIError(wrong, 401, 'invalid_api_key', { type: 'authentication_error' });
    for (const key of [clientKey, adminKey]) {
      const orgKey = await admin(method, path, body, { token: key });
      expectOpenAIError(orgKey, 401, 'invalid_api_key', { type: 'authentication_error' });
    }
  }
  // a Basic credential is not a bearer token
  const basic = await admin('GET', '/organizations', undefined,
    { token: null, headers: { authorization: `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString('base64')}` } });
  assert.equal(basic.status, 401, basic.text);
  expectOpenAIError(basic, 401);
  // nothing was created by the refused POSTs
  const l = await admin('GET', '/organizations');
  assert.ok(!l.json.data.some((o) => o.name === 'intruder'), 'a refused request created an organisation');

  // the admin token is not an organisation key
  const gw = await request('GET', '/v1/models', { key: ADMIN_TOKEN });
  expectOpenAIError(gw, 401, 'invalid_api_key', { type: 'authentication_error' });
});

test('admin API request errors: bad JSON, wrong values, unknown ids, paths and methods', async () => {
  const bad = await admin('POST', '/organizations', undefined, { raw: '{"name": "x", "plan": ' });
  expectOpenAIError(bad, 400, 'invalid_json', { type: 'invalid_request_error' });
  const notObj = await admin('POST', '/organizations', undefined, { raw: '["x","pro"]' });
  expectOpenAIError(notObj, 400, 'invalid_json', { type: 'invalid_request_error' });
  const plan = await admin('POST', '/organizations', { name: 'wrong-plan', plan: 'platinum' });
  expectOpenAIError(plan, 400, 'invalid_value', { type: 'invalid_request_error', param: 'plan' });
  const planType = await admin('POST', '/organizations', { name: 'wrong-plan', plan: 3 });
  expectOpenAIError(planType, 400, 'invalid_type', { type: 'invalid_request_error', param: 'plan' });
  const noName = await admin('POST', '/organizations', { plan: 'pro' });
  expectOpenAIError(noName, 400, 'missing_required_parameter', { type: 'invalid_request_error', param: 'name' });
  const l = await admin('GET', '/organizations');
  assert.ok(!l.json.data.some((o) => o.name === 'wrong-plan'), 'an invalid request created an organisation');

  const { org, clientKeyInfo } = await createOrg('pro');
  const role = await admin('POST', `/organizations/${org.id}/keys`, { role: 'root' });
  expectOpenAIError(role, 400, 'invalid_value', { type: 'invalid_request_error', param: 'role' });
  const keyJson = await admin('POST', `/organizations/${org.id}/keys`, undefined, { raw: '{role: client}' });
  expectOpenAIError(keyJson, 400, 'invalid_json', { type: 'invalid_request_error' });

  const ghost = unknownIdLike(org.id);
  for (const [method, path, body] of [
    ['POST', `/organizations/${ghost}/keys`, { role: 'client' }],
    ['GET', `/organizations/${ghost}/keys`, undefined],
    ['POST', `/keys/${unknownIdLike(clientKeyInfo.id)}/revoke`, undefined],
  ]) {
    const r = await admin(method, path, body);
    expectOpenAIError(r, 404, 'not_found', { type: 'not_found_error' });
  }

  const path = await admin('GET', '/nothing-here');
  expectOpenAIError(path, 404, 'unknown_url', { type: 'invalid_request_error' });
  const method = await admin('DELETE', '/organizations');
  expectOpenAIError(method, 405, 'method_not_allowed', { type: 'invalid_request_error' });
});
