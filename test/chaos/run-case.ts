/**
 * Running one chaos case: a fresh service and endpoint, a batch of tasks through the SDK, the case's break
 * and recovery while they run, then a count of every task: completed, failed with an explicit error, or lost
 * (no result within the grace period after the recovery).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureSlurm } from '../integration/cluster-setup.js';
import { postgresBackend } from '../helpers/store-backends.js';
import { Collector, GATED_FROM, Rig, submitTasks, type Counts } from './harness.js';

/** What a case's break-and-recover step gets. */
export interface CaseContext {
  rig: Rig;
  collector: Collector;
  /** The short (CI) run. */
  short: boolean;
  /** A line for the report (what was broken, how it came back). */
  note(line: string): void;
  /** Call right after each break: fails the case when no task was left in flight to be hurt. */
  broke(what: string): void;
  /** A measured figure for the report and the JSON (e.g. the 503s answered during an outage). */
  figure(name: string, value: number): void;
}

interface CaseBase {
  /** Short id, e.g. "worker-kill" (the `case` of the JSON). */
  name: string;
  /** What is broken, for people. */
  title: string;
  /** Needs the Slurm test cluster. */
  slurm?: boolean;
  /**
   * Needs PostgreSQL (the test server of test/cluster/start-postgres.sh, or a private one: root). Without it
   * the case is skipped, and the report says why.
   */
  postgres?: boolean;
  /** The endpoint profile (config.ts source). */
  profile(): string;
  /** How many tasks the case submits, given the run's options (default: `o.tasks`). */
  tasks?(o: RunOptions): number;
}

/** A case against the one service `funcx-service start` runs (SQLite in the rig's service home). */
export interface SimpleCase extends CaseBase {
  /** Arguments of its `funcx-service start` (after --port). @default none */
  serviceArgs?: string[];
  /** Break something while the tasks run, and recover as an operator would. */
  chaos(ctx: CaseContext): Promise<void>;
}

/** A case that starts the service side itself (replicas behind a balancer, a PostgreSQL of its own). */
export interface ServiceCase extends CaseBase {
  /** Start the service side and point the rig at it (rig.url, rig.env); the break it returns runs against it. */
  start(rig: Rig, progress: (line: string) => void): Promise<ServiceSide>;
}

/** What a ServiceCase started: its break, and how to stop it. */
export interface ServiceSide {
  /** Where the case's user submits and reads results (default: rig.url, where the endpoint registered). */
  clientUrl?: string;
  /** Break something while the tasks run, and recover as an operator would. */
  chaos(ctx: CaseContext): Promise<void>;
  /** Stop what `start` started; called once the endpoint has been stopped, also when the case failed. */
  close(): Promise<void>;
}

export type ChaosCase = SimpleCase | ServiceCase;

/** Why a case cannot run here (it is then skipped, saying so), or undefined. */
export function skipReason(c: ChaosCase): string | undefined {
  if (c.postgres && postgresBackend.skip) return postgresBackend.skip;
  return undefined;
}

export interface RunOptions {
  /** Tasks per case. */
  tasks: number;
  /** How long each task sleeps (ms). */
  sleepMs: number;
  /** After the recovery, how long the remaining tasks get before they count as lost (ms). */
  graceMs: number;
  short: boolean;
  /** Keep the temporary folders even when the case passed. */
  keep: boolean;
  /** Progress lines (stderr). */
  progress(line: string): void;
}

export interface CaseResult extends Counts {
  case: string;
  title: string;
  notes: string[];
  /** Figures the case measured (ctx.figure), e.g. { outage_503: 41 }. */
  figures: Record<string, number>;
  /** Set when the case could not run as designed (the break did not happen, a program failed). */
  error?: string;
  /** Set when the case could not run here at all (no PostgreSQL): why. Its counts are then all 0. */
  skipped?: string;
}

/** Tasks per case: the full run and the short (CI) one. */
export const FULL_TASKS = 1000;
export const SHORT_TASKS = 200;
/** Each task sleeps this long, so work is in flight when something breaks. */
export const TASK_SLEEP_MS = 40;

/** The options of a full or short run (progress to stderr). */
export function runOptions(short: boolean): RunOptions {
  return {
    tasks: short ? SHORT_TASKS : FULL_TASKS,
    sleepMs: TASK_SLEEP_MS,
    graceMs: short ? 60_000 : 120_000,
    short,
    keep: false,
    progress: (m) => process.stderr.write(`… ${m}\n`),
  };
}

/** Run one case end to end; never throws (a failure is reported in `error`). */
export async function runCase(c: ChaosCase, o: RunOptions): Promise<CaseResult> {
  const notes: string[] = [];
  const figures: Record<string, number> = {};
  const progress = (m: string) => o.progress(`[${c.name}] ${m}`);
  const tasks = c.tasks ? c.tasks(o) : o.tasks;
  const skipped = skipReason(c);
  if (skipped) {
    progress(`skipped: ${skipped}`);
    const none: Counts = { submitted: 0, completed: 0, failed: 0, lost: 0, wrong: 0, failureTypes: {}, failureExamples: {}, lostStates: {}, seconds: 0 };
    return { case: c.name, title: c.title, ...none, notes: [`skipped: ${skipped}`], figures, skipped };
  }
  let counts: Counts | undefined;
  let error: string | undefined;
  let rig: Rig | undefined;
  let side: ServiceSide | undefined;
  const t0 = Date.now();
  try {
    if (c.slurm) {
      progress('starting the Slurm test cluster (ensureSlurm)');
      await ensureSlurm();
    }
    rig = Rig.create(c.name);
    progress(`service and endpoint in ${rig.root}`);
    if ('start' in c) side = await c.start(rig, progress);
    else await rig.startService(0, c.serviceArgs);
    await rig.addUser();
    await rig.initEndpoint();
    rig.writeProfile(c.profile());
    await rig.startEndpoint();
    const client = rig.client(side?.clientUrl);
    // The last tasks wait for this file, written once the case's breaks are done: work is in flight at each.
    const gate = join(rig.root, 'gate-open');
    const ids = await submitTasks(client, rig.endpointId, tasks, o.sleepMs, gate);
    progress(`${ids.length} tasks submitted (the last ${ids.length - Math.floor(ids.length * GATED_FROM)} wait for the gate)`);
    const collector = new Collector(client, ids);
    const r = rig;
    const ctx: CaseContext = {
      rig: r,
      collector,
      short: o.short,
      note: (line) => {
        notes.push(line);
        progress(line);
      },
      broke: (what) => {
        const inFlight = collector.pending;
        const line = `${what}: ${inFlight} tasks had no result yet`;
        notes.push(line);
        progress(line);
        if (inFlight === 0) throw new Error(`${what} came after the last result: nothing was in flight (submit more tasks)`);
      },
      figure: (name, value) => {
        figures[name] = value;
      },
    };
    try {
      await ('start' in c ? side!.chaos(ctx) : c.chaos(ctx));
    } catch (err) {
      error = `the break/recovery failed: ${(err as Error).message}`;
      progress(error);
    } finally {
      writeFileSync(gate, '');
    }
    collector.finishWithin(o.graceMs);
    counts = await collector.done;
    for (const [type, message] of Object.entries(counts.failureExamples)) notes.push(`a ${type} failure reads: ${message}`);
    if (counts.lost > 0) {
      notes.push(`lost tasks were last ${JSON.stringify(counts.lostStates)}; endpoint log tail:\n${indent(rig.logTail())}`);
    }
  } catch (err) {
    error = (err as Error).message;
    progress(`failed: ${error}`);
  } finally {
    const failedCase = error !== undefined || (counts?.lost ?? 1) > 0;
    if (rig) {
      const s = side;
      await rig.teardown(!failedCase && !o.keep, s && (() => s.close())).catch((err: Error) => notes.push(`teardown: ${err.message}`));
      for (const l of rig.leftovers) notes.push(`left behind: ${l}`);
      if (failedCase || o.keep) notes.push(`kept ${rig.root} (service.log, endpoint.log, submit_scripts/)`);
    }
  }
  const base: Counts = counts ?? {
    // It never got to count: every task it was to run counts as lost, so the case cannot pass.
    submitted: tasks, completed: 0, failed: 0, lost: tasks, wrong: 0, failureTypes: {}, failureExamples: {}, lostStates: {}, seconds: (Date.now() - t0) / 1000,
  };
  return { case: c.name, title: c.title, ...base, notes, figures, ...(error ? { error } : {}) };
}

function indent(text: string): string {
  return text.replace(/^/gm, '    ');
}
