/**
 * The lifecycles of the engine and the forwarder client, in process: a stop at any moment of the start
 * undoes it (the engine's init block, submitted by the first strategy tick, is cancelled and its process is
 * gone), stop()/close() called twice return one promise, and an illegal move (start after stop) throws.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zmq from 'zeromq';
import { Config } from '../../src/config/config.js';
import { LocalProvider } from '../../providers/local.js';
import { LocalChannel } from '../../providers/channels/local.js';
import { Engine } from '../../src/endpoint/engine/engine.js';
import { ForwarderClient } from '../../src/endpoint/service-link/forwarder-client.js';
import { createLogger } from '../../src/logger.js';
import { processExists } from '../../src/endpoint/daemon/lease.js';
import { IllegalStateError } from '../../src/errors.js';
import { until } from '../helpers/wait.js';

function makeEngine(dir: string, lines: string[]): Engine {
  const config = new Config({
    engine: { max_workers_per_node: 1, heartbeat_period: 0.5, heartbeat_threshold: 3 },
    provider: new LocalProvider({ init_blocks: 1, min_blocks: 1, max_blocks: 1, channel: new LocalChannel({ script_dir: join(dir, 'submit_scripts') }) }),
    strategy: { period: 0.5 },
  });
  const log = createLogger('engine', 'debug', (line) => lines.push(line));
  return new Engine({ config, name: 'lifecycle', keysDir: join(dir, 'keys'), log });
}

/** Job ids the log says were submitted. */
const submitted = (lines: string[]): string[] => lines.flatMap((l) => /block \d+ submitted as job (\S+)/.exec(l)?.[1] ?? []);

test('engine: a stop during start abandons it; nothing is submitted; stop twice is one stop; start after stop throws', async () => {
  const lines: string[] = [];
  const engine = makeEngine(mkdtempSync(join(tmpdir(), 'funcx-lc-')), lines);
  const started = engine.start();
  assert.equal(engine.state, 'starting');
  const stop1 = engine.stop({ graceMs: 0 });
  const stop2 = engine.stop({ graceMs: 0 });
  assert.equal(stop1, stop2, 'every caller awaits the same stop');
  await assert.rejects(started, /stopped while starting/);
  assert.deepEqual(await stop1, []);
  assert.equal(engine.state, 'stopped');
  assert.deepEqual(submitted(lines), [], 'the strategy never ticked');
  assert.throws(() => void engine.start(), IllegalStateError);
  assert.ok(lines.some((l) => l.includes('state starting → stopping')), lines.join('\n'));
});

test('engine: a stop right after start, while the first tick submits init_blocks, cancels that block', async () => {
  const lines: string[] = [];
  const engine = makeEngine(mkdtempSync(join(tmpdir(), 'funcx-lc-')), lines);
  await engine.start();
  assert.equal(engine.state, 'running');
  await engine.stop({ graceMs: 0 }); // the first tick is under way: stop waits for it
  const jobs = submitted(lines);
  assert.equal(jobs.length, 1, `one init block: ${lines.join('\n')}`);
  assert.ok(engine.tracker.blocks().every((b) => b.phase === 'cancelling'), 'every block was cancelled');
  const pid = Number(/^local-(\d+)$/.exec(jobs[0])?.[1]);
  assert.ok(Number.isInteger(pid), `a LocalProvider job id names its pid: ${jobs[0]}`);
  await until(`the block's process ${pid} is gone`, () => !processExists(pid));
});

test('forwarder client: close while connecting rejects the start; close twice is one close; closed is final', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'funcx-lc-fc-'));
  const serverKeys = zmq.curveKeyPair();
  const client = new ForwarderClient({
    endpointId: '00000000-0000-4000-8000-000000000000',
    forwarder: { host: '127.0.0.1', ports: { tasks: 9, results: 9, commands: 9 }, publicKey: serverKeys.publicKey },
    keys: zmq.curveKeyPair(),
    resultsDir: join(dir, 'outbox'),
    connectTimeoutMs: 60_000,
  });
  const started = client.start();
  assert.equal(client.life.state, 'connecting');
  const close1 = client.close();
  const close2 = client.close();
  assert.equal(close1, close2, 'one close for every caller');
  await close1;
  await assert.rejects(started, /closed while connecting/);
  assert.equal(client.life.state, 'closed');
  await assert.rejects(client.start(), IllegalStateError);
  await assert.rejects(client.sendResults([{ id: 'x', payload: '' } as never]), /closed/);
});
