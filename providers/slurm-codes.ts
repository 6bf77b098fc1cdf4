/**
 * What Slurm's codes mean to us: squeue's compact states, the pending reasons that mean held or stuck, and
 * sacct's final states. From the squeue(1) and sacct(1) manuals ("JOB STATE CODES", "JOB REASON CODES").
 */
import type { BlockState, BlockStatus } from './provider.js';

/** squeue `%t`: every code of the manual's JOB STATE CODES. */
export const SLURM_STATES: Readonly<Record<string, BlockState>> = {
  PD: 'pending', // PENDING (held too when the reason says so: see HELD_REASONS)
  CF: 'pending', // CONFIGURING: allocated, nodes booting
  RQ: 'pending', // REQUEUED: back in the queue
  RF: 'pending', // REQUEUE_FED: requeued by a federation
  R: 'running',
  CG: 'running', // COMPLETING: still on its nodes
  SI: 'running', // SIGNALING
  SO: 'running', // STAGE_OUT
  RS: 'running', // RESIZING
  CD: 'completed',
  CA: 'cancelled',
  F: 'failed',
  BF: 'failed', // BOOT_FAIL
  PR: 'failed', // PREEMPTED (a requeued job shows PD again)
  NF: 'node_fail',
  OOM: 'out_of_memory',
  TO: 'timeout',
  DL: 'timeout', // DEADLINE
  S: 'held', // SUSPENDED
  ST: 'held', // STOPPED
  RH: 'held', // REQUEUE_HOLD: requeued, held
  RD: 'held', // RESV_DEL_HOLD: its reservation was deleted, held
  SE: 'held', // SPECIAL_EXIT: requeued in a held state
  RV: 'unknown', // REVOKED: a federation sibling runs it; this cluster says nothing of it
};

/** Pending reasons of a held job (`%r`); the job waits for a release, not for nodes. */
const HELD_REASON = /^(JobHeldUser|JobHeldAdmin|launch failed requeued held|job requeued in held state|Held)\b/i;

/**
 * Pending reasons that waiting cannot change: the job asks for more than its partition, QOS or association
 * allows per job, names something that does not exist, or waits for nodes that are down or a dependency
 * that can no longer be met.
 */
const STUCK_REASON = new RegExp(
  '^(' + [
    'PartitionTimeLimit', 'PartitionNodeLimit', 'PartitionConfig', 'PartitionInactive', 'BadConstraints',
    'InvalidAccount', 'InvalidQOS', 'AccountNotAllowed', 'QOSNotAllowed', 'DependencyNeverSatisfied',
    '(QOS|Assoc)Max\\w*PerJob\\w*', 'QOSMin\\w*NotSatisfied', 'ReqNodeNotAvail.*UnavailableNodes:\\S',
  ].join('|') + ')',
);

/** The status of one squeue row: its code, refined by its reason. */
export function slurmStatus(code: string, reason: string, map: (code: string) => BlockStatus): BlockStatus {
  const status = map(code);
  const r = reason.trim();
  const said = r !== '' && r !== 'None' && r !== '(null)';
  if (said && status.state !== 'running') status.reason = r;
  if (status.state === 'pending' && said && HELD_REASON.test(r)) status.state = 'held';
  else if (status.state === 'pending' && said && STUCK_REASON.test(r)) status.stuck = true;
  return status;
}

/** sacct's State column (the first word: "CANCELLED by 0"), for a job that left the queue. */
const SACCT_STATES: Readonly<Record<string, BlockState>> = {
  COMPLETED: 'completed', FAILED: 'failed', TIMEOUT: 'timeout', DEADLINE: 'timeout', CANCELLED: 'cancelled',
  NODE_FAIL: 'node_fail', OUT_OF_MEMORY: 'out_of_memory', BOOT_FAIL: 'failed', PREEMPTED: 'failed',
};

/**
 * `sacct -X -n -P -o JobID,State,ExitCode` rows ("71|FAILED|3:0") → final states. A COMPLETED job with a
 * non-zero exit code is failed. States of live jobs (PENDING, RUNNING, ...) are left out: squeue speaks for them.
 */
export function parseSacct(stdout: string): Map<string, BlockStatus> {
  const out = new Map<string, BlockStatus>();
  for (const line of stdout.split('\n')) {
    const [id, stateText, exitText] = line.trim().split('|');
    if (!id || !stateText) continue;
    const word = stateText.split(/\s+/)[0]!.replace(/\+$/, '');
    let state = SACCT_STATES[word];
    if (state === undefined) continue;
    const [codeText, signalText] = (exitText ?? '').split(':');
    const exitCode = codeText !== undefined && /^\d+$/.test(codeText) ? Number(codeText) : undefined;
    if (state === 'completed' && exitCode !== undefined && exitCode !== 0) state = 'failed';
    const status: BlockStatus = { state, raw: stateText, detail: `sacct: ${stateText}${exitText ? `, exit ${exitText}` : ''}` };
    if (exitCode !== undefined) status.exitCode = exitCode;
    if (signalText && signalText !== '0') status.detail += ` (signal ${signalText})`;
    out.set(id, status);
  }
  return out;
}
