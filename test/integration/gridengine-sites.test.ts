/**
 * Real Grid Engine: `qstat -xml` tells held from pending, a job in error (Eqw) is reported failed with its
 * error reason and deleted at once (it could otherwise start later, untracked), and `qacct` says how a job
 * that left the queue ended.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureGridEngine } from './cluster-setup.js';
import { GridEngineProvider } from '../../providers/gridengine.js';
import { LocalChannel } from '../../providers/channels/local.js';
import { until, untilValue } from '../helpers/wait.js';

before(async () => {
  await ensureGridEngine();
});

const qsub = (...args: string[]): string => execFileSync('qsub', ['-terse', ...args], { encoding: 'utf8' }).trim();
const known = (id: string): boolean => {
  try {
    execFileSync('qstat', ['-j', id], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

test('held is held, an Eqw job is failed with its reason and deleted, qacct tells the end of a finished job', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'funcx-sge-sites-'));
  const script = join(dir, 'job.sh');
  writeFileSync(script, '#!/bin/sh\nexit 3\n', { mode: 0o755 });
  const p = new GridEngineProvider({ channel: new LocalChannel({ script_dir: dir }), logger: () => {} });
  const held = qsub('-h', '-o', '/dev/null', '-j', 'y', script);
  const broken = qsub('-o', '/nonexistent/funcx/out', '-e', '/nonexistent/funcx/err', script);
  const exit3 = qsub('-o', '/dev/null', '-j', 'y', script);
  try {
    const first = await untilValue('the broken job in error', async () => {
      const got = await p.status([held, broken]);
      return got.get(broken)?.state === 'failed' ? got : undefined;
    }, { timeoutMs: 60_000, everyMs: 500 });
    assert.equal(first!.get(held)?.state, 'held');
    assert.equal(first!.get(held)?.raw, 'hqw');
    assert.match(first!.get(broken)!.detail!, /nonexistent\/funcx/);
    await until('the job in error is deleted', () => !known(broken), { timeoutMs: 30_000 });
    // Grid Engine writes its accounting file every flush_time (1 s here, start-gridengine.sh): the end arrives after that.
    const done = await untilValue('qacct knows the job that exited 3', async () => {
      const st = (await p.status([exit3])).get(exit3);
      return st?.state === 'failed' ? st : undefined;
    }, { timeoutMs: 90_000, everyMs: 1000 });
    assert.equal(done!.exitCode, 3);
  } finally {
    try { execFileSync('qdel', [held, broken, exit3], { stdio: 'ignore' }); } catch { /* gone */ }
  }
});
