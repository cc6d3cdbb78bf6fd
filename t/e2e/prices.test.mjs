// Prices live in MariaDB's model_prices (sql/002), updatable by the operator: a row for a model
// overrides its FloopyModel prices within FloopyPriceRefresh (1 s in the test configuration),
// cached prompt tokens are priced at the cached rate, and removing the row restores the
// directive's prices.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { assertClose, chat, costOf, createOrg, dbQuery, getDecision, sleep } from './lib.mjs';

let key;
before(async () => { ({ clientKey: key } = await createOrg('pro')); });

async function costOfOneCall() {
  const r = await chat(key, { model: 'mock/mock-large', messages: [{ role: 'user', content: 'price me' }] });
  assert.equal(r.status, 200, r.text);
  const d = await getDecision(key, r.headers.get('x-floopy-decision-id'));
  assert.ok(d.usage.prompt_tokens > 0 && d.usage.completion_tokens > 0);
  return d;
}

test('the seed has published prices', () => {
  const rows = dbQuery("SELECT input_per_mtok, output_per_mtok FROM model_prices WHERE provider_type='openai' AND model='gpt-4o-mini'");
  assert.deepEqual(rows, [['0.150000', '0.600000']]);
});

test('an operator UPDATE reaches the next decisions; a DELETE restores the directive prices', async () => {
  let d = await costOfOneCall();
  assertClose(d.cost_usd, costOf(d.usage, { input: 2.5, output: 10, cached_input: 1.25 }), 'directive prices');

  assert.ok(dbQuery("REPLACE INTO model_prices (provider_type, model, input_per_mtok, output_per_mtok, cached_input_per_mtok, source) VALUES ('openai', 'mock-large', 5, 20, 2.5, 'e2e')") !== null);
  await sleep(2500); // FloopyPriceRefresh 1 plus the writer's interval
  d = await costOfOneCall();
  assertClose(d.cost_usd, costOf(d.usage, { input: 5, output: 20, cached_input: 2.5 }), 'table prices');

  assert.ok(dbQuery("DELETE FROM model_prices WHERE provider_type='openai' AND model='mock-large'") !== null);
  await sleep(2500);
  d = await costOfOneCall();
  assertClose(d.cost_usd, costOf(d.usage, { input: 2.5, output: 10, cached_input: 1.25 }), 'directive prices again');
});
