import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BlockTracker } from '../../src/endpoint/engine/blocks.js';
import { type BlockLoad, type EngineView, Strategy, decide } from '../../src/endpoint/engine/strategy.js';
import { type StrategyOptions, resolveStrategyOptions } from '../../src/config/strategy-options.js';
import type { BlockRequest, BlockStatus, ExecutionProvider, SubmittedBlock } from '../../providers/provider.js';
import { SimpleLauncher } from '../../launchers/simple.js';
import { ConfigError, SubmitError } from '../../src/errors.js';

/** Provider double: records calls, keeps job states, fails on demand. */
class FakeProvider implements ExecutionProvider {
  readonly label = 'fake';
  readonly launcher = new SimpleLauncher();
  readonly blockOptions = { max_blocks: 1, walltime: 600 };
  readonly channel = {
    kind: 'local', scriptDir: '/s', isRemote: false,
    run: async () => ({ code: 0, stdout: '', stderr: '', timedOut: false }),
    writeFile: async (p: string) => p,
    readFile: async (): Promise<Buffer> => { throw new Error('ENOENT'); },
    exposePort: async (host: string, port: number) => ({ host, port }),
    close: async () => {},
  };
  submits: BlockRequest[] = [];
  statusCalls = 0;
  cancels: string[][] = [];
  states = new Map<string, BlockStatus>();
  failSubmit = false;
  failStatus = false;
  private nextJob = 100;
  async render(): Promise<string> { return ''; }
  async submit(request: BlockRequest): Promise<SubmittedBlock> {
    this.submits.push(request);
    if (this.failSubmit) throw new SubmitError('sbatch failed', 'sbatch', 1, 'sbatch: error: Batch job submission failed');
    const jobId = String(this.nextJob++);
    this.states.set(jobId, { state: 'pending' });
    return { jobId, scriptPath: `/s/${jobId}.sh` };
  }
  async status(ids: string[]): Promise<Map<string, BlockStatus>> {
    this.statusCalls++;
    if (this.failStatus) throw new SubmitError('squeue failed', 'squeue', 1, 'squeue: error: timeout');
    return new Map(ids.map((id) => [id, this.states.get(id) ?? { state: 'unknown' }]));
  }
  async cancel(ids: string[]): Promise<void> {
    this.cancels.push([...ids]);
    for (const id of ids) this.states.set(id, { state: 'cancelled' });
  }
  async close(): Promise<void> {}
}

/** EngineView double: the test sets backlog and loads, and sees every hold/release/drain. */
class FakeEngine implements EngineView {
  queued = 0;
  loads = new Map<string, BlockLoad>();
  calls: string[] = [];
  backlog(): number { return this.queued; }
  loadByBlock(): Map<string, BlockLoad> { return new Map(this.loads); }
  holdBlock(id: string): void { this.calls.push(`hold ${id}`); }
  releaseBlock(id: string): void { this.calls.push(`release ${id}`); }
  drainBlock(id: string): void { this.calls.push(`drain ${id}`); }
}

function setup(opts: StrategyOptions, estimateMs?: number) {
  const options = resolveStrategyOptions({ period: 5, ...opts });
  const provider = new FakeProvider();
  const engine = new FakeEngine();
  const clock = { t: 1_000_000, now() { return this.t; } };
  const tracker = new BlockTracker({
    provider, clock, maxBlocks: options.maxBlocks,
    makeRequest: (blockId, shape) => ({ blockId, command: 'funcx-manager', jobName: `b${blockId}`, nodesPerBlock: shape.nodes }),
  });
  const strategy = new Strategy({ tracker, engine, options, clock, estimateMs: () => estimateMs });
  /** Make a block run, with its managers registered and the given load. */
  const run = (blockId: string, load: Partial<BlockLoad> = {}): void => {
    const b = tracker.get(blockId)!;
    provider.states.set(b.jobId!, { state: 'running' });
    tracker.noteManagerRegistered(blockId);
    const workers = b.nodes * options.workersPerNode;
    engine.loads.set(blockId, { managers: b.nodes, workers, busyWorkers: 0, idleSinceMs: clock.t, ...load });
  };
  return { options, provider, engine, clock, tracker, strategy, run };
}

test('resolveStrategyOptions fills defaults from one const and converts to ms', () => {
  const r = resolveStrategyOptions();
  assert.deepEqual(r, {
    periodMs: 5000, maxIdleMs: 120_000, walltimeMarginMs: 60_000, workersPerNode: 1, maxPendingMs: 600_000, initBlocks: 0, minBlocks: 0,
    maxBlocks: 1, parallelism: 1, nodes: { min: 1, max: 1 }, walltimeS: { min: Infinity, max: Infinity },
  });
  const s = resolveStrategyOptions({ nodes_per_block: { min: 1, max: 4 }, walltime: { min: '00:10:00', max: 7200 } });
  assert.deepEqual([s.nodes, s.walltimeS], [{ min: 1, max: 4 }, { min: 600, max: 7200 }]);
  assert.deepEqual(resolveStrategyOptions({ walltime: '01:00:00' }).walltimeS, { min: 3600, max: 3600 });
  // Fields left undefined (a profile that does not set them) take their defaults.
  assert.deepEqual(resolveStrategyOptions({ period: undefined, max_blocks: undefined, walltime: undefined }), r);
});

test('contradictory or bad limits are ConfigErrors naming the field', () => {
  const cases: Array<[StrategyOptions, RegExp]> = [
    [{ min_blocks: 3, max_blocks: 2 }, /provider\.min_blocks must be ≤ provider\.max_blocks \(2\) \(got 3\)/],
    [{ init_blocks: 3, max_blocks: 2 }, /provider\.init_blocks must be ≤ provider\.max_blocks \(2\) \(got 3\)/],
    [{ nodes_per_block: 0 }, /provider\.nodes_per_block must be a whole number ≥ 1 \(got 0\)/],
    [{ nodes_per_block: { min: 3, max: 2 } }, /provider\.nodes_per_block\.min must be ≤ its max \(2\) \(got 3\)/],
    [{ nodes_per_block: { min: 0, max: 2 } }, /provider\.nodes_per_block\.min must be a whole number ≥ 1 \(got 0\)/],
    [{ walltime: 'soon' }, /provider\.walltime must be a walltime: "HH:MM:SS", "D-HH:MM:SS" or whole seconds ≥ 1 \(got "soon"\)/],
    [{ walltime: { min: '00:10:00', max: 'later' } }, /provider\.walltime\.max must be a walltime/],
    [{ walltime: { min: 7200, max: 600 } }, /provider\.walltime\.min must be ≤ its max \(600 s\) \(got 7200\)/],
    [{ walltime: 60 }, /provider\.walltime must be longer than strategy\.walltime_margin \(60 s\) \+ strategy\.period \(5 s\) \(got 60\)/],
    [{ parallelism: 1.5 }, /provider\.parallelism must be a number ≥ 0 and ≤ 1 \(got 1\.5\)/],
    [{ max_blocks: 0 }, /provider\.max_blocks must be a whole number ≥ 1 \(got 0\)/],
    [{ period: 0 }, /strategy\.period must be a number > 0 \(got 0\)/],
    [{ workers_per_node: 2.5 }, /workers_per_node/],
  ];
  for (const [opts, re] of cases) {
    assert.throws(() => resolveStrategyOptions(opts, 'config.ts'), (e: unknown) => e instanceof ConfigError && /^config\.ts: /.test(e.message) && re.test(e.message), JSON.stringify(opts));
  }
});

test('a burst submits up to max_blocks at once, and pending blocks count so later ticks add none', async () => {
  const { provider, engine, strategy, tracker } = setup({ max_blocks: 2, nodes_per_block: 2, workers_per_node: 2 });
  engine.queued = 200;
  const d = await strategy.tick();
  assert.deepEqual(d?.submit, [{ nodes: 2, walltimeS: Infinity }, { nodes: 2, walltimeS: Infinity }]);
  assert.match(d!.reason, /backlog 200 \+ busy 0 needs 200 worker\(s\).*submit 2 block\(s\) of 2\+2 node\(s\).*capped by max_blocks 2/);
  for (let i = 0; i < 5; i++) await strategy.tick();
  assert.equal(provider.submits.length, 2);
  assert.equal(tracker.blocks().length, 2);
  assert.match(strategy.lastDecision!.reason, /at max_blocks 2/);
});

test('max_blocks = 1 gives one job, even while the first submission is slow', async () => {
  const { provider, engine, strategy } = setup({ max_blocks: 1 });
  engine.queued = 50;
  const first = strategy.tick();
  assert.equal(await strategy.tick(), null, 'a tick does not overlap a running one');
  await first;
  for (let i = 0; i < 3; i++) await strategy.tick();
  assert.equal(provider.submits.length, 1);
});

test('pending capacity covers the backlog: no submission when coming workers suffice', async () => {
  const { provider, engine, strategy } = setup({ max_blocks: 5, nodes_per_block: 2, workers_per_node: 2 });
  engine.queued = 4;
  await strategy.tick();
  engine.queued = 6; // 4 workers are coming: 2 more are needed, one block
  await strategy.tick();
  engine.queued = 8;
  const d = await strategy.tick();
  assert.equal(provider.submits.length, 2);
  assert.deepEqual(d?.submit, []);
});

test('busy work counts as demand, and parallelism scales it', async () => {
  const a = setup({ max_blocks: 10, workers_per_node: 4 });
  a.engine.queued = 4;
  await a.strategy.tick();
  a.run('0', { busyWorkers: 4, idleSinceMs: null });
  a.engine.queued = 4; // 4 busy + 4 queued on 4 workers: one more block
  assert.equal((await a.strategy.tick())?.submit.length, 1);
  const b = setup({ max_blocks: 100, parallelism: 0.5 });
  b.engine.queued = 16;
  assert.equal((await b.strategy.tick())?.submit.length, 8);
  const c = setup({ max_blocks: 100, parallelism: 0 });
  c.engine.queued = 16;
  assert.equal((await c.strategy.tick())?.submit.length, 1, 'some work always gets at least one worker');
});

test('init_blocks on the first tick only; min_blocks kept', async () => {
  const { provider, strategy } = setup({ init_blocks: 2, min_blocks: 1, max_blocks: 3 });
  const d = await strategy.tick();
  assert.equal(d?.submit.length, 2);
  assert.match(d!.reason, /2 block\(s\) for init_blocks\/min_blocks/);
  await strategy.tick();
  assert.equal(provider.submits.length, 2);
});

test('scale-in holds an idle block on one tick and cancels it on a later one, keeping min_blocks', async () => {
  const { provider, engine, strategy, clock, run, tracker } = setup({ max_blocks: 3, min_blocks: 1, walltime: 3600 });
  engine.queued = 3;
  await strategy.tick();
  run('0');
  clock.t += 10_000;
  run('1');
  clock.t += 10_000;
  run('2');
  engine.queued = 0;
  clock.t += 100_000; // idle for 120 s, 110 s and 100 s
  let d = await strategy.tick();
  assert.deepEqual([d?.hold, d?.cancel], [['0'], []], 'only block 0 has been idle for 120 s');
  clock.t += 20_000;
  d = await strategy.tick();
  // Block 0 (held last tick) goes; block 1 is held now; block 2 stays for min_blocks.
  assert.deepEqual([d?.cancel, d?.hold], [['0'], ['1']]);
  assert.deepEqual(provider.cancels, [['100']]);
  assert.match(d!.reason, /hold 1: idle >= max_idletime 120 s and no backlog; cancel 0: still idle since held/);
  clock.t += 100_000;
  d = await strategy.tick();
  assert.deepEqual([d?.cancel, d?.hold], [['1'], []]);
  assert.deepEqual(engine.calls, ['hold 0', 'hold 1']);
  for (let i = 0; i < 3; i++) {
    clock.t += 100_000;
    d = await strategy.tick();
    assert.deepEqual([d?.hold, d?.cancel, d?.submit], [[], [], []]);
  }
  assert.deepEqual(tracker.blocks().map((b) => b.blockId), ['2']);
});

test('the idle block with the least walltime left is given back first', () => {
  const options = resolveStrategyOptions({ max_blocks: 2, min_blocks: 1, walltime: 3600 });
  const now = 10_000_000;
  const block = (id: string, endsAt: number) => ({
    blockId: id, jobId: id, state: 'running' as const, submittedAt: 0, runningSince: 0, endsAt, nodes: 1, walltimeS: 3600,
    managerRegistered: true, phase: 'serving' as const, drainingSince: null,
  });
  const idle = { managers: 1, workers: 1, busyWorkers: 0, idleSinceMs: 0 };
  const d = decide({
    now, options, backlog: 0, firstTick: false, gate: { ok: true },
    blocks: [block('a', now + 3_000_000), block('b', now + 1_000_000)],
    load: new Map([['a', idle], ['b', idle]]),
  });
  assert.deepEqual(d.hold, ['b']);
});

test('a held block is released when work comes back, and not cancelled', async () => {
  const { provider, engine, strategy, clock, run, tracker } = setup({ max_blocks: 1 });
  engine.queued = 1;
  await strategy.tick();
  run('0');
  engine.queued = 0;
  clock.t += 121_000;
  assert.deepEqual((await strategy.tick())?.hold, ['0']);
  engine.queued = 2;
  const d = await strategy.tick();
  assert.deepEqual([d?.release, d?.cancel], [['0'], []]);
  assert.deepEqual(engine.calls, ['hold 0', 'release 0']);
  assert.equal(tracker.get('0')?.phase, 'serving');
  assert.equal(provider.cancels.length, 0);
  // A task dispatched just before the hold (busy) also releases it.
  engine.queued = 0;
  clock.t += 121_000;
  await strategy.tick();
  engine.loads.set('0', { managers: 1, workers: 1, busyWorkers: 1, idleSinceMs: null });
  assert.deepEqual((await strategy.tick())?.release, ['0']);
});

test('a failing status call neither cancels nor double-submits', async () => {
  const { provider, engine, strategy, clock } = setup({ max_blocks: 2, walltime: 3600 });
  engine.queued = 1;
  await strategy.tick();
  provider.failStatus = true;
  engine.queued = 1;
  for (let i = 0; i < 5; i++) {
    clock.t += 5000;
    const d = await strategy.tick();
    assert.deepEqual([d?.submit, d?.cancel], [[], []]);
  }
  assert.equal(provider.submits.length, 1);
  assert.equal(provider.statusCalls, 6 - 1, 'the first tick had no job to ask about');
});

test('submit failures back off (visible in the reason) and pause after 10', async () => {
  const { provider, engine, strategy, clock, tracker } = setup({ max_blocks: 2 });
  provider.failSubmit = true;
  engine.queued = 1;
  await strategy.tick();
  assert.equal(provider.submits.length, 1);
  clock.t += 1000;
  let d = await strategy.tick();
  assert.equal(provider.submits.length, 1);
  assert.match(d!.reason, /not submitting: backing off 1 s after 1 failed submission/);
  for (let i = 0; i < 20; i++) {
    clock.t += 300_000;
    d = await strategy.tick();
  }
  assert.equal(provider.submits.length, 10);
  assert.match(d!.reason, /not submitting: submissions paused: 10 submissions failed in a row; last error: sbatch: error/);
  provider.failSubmit = false;
  tracker.resume();
  d = await strategy.tick();
  assert.equal(provider.submits.length, 11);
});

test('walltime: a replacement is submitted before the end, and the old block drains at walltime_margin', async () => {
  const { provider, engine, strategy, clock, run, tracker } = setup({ max_blocks: 2, walltime: 600 });
  engine.queued = 1;
  await strategy.tick();
  run('0', { busyWorkers: 1, idleSinceMs: null });
  engine.queued = 5;
  clock.t += 200_000;
  await strategy.tick(); // second block for the backlog, ending 200 s after the first
  run('1', { busyWorkers: 1, idleSinceMs: null });
  const endsAt = tracker.get('0')!.endsAt!;
  clock.t = endsAt - 66_000; // 66 s left: more than margin + period
  let d = await strategy.tick();
  assert.deepEqual([d?.submit, d?.drain], [[], []]);
  clock.t = endsAt - 64_000; // expiring, but at max_blocks: the replacement waits for the drain
  d = await strategy.tick();
  assert.deepEqual([d?.submit, d?.drain], [[], []]);
  assert.match(d!.reason, /not submitting: at max_blocks 2/);
  assert.equal(provider.submits.length, 2);
  clock.t = endsAt - 59_000;
  d = await strategy.tick();
  assert.deepEqual(d?.drain, ['0']);
  assert.deepEqual(engine.calls, ['drain 0']);
  assert.deepEqual(d?.submit, [{ nodes: 1, walltimeS: 600 }], 'the replacement is submitted on the drain tick');
  assert.match(d!.reason, /drain 0: walltime left < walltime_margin 60 s/);
  assert.equal(tracker.get('0')?.phase, 'draining');
  // Its managers leave: the drained block is cancelled to free the allocation.
  engine.loads.set('0', { managers: 0, workers: 0, busyWorkers: 0, idleSinceMs: null });
  clock.t += 5000;
  d = await strategy.tick();
  assert.deepEqual(d?.cancel, ['0']);
  assert.deepEqual(provider.cancels, [['100']]);
});

test('walltime below max_blocks: the replacement comes one period before the drain', async () => {
  const { provider, engine, strategy, clock, run, tracker } = setup({ max_blocks: 3, walltime: 600 });
  engine.queued = 1;
  await strategy.tick();
  run('0', { busyWorkers: 1, idleSinceMs: null });
  engine.queued = 0;
  const endsAt = tracker.get('0')!.endsAt!;
  clock.t = endsAt - 64_000; // less than margin (60) + period (5) left, more than margin
  let d = await strategy.tick();
  assert.deepEqual([d?.submit.length, d?.drain], [1, []]);
  clock.t = endsAt - 59_000;
  run('1', { busyWorkers: 0 });
  d = await strategy.tick();
  assert.deepEqual([d?.submit, d?.drain], [[], ['0']]);
  assert.equal(provider.submits.length, 2);
  // With no work at all, an expiring block is not replaced.
  const idle = setup({ max_blocks: 3, walltime: 600 });
  idle.engine.queued = 1;
  await idle.strategy.tick();
  idle.run('0');
  idle.engine.queued = 0;
  idle.clock.t = idle.tracker.get('0')!.endsAt! - 64_000;
  assert.deepEqual((await idle.strategy.tick())?.submit, []);
});

test('sizing within bounds: just the nodes the backlog needs, the fewest blocks, walltime for the clearing time', async () => {
  const a = setup({ max_blocks: 3, workers_per_node: 2, nodes_per_block: { min: 1, max: 4 }, walltime: { min: '00:10:00', max: '02:00:00' } });
  a.engine.queued = 10; // 5 nodes: one block of 4 and one of 1; done in one round of 1 s
  let d = await a.strategy.tick();
  assert.deepEqual(d?.submit, [{ nodes: 4, walltimeS: 600 }, { nodes: 1, walltimeS: 600 }]);
  assert.match(d!.reason, /submit 2 block\(s\) of 4\+1 node\(s\) \(nodes_per_block 1\.\.4: fewest blocks with one worker per task\)/);
  assert.match(d!.reason, /walltime 600 s \(clearing time \+ walltime_margin \+ period = 120 s, within 600\.\.7200 s\)/);
  assert.match(d!.reason, /10 worker\(s\) clear 10 task\(s\) in ~1 s at 1\.0 s\/task \(default estimate\)/);
  // 10-minute tasks, one block of at most 4 nodes (8 workers) for 20 tasks: 3 rounds, 30 min + margin + period.
  const b = setup({ max_blocks: 1, workers_per_node: 2, nodes_per_block: { min: 1, max: 4 }, walltime: { min: 600, max: 7200 } }, 600_000);
  b.engine.queued = 20;
  d = await b.strategy.tick();
  assert.deepEqual(d?.submit, [{ nodes: 4, walltimeS: 1920 }]);
  assert.match(d!.reason, /8 worker\(s\) clear 20 task\(s\) in ~1800 s at 600\.0 s\/task; capped by max_blocks 1/);
  assert.equal(b.provider.submits[0]?.walltimeS, 1920);
  assert.equal(b.provider.submits[0]?.nodesPerBlock, 4);
  // Bounded by the longest walltime allowed.
  const c = setup({ max_blocks: 1, nodes_per_block: { min: 2, max: 2 }, walltime: { min: 600, max: 3600 } }, 3_600_000);
  c.engine.queued = 5;
  assert.deepEqual((await c.strategy.tick())?.submit, [{ nodes: 2, walltimeS: 3600 }]);
  // Blocks for min_blocks with no work: the smallest size and the longest walltime.
  const m = setup({ max_blocks: 2, min_blocks: 1, nodes_per_block: { min: 2, max: 8 }, walltime: { min: 600, max: 3600 } });
  const dm = await m.strategy.tick();
  assert.deepEqual(dm?.submit, [{ nodes: 2, walltimeS: 3600 }]);
  assert.match(dm!.reason, /the longest allowed: no work to size it for/);
});

test('start() ticks at once and then every period on an unref-ed timer; stop() clears it', async () => {
  const { provider, engine, options, tracker, clock } = setup({ max_blocks: 1 });
  const made: Array<{ ms: number; unrefed: boolean; cleared: boolean; fn: () => void }> = [];
  const timers = {
    setInterval(fn: () => void, ms: number) {
      const h = { ms, fn, unrefed: false, cleared: false, unref() { this.unrefed = true; } };
      made.push(h);
      return h;
    },
    clearInterval(h: unknown) { (h as { cleared: boolean }).cleared = true; },
  };
  const s = new Strategy({ tracker, engine, options, clock, timers });
  engine.queued = 1;
  s.start();
  s.start();
  assert.equal(made.length, 1);
  assert.deepEqual([made[0]!.ms, made[0]!.unrefed], [5000, true]);
  await new Promise((r) => setImmediate(r));
  assert.equal(provider.submits.length, 1, 'the first tick ran right away');
  assert.notEqual(s.lastDecision, null);
  s.stop();
  assert.equal(made[0]!.cleared, true);
});

test('a block the scheduler holds is not capacity: cancelled, said why, and replaced while the work needs it', async () => {
  const { provider, engine, strategy, tracker } = setup({ max_blocks: 1 });
  engine.queued = 5;
  await strategy.tick();
  const job = tracker.get('0')!.jobId!;
  provider.states.set(job, { state: 'held', raw: 'PD', reason: 'JobHeldAdmin' });
  const d = await strategy.tick();
  assert.deepEqual(d?.cancel, ['0']);
  assert.match(d!.reason, /cancel 0: held by the scheduler \(JobHeldAdmin\)/);
  assert.deepEqual(provider.cancels, [[job]]);
  assert.equal(tracker.snapshot()[0]?.reason, 'JobHeldAdmin');
  assert.match(tracker.snapshot()[0]?.cancelReason ?? '', /held by the scheduler/);
  assert.equal(provider.submits.length, 1, 'at max_blocks until the cancel is confirmed');
  await strategy.tick(); // status confirms the cancel; the replacement goes in at once
  assert.equal(provider.submits.length, 2);
  assert.deepEqual(tracker.blocks().map((b) => b.blockId), ['1']);
});

test('a block pending past max_pending_time is cancelled and replaced; one pending less long is kept', async () => {
  const { provider, engine, strategy, tracker, clock } = setup({ max_blocks: 1, max_pending_time: 20 });
  engine.queued = 3;
  await strategy.tick();
  clock.t += 15_000;
  assert.deepEqual((await strategy.tick())?.cancel, [], 'pending 15 s < 20 s is still coming capacity');
  clock.t += 6_000;
  const d = await strategy.tick();
  assert.deepEqual(d?.cancel, ['0']);
  assert.match(d!.reason, /pending 21 s, past max_pending_time 20 s/);
  await strategy.tick();
  assert.equal(provider.submits.length, 2);
  assert.ok(!tracker.submitHealth().paused, 'waiting too long does not pause submissions');
});

test('pending for a reason that cannot change: cancelled at once; the same reason twice pauses submission', async () => {
  const { provider, engine, strategy, tracker } = setup({ max_blocks: 1 });
  engine.queued = 3;
  await strategy.tick();
  provider.states.set(tracker.get('0')!.jobId!, { state: 'pending', raw: 'PD', reason: 'PartitionNodeLimit', stuck: true });
  assert.deepEqual((await strategy.tick())?.cancel, ['0']);
  await strategy.tick();
  assert.equal(provider.submits.length, 2);
  provider.states.set(tracker.get('1')!.jobId!, { state: 'pending', raw: 'PD', reason: 'PartitionNodeLimit', stuck: true });
  await strategy.tick();
  const health = tracker.submitHealth();
  assert.ok(health.paused, 'paused after the same reason twice');
  assert.match(health.pausedReason ?? '', /PartitionNodeLimit/);
  const d = await strategy.tick();
  assert.equal(provider.submits.length, 2, 'no third submission while paused');
  assert.match(d!.reason, /submissions paused: .*PartitionNodeLimit/);
});

test('a running block that registered managers is never "pending too long"', async () => {
  const { engine, strategy, run, clock } = setup({ max_blocks: 1, max_pending_time: 20 });
  engine.queued = 1;
  await strategy.tick();
  run('0', { busyWorkers: 1, idleSinceMs: null });
  clock.t += 3_600_000 - 120_000;
  assert.deepEqual((await strategy.tick())?.cancel, []);
});

test('max_pending_time must be more than 0', () => {
  assert.throws(() => resolveStrategyOptions({ max_pending_time: 0 }), /max_pending_time/);
});
