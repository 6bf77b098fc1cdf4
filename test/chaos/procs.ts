/**
 * Finding and breaking the processes of one chaos case, from /proc (Linux). Only processes that belong to the
 * case's own FUNCX_HOME are ever touched: a manager is ours when its command line names a key file inside
 * that home (`--keys HOME/NAME/keys/manager-key.json`), a worker when its parent is one of our managers.
 * Other people's endpoints on the same machine are never seen, let alone signalled.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { until } from '../helpers/wait.js';

export { until };

/** One process, as /proc shows it. */
export interface ProcInfo {
  pid: number;
  ppid: number;
  /** Single-letter state from /proc/PID/stat: R running, S sleeping, T stopped, Z zombie... */
  state: string;
  /** argv joined with spaces. */
  cmdline: string;
}

/** The process, or undefined when it is gone (or a zombie nobody reaped). */
export function procInfo(pid: number): ProcInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name is in parentheses and may hold spaces: parse after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
    return { pid, ppid: Number(rest[1]), state: rest[0], cmdline };
  } catch {
    return undefined;
  }
}

/** Every process we can read. */
export function allProcesses(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const p = procInfo(Number(name));
    if (p) out.push(p);
  }
  return out;
}

/** True while the process exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  const p = procInfo(pid);
  return p !== undefined && p.state !== 'Z' && p.state !== 'X';
}

/** The managers (`cli/manager.js`) started for endpoints of this FUNCX_HOME. */
export function managersOf(funcxHome: string): ProcInfo[] {
  const marker = `${funcxHome}/`;
  return allProcesses().filter((p) => p.cmdline.includes('cli/manager.js') && p.cmdline.includes(marker) && p.state !== 'Z');
}

/** The workers (`cli/worker.js`) whose parent is one of this home's managers. */
export function workersOf(funcxHome: string): ProcInfo[] {
  const managers = new Set(managersOf(funcxHome).map((m) => m.pid));
  return allProcesses().filter((p) => p.cmdline.includes('cli/worker.js') && managers.has(p.ppid) && p.state !== 'Z');
}

/** Send a signal; false when the process was already gone. */
export function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/** `kill -9` and wait until the process is really gone. */
export async function kill9(pid: number, what: string): Promise<void> {
  if (!signal(pid, 'SIGKILL')) throw new Error(`${what} (pid ${pid}) was already gone before kill -9`);
  await until(`${what} (pid ${pid}) to die after kill -9`, () => !isAlive(pid), { timeoutMs: 10_000, everyMs: 20 });
}
