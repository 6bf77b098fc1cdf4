/**
 * What one service replica tells the others (several replicas on one PostgreSQL). The database is the
 * truth: tasks wait in the tasks table, results are stored there. The bus only rings the doorbell, so a
 * replica learns at once, without polling, that
 *   - tasks were queued for an endpoint whose forwarder it holds (its forwarder then claims them),
 *   - results were stored for tasks its long-polls wait for (they then read them; on PostgreSQL the statement
 *     that stores them rings, PgStore.announceResultsOn),
 *   - an endpoint registered with another replica (its forwarder for it closes),
 *   - a token was rotated or revoked, or a user disabled or removed (its TokenWatch re-checks waiting requests'
 *     tokens, and a woken long-poll checks its token again before it answers).
 * A doorbell missed while the bus was disconnected is made up for by `missed`: every local forwarder
 * looks at its queue and every long-poll re-reads its tasks.
 *
 * SQLite is one process: the bus is a no-op there.
 */
export interface ReplicaEvents {
  tasksQueued(endpointIds: readonly string[]): void;
  resultsStored(taskIds: readonly string[]): void;
  endpointClaimed(endpointId: string, replica: string): void;
  tokensChanged(): void;
  /** Messages may have been lost (the bus reconnected). */
  missed(): void;
}

export interface ReplicaBus {
  publishTasks(endpointIds: readonly string[]): Promise<void>;
  publishClaim(endpointId: string): Promise<void>;
  close(): Promise<void>;
}

/** One process, nobody to tell. */
export const localBus: ReplicaBus = {
  publishTasks: async () => {},
  publishClaim: async () => {},
  close: async () => {},
};
