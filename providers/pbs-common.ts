/**
 * What PBS Pro and Torque share: their job ids, `qstat -f` documents (JSON or text), the comment that says why
 * a job waits, and the Exit_status codes that say how it ended.
 */
import type { BlockState, BlockStatus } from './provider.js';

/** One job of `qstat -f` (JSON keys or text attributes). */
export interface PbsJob {
  job_state?: string;
  Exit_status?: number | string;
  exit_status?: number | string;
  comment?: string;
}

/** The short id ("1234" of "1234.pbs01"): qstat may key its output by either. */
export function shortJobId(id: string): string {
  return id.split('.')[0]!;
}

/** Read `qsub` output: the last line, "1234.server" or "1234[].server". */
export function parsePbsJobId(stdout: string): string | undefined {
  const last = stdout.split('\n').map((l) => l.trim()).filter(Boolean).at(-1);
  return last && /^\d+(\[\d*\])?(\.[A-Za-z0-9_.-]+)?$/.test(last) ? last : undefined;
}

/**
 * `qstat -f` text: "Job Id: 1234.pbs01" then indented "attribute = value" lines (long values continue on
 * lines indented by a tab). Empty output means no jobs.
 */
export function parseFullText(stdout: string): Record<string, PbsJob> {
  const jobs: Record<string, PbsJob> = {};
  let current: Record<string, string> | null = null;
  let lastKey: string | null = null;
  for (const line of stdout.split('\n')) {
    const head = /^Job Id:\s*(\S+)/.exec(line);
    if (head) {
      current = {};
      jobs[head[1]!] = current as PbsJob;
      lastKey = null;
      continue;
    }
    if (current === null) continue;
    const attr = /^\s+([A-Za-z_][\w.]*)\s=\s?(.*)$/.exec(line);
    if (attr) {
      lastKey = attr[1]!;
      current[lastKey] = attr[2]!;
    } else if (lastKey !== null && /^\t/.test(line)) {
      current[lastKey] += line.trim();
    }
  }
  return jobs;
}

/** The "Jobs" object of `qstat -f -F json`; empty output means no jobs. */
export function parseJobsJson(stdout: string): Record<string, PbsJob> {
  if (stdout.trim() === '') return {};
  try {
    const doc = JSON.parse(stdout) as { Jobs?: Record<string, PbsJob>; pbs_version?: unknown };
    if (doc === null || typeof doc !== 'object' || (doc.Jobs === undefined && doc.pbs_version === undefined && !('timestamp' in doc))) {
      throw new Error('not a qstat document');
    }
    return doc.Jobs ?? {};
  } catch {
    // Some PBS versions print invalid JSON (unescaped values in Variable_List); the fields we need are
    // simple, so read them by pattern rather than fail. Job keys are the only keys that start with a digit.
    const jobs: Record<string, PbsJob> = {};
    const keys = [...stdout.matchAll(/"(\d+(?:\[\d*\])?(?:\.[^"]*)?)"\s*:\s*\{/g)];
    keys.forEach((m, i) => {
      const part = stdout.slice(m.index, keys[i + 1]?.index ?? stdout.length);
      const state = /"job_state"\s*:\s*"([A-Z])"/.exec(part)?.[1];
      const exit = /"Exit_status"\s*:\s*(-?\d+)/.exec(part)?.[1];
      const comment = /"comment"\s*:\s*"((?:[^"\\]|\\.)*)"/.exec(part)?.[1];
      if (state) {
        jobs[m[1]!] = { job_state: state, ...(exit !== undefined ? { Exit_status: Number(exit) } : {}), ...(comment ? { comment } : {}) };
      }
    });
    if (Object.keys(jobs).length === 0) throw new Error('not JSON and no job_state found');
    return jobs;
  }
}

/** A comment PBS writes when the job can never run as asked (PBS Pro "Can Never Run: ..."). */
const NEVER_RUNS = /Can Never Run|would never run|exceeds (queue|server) (resource )?limit|Unknown resource|Account .* (is )?invalid/i;

/** The job's state, refined by its comment (why it waits) and its exit status (how it ended). */
export function pbsJobStatus(job: PbsJob, map: (code: string) => BlockStatus, exits: ExitTable): BlockStatus {
  const raw = String(job.job_state ?? '');
  const status = map(raw);
  const comment = job.comment?.trim();
  if (comment && status.state !== 'running' && !status.state.match(/^(completed|failed|cancelled|timeout|node_fail|out_of_memory)$/)) {
    status.reason = comment;
    if (status.state === 'pending' && NEVER_RUNS.test(comment)) status.stuck = true;
  }
  const exitText = job.Exit_status ?? job.exit_status;
  if (status.state !== 'completed' || exitText === undefined) return status;
  const exit = Number(exitText);
  const detail = `Exit_status ${exit}`;
  const state: BlockState = exit === 0 ? 'completed' : (exits[exit] ?? 'failed');
  return { ...status, state, detail, exitCode: exit };
}

/** Exit_status values that mean more than "failed". */
export type ExitTable = Readonly<Record<number, BlockState>>;

/** PBS Pro's JOB_EXEC_* codes and a qdel's SIGTERM (256 + 15). */
export const PBSPRO_EXITS: ExitTable = { [-29]: 'timeout', [-27]: 'out_of_memory', [-26]: 'out_of_memory', 271: 'cancelled' };

/** Torque's JOB_EXEC_OVERLIMIT_* codes and a qdel's SIGTERM. */
export const TORQUE_EXITS: ExitTable = { [-11]: 'timeout', [-12]: 'out_of_memory', 271: 'cancelled' };

/**
 * The status of each of `ids` from qstat's jobs (matched by full or short id). An id qstat itself called
 * unknown (`unknownLines`) has left the queue; one it is silent about gets no entry (a broken answer).
 */
export function statusesOf(
  ids: readonly string[],
  jobs: Record<string, PbsJob>,
  unknownLines: readonly string[],
  status: (job: PbsJob) => BlockStatus,
  gone: (id: string) => BlockStatus,
): Map<string, BlockStatus> {
  const byShort = new Map<string, PbsJob>();
  for (const [key, job] of Object.entries(jobs)) byShort.set(shortJobId(key), job);
  const saidGone = new Set(unknownLines.flatMap((l) => /\b(\d+)(?:\[\d*\])?(?:\.[\w.-]+)?/.exec(l)?.[1] ?? []));
  const out = new Map<string, BlockStatus>();
  for (const id of ids) {
    const job = jobs[id] ?? byShort.get(shortJobId(id));
    if (job) out.set(id, status(job));
    else if (saidGone.has(shortJobId(id))) out.set(id, gone(id));
  }
  return out;
}
