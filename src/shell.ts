/** Shell quoting shared by job scripts (providers) and launch lines (launchers). */
import { ConfigError } from './errors.js';

/** Quote a value as one POSIX shell word: `'...'` with each `'` written as `'"'"'`. Refuses NUL bytes. */
export function shellQuote(value: string): string {
  if (value.includes('\0')) throw new ConfigError('a value for a job script contains a NUL byte');
  if (value !== '' && /^[A-Za-z0-9_./:@%+=,-]+$/.test(value)) return value;
  return `'${value.replaceAll("'", `'"'"'`)}'`;
}
