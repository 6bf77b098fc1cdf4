#!/usr/bin/env node
/**
 * funcx-manager: started once per node by a block's launcher. Key material comes from a 0600 file, never
 * from the command line (which `ps` shows to everyone). It has no defaults of its own: the engine's command
 * builder (src/endpoint/engine/manager-command.ts) passes every option from the resolved config.
 */
import { Command, InvalidArgumentError } from 'commander';
import { cpus, totalmem } from 'node:os';
import { Manager } from '../worker/manager.js';
import { readManagerKeyFile } from '../protocol/keys.js';
import { createLogger } from '../logger.js';
import { DEFAULTS, WORKER_POOL_DEFAULTS } from '../config/defaults.js';
import { defaultMaxProcesses } from '../worker/pool-scheduler.js';
import { blockNodesFromEnv } from '../worker/mpi/nodelist.js';
import { MPI_LAUNCHERS, type MpiLauncherName } from '../worker/mpi/prefix.js';
import { nodeProbeFromEnv, type NodeProbe } from '../worker/mpi/node-probe.js';

function positive(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number, got ${JSON.stringify(value)}`);
    return n;
  };
}

function nonNegativeInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a whole number ≥ 0, got ${JSON.stringify(value)}`);
    return n;
  };
}

const program = new Command('funcx-manager')
  .description('Runs tasks from a funcX endpoint on this node (started by a block; not usually run by hand).')
  .requiredOption('--addresses <list>', 'comma-separated interchange addresses to try')
  .requiredOption('--port <port>', 'interchange port', positive('--port'))
  .requiredOption('--keys <file>', 'manager key file (JSON, 0600)')
  .requiredOption('--block-id <id>', 'our block id')
  .option('--max-workers <n>', 'most workers on this node', positive('--max-workers'))
  .requiredOption('--cores-per-worker <n>', 'cores each worker needs', positive('--cores-per-worker'))
  .option('--mem-per-worker <gb>', 'memory each worker needs (GB)', positive('--mem-per-worker'))
  .requiredOption('--prefetch <n>', 'tasks accepted beyond one per worker', nonNegativeInt('--prefetch'))
  .requiredOption('--heartbeat-period <s>', 'seconds between heartbeats', positive('--heartbeat-period'))
  .requiredOption('--heartbeat-threshold <s>', 'seconds of silence before the interchange counts as gone', positive('--heartbeat-threshold'))
  .requiredOption('--probe-timeout <s>', 'seconds to wait for an address to answer in one probe round', positive('--probe-timeout'))
  .option('--user-pool-idle <s>', "seconds a user's worker pool may stay idle before its workers end (default: engine.user_pool_idle)", positive('--user-pool-idle'))
  .option('--max-worker-processes <n>', 'most worker processes, busy and warm idle (default: max(2 × workers, workers + 4); never fewer than the workers)', positive('--max-worker-processes'))
  .option('--busy-poll-us <us>', 'microseconds this manager and its workers keep spinning after a message in or out, 0 for off (default: engine.busy_poll_us)', nonNegativeInt('--busy-poll-us'))
  .option('--walltime <s>', "the block's walltime in seconds, counted from this manager's start", positive('--walltime'))
  .requiredOption('--log-level <level>', 'debug | info | warn | error')
  .option('--mpi-launcher <name>', `engine mode "mpi": one manager per block packs tasks onto the block's nodes, launching with ${MPI_LAUNCHERS.join(' | ')}`)
  .option('--mpi-overrides <flags>', 'one line appended to every MPI launch prefix', '');

program.parse();
const o = program.opts();

const cores = cpus().length;
const memGiB = totalmem() / 2 ** 30;
// Workers: as many as cores and memory allow, capped by --max-workers (Parsl's rule).
let workers = Math.floor(cores / o.coresPerWorker);
if (o.memPerWorker) workers = Math.min(workers, Math.floor(memGiB / o.memPerWorker));
if (o.maxWorkers) workers = Math.min(workers, Math.floor(o.maxWorkers));
const log = createLogger(`manager ${process.env.SLURMD_NODENAME ?? ''}`.trim(), o.logLevel);
if (workers < 1) {
  log.error(`no worker fits on this node: ${cores} cores, ${memGiB.toFixed(1)} GiB; cores_per_worker ${o.coresPerWorker}, mem_per_worker ${o.memPerWorker ?? '-'} GB`);
  process.exit(2);
}

let mpi: { nodes: string[]; launcher: MpiLauncherName; overrides: string; probe?: NodeProbe } | undefined;
if (o.mpiLauncher !== undefined) {
  if (!(MPI_LAUNCHERS as readonly string[]).includes(o.mpiLauncher)) {
    log.error(`--mpi-launcher must be one of ${MPI_LAUNCHERS.join(', ')}, got ${JSON.stringify(o.mpiLauncher)}`);
    process.exit(2);
  }
  try {
    const found = blockNodesFromEnv();
    const probe = nodeProbeFromEnv(process.env, (err) => log.warn(`node probe: ${err.message}`));
    mpi = { nodes: found.nodes, launcher: o.mpiLauncher as MpiLauncherName, overrides: String(o.mpiOverrides ?? ''), probe };
    log.info(`MPI block of ${found.nodes.length} nodes (${found.nodes.join(',')}) from ${found.source}; launcher ${o.mpiLauncher}`);
  } catch (err) {
    log.error(`cannot find this block's nodes: ${(err as Error).message}`);
    process.exit(2);
  }
  // One task per node at most runs at once; tasks beyond that wait here so the packer can choose (backfill).
  workers = mpi.nodes.length;
}

const manager = new Manager({
  addresses: String(o.addresses).split(',').map((a) => a.trim()).filter(Boolean),
  port: o.port,
  keys: readManagerKeyFile(o.keys),
  blockId: o.blockId,
  workers,
  cores,
  memoryMiB: Math.floor(totalmem() / 2 ** 20),
  prefetch: mpi ? Math.max(o.prefetch, 2 * mpi.nodes.length) : o.prefetch,
  heartbeatPeriodMs: o.heartbeatPeriod * 1000,
  heartbeatThresholdMs: o.heartbeatThreshold * 1000,
  probeTimeoutMs: o.probeTimeout * 1000,
  poolIdleMs: (o.userPoolIdle ?? DEFAULTS.engine.user_pool_idle) * 1000,
  // A node with fewer cores than the profile's max_worker_processes assumed still gets a process per worker.
  maxProcesses: Math.max(workers, o.maxWorkerProcesses ? Math.floor(o.maxWorkerProcesses) : defaultMaxProcesses(workers, WORKER_POOL_DEFAULTS.processes_per_worker, WORKER_POOL_DEFAULTS.spare_processes_at_least)),
  busyPollUs: o.busyPollUs ?? DEFAULTS.engine.busy_poll_us,
  endsAt: o.walltime ? Date.now() + o.walltime * 1000 : null,
  log,
  mpi,
});
manager.start().catch((err: Error) => {
  log.error(err.message);
  process.exit(2);
});
// The manager never exits by itself: this entry point does, with the code its stop gave.
void manager.stopped.then((code) => process.exit(code));
