#!/usr/bin/env node
// Fidelity check of t/mock/bedrock-mock.mjs against the official AWS SDK
// (@aws-sdk/client-bedrock-runtime, installed in t/node_modules): the SDK signs every request
// with SigV4 and the mock verifies the signature itself, so a pass means the mock accepts what
// AWS's own signer produces (model ids with ':' included) and speaks frames the SDK decodes.
// Prints "N passed, N failed"; exits non-zero on any failure.
//
//   node t/mock/check-bedrock.mjs            the checks
//   node t/mock/check-bedrock.mjs --capture  also prints one SDK-signed Converse request
//                                            (for the SigV4 unit test)

import assert from 'node:assert/strict';
import {
  BedrockRuntimeClient,
  ConverseCommand,
  ConverseStreamCommand,
  ThrottlingException,
  InternalServerException,
  ValidationException,
} from '@aws-sdk/client-bedrock-runtime';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { startMock, check as checkWith, expectThrow, run } from './check-lib.mjs';

const check = (name, fn) => checkWith(name, fn, { stackLines: 8 });
const CREDS = { accessKeyId: 'AKIAFLOOPYTEST000001', secretAccessKey: 'floopy/test/secret/key/0000000000000000000' };
const MODEL = 'anthropic.claude-3-5-sonnet-20241022-v2:0';
const user = (text, extra = []) => ({ role: 'user', content: [{ text }, ...extra] });
const TOOLS = {
  tools: [{ toolSpec: { name: 'lookup', description: 'look something up', inputSchema: { json: { type: 'object', properties: { q: { type: 'string' } } } } } }],
};
// a 1x1 PNG
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');

async function collect(stream) {
  const out = { text: '', events: [], tool: null, stop: null, usage: null };
  for await (const ev of stream) {
    const kind = Object.keys(ev)[0];
    out.events.push(kind);
    if (ev.contentBlockDelta?.delta?.text) out.text += ev.contentBlockDelta.delta.text;
    if (ev.contentBlockStart?.start?.toolUse) out.tool = { ...ev.contentBlockStart.start.toolUse, input: '' };
    if (ev.contentBlockDelta?.delta?.toolUse) out.tool.input += ev.contentBlockDelta.delta.toolUse.input;
    if (ev.messageStop) out.stop = ev.messageStop.stopReason;
    if (ev.metadata) out.usage = ev.metadata.usage;
  }
  return out;
}

async function main() {
  const { port } = await startMock('bedrock-mock.mjs');
  const base = `http://127.0.0.1:${port}`;
  const client = new BedrockRuntimeClient({
    region: 'us-east-1',
    endpoint: base,
    credentials: CREDS,
    maxAttempts: 1,
    // the SDK opens ConverseStream over HTTP/2 by default; the mock is node:http (HTTP/1.1)
    requestHandler: new NodeHttpHandler(),
  });
  const log = async () => (await fetch(`${base}/__mock/requests`)).json();

  if (process.argv.includes('--capture')) {
    await fetch(`${base}/__mock/requests`, { method: 'DELETE' });
    await client.send(new ConverseCommand({ modelId: MODEL, messages: [user('hi')] }));
    const [r] = await log();
    console.log(JSON.stringify({ path: r.path, host: r.headers.host, date: r.headers['x-amz-date'], authorization: r.headers.authorization, body: JSON.stringify(r.body), headers: r.headers }, null, 1));
  }

  await check('plain Converse, SigV4 of a model id with ":" verified', async () => {
    const r = await client.send(new ConverseCommand({ modelId: MODEL, system: [{ text: 'Be terse.' }], messages: [user('hello there')], inferenceConfig: { maxTokens: 50 } }));
    assert.equal(r.output.message.content[0].text, 'Echo: hello there');
    assert.equal(r.stopReason, 'end_turn');
    assert.deepEqual(r.usage, { inputTokens: 5, outputTokens: 3, totalTokens: 8 });
    const last = (await log()).at(-1);
    assert.equal(last.path, '/model/anthropic.claude-3-5-sonnet-20241022-v2%3A0/converse');
    assert.equal(last.sigv4.ok, true);
    assert.match(last.sigv4.canonical, /\/model\/anthropic\.claude-3-5-sonnet-20241022-v2%253A0\/converse\n/);
  });

  await check('stream: frames decoded by the SDK, usage after messageStop', async () => {
    const r = await client.send(new ConverseStreamCommand({ modelId: MODEL, messages: [user('stream me please')] }));
    const got = await collect(r.stream);
    assert.equal(got.text, 'Echo: stream me please');
    assert.equal(got.stop, 'end_turn');
    assert.deepEqual(got.events.slice(-2), ['messageStop', 'metadata']);
    assert.equal(got.usage.outputTokens, 4);
  });

  await check('tools: toolUse, then Tool said after a toolResult', async () => {
    const r = await client.send(new ConverseCommand({ modelId: MODEL, messages: [user('weather in Paris')], toolConfig: TOOLS }));
    const tu = r.output.message.content[0].toolUse;
    assert.equal(r.stopReason, 'tool_use');
    assert.equal(tu.name, 'lookup');
    assert.deepEqual(tu.input, { q: 'weather in Paris' });
    const r2 = await client.send(new ConverseCommand({
      modelId: MODEL,
      toolConfig: TOOLS,
      messages: [
        user('weather in Paris'),
        { role: 'assistant', content: [{ toolUse: tu }] },
        { role: 'user', content: [{ toolResult: { toolUseId: tu.toolUseId, content: [{ text: 'sunny' }] } }] },
      ],
    }));
    assert.equal(r2.output.message.content[0].text, 'Tool said: sunny');
  });

  await check('stream tool call: contentBlockStart + input fragments', async () => {
    const r = await client.send(new ConverseStreamCommand({ modelId: MODEL, messages: [user('find x')], toolConfig: TOOLS }));
    const got = await collect(r.stream);
    assert.equal(got.tool.name, 'lookup');
    assert.deepEqual(JSON.parse(got.tool.input), { q: 'find x' });
    assert.equal(got.stop, 'tool_use');
  });

  await check('image bytes (the SDK base64-encodes them)', async () => {
    const r = await client.send(new ConverseCommand({ modelId: MODEL, messages: [user('what is it', [{ image: { format: 'png', source: { bytes: PNG } } }])] }));
    assert.equal(r.output.message.content[0].text, 'Echo: what is it [images: 1]');
    const last = (await log()).at(-1);
    assert.equal(last.body.messages[0].content[1].image.source.bytes, PNG.toString('base64'));
  });

  await check('429 ThrottlingException', async () => {
    const err = await expectThrow(client.send(new ConverseCommand({ modelId: 'fail-429', messages: [user('x')] })), ThrottlingException);
    assert.equal(err.$metadata.httpStatusCode, 429);
  });

  await check('500 InternalServerException', async () => {
    const err = await expectThrow(client.send(new ConverseCommand({ modelId: 'fail-500', messages: [user('x')] })), InternalServerException);
    assert.equal(err.$metadata.httpStatusCode, 500);
  });

  await check('400 ValidationException for an empty content array', async () => {
    await expectThrow(client.send(new ConverseCommand({ modelId: MODEL, messages: [{ role: 'user', content: [] }] })), ValidationException);
  });

  await check('exception frame mid-stream reaches the SDK as its exception', async () => {
    const r = await client.send(new ConverseStreamCommand({ modelId: 'exc-throttle', messages: [user('x y')] }));
    const err = await expectThrow(collect(r.stream));
    assert.match(String(err.name), /[Tt]hrottlingException/);
  });

  await check('a frame with a bad CRC is refused by the SDK', async () => {
    const r = await client.send(new ConverseStreamCommand({ modelId: 'bad-crc', messages: [user('x y')] }));
    await expectThrow(collect(r.stream));
  });

  await check('cut stream: the SDK sees an error, not a clean end', async () => {
    const r = await client.send(new ConverseStreamCommand({ modelId: 'cut', messages: [user('one two three')] }));
    await expectThrow(collect(r.stream));
  });

  await check('a wrong secret is refused with InvalidSignatureException', async () => {
    const bad = new BedrockRuntimeClient({ region: 'us-east-1', endpoint: base, credentials: { ...CREDS, secretAccessKey: 'wrong' }, maxAttempts: 1, requestHandler: new NodeHttpHandler() });
    const err = await expectThrow(bad.send(new ConverseCommand({ modelId: MODEL, messages: [user('x')] })));
    assert.equal(err.name, 'InvalidSignatureException');
    assert.equal(err.$metadata.httpStatusCode, 403);
  });
}

await run(main, 'setup');
