/**
 * `allowed_functions` end to end, through the real service, the real endpoint started by the CLI and the SDK:
 * a profile allowing only function A runs A, and refuses B (and a shell command, which is no registered
 * function) with a clear "function not allowed" error, without B ever reaching a worker.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RemoteError } from '../../src/protocol/payload.js';
import { ShellFunction } from '../../src/sdk/functions.js';
import { CliStack, localProfile } from './harness.js';

test('a profile with allowed_functions [A] runs A and refuses B with "function not allowed"', async (t) => {
  const stack = await CliStack.start();
  t.after(() => stack.stop());
  const sdk = stack.sdk;
  const a = await sdk.registerFunction((x: number) => `A ran with ${x}`, { name: 'A' });
  const b = await sdk.registerFunction(() => 'B ran', { name: 'B' });
  stack.writeProfile(localProfile(`allowed_functions: [${JSON.stringify(a)}],`));
  const endpointId = await stack.startEndpoint();

  assert.equal(await sdk.getResult(await sdk.run(endpointId, a, 1), { waitMs: 30_000 }), 'A ran with 1');

  const refusedB = await sdk.run(endpointId, b);
  await assert.rejects(sdk.getResult(refusedB, { waitMs: 30_000 }), (err: unknown) => {
    assert.ok(err instanceof RemoteError, String(err));
    assert.equal(err.remoteType, 'FunctionNotAllowed');
    assert.match(err.message, /function not allowed/);
    assert.ok(err.message.includes(b), `the error names function ${b}: ${err.message}`);
    return true;
  });
  const states = (await sdk.getTransitions(refusedB)).map((x) => x.state);
  assert.equal(states.at(-1), 'failed');
  assert.ok(!states.includes('running'), `B never ran on a worker: ${states.join(' → ')}`);

  const shell = await sdk.run(endpointId, ShellFunction('echo should-not-run'));
  await assert.rejects(sdk.getResult(shell, { waitMs: 30_000 }), { name: 'RemoteError', remoteType: 'FunctionNotAllowed', message: /function not allowed/ });

  // A mixed batch: every A runs, every B is refused; the endpoint keeps serving.
  const batch = sdk.createBatch();
  for (let i = 0; i < 20; i++) batch.add(endpointId, i % 2 ? b : a, i);
  const results = await sdk.getBatchResults<string>(await sdk.batchRun(batch), { waitMs: 30_000 });
  results.forEach((r, i) => {
    if (i % 2) assert.equal(r.error?.type, 'FunctionNotAllowed', `task ${i}`);
    else assert.equal(r.value, `A ran with ${i}`, `task ${i}`);
  });
});
