/**
 * The one message style of every config check: `<field path> must be <what> (got <value>)`. The loader
 * prefixes the file, so users read `config.ts: provider.max_blocks must be ≥ 1 (got 0)`.
 */
import { ConfigError } from '../errors.js';

/** A value as the message shows it: JSON where it can, else its type. */
export function show(value: unknown): string {
  if (value === Infinity) return 'Infinity';
  if (typeof value === 'function') return 'a function';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return typeof value;
  }
}

/** `path must be expected (got value)`, with `source: ` in front when given. */
export function fieldError(path: string, expected: string, got: unknown, source?: string, suggestions: string[] = []): ConfigError {
  return new ConfigError(`${source ? `${source}: ` : ''}${path} must be ${expected} (got ${show(got)})`, suggestions);
}

/** An unknown field: `path is not a known field (known: a, b, c)`. */
export function unknownField(path: string, known: Iterable<string>, source?: string): ConfigError {
  return new ConfigError(`${source ? `${source}: ` : ''}${path} is not a known field (known: ${[...known].join(', ')})`);
}

export interface NumberRule {
  /** Lowest allowed value (inclusive unless exclusiveMin). @default 0 */
  min?: number;
  exclusiveMin?: boolean;
  max?: number;
  integer?: boolean;
}

/** Check a number against `rule`; the error says the rule the way the user must fix it. */
export function checkNumber(path: string, value: unknown, rule: NumberRule = {}, source?: string): number {
  const { min = 0, exclusiveMin = false, max, integer = false } = rule;
  const ok =
    typeof value === 'number' && Number.isFinite(value) && (!integer || Number.isInteger(value)) &&
    (exclusiveMin ? value > min : value >= min) && (max === undefined || value <= max);
  if (!ok) {
    const kind = integer ? 'a whole number' : 'a number';
    const range = max !== undefined ? `${exclusiveMin ? '>' : '≥'} ${min} and ≤ ${max}` : `${exclusiveMin ? '>' : '≥'} ${min}`;
    throw fieldError(path, `${kind} ${range}`, value, source);
  }
  return value as number;
}
