/**
 * The suite's one way to wait: for an event, a state or a count, never for a fixed time. Every wait has a
 * deadline (generous: a loaded 2-core machine is slow) and fails with what it was waiting for and what it
 * last saw, so a red test says why.
 */
import { once, type EventEmitter } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';

/** Default deadline of every wait. Long on purpose: the deadline is a failure, never a synchronisation. */
export const WAIT_TIMEOUT_MS = 60_000;

export interface WaitOptions {
  /** Give up after this long. @default WAIT_TIMEOUT_MS */
  timeoutMs?: number;
  /** How often to look again. @default 25 */
  everyMs?: number;
}

/**
 * Wait until `check` holds (it may be async). Returns when it does; throws naming `what` at the deadline.
 * Polling a state is how we wait for things that emit no event (a process table, a scheduler's queue).
 */
export async function until(what: string, check: () => boolean | Promise<boolean>, options: WaitOptions = {}): Promise<void> {
  await untilValue(what, async () => ((await check()) ? true : undefined), options);
}

/**
 * Wait until `get` returns a value that `ok` accepts (by default any value but undefined/null/false), and
 * return it. The error at the deadline shows the last value seen.
 */
export async function untilValue<T>(
  what: string,
  get: () => T | Promise<T>,
  options: WaitOptions & { ok?: (value: T) => boolean } = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? WAIT_TIMEOUT_MS;
  const everyMs = options.everyMs ?? 25;
  const ok = options.ok ?? ((v: T) => v !== undefined && v !== null && v !== (false as unknown as T));
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastError: unknown;
  for (;;) {
    try {
      last = await get();
      lastError = undefined;
      if (ok(last)) return last;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const seen = lastError ? `last error: ${(lastError as Error).message}` : `last seen: ${describe(last)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${seen})`);
    }
    await delay(everyMs);
  }
}

/** Wait for `event` on `emitter` (optionally one whose arguments pass `filter`); returns its arguments. */
export async function untilEvent<A extends unknown[] = unknown[]>(
  emitter: EventEmitter,
  event: string,
  options: { filter?: (...args: A) => boolean; timeoutMs?: number } = {},
): Promise<A> {
  const timeoutMs = options.timeoutMs ?? WAIT_TIMEOUT_MS;
  const signal = AbortSignal.timeout(timeoutMs);
  for (;;) {
    let args: A;
    try {
      args = (await once(emitter, event, { signal })) as A;
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw new Error(`timed out after ${timeoutMs} ms waiting for event '${event}'`);
      throw err;
    }
    if (!options.filter || options.filter(...args)) return args;
  }
}

function describe(value: unknown): string {
  try {
    const s = JSON.stringify(value);
    return s === undefined ? String(value) : s.length > 300 ? s.slice(0, 300) + '…' : s;
  } catch {
    return String(value);
  }
}
