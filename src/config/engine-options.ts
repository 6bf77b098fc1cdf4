/**
 * The `engine` section of a profile: how managers and workers are shaped and how the interchange talks to them.
 */
import { cpus } from 'node:os';
import { ConfigError } from '../errors.js';
import { DEFAULTS } from './defaults.js';
import { checkNumber, fieldError, unknownField } from './field-error.js';
import { MPI_ENGINE_FIELDS, resolveMpiOptions, type EngineMode, type MpiEngineOptions, type ResolvedMpiOptions } from './mpi-options.js';

export interface EngineOptions extends MpiEngineOptions {
  /** Most workers a manager starts on one node. @default cores / cores_per_worker */
  max_workers_per_node?: number;
  /** Cores each worker needs. @default 1 */
  cores_per_worker?: number;
  /** Memory each worker needs, in GB; limits workers per node by the node's memory. @default unset */
  mem_per_worker?: number;
  /** Tasks a manager accepts beyond one per worker. @default 0 */
  prefetch_capacity?: number;
  /** Seconds a user's worker pool (tasks of other users on a shared endpoint) may stay idle before its workers end. @default 60 */
  user_pool_idle?: number;
  /**
   * Most worker processes a manager keeps, busy and warm idle; at least max_workers_per_node. Workers bound
   * the tasks that run at once; processes beyond them stay warm for users sharing the endpoint.
   * @default max(2 × workers, workers + 4)
   */
  max_worker_processes?: number;
  /** Address managers dial; overrides the global `endpoint_address`. @default global endpoint_address, else 127.0.0.1 */
  address?: string;
  /** Extra addresses managers may try (first that answers wins). @default [] */
  extra_addresses?: string[];
  /** Interchange port, or a [low, high] range for firewalled sites. @default 0 (any) */
  interchange_port?: number;
  interchange_port_range?: [number, number];
  /** Seconds between heartbeats (both ways). @default 30 */
  heartbeat_period?: number;
  /** Seconds of silence after which a peer is lost. @default 120 */
  heartbeat_threshold?: number;
  /** Retries of a task whose manager was lost. @default 1 */
  max_retries?: number;
  /** Seconds a manager waits for an address to answer per probe round (the one value: manager and engine). @default 10 */
  address_probe_timeout?: number;
  /** Result size limit in bytes. @default 10485760 (10 MiB) */
  result_size_limit?: number;
  /** Command that starts a manager on a compute node. @default this installation's node + funcx-manager */
  manager_command?: string;
  /**
   * Microseconds a manager's spinner thread (nice 19) keeps a CPU of its node busy after each message in or
   * out, so the next hop of a round trip (the worker's answer, the next task) is woken on a running CPU
   * instead of an idle one. 0 turns it off. It spins only after traffic, never when idle, and gives way to
   * any other thread; managers only (compute nodes), never the interchange (a shared login node). At most
   * 100000. @default 0 (off; see DEFAULTS.engine.busy_poll_us for what it did on a 2-CPU machine)
   */
  busy_poll_us?: number;
  /** Log level of managers. @default "info" */
  manager_log_level?: 'debug' | 'info' | 'warn' | 'error';
}

/** Engine options with defaults filled and durations in ms. */
export interface ResolvedEngineOptions {
  mode: EngineMode;
  /** Set in mode "mpi" only. */
  mpi?: ResolvedMpiOptions;
  maxWorkersPerNode?: number;
  /** Workers per node the strategy plans with: max_workers_per_node, else this host's cores / cores_per_worker. */
  workersPerNode: number;
  coresPerWorker: number;
  memPerWorkerGB?: number;
  prefetch: number;
  address?: string;
  extraAddresses: string[];
  port: number | [number, number];
  heartbeatPeriodMs: number;
  heartbeatThresholdMs: number;
  maxRetries: number;
  probeTimeoutMs: number;
  resultSizeLimit: number;
  userPoolIdleMs: number;
  /** engine.max_worker_processes; undefined: the manager's default for its node (max(2 × workers, workers + 4)). */
  maxWorkerProcesses?: number;
  managerCommand?: string;
  managerLogLevel: 'debug' | 'info' | 'warn' | 'error';
  /** engine.busy_poll_us (µs; 0: off). */
  busyPollUs: number;
}

export const ENGINE_FIELDS: readonly string[] = [
  'max_workers_per_node', 'cores_per_worker', 'mem_per_worker', 'prefetch_capacity', 'address', 'extra_addresses', 'user_pool_idle', 'max_worker_processes',
  'interchange_port', 'interchange_port_range', 'heartbeat_period', 'heartbeat_threshold', 'max_retries',
  'address_probe_timeout', 'result_size_limit', 'manager_command', 'manager_log_level', 'busy_poll_us', ...MPI_ENGINE_FIELDS,
];

const HOST = /^[A-Za-z0-9.:_-]+$/;
const LEVELS = ['debug', 'info', 'warn', 'error'] as const;

/** Fill defaults (DEFAULTS.engine) and check every field; errors name `${where}.field`. */
export function resolveEngineOptions(options: EngineOptions = {}, where = 'engine', cpuCount = cpus().length): ResolvedEngineOptions {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) throw fieldError(where, 'an object', options);
  for (const key of Object.keys(options)) {
    if (!ENGINE_FIELDS.includes(key)) throw unknownField(`${where}.${key}`, ENGINE_FIELDS);
  }
  const d = DEFAULTS.engine;
  const o = options as Record<string, unknown>;
  const given = <T>(key: string, fallback: T, check: (path: string, v: unknown) => T): T =>
    o[key] === undefined ? fallback : check(`${where}.${key}`, o[key]);
  const optional = <T>(key: string, check: (path: string, v: unknown) => T): T | undefined =>
    o[key] === undefined ? undefined : check(`${where}.${key}`, o[key]);
  const rule = (r: Parameters<typeof checkNumber>[2]) => (path: string, v: unknown): number => checkNumber(path, v, r);
  const test = <T>(ok: (v: unknown) => boolean, expected: string) => (path: string, v: unknown): T => {
    if (!ok(v)) throw fieldError(path, expected, v);
    return v as T;
  };

  const maxWorkersPerNode = optional('max_workers_per_node', rule({ min: 1, integer: true }));
  const coresPerWorker = given('cores_per_worker', d.cores_per_worker, rule({ exclusiveMin: true }));
  const memPerWorkerGB = optional('mem_per_worker', rule({ exclusiveMin: true }));
  const prefetch = given('prefetch_capacity', d.prefetch_capacity, rule({ integer: true }));
  const heartbeatPeriod = given('heartbeat_period', d.heartbeat_period, rule({ exclusiveMin: true }));
  const heartbeatThreshold = given('heartbeat_threshold', d.heartbeat_threshold, rule({ exclusiveMin: true }));
  const maxRetries = given('max_retries', d.max_retries, rule({ integer: true }));
  const probeTimeout = given('address_probe_timeout', d.address_probe_timeout, rule({ exclusiveMin: true }));
  const resultSizeLimit = given('result_size_limit', d.result_size_limit, rule({ min: 1, integer: true }));
  const userPoolIdle = given('user_pool_idle', d.user_pool_idle, rule({ exclusiveMin: true }));
  const maxWorkerProcesses = optional('max_worker_processes', rule({ min: 1, integer: true })) ?? d.max_worker_processes ?? undefined;
  const port = given<number | [number, number]>('interchange_port', d.interchange_port, rule({ integer: true, max: 65535 }));
  const range = optional('interchange_port_range', test<[number, number]>(
    (v) => Array.isArray(v) && v.length === 2 && v.every((p) => Number.isInteger(p) && p > 0 && p <= 65535) && v[0] <= v[1],
    '[low, high] ports (1-65535) with low ≤ high'));
  const address = optional('address', test<string>((v) => typeof v === 'string' && HOST.test(v), 'a host name or IP address'));
  const extraAddresses = given('extra_addresses', [...d.extra_addresses], test<string[]>(
    (v) => Array.isArray(v) && v.every((a) => typeof a === 'string' && HOST.test(a)), 'an array of host names or IP addresses'));
  const managerCommand = optional('manager_command', test<string>((v) => typeof v === 'string' && v.trim() !== '' && !/[\n\0]/.test(v), 'a one-line command'));
  const managerLogLevel = given('manager_log_level', d.manager_log_level, test<ResolvedEngineOptions['managerLogLevel']>(
    (v) => (LEVELS as readonly unknown[]).includes(v), LEVELS.join(' | ')));
  const busyPollUs = given('busy_poll_us', d.busy_poll_us as number, rule({ integer: true, max: 100_000 }));
  const mpi = resolveMpiOptions(o, where);
  if (heartbeatThreshold <= heartbeatPeriod) {
    throw fieldError(`${where}.heartbeat_threshold`, `greater than ${where}.heartbeat_period (${heartbeatPeriod} s)`, heartbeatThreshold);
  }
  if (maxWorkerProcesses !== undefined && maxWorkersPerNode !== undefined && maxWorkerProcesses < maxWorkersPerNode) {
    throw fieldError(`${where}.max_worker_processes`, `at least ${where}.max_workers_per_node (${maxWorkersPerNode}): every worker needs a process`, maxWorkerProcesses);
  }
  if (o.interchange_port !== undefined && range !== undefined) {
    throw new ConfigError(`${where}.interchange_port and ${where}.interchange_port_range are both set: set one`);
  }
  return {
    ...mpi,
    maxWorkersPerNode,
    // MPI mode sizes blocks by nodes: a node is the unit of work.
    workersPerNode: mpi.mode === 'mpi' ? 1 : maxWorkersPerNode ?? Math.max(1, Math.floor(cpuCount / coresPerWorker)),
    coresPerWorker,
    memPerWorkerGB,
    prefetch,
    address,
    extraAddresses,
    port: range ?? port,
    heartbeatPeriodMs: heartbeatPeriod * 1000,
    heartbeatThresholdMs: heartbeatThreshold * 1000,
    maxRetries,
    probeTimeoutMs: probeTimeout * 1000,
    resultSizeLimit,
    userPoolIdleMs: userPoolIdle * 1000,
    maxWorkerProcesses,
    managerCommand,
    managerLogLevel,
    busyPollUs,
  };
}

/** The address managers dial: the profile's engine.address, else the global endpoint_address, else DEFAULTS. */
export function managerAddress(engine: ResolvedEngineOptions, endpointAddress: string | undefined): string {
  return engine.address ?? endpointAddress ?? DEFAULTS.engine.address;
}
