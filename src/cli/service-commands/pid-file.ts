/** Whether a `funcx-service` runs: its pid file (HOME/service.pid), its process, and its /v1/health. */
import { existsSync, readFileSync } from 'node:fs';
import { FuncxError } from '../../errors.js';
import { pidPath } from './state.js';

/** What a service in the foreground writes to HOME/service.pid once it listens. */
export interface PidFile {
  pid: number;
  url: string;
  startedAt: string;
}

export function readPidFile(): PidFile | undefined {
  try {
    const p = JSON.parse(readFileSync(pidPath(), 'utf8')) as PidFile;
    return Number.isInteger(p.pid) && typeof p.url === 'string' ? p : undefined;
  } catch {
    return undefined;
  }
}

/** Alive and (where /proc tells) really a funcx-service, not a recycled pid. */
export function isServiceProcess(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  const cmdline = `/proc/${pid}/cmdline`;
  return !existsSync(cmdline) || readFileSync(cmdline, 'utf8').includes('service');
}

export async function healthy(url: string): Promise<{ pid: number; protocol: number } | undefined> {
  try {
    const r = await fetch(`${url}/v1/health`, { signal: AbortSignal.timeout(2000) });
    return r.ok ? ((await r.json()) as { pid: number; protocol: number }) : undefined;
  } catch {
    return undefined;
  }
}

export function refuseIfRunning(): void {
  const running = readPidFile();
  if (running && isServiceProcess(running.pid)) {
    throw new FuncxError('ALREADY_RUNNING', `funcx-service is already running at ${running.url} (pid ${running.pid})`, ['stop it with `funcx-service stop`']);
  }
}
