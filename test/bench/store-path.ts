/**
 * The store's share of a batch's CPU (issue 14), without the rest of the path: a batch of 10,000 tasks
 * inserted, taken in deliveries of 1,000, finished in result batches of 250 (starts riding along), then read
 * back as the results route reads them (summaries, then records). Median of several rounds, µs per task.
 *
 *   node dist/test/bench/store-path.js [--rounds 7] [--database postgres://…]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../src/service/store/index.js';
import { newTaskId } from '../../src/service/task-ids.js';

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const rounds = Number(opt('--rounds') ?? 7);
const N = 10_000;
const dir = mkdtempSync(join(tmpdir(), 'funcx-store-path-'));
const store = await openStore(opt('--database') ?? join(dir, 'service.db'));
try {
  const { user } = await store.createUser('bench');
  const endpoint = await store.saveEndpoint({ id: crypto.randomUUID(), name: 'ep', owner: user.id, publicKey: 'k'.repeat(40), group: null });
  const fn = await store.createFunction({ owner: user.id, name: 'noop', source: '() => null', group: null });
  const times: Record<string, number[]> = { insert: [], take: [], store: [], summaries: [], records: [] };
  const time = async (k: string, f: () => Promise<unknown>) => {
    const s = performance.now();
    await f();
    times[k].push(((performance.now() - s) * 1000) / N);
  };
  const result = Buffer.from([0x93, 0xc0, 0xc0, 0xc0]);
  for (let r = 0; r < rounds; r++) {
    const tasks = Array.from({ length: N }, () => ({ id: newTaskId(), endpoint: endpoint.id, function: fn.id, owner: user.id, payload: Buffer.alloc(0) }));
    const ids = tasks.map((t) => t.id);
    await time('insert', () => store.insertTasks(tasks, 'user:bench', 1_000_000));
    await time('take', async () => {
      while ((await store.takeQueued(endpoint.id, 1000)).length > 0);
    });
    await time('store', async () => {
      for (let i = 0; i < N; i += 250) {
        const slice = ids.slice(i, i + 250);
        await store.storeResults(endpoint.id, slice.map((id) => ({ id, failed: false, payload: result })), slice);
      }
    });
    await time('summaries', async () => {
      for (let i = 0; i < N; i += 1000) await store.taskSummaries(ids.slice(i, i + 1000));
    });
    await time('records', async () => {
      for (let i = 0; i < N; i += 1000) await store.tasks(ids.slice(i, i + 1000));
    });
  }
  const med = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
  const out = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, Number(med(v).toFixed(2))]));
  console.log(`${store.kind} µs/task (median of ${rounds}):`, JSON.stringify(out), 'sum', Object.values(out).reduce((a, b) => a + b, 0).toFixed(2));
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
