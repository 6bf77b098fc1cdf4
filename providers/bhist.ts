/**
 * LSF's `bhist -l ID...`: the event log's story of each job, for jobs `bjobs` no longer knows (past
 * CLEAN_PERIOD). Records start with "Job <N>, User <...>" and end with a line of dashes; each event is
 * "Mon Jun  4 04:36:14: <what happened>;". bhist wraps lines at 80 columns, mid-word, indenting the rest by
 * 21 spaces. How a job ended:
 *  - "Done successfully." → completed;
 *  - "Exited with exit code N." or "Exited; job has been forced to exit with exit code N." → failed (exit N),
 *    unless a "Completed <exit>; TERM_..." line says why: TERM_RUNLIMIT/TERM_CPULIMIT → timeout,
 *    TERM_MEMLIMIT/TERM_SWAP → out_of_memory, TERM_OWNER/TERM_ADMIN/TERM_FORCE_*, TERM_PREEMPT/TERM_REQUEUE_* →
 *    cancelled, TERM_ZOMBIE/TERM_UNKNOWN/TERM_ORPHAN_SYSTEM/TERM_REMOVE_HUNG_JOB/TERM_LOAD → node_fail.
 * A record with neither (still running, or a log cut short) says nothing: left out.
 */
import type { BlockState, BlockStatus } from './provider.js';

const TERM_STATES: ReadonlyArray<[RegExp, BlockState]> = [
  [/^TERM_(RUNLIMIT|CPULIMIT|DEADLINE)$/, 'timeout'],
  [/^TERM_(MEMLIMIT|SWAP)$/, 'out_of_memory'],
  [/^TERM_(OWNER|ADMIN|FORCE_OWNER|FORCE_ADMIN|PREEMPT|REQUEUE_OWNER|REQUEUE_ADMIN|KILL_BY_OWNER)$/, 'cancelled'],
  [/^TERM_(ZOMBIE|UNKNOWN|ORPHAN_SYSTEM|REMOVE_HUNG_JOB|LOAD|HOST)/, 'node_fail'],
];

/** bhist -l's lines with its wrapped continuations joined back. */
function unwrap(text: string): string[] {
  const lines: string[] = [];
  for (const raw of text.split('\n')) {
    if (/^ {20,}/.test(raw) && lines.length > 0 && !/^-{20,}$/.test(lines.at(-1)!.trim())) {
      // The wrap indent is 21 spaces; a 22nd is the space the line was cut at.
      lines[lines.length - 1] += raw.startsWith(' '.repeat(21)) ? raw.slice(21) : raw.trimStart();
    } else lines.push(raw);
  }
  return lines;
}

/** Parse `bhist -l` output: each finished job's end. */
export function parseBhist(stdout: string): Map<string, BlockStatus> {
  const result = new Map<string, BlockStatus>();
  let id: string | undefined;
  let exitCode: number | undefined;
  let done = false;
  let term: string | undefined;
  const flush = (): void => {
    if (id === undefined) return;
    let status: BlockStatus | undefined;
    const termState = term === undefined ? undefined : TERM_STATES.find(([re]) => re.test(term!))?.[1];
    if (done) status = { state: 'completed', raw: 'DONE', detail: 'bhist: done successfully', exitCode: 0 };
    else if (termState !== undefined || exitCode !== undefined) {
      status = { state: termState ?? 'failed', raw: term ?? 'EXIT' };
      if (exitCode !== undefined) status.exitCode = exitCode;
      status.detail = `bhist: ${term ?? 'exited'}${exitCode === undefined ? '' : `, exit code ${exitCode}`}`;
    }
    if (status !== undefined) result.set(id, status);
    id = undefined;
    exitCode = undefined;
    done = false;
    term = undefined;
  };
  for (const line of unwrap(stdout)) {
    const head = /^Job <(\d+)>,/.exec(line);
    if (head) {
      flush();
      id = head[1];
      continue;
    }
    if (id === undefined) continue;
    const event = /^\w{3} \w{3} +\d+ [\d:]+(?: \d{4})?: (.*)$/.exec(line)?.[1];
    if (event === undefined) continue;
    if (/^Done successfully/.test(event)) done = true;
    const code = /exit code (-?\d+)/.exec(event);
    if (/^Exited\b/.test(event) && code) exitCode = Number(code[1]);
    const t = /^Completed <exit>; (TERM_[A-Z_]+)/.exec(event);
    if (t) term = t[1];
  }
  flush();
  return result;
}
