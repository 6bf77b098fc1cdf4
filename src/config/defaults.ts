/** Every tunable of the endpoint and its default, in one place. Durations in seconds as users write them. */
export const ENGINE_DEFAULTS = {
  /** Cores each worker needs; workers per node = cores / cores_per_worker, capped by max_workers_per_node. */
  cores_per_worker: 1,
  /** Tasks a manager accepts beyond one per worker (it widens its window by itself for short tasks). */
  prefetch_capacity: 0,
  heartbeat_period: 30,
  heartbeat_threshold: 120,
  /** Retries of a task whose manager was lost before it fails with ManagerLost. */
  max_retries: 1,
  /** Seconds one round of manager address probing waits. */
  address_probe_timeout: 10,
  /** Results larger than this fail with ResultTooLarge (bytes). */
  result_size_limit: 10 * 1024 * 1024,
  /** Interchange port: 0 lets the OS choose. */
  interchange_port: 0,
} as const;

/** Walltime of a task when the profile sets none (ms); undefined means no limit. */
export const DEFAULT_TASK_WALLTIME_MS: number | undefined = undefined;

/** Strategy tunables about real sites (seconds). */
export const SITE_DEFAULTS = {
  /** A block pending longer than this is not counted as coming capacity: it is cancelled and replaced. */
  max_pending_time: 600,
} as const;
