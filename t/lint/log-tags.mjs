#!/usr/bin/env node
// Every log message of the module carries a tag "FLnnn:" of its own, so that a test (and an
// operator's alert) can tell one message from another by its tag alone. This check fails when
// two messages share a tag, when a log call has none, or when the e2e whitelist names a tag no
// message has.
//
//   node t/lint/log-tags.mjs        (./apxs-build.sh test runs it)
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const DIRS = ['mod_floopy', 'admin'];

function sources(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory() && e.name !== 'core' && !e.name.startsWith('.')) out.push(...sources(p));
    else if (e.isFile() && e.name.endsWith('.c')) out.push(p);
  }
  return out;
}

const tags = new Map();     // tag -> [where]
const untagged = [];
for (const file of DIRS.flatMap((d) => sources(path.join(ROOT, d)))) {
  const text = fs.readFileSync(file, 'utf8');
  // each ap_log_* call up to its closing ");": the format string is in there
  const re = /ap_log_(?:r|p|c)?error\s*\(([\s\S]*?)\);/g;
  let m;
  while ((m = re.exec(text))) {
    const line = text.slice(0, m.index).split('\n').length;
    const where = `${path.relative(ROOT, file)}:${line}`;
    const t = /"(FL\d{3}):/.exec(m[1]);
    if (!t) { untagged.push(where); continue; }
    if (!tags.has(t[1])) tags.set(t[1], []);
    tags.get(t[1]).push(where);
  }
}

const problems = [];
for (const [tag, where] of tags) {
  if (where.length > 1) problems.push(`${tag} names ${where.length} messages: ${where.join(', ')}`);
}
for (const where of untagged) problems.push(`a log message without an FLnnn tag at ${where}`);

const runner = fs.readFileSync(path.join(ROOT, 't', 'e2e', 'run.mjs'), 'utf8');
for (const m of runner.matchAll(/\{\s*tag:\s*'(FL\d{3})'/g)) {
  if (!tags.has(m[1])) problems.push(`t/e2e/run.mjs whitelists ${m[1]}, which no message has`);
}

if (problems.length) {
  for (const p of problems) console.error(`log-tags: ${p}`);
  process.exit(1);
}
console.log(`log-tags: ${tags.size} tags, each on one message`);
