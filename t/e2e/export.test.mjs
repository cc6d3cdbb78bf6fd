// GET /v1/export/decisions: JSONL over chunked transfer whose last line carries the SHA-256 of
// every byte before it (checked by the real sha256sum, not by the module's code), the row count
// and truncation; one export per organisation at a time; a row cap that says how to go on.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import { before, test } from 'node:test';
import { BASE, chat, createOrg, dbQuery, expectOpenAIError, request, sleep } from './lib.mjs';

let A, B, C;

function sha256sumOfAllButLastLine(body) {
  const r = spawnSync('bash', ['-c', 'head -n -1 | sha256sum'], { input: body });
  assert.equal(r.status, 0);
  return r.stdout.toString().split(' ')[0];
}

function parseExport(body) {
  const lines = body.toString('utf8').split('\n');
  assert.equal(lines.pop(), '', 'the export ends with a newline');
  const trailer = JSON.parse(lines.pop());
  return { rows: lines.map((l) => JSON.parse(l)), trailer };
}

async function exportOf(key, query = '') {
  const r = await fetch(`${BASE}/v1/export/decisions${query}`, { headers: { authorization: `Bearer ${key}` } });
  const body = Buffer.from(await r.arrayBuffer());
  return { status: r.status, headers: r.headers, body };
}

function seed(orgId, n) {
  // n synthetic decisions an hour old, ids ordered like UUIDv7s
  const sql = `SET SESSION max_recursive_iterations = ${n + 1};
    INSERT INTO decisions (id, org_id, route, alternatives, signals, constraints_applied, confidence, phase,
      status, http_status, latency_total_ms, attempts, created_at, completed_at)
    WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < ${n})
    SELECT CONCAT('00000000-0000-7000-8000-', LPAD(HEX(n), 12, '0')), '${orgId}', 'auto', '[]', '{}', '{}', 0,
      'day0', 'ok', 200, 1.5, '[]', NOW(3) - INTERVAL 1 HOUR, NOW(3) - INTERVAL 1 HOUR FROM seq`;
  assert.ok(dbQuery(sql) !== null, 'seeding failed');
}

before(async () => {
  A = await createOrg('pro');
  B = await createOrg('pro');
  C = await createOrg('enterprise');
  for (let i = 0; i < 7; i++) await chat(A.clientKey, { model: 'auto', messages: [{ role: 'user', content: `e${i}` }] });
  await chat(B.clientKey, { model: 'auto', messages: [{ role: 'user', content: 'b' }] });
  seed(C.org.id, 30000);
  await sleep(2600);
});

test('the export streams chunked JSONL whose trailer digest sha256sum confirms', async () => {
  const r = await exportOf(A.clientKey);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('transfer-encoding'), 'chunked');
  assert.match(r.headers.get('content-type'), /application\/x-ndjson/);
  const { rows, trailer } = parseExport(r.body);
  assert.equal(rows.length, 7);
  assert.ok(rows.every((d) => d.organization_id === A.org.id && d.object === 'floopy.decision'));
  assert.deepEqual(rows.map((d) => d.id), [...rows.map((d) => d.id)].sort(), 'oldest first');
  assert.equal(trailer.object, 'floopy.export.trailer');
  assert.equal(trailer.rows, 7);
  assert.equal(trailer.truncated, false);
  assert.equal(trailer.reason, null);
  assert.equal(trailer.next_after, null);
  assert.equal(trailer.sha256, sha256sumOfAllButLastLine(r.body));
  // a changed byte changes the digest
  const tampered = Buffer.from(r.body);
  tampered[10] ^= 1;
  assert.notEqual(sha256sumOfAllButLastLine(tampered), trailer.sha256);
});

test('an organisation exports only its own decisions', async () => {
  const { rows, trailer } = parseExport((await exportOf(B.clientKey)).body);
  assert.equal(rows.length, 1);
  assert.equal(trailer.rows, 1);
  assert.equal(rows[0].organization_id, B.org.id);
});

test('a capped export says so and tells where to go on; going on completes it', async () => {
  const first = await exportOf(C.clientKey);
  assert.equal(first.status, 200);
  const a = parseExport(first.body);
  assert.equal(a.rows.length, 20000);
  assert.equal(a.trailer.truncated, true);
  assert.equal(a.trailer.reason, 'max_rows');
  assert.equal(a.trailer.next_after, a.rows.at(-1).id);
  assert.equal(a.trailer.sha256, sha256sumOfAllButLastLine(first.body));
  const second = await exportOf(C.clientKey, `?after=${a.trailer.next_after}`);
  const b = parseExport(second.body);
  assert.equal(b.rows.length, 10000);
  assert.equal(b.trailer.truncated, false);
  assert.equal(b.trailer.sha256, sha256sumOfAllButLastLine(second.body));
  assert.ok(b.rows[0].id > a.trailer.next_after);
});

test('one export per organisation at a time; a client that leaves frees the slot at once', async () => {
  // a client that does not read: the export blocks once the socket buffers are full
  const url = new URL(`${BASE}/v1/export/decisions`);
  const req = http.get({ host: url.hostname, port: url.port, path: url.pathname, headers: { authorization: `Bearer ${C.clientKey}` } });
  const res = await new Promise((resolve, reject) => { req.on('response', resolve); req.on('error', reject); });
  assert.equal(res.statusCode, 200);
  res.pause();
  await sleep(300);
  const second = await request('GET', '/v1/export/decisions', { key: C.adminKey });
  expectOpenAIError(second, 429, 'export_in_progress');
  assert.equal(second.headers.get('retry-after'), '5');
  // another organisation is not held up
  assert.equal((await exportOf(B.clientKey)).status, 200);
  req.destroy();
  let after = null;
  for (let i = 0; i < 30 && after !== 200; i++) {
    await sleep(100);
    after = (await exportOf(C.clientKey, '?from=2000-01-01T00:00:00Z')).status;
  }
  assert.equal(after, 200, 'the slot was not freed after the client left');
});

test('bad parameters get 400', async () => {
  for (const [q, param] of [['?after=nope', 'after'], ['?from=soon', 'from'], ['?format=csv', 'format']]) {
    const r = await request('GET', `/v1/export/decisions${q}`, { key: A.clientKey });
    expectOpenAIError(r, 400, 'invalid_value');
    assert.equal(r.json.error.param, param);
  }
});
