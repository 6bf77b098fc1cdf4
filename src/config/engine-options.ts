/**
 * The `engine` section of a profile: how managers and workers are shaped and how the interchange talks to them.
 */
import { ConfigError } from '../errors.js';
import { ENGINE_DEFAULTS } from './defaults.js';
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
  /** Seconds a manager waits for an address to answer per probe round. @default 10 */
  address_probe_timeout?: number;
  /** Result size limit in bytes. @default 10485760 (10 MiB) */
  result_size_limit?: number;
  /** Command that starts a manager on a compute node. @default this installation's node + funcx-manager */
  manager_command?: string;
  /** Log level of managers. @default "info" */
  manager_log_level?: 'debug' | 'info' | 'warn' | 'error';
}

/** Engine options with defaults filled and durations in ms. */
export interface ResolvedEngineOptions {
  mode: EngineMode;
  /** Set in mode "mpi" only. */
  mpi?: ResolvedMpiOptions;
  maxWorkersPerNode?: number;
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
  managerCommand?: string;
  managerLogLevel: 'debug' | 'info' | 'warn' | 'error';
}

const FIELDS = new Set([
  'max_workers_per_node', 'cores_per_worker', 'mem_per_worker', 'prefetch_capacity', 'address', 'extra_addresses',
  'interchange_port', 'interchange_port_range', 'heartbeat_period', 'heartbeat_threshold', 'max_retries',
  'address_probe_timeout', 'result_size_limit', 'manager_command', 'manager_log_level', ...MPI_ENGINE_FIELDS,
]);

function num(where: string, value: unknown, { min = 0, integer = false, exclusiveMin = false } = {}): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || (integer && !Number.isInteger(value)) || value < min || (exclusiveMin && value === min)) {
    const what = integer ? 'an integer' : 'a number';
    throw new ConfigError(`${where}: expected ${what} ${exclusiveMin ? '>' : '≥'} ${min}, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** Fill defaults and check every field; errors name `${where}.field`. */
export function resolveEngineOptions(options: EngineOptions = {}, where = 'engine'): ResolvedEngineOptions {
  if (options === null || typeof options !== 'object') throw new ConfigError(`${where}: expected an object`);
  for (const key of Object.keys(options)) {
    if (!FIELDS.has(key)) throw new ConfigError(`${where}.${key}: unknown field (known: ${[...FIELDS].join(', ')})`);
  }
  const o = options as Record<string, unknown>;
  const opt = (key: string, check: (v: unknown) => unknown): void => {
    if (o[key] !== undefined) check(o[key]);
  };
  opt('max_workers_per_node', (v) => num(`${where}.max_workers_per_node`, v, { min: 1, integer: true }));
  opt('cores_per_worker', (v) => num(`${where}.cores_per_worker`, v, { min: 0, exclusiveMin: true }));
  opt('mem_per_worker', (v) => num(`${where}.mem_per_worker`, v, { min: 0, exclusiveMin: true }));
  opt('prefetch_capacity', (v) => num(`${where}.prefetch_capacity`, v, { integer: true }));
  opt('heartbeat_period', (v) => num(`${where}.heartbeat_period`, v, { exclusiveMin: true }));
  opt('heartbeat_threshold', (v) => num(`${where}.heartbeat_threshold`, v, { exclusiveMin: true }));
  opt('max_retries', (v) => num(`${where}.max_retries`, v, { integer: true }));
  opt('address_probe_timeout', (v) => num(`${where}.address_probe_timeout`, v, { exclusiveMin: true }));
  opt('result_size_limit', (v) => num(`${where}.result_size_limit`, v, { min: 1, integer: true }));
  opt('interchange_port', (v) => num(`${where}.interchange_port`, v, { integer: true }) <= 65535 || bad(`${where}.interchange_port`, 'a port ≤ 65535', v));
  opt('address', (v) => (typeof v === 'string' && /^[A-Za-z0-9.:_-]+$/.test(v)) || bad(`${where}.address`, 'a host name or IP address', v));
  opt('extra_addresses', (v) => (Array.isArray(v) && v.every((a) => typeof a === 'string' && /^[A-Za-z0-9.:_-]+$/.test(a))) || bad(`${where}.extra_addresses`, 'an array of host names or IPs', v));
  opt('interchange_port_range', (v) =>
    (Array.isArray(v) && v.length === 2 && v.every((p) => Number.isInteger(p) && p > 0 && p <= 65535) && v[0] <= v[1]) ||
    bad(`${where}.interchange_port_range`, '[low, high] ports with low ≤ high', v));
  opt('manager_command', (v) => (typeof v === 'string' && v.trim() !== '' && !/[\n\0]/.test(v)) || bad(`${where}.manager_command`, 'a one-line command', v));
  opt('manager_log_level', (v) => ['debug', 'info', 'warn', 'error'].includes(v as string) || bad(`${where}.manager_log_level`, 'debug | info | warn | error', v));
  const heartbeatPeriod = (o.heartbeat_period as number | undefined) ?? ENGINE_DEFAULTS.heartbeat_period;
  const heartbeatThreshold = (o.heartbeat_threshold as number | undefined) ?? ENGINE_DEFAULTS.heartbeat_threshold;
  if (heartbeatThreshold <= heartbeatPeriod) {
    throw new ConfigError(`${where}.heartbeat_threshold (${heartbeatThreshold} s) must be greater than heartbeat_period (${heartbeatPeriod} s)`);
  }
  if (o.interchange_port !== undefined && o.interchange_port_range !== undefined) {
    throw new ConfigError(`${where}: set interchange_port or interchange_port_range, not both`);
  }
  return {
    ...resolveMpiOptions(o, where),
    maxWorkersPerNode: options.max_workers_per_node,
    coresPerWorker: options.cores_per_worker ?? ENGINE_DEFAULTS.cores_per_worker,
    memPerWorkerGB: options.mem_per_worker,
    prefetch: options.prefetch_capacity ?? ENGINE_DEFAULTS.prefetch_capacity,
    address: options.address,
    extraAddresses: options.extra_addresses ?? [],
    port: options.interchange_port_range ?? options.interchange_port ?? ENGINE_DEFAULTS.interchange_port,
    heartbeatPeriodMs: heartbeatPeriod * 1000,
    heartbeatThresholdMs: heartbeatThreshold * 1000,
    maxRetries: options.max_retries ?? ENGINE_DEFAULTS.max_retries,
    probeTimeoutMs: (options.address_probe_timeout ?? ENGINE_DEFAULTS.address_probe_timeout) * 1000,
    resultSizeLimit: options.result_size_limit ?? ENGINE_DEFAULTS.result_size_limit,
    managerCommand: options.manager_command,
    managerLogLevel: options.manager_log_level ?? 'info',
  };
}

function bad(where: string, expected: string, value: unknown): never {
  throw new ConfigError(`${where}: expected ${expected}, got ${JSON.stringify(value)}`);
}
