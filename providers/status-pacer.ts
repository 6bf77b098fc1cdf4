/**
 * Polite polling. Sites throttle users who hammer `squeue`: a provider asks the scheduler about its jobs
 * through one pacer, which allows
 *  - one status command in flight: callers that ask meanwhile share its answer;
 *  - at most `max_status_rate` commands in any minute, and not two within half the even spacing (so a
 *    burst of nudges cannot spend the minute's allowance at once);
 *  - a longer interval for a scheduler that answers slowly: SLOW_FACTOR times its (smoothed) answer time,
 *    so our polls take at most a tenth of its time, up to MAX_INTERVAL_MS.
 * A caller refused a new command gets the last answer (`fresh: false`); the block tracker keeps its last
 * known states for jobs that answer does not name.
 */

/** Time source in epoch ms (tests pass their own). */
export interface PacerClock { now(): number }

/** A slow scheduler is polled at most every SLOW_FACTOR × its answer time. */
export const SLOW_FACTOR = 10;
/** The longest interval a slow scheduler makes us wait between polls. */
export const MAX_INTERVAL_MS = 300_000;
/** Weight of the newest answer time in its moving average. */
const ALPHA = 0.3;
const MINUTE = 60_000;

export interface StatusPacerOptions {
  /** Status commands allowed in any minute. */
  maxPerMinute: number;
  clock?: PacerClock;
}

export class StatusPacer {
  readonly maxPerMinute: number;
  private readonly clock: PacerClock;
  /** Start times of the commands of the last minute. */
  private readonly starts: number[] = [];
  private inFlight: Promise<unknown> | null = null;
  private durationMs: number | null = null;
  /** Commands run, and calls answered without one (shared or too soon). */
  polls = 0;
  spared = 0;

  constructor(options: StatusPacerOptions) {
    if (!(options.maxPerMinute > 0)) throw new RangeError(`max_status_rate must be > 0 (got ${options.maxPerMinute})`);
    this.maxPerMinute = options.maxPerMinute;
    this.clock = options.clock ?? { now: () => Date.now() };
  }

  /** The least time between two status commands now: the even spacing, or longer for a slow scheduler. */
  intervalMs(): number {
    const even = MINUTE / this.maxPerMinute;
    const slow = this.durationMs === null ? 0 : Math.min(MAX_INTERVAL_MS, SLOW_FACTOR * this.durationMs);
    return Math.max(even, slow);
  }

  /** The smoothed time the scheduler takes to answer (ms), null before the first answer. */
  answerMs(): number | null {
    return this.durationMs;
  }

  /** Whether a new command may start now. */
  due(): boolean {
    if (this.maxPerMinute === Infinity) return true;
    const now = this.clock.now();
    while (this.starts.length > 0 && now - this.starts[0]! >= MINUTE) this.starts.shift();
    if (this.starts.length >= this.maxPerMinute) return false;
    const last = this.starts.at(-1);
    if (last === undefined) return true;
    const even = MINUTE / this.maxPerMinute;
    const gap = this.intervalMs() > even ? this.intervalMs() : even / 2;
    return now - last >= gap;
  }

  /**
   * Run `poll` when allowed: `fresh: true` with its answer. A call while one runs waits for it and shares it;
   * a call too soon after the last gets `fresh: false` at once (the caller uses the last answer it kept).
   */
  async run<T>(poll: () => Promise<T>): Promise<{ fresh: true; value: T } | { fresh: false }> {
    if (this.inFlight !== null) {
      this.spared++;
      await this.inFlight.catch(() => {});
      return { fresh: false };
    }
    if (!this.due()) {
      this.spared++;
      return { fresh: false };
    }
    const started = this.clock.now();
    this.starts.push(started);
    this.polls++;
    const running = poll();
    this.inFlight = running;
    try {
      return { fresh: true, value: await running };
    } finally {
      this.inFlight = null;
      const took = Math.max(0, this.clock.now() - started);
      this.durationMs = this.durationMs === null ? took : ALPHA * took + (1 - ALPHA) * this.durationMs;
    }
  }
}
