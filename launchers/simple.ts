/**
 * The simple launcher (the command as it is), plus the few rules every launcher shares: option checks,
 * context checks and single-quote escaping. They live here because every launcher already builds on the
 * simplest one, and launchers may not import from providers/ (imports run providers → launchers).
 */
import { ConfigError } from '../src/errors.js';
import type { LaunchContext, Launcher } from './launcher.js';

/** Options every launcher accepts. */
export interface LauncherOptions {
  /**
   * Raw extra flags put on the launcher's command line, e.g. `"--cpu-bind=none"` for srun. Trusted profile
   * text, but one line only: NUL bytes and newlines are refused (they could start a second command).
   * @default ""
   */
  overrides?: string;
  /** Print what the launcher starts to the job's stderr (the block's output file). @default false */
  debug?: boolean;
}

/** Quote a value as one shell word: `'...'` with each `'` written as `'"'"'`. Refuses NUL bytes. */
export function shellQuote(value: string): string {
  if (value.includes('\0')) throw new ConfigError('a value for the launch line contains a NUL byte');
  if (value !== '' && /^[A-Za-z0-9_./:@%+=,-]+$/.test(value)) return value;
  return `'${value.replaceAll("'", `'"'"'`)}'`;
}

/** Check a one-line raw option (overrides, prepend): a string without NUL bytes or line breaks, trimmed. */
export function checkRawFlags(launcher: string, field: string, value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value !== 'string') {
    throw new ConfigError(`${launcher} launcher: ${field} must be a string, got ${typeof value}`);
  }
  if (value.includes('\0')) throw new ConfigError(`${launcher} launcher: ${field} contains a NUL byte`);
  if (/[\r\n]/.test(value)) {
    throw new ConfigError(`${launcher} launcher: ${field} must be one line (it contains a line break)`, [
      `put the extra flags of ${field} on one line`,
    ]);
  }
  return value.trim();
}

/** The numbers of a launch context, checked: they are written into the job script unquoted. */
export interface CheckedContext {
  nodes: number;
  tasksPerNode: number;
  /** nodes × tasksPerNode: copies of the command in the block. */
  total: number;
  coresPerNode?: number;
  gpusPerNode?: number;
}

function positiveInt(launcher: string, field: string, value: unknown, allowZero = false): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < (allowZero ? 0 : 1)) {
    throw new ConfigError(
      `${launcher} launcher: ${field} must be a whole number of at least ${allowZero ? 0 : 1}, got ${String(value)}`,
    );
  }
  return value;
}

/** Check the context's numbers; names the launcher and field when one is wrong. */
export function checkContext(launcher: string, ctx: LaunchContext): CheckedContext {
  const nodes = positiveInt(launcher, 'nodes_per_block', ctx.nodesPerBlock);
  const tasksPerNode = positiveInt(launcher, 'tasks_per_node', ctx.tasksPerNode);
  const out: CheckedContext = { nodes, tasksPerNode, total: nodes * tasksPerNode };
  if (ctx.coresPerNode !== undefined) out.coresPerNode = positiveInt(launcher, 'cores_per_node', ctx.coresPerNode);
  if (ctx.gpusPerNode !== undefined) out.gpusPerNode = positiveInt(launcher, 'gpus_per_node', ctx.gpusPerNode, true);
  return out;
}

/** The launch line, preceded by a note on stderr when debugging (so the block's output shows what ran). */
export function withDebug(debug: boolean, launcher: string, c: CheckedContext, line: string): string {
  if (!debug) return line;
  const note = `funcx launcher ${launcher}: ${c.nodes} node(s) x ${c.tasksPerNode} task(s) per node`;
  return `echo ${shellQuote(note)} >&2\n${line}`;
}

/** Join command-line pieces, leaving out empty ones (an unset overrides). */
export function joinWords(...words: string[]): string {
  return words.filter((w) => w !== '').join(' ');
}

/**
 * Runs the command as it is, once, where the job script runs (the block's first node). For local blocks and
 * for commands that start their own processes on every node.
 */
export class SimpleLauncher implements Launcher {
  readonly name = 'simple';
  private readonly debug: boolean;

  constructor(options: LauncherOptions = {}) {
    // No flags to add here, but a bad value is still a profile mistake worth naming.
    checkRawFlags(this.name, 'overrides', options.overrides);
    this.debug = options.debug ?? false;
  }

  wrap(command: string, ctx: LaunchContext): string {
    return withDebug(this.debug, this.name, checkContext(this.name, ctx), command);
  }
}
