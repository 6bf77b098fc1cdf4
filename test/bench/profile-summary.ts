/**
 * Summarise a V8 .cpuprofile (node --cpu-prof): self time by function and by file, the top entries.
 *   node dist/test/bench/profile-summary.js FILE.cpuprofile [--top 30]
 */
import { readFileSync } from 'node:fs';

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount: number; children?: number[] }
interface Profile { nodes: Node[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }

const [file, ...rest] = process.argv.slice(2);
const top = Number(rest[rest.indexOf('--top') + 1]) || 30;
const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const self = new Map<number, number>();
for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0));
const total = [...self.values()].reduce((a, b) => a + b, 0);
const short = (url: string): string => url.replace(/^file:\/\/.*?\/(node_modules|dist)\//, '$1/').replace(/^node:/, 'node:');
const fn = new Map<string, number>();
const files = new Map<string, number>();
for (const [id, us] of self) {
  const n = byId.get(id)!;
  const where = short(n.callFrame.url) || '(native)';
  const key = `${n.callFrame.functionName || '(anonymous)'}  ${where}:${n.callFrame.lineNumber + 1}`;
  fn.set(key, (fn.get(key) ?? 0) + us);
  const group = where.startsWith('node_modules/') ? where.split('/').slice(0, where.split('/')[1].startsWith('@') ? 3 : 2).join('/') : where;
  files.set(group, (files.get(group) ?? 0) + us);
}
const pct = (us: number): string => `${((100 * us) / total).toFixed(1).padStart(5)}%`;
console.log(`total sampled ${(total / 1e6).toFixed(2)} s`);
console.log('--- by file/package (self) ---');
for (const [k, v] of [...files].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(v)}  ${k}`);
console.log('--- by function (self) ---');
for (const [k, v] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(v)}  ${k}`);

// Inclusive time (self + callees) by function, each function counted once per stack (recursion), of the
// busy time: where a call path's CPU goes, native calls (SQLite, sockets) included in their JS callers.
if (rest.includes('--inclusive')) {
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const keyOf = (n: Node): string => `${n.callFrame.functionName || '(anonymous)'}  ${short(n.callFrame.url) || '(native)'}:${n.callFrame.lineNumber + 1}`;
  const inclusive = new Map<string, number>();
  let busy = 0;
  for (const [id, us] of self) {
    const leaf = byId.get(id)!;
    if (['(idle)', '(program)'].includes(leaf.callFrame.functionName)) continue;
    busy += us;
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = keyOf(byId.get(cur)!);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + us);
    }
  }
  console.log(`--- by function (inclusive, % of ${(busy / 1e6).toFixed(2)} s busy) ---`);
  for (const [k, v] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${((100 * v) / busy).toFixed(1).padStart(5)}%  ${k}`);
}
