/**
 * The daemon's lease: live vs stale (dead pid, zombie-free check, old refresh, another host), and exclusive
 * acquisition even when several processes race for it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { acquireLease, leaseIsLive, readLease, type Lease } from '../../src/endpoint/daemon/lease.js';

const now = (): string => new Date().toISOString();
const lease = (pid: number, host = hostname(), refreshedAt = now()): Lease => ({ pid, host, startedAt: refreshedAt, refreshedAt, port: 0 });

test('live: fresh and its pid exists here; stale: dead pid, old refresh; another host: freshness decides', () => {
  assert.equal(leaseIsLive(lease(process.pid)), true);
  assert.equal(leaseIsLive(lease(2 ** 22 + 12345)), false, 'a pid that does not exist');
  assert.equal(leaseIsLive(lease(process.pid, hostname(), new Date(Date.now() - 60_000).toISOString())), false, 'not refreshed for a minute');
  assert.equal(leaseIsLive(lease(2 ** 22 + 12345, 'login2.example.org')), true, 'another host: cannot see its pid');
  assert.equal(leaseIsLive(lease(1, 'login2.example.org', new Date(Date.now() - 60_000).toISOString())), false);
});

test('acquire: takes a free lease, refuses a live one naming the holder, replaces a stale or garbled one', () => {
  const dir = mkdtempSync(join(tmpdir(), 'funcx-lease-'));
  const file = join(dir, 'daemon.pid');
  assert.deepEqual(acquireLease(file, lease(process.pid)), { ok: true });
  assert.equal(readLease(file)?.pid, process.pid);
  const refused = acquireLease(file, lease(process.pid + 1));
  assert.equal(refused.ok, false);
  assert.equal(!refused.ok && refused.holder.pid, process.pid);
  writeFileSync(file, JSON.stringify(lease(2 ** 22 + 12345)));
  assert.deepEqual(acquireLease(file, lease(process.pid)), { ok: true }, 'a dead holder does not block');
  writeFileSync(file, 'not a lease');
  assert.deepEqual(acquireLease(file, lease(process.pid)), { ok: true }, 'garbage is not proof of a live daemon');
});

test('six processes racing for one lease: exactly one gets it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'funcx-lease-race-'));
  const file = join(dir, 'daemon.pid');
  const leaseModule = fileURLToPath(new URL('../../src/endpoint/daemon/lease.js', import.meta.url));
  const script = `
    const { acquireLease } = await import(${JSON.stringify(leaseModule)});
    const t = new Date().toISOString();
    // Start together: wait for the same wall-clock moment.
    while (Date.now() < ${Date.now() + 1500});
    const r = acquireLease(${JSON.stringify(file)}, { pid: process.pid, host: ${JSON.stringify(hostname())}, startedAt: t, refreshedAt: t, port: 0 });
    console.log(r.ok ? 'won' : 'lost');
    setTimeout(() => {}, 5000); // stay alive so the winner's lease stays live while the others look
  `;
  const outcomes = await Promise.all(
    Array.from({ length: 6 }, () => new Promise<string>((resolve) => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d));
      child.on('close', () => resolve(out.trim()));
    })),
  );
  assert.equal(outcomes.filter((o) => o === 'won').length, 1, outcomes.join(','));
  assert.equal(outcomes.filter((o) => o === 'lost').length, 5);
  assert.ok(JSON.parse(readFileSync(file, 'utf8')).pid > 0);
});

test('stale-lease takeover is atomic: 4 processes racing over 1,000 stale leases, exactly one winner for each', async () => {
  const TRIALS = 1000;
  const RACERS = 4;
  const root = mkdtempSync(join(tmpdir(), 'funcx-lease-stale-race-'));
  const stale = JSON.stringify(lease(2 ** 22 + 12345, hostname(), new Date(Date.now() - 60_000).toISOString()));
  for (let i = 0; i < TRIALS; i++) {
    mkdirSync(join(root, String(i)));
    writeFileSync(join(root, String(i), 'daemon.pid'), stale);
  }
  const leaseModule = fileURLToPath(new URL('../../src/endpoint/daemon/lease.js', import.meta.url));
  const script = `
    const { acquireLease } = await import(${JSON.stringify(leaseModule)});
    const t = new Date().toISOString();
    const me = { pid: process.pid, host: ${JSON.stringify(hostname())}, startedAt: t, refreshedAt: t, port: 0 };
    while (Date.now() < ${Date.now() + 2000});
    const won = [];
    for (let i = 0; i < ${TRIALS}; i++) if (acquireLease(${JSON.stringify(root)} + '/' + i + '/daemon.pid', me).ok) won.push(i);
    console.log(JSON.stringify(won));
    // Stay alive until told: our leases must stay live while the others still look at them.
    process.stdin.on('data', () => process.exit(0));
  `;
  const children = Array.from({ length: RACERS }, () => spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] }));
  const outcomes = await Promise.all(children.map((child) => new Promise<number[]>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d;
      if (out.endsWith('\n')) resolve(JSON.parse(out) as number[]);
    });
    // A racer that crashed (its error is on stderr) fails the test instead of leaving it waiting.
    child.on('exit', (code, signal) => reject(new Error(`a racer exited (${signal ?? code}) before reporting its leases`)));
  })).map((p, i) => p.catch((err: Error) => {
    for (const c of children) c.kill();
    throw Object.assign(err, { racer: i });
  })));
  for (const child of children) child.stdin.end('done\n');
  const winners = new Map<number, number>();
  for (const won of outcomes) for (const i of won) winners.set(i, (winners.get(i) ?? 0) + 1);
  const doubles = [...winners].filter(([, n]) => n > 1).map(([i]) => i);
  const none = Array.from({ length: TRIALS }, (_, i) => i).filter((i) => !winners.has(i));
  assert.deepEqual(doubles, [], `two daemons both won these stale leases: ${doubles.slice(0, 20).join(', ')}`);
  assert.deepEqual(none, [], 'every stale lease is taken by someone');
  assert.ok(outcomes.filter((w) => w.length > 0).length >= 2, `the racers really raced: ${outcomes.map((w) => w.length).join('/')}`);
});
