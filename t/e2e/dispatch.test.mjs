// The endpoint table (http/dispatch.c): one place answers 404 for a path nobody serves, 405 with
// the Allow a client needs to correct itself, and 403 for a role that falls short, before any
// handler reads the body; the same for the admin API.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { admin, createOrg, expectOpenAIError, request } from './lib.mjs';

let O;
before(async () => { O = await createOrg('pro'); });

test('405 says which methods the path takes (Allow)', async () => {
  for (const [method, path, allow] of [
    ['DELETE', '/v1/constraints', 'GET, PUT'],
    ['GET', '/v1/chat/completions', 'POST'],
    ['PUT', '/v1/experiments', 'GET, POST'],
    ['GET', '/v1/experiments/01900000-0000-7000-8000-000000000000/rollback', 'POST'],
    ['POST', '/v1/decisions/01900000-0000-7000-8000-000000000000', 'GET'],
  ]) {
    const r = await request(method, path, { key: O.adminKey });
    expectOpenAIError(r, 405, 'method_not_allowed', { type: 'invalid_request_error' });
    assert.equal(r.headers.get('allow'), allow, `${method} ${path}`);
  }
});

test('the role is checked before the body is read: a client key gets 403, even with bad JSON', async () => {
  for (const [method, path] of [['PUT', '/v1/constraints'], ['POST', '/v1/experiments'],
    ['POST', '/v1/experiments/01900000-0000-7000-8000-000000000000/rollback'], ['GET', '/v1/audit-events']]) {
    const r = await request(method, path, { key: O.clientKey, raw: method === 'GET' ? undefined : '{not json' });
    expectOpenAIError(r, 403, 'insufficient_role', { type: 'permission_error' });
  }
  // an admin key with the same bad body reaches the handler, which refuses the JSON
  expectOpenAIError(await request('PUT', '/v1/constraints', { key: O.adminKey, raw: '{not json' }), 400, 'invalid_json');
});

test('a {id} is one non-empty segment: empty or deeper paths are unknown', async () => {
  for (const path of ['/v1/decisions/', '/v1/experiments/', '/v1/decisions/a/b', '/v1/experiments/x/pause']) {
    expectOpenAIError(await request('GET', path, { key: O.clientKey }), 404, 'unknown_url');
  }
});

test('HEAD is served where GET is', async () => {
  const r = await request('HEAD', '/v1/models', { key: O.clientKey });
  assert.equal(r.status, 200);
});

test('the admin API dispatches through the same table', async () => {
  const r = await admin('PUT', '/organizations');
  expectOpenAIError(r, 405, 'method_not_allowed');
  assert.equal(r.headers.get('allow'), 'POST, GET');
  expectOpenAIError(await admin('GET', '/keys/x/revoke'), 405, 'method_not_allowed');
  expectOpenAIError(await admin('GET', '/nothing'), 404, 'unknown_url');
  // organisation keys never reach it
  expectOpenAIError(await admin('GET', '/organizations', undefined, { token: O.adminKey }), 401, 'invalid_api_key');
});
