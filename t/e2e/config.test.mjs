// A bad directive stops httpd at start with a message that names it. Each case writes a small
// configuration (the common one plus one bad line) and asks httpd to check it (`apache2 -t`).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { APACHE } from './lib.mjs';

const ROOT = process.env.FLOOPY_ROOT;

function check(lines) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'floopy-conf-'));
  const conf = path.join(dir, 'bad.conf');
  fs.writeFileSync(conf, [
    'Include ${FLOOPY_ROOT}/conf/floopy-common.conf',
    'Listen 127.0.0.1:1',
    'FloopyProvider p type=openai base_url=http://127.0.0.1:1/v1',
    'FloopyModel p/m input=1 output=2',
    ...lines, ''].join('\n'));
  const r = spawnSync(APACHE, ['-t', '-f', conf], { env: process.env, encoding: 'utf8' });
  fs.rmSync(dir, { recursive: true, force: true });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

test('a good configuration passes httpd -t', () => {
  const r = check(['FloopyRoute auto p/m', 'FloopyRouter regression_z=2.5 explore=0.05']);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /Syntax OK/);
});

const BAD = [
  ['FloopyProvider q type=smoke-signals base_url=http://x', /FloopyProvider: .*type/],
  ['FloopyProvider q type=openai', /FloopyProvider: provider 'q': needs base_url=/],
  ['FloopyProvider q type=openai base_url=http://x timeout=soon', /FloopyProvider: .*timeout=soon/],
  ['FloopyProvider p type=openai base_url=http://x', /FloopyProvider: provider 'p' is defined twice/],
  ['FloopyModel p/n input=cheap output=1', /FloopyModel: .*input=cheap/],
  ['FloopyModel p/n input=1', /FloopyModel: .*needs input= and output=/],
  ['FloopyModel nobody/n input=1 output=1', /FloopyModel: .*no FloopyProvider/],
  ['FloopyRoute auto p/ghost', /FloopyRoute: .*'p\/ghost' has no FloopyModel/],
  ['FloopyRoute lonely', /FloopyRoute: needs a route name and at least one/],
  ['FloopyMaxBodySize lots', /FloopyMaxBodySize: 'lots' is not a whole number/],
  ['FloopyKeyCacheTTL 0', /FloopyKeyCacheTTL: '0' is not a whole number/],
  ['FloopyWriterInterval -5', /FloopyWriterInterval: /],
  ['FloopyRouter regression_z=11', /FloopyRouter: 'regression_z=11' needs a number from 0 to 10/],
  ['FloopyRouter regression=2', /FloopyRouter: unknown option 'regression=2'/],
];

for (const [line, want] of BAD) {
  test(`refused at start: ${line}`, () => {
    const r = check([line]);
    assert.notEqual(r.code, 0, `httpd accepted: ${line}`);
    assert.match(r.out, want);
  });
}

test('an unreadable FloopyAdminTokenFile stops httpd at start', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'floopy-conf-'));
  const conf = path.join(dir, 'bad.conf');
  const port = 20000 + Math.floor(Math.random() * 20000);
  fs.writeFileSync(conf, [
    'Include ${FLOOPY_ROOT}/conf/floopy-common.conf',
    `Listen 127.0.0.1:${port}`,
    `PidFile ${dir}/httpd.pid`,
    `ErrorLog ${dir}/error.log`,
    `FloopyAdminTokenFile ${dir}/missing.token`, ''].join('\n'));
  // -X: one process in the foreground; it must exit at once with the reason in its log
  const r = spawnSync(APACHE, ['-X', '-f', conf], { env: process.env, encoding: 'utf8', timeout: 15000 });
  const log = fs.existsSync(`${dir}/error.log`) ? fs.readFileSync(`${dir}/error.log`, 'utf8') : '';
  fs.rmSync(dir, { recursive: true, force: true });
  assert.notEqual(r.status, 0);
  assert.match(`${r.stderr}${log}`, /FL002: FloopyAdminTokenFile .*missing\.token cannot be read/);
});
