/**
 * A result batch may carry the starts of its own tasks (`running`): the endpoint holds a start briefly so
 * that a short task's start and result cost one message (issue 14 item 3). Checked by the forwarder's parser.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode } from '../../src/protocol/codec.js';
import { parseFromEndpoint } from '../../src/protocol/forwarder-messages.js';
import { ResultSpool } from '../../src/endpoint/service-link/result-spool.js';

const result = (id: string) => ({ id, failed: false, payload: Buffer.from([0x90]) });

test('a spooled batch carries the starts it is given, and none when given none (the frame older services read)', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'funcx-spool-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const spool = new ResultSpool(dir);
  const withStarts = parseFromEndpoint('results', spool.batch([result('a'), result('b')], ['b']).frame);
  assert.deepEqual(withStarts.kind === 'results' && withStarts.running, ['b']);
  const without = parseFromEndpoint('results', spool.batch([result('c')]).frame);
  assert.ok(without.kind === 'results' && !('running' in without));
});

test('a result batch whose "running" is not an array of strings is refused', () => {
  for (const running of ['a', [1], [null], {}]) {
    const frame = encode({ kind: 'results', seq: 1, results: [result('a')], running } as never);
    assert.throws(() => parseFromEndpoint('results', frame), /results "running" must be an array of strings/, JSON.stringify(running));
  }
});
