// What the mock fidelity checks (t/mock/check-*.mjs) share: starting a mock, counting
// passes and failures, and the end ("N passed, N failed", non-zero exit on any failure).
//
//   const mock = await startMock('openai-mock.mjs', { env: { MOCK_CHUNK_DELAY_MS: '1' } });
//   await check('name', async () => { ... });
//   await run(main);   // never returns
//
// Not used by check-gemini.mjs (still being written).

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import readline from 'node:readline';
import assert from 'node:assert/strict';

const here = path.dirname(fileURLToPath(import.meta.url));
const children = [];

// Start t/mock/<file> on a free port: {child, port, base}.
export function startMock(file, { env = {}, args = [] } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(here, file), '--port', '0', ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
    const rl = readline.createInterface({ input: child.stdout });
    const timer = setTimeout(() => reject(new Error('mock did not report its port')), 5000);
    rl.once('line', (line) => {
      clearTimeout(timer);
      try {
        const { port } = JSON.parse(line);
        resolve({ child, port, base: `http://127.0.0.1:${port}` });
      } catch {
        reject(new Error(`bad first line from mock: ${line}`));
      }
    });
    child.once('exit', (code) => reject(new Error(`mock exited early (${code})`)));
  });
}

export function stopMocks() {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
}

let passed = 0;
let failed = 0;

// quiet: no "ok" line for a pass; stackLines: how much of a failure's stack to show.
export async function check(name, fn, { quiet = false, stackLines = 6 } = {}) {
  try {
    await fn();
    passed++;
    if (!quiet) console.log(`ok - ${name}`);
  } catch (err) {
    failed++;
    console.log(`not ok - ${name}`);
    console.log(`  ${String(err && err.stack ? err.stack : err).split('\n').slice(0, stackLines).join('\n  ')}`);
  }
}

// The promise must reject (with an instance of Cls when given); returns the error.
export async function expectThrow(promise, Cls) {
  try {
    await promise;
  } catch (err) {
    if (Cls) assert.ok(err instanceof Cls, `expected ${Cls.name}, got ${err && err.constructor && err.constructor.name}: ${err && err.message}`);
    return err;
  }
  assert.fail(`expected ${Cls ? Cls.name : 'an error'}, got success`);
}

// Run main; a throw counts as one failure ("not ok - <label>: ..."). Then stop the mocks,
// print "N passed, N failed" and exit non-zero on any failure.
export async function run(main, label = 'harness') {
  try {
    await main();
  } catch (err) {
    failed++;
    console.log(`not ok - ${label}: ${err && err.stack ? err.stack : err}`);
  } finally {
    stopMocks();
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
