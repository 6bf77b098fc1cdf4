/** Parsers of `funcx-service` option values; a bad value is a commander InvalidArgumentError naming the option. */
import { InvalidArgumentError } from 'commander';
import { parseDuration } from '../../service/durations.js';

export function intOption(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}`);
    return n;
  };
}

export function idleClose(value: string): number {
  if (value.trim() === '0') return 0;
  try {
    return parseDuration(value, '--forwarder-idle-close');
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

export function portRange(value: string): [number, number] {
  const m = /^(\d+)-(\d+)$/.exec(value);
  const range = m ? ([Number(m[1]), Number(m[2])] as [number, number]) : undefined;
  if (!range || range[0] < 1 || range[1] > 65535 || range[0] > range[1]) throw new InvalidArgumentError('expected LOW-HIGH, e.g. 55000-55100');
  return range;
}
