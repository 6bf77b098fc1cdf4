/** Starts a real interchange with fresh CURVE keys and real manager processes, for tests and benchmarks. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Interchange, type InterchangeOptions } from '../../src/endpoint/engine/interchange.js';
import { loadOrCreateWorkerChannelKeys, writeManagerKeyFile, type WorkerChannelKeys } from '../../src/protocol/keys.js';
import { encodeArgs, encodeTask } from '../../src/protocol/payload.js';
import type { TaskEnvelope } from '../../src/protocol/messages.js';
import { profilingArgs } from '../../src/worker/worker-pool.js';
import { untilEvent } from './wait.js';
import { DEFAULTS } from '../../src/config/defaults.js';

export const MANAGER_CLI = fileURLToPath(new URL('../../src/cli/manager.js', import.meta.url));

export interface EngineFixture {
  interchange: Interchange;
  keys: WorkerChannelKeys;
  keyFile: string;
  dir: string;
  managers: ChildProcess[];
  startManager(extra?: string[], env?: Record<string, string>): ChildProcess;
  stop(): Promise<void>;
}

export async function startEngine(options: Partial<InterchangeOptions> = {}): Promise<EngineFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'funcx-engine-'));
  const keys = loadOrCreateWorkerChannelKeys(join(dir, 'keys'));
  const keyFile = join(dir, 'keys', 'manager-key.json');
  writeManagerKeyFile(keyFile, keys);
  const interchange = new Interchange({
    keys,
    address: '127.0.0.1',
    port: 0,
    heartbeatPeriodMs: 1000,
    heartbeatThresholdMs: 5000,
    maxRetries: DEFAULTS.engine.max_retries,
    walltimeMarginMs: DEFAULTS.strategy.walltime_margin * 1000,
    ...options,
  });
  await interchange.start();
  const managers: ChildProcess[] = [];
  const fixture: EngineFixture = {
    interchange,
    keys,
    keyFile,
    dir,
    managers,
    startManager(extra = [], env = {}) {
      const args = [
        ...profilingArgs(),
        MANAGER_CLI,
        '--addresses', '127.0.0.1',
        '--port', String(interchange.port),
        '--keys', keyFile,
        '--max-workers', '2',
        // funcx-manager has no defaults: every option comes from the resolved config (here: DEFAULTS).
        '--block-id', '',
        '--cores-per-worker', String(DEFAULTS.engine.cores_per_worker),
        '--prefetch', String(DEFAULTS.engine.prefetch_capacity),
        '--probe-timeout', String(DEFAULTS.engine.address_probe_timeout),
        '--heartbeat-period', String((options.heartbeatPeriodMs ?? 1000) / 1000),
        '--heartbeat-threshold', String((options.heartbeatThresholdMs ?? 5000) / 1000),
        '--log-level', process.env.FUNCX_LOG_LEVEL ?? 'warn',
        '--busy-poll-us', String(DEFAULTS.engine.busy_poll_us),
        ...extra,
      ];
      const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, ...env } });
      managers.push(child);
      return child;
    },
    async stop() {
      await interchange.stop({ graceMs: 0 });
      // Managers leave on the interchange's shutdown (profiles are written at exit); one that has not left
      // by the deadline is killed.
      await Promise.all(
        managers.map(async (m) => {
          if (m.exitCode !== null || m.signalCode !== null) return;
          await untilEvent(m, 'exit', { timeoutMs: 5000 }).catch(() => m.kill('SIGKILL'));
        }),
      );
    },
  };
  return fixture;
}

let counter = 0;

/** A task running a JS function given as source. */
export function jsTask(source: string, args: unknown[] = [], functionId = `fn-${hash(source)}`, extra: Partial<TaskEnvelope> = {}): TaskEnvelope {
  return { id: `t${++counter}-${process.pid}`, fn: functionId, payload: encodeTask({ kind: 'js', functionId, source, args: encodeArgs(args) }), ...extra };
}

export function shellTask(command: string, walltimeMs?: number): TaskEnvelope {
  return { id: `s${++counter}-${process.pid}`, payload: encodeTask({ kind: 'shell', command, walltimeMs }) };
}

function hash(s: string): string {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) | 0;
  return (h >>> 0).toString(16);
}
