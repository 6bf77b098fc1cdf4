/**
 * Preload for engine-tail.ts's --gc-dir: records every garbage collection of this process (epoch ms start,
 * duration) and writes them to $FUNCX_GC_DIR/<pid>.json at exit, so the collections of the managers and
 * workers can be matched with slow round trips (NODE_OPTIONS may not carry --trace-gc).
 *   FUNCX_GC_DIR=/tmp/gc NODE_OPTIONS="--import ./dist/test/bench/gc-watch.js" node dist/test/bench/engine-tail.js --gc-dir /tmp/gc
 */
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.FUNCX_GC_DIR;
if (dir) {
  const gcs: Array<[number, number]> = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push([performance.timeOrigin + e.startTime, e.duration]);
  }).observe({ entryTypes: ['gc'] });
  process.on('exit', () => writeFileSync(join(dir, `${process.pid}.json`), JSON.stringify({ argv: process.argv.slice(1).join(' '), gcs })));
}
