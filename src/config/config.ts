/**
 * The Config a profile exports: engine shape, provider (with its launcher and channel), strategy, and the
 * functions this endpoint may run. Every option is resolved here, once, when the Config is built: defaults
 * from DEFAULTS (defaults.ts), one message style naming the field path (field-error.ts). A broken profile
 * fails at load, before the endpoint registers, with e.g. `config.ts: provider.max_blocks must be … (got 0)`.
 */
import { ConfigError } from '../errors.js';
import type { ExecutionProvider } from '../../providers/provider.js';
import { LocalProvider } from '../../providers/local.js';
import { resolveEngineOptions, type EngineOptions, type ResolvedEngineOptions } from './engine-options.js';
import { checkStrategySection, resolveBlockOptions, type ResolvedStrategyOptions, type StrategySection } from './strategy-options.js';
import { checkNumber, fieldError, unknownField } from './field-error.js';
import { DEFAULTS } from './defaults.js';

/** The `strategy` section of a profile (block limits, nodes_per_block and walltime live on the provider). */
export type StrategyOptions = StrategySection;

export interface ConfigOptions {
  /** Shown by `list` and the service. @default the profile's folder name */
  display_name?: string;
  engine?: EngineOptions;
  /** @default new LocalProvider() */
  provider?: ExecutionProvider;
  strategy?: StrategyOptions;
  /** Function ids this endpoint runs; any other task fails with "function not allowed". @default any */
  allowed_functions?: string[];
  /**
   * Share this endpoint with the members of this group (a group name at the service), sent with every
   * registration: a profile without it registers the endpoint unshared. Members' tasks run in their own
   * worker processes, and only for functions in allowed_functions. @default not shared
   */
  shared_with?: string;
  /** Let members of this group (must equal shared_with) run any function, not just allowed_functions. @default unset */
  allow_any_function_from?: string;
  /** Serve Prometheus metrics on this port (0: any free port). @default off */
  metrics_port?: number;
  /** Address the metrics port binds. @default '127.0.0.1' */
  metrics_host?: string;
}

export const CONFIG_FIELDS: readonly string[] = ['display_name', 'engine', 'provider', 'strategy', 'allowed_functions', 'shared_with', 'allow_any_function_from', 'metrics_port', 'metrics_host'];

export class Config {
  readonly displayName?: string;
  readonly engine: ResolvedEngineOptions;
  readonly provider: ExecutionProvider;
  /** Strategy and block options resolved (the provider's block fields + the strategy section). */
  readonly strategy: ResolvedStrategyOptions;
  readonly allowedFunctions: ReadonlySet<string> | null;
  /** The group the endpoint is shared with (shared_with); null: not shared. */
  readonly sharedWith: string | null;
  /** Other users' tasks may run any function (allow_any_function_from is set); else only allowed_functions. */
  readonly othersRunAnyFunction: boolean;
  /** Where the daemon serves /metrics; null: not served. */
  readonly metrics: { host: string; port: number } | null;
  /** The options as given (for `render` and `doctor`). */
  readonly options: ConfigOptions;

  constructor(options: ConfigOptions = {}) {
    if (options === null || typeof options !== 'object' || Array.isArray(options)) throw fieldError('Config', 'an options object', options);
    for (const key of Object.keys(options)) {
      if (!CONFIG_FIELDS.includes(key)) throw unknownField(key, CONFIG_FIELDS);
    }
    this.options = options;
    if (options.display_name !== undefined && (typeof options.display_name !== 'string' || !/^[\w .-]{1,64}$/.test(options.display_name))) {
      throw fieldError('display_name', 'up to 64 letters, digits, spaces, "_", "." or "-"', options.display_name);
    }
    this.displayName = options.display_name;
    this.engine = resolveEngineOptions(options.engine ?? {});
    const provider = options.provider ?? new LocalProvider();
    const p = provider as Partial<ExecutionProvider>;
    if (typeof p.submit !== 'function' || typeof p.status !== 'function' || typeof p.blockOptions !== 'object') {
      throw new ConfigError('provider must be a provider object: new SlurmProvider({...}), new LocalProvider(), ...');
    }
    this.provider = provider;
    if (this.engine.mode === 'mpi' && provider.launcher.name !== 'simple' && provider.launcher.name !== 'single-node') {
      throw fieldError('provider.launcher', "SimpleLauncher with engine.mode 'mpi' (one manager per block)", provider.launcher.name, undefined, [
        'set provider launcher: new SimpleLauncher()',
      ]);
    }
    this.strategy = resolveBlockOptions(provider, checkStrategySection(options.strategy), this.engine.workersPerNode);
    if (options.allowed_functions !== undefined) {
      if (!Array.isArray(options.allowed_functions) || !options.allowed_functions.every((f) => typeof f === 'string' && f.length > 0)) {
        throw fieldError('allowed_functions', 'an array of function ids', options.allowed_functions);
      }
      this.allowedFunctions = new Set(options.allowed_functions);
    } else {
      this.allowedFunctions = null;
    }
    const shared = options.shared_with;
    if (shared !== undefined && (typeof shared !== 'string' || !/^\S(.{0,98}\S)?$/.test(shared))) {
      throw fieldError('shared_with', 'the name of a group at the service (1 to 100 characters)', shared);
    }
    this.sharedWith = shared ?? null;
    const any = options.allow_any_function_from;
    if (any !== undefined) {
      if (shared === undefined) {
        throw new ConfigError('allow_any_function_from is set but shared_with is not: the endpoint is not shared, so no other user runs anything on it', [
          `set shared_with: ${JSON.stringify(String(any))} to share it, or remove allow_any_function_from`,
        ]);
      }
      if (any !== shared) throw fieldError('allow_any_function_from', `the shared_with group ${JSON.stringify(shared)}`, any);
      if (options.allowed_functions !== undefined) {
        throw new ConfigError('allow_any_function_from and allowed_functions are both set: allowed_functions limits every task (the owner\'s too), so other users could never run "any function"', [
          'remove allow_any_function_from to let other users run only allowed_functions, or remove allowed_functions',
        ]);
      }
    }
    this.othersRunAnyFunction = any !== undefined;
    const port = options.metrics_port;
    if (port !== undefined) checkNumber('metrics_port', port, { integer: true, max: 65535 });
    const host = options.metrics_host;
    if (host !== undefined && (typeof host !== 'string' || !/^[\w.:-]{1,253}$/.test(host))) throw fieldError('metrics_host', 'an address such as 127.0.0.1', host);
    if (host !== undefined && port === undefined) throw new ConfigError('metrics_host is set without metrics_port: set metrics_port too (metrics are off without it)');
    this.metrics = port === undefined ? null : { host: host ?? DEFAULTS.metrics_host, port };
  }
}
