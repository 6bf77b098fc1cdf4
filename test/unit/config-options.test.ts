/**
 * Every option of a profile and of the global options, from one table: its default, a valid value and what
 * it resolves to, and an invalid value whose error names the field path in the one message style
 * (`<path> must be <what> (got <value>)`).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Config, type ConfigOptions } from '../../src/config/config.js';
import { DEFAULTS } from '../../src/config/defaults.js';
import { checkGlobalOptions, defaultGlobalOptions, globalOptionWarnings } from '../../src/config/global-options.js';
import { ConfigError } from '../../src/errors.js';
import { LocalProvider, type LocalProviderOptions } from '../../providers/local.js';
import { SlurmProvider } from '../../providers/slurm.js';
import { SimpleLauncher } from '../../launchers/simple.js';

type Row = {
  /** The field path users see in messages. */
  path: string;
  /** Build the options for a value of this field (undefined: the field left out). */
  make: (value: unknown) => ConfigOptions;
  /** What the resolved Config says about the field. */
  read: (c: Config) => unknown;
  default: unknown;
  valid: [unknown, unknown];
  invalid: unknown;
  /** The message when it is not the default `path must be`. */
  message?: RegExp;
};

const engine = (field: string) => (v: unknown): ConfigOptions => (v === undefined ? {} : { engine: { [field]: v } as never });
const strategy = (field: string) => (v: unknown): ConfigOptions => (v === undefined ? {} : { strategy: { [field]: v } as never });
const local = (field: string) => (v: unknown): ConfigOptions =>
  ({ provider: new LocalProvider(v === undefined ? {} : ({ [field]: v } as LocalProviderOptions)) });
const slurm = (field: string) => (v: unknown): ConfigOptions =>
  ({ provider: new SlurmProvider(v === undefined ? {} : ({ [field]: v } as never)) });
const e = DEFAULTS.engine;

const ROWS: Row[] = [
  // Config
  { path: 'display_name', make: (v) => (v === undefined ? {} : { display_name: v as string }), read: (c) => c.displayName, default: undefined, valid: ['My EP', 'My EP'], invalid: 'x;rm' },
  { path: 'allowed_functions', make: (v) => (v === undefined ? {} : { allowed_functions: v as string[] }), read: (c) => (c.allowedFunctions ? [...c.allowedFunctions] : null), default: null, valid: [['f1'], ['f1']], invalid: [''] },
  { path: 'shared_with', make: (v) => (v === undefined ? {} : { shared_with: v as string }), read: (c) => c.sharedWith, default: null, valid: ['physics', 'physics'], invalid: '' },
  { path: 'allow_any_function_from', make: (v) => ({ shared_with: 'physics', ...(v === undefined ? {} : { allow_any_function_from: v as string }) }), read: (c) => c.othersRunAnyFunction, default: false, valid: ['physics', true], invalid: 'chemistry', message: /allow_any_function_from must be the shared_with group "physics" \(got "chemistry"\)/ },
  // engine
  { path: 'engine.max_workers_per_node', make: engine('max_workers_per_node'), read: (c) => c.engine.maxWorkersPerNode, default: undefined, valid: [4, 4], invalid: 0 },
  { path: 'engine.cores_per_worker', make: engine('cores_per_worker'), read: (c) => c.engine.coresPerWorker, default: e.cores_per_worker, valid: [0.5, 0.5], invalid: 0 },
  { path: 'engine.mem_per_worker', make: engine('mem_per_worker'), read: (c) => c.engine.memPerWorkerGB, default: undefined, valid: [2, 2], invalid: -1 },
  { path: 'engine.prefetch_capacity', make: engine('prefetch_capacity'), read: (c) => c.engine.prefetch, default: e.prefetch_capacity, valid: [3, 3], invalid: 1.5 },
  { path: 'engine.address', make: engine('address'), read: (c) => c.engine.address, default: undefined, valid: ['10.0.0.1', '10.0.0.1'], invalid: 'a b' },
  { path: 'engine.extra_addresses', make: engine('extra_addresses'), read: (c) => c.engine.extraAddresses, default: [], valid: [['h1'], ['h1']], invalid: ['a;b'] },
  { path: 'engine.interchange_port', make: engine('interchange_port'), read: (c) => c.engine.port, default: e.interchange_port, valid: [9000, 9000], invalid: 70000 },
  { path: 'engine.interchange_port_range', make: engine('interchange_port_range'), read: (c) => c.engine.port, default: e.interchange_port, valid: [[9000, 9010], [9000, 9010]], invalid: [9010, 9000] },
  { path: 'engine.heartbeat_period', make: engine('heartbeat_period'), read: (c) => c.engine.heartbeatPeriodMs, default: e.heartbeat_period * 1000, valid: [10, 10_000], invalid: 0 },
  { path: 'engine.heartbeat_threshold', make: engine('heartbeat_threshold'), read: (c) => c.engine.heartbeatThresholdMs, default: e.heartbeat_threshold * 1000, valid: [300, 300_000], invalid: 10, message: /engine\.heartbeat_threshold must be greater than engine\.heartbeat_period \(30 s\) \(got 10\)/ },
  { path: 'engine.max_retries', make: engine('max_retries'), read: (c) => c.engine.maxRetries, default: e.max_retries, valid: [0, 0], invalid: -1 },
  { path: 'engine.address_probe_timeout', make: engine('address_probe_timeout'), read: (c) => c.engine.probeTimeoutMs, default: e.address_probe_timeout * 1000, valid: [2, 2000], invalid: 0 },
  { path: 'engine.user_pool_idle', make: engine('user_pool_idle'), read: (c) => c.engine.userPoolIdleMs, default: e.user_pool_idle * 1000, valid: [5, 5000], invalid: 0 },
  { path: 'engine.max_worker_processes', make: engine('max_worker_processes'), read: (c) => c.engine.maxWorkerProcesses, default: undefined, valid: [8, 8], invalid: 0 },
  { path: 'engine.max_worker_processes', make: (v) => ({ engine: { max_workers_per_node: 4, ...(v === undefined ? {} : { max_worker_processes: v }) } as never }), read: (c) => c.engine.maxWorkerProcesses, default: undefined, valid: [4, 4], invalid: 3, message: /engine\.max_worker_processes must be at least engine\.max_workers_per_node \(4\)/ },
  { path: 'engine.result_size_limit', make: engine('result_size_limit'), read: (c) => c.engine.resultSizeLimit, default: e.result_size_limit, valid: [1024, 1024], invalid: 0 },
  { path: 'engine.manager_command', make: engine('manager_command'), read: (c) => c.engine.managerCommand, default: undefined, valid: ['my-manager', 'my-manager'], invalid: 'a\nb' },
  { path: 'engine.busy_poll_us', make: engine('busy_poll_us'), read: (c) => c.engine.busyPollUs, default: e.busy_poll_us, valid: [300, 300], invalid: 2.5 },
  { path: 'engine.busy_poll_us', make: engine('busy_poll_us'), read: (c) => c.engine.busyPollUs, default: e.busy_poll_us, valid: [0, 0], invalid: 200_000 },
  { path: 'engine.manager_log_level', make: engine('manager_log_level'), read: (c) => c.engine.managerLogLevel, default: e.manager_log_level, valid: ['debug', 'debug'], invalid: 'loud' },
  { path: 'engine.mode', make: (v) => (v === undefined ? {} : { engine: { mode: v } as never, provider: new LocalProvider({ launcher: new SimpleLauncher() }) }), read: (c) => c.engine.mode, default: e.mode, valid: ['mpi', 'mpi'], invalid: 'gpu' },
  { path: 'engine.mpi_launcher', make: (v) => ({ engine: { mode: 'mpi', ...(v === undefined ? {} : { mpi_launcher: v }) } as never, provider: new LocalProvider({ launcher: new SimpleLauncher() }) }), read: (c) => c.engine.mpi?.launcher, default: e.mpi_launcher, valid: ['srun', 'srun'], invalid: 'ibrun' },
  { path: 'engine.mpi_launcher_overrides', make: (v) => ({ engine: { mode: 'mpi', ...(v === undefined ? {} : { mpi_launcher_overrides: v }) } as never, provider: new LocalProvider({ launcher: new SimpleLauncher() }) }), read: (c) => c.engine.mpi?.overrides, default: e.mpi_launcher_overrides, valid: ['--mca btl tcp', '--mca btl tcp'], invalid: 'a\nb' },
  // strategy
  { path: 'strategy.period', make: strategy('period'), read: (c) => c.strategy.periodMs, default: DEFAULTS.strategy.period * 1000, valid: [2, 2000], invalid: 0 },
  { path: 'strategy.max_idletime', make: strategy('max_idletime'), read: (c) => c.strategy.maxIdleMs, default: DEFAULTS.strategy.max_idletime * 1000, valid: [30, 30_000], invalid: -5 },
  { path: 'strategy.walltime_margin', make: strategy('walltime_margin'), read: (c) => c.strategy.walltimeMarginMs, default: DEFAULTS.strategy.walltime_margin * 1000, valid: [10, 10_000], invalid: 'soon' },
  { path: 'strategy.max_pending_time', make: strategy('max_pending_time'), read: (c) => c.strategy.maxPendingMs, default: DEFAULTS.strategy.max_pending_time * 1000, valid: [20, 20_000], invalid: 0 },
  { path: 'strategy.nodes_per_block', make: strategy('nodes_per_block'), read: (c) => c.strategy.nodes, default: { min: 1, max: 1 }, valid: [{ min: 1, max: 4 }, { min: 1, max: 4 }], invalid: { min: 0, max: 2 }, message: /strategy\.nodes_per_block\.min must be a whole number ≥ 1 \(got 0\)/ },
  { path: 'strategy.walltime', make: strategy('walltime'), read: (c) => c.strategy.walltimeS, default: { min: Infinity, max: Infinity }, valid: [{ min: '00:10:00', max: 7200 }, { min: 600, max: 7200 }], invalid: { min: 600, max: 'later' }, message: /strategy\.walltime\.max must be a walltime/ },
  { path: 'metrics_port', make: (v) => (v === undefined ? {} : { metrics_port: v as number }), read: (c) => c.metrics, default: null, valid: [9100, { host: DEFAULTS.metrics_host, port: 9100 }], invalid: 70000 },
  { path: 'metrics_host', make: (v) => ({ metrics_port: 9100, ...(v === undefined ? {} : { metrics_host: v as string }) }), read: (c) => c.metrics?.host, default: DEFAULTS.metrics_host, valid: ['0.0.0.0', '0.0.0.0'], invalid: 'a b' },
  // provider block fields: kept raw by the provider, resolved here
  { path: 'provider.init_blocks', make: local('init_blocks'), read: (c) => c.strategy.initBlocks, default: DEFAULTS.provider.init_blocks, valid: [1, 1], invalid: -1 },
  { path: 'provider.min_blocks', make: local('min_blocks'), read: (c) => c.strategy.minBlocks, default: DEFAULTS.provider.min_blocks, valid: [1, 1], invalid: 2, message: /provider\.min_blocks must be ≤ provider\.max_blocks \(1\) \(got 2\)/ },
  { path: 'provider.max_blocks', make: local('max_blocks'), read: (c) => c.strategy.maxBlocks, default: DEFAULTS.provider.max_blocks, valid: [4, 4], invalid: 0 },
  { path: 'provider.parallelism', make: local('parallelism'), read: (c) => c.strategy.parallelism, default: DEFAULTS.provider.parallelism, valid: [0.5, 0.5], invalid: 1.5 },
  { path: 'provider.nodes_per_block', make: slurm('nodes_per_block'), read: (c) => c.strategy.nodes, default: { min: 1, max: 1 }, valid: [2, { min: 2, max: 2 }], invalid: 1.5 },
  { path: 'provider.walltime', make: slurm('walltime'), read: (c) => c.strategy.walltimeS, default: { min: 1800, max: 1800 }, valid: ['01:00:00', { min: 3600, max: 3600 }], invalid: '30m' },
  { path: 'provider.walltime', make: local('walltime'), read: (c) => c.strategy.walltimeS, default: { min: Infinity, max: Infinity }, valid: [600, { min: 600, max: 600 }], invalid: 0 },
];

const rejects = (fn: () => unknown, path: string, value: unknown, message?: RegExp): void => {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err));
    if (message) assert.match(err.message, message);
    else assert.ok(err.message.startsWith(`${path} must be `) && err.message.endsWith(`(got ${JSON.stringify(value)})`), err.message);
    return true;
  }, `${path} = ${JSON.stringify(value)}`);
};

describe('profile options: default, valid, invalid', () => {
  for (const row of ROWS) {
    test(`${row.path}${row.make === ROWS.find((r) => r.path === row.path)?.make ? '' : ' (local)'}`, () => {
      assert.deepEqual(row.read(new Config(row.make(undefined))), row.default, 'default');
      assert.deepEqual(row.read(new Config(row.make(row.valid[0]))), row.valid[1], 'valid');
      rejects(() => new Config(row.make(row.invalid)), row.path, row.invalid, row.message);
    });
  }

  test('nodes_per_block and walltime are owned once: set on both provider and strategy is an error', () => {
    assert.throws(() => new Config({ provider: new SlurmProvider({ nodes_per_block: 2 }), strategy: { nodes_per_block: { min: 1, max: 4 } } }),
      /strategy\.nodes_per_block and provider\.nodes_per_block are both set/);
    assert.throws(() => new Config({ provider: new SlurmProvider({ walltime: 600 }), strategy: { walltime: 900 } }),
      /strategy\.walltime and provider\.walltime are both set/);
  });

  test('unknown fields name their path', () => {
    assert.throws(() => new Config({ bogus: 1 } as never), /Error: bogus is not a known field \(known: /);
    assert.throws(() => new Config({ engine: { bogus: 1 } as never }), /Error: engine\.bogus is not a known field/);
    assert.throws(() => new Config({ strategy: { max_blocks: 2 } as never }), /Error: strategy\.max_blocks is not a known field/);
  });

  test('allow_any_function_from needs shared_with, and does not mix with allowed_functions', () => {
    assert.throws(() => new Config({ allow_any_function_from: 'physics' }), /allow_any_function_from is set but shared_with is not/);
    assert.throws(() => new Config({ shared_with: 'physics', allow_any_function_from: 'physics', allowed_functions: ['f1'] }), /allow_any_function_from and allowed_functions are both set/);
  });

  test('an MPI engine needs a launcher that starts one manager per block', () => {
    assert.throws(() => new Config({ engine: { mode: 'mpi' }, provider: new SlurmProvider({}) }), /Error: provider\.launcher must be SimpleLauncher/);
  });
});

describe('global options: default, valid, invalid', () => {
  const defaults = defaultGlobalOptions({});
  const rows: Array<[string, unknown, unknown]> = [
    ['service_url', 'https://funcx.example.org', 'ftp://x'],
    ['username', 'alice', ''],
    ['email', 'alice@example.org', 'alice'],
    ['broker_address', '10.0.0.2', 'a b'],
    ['broker_port', 9000, 0],
    ['endpoint_address', 'login1', 'a;b'],
  ];
  test('defaults come from the one table', () => {
    assert.equal(defaults.service_url, DEFAULTS.global.service_url);
    assert.equal(defaults.email, DEFAULTS.global.email);
    assert.equal(defaults.broker_address, DEFAULTS.global.broker_address);
    assert.equal(defaults.broker_port, DEFAULTS.global.broker_port);
    assert.ok(defaults.username.length > 0 && defaults.endpoint_address.length > 0);
  });
  for (const [field, valid, invalid] of rows) {
    test(field, () => {
      assert.deepEqual(checkGlobalOptions({}, 'config.ts', defaults)[field as 'email'], defaults[field as 'email'], 'default');
      assert.deepEqual(checkGlobalOptions({ [field]: valid }, 'config.ts', defaults)[field as 'email'], valid, 'valid');
      assert.throws(() => checkGlobalOptions({ [field]: invalid }, 'config.ts', defaults), (err: unknown) =>
        err instanceof ConfigError && err.message.startsWith(`config.ts: ${field} must be `) && err.message.endsWith(`(got ${JSON.stringify(invalid)})`));
    });
  }
  test('broker_address and broker_port are accepted with a one-line warning; nothing else warns', () => {
    assert.deepEqual(globalOptionWarnings({ username: 'a', email: '' }, 'config.ts'), []);
    const lines = globalOptionWarnings({ broker_address: '10.0.0.2', broker_port: 8088 }, 'config.ts');
    assert.equal(lines.length, 2);
    assert.ok(lines.every((l) => !l.includes('\n') && /^config\.ts: broker_(address|port) has no effect here/.test(l)), lines.join('\n'));
  });
});
