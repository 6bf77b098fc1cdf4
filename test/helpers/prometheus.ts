/**
 * Prometheus text format, parsed by an independent parser (parse-prometheus-text-format), so the tests check
 * what a real scraper would read rather than our own output by our own rules.
 */
import { createRequire } from 'node:module';

export interface PromSample { labels?: Record<string, string>; value?: string; buckets?: Record<string, string>; count?: string; sum?: string }
export interface PromFamily { name: string; help: string; type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED'; metrics: PromSample[] }

const parse = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => PromFamily[];

export function parsePrometheus(text: string): Map<string, PromFamily> {
  return new Map(parse(text).map((f) => [f.name, f]));
}

/** The value of the one sample of `name` whose labels include `labels` (undefined when absent). */
export function promValue(families: Map<string, PromFamily>, name: string, labels: Record<string, string> = {}): number | undefined {
  const family = families.get(name);
  const sample = family?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  if (!sample) return undefined;
  return Number(sample.value ?? sample.count);
}

/**
 * The `_count` of one labelled series of a histogram. The parser merges a histogram's labelled series into
 * one (it keeps only the buckets), so this one figure is read from the text line itself.
 */
export function histogramCount(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${name}_count\\{(.*)\\} (\\S+)$`).exec(line);
    if (!m) continue;
    const got = Object.fromEntries([...m[1].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[2]);
  }
  return undefined;
}

/** Fetch and parse a /metrics page (the text is kept for histogramCount). */
export async function scrape(url: string, headers: Record<string, string> = {}): Promise<Map<string, PromFamily> & { text: string }> {
  const r = await fetch(url, { headers });
  if (!r.ok) throw new Error(`GET ${url}: ${r.status} ${await r.text()}`);
  const text = await r.text();
  return Object.assign(parsePrometheus(text), { text });
}
