/**
 * Spin-then-block for the manager (engine.busy_poll_us): after a message in or out, a helper thread at the
 * lowest priority (nice 19) spins for a bounded window, then blocks again. It keeps one CPU of the node out of
 * its idle state while a round trip passes through, so the next hop (the worker's answer, the interchange's
 * next task) is woken on a CPU that is running rather than one that must first leave its idle state, the
 * user-space counterpart of the kernel's halt-polling (cpuidle haltpoll) and MPI's spin-then-block.
 *
 * Why a thread and not the event loop: spinning the manager's own event loop (setImmediate turns) at normal
 * priority took a CPU from the worker and the ZeroMQ I/O threads on a 2-CPU node and made the round trip
 * slower (p50 0.45 → 0.52–0.62 ms at 50 µs, issue 14); at nice 19 the spinner gives way at once to any thread
 * that wakes, and it never runs the event loop, so it cannot reorder or delay a message.
 *
 * CPU: it never spins when idle. Only `kick()` starts or extends a window; the window ends `windowUs` after
 * the last kick and the thread then blocks in Atomics.wait until the next kick. With one task at a time the
 * cost is about the window plus the manager's own part of the round trip per task, at nice 19; under a
 * stream of tasks it may run continuously, at nice 19 (it gets ~1.5 % of a CPU that anything else wants).
 * A window of 0 turns it off: no thread is started and `kick()` does nothing.
 *
 * State (of the helper thread): off (window 0) | blocked (waiting for a kick) | spinning (until the window
 * ends) | stopped (after `stop()`; the thread exits).
 */
import { Worker } from 'node:worker_threads';

/** Slots of the shared Int32Array between the manager's thread and the spinner. */
const KICKS = 0;
const SPINNING = 1;
const STOP = 2;
const WINDOWS = 3;
const ENDED = 4;
const TURNS = 5;
const SLOTS = 6;

/** The spinner thread (CommonJS, run with `eval`): blocks on KICKS, spins until windowMs after the last kick. */
const SPINNER = `
const { workerData, parentPort } = require('node:worker_threads');
const { readlinkSync } = require('node:fs');
try { require('node:os').setPriority(19); } catch {}
let tid = null;
try { tid = Number(readlinkSync('/proc/thread-self').split('/').pop()); } catch {}
parentPort.postMessage({ tid });
const s = new Int32Array(workerData.sab);
const windowMs = workerData.windowMs;
let seen = 0; // KICKS starts at 0: a kick before this thread got here still starts a window
for (;;) {
  Atomics.store(s, ${SPINNING}, 0);
  if (Atomics.load(s, ${KICKS}) === seen && Atomics.load(s, ${STOP}) === 0) Atomics.wait(s, ${KICKS}, seen);
  if (Atomics.load(s, ${STOP}) !== 0) break;
  Atomics.store(s, ${SPINNING}, 1);
  Atomics.add(s, ${WINDOWS}, 1);
  seen = Atomics.load(s, ${KICKS});
  let until = performance.now() + windowMs;
  for (;;) {
    const k = Atomics.load(s, ${KICKS});
    if (k !== seen) { seen = k; until = performance.now() + windowMs; }
    if (performance.now() >= until) break;
    Atomics.add(s, ${TURNS}, 1);
  }
  Atomics.add(s, ${ENDED}, 1);
}
`;

export class BusyPoll {
  private readonly s = new Int32Array(new SharedArrayBuffer(SLOTS * 4));
  private readonly worker: Worker | null = null;
  /** The spinner thread's Linux thread id once it has started (null: not started, off, or not Linux). */
  tid: number | null = null;
  /** Resolves once the spinner thread runs (at once when off). */
  readonly ready: Promise<void>;
  /** Resolves when the spinner thread has exited after `stop()` (at once when off). */
  readonly exited: Promise<void>;

  /** @param windowUs microseconds to keep spinning after the last kick; 0 turns it off. */
  constructor(readonly windowUs: number) {
    if (!(windowUs > 0)) {
      this.ready = this.exited = Promise.resolve();
      return;
    }
    const worker = new Worker(SPINNER, { eval: true, workerData: { sab: this.s.buffer, windowMs: windowUs / 1000 } });
    this.worker = worker;
    // Referenced until it runs and again once stopping (so both promises can be awaited); unreferenced
    // between, so it never keeps the manager alive.
    this.ready = new Promise((resolve) => {
      worker.once('message', (m: { tid: number | null }) => {
        this.tid = m.tid;
        if (Atomics.load(this.s, STOP) === 0) worker.unref();
        resolve();
      });
      worker.once('error', () => resolve());
      worker.once('exit', () => resolve());
    });
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    worker.on('error', () => {}); // the spinner is an optimisation: losing it loses nothing else
  }

  get enabled(): boolean {
    return this.worker !== null;
  }

  /** Windows started (blocked → spinning). */
  get windows(): number {
    return Atomics.load(this.s, WINDOWS);
  }

  /** Windows that ended (spinning → blocked). */
  get windowsEnded(): number {
    return Atomics.load(this.s, ENDED);
  }

  /** Spin-loop iterations so far: constant while the thread is blocked. */
  get turns(): number {
    return Atomics.load(this.s, TURNS);
  }

  /** A message arrived or was sent: spin until `windowUs` from now. Cheap while a window is open (no syscall). */
  kick(): void {
    if (this.worker === null) return;
    Atomics.add(this.s, KICKS, 1);
    if (Atomics.load(this.s, SPINNING) === 0) Atomics.notify(this.s, KICKS, 1);
  }

  /** End the thread (the manager is stopping). Safe to call again. */
  stop(): void {
    if (this.worker === null) return;
    this.worker.ref();
    Atomics.store(this.s, STOP, 1);
    Atomics.add(this.s, KICKS, 1);
    Atomics.notify(this.s, KICKS, 1);
  }
}
