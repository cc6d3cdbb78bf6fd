// A ConverseStream body that ends cleanly after messageStop but without the metadata (usage)
// frame: the answer was complete, so the client gets its finish chunk and [DONE] (the adapter's
// stream_close), and the decision is ok with the usage unknown.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createOrg, getDecision, sse } from './lib.mjs';

test('a Bedrock stream without its metadata frame still ends with [DONE]', async () => {
  const { clientKey } = await createOrg('pro');
  const r = await sse(clientKey, {
    model: 'bedrock/no-metadata-model', stream: true,
    messages: [{ role: 'user', content: 'end without metadata' }],
  });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.done, true, `no [DONE]: ${r.text.slice(-300)}`);
  const events = r.events.map((e) => JSON.parse(e));
  assert.ok(!events.some((e) => e.error), 'an error event');
  const last = events.filter((e) => e.choices?.length).at(-1);
  assert.equal(last.choices[0].finish_reason, 'stop');
  const d = await getDecision(clientKey, r.headers.get('x-floopy-decision-id'));
  assert.equal(d.status, 'ok');
  assert.equal(d.usage.prompt_tokens, null);
});
