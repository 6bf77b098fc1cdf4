import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BlockTracker } from '../../src/endpoint/engine/blocks.js';
import { QueueWaitEstimator, drainMs } from '../../src/endpoint/engine/block-wait.js';
import { type BlockLoad, type EngineView, Strategy, decide } from '../../src/endpoint/engine/strategy.js';
import type { TrackedBlock } from '../../src/endpoint/engine/blocks.js';
import { type StrategyOptions, resolveStrategyOptions } from '../../src/config/strategy-options.js';
import type { BlockRequest, BlockStatus, ExecutionProvider, SubmittedBlock } from '../../providers/provider.js';
import { SimpleLauncher } from '../../launchers/simple.js';

/** Provider double: job states set by the test. */
class FakeProvider implements ExecutionProvider {
  readonly label = 'fake';
  readonly launcher = new SimpleLauncher();
  readonly blockOptions = {};
  readonly channel = {
    kind: 'local', scriptDir: '/s', isRemote: false,
    run: async () => ({ code: 0, stdout: '', stderr: '', timedOut: false }),
    writeFile: async (p: string) => p,
    readFile: async (): Promise<Buffer> => { throw new Error('ENOENT'); },
    exposePort: async (host: string, port: number) => ({ host, port }),
    close: async () => {},
  };
  submits: BlockRequest[] = [];
  states = new Map<string, BlockStatus>();
  private nextJob = 100;
  async render(): Promise<string> { return ''; }
  async submit(request: BlockRequest): Promise<SubmittedBlock> {
    this.submits.push(request);
    const jobId = String(this.nextJob++);
    this.states.set(jobId, { state: 'pending' });
    return { jobId, scriptPath: `/s/${jobId}.sh` };
  }
  async status(ids: string[]): Promise<Map<string, BlockStatus>> {
    return new Map(ids.map((id) => [id, this.states.get(id) ?? { state: 'unknown' }]));
  }
  async cancel(ids: string[]): Promise<void> { for (const id of ids) this.states.set(id, { state: 'cancelled' }); }
  async close(): Promise<void> {}
}

class FakeEngine implements EngineView {
  queued = 0;
  loads = new Map<string, BlockLoad>();
  backlog(): number { return this.queued; }
  loadByBlock(): Map<string, BlockLoad> { return new Map(this.loads); }
  holdBlock(): void {}
  releaseBlock(): void {}
  drainBlock(): void {}
}

/** A strategy on a fake clock; tasks take 1 s by estimate. */
function setup(opts: StrategyOptions) {
  const options = resolveStrategyOptions({ period: 5, ...opts });
  const provider = new FakeProvider();
  const engine = new FakeEngine();
  const clock = { t: 1_000_000, now() { return this.t; } };
  const tracker = new BlockTracker({
    provider, clock, maxBlocks: options.maxBlocks,
    makeRequest: (blockId, shape) => ({ blockId, command: 'funcx-manager', jobName: `b${blockId}`, nodesPerBlock: shape.nodes }),
  });
  const strategy = new Strategy({ tracker, engine, options, clock, estimateMs: () => 1000 });
  /** The scheduler starts the block; its managers register, `busy` workers busy. */
  const start = async (blockId: string, busy = 0): Promise<void> => {
    const b = tracker.get(blockId)!;
    provider.states.set(b.jobId!, { state: 'running' });
    await tracker.poll();
    tracker.noteManagerRegistered(blockId);
    const workers = b.nodes * options.workersPerNode;
    engine.loads.set(blockId, { managers: b.nodes, workers, busyWorkers: busy, idleSinceMs: busy > 0 ? null : clock.t });
  };
  return { provider, engine, clock, tracker, strategy, start };
}

test('the estimate is a moving average per shape, never below a wait still under way', () => {
  const q = new QueueWaitEstimator(0.3);
  const now = 1_000_000;
  assert.equal(q.estimate({ nodes: 1, walltimeS: 600 }, now), undefined, 'nothing known yet');
  q.observe({ nodes: 1, walltimeS: 600 }, 10_000);
  q.observe({ nodes: 1, walltimeS: 600 }, 20_000);
  assert.equal(q.estimate({ nodes: 1, walltimeS: 600 }, now), 13_000); // 0.3 × 20 + 0.7 × 10
  q.observe({ nodes: 4, walltimeS: 600 }, 100_000);
  assert.equal(q.estimate({ nodes: 4, walltimeS: 600 }, now), 100_000, 'shapes are kept apart');
  // Another walltime of the same node count: the nearest walltime seen stands in.
  q.observe({ nodes: 1, walltimeS: 7200 }, 50_000);
  assert.equal(q.estimate({ nodes: 1, walltimeS: 900 }, now), 13_000);
  assert.equal(q.estimate({ nodes: 1, walltimeS: 6000 }, now), 50_000);
  assert.equal(q.estimate({ nodes: 2, walltimeS: 600 }, now), undefined);
  // A block of one node waiting 30 s already: the cluster is busier than the average says.
  const waiting = [{ nodes: 1, walltimeS: 600, submittedAt: now - 30_000 }];
  assert.equal(q.estimate({ nodes: 1, walltimeS: 600 }, now, waiting), 30_000);
  assert.equal(q.estimate({ nodes: 2, walltimeS: 600 }, now, waiting), undefined, 'a block of another size says nothing');
  const view = q.snapshot(now, waiting).find((v) => v.nodes === 1 && v.walltimeS === 600)!;
  assert.deepEqual(view, { shape: '1 node × 600 s', nodes: 1, walltimeS: 600, estimateS: 30, samples: 2, lastS: 20, waiting: 1 });
});

test('drain time: the workers running now and those arriving, one task per worker at a time', () => {
  assert.equal(drainMs(0, 1000, 0, []), 0);
  assert.equal(drainMs(10, 1000, 1, []), 10_000);
  assert.equal(drainMs(10, 1000, 0, []), Infinity, 'no worker running or coming');
  assert.equal(drainMs(10, 1000, 0, [{ atMs: Infinity, workers: 4 }]), Infinity);
  assert.equal(drainMs(10, 1000, 0, [{ atMs: 5000, workers: 2 }]), 10_000);
  assert.equal(drainMs(10, 1000, 1, [{ atMs: 20_000, workers: 5 }]), 10_000, 'done before they arrive');
  assert.equal(drainMs(10, 1000, 1, [{ atMs: 4000, workers: 2 }]), 6000);
  assert.equal(drainMs(1, 5000, 10, []), 5000, 'a task is not shared');
});

test('a block that would start after the backlog is drained is not submitted; one that helps is', async () => {
  const { provider, engine, clock, tracker, strategy, start } = setup({ max_blocks: 3 });
  engine.queued = 1;
  await strategy.tick();
  assert.equal(provider.submits.length, 1, 'no estimate yet: submitted');
  clock.t += 60_000; // the queue is busy: the block waits a minute
  await start('0', 1);
  assert.deepEqual(tracker.queueWaitSnapshot().map((v) => [v.nodes, v.estimateS, v.samples]), [[1, 60, 1]]);
  // 10 more tasks of 1 s: the running worker clears 11 in ~11 s, long before a new block would start.
  engine.queued = 10;
  let d = await strategy.tick();
  assert.deepEqual(d?.submit, []);
  assert.equal(provider.submits.length, 1);
  assert.match(d!.reason, /not submitting 2 of them \(1 node\(s\): queue wait ~60 s by estimate, the backlog is drained in ~11 s by the workers running or coming/);
  // 200 tasks: ~200 s on one worker; a block starting in ~60 s helps, and so does a second one.
  engine.queued = 200;
  d = await strategy.tick();
  assert.equal(d?.submit.length, 2);
  assert.equal(provider.submits.length, 3);
  // Two blocks are now waiting: their wait so far lifts the estimate above the average once past it.
  clock.t += 90_000;
  engine.queued = 250;
  assert.deepEqual(tracker.queueWaitSnapshot().map((v) => [v.estimateS, v.waiting]), [[90, 2]]);
});

test('blocks already coming count from their expected start; none more once the running worker drains first', () => {
  const options = resolveStrategyOptions({ period: 5, max_blocks: 6 });
  const now = 1_000_000;
  const block = (id: string, running: boolean): TrackedBlock => ({
    blockId: id, jobId: `j${id}`, state: running ? 'running' : 'pending', submittedAt: running ? now - 100_000 : now - 1000,
    runningSince: running ? now - 60_000 : null, endsAt: running ? Infinity : null, nodes: 1, walltimeS: Infinity,
    managerRegistered: running, phase: 'serving', drainingSince: null,
  });
  const blocks = [block('0', true), block('1', false), block('2', false), block('3', false)];
  const load = new Map<string, BlockLoad>([['0', { managers: 1, workers: 1, busyWorkers: 1, idleSinceMs: null }]]);
  const input = { now, options, blocks, load, firstTick: false, gate: { ok: true as const }, estimateMs: 1000, queueWaitMs: () => 40_000 };
  // 31 tasks: ~31 s on the running worker, before the three coming blocks (expected in ~39 s) start.
  let d = decide({ ...input, backlog: 30 });
  assert.deepEqual(d.submit, [], d.reason);
  assert.match(d.reason, /not submitting 2 of them \(1 node\(s\): queue wait ~40 s by estimate, the backlog is drained in ~31 s/);
  // 61 tasks: 22 are left when the coming blocks start at ~39 s, so blocks starting at ~40 s still help.
  d = decide({ ...input, backlog: 60 });
  assert.equal(d.submit.length, 2, d.reason);
  // Without an estimate, the same tick submits.
  assert.equal(decide({ ...input, backlog: 30, queueWaitMs: () => undefined }).submit.length, 2);
});

test('blocks for min_blocks are submitted whatever the estimate', async () => {
  const { provider, engine, clock, tracker, strategy, start } = setup({ max_blocks: 1, min_blocks: 1 });
  await strategy.tick();
  assert.equal(provider.submits.length, 1);
  clock.t += 120_000;
  await start('0');
  provider.states.set(tracker.get('0')!.jobId!, { state: 'completed' });
  engine.loads.clear();
  engine.queued = 0;
  const d = await strategy.tick();
  assert.equal(d?.submit.length, 1, d?.reason);
  assert.equal(provider.submits.length, 2);
});

test('where the scheduler can say when a block would start (sbatch --test-only), a block it expects after the drain is not submitted', async () => {
  const { provider, engine, clock, strategy } = setup({ max_blocks: 3, workers_per_node: 2 });
  // One node is free; the others are busy for a minute: the first block starts now, a second in 60 s.
  const free = 1;
  const asked: number[] = [];
  (provider as FakeProvider & { expectedStart: () => Promise<number> }).expectedStart = async () => {
    asked.push(clock.t);
    return provider.submits.length < free ? clock.t : clock.t + 60_000;
  };
  engine.queued = 100; // 100 s of work: 50 s on the free node's 2 workers
  let d = await strategy.tick();
  assert.equal(provider.submits.length, 1, d?.reason);
  assert.deepEqual(d?.submit, [{ nodes: 1, walltimeS: Infinity }]);
  assert.match(d!.reason, /not submitted: 1 node\(s\): the scheduler expects it to start in ~60 s, the backlog is drained in ~50 s by the workers running or coming/);
  assert.equal(asked.length, 2, 'asked once per block planned until the answer is "later", then reused');
  // The next ticks reuse the answer for 30 s: no scheduler call per tick.
  clock.t += 1000;
  d = await strategy.tick();
  assert.equal(provider.submits.length, 1);
  assert.equal(asked.length, 2);
  // 400 s of work: blocks starting in 60 s help. The answer is 30 s old: asked again, and again after the
  // submission (that block takes what the scheduler had for the next one).
  clock.t += 30_000;
  engine.queued = 400;
  d = await strategy.tick();
  assert.equal(asked.length, 4);
  assert.equal(provider.submits.length, 3, d?.reason);
  assert.doesNotMatch(d!.reason, /not submitted/);
});
