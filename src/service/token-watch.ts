/**
 * Open long-polls hold a token for up to a minute: this re-checks the tokens of the requests that wait, so a
 * token revoked (by the CLI, in the database), expired, rotated or whose user was disabled stops an open
 * long-poll within one period, which then answers 401. One timer for the whole service, running only while
 * some request waits; one store lookup per distinct token per period. `checkNow()` runs a check at once
 * (after a revocation through the API).
 *
 * `epoch` counts the token changes this replica heard of: made through its API (`changed()`), or told by the
 * store's own statements through the replica bus (PostgreSQL: any replica, the CLI). A long-poll woken by its
 * result checks its token again before answering only when it could have been revoked unseen since it was
 * authenticated (`needsRecheck`): a change was heard of, the token expired, or a whole period passed (a
 * change on SQLite by the CLI, which no bus tells, is seen by then).
 */
import { authenticate } from './auth.js';
import { SERVICE_DEFAULTS } from './limits.js';
import type { Store } from './store/index.js';

/** When and at which epoch a request's token was looked up, and when that token expires. */
export interface AuthSnapshot {
  at: number;
  epoch: number;
  expiresAt: number | null | undefined;
}

export class TokenWatch {
  /** Waiting requests by their Authorization header. */
  private readonly byHeader = new Map<string, Set<() => void>>();
  private timer: NodeJS.Timeout | null = null;
  private checking: Promise<void> | null = null;
  private closed = false;
  /** Token changes heard of so far. */
  private changes = 0;

  constructor(
    private readonly store: Store,
    private readonly periodMs = SERVICE_DEFAULTS.tokenRecheckMs,
  ) {}

  /** Watch a waiting request's token; `cut` ends its wait. Returns the function that stops watching. */
  watch(header: string | undefined, cut: () => void): () => void {
    if (!header || this.closed) return () => {};
    let set = this.byHeader.get(header);
    if (!set) this.byHeader.set(header, (set = new Set()));
    set.add(cut);
    this.timer ??= setInterval(() => void this.checkNow(), this.periodMs);
    return () => {
      const s = this.byHeader.get(header);
      if (!s) return;
      s.delete(cut);
      if (s.size === 0) this.byHeader.delete(header);
      if (this.byHeader.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = null;
      }
    };
  }

  /** What a request notes before its token is looked up (see needsRecheck). */
  get epoch(): number {
    return this.changes;
  }

  /** A token may have stopped working (rotated, revoked, user disabled or removed): heard of at once. */
  changed(): void {
    this.changes++;
  }

  /**
   * Whether a request authenticated at `auth.at` (epoch `auth.epoch`, before the lookup) must check its token
   * again before it answers: yes if a change was heard of since, its token expired, or a whole check period
   * passed (within it the periodic check would not have cut it either).
   */
  needsRecheck(auth: AuthSnapshot, now = Date.now()): boolean {
    return this.changes !== auth.epoch || now - auth.at >= this.periodMs || (auth.expiresAt != null && now >= auth.expiresAt);
  }

  /** Check every watched token now; requests holding one that no longer works are cut. */
  checkNow(): Promise<void> {
    this.checking ??= this.check().finally(() => (this.checking = null));
    return this.checking;
  }

  private async check(): Promise<void> {
    for (const [header, cuts] of [...this.byHeader]) {
      let valid: boolean;
      try {
        await authenticate(this.store, header);
        valid = true;
      } catch (err) {
        // Only a refused token cuts; a database hiccup does not.
        valid = (err as { statusCode?: number }).statusCode !== 401;
      }
      if (!valid) for (const cut of [...cuts]) cut();
    }
  }

  /** Requests being watched (for tests). */
  get watching(): number {
    let n = 0;
    for (const s of this.byHeader.values()) n += s.size;
    return n;
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.byHeader.clear();
  }
}
