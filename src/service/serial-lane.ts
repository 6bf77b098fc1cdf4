/**
 * Runs async steps one at a time, in the order they were queued: the ordering a synchronous store gave
 * for free, kept when store calls take a round trip.
 */
export class SerialLane {
  private tail: Promise<unknown> = Promise.resolve();

  /** Run `step` after every step queued before it; a failed step does not stop the next ones. */
  run<T>(step: () => Promise<T>): Promise<T> {
    const result = this.tail.then(step);
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** Resolves when every step queued so far has finished. */
  idle(): Promise<void> {
    return this.tail.then(() => undefined);
  }
}
