/**
 * The end-to-end bench again with the service on PostgreSQL (the test server of
 * test/cluster/start-postgres.sh, a fresh database per run): one replica, then two with the SDK talking to
 * the one the endpoint is not connected to. Needs root to start the server; otherwise says so and skips.
 */
import { benchEndToEnd } from './e2e-bench.js';
import { postgresBackend } from '../helpers/store-backends.js';

export interface PostgresFigures {
  e2e_pg_batch_tasks_per_s: number;
  e2e_pg_batch_first_tasks_per_s: number;
  e2e_pg_latency_p50_ms: number;
  e2e_pg_latency_p99_ms: number;
  e2e_pg_latency_run_get_p50_ms: number;
  e2e_pg_replicas_batch_tasks_per_s: number;
}

const round = (x: number): number => Math.round(x * 1000) / 1000;

export async function benchPostgres(progress: (m: string) => void): Promise<PostgresFigures | undefined> {
  if (postgresBackend.skip) {
    progress(`end to end on PostgreSQL skipped: ${postgresBackend.skip}`);
    return undefined;
  }
  const one = await postgresBackend.create();
  let single;
  try {
    single = await benchEndToEnd(progress, { database: one.location, label: 'end to end on PostgreSQL' });
  } finally {
    await one.drop();
  }
  const two = await postgresBackend.create();
  let replicas;
  try {
    replicas = await benchEndToEnd(progress, { database: two.location, secondReplica: true, label: 'end to end on PostgreSQL, two replicas' });
  } finally {
    await two.drop();
  }
  return {
    e2e_pg_batch_tasks_per_s: Math.round(single.e2e_batch_tasks_per_s),
    e2e_pg_batch_first_tasks_per_s: Math.round(single.e2e_batch_first_tasks_per_s),
    e2e_pg_latency_p50_ms: round(single.e2e_latency_p50_ms),
    e2e_pg_latency_p99_ms: round(single.e2e_latency_p99_ms),
    e2e_pg_latency_run_get_p50_ms: round(single.e2e_latency_run_get_p50_ms),
    e2e_pg_replicas_batch_tasks_per_s: Math.round(replicas.e2e_batch_tasks_per_s),
  };
}
