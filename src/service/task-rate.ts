/**
 * Submission rate per user: a token bucket per user, refilled at `perSecond` tasks a second up to `burst`
 * (one largest batch). The service has one event loop; a user submitting at its whole capacity (10,000-task
 * batches back to back, within every quota because they finish fast) made every other user's tasks wait
 * behind her inserts, deliveries and results. The bucket bounds her share; a submission over it is refused
 * whole with 429 and `Retry-After`, and nothing is written.
 *
 * Pure (the clock is the caller's) and per replica: behind R replicas a user may submit up to R times the rate.
 * The same buckets, counting bytes, bound each user's function registrations (routes/functions.ts).
 */
export interface RateDecision {
  ok: boolean;
  /** Tasks the user could submit now (whole tasks). */
  available: number;
  /** When refused: seconds until `asked` tasks fit. */
  retryAfterS: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class TaskRateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private sweepAt = 10_000;

  constructor(
    readonly perSecond: number,
    readonly burst: number,
  ) {}

  /** Take `asked` tokens for `user` if they are there (all or nothing). */
  take(user: string, asked: number, now = Date.now()): RateDecision {
    if (this.buckets.size >= this.sweepAt) this.sweep(now);
    const b = this.refilled(user, now);
    if (asked <= b.tokens) {
      b.tokens -= asked;
      return { ok: true, available: Math.floor(b.tokens), retryAfterS: 0 };
    }
    const need = Math.min(asked, this.burst) - b.tokens;
    return { ok: false, available: Math.floor(b.tokens), retryAfterS: Math.max(1, Math.ceil(need / this.perSecond)) };
  }

  /** Give back what a submission took when it was refused later (a quota, an access check, the database). */
  refund(user: string, tasks: number): void {
    const b = this.buckets.get(user);
    if (b) b.tokens = Math.min(this.burst, b.tokens + tasks);
  }

  /** A bucket that has filled up again is the same as none: forget those, so the map holds recent submitters. */
  private sweep(now: number): void {
    for (const [user, b] of this.buckets) if (b.tokens + ((now - b.at) / 1000) * this.perSecond >= this.burst) this.buckets.delete(user);
    this.sweepAt = Math.max(10_000, this.buckets.size * 2);
  }

  private refilled(user: string, now: number): Bucket {
    let b = this.buckets.get(user);
    if (!b) {
      b = { tokens: this.burst, at: now };
      this.buckets.set(user, b);
      return b;
    }
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.perSecond);
    b.at = now;
    return b;
  }
}
