/**
 * The Config a profile exports: engine shape, provider (with its launcher and channel), strategy, and the
 * functions this endpoint may run. Checked when built, so a broken profile fails at `start` with the field named.
 */
import { ConfigError } from '../errors.js';
import type { ExecutionProvider } from '../../providers/provider.js';
import { LocalProvider } from '../../providers/local.js';
import type { StrategyOptions as FullStrategyOptions } from '../endpoint/engine/strategy.js';
import { resolveEngineOptions, type EngineOptions, type ResolvedEngineOptions } from './engine-options.js';

/** The `strategy` section of a profile (block limits live on the provider). */
export type StrategyOptions = Pick<FullStrategyOptions, 'period' | 'max_idletime' | 'walltime_margin' | 'nodes_per_block' | 'walltime' | 'max_pending_time'>;

export interface ConfigOptions {
  /** Shown by `list` and the service. @default the profile's folder name */
  display_name?: string;
  engine?: EngineOptions;
  /** @default new LocalProvider() */
  provider?: ExecutionProvider;
  strategy?: StrategyOptions;
  /** Function ids this endpoint runs; any other task fails with "function not allowed". @default any */
  allowed_functions?: string[];
  /** Serve Prometheus metrics on this port (0: any free port). @default off */
  metrics_port?: number;
  /** Address the metrics port binds. @default '127.0.0.1' */
  metrics_host?: string;
}

const FIELDS = new Set(['display_name', 'engine', 'provider', 'strategy', 'allowed_functions', 'metrics_port', 'metrics_host']);
const STRATEGY_FIELDS = new Set(['period', 'max_idletime', 'walltime_margin', 'nodes_per_block', 'walltime', 'max_pending_time']);

export class Config {
  readonly displayName?: string;
  readonly engine: ResolvedEngineOptions;
  readonly provider: ExecutionProvider;
  readonly strategy: StrategyOptions;
  readonly allowedFunctions: ReadonlySet<string> | null;
  /** Where the daemon serves /metrics; null: not served. */
  readonly metrics: { host: string; port: number } | null;
  /** The options as given (for `render` and `doctor`). */
  readonly options: ConfigOptions;

  constructor(options: ConfigOptions = {}) {
    if (options === null || typeof options !== 'object') throw new ConfigError('Config: expected an options object');
    for (const key of Object.keys(options)) {
      if (!FIELDS.has(key)) throw new ConfigError(`${key}: unknown field of Config (known: ${[...FIELDS].join(', ')})`);
    }
    this.options = options;
    if (options.display_name !== undefined && (typeof options.display_name !== 'string' || !/^[\w .-]{1,64}$/.test(options.display_name))) {
      throw new ConfigError(`display_name: expected up to 64 letters, digits, spaces, "_", "." or "-", got ${JSON.stringify(options.display_name)}`);
    }
    this.displayName = options.display_name;
    this.engine = resolveEngineOptions(options.engine ?? {});
    const provider = options.provider ?? new LocalProvider();
    if (typeof (provider as Partial<ExecutionProvider>).submit !== 'function' || typeof (provider as Partial<ExecutionProvider>).status !== 'function') {
      throw new ConfigError('provider: expected a provider object (new SlurmProvider({...}), new LocalProvider(), ...)');
    }
    this.provider = provider;
    const strategy = options.strategy ?? {};
    if (strategy === null || typeof strategy !== 'object') throw new ConfigError('strategy: expected an object');
    for (const key of Object.keys(strategy)) {
      if (!STRATEGY_FIELDS.has(key)) throw new ConfigError(`strategy.${key}: unknown field (known: ${[...STRATEGY_FIELDS].join(', ')})`);
    }
    const pendingLimit = (strategy as StrategyOptions).max_pending_time;
    if (pendingLimit !== undefined && (typeof pendingLimit !== 'number' || !Number.isFinite(pendingLimit) || pendingLimit <= 0)) {
      throw new ConfigError(`strategy.max_pending_time: must be a number of seconds more than 0, got ${JSON.stringify(pendingLimit)}`);
    }
    this.strategy = strategy;
    if (options.allowed_functions !== undefined) {
      if (!Array.isArray(options.allowed_functions) || !options.allowed_functions.every((f) => typeof f === 'string' && f.length > 0)) {
        throw new ConfigError('allowed_functions: expected an array of function ids');
      }
      this.allowedFunctions = new Set(options.allowed_functions);
    } else {
      this.allowedFunctions = null;
    }
    const port = options.metrics_port;
    if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
      throw new ConfigError(`metrics_port: expected a port number from 0 to 65535, got ${JSON.stringify(port)}`);
    }
    const host = options.metrics_host;
    if (host !== undefined && (typeof host !== 'string' || !/^[\w.:-]{1,253}$/.test(host))) {
      throw new ConfigError(`metrics_host: expected an address such as 127.0.0.1, got ${JSON.stringify(host)}`);
    }
    if (host !== undefined && port === undefined) throw new ConfigError('metrics_host: set metrics_port too (metrics are off without it)');
    this.metrics = port === undefined ? null : { host: host ?? '127.0.0.1', port };
  }
}
