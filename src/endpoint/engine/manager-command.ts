/**
 * The manager command line and block request of a block, from the resolved config alone: a pure function,
 * used by the engine at submit time and by `funcx-endpoint render` without building an engine.
 */
import { fileURLToPath } from 'node:url';
import type { ResolvedEngineOptions } from '../../config/engine-options.js';
import type { BlockRequest } from '../../../providers/provider.js';
import { shellQuote } from '../../../providers/script-values.js';
import type { BlockShape } from './blocks.js';

const MANAGER_JS = fileURLToPath(new URL('../../cli/manager.js', import.meta.url));

/** Where managers of this endpoint find the interchange (known once the interchange listens). */
export interface ManagerEndpoint {
  /** Addresses managers try, first that answers wins. */
  addresses: readonly string[];
  port: number;
  /** The manager key file on the channel's side. */
  keyFile: string;
}

/** Seconds of walltime the manager leaves spare: it counts from its own start, a little after the job's. */
const MANAGER_WALLTIME_SLACK_S = 3;

/** The command every node of a block runs. Every flag is given: funcx-manager has no defaults of its own. */
export function managerCommand(engine: ResolvedEngineOptions, at: ManagerEndpoint, blockId: string, shape: BlockShape): string {
  const base = engine.managerCommand ?? `${shellQuote(process.execPath)} ${shellQuote(MANAGER_JS)}`;
  const args = [
    '--addresses', at.addresses.join(','),
    '--port', String(at.port),
    '--keys', at.keyFile,
    '--block-id', blockId,
    '--cores-per-worker', String(engine.coresPerWorker),
    '--prefetch', String(engine.prefetch),
    '--heartbeat-period', String(engine.heartbeatPeriodMs / 1000),
    '--heartbeat-threshold', String(engine.heartbeatThresholdMs / 1000),
    '--probe-timeout', String(engine.probeTimeoutMs / 1000),
    '--user-pool-idle', String(engine.userPoolIdleMs / 1000),
    '--log-level', engine.managerLogLevel,
    '--busy-poll-us', String(engine.busyPollUs),
  ];
  if (engine.maxWorkersPerNode !== undefined) args.push('--max-workers', String(engine.maxWorkersPerNode));
  if (engine.maxWorkerProcesses !== undefined) args.push('--max-worker-processes', String(engine.maxWorkerProcesses));
  if (engine.memPerWorkerGB !== undefined) args.push('--mem-per-worker', String(engine.memPerWorkerGB));
  if (engine.mpi) args.push('--mpi-launcher', engine.mpi.launcher, ...(engine.mpi.overrides ? ['--mpi-overrides', engine.mpi.overrides] : []));
  if (Number.isFinite(shape.walltimeS)) args.push('--walltime', String(Math.max(1, shape.walltimeS - MANAGER_WALLTIME_SLACK_S)));
  return `${base} ${args.map(shellQuote).join(' ')}`;
}

/** The scheduler's job name of a block of endpoint `name`. */
export function blockJobName(name: string, blockId: string): string {
  return `funcx-${name}-${blockId}`.replace(/[^A-Za-z0-9_.-]/g, '_');
}

/** What the provider is asked to submit for block `blockId` of endpoint `name`. */
export function blockRequest(engine: ResolvedEngineOptions, at: ManagerEndpoint, name: string, blockId: string, shape: BlockShape): BlockRequest {
  return {
    blockId,
    command: managerCommand(engine, at, blockId, shape),
    jobName: blockJobName(name, blockId),
    env: { FUNCX_RESULT_SIZE_LIMIT: String(engine.resultSizeLimit) },
    nodesPerBlock: shape.nodes,
    walltimeS: Number.isFinite(shape.walltimeS) ? shape.walltimeS : undefined,
  };
}

/** The shape of a first block: the fewest nodes and the longest walltime the strategy may choose. */
export function firstBlockShape(strategy: { nodes: { min: number }; walltimeS: { max: number } }): BlockShape {
  return { nodes: strategy.nodes.min, walltimeS: strategy.walltimeS.max };
}
