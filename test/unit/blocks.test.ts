import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BlockTracker, type BlockShape, type BlockTrackerOptions } from '../../src/endpoint/engine/blocks.js';
import type { BlockRequest, BlockStatus, ExecutionProvider, SubmittedBlock } from '../../providers/provider.js';
import type { Channel } from '../../providers/channels/channel.js';
import { SimpleLauncher } from '../../launchers/simple.js';
import { SubmitError } from '../../src/errors.js';

/** A provider double: records every call, keeps job states in a map, fails on demand. */
class FakeProvider implements ExecutionProvider {
  readonly label = 'fake';
  readonly launcher = new SimpleLauncher();
  readonly blockOptions = { max_blocks: 2, walltime: 600 };
  readonly files = new Map<string, string>();
  readonly channel: Channel;
  submits: BlockRequest[] = [];
  statusCalls: string[][] = [];
  cancels: string[][] = [];
  states = new Map<string, BlockStatus>();
  failSubmit = false;
  failStatus = false;
  failCancel = false;
  /** When set, submit waits for this promise (a slow sbatch). */
  submitGate: Promise<void> | null = null;
  private nextJob = 100;

  constructor() {
    const files = this.files;
    this.channel = {
      kind: 'local', scriptDir: '/s', isRemote: false,
      run: async () => ({ code: 0, stdout: '', stderr: '', timedOut: false }),
      writeFile: async (p: string) => p,
      readFile: async (p: string) => {
        const text = files.get(p);
        if (text === undefined) throw new Error(`ENOENT: ${p}`);
        return Buffer.from(text);
      },
      exposePort: async (host: string, port: number) => ({ host, port }),
      close: async () => {},
    };
  }
  async render(): Promise<string> { return '#!/bin/bash\n'; }
  async submit(request: BlockRequest): Promise<SubmittedBlock> {
    this.submits.push(request);
    if (this.submitGate) await this.submitGate;
    if (this.failSubmit) throw new SubmitError('sbatch failed', 'sbatch x.sh', 1, 'sbatch: error: invalid partition specified: nope\n');
    const jobId = String(this.nextJob++);
    this.states.set(jobId, { state: 'pending', raw: 'PD' });
    return { jobId, scriptPath: `/s/${jobId}.sh`, stdoutPath: `/s/${jobId}.out` };
  }
  async status(jobIds: string[]): Promise<Map<string, BlockStatus>> {
    this.statusCalls.push([...jobIds]);
    if (this.failStatus) throw new SubmitError('squeue failed', 'squeue', 1, 'slurm_load_jobs error: Socket timed out');
    return new Map(jobIds.map((id) => [id, this.states.get(id) ?? { state: 'unknown' }]));
  }
  async cancel(jobIds: string[]): Promise<void> {
    this.cancels.push([...jobIds]);
    if (this.failCancel) throw new SubmitError('scancel failed', 'scancel', 1, 'boom');
  }
  async close(): Promise<void> {}
}

function setup(extra: Partial<BlockTrackerOptions> = {}) {
  const provider = new FakeProvider();
  const clock = { t: 1_000_000, now() { return this.t; } };
  const logs: string[] = [];
  const tracker = new BlockTracker({
    provider,
    clock,
    maxBlocks: 2,
    makeRequest: (blockId, shape) => ({ blockId, command: `funcx-manager --block ${blockId}`, jobName: `funcx-block-${blockId}`, nodesPerBlock: 99, walltimeS: shape.walltimeS }),
    log: (level, msg) => logs.push(`${level}: ${msg}`),
    ...extra,
  });
  return { provider, clock, tracker, logs };
}

const SHAPE: BlockShape = { nodes: 2, walltimeS: 600 };

test('submit numbers blocks, passes the shape to the provider, and records job and output path', async () => {
  const { provider, tracker } = setup();
  const a = await tracker.submit(SHAPE);
  const b = await tracker.submit({ nodes: 1, walltimeS: Infinity });
  assert.equal(a?.blockId, '0');
  assert.equal(b?.blockId, '1');
  assert.equal(a?.jobId, '100');
  assert.equal(a?.state, 'pending');
  assert.equal(a?.stdoutPath, '/s/100.out');
  // The shape wins over what the factory wrote; an infinite walltime is left to the provider.
  assert.equal(provider.submits[0]?.nodesPerBlock, 2);
  assert.equal(provider.submits[0]?.walltimeS, 600);
  assert.equal(provider.submits[1]?.walltimeS, undefined);
  assert.equal(provider.submits[1]?.command, 'funcx-manager --block 1');
});

test('a block counts against max_blocks while it is still being submitted', async () => {
  const { provider, tracker } = setup();
  let open!: () => void;
  provider.submitGate = new Promise((r) => (open = r));
  const pending = [tracker.submit(SHAPE), tracker.submit(SHAPE), tracker.submit(SHAPE)];
  assert.deepEqual(tracker.snapshot().map((s) => s.state), ['submitting', 'submitting']);
  open();
  const results = await Promise.all(pending);
  assert.equal(provider.submits.length, 2);
  assert.equal(results.filter((r) => r !== null).length, 2);
  assert.deepEqual(tracker.canSubmit(), { ok: false, reason: 'at max_blocks (2)' });
});

test('one status call polls every block; running sets the end time; snapshot reports age and walltime left', async () => {
  const { provider, tracker, clock } = setup({ maxBlocks: 5 });
  await tracker.submit(SHAPE);
  await tracker.submit(SHAPE);
  provider.states.set('100', { state: 'running', raw: 'R' });
  clock.t += 10_000;
  await tracker.poll();
  assert.deepEqual(provider.statusCalls, [['100', '101']]);
  const b0 = tracker.get('0')!;
  assert.equal(b0.runningSince, clock.t);
  assert.equal(b0.endsAt, clock.t + 600_000);
  clock.t += 100_000;
  assert.deepEqual(tracker.snapshot(), [
    { id: '0', jobId: '100', state: 'running', nodes: 2, ageS: 110, walltimeLeftS: 500, phase: 'serving' },
    { id: '1', jobId: '101', state: 'pending', nodes: 2, ageS: 110, walltimeLeftS: null, phase: 'serving' },
  ]);
});

test('a failing status call keeps the last known states and is reported once', async () => {
  const { provider, tracker, logs } = setup();
  await tracker.submit(SHAPE);
  provider.states.set('100', { state: 'running', raw: 'R' });
  await tracker.poll();
  provider.failStatus = true;
  provider.states.set('100', { state: 'failed', raw: 'F' });
  await tracker.poll();
  await tracker.poll();
  assert.equal(tracker.get('0')?.state, 'running');
  assert.equal(tracker.submitHealth().lastStatusError, 'slurm_load_jobs error: Socket timed out');
  assert.equal(logs.filter((l) => l.includes('block status failed')).length, 1);
  provider.failStatus = false;
  await tracker.poll();
  assert.equal(tracker.get('0'), undefined, 'the failed block is retired once status works again');
  assert.equal(tracker.submitHealth().lastStatusError, null);
});

test("'unknown' from the provider never overwrites a known state", async () => {
  const { provider, tracker, logs } = setup();
  await tracker.submit(SHAPE);
  provider.states.set('100', { state: 'running', raw: 'R' });
  await tracker.poll();
  provider.states.set('100', { state: 'unknown', raw: 'ZZ', detail: 'odd code' });
  await tracker.poll();
  assert.equal(tracker.get('0')?.state, 'running');
  assert.equal(tracker.get('0')?.detail, 'odd code');
  assert.ok(logs.some((l) => l.startsWith('warn') && l.includes('state unknown')));
});

test('a manager registering first starts the walltime clock and marks the block running', async () => {
  const { provider, tracker, clock } = setup();
  await tracker.submit(SHAPE);
  clock.t += 5_000;
  tracker.noteManagerRegistered('0');
  const regAt = clock.t;
  assert.equal(tracker.get('0')?.state, 'running');
  assert.equal(tracker.get('0')?.endsAt, regAt + 600_000);
  provider.states.set('100', { state: 'running', raw: 'R' });
  clock.t += 5_000;
  await tracker.poll();
  assert.equal(tracker.get('0')?.endsAt, regAt + 600_000, 'the earlier start is kept');
});

test('a block that ends before any manager registers is missing, with the last 20 lines of its output', async () => {
  const { provider, tracker, clock, logs } = setup({ maxBlocks: 5 });
  await tracker.submit(SHAPE); // job 100: dies with output
  await tracker.submit(SHAPE); // job 101: dies without an output file
  await tracker.submit(SHAPE); // job 102: had a manager
  tracker.noteManagerRegistered('2');
  provider.files.set('/s/100.out', Array.from({ length: 30 }, (_, i) => `line ${i + 1}`).join('\n') + '\n');
  for (const id of ['100', '101', '102']) provider.states.set(id, { state: 'failed', raw: 'F' });
  clock.t += 1000;
  await tracker.poll();
  const missing = tracker.missing();
  assert.deepEqual(missing.map((m) => m.blockId), ['0', '1']);
  assert.deepEqual(missing[0]?.tail, Array.from({ length: 20 }, (_, i) => `line ${i + 11}`));
  assert.deepEqual(missing[1]?.tail, []);
  assert.equal(missing[0]?.endedAt, clock.t);
  assert.equal(tracker.submitHealth().missingCount, 2);
  assert.equal(tracker.blocks().length, 0);
  assert.equal(tracker.history().length, 3);
  assert.ok(logs.some((l) => l.includes('block 0 (job 100) ended failed before any manager registered') && l.includes('line 30')));
});

test('three missing blocks in a row pause submissions until resume(); a registration resets the count', async () => {
  const { provider, tracker } = setup({ maxBlocks: 10 });
  const die = async (): Promise<void> => {
    const b = await tracker.submit(SHAPE);
    provider.states.set(b!.jobId!, { state: 'completed', raw: 'CD' });
    await tracker.poll();
  };
  await die();
  await die();
  const ok = await tracker.submit(SHAPE);
  tracker.noteManagerRegistered(ok!.blockId);
  await die();
  await die();
  assert.equal(tracker.submitHealth().paused, false);
  await die();
  const health = tracker.submitHealth();
  assert.equal(health.paused, true);
  assert.equal(health.consecutiveMissing, 3);
  assert.match(health.pausedReason ?? '', /3 blocks in a row ended before any manager registered/);
  const before = provider.submits.length;
  assert.equal(await tracker.submit(SHAPE), null);
  assert.equal(provider.submits.length, before);
  tracker.resume();
  assert.notEqual(await tracker.submit(SHAPE), null);
});

test('submit failures back off 2 s, 4 s, 8 s ... capped at 5 min, keep stderr, and reset on success', async () => {
  const { provider, tracker, clock } = setup();
  provider.failSubmit = true;
  const delays: number[] = [];
  for (let i = 0; i < 9; i++) {
    assert.equal(await tracker.submit(SHAPE), null);
    const h = tracker.submitHealth();
    delays.push((h.pausedUntil - clock.t) / 1000);
    // Refused without calling the provider until the window has passed.
    const calls = provider.submits.length;
    clock.t = h.pausedUntil - 1;
    assert.equal(tracker.canSubmit().ok, false);
    assert.equal(await tracker.submit(SHAPE), null);
    assert.equal(provider.submits.length, calls);
    clock.t = h.pausedUntil;
  }
  assert.deepEqual(delays, [2, 4, 8, 16, 32, 64, 128, 256, 300]);
  const h = tracker.submitHealth();
  assert.equal(h.consecutiveSubmitFailures, 9);
  assert.equal(h.lastSubmitError, 'sbatch: error: invalid partition specified: nope');
  assert.equal(h.paused, false);
  assert.equal(tracker.blocks().length, 0, 'a failed submission leaves no block behind');
  provider.failSubmit = false;
  assert.notEqual(await tracker.submit(SHAPE), null);
  assert.equal(tracker.submitHealth().consecutiveSubmitFailures, 0);
  assert.equal(tracker.submitHealth().pausedUntil, 0);
});

test('ten failed submissions in a row pause until resume(), whatever the time', async () => {
  const { provider, tracker, clock } = setup({ policy: { baseMs: 10, capMs: 10 } });
  provider.failSubmit = true;
  for (let i = 0; i < 10; i++) {
    await tracker.submit(SHAPE);
    clock.t += 10;
  }
  assert.equal(provider.submits.length, 10);
  clock.t += 3_600_000;
  const gate = tracker.canSubmit();
  assert.equal(gate.ok, false);
  assert.match(gate.ok ? '' : gate.reason, /paused: 10 submissions failed in a row; last error: sbatch: error: invalid partition/);
  await tracker.submit(SHAPE);
  assert.equal(provider.submits.length, 10);
  provider.failSubmit = false;
  tracker.resume();
  assert.notEqual(await tracker.submit(SHAPE), null);
});

test('cancel uses one call, waits for status to confirm, retries after a failure, and covers blocks still submitting', async () => {
  const { provider, tracker } = setup({ maxBlocks: 5 });
  await tracker.submit(SHAPE);
  await tracker.submit(SHAPE);
  provider.failCancel = true;
  await tracker.cancel(['0', '1']);
  assert.equal(tracker.get('0')?.phase === 'cancelling', false, 'a failed cancel is asked again later');
  provider.failCancel = false;
  await tracker.cancel(['0', '1', 'nope']);
  assert.deepEqual(provider.cancels, [['100', '101'], ['100', '101']]);
  assert.equal(tracker.get('0')?.phase, 'cancelling');
  assert.equal(tracker.get('0')?.state, 'pending', 'state changes only when status says so');
  // 'unknown' (e.g. a failed squeue) keeps a cancelled block counted; 'cancelled' retires it, not as missing.
  provider.states.set('100', { state: 'unknown', detail: 'squeue: timeout' });
  provider.states.set('101', { state: 'unknown', detail: 'squeue: timeout' });
  await tracker.poll();
  assert.equal(tracker.countedBlocks(), 2);
  assert.equal(tracker.submitHealth().lastStatusError, 'squeue: timeout');
  provider.states.set('100', { state: 'cancelled', raw: 'CA' });
  provider.states.set('101', { state: 'cancelled', detail: 'no longer listed by the scheduler after cancel' });
  await tracker.poll();
  assert.equal(tracker.blocks().length, 0);
  assert.equal(tracker.missing().length, 0);
  assert.equal(tracker.submitHealth().lastStatusError, null);
  // A block cancelled while sbatch runs is cancelled as soon as its job id is known.
  let open!: () => void;
  provider.submitGate = new Promise((r) => (open = r));
  const sub = tracker.submit(SHAPE);
  await tracker.cancel(['2']);
  assert.equal(provider.cancels.length, 2);
  open();
  await sub;
  assert.deepEqual(provider.cancels.at(-1), ['102']);
  assert.equal(tracker.get('2')?.phase, 'cancelling');
});

test('draining blocks do not count against max_blocks; holds are recorded', async () => {
  const { tracker } = setup();
  await tracker.submit(SHAPE);
  await tracker.submit(SHAPE);
  assert.equal(tracker.canSubmit().ok, false);
  tracker.markDraining('0');
  assert.equal(tracker.countedBlocks(), 1);
  assert.equal(tracker.canSubmit().ok, true);
  tracker.hold('1');
  assert.equal(tracker.get('1')?.phase, 'held');
  tracker.release('1');
  assert.equal(tracker.get('1')?.phase, 'serving');
});
