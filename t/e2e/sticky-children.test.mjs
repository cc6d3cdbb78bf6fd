// Session stickiness across child processes: an httpd of the test's own (t/conf/sticky-children.conf:
// event MPM, three children that stay up, no keep-alive) serves a route of three equally priced
// models that always explores. Requests of a few sessions, each on a connection of its own, land
// on different children; every request of a session must still get the model its first one got,
// while the same requests without a session id are spread over the models (so the assertion
// could fail: without the shared table the children would choose apart).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { APACHE, createOrg, nonce, sleep } from './lib.mjs';

const ROOT = process.env.FLOOPY_ROOT;
const MAIN_VAR = process.env.FLOOPY_VAR;
const CONF = path.join(ROOT, 't', 'conf', 'sticky-children.conf');
const DIR = path.join(process.env.FLOOPY_TEST_SERVERS ?? path.join(MAIN_VAR, 'servers'), 'sticky-children');
const PID_FILE = path.join(DIR, 'run', 'httpd.pid');
const CHILDREN_LOG = path.join(DIR, 'logs', 'children.log');
const CHILDREN = 3;          // StartServers = ServerLimit in the conf
const SESSIONS = 4;
const PER_SESSION = 15;
const CONCURRENCY = 6;

let env;
let port;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

function canConnect(p) {
  return new Promise((resolve) => {
    const c = net.connect({ port: p, host: '127.0.0.1' });
    const done = (ok) => { c.destroy(); resolve(ok); };
    c.once('connect', () => done(true));
    c.once('error', () => done(false));
    c.setTimeout(500, () => done(false));
  });
}

function ctl(action) {
  const r = spawnSync(APACHE, ['-f', CONF, '-k', action], { env, encoding: 'utf8', timeout: 30000 });
  return { code: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}`, error: r.error };
}

const readPid = () => {
  try { return Number(fs.readFileSync(PID_FILE, 'utf8').trim()) || null; } catch { return null; }
};

/** The pids whose parent is `ppid` (Linux /proc): httpd's children. */
function childrenOf(ppid) {
  const out = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      // pid (comm) state ppid …: comm may hold spaces, so read after the last ')'
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[1]) === ppid) out.push(Number(d));
    } catch { /* gone */ }
  }
  return out;
}

/** One chat request on a connection of its own (no agent, Connection: close). */
function chatOnce(key, body, headers = {}) {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port, path: '/v1/chat/completions', method: 'POST', agent: false,
      headers: {
        authorization: `Bearer ${key}`, 'content-type': 'application/json',
        'content-length': Buffer.byteLength(payload), connection: 'close', ...headers,
      },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

async function pool(items, concurrency, fn) {
  let next = 0;
  const out = new Array(items.length);
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  }));
  return out;
}

/** decision id -> pid of the child that served it, from the conf's %P access log. */
function servedBy() {
  const m = new Map();
  for (const line of fs.readFileSync(CHILDREN_LOG, 'utf8').split('\n')) {
    const f = /^(\d+) "([^"]*)" "([^"]*)" "([^"]*)"$/.exec(line);
    if (f && f[4] !== '-') m.set(f[4], Number(f[1]));
  }
  return m;
}

before(async () => {
  assert.ok(ROOT && MAIN_VAR, 'run with node t/e2e/run.mjs');
  for (const d of ['logs', 'run']) fs.mkdirSync(path.join(DIR, d), { recursive: true });
  // the harness's user, database and admin token; pid file, logs and runtime dir of its own
  for (const f of ['site.conf', 'dbd.conf', 'admin.token']) {
    const link = path.join(DIR, f);
    try { fs.unlinkSync(link); } catch { /* absent */ }
    fs.symlinkSync(path.join(MAIN_VAR, f), link);
  }
  try { fs.unlinkSync(CHILDREN_LOG); } catch { /* absent */ }
  port = await freePort();
  env = { ...process.env, FLOOPY_VAR: DIR, FLOOPY_STICKY_PORT: String(port) };
  const r = ctl('start');
  assert.equal(r.code, 0, `apache2 -k start: ${r.out} ${r.error ?? ''}`);
  const deadline = Date.now() + 15000;
  let kids = [];
  for (;;) {
    const pid = readPid();
    kids = pid ? childrenOf(pid) : [];
    if (kids.length >= CHILDREN && (await canConnect(port))) break;
    assert.ok(Date.now() < deadline, `httpd did not come up with ${CHILDREN} children (${kids.length})`);
    await sleep(100);
  }
});

after(async () => {
  const pid = readPid();
  if (!pid) return;
  ctl('stop');
  const deadline = Date.now() + 20000;
  while (fs.existsSync(PID_FILE) && Date.now() < deadline) await sleep(100);
});

test('a session keeps its model whichever child serves it', { timeout: 150000 }, async () => {
  const { clientKey } = await createOrg('pro');
  const tag = nonce('sticky');
  const sessions = Array.from({ length: SESSIONS }, (_, i) => `${tag}-s${i}`);
  // the sessions' requests interleaved, so every session meets every child
  const jobs = [];
  for (let n = 0; n < PER_SESSION; n++) for (const s of sessions) jobs.push({ s, n });
  const body = (j) => ({ model: 'sticky', messages: [{ role: 'user', content: `${tag} request ${j.n}` }] });

  const send = async (j) => {
    const r = await chatOnce(clientKey, body(j), { 'x-floopy-session-id': j.s });
    assert.equal(r.status, 200, r.text);
    return { ...j, model: r.headers['x-floopy-model'], id: r.headers['x-floopy-decision-id'] };
  };
  // A session's first request goes alone: two first requests of one session at once both find
  // no entry and may choose apart (a race of its own, not the one under test here).
  const firsts = await pool(jobs.filter((j) => j.n === 0), SESSIONS, send);
  const withSession = [...firsts, ...await pool(jobs.filter((j) => j.n > 0), CONCURRENCY, send)];
  // the same requests, no session: each is a draw of its own
  const without = await pool(jobs, CONCURRENCY, async (j) => {
    const r = await chatOnce(clientKey, body(j));
    assert.equal(r.status, 200, r.text);
    return { ...j, model: r.headers['x-floopy-model'], id: r.headers['x-floopy-decision-id'] };
  });

  const pids = servedBy();
  const pidOf = (x) => {
    const p = pids.get(x.id);
    assert.ok(p, `decision ${x.id} is not in ${CHILDREN_LOG}`);
    return p;
  };
  const report = {};
  for (const s of sessions) {
    const mine = withSession.filter((x) => x.s === s);
    report[s.slice(tag.length + 1)] = {
      models: [...new Set(mine.map((x) => x.model))],
      pids: [...new Set(mine.map(pidOf))].sort(),
    };
  }
  const freeModels = {};
  for (const x of without) freeModels[x.model] = (freeModels[x.model] ?? 0) + 1;
  const allPids = {};
  for (const x of [...withSession, ...without]) allPids[pidOf(x)] = (allPids[pidOf(x)] ?? 0) + 1;
  console.log(`# requests per child ${JSON.stringify(allPids)}; sessions ${JSON.stringify(report)}; `
    + `without a session ${JSON.stringify(freeModels)}`);

  // (a) more than one child served, and the sessions' requests crossed children
  assert.ok(Object.keys(allPids).length >= 2, `one child served everything: ${JSON.stringify(allPids)}`);
  const crossed = Object.values(report).filter((r) => r.pids.length >= 2).length;
  assert.ok(crossed >= SESSIONS / 2, `few sessions met more than one child: ${JSON.stringify(report)}`);
  // (b) one model per session, whichever child
  for (const [s, r] of Object.entries(report)) {
    assert.equal(r.models.length, 1, `session ${s} changed model: ${JSON.stringify(r)}`);
  }
  // (c) without a session the same requests vary: stickiness is what kept the sessions still
  assert.ok(Object.keys(freeModels).length >= 2, `no variation without a session: ${JSON.stringify(freeModels)}`);
});
