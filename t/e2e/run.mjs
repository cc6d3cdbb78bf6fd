#!/usr/bin/env node
// End-to-end harness: private MariaDB, mock provider, httpd with t/conf/test.conf,
// then `node --test` over t/e2e/*.test.mjs, then an error.log scan.
//
//   node t/e2e/run.mjs                 # every test file
//   node t/e2e/run.mjs chat errors     # only files whose name contains one of the words
//
// Env: FLOOPY_TEST_KEEP_DB=1 leaves MariaDB running at the end (the next run resets it).
//      FLOOPY_TEST_KEEP_HTTPD=1 leaves httpd and the mock running (prints how to reach them).
//
// The test runner's output goes to stdout unchanged; everything the harness says goes to stderr.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
// FLOOPY_TEST_VAR lets two runs (e.g. two checkouts' worth of work) live side by side.
const VAR = path.resolve(process.env.FLOOPY_TEST_VAR || path.join(ROOT, 'var', 'test'));
const CONF = path.join(ROOT, 't', 'conf', 'test.conf');
const APACHE = process.env.FLOOPY_TEST_APACHE || '/usr/sbin/apache2';
const MOCK = path.join(ROOT, 't', 'mock', 'openai-mock.mjs');
const ERROR_LOG = path.join(VAR, 'logs', 'error.log');
const PID_FILE = path.join(VAR, 'run', 'httpd.pid');
const LOCK_FILE = path.join(VAR, 'run', 'e2e.lock');
const MOCK_KEY = 'e2e-mock-provider-key';
// Servers a test starts itself beside the harness's (sticky-children.test.mjs): each in
// SERVERS/<name>/ with run/httpd.pid and logs/error.log, which the harness rotates, scans and,
// when a run was interrupted, stops like its own.
const SERVERS = path.join(VAR, 'servers');

// Lines of error.log at warn level or worse that the suite provokes on purpose, keyed on the
// message's tag (each tag names one message: t/lint/log-tags.mjs checks it), with the level it
// is logged at and what in it must match: { tag, level, re, why }. Keep it explicit and small.
const WHITELIST = [
  { tag: 'FL030', level: 'warn', re: /circuit opened for deadb\/cheap/,
    why: 'fallback.test.mjs opens deadb/cheap\'s circuit breaker on purpose' },
  { tag: 'FL053', level: 'warn', re: /judge mock\/mock-judge gave no usable verdict/,
    why: 'learning.test.mjs has the mock judge give a verdict that is not JSON' },
];

function whitelisted(line) {
  const m = /\[floopy:(\w+)\].*?(FL\d{3}): (.*)$/.exec(line);
  return !!m && WHITELIST.some((w) => w.tag === m[2] && w.level === m[1] && w.re.test(m[3]));
}

const say = (...a) => process.stderr.write(`[e2e] ${a.join(' ')}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function baseEnv(extra = {}) {
  return { ...process.env, FLOOPY_ROOT: ROOT, FLOOPY_VAR: VAR, ...extra };
}

function runScript(args, env) {
  say(`$ ./apxs-build.sh ${args.join(' ')}`);
  const r = spawnSync(path.join(ROOT, 'apxs-build.sh'), args, {
    cwd: ROOT, env, stdio: ['ignore', process.stderr, process.stderr],
  });
  if (r.error) throw r.error;
  return r.status;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const c = net.connect({ port, host: '127.0.0.1' });
    const done = (ok) => { c.destroy(); resolve(ok); };
    c.once('connect', () => done(true));
    c.once('error', () => done(false));
    c.setTimeout(500, () => done(false));
  });
}

function readPid() {
  try {
    const pid = Number(fs.readFileSync(PID_FILE, 'utf8').trim());
    return pid > 0 ? pid : null;
  } catch { return null; }
}

function alive(pid) {
  try { process.kill(pid, 0); return true; } catch (e) { return e.code === 'EPERM'; }
}

// Every other provider's mock: t/mock/<name>-mock.mjs, started like the OpenAI one; its port
// reaches httpd (and the tests) as FLOOPY_MOCK_<NAME>_PORT, for t/conf/providers/<name>.conf.
const EXTRA_MOCKS = fs.readdirSync(path.join(ROOT, 't', 'mock'))
  .filter((f) => f.endsWith('-mock.mjs') && f !== 'openai-mock.mjs')
  .map((f) => ({ file: path.join(ROOT, 't', 'mock', f),
    env: `FLOOPY_MOCK_${f.replace(/-mock\.mjs$/, '').replace(/[^a-z0-9]/gi, '_').toUpperCase()}_PORT` }));

function mockPortEnv(started) {
  const env = {};
  for (const m of EXTRA_MOCKS) env[m.env] = String(started?.[m.env]?.port ?? 1);
  return env;
}

function startMock(file = MOCK) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [file, '--port', '0'], {
      cwd: ROOT, env: baseEnv(), stdio: ['ignore', 'pipe', 'inherit'],
    });
    const timer = setTimeout(() => reject(new Error('mock did not report its port within 10 s')), 10000);
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`mock exited early (code ${code}, signal ${sig})`));
    });
    const rl = readline.createInterface({ input: child.stdout });
    rl.once('line', (line) => {
      clearTimeout(timer);
      try {
        const { port } = JSON.parse(line);
        if (!Number.isInteger(port)) throw new Error('no port');
        child.removeAllListeners('exit');
        // keep draining whatever the mock prints afterwards
        rl.on('line', (l) => process.stderr.write(`[mock] ${l}\n`));
        resolve({ child, port });
      } catch (e) {
        reject(new Error(`mock printed ${JSON.stringify(line)} instead of {"port":N}`));
      }
    });
  });
}

function httpd(action, env) {
  const r = spawnSync(APACHE, ['-f', CONF, '-k', action], {
    cwd: ROOT, env, stdio: ['ignore', process.stderr, process.stderr], timeout: 30000,
  });
  if (r.error) throw r.error;
  return r.status;
}

async function stopHttpd(env) {
  const pid = readPid();
  if (!pid || !alive(pid)) {
    try { fs.unlinkSync(PID_FILE); } catch { /* absent */ }
    return true;
  }
  const code = httpd('stop', env);
  if (code !== 0) say(`apache2 -k stop exited ${code}`);
  const deadline = Date.now() + 20000;
  while (Date.now() < deadline) {
    if (!fs.existsSync(PID_FILE) && !alive(pid)) return true;
    await sleep(100);
  }
  say(`httpd (pid ${pid}) did not stop within 20 s; sending SIGKILL`);
  try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  return false;
}

/** The directories of the servers tests started themselves, SERVERS/<name>. */
function testServers() {
  try {
    return fs.readdirSync(SERVERS).map((n) => path.join(SERVERS, n))
      .filter((d) => fs.statSync(d).isDirectory());
  } catch { return []; }
}

/** A test's own server left running by an interrupted run: SIGTERM is httpd's stop. */
async function stopTestServer(dir) {
  const pidFile = path.join(dir, 'run', 'httpd.pid');
  let pid;
  try { pid = Number(fs.readFileSync(pidFile, 'utf8').trim()); } catch { return; }
  if (pid > 0 && alive(pid)) {
    say(`stopping httpd left by a previous run in ${dir} (pid ${pid})`);
    try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
    const deadline = Date.now() + 20000;
    while (alive(pid) && Date.now() < deadline) await sleep(100);
    if (alive(pid)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
  try { fs.unlinkSync(pidFile); } catch { /* absent */ }
}

function scanErrorLog() {
  const bad = [];
  let seen = 0;
  // the test servers' logs count only when a test of this run started them (they are rotated
  // at the start)
  const logs = [ERROR_LOG, ...testServers().map((d) => path.join(d, 'logs', 'error.log'))
    .filter((f) => fs.existsSync(f))];
  for (const log of logs) {
    let text;
    try { text = fs.readFileSync(log, 'utf8'); } catch (e) {
      bad.push(`cannot read ${log}: ${e.message}`);
      continue;
    }
    const r = scanLines(text);
    bad.push(...r.bad.map((l) => (log === ERROR_LOG ? l : `${path.relative(VAR, log)}: ${l}`)));
    seen += r.seen;
  }
  return { bad, seen };
}

function scanLines(text) {
  const bad = [];
  let seen = 0;
  for (const line of text.split('\n')) {
    if (!line) continue;
    const lvl = /\[([A-Za-z0-9_]+):(warn|error|crit|alert|emerg)\]/.exec(line);
    const fatal = /Segmentation fault|exit signal|AddressSanitizer|double free|Assertion .* failed/.test(line);
    if (!lvl && !fatal) continue;
    seen++;
    if (!fatal && whitelisted(line)) continue;
    bad.push(line);
  }
  return { bad, seen };
}

async function main() {
  const filters = process.argv.slice(2);
  let files = fs.readdirSync(HERE).filter((f) => f.endsWith('.test.mjs')).sort();
  if (filters.length) files = files.filter((f) => filters.some((w) => f.includes(w)));
  if (!files.length) { say('no test files match'); return 2; }

  if (!fs.existsSync(MOCK)) { say(`missing ${MOCK}`); return 2; }
  fs.mkdirSync(path.join(VAR, 'logs'), { recursive: true });
  fs.mkdirSync(path.join(VAR, 'run'), { recursive: true });

  // One run per FLOOPY_VAR: a second one would reset the database under the first.
  try {
    const other = Number(fs.readFileSync(LOCK_FILE, 'utf8').trim());
    if (other && other !== process.pid && alive(other)) {
      say(`another e2e run (pid ${other}) is using ${VAR}; wait for it or set FLOOPY_TEST_VAR`);
      return 2;
    }
  } catch { /* no lock */ }
  fs.writeFileSync(LOCK_FILE, `${process.pid}\n`);
  process.on('exit', () => {
    try { if (fs.readFileSync(LOCK_FILE, 'utf8').trim() === String(process.pid)) fs.unlinkSync(LOCK_FILE); } catch { /* gone */ }
  });

  // A previous run that was interrupted may have left httpd behind.
  const stale = readPid();
  if (stale && alive(stale)) {
    say(`stopping httpd left by a previous run (pid ${stale})`);
    await stopHttpd(baseEnv({ FLOOPY_PORT: '1', FLOOPY_MOCK_PORT: '1', FLOOPY_PROBE_PORT: '1', FLOOPY_TEST_MOCK_KEY: MOCK_KEY, ...mockPortEnv() }));
  } else if (stale) {
    fs.unlinkSync(PID_FILE);
  }
  for (const dir of testServers()) await stopTestServer(dir);

  // 1. database, clean
  if (runScript(['db-start'], baseEnv({ FLOOPY_DB_RESET: '1' })) !== 0) {
    say('db-start failed');
    return 2;
  }
  const adminToken = fs.readFileSync(path.join(VAR, 'admin.token'), 'utf8').trim();

  // 2. mock provider
  const mock = await startMock();
  say(`mock provider on 127.0.0.1:${mock.port}`);
  const extra = {};
  for (const m of EXTRA_MOCKS) {
    extra[m.env] = await startMock(m.file);
    say(`mock ${path.basename(m.file)} on 127.0.0.1:${extra[m.env].port}`);
  }

  // 3. httpd; the previous run's logs are kept once, as *.prev
  for (const f of ['error.log', 'access.log']) {
    const p = path.join(VAR, 'logs', f);
    if (fs.existsSync(p)) fs.renameSync(p, `${p}.prev`);
  }
  for (const dir of testServers()) {
    const logs = path.join(dir, 'logs');
    if (!fs.existsSync(logs)) continue;
    for (const f of fs.readdirSync(logs).filter((n) => n.endsWith('.log'))) {
      fs.renameSync(path.join(logs, f), path.join(logs, `${f}.prev`));
    }
  }
  const port = await freePort();
  const probePort = await freePort(); // disconnect.test.mjs listens there itself
  const httpdEnv = baseEnv({
    FLOOPY_PORT: String(port),
    FLOOPY_MOCK_PORT: String(mock.port),
    FLOOPY_PROBE_PORT: String(probePort),
    FLOOPY_TEST_MOCK_KEY: MOCK_KEY,
    ...mockPortEnv(extra),
  });
  let testsCode = 1;
  let started = false;
  const cleanup = async () => {
    if (started && !process.env.FLOOPY_TEST_KEEP_HTTPD) await stopHttpd(httpdEnv);
    if (!process.env.FLOOPY_TEST_KEEP_HTTPD) {
      mock.child.kill('SIGTERM');
      for (const m of Object.values(extra)) m.child.kill('SIGTERM');
    }
  };
  const onSignal = async (sig) => {
    say(`${sig}: cleaning up`);
    await cleanup();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    say(`httpd on 127.0.0.1:${port} (${CONF})`);
    const code = httpd('start', httpdEnv);
    if (code !== 0) throw new Error(`apache2 -k start exited ${code}`);
    started = true;
    const deadline = Date.now() + 15000;
    while (!(await canConnect(port))) {
      if (Date.now() > deadline) throw new Error('httpd did not answer within 15 s');
      await sleep(100);
    }

    // 4. tests
    const testEnv = {
      ...httpdEnv,
      FLOOPY_TEST_BASE: `http://127.0.0.1:${port}`,
      FLOOPY_TEST_ADMIN_TOKEN: adminToken,
      FLOOPY_TEST_MOCK_BASE: `http://127.0.0.1:${mock.port}`,
      FLOOPY_TEST_MOCK_KEY: MOCK_KEY,
      FLOOPY_TEST_CONF: CONF,
      FLOOPY_TEST_APACHE: APACHE,
      FLOOPY_TEST_PID_FILE: PID_FILE,
      FLOOPY_TEST_ERROR_LOG: ERROR_LOG,
      FLOOPY_TEST_SERVERS: SERVERS,
    };
    const args = ['--test', '--test-concurrency=1', '--test-timeout=180000',
      ...files.map((f) => path.join(HERE, f))];
    testsCode = await new Promise((resolve) => {
      const t = spawn(process.execPath, args, { cwd: ROOT, env: testEnv, stdio: ['ignore', 'inherit', 'inherit'] });
      t.on('exit', (c, s) => resolve(c ?? (s ? 1 : 0)));
    });
  } catch (e) {
    say(`harness: ${e.message}`);
    try { say(`last lines of ${ERROR_LOG}:\n${fs.readFileSync(ERROR_LOG, 'utf8').split('\n').slice(-30).join('\n')}`); } catch { /* none */ }
    testsCode = 2;
  }

  // 5. stop, scan
  if (process.env.FLOOPY_TEST_KEEP_HTTPD) {
    say(`left running: httpd on 127.0.0.1:${port}, mock on 127.0.0.1:${mock.port}; stop with`);
    say(`  FLOOPY_ROOT=${ROOT} FLOOPY_VAR=${VAR} FLOOPY_PORT=${port} FLOOPY_MOCK_PORT=${mock.port} `
      + `FLOOPY_PROBE_PORT=${httpdEnv.FLOOPY_PROBE_PORT} FLOOPY_TEST_MOCK_KEY=${MOCK_KEY} ${APACHE} -f ${CONF} -k stop; `
      + `kill ${mock.child.pid}; FLOOPY_VAR=${VAR} ./apxs-build.sh db-stop`);
    mock.child.unref();
  }
  await cleanup();
  process.removeListener('SIGINT', onSignal);
  process.removeListener('SIGTERM', onSignal);

  const scan = started ? scanErrorLog() : { bad: [], seen: 0 };
  if (scan.bad.length) {
    say(`error.log: ${scan.bad.length} unexpected line(s) at warn level or worse:`);
    for (const l of scan.bad) process.stderr.write(`  ${l}\n`);
  } else {
    say(`error.log: clean (${scan.seen} warn+ line(s), all whitelisted)`);
  }

  if (!process.env.FLOOPY_TEST_KEEP_DB && !process.env.FLOOPY_TEST_KEEP_HTTPD) runScript(['db-stop'], baseEnv());

  const ok = testsCode === 0 && scan.bad.length === 0;
  say(ok ? 'PASS' : `FAIL (tests exit ${testsCode}, ${scan.bad.length} unexpected log line(s))`);
  return ok ? 0 : 1;
}

main().then((code) => process.exit(code), (e) => {
  say(`harness crashed: ${e.stack || e}`);
  process.exit(2);
});
