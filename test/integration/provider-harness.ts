/**
 * Shared pieces of the provider integration tests (providers-real, providers-engine): a channel that
 * records the commands it runs, environment changes scoped to one test, tiny fake scheduler commands,
 * status polling that keeps every state seen, and process and stand-in job checks.
 */
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LocalChannel, type LocalChannelOptions } from '../../providers/channels/local.js';
import type { Channel, CommandResult, RunOptions } from '../../providers/channels/channel.js';
import type { BlockState, BlockStatus, ExecutionProvider } from '../../providers/provider.js';
import { until } from '../helpers/wait.js';

/** A LocalChannel that remembers every command line it ran, so a test can count scheduler calls. */
export class RecordingChannel implements Channel {
  readonly kind = 'local';
  readonly isRemote = false;
  readonly commands: string[] = [];
  private readonly inner: LocalChannel;

  constructor(options: LocalChannelOptions = {}) {
    this.inner = new LocalChannel(options);
  }

  get scriptDir(): string {
    return this.inner.scriptDir;
  }

  run(command: string, options?: RunOptions): Promise<CommandResult> {
    this.commands.push(command);
    return this.inner.run(command, options);
  }

  writeFile(path: string, content: string | Buffer, mode?: number): Promise<string> {
    return this.inner.writeFile(path, content, mode);
  }

  readFile(path: string): Promise<Buffer> {
    return this.inner.readFile(path);
  }

  exposePort(host: string, port: number): Promise<{ host: string; port: number }> {
    return this.inner.exposePort(host, port);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/**
 * Set environment variables of this process (undefined removes one) and return a function that puts the
 * previous values back. LocalChannel commands and the jobs they submit inherit process.env.
 */
export function setEnv(vars: Record<string, string | undefined>): () => void {
  const saved = new Map<string, string | undefined>();
  for (const [name, value] of Object.entries(vars)) {
    saved.set(name, process.env[name]);
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  return () => {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
}

/** Write tiny fake commands (`name` → shell body) into `dir` and return `dir` (to put first on PATH). */
export function writeFakeCommands(dir: string, commands: Record<string, string>): string {
  mkdirSync(dir, { recursive: true });
  for (const [name, body] of Object.entries(commands)) {
    const path = join(dir, name);
    writeFileSync(path, `#!/bin/sh\n# fake ${name} written by a funcx-endpoint test\n${body}\n`);
    chmodSync(path, 0o755);
  }
  return dir;
}

/** Every state one job went through (consecutive repeats folded), and its last status. */
export interface StateTrail {
  states: BlockState[];
  last: BlockStatus;
}

/**
 * Ask `provider.status(ids)` (one call for all ids) until `done` holds for every id, keeping each id's
 * trail of states. Fails naming the trails when `timeoutMs` passes.
 */
export async function pollStatus(
  provider: ExecutionProvider,
  ids: string[],
  done: (status: BlockStatus) => boolean,
  timeoutMs: number,
  onCall?: (statuses: Map<string, BlockStatus>) => void,
): Promise<Map<string, StateTrail>> {
  const trails = new Map<string, StateTrail>();
  const shown = () => ids.map((id) => `${id}: ${trails.get(id)?.states.join(' -> ')} (${JSON.stringify(trails.get(id)?.last)})`).join('; ');
  await until(
    `the status of ${ids.join(', ')}`,
    async () => {
      const statuses = await provider.status(ids);
      onCall?.(statuses);
      for (const id of ids) {
        const st = statuses.get(id) ?? { state: 'unknown' as const, detail: 'status() returned nothing for this id' };
        const trail = trails.get(id) ?? { states: [], last: st };
        if (trail.states.at(-1) !== st.state) trail.states.push(st.state);
        trail.last = st;
        trails.set(id, trail);
      }
      return ids.every((id) => done(trails.get(id)!.last));
    },
    { timeoutMs, everyMs: 250 },
  ).catch((err: Error) => {
    throw new Error(`${err.message}; seen: ${shown()}`);
  });
  return trails;
}

/** True while the process exists and is not a zombie (an orphan may wait a moment to be reaped). */
export function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** A file's text, or undefined while it does not exist. */
export function readIfThere(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * What a stand-in scheduler recorded for a job (test/fixtures/lib/core.mjs keeps `jobs/<number>/state`
 * and `exit_code` under FUNCX_FAKE_SCHED_DIR): 'queued', 'running', 'finished', 'cancelled', ...
 */
export function standInJob(stateDir: string, jobId: string): { state?: string; exitCode?: string } {
  const seq = /^\d+/.exec(jobId)?.[0];
  if (seq === undefined) throw new Error(`not a stand-in job id: ${jobId}`);
  const dir = join(stateDir, 'jobs', seq);
  return { state: readIfThere(join(dir, 'state'))?.trim(), exitCode: readIfThere(join(dir, 'exit_code'))?.trim() };
}
