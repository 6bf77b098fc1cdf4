/**
 * One lifecycle for every long-lived object (daemon, engine, interchange, manager, forwarder client): a State
 * union, one transition table, and `to(next)` that refuses a transition the table does not list. Every
 * transition is logged (debug unless told otherwise) and told to listeners, so callers and tests wait on a
 * state, never on time.
 *
 * `Once` is the idempotent stop: the first caller starts the work, every caller (first or later, whatever
 * its arguments) awaits the same promise.
 */
import { IllegalStateError } from './errors.js';
import type { Logger, LogLevel } from './logger.js';

/** For each state, the states it may move to. Terminal states list none. */
export type Transitions<S extends string> = { readonly [K in S]: readonly S[] };

export type StateListener<S extends string> = (next: S, previous: S) => void;

export interface LifecycleOptions {
  /** Where transitions are logged ("state a → b"). None: not logged. */
  log?: Logger;
  /** The level transitions are logged at. @default 'debug' */
  level?: LogLevel;
}

export class Lifecycle<S extends string> {
  private current: S;
  private readonly listeners = new Set<StateListener<S>>();

  constructor(
    /** What the lifecycle belongs to, for error messages ("engine", "endpoint default"). */
    readonly name: string,
    initial: S,
    readonly transitions: Transitions<S>,
    private readonly options: LifecycleOptions = {},
  ) {
    this.current = initial;
  }

  get state(): S {
    return this.current;
  }

  /** True when the current state is one of `states`. */
  is(...states: S[]): boolean {
    return states.includes(this.current);
  }

  /** True when the table allows moving from the current state to `next`. */
  can(next: S): boolean {
    return this.transitions[this.current].includes(next);
  }

  /** True when the current state has no way out. */
  get terminal(): boolean {
    return this.transitions[this.current].length === 0;
  }

  /** Move to `next`; throws IllegalStateError (naming both states) when the table does not allow it. */
  to(next: S, why?: string): void {
    const previous = this.current;
    if (!this.can(next)) {
      throw new IllegalStateError(`${this.name}: illegal transition ${previous} → ${next}${why ? ` (${why})` : ''}`);
    }
    this.current = next;
    const log = this.options.log;
    if (log) log[this.options.level ?? 'debug'](`state ${previous} → ${next}${why ? `: ${why}` : ''}`);
    for (const listener of [...this.listeners]) listener(next, previous);
  }

  /** Move to `next` when allowed; return false (and stay) when not. For "stop if not already stopping". */
  tryTo(next: S, why?: string): boolean {
    if (!this.can(next)) return false;
    this.to(next, why);
    return true;
  }

  /** Listen to every transition; returns the function that removes the listener. */
  onChange(listener: StateListener<S>): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Resolves with the state once the lifecycle is in one of `states` (at once when it already is). Rejects
   * when it reaches a terminal state that is not one of them: it will never get there.
   */
  until(...states: S[]): Promise<S> {
    if (states.includes(this.current)) return Promise.resolve(this.current);
    if (this.terminal) return Promise.reject(this.never(states));
    return new Promise((resolve, reject) => {
      const off = this.onChange((next) => {
        if (states.includes(next)) {
          off();
          resolve(next);
        } else if (this.terminal) {
          off();
          reject(this.never(states));
        }
      });
    });
  }

  private never(states: S[]): IllegalStateError {
    return new IllegalStateError(`${this.name} ended in state ${this.current}, never ${states.join(' or ')}`);
  }
}

/**
 * Idempotent work, for stop() and close(): `run(work)` starts `work` the first time and returns its promise;
 * every later call returns that same promise (its `work` is ignored), so all callers await one stop.
 */
export class Once<T = void> {
  private promise: Promise<T> | undefined;

  /** True once `run` was called. */
  get started(): boolean {
    return this.promise !== undefined;
  }

  /** The running or finished work, when started. */
  get done(): Promise<T> | undefined {
    return this.promise;
  }

  run(work: () => Promise<T>): Promise<T> {
    // An async wrapper: a synchronous throw in `work` becomes the shared promise's rejection too.
    this.promise ??= (async () => work())();
    return this.promise;
  }
}
