/**
 * Durations as people write them: `90s`, `15m`, `12h`, `30d`, `2w` (a whole number and a unit).
 */
const UNIT_MS: Readonly<Record<string, number>> = Object.freeze({ s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 });

/** Milliseconds of `text`, or a TypeError naming what is expected. */
export function parseDuration(text: string, what = 'duration'): number {
  const m = /^\s*(\d{1,9})\s*([smhdw])\s*$/.exec(text);
  if (!m || Number(m[1]) === 0) throw new TypeError(`${what} must be a whole number > 0 and a unit s, m, h, d or w, e.g. 30d (got "${text}")`);
  return Number(m[1]) * UNIT_MS[m[2]];
}
