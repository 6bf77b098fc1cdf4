/**
 * The daemon's lease: live vs stale (dead pid, zombie-free check, old refresh, another host), and exclusive
 * acquisition even when several processes race for it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
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
