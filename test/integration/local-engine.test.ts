/**
 * The engine on the embedded default (LocalProvider): work brings up a block, the work completes, the idle
 * block is given back; stop cancels blocks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Config } from '../../src/config/config.js';
import { LocalProvider } from '../../providers/local.js';
import { LocalChannel } from '../../providers/channels/local.js';
import { Engine } from '../../src/endpoint/engine/engine.js';
import { createLogger } from '../../src/logger.js';
import { jsTask } from '../helpers/engine-fixture.js';
import { until } from '../helpers/wait.js';
import type { ResultEnvelope } from '../../src/protocol/messages.js';
import { decodeOutcome } from '../../src/protocol/payload.js';

function makeEngine(dir: string, maxIdle = 2): Engine {
  const config = new Config({
    engine: { max_workers_per_node: 2, heartbeat_period: 0.5, heartbeat_threshold: 3 },
    provider: new LocalProvider({ init_blocks: 0, min_blocks: 0, max_blocks: 1, channel: new LocalChannel({ script_dir: join(dir, 'submit_scripts') }) }),
    strategy: { period: 0.5, max_idletime: maxIdle, walltime_margin: 1 },
  });
  return new Engine({ config, name: 'test', keysDir: join(dir, 'keys'), log: createLogger('engine', (process.env.FUNCX_LOG_LEVEL as 'warn') ?? 'warn') });
}

test('a burst brings up one block, runs everything, and the idle block is cancelled', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'funcx-local-'));
  const engine = makeEngine(dir);
  await engine.start();
  try {
    const results: ResultEnvelope[] = [];
    engine.onResults = (rs) => results.push(...rs);
    engine.submitMany(Array.from({ length: 50 }, (_, i) => jsTask('(i) => i + 1', [i], 'inc')));
    await until('a block to be submitted', () => engine.tracker.blocks().length === 1);
    await until('all 50 results', () => results.length === 50);
    assert.ok(results.every((r) => !r.failed));
    const sum = results.reduce((s, r) => s + (decodeOutcome(r.payload) as { value: number }).value, 0);
    assert.equal(sum, (50 * 51) / 2);
    assert.ok(engine.tracker.blocks().length <= 1, 'max_blocks is 1');
    await until('the idle block to be given back', () => engine.tracker.blocks().length === 0);
    assert.equal(engine.interchange.registry.size, 0, 'its manager left');
  } finally {
    await engine.stop({ graceMs: 0 });
  }
});

test('stop cancels running blocks and reports unfinished tasks', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'funcx-local-'));
  const engine = makeEngine(dir, 60);
  await engine.start();
  const pending = engine.submit(jsTask('() => new Promise(() => {})', [], 'hang'));
  void pending;
  await until('a manager', () => engine.interchange.registry.size === 1);
  const unfinished = await engine.stop({ graceMs: 100 });
  assert.equal(unfinished.length, 1);
  await until('the block to end', () => engine.tracker.blocks().every((b) => b.phase === 'cancelling'));
  assert.equal(engine.state, 'stopped');
});
