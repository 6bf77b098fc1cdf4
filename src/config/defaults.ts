/**
 * Every default of the endpoint, in one table. Durations in seconds as users write them. Below the config
 * layer (engine, strategy, blocks, interchange, providers, manager) every option is required: the values
 * here reach them only through `src/config/`.
 */
export const DEFAULTS = {
  /** The provider's block fields (Parsl's names), resolved by the config layer, not by the provider. */
  provider: {
    /** Blocks submitted at start. */
    init_blocks: 0,
    /** Blocks kept even when idle. */
    min_blocks: 0,
    /** Hard cap on submitting + pending + running blocks. */
    max_blocks: 1,
    /** Share of the work to cover with workers, 0..1. */
    parallelism: 1,
    /** Nodes in each block (batch job). */
    nodes_per_block: 1,
    /** Walltime of a batch scheduler's block. */
    walltime: '00:30:00',
    /** Walltime of a LocalProvider block: none. */
    local_walltime: Infinity,
    /** Seconds before a scheduler command (submit, status, cancel) is killed. */
    cmd_timeout: 30,
    /** Status commands a provider may run per minute (polite polling; a slow scheduler gets fewer). */
    max_status_rate: 12,
  },
  /** The `strategy` section. */
  strategy: {
    /** Seconds between decisions. */
    period: 5,
    /** Seconds a block's managers must be idle before it is given back. */
    max_idletime: 120,
    /** Seconds before a block's end at which its managers drain (and get no task without an estimate). */
    walltime_margin: 60,
    /** Seconds a block may stay pending before it no longer counts as coming capacity (cancelled, replaced). */
    max_pending_time: 600,
  },
  /** The `engine` section: interchange, managers and workers. */
  engine: {
    /** Cores each worker needs; workers per node = cores / cores_per_worker, capped by max_workers_per_node. */
    cores_per_worker: 1,
    /** Tasks a manager accepts beyond one per worker (it widens its window by itself for short tasks). */
    prefetch_capacity: 0,
    /** Address managers dial when neither the profile nor the global endpoint_address names one. */
    address: '127.0.0.1',
    extra_addresses: [] as readonly string[],
    /** Interchange port: 0 lets the OS choose. */
    interchange_port: 0,
    /** Seconds between heartbeats, both ways (interchange and manager use this one value). */
    heartbeat_period: 30,
    /** Seconds of silence after which a peer is lost. */
    heartbeat_threshold: 120,
    /** Retries of a task whose manager was lost before it fails with ManagerLost. */
    max_retries: 1,
    /** Seconds one round of manager address probing waits (the manager and the engine use this one value). */
    address_probe_timeout: 10,
    /** Results larger than this fail with ResultTooLarge (bytes). */
    result_size_limit: 10 * 1024 * 1024,
    /** Seconds a user's worker pool (on a shared endpoint) may stay idle before its processes end. */
    user_pool_idle: 60,
    /**
     * Most worker processes a manager keeps, busy and warm idle; null: max(2 × workers, workers + 4) (see
     * WORKER_POOL_DEFAULTS). Workers (slots) bound the tasks that run at once; processes beyond them stay warm
     * for users who share the endpoint, so users take turns on the slots without restarting a process.
     */
    max_worker_processes: null as number | null,
    /**
     * Microseconds a manager's nice-19 spinner thread keeps a CPU of its node busy after each message in or
     * out, so the next hop of a round trip is woken on a running CPU (src/worker/busy-poll.ts); 0: off. Off
     * by default: on the 2-CPU test VM 200 µs took 6–13 % off the engine's p50 and p99 but made its p90
     * 10–25 % worse, left p99/p50 where it was and added 0.13–0.27 ms of CPU per sequential task; it can
     * only help where every CPU of the node would otherwise be idle (a wake-up goes to an idle CPU first).
     */
    busy_poll_us: 0,
    manager_log_level: 'info' as 'debug' | 'info' | 'warn' | 'error',
    /** "htex": managers per node, tasks in worker slots; "mpi": one manager per block packing tasks onto nodes. */
    mode: 'htex' as 'htex' | 'mpi',
    /** The launcher MPI tasks run under (mode "mpi"). */
    mpi_launcher: 'mpiexec' as 'srun' | 'mpiexec' | 'mpirun' | 'aprun' | 'jsrun',
    mpi_launcher_overrides: '',
  },
  /** Address the daemon's /metrics binds when metrics_port is set. */
  metrics_host: '127.0.0.1',
  /** `$FUNCX_HOME/config.ts` (service_url and username depend on the environment: see global-options.ts). */
  global: {
    service_url: 'http://127.0.0.1:8080',
    email: '',
    broker_address: '127.0.0.1',
    broker_port: 8088,
  },
} as const;

/** Back-compatible name of the engine section. */
export const ENGINE_DEFAULTS = DEFAULTS.engine;

/** Task duration the strategy assumes when the engine has no estimate (ms). Not a user option. */
export const DEFAULT_ESTIMATE_MS = 1000;

/**
 * The worker process's own defaults (funcx-worker is started by a manager, which passes the resolved config
 * through its environment; these apply when it passes nothing). Not user options.
 */
export const WORKER_DEFAULTS = {
  /** fd of the manager's socket pair. */
  fd: 3,
  /** Results larger than this fail with ResultTooLarge (bytes): the engine's result_size_limit. */
  result_size_limit: DEFAULTS.engine.result_size_limit,
  /** How an MPI task runs outside an MPI block; `{ranks}` is replaced. */
  mpi_command: 'mpiexec -n {ranks}',
} as const;

/** The manager's worker pools (src/worker/pool-scheduler.ts). Not user options. */
export const WORKER_POOL_DEFAULTS = {
  /** engine.max_worker_processes unset: this many processes per worker (slot)... */
  processes_per_worker: 2,
  /** ...and at least this many beyond the workers (a 1- or 2-core node shared by three users keeps one warm each). */
  spare_processes_at_least: 4,
  /**
   * A user keeps a slot this long (ms) before a waiting user with fewer slots takes its turn. Short: a turn
   * costs no process start (the next user's process is warm), only a smaller batch; a waiting user's task
   * waits about one slice (the abuse run's honest tasks are ~1 ms each, batched every 100 ms per user).
   */
  slice_ms: 20,
} as const;

/** The endpoint's unacknowledged results on disk (src/endpoint/service-link/result-spool.ts). Not user options. */
export const RESULT_SPOOL_DEFAULTS = {
  /**
   * A result batch is written to disk once the service has not acknowledged it for this long (ms), and at
   * once when it cannot be sent. An ack takes about a millisecond, so a round trip does no disk work; a
   * crash within this time loses only results the service sends the tasks of again (at least once).
   */
  write_after_ms: 1000,
} as const;

/** Walltime of a task when the profile sets none (ms); undefined means no limit. */
export const DEFAULT_TASK_WALLTIME_MS: number | undefined = undefined;


/** Strategy tunables about real sites (seconds): the same values as DEFAULTS.strategy. */
export const SITE_DEFAULTS = { max_pending_time: DEFAULTS.strategy.max_pending_time } as const;

/**
 * The young-generation semi-space of the endpoint daemon (V8's --max-semi-space-size, MiB), as the service's
 * (SERVICE_SEMI_SPACE_MB): its batches of tasks and results are short-lived objects. A --max-semi-space-size
 * in NODE_OPTIONS wins.
 */
export const DAEMON_SEMI_SPACE_MB = 64;
