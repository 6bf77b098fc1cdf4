/**
 * Run-queue delay of chosen threads, from Linux's /proc/<pid>/task/<tid>/schedstat (second field: ns the
 * thread spent runnable but waiting for a CPU). Read before and after one round trip, the difference says how
 * much of that round trip the pipeline's threads spent waiting for the machine rather than working: the
 * scheduler's wake-up latency, which no code in the pipeline can shorten.
 *
 * A diagnosis aid for engine-tail.ts (issue 14, item 4); Linux only.
 */
import { closeSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';

export interface Watched {
  /** A label for the report, e.g. "manager main". */
  label: string;
  fd: number;
}

const buf = Buffer.alloc(128);

/** [ns on a CPU, ns runnable but waiting for one] of one thread so far. */
function schedstat(fd: number): [number, number] {
  const n = readSync(fd, buf, 0, buf.length, 0);
  const fields = buf.toString('latin1', 0, n).split(' ');
  return [Number(fields[0]), Number(fields[1])];
}

/** Threads of process `pid`: its main thread and its ZeroMQ I/O threads (the hand-offs of a round trip). */
export function hopThreads(name: string, pid: number): Watched[] {
  const out: Watched[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'latin1').trim();
    const role = Number(tid) === pid ? 'main' : comm.startsWith('ZMQbg/IO') ? 'zmq io' : null;
    if (role) out.push({ label: `${name} ${role}`, fd: openSync(`/proc/${pid}/task/${tid}/schedstat`, 'r') });
  }
  return out;
}

/** The pids of `pid`'s child processes. */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'latin1').trim();
    if (text) for (const c of text.split(' ')) out.push(Number(c));
  }
  return out;
}

export class RunDelay {
  constructor(readonly threads: Watched[]) {}

  /** Each thread's run-queue delay so far (ns), in `threads` order, then each one's time on a CPU (ns). */
  sample(): number[] {
    const stats = this.threads.map((t) => schedstat(t.fd));
    return [...stats.map((s) => s[1]), ...stats.map((s) => s[0])];
  }

  close(): void {
    for (const t of this.threads) closeSync(t.fd);
  }
}
