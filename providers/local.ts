/**
 * LocalProvider: a block is a process group on this machine running the block script (worker_init, then
 * the launcher's line starting the managers). The embedded default: no scheduler needed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, closeSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../src/errors.js';
import { blockOptionsOf, type BlockRequest, type BlockStatus, type ExecutionProvider, type ProviderBlockOptions, type SubmittedBlock } from './provider.js';
import type { Channel } from './channels/channel.js';
import type { Launcher } from '../launchers/launcher.js';
import { LocalChannel } from './channels/local.js';
import { SingleNodeLauncher } from '../launchers/single-node.js';
import { checkPositiveInt, checkWorkerInit, envExports } from './script-values.js';

export interface LocalProviderOptions extends ProviderBlockOptions {
  /** Lines run before the managers start (e.g. `source venv/bin/activate`). @default none */
  worker_init?: string | string[];
  /** Must be a LocalChannel. @default new LocalChannel() */
  channel?: Channel;
  /** @default new SingleNodeLauncher() */
  launcher?: Launcher;
}

const OPTIONS = new Set(['nodes_per_block', 'worker_init', 'walltime', 'channel', 'launcher', 'init_blocks', 'min_blocks', 'max_blocks', 'parallelism']);

interface LocalJob {
  child: ChildProcess;
  state: BlockStatus['state'];
  cancelled: boolean;
  timer?: NodeJS.Timeout;
}

export class LocalProvider implements ExecutionProvider {
  readonly label = 'local';
  readonly channel: Channel;
  readonly launcher: Launcher;
  readonly blockOptions: Readonly<ProviderBlockOptions>;
  private readonly workerInit: string[];
  private readonly jobs = new Map<string, LocalJob>();

  constructor(options: LocalProviderOptions = {}) {
    for (const key of Object.keys(options)) {
      if (!OPTIONS.has(key)) throw new ConfigError(`provider.${key}: unknown LocalProvider option (known: ${[...OPTIONS].join(', ')})`);
    }
    this.channel = options.channel ?? new LocalChannel();
    if (this.channel.isRemote) throw new ConfigError('provider.channel: LocalProvider runs blocks on this machine; use a cluster provider for a remote channel');
    this.launcher = options.launcher ?? new SingleNodeLauncher();
    this.workerInit = checkWorkerInit('provider.worker_init', options.worker_init);
    // Block fields (limits, nodes_per_block, walltime) are kept raw: src/config/ fills and checks them.
    this.blockOptions = blockOptionsOf(options);
  }

  async render(request: BlockRequest): Promise<string> {
    const nodes = checkPositiveInt('block request nodesPerBlock', request.nodesPerBlock);
    return [
      '#!/bin/bash',
      `# funcX block ${request.blockId} (${request.jobName}): ${nodes} manager(s) on this machine`,
      ...this.workerInit,
      ...envExports('block env', request.env),
      this.launcher.wrap(request.command, { nodesPerBlock: 1, tasksPerNode: nodes }),
      '',
    ].join('\n');
  }

  async submit(request: BlockRequest): Promise<SubmittedBlock> {
    const script = await this.render(request);
    mkdirSync(this.channel.scriptDir, { recursive: true, mode: 0o700 });
    const base = join(this.channel.scriptDir, `${request.jobName}.${Date.now()}`);
    const scriptPath = `${base}.sh`;
    const stdoutPath = `${base}.stdout`;
    writeFileSync(scriptPath, script, { mode: 0o700 });
    const out = openSync(stdoutPath, 'a', 0o600);
    // A new process group, so cancel reaches every manager and worker of the block.
    const child = spawn('/bin/bash', [scriptPath], { detached: true, stdio: ['ignore', out, out] });
    closeSync(out);
    const jobId = `local-${child.pid}`;
    const job: LocalJob = { child, state: 'running', cancelled: false };
    child.on('exit', (code) => {
      if (job.timer) clearTimeout(job.timer);
      job.state = job.cancelled ? 'cancelled' : job.state === 'timeout' ? 'timeout' : code === 0 ? 'completed' : 'failed';
    });
    const walltimeS = request.walltimeS;
    if (walltimeS !== undefined && Number.isFinite(walltimeS)) {
      job.timer = setTimeout(() => {
        job.state = 'timeout';
        killGroup(child.pid!, 'SIGKILL');
      }, walltimeS * 1000);
      job.timer.unref();
    }
    this.jobs.set(jobId, job);
    child.unref();
    return { jobId, scriptPath, stdoutPath };
  }

  async status(jobIds: string[]): Promise<Map<string, BlockStatus>> {
    const out = new Map<string, BlockStatus>();
    for (const id of jobIds) {
      const job = this.jobs.get(id);
      if (job) {
        out.set(id, { state: job.state });
        continue;
      }
      // A block of an earlier run of the endpoint: all we can tell is whether its process group lives.
      const pid = Number(id.replace(/^local-/, ''));
      out.set(id, { state: Number.isInteger(pid) && pid > 0 && groupAlive(pid) ? 'running' : 'completed' });
    }
    return out;
  }

  async cancel(jobIds: string[]): Promise<void> {
    for (const id of jobIds) {
      const job = this.jobs.get(id);
      const pid = Number(id.replace(/^local-/, ''));
      if (!Number.isInteger(pid) || pid <= 0) continue;
      if (job) {
        if (job.state !== 'running') continue;
        job.cancelled = true;
      }
      killGroup(pid, 'SIGTERM');
      // Managers say bye on SIGTERM; anything still there after the grace is killed.
      setTimeout(() => killGroup(pid, 'SIGKILL'), 3000).unref();
    }
  }

  async close(): Promise<void> {
    for (const job of this.jobs.values()) if (job.timer) clearTimeout(job.timer);
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    /* already gone */
  }
}

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}
