/**
 * The result size limit end to end (engine.result_size_limit = 1 MB in the profile, real CLI endpoint, SDK):
 * a result over the limit fails with ResultTooLarge naming the limit, one under it arrives whole, and the
 * channel keeps working for the tasks after.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RemoteError } from '../../src/protocol/payload.js';
import { CliStack, localProfile } from './harness.js';

const LIMIT = 1_000_000;

test('a result over engine.result_size_limit fails with ResultTooLarge; the next tasks still run', async (t) => {
  const stack = await CliStack.start();
  t.after(() => stack.stop());
  stack.writeProfile(localProfile('', `result_size_limit: ${LIMIT}`));
  const endpointId = await stack.startEndpoint();
  const sdk = stack.sdk;
  const text = await sdk.registerFunction((n: number) => 'x'.repeat(n), { name: 'text' });
  const bytes = await sdk.registerFunction((n: number) => new Uint8Array(n).fill(7), { name: 'bytes' });
  const inc = await sdk.registerFunction((x: number) => x + 1, { name: 'inc' });

  const under = await sdk.getResult<string>(await sdk.run(endpointId, text, 900_000), { waitMs: 30_000 });
  assert.equal(under.length, 900_000, 'a result under the limit arrives whole');

  // 2 MB would pass the default 10 MiB limit: failing here shows the profile's limit is the one applied.
  for (const [fn, n] of [[text, 2_000_000], [bytes, 1_500_000], [text, 20_000_000]] as const) {
    await assert.rejects(sdk.getResult(await sdk.run(endpointId, fn, n), { waitMs: 30_000 }), (err: unknown) => {
      assert.ok(err instanceof RemoteError, String(err));
      assert.equal(err.remoteType, 'ResultTooLarge');
      assert.match(err.message, new RegExp(`over the limit of ${LIMIT} bytes`));
      return true;
    });
  }

  assert.equal(await sdk.getResult(await sdk.run(endpointId, inc, 41), { waitMs: 30_000 }), 42);
  const batch = sdk.createBatch();
  for (let i = 0; i < 200; i++) batch.add(endpointId, inc, i);
  const results = await sdk.getBatchResults<number>(await sdk.batchRun(batch), { waitMs: 30_000 });
  assert.deepEqual(results.map((r) => r.value), Array.from({ length: 200 }, (_, i) => i + 1));
});
