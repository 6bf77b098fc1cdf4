/**
 * The daemon's pid file is a lease: `<name>/daemon.pid` holds `{pid, host, startedAt, refreshedAt, port}`
 * and the daemon rewrites it every LEASE_REFRESH_MS. A lease is live while it was refreshed within
 * LEASE_STALE_MS and, when it names this host, its process still exists. So a pid file left by a crash or a
 * reboot reads as stale (funcX's `list` said Active after a reboot, #327), and a second login node sharing
 * the home sees the first one's lease as live and refuses a duplicate daemon (#581).
 */
import { closeSync, existsSync, fstatSync, linkSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { writeJsonAtomic } from './home.js';

/** How often the daemon rewrites its lease. @default 5000 */
export const LEASE_REFRESH_MS = 5000;
/** A lease not refreshed for this long is stale, whoever holds it. @default 15000 */
export const LEASE_STALE_MS = 15000;

/** What `daemon.pid` holds. Times are ISO 8601 strings (readable with `cat`). */
export interface Lease {
  /** The daemon's process id (on `host`). */
  pid: number;
  /** `os.hostname()` of the machine the daemon runs on. */
  host: string;
  /** When the daemon started. */
  startedAt: string;
  /** Last time the daemon rewrote the lease. */
  refreshedAt: string;
  /** The daemon's control port on `host` (0 when it has none). */
  port: number;
}

/**
 * Read a lease file. Missing file, or a file that is not a lease (hand-edited, another program's), → null:
 * such a file cannot prove a daemon is alive. Writes are atomic, so a half-written file never shows.
 */
export function readLease(file: string): Lease | null {
  if (!existsSync(file)) return null;
  try {
    return parseLease(readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

function parseLease(text: string): Lease | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  const l = value as Partial<Lease> | null;
  if (
    l === null ||
    typeof l !== 'object' ||
    !Number.isInteger(l.pid) ||
    (l.pid as number) <= 0 ||
    typeof l.host !== 'string' ||
    typeof l.startedAt !== 'string' ||
    typeof l.refreshedAt !== 'string' ||
    !Number.isFinite(Date.parse(l.refreshedAt)) ||
    !Number.isInteger(l.port)
  ) {
    return null;
  }
  return { pid: l.pid!, host: l.host, startedAt: l.startedAt, refreshedAt: l.refreshedAt, port: l.port! };
}

/** Write a lease through a temporary file and a rename (readers never see half a file), mode 0644. */
export function writeLease(file: string, lease: Lease): void {
  writeJsonAtomic(file, lease, 0o644);
}

/**
 * Take the lease, or return the live lease that holds it. Exclusive even for two login nodes starting at
 * the same moment on a shared home: the file is created with link(2), which fails if it exists (atomic on
 * NFS too). A stale lease is taken over with `removeStaleLease`, which lets exactly one of several racers
 * remove that very file; then the take is tried again.
 */
export function acquireLease(file: string, lease: Lease): { ok: true } | { ok: false; holder: Lease } {
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.new`;
  writeFileSync(tmp, JSON.stringify(lease, null, 2) + '\n', { mode: 0o644 });
  // Another racer may be in the middle of a takeover (it holds the claim): give it time to finish, briefly.
  const deadline = Date.now() + TAKEOVER_WAIT_MS;
  try {
    for (;;) {
      try {
        linkSync(tmp, file);
        return { ok: true };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const seen = readLeaseFile(file);
      if (seen === null) continue; // gone meanwhile: try the link again
      if (seen.lease && leaseIsLive(seen.lease) && seen.lease.pid !== lease.pid) return { ok: false, holder: seen.lease };
      // Stale (crash, reboot) or unreadable: not proof of a live daemon.
      if (removeStaleLease(file, seen)) continue;
      if (Date.now() > deadline) break;
      sleepSync(1);
    }
  } finally {
    rmSync(tmp, { force: true });
  }
  const holder = readLease(file);
  if (holder) return { ok: false, holder };
  throw new Error(`${file}: could not take the lease within ${TAKEOVER_WAIT_MS} ms (it keeps changing)`);
}

/** How long acquireLease waits for another racer's takeover of a stale lease to finish. */
const TAKEOVER_WAIT_MS = 5000;

/** Block this thread for `ms` (only while another process finishes a takeover: never on a hot path). */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** A lease file as seen through one open file: its identity (device, inode, change time) and its lease. */
export interface SeenLease {
  id: string;
  lease: Lease | null;
}

/** Read the lease and the identity of the very file it came from (one descriptor), or null when missing. */
export function readLeaseFile(file: string): SeenLease | null {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    const st = fstatSync(fd, { bigint: true });
    return { id: `${st.dev}-${st.ino}-${st.ctimeNs}`, lease: parseLease(readFileSync(fd, 'utf8')) };
  } finally {
    closeSync(fd);
  }
}

/**
 * Remove the lease file `seen` (judged stale by the caller) if it is still that very file. Racers that all
 * judged it stale compete for a claim named after it, created with link(2): one wins, checks the path still
 * names the same file (nobody else may remove it while the claim exists), and removes it. The others do
 * nothing. Removing by path after judging, as before, let a racer remove the lease another had just taken.
 * Returns true when this call removed it.
 */
export function removeStaleLease(file: string, seen: SeenLease): boolean {
  const claim = `${file}.takeover-${seen.id}`;
  const mine = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.claim`;
  writeFileSync(mine, `${process.pid}\n`, { mode: 0o644 });
  try {
    linkSync(mine, claim);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false; // another racer holds the claim
    throw err;
  } finally {
    rmSync(mine, { force: true });
  }
  try {
    const now = readLeaseFile(file);
    if (now === null || now.id !== seen.id) return false; // already taken over: not ours to remove
    rmSync(file, { force: true });
    return true;
  } finally {
    rmSync(claim, { force: true });
  }
}

/**
 * True while the lease is held: refreshed within LEASE_STALE_MS of `now` and, on this host, its process
 * exists. On another host we cannot see the process, so freshness alone decides.
 */
export function leaseIsLive(lease: Lease, now: number = Date.now()): boolean {
  const refreshed = Date.parse(lease.refreshedAt);
  if (!Number.isFinite(refreshed) || now - refreshed > LEASE_STALE_MS) return false;
  // A clock far ahead of ours (another host) is not a reason to call it dead; freshness is what we can judge.
  if (lease.host !== hostname()) return true;
  return processExists(lease.pid);
}

/** "pid 123 on host login1": for messages that name who holds a lease. */
export function describeLease(lease: Lease): string {
  return `pid ${lease.pid} on host ${lease.host}`;
}

/**
 * Signal 0 tests existence; EPERM means it exists but belongs to someone else. A zombie (killed, not yet
 * reaped: containers whose init never reaps) answers signal 0 too, so on Linux its state is read as well.
 */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) S ..." – comm may hold spaces and parentheses, so read after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc (not Linux): trust signal 0
  }
}
