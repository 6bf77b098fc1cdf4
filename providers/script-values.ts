/**
 * Checks for every value that reaches a submit script. Templates are compiled with `noEscape` (HTML escaping
 * means nothing in a shell script), so the only thing standing between a profile and the shell is this file:
 * names are matched against a strict pattern, numbers must be positive integers, environment values are
 * single-quoted, and the user's raw lines (`scheduler_options`, `worker_init`) are checked for what can
 * never be meant (NUL bytes, header lines for another scheduler).
 */
import { shellQuote } from '../src/shell.js';
import { ConfigError } from '../src/errors.js';

/** Characters allowed in scheduler names (partition, queue, account, qos, constraint, job name). */
export const NAME_PATTERN = /^[A-Za-z0-9_.:@+-]+$/;

/** Characters allowed in paths written into headers (#SBATCH --output=...), where quoting is not portable. */
export const PATH_PATTERN = /^[A-Za-z0-9_./:@+=,-]+$/;

/** Environment variable names the shell accepts in `export NAME=...`. */
export const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Job ids as schedulers print them (42, 1234.pbs01, 42_3, 12[].server). */
export const JOB_ID_PATTERN = /^[A-Za-z0-9_.\[\]-]+$/;

/** The schedulers whose formats this file knows. */
export type SchedulerKind = 'slurm' | 'pbspro' | 'torque' | 'cobalt' | 'lsf' | 'gridengine';

/** The header prefix each scheduler reads in a script; `scheduler_options` lines must start with it. */
export const DIRECTIVE_PREFIX: Readonly<Record<SchedulerKind, string>> = {
  slurm: '#SBATCH',
  pbspro: '#PBS',
  torque: '#PBS',
  cobalt: '#COBALT',
  lsf: '#BSUB',
  gridengine: '#$',
};

function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/** A scheduler name (partition, queue, account, ...). Refuses anything a shell could read as more than a word. */
export function checkName(field: string, value: unknown): string {
  if (typeof value !== 'string' || !NAME_PATTERN.test(value)) {
    throw new ConfigError(
      `${field}: ${show(value)} is not a valid name (allowed: letters, digits and _ . : @ + -)`,
      [`check the value of ${field} in the profile`],
    );
  }
  return value;
}

/** Like checkName, but undefined/null/'' mean "not set". */
export function checkOptionalName(field: string, value: unknown): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  return checkName(field, value);
}

/** A whole number >= 1. */
export function checkPositiveInt(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new ConfigError(`${field}: ${show(value)} must be a whole number of at least 1`);
  }
  return value;
}

/** A whole number >= 0. */
export function checkNonNegativeInt(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new ConfigError(`${field}: ${show(value)} must be a whole number of at least 0`);
  }
  return value;
}

/** A number > 0 (fractions allowed, e.g. a timeout in seconds or memory in GB). */
export function checkPositiveNumber(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new ConfigError(`${field}: ${show(value)} must be a number greater than 0`);
  }
  return value;
}

/** A path that goes into a header line unquoted: no spaces or shell characters. */
export function checkPath(field: string, value: unknown): string {
  if (typeof value !== 'string' || !PATH_PATTERN.test(value)) {
    throw new ConfigError(
      `${field}: ${show(value)} is not usable in a submit script (allowed: letters, digits and _ . / : @ + = , -)`,
      ['choose a folder without spaces or shell characters'],
    );
  }
  return value;
}

/** A job id that will be put on a scheduler command line. */
export function isSafeJobId(id: string): boolean {
  return JOB_ID_PATTERN.test(id);
}

/**
 * Walltime to seconds: "HH:MM:SS" (hours may exceed 24), "D-HH:MM:SS", or a number of seconds.
 * @throws ConfigError naming `field` on anything else.
 */
export function parseWalltime(field: string, value: unknown): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new ConfigError(`${field}: ${value} must be a whole number of seconds of at least 1`);
    }
    return value;
  }
  const m = typeof value === 'string' ? /^(?:(\d+)-)?(\d+):([0-5]\d):([0-5]\d)$/.exec(value) : null;
  if (!m) {
    throw new ConfigError(`${field}: ${show(value)} is not a walltime (use "HH:MM:SS" or a number of seconds)`);
  }
  const seconds = Number(m[1] ?? 0) * 86400 + Number(m[2]) * 3600 + Number(m[3]) * 60 + Number(m[4]);
  if (seconds < 1) throw new ConfigError(`${field}: ${show(value)} must be longer than 0 seconds`);
  return seconds;
}

const pad2 = (n: number): string => String(n).padStart(2, '0');

/** Seconds as HH:MM:SS (Slurm --time, PBS walltime, SGE h_rt); hours may exceed 99. */
export function formatHms(seconds: number): string {
  const s = Math.ceil(seconds);
  return `${pad2(Math.floor(s / 3600))}:${pad2(Math.floor((s % 3600) / 60))}:${pad2(s % 60)}`;
}

/** Whole minutes, rounded up so a job never gets less than asked (Cobalt -t). */
export function formatMinutes(seconds: number): string {
  return String(Math.max(1, Math.ceil(seconds / 60)));
}

/** LSF -W [HH:]MM, minutes rounded up. */
export function formatLsfWalltime(seconds: number): string {
  const minutes = Math.max(1, Math.ceil(seconds / 60));
  return minutes < 60 ? String(minutes) : `${pad2(Math.floor(minutes / 60))}:${pad2(minutes % 60)}`;
}

/** The walltime in the format `kind`'s scheduler reads. */
export function formatWalltime(kind: SchedulerKind, seconds: number): string {
  switch (kind) {
    case 'slurm':
    case 'pbspro':
    case 'torque':
    case 'gridengine':
      return formatHms(seconds);
    case 'lsf':
      return formatLsfWalltime(seconds);
    case 'cobalt':
      return formatMinutes(seconds);
  }
}

export { shellQuote };

/** An environment variable name for `export NAME=...`. */
export function checkEnvName(field: string, name: string): string {
  if (!ENV_NAME_PATTERN.test(name)) {
    throw new ConfigError(`${field}: ${show(name)} is not a valid environment variable name`);
  }
  return name;
}

/** `export NAME=value` lines, names checked and values quoted, in a stable order. */
export function envExports(field: string, env: Record<string, string> | undefined): string[] {
  if (!env) return [];
  return Object.keys(env)
    .sort()
    .map((name) => {
      const value = env[name];
      if (typeof value !== 'string') throw new ConfigError(`${field}.${name}: must be a string`);
      return `export ${checkEnvName(field, name)}=${shellQuote(value)}`;
    });
}

function toLines(field: string, value: unknown): string[] {
  if (value === undefined || value === null) return [];
  const parts = Array.isArray(value) ? value : [value];
  const lines: string[] = [];
  for (const part of parts) {
    if (typeof part !== 'string') throw new ConfigError(`${field}: expected a string or a list of strings`);
    if (part.includes('\0')) throw new ConfigError(`${field}: contains a NUL byte`);
    lines.push(...part.split(/\r?\n/));
  }
  return lines;
}

/**
 * `worker_init`: the user's own shell lines (e.g. `module load nodejs`), kept raw on purpose, as in Parsl.
 * Only NUL bytes are refused; blank lines at the ends are dropped.
 */
export function checkWorkerInit(field: string, value: unknown): string[] {
  const lines = toLines(field, value);
  while (lines.length && lines[0]!.trim() === '') lines.shift();
  while (lines.length && lines[lines.length - 1]!.trim() === '') lines.pop();
  return lines;
}

/**
 * `scheduler_options`: raw header lines, kept raw on purpose, but every non-blank line must be a directive for
 * this scheduler (`#SBATCH ...`); anything else would be a shell line hidden among the headers.
 */
export function checkSchedulerOptions(field: string, value: unknown, kind: SchedulerKind): string[] {
  const prefix = DIRECTIVE_PREFIX[kind];
  const lines = toLines(field, value)
    .map((line) => line.trim())
    .filter((line) => line !== '');
  for (const line of lines) {
    if (!line.startsWith(prefix + ' ') && !line.startsWith(prefix + '\t')) {
      throw new ConfigError(`${field}: line ${show(line)} does not start with "${prefix} "`, [
        `put scheduler directives as "${prefix} ..." lines, and shell commands in worker_init`,
      ]);
    }
  }
  return lines;
}
