// What the mock providers share (Node stdlib only). One mock runs per process, so the
// request log, the stats and the pending timers are this module's own state.
//
//   const m = mockName('openai-mock');          // messages are prefixed with it
//   const args = parseArgs();                   // --port N [--host H]
//   ... handle(req, res, raw) using record(), introspect(), later(), stall() ...
//   serve(args, handle, (res) => send a 500);   // prints exactly one {"port":N} line
//
// Not used by gemini-mock.mjs (still being written).

import http from 'node:http';
import crypto from 'node:crypto';

export const CHUNK_DELAY_MS = Math.max(0, Number(process.env.MOCK_CHUNK_DELAY_MS ?? 2) || 0);
export const STALL_MS = 120000;
export const LOG_MAX = 200;

let NAME = 'mock';
export function mockName(name) {
  NAME = name;
}

export function fail(msg) {
  process.stderr.write(`${NAME}: ${msg}\n`);
  process.exit(2);
}

// --port N, --port=N, --host H, --host=H, -h/--help. strict: anything else is an error;
// otherwise other arguments are ignored.
export function parseArgs({ strict = true, argv = process.argv.slice(2) } = {}) {
  const out = { port: 0, host: '127.0.0.1' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) fail(`missing value for ${a}`);
      return argv[++i];
    };
    if (a === '--port') out.port = Number(next());
    else if (a.startsWith('--port=')) out.port = Number(a.slice(7));
    else if (a === '--host') out.host = next();
    else if (a.startsWith('--host=')) out.host = a.slice(7);
    else if (a === '-h' || a === '--help') {
      process.stdout.write(`usage: ${NAME}.mjs --port N [--host 127.0.0.1]\n`);
      process.exit(0);
    } else if (strict) fail(`unknown argument ${a}`);
  }
  if (!Number.isInteger(out.port) || out.port < 0 || out.port > 65535) fail('bad --port');
  return out;
}

// ---------------------------------------------------------------- timers

const timers = new Set();

export function later(ms, fn) {
  const t = setTimeout(() => {
    timers.delete(t);
    fn();
  }, ms);
  timers.add(t);
  return t;
}

export const sleep = (ms) => new Promise((resolve) => later(ms, resolve));

// Keep the socket open and silent; destroy it after STALL_MS.
export function stall(res) {
  const t = later(STALL_MS, () => res.socket && res.socket.destroy());
  res.on('close', () => {
    clearTimeout(t);
    timers.delete(t);
  });
}

// The connection dies 20 ms from now.
export const dieSoon = (res) => later(20, () => res.socket && res.socket.destroy());

// ---------------------------------------------------------------- request log and stats

export const requestLog = [];
export const stats = { total: 0, models: {} };

// A logged body: parsed JSON, the raw string when it is not JSON, null when empty.
export function loggedBody(raw) {
  if (!raw.length) return null;
  const s = typeof raw === 'string' ? raw : raw.toString('utf8');
  try {
    return JSON.parse(s);
  } catch {
    return s;
  }
}

export function record(entry) {
  requestLog.push(entry);
  while (requestLog.length > LOG_MAX) requestLog.shift();
}

export function countModel(model) {
  stats.total++;
  stats.models[model] = (stats.models[model] || 0) + 1;
}

// GET/DELETE /__mock/requests and (withStats) GET /__mock/stats, answered with
// send(status, obj). True when answered.
export function introspect(req, path, send, { withStats = false } = {}) {
  if (path !== '/__mock/requests' && !(withStats && path === '/__mock/stats')) return false;
  if (path === '/__mock/requests' && req.method === 'GET') return send(200, requestLog), true;
  if (path === '/__mock/requests' && req.method === 'DELETE') {
    requestLog.length = 0;
    stats.total = 0;
    stats.models = {};
    return send(200, { cleared: true }), true;
  }
  if (path === '/__mock/stats' && req.method === 'GET') return send(200, stats), true;
  return false;
}

// ---------------------------------------------------------------- text and the echo answer

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
export function randAlnum(n, alphabet = ALNUM) {
  const bytes = crypto.randomBytes(n);
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[bytes[i] % alphabet.length];
  return s;
}

export const words = (s) => (typeof s === 'string' ? s.split(/\s+/).filter(Boolean).length : 0);

// OpenAI-style content: a string, or the text parts of an array joined by a space.
export function contentText(content) {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .filter((p) => p && p.type === 'text' && typeof p.text === 'string')
      .map((p) => p.text)
      .join(' ');
  }
  return '';
}

export const countImages = (c) => (Array.isArray(c) ? c.filter((p) => p && p.type === 'image_url').length : 0);

// Words over every message's text + 1 per message.
export function promptWords(messages, text = contentText) {
  let n = 0;
  for (const m of messages) n += words(text(m && m.content)) + 1;
  return n;
}

// The deterministic answer to OpenAI-shaped messages:
//   last message role "tool"                  -> {kind:'text', text:'Tool said: <content>'}
//   tools, no tool message after the last user message, tool_choice !== none
//                                             -> toolCall(tools, userText, body)
//   otherwise                                 -> {kind:'text', text:'Echo: <last user text>[ [images: N]]'}
export function echoPlan(body, { text = contentText, images = countImages, none = 'none', toolCall }) {
  const messages = Array.isArray(body.messages) ? body.messages : [];
  let lastUser = -1;
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i] && messages[i].role === 'user') {
      lastUser = i;
      break;
    }
  }
  const userMsg = lastUser >= 0 ? messages[lastUser] : null;
  const userText = userMsg ? text(userMsg.content) : '';
  const last = messages[messages.length - 1];
  if (last && last.role === 'tool') return { kind: 'text', text: `Tool said: ${text(last.content)}` };
  const tools = Array.isArray(body.tools) ? body.tools.filter((t) => t && t.function && t.function.name) : [];
  const toolAfterUser = messages.slice(lastUser + 1).some((m) => m && m.role === 'tool');
  if (tools.length > 0 && !toolAfterUser && body.tool_choice !== none) return toolCall(tools, userText, body);
  const n = userMsg ? images(userMsg.content) : 0;
  return { kind: 'text', text: `Echo: ${userText}${n ? ` [images: ${n}]` : ''}` };
}

// Pieces that concatenate back to s; at least two when possible.
export function splitPieces(s) {
  let pieces = s.match(/\s*\S+|\s+$/g) || [];
  if (pieces.length < 2 && s.length >= 2) {
    const h = Math.ceil(s.length / 2);
    pieces = [s.slice(0, h), s.slice(h)];
  }
  if (pieces.length === 0) pieces = [s];
  return pieces;
}

// Tool-call arguments in 1 to 4 fragments.
export function splitArgs(s) {
  const n = Math.min(4, Math.max(1, Math.ceil(s.length / 8)));
  const size = Math.ceil(s.length / n);
  const out = [];
  for (let i = 0; i < s.length; i += size) out.push(s.slice(i, i + size));
  return out.length ? out : [''];
}

// ---------------------------------------------------------------- writing

export const sseData = (obj) => `data: ${JSON.stringify(obj)}\n\n`;
export const sseEvent = (event, data) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

// Write and wait until the data left for the kernel (or the socket died).
export function writeAsync(res, data) {
  return new Promise((resolve) => {
    if (res.destroyed || res.writableEnded) return resolve(false);
    res.write(data, () => resolve(!res.destroyed));
  });
}

// Write each item, MOCK_CHUNK_DELAY_MS apart; false once the socket died.
export async function writeEach(res, items) {
  for (const item of items) {
    if (!(await writeAsync(res, item))) return false;
    if (CHUNK_DELAY_MS) await sleep(CHUNK_DELAY_MS);
  }
  return true;
}

// The first half of a body whose headers announced all of it, then the connection dies.
export function writeHalf(res, full) {
  res.write(full.subarray(0, Math.floor(full.length / 2)), () => dieSoon(res));
}

// "slow-MS" in the model: wait MS. False when the client left meanwhile.
export async function slowDown(model, res) {
  const slow = /slow-(\d+)/.exec(model);
  if (slow) {
    await sleep(Number(slow[1]));
    if (res.destroyed) return false;
  }
  return true;
}

// ---------------------------------------------------------------- the server

// handle(req, res, body) gets the body as a utf8 string (raw: as a Buffer); internalError(res)
// answers when handle throws before the headers went out.
export function serve(args, handle, internalError, { raw = false, host = args.host, headersTimeout = 66000 } = {}) {
  const server = http.createServer((req, res) => {
    const parts = [];
    req.on('data', (d) => parts.push(d));
    req.on('end', () => {
      const body = Buffer.concat(parts);
      handle(req, res, raw ? body : body.toString('utf8')).catch((err) => {
        process.stderr.write(`${NAME}: ${err && err.stack ? err.stack : err}\n`);
        if (!res.headersSent) internalError(res);
        else res.destroy();
      });
    });
    req.on('error', () => {});
  });
  server.keepAliveTimeout = 65000;
  if (headersTimeout) server.headersTimeout = headersTimeout;
  server.requestTimeout = 0;

  let stopping = false;
  function shutdown() {
    if (stopping) return;
    stopping = true;
    for (const t of timers) clearTimeout(t);
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 500).unref();
  }
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  server.on('error', (err) => fail(err.message));
  server.listen(args.port, host, () => {
    process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
  });
  return server;
}
