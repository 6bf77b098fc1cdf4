/**
 * encodeJsTask (the endpoint's per-task payload, built from a cached prefix for the last function) gives the
 * very bytes encodeTask does, for every size of arguments msgpack tells apart and across function changes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeTask, encodeArgs, encodeJsTask, encodeTask } from '../../src/protocol/payload.js';

test('encodeJsTask equals encodeTask byte for byte (bin 8, 16 and 32 arguments; functions changing)', () => {
  const fns = [
    { id: 'f1', source: '() => null' },
    { id: 'f2', source: `(x) => x + ${'1'.repeat(5000)}` },
    { id: 'f1', source: '() => 1' }, // same id, new source: not the old prefix
  ];
  const sizes = [0, 1, 255, 256, 65_535, 65_536, 200_000];
  for (const fn of [...fns, ...fns]) {
    for (const n of sizes) {
      const args = new Uint8Array(n).map((_, i) => i % 251);
      const expected = encodeTask({ kind: 'js', functionId: fn.id, source: fn.source, args });
      const got = encodeJsTask(fn.id, fn.source, args);
      assert.ok(got.equals(expected), `${fn.id} with ${n} argument bytes`);
    }
  }
  const real = encodeArgs([1, 'two', { three: 3 }]);
  const body = decodeTask(encodeJsTask('f3', '(a, b, c) => a', real));
  assert.deepEqual(body, { kind: 'js', functionId: 'f3', source: '(a, b, c) => a', args: Buffer.from(real) });
});
