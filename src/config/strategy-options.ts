/**
 * Strategy and block options, resolved once. The provider keeps the block fields as the profile wrote them
 * (Parsl's names: init_blocks, min_blocks, max_blocks, parallelism, nodes_per_block, walltime); the
 * `strategy` section adds period, max_idletime, walltime_margin and may give nodes_per_block or walltime as
 * {min, max} bounds instead. This file fills the defaults (from DEFAULTS), checks every field and names it
 * by its path (`provider.max_blocks`, `strategy.period`), and hands the engine one resolved object.
 */
import { ConfigError } from '../errors.js';
import { parseWalltime } from '../../providers/script-values.js';
import type { ProviderBlockOptions } from '../../providers/provider.js';
import { DEFAULTS } from './defaults.js';
import { checkNumber, fieldError, show, unknownField } from './field-error.js';

/** A range the strategy may choose within. */
export interface Bounds<T> { min: T; max: T }

/** The `strategy` section of a profile. */
export interface StrategySection {
  /** Seconds between decisions. @default 5 */
  period?: number;
  /** Seconds a block's managers must be idle before it is given back. @default 120 */
  max_idletime?: number;
  /** Seconds before a block's end at which its managers drain. @default 60 */
  walltime_margin?: number;
  /** Seconds a block may stay pending before it no longer counts as coming capacity (cancelled, replaced). @default 600 */
  max_pending_time?: number;
  /** Bounds the strategy sizes blocks within (a fixed size belongs on the provider). */
  nodes_per_block?: number | Bounds<number>;
  /** Walltime bounds ("HH:MM:SS" or seconds) the strategy chooses within (a fixed one belongs on the provider). */
  walltime?: number | string | Bounds<number | string>;
}

export const STRATEGY_SECTION_FIELDS: readonly string[] = ['period', 'max_idletime', 'walltime_margin', 'max_pending_time', 'nodes_per_block', 'walltime'];

/** Every strategy and block option in one flat object (what the resolver checks). */
export interface StrategyOptions extends StrategySection {
  /** Workers per node (from the engine section). @default 1 */
  workers_per_node?: number;
  init_blocks?: number;
  min_blocks?: number;
  max_blocks?: number;
  parallelism?: number;
}

/** Options with defaults filled and checked; durations in ms, walltime bounds in seconds. */
export interface ResolvedStrategyOptions {
  periodMs: number; maxIdleMs: number; walltimeMarginMs: number; workersPerNode: number; maxPendingMs: number;
  initBlocks: number; minBlocks: number; maxBlocks: number; parallelism: number;
  nodes: Bounds<number>;
  walltimeS: Bounds<number>;
}

/** Which section owns each field (what error messages call it). */
const OWNER: Record<keyof StrategyOptions, string> = {
  period: 'strategy', max_idletime: 'strategy', walltime_margin: 'strategy', max_pending_time: 'strategy', workers_per_node: 'engine',
  init_blocks: 'provider', min_blocks: 'provider', max_blocks: 'provider', parallelism: 'provider',
  nodes_per_block: 'provider', walltime: 'provider',
};

/** Defaults of the flat options (walltime: none, as for a provider without a scheduler). */
export const STRATEGY_DEFAULTS = {
  ...DEFAULTS.strategy,
  workers_per_node: 1,
  init_blocks: DEFAULTS.provider.init_blocks,
  min_blocks: DEFAULTS.provider.min_blocks,
  max_blocks: DEFAULTS.provider.max_blocks,
  parallelism: DEFAULTS.provider.parallelism,
  nodes_per_block: DEFAULTS.provider.nodes_per_block,
  walltime: DEFAULTS.provider.local_walltime,
} as const;

/**
 * Fill defaults and check that the limits agree. `source` (the profile's file) prefixes every message;
 * `paths` overrides a field's path (e.g. nodes_per_block given in the strategy section).
 * @throws ConfigError naming the field path.
 */
export function resolveStrategyOptions(
  options: StrategyOptions = {},
  source?: string,
  paths: Partial<Record<keyof StrategyOptions, string>> = {},
): ResolvedStrategyOptions {
  // An option given as undefined (a profile field left out) takes its default.
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  const o = { ...STRATEGY_DEFAULTS, ...given } as Required<StrategyOptions>;
  const path = (f: keyof StrategyOptions): string => paths[f] ?? `${OWNER[f]}.${f}`;
  const fail = (p: string, expected: string, got: unknown): never => {
    throw fieldError(p, expected, got, source, [`fix ${p} in the profile`]);
  };
  const num = (f: keyof StrategyOptions, rule: Parameters<typeof checkNumber>[2]): number => checkNumber(path(f), o[f], rule, source);
  // A single value is a fixed size; {min, max} lets the strategy choose.
  const bounds = <T>(f: keyof StrategyOptions, v: T | Bounds<T>): { min: T; max: T; paths: [string, string] } => {
    const p = path(f);
    if (v === null || typeof v !== 'object') return { min: v as T, max: v as T, paths: [p, p] };
    const b = v as Partial<Bounds<T>>;
    if (b.min === undefined || b.max === undefined) fail(p, 'a value or {min, max} with both set', v);
    return { min: b.min as T, max: b.max as T, paths: [`${p}.min`, `${p}.max`] };
  };
  const period = num('period', { exclusiveMin: true });
  const margin = num('walltime_margin', {});
  const r: ResolvedStrategyOptions = {
    periodMs: period * 1000,
    maxIdleMs: num('max_idletime', {}) * 1000,
    walltimeMarginMs: margin * 1000,
    workersPerNode: num('workers_per_node', { min: 1, integer: true }),
    maxPendingMs: num('max_pending_time', { exclusiveMin: true }) * 1000,
    initBlocks: num('init_blocks', { integer: true }),
    minBlocks: num('min_blocks', { integer: true }),
    maxBlocks: num('max_blocks', { min: 1, integer: true }),
    parallelism: num('parallelism', { max: 1 }),
    nodes: { min: 0, max: 0 }, walltimeS: { min: 0, max: 0 }, // filled below
  };
  if (r.minBlocks > r.maxBlocks) fail(path('min_blocks'), `≤ ${path('max_blocks')} (${r.maxBlocks})`, r.minBlocks);
  if (r.initBlocks > r.maxBlocks) fail(path('init_blocks'), `≤ ${path('max_blocks')} (${r.maxBlocks})`, r.initBlocks);
  const nb = bounds('nodes_per_block', o.nodes_per_block);
  r.nodes = {
    min: checkNumber(nb.paths[0], nb.min, { min: 1, integer: true }, source),
    max: checkNumber(nb.paths[1], nb.max, { min: 1, integer: true }, source),
  };
  if (r.nodes.min > r.nodes.max) fail(`${path('nodes_per_block')}.min`, `≤ its max (${r.nodes.max})`, r.nodes.min);
  const wb = bounds<unknown>('walltime', o.walltime);
  const wall = (p: string, v: unknown): number => {
    if (v === Infinity) return Infinity;
    try {
      return parseWalltime(p, v);
    } catch {
      return fail(p, 'a walltime: "HH:MM:SS", "D-HH:MM:SS" or whole seconds ≥ 1', v);
    }
  };
  r.walltimeS = { min: wall(wb.paths[0], wb.min), max: wall(wb.paths[1], wb.max) };
  if (r.walltimeS.min > r.walltimeS.max) fail(`${path('walltime')}.min`, `≤ its max (${r.walltimeS.max} s)`, r.walltimeS.min);
  // A block shorter than this would be drained the moment it starts, and replaced forever.
  if (r.walltimeS.min * 1000 <= r.walltimeMarginMs + r.periodMs) {
    fail(path('walltime'), `longer than strategy.walltime_margin (${margin} s) + strategy.period (${period} s)`, r.walltimeS.min === Infinity ? Infinity : wb.min);
  }
  return r;
}

/** Check the `strategy` section's shape (unknown fields); values are checked by resolveStrategyOptions. */
export function checkStrategySection(section: unknown): StrategySection {
  if (section === undefined) return {};
  if (section === null || typeof section !== 'object' || Array.isArray(section)) throw fieldError('strategy', 'an object', section);
  for (const key of Object.keys(section)) {
    if (!STRATEGY_SECTION_FIELDS.includes(key)) throw unknownField(`strategy.${key}`, STRATEGY_SECTION_FIELDS);
  }
  return section as StrategySection;
}

/**
 * The one resolution of block and strategy options: the provider's raw block fields, the strategy section,
 * and the engine's workers per node. nodes_per_block and walltime are owned by one section: setting them in
 * both is an error. The walltime default depends on the provider: none for `local`, DEFAULTS otherwise.
 */
export function resolveBlockOptions(
  provider: { readonly label: string; readonly blockOptions: Readonly<ProviderBlockOptions> },
  strategy: StrategySection,
  workersPerNode: number,
): ResolvedStrategyOptions {
  const raw = provider.blockOptions;
  const paths: Partial<Record<keyof StrategyOptions, string>> = {};
  for (const f of ['nodes_per_block', 'walltime'] as const) {
    if (strategy[f] !== undefined && raw[f] !== undefined) {
      throw new ConfigError(`strategy.${f} and provider.${f} are both set (to ${show(strategy[f])} and ${show(raw[f])}): set one`, [
        `a fixed ${f} goes on the provider; {min, max} bounds for the strategy to choose within go in the strategy section`,
      ]);
    }
    if (strategy[f] !== undefined) paths[f] = `strategy.${f}`;
  }
  const walltimeDefault = provider.label === 'local' ? DEFAULTS.provider.local_walltime : DEFAULTS.provider.walltime;
  return resolveStrategyOptions(
    {
      period: strategy.period,
      max_idletime: strategy.max_idletime,
      walltime_margin: strategy.walltime_margin,
      max_pending_time: strategy.max_pending_time,
      workers_per_node: workersPerNode,
      init_blocks: raw.init_blocks,
      min_blocks: raw.min_blocks,
      max_blocks: raw.max_blocks,
      parallelism: raw.parallelism,
      nodes_per_block: strategy.nodes_per_block ?? raw.nodes_per_block,
      walltime: strategy.walltime ?? raw.walltime ?? walltimeDefault,
    },
    undefined,
    paths,
  );
}
