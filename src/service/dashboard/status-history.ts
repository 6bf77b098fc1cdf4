/**
 * What the dashboard shows of each endpoint over time, kept in memory and bounded: one numeric sample per
 * collection (an hour's worth at the collection period), the latest full report, the blocks seen with their
 * state transitions (the newest 200), and the strategy's distinct decisions (the newest 20).
 */
import { Ring } from './ring.js';

/** One point of the charts. `success`/`failed`: results stored since the service started (cumulative). */
export interface StatusSample {
  t: number;
  backlog: number;
  pending: number;
  managers: number;
  workersBusy: number;
  workersIdle: number;
  blocks: number;
  blocksRunning: number;
  blocksPending: number;
  success: number;
  failed: number;
}

/** A block as the dashboard draws it on the timeline. */
export interface BlockHistory {
  id: string;
  jobId: string | null;
  nodes: number;
  firstSeen: number;
  lastSeen: number;
  state: string;
  detail?: string;
  /** Each state change as first seen: submitting → pending → running (draining) → ended. */
  states: Array<{ state: string; at: number }>;
  ended: boolean;
}

export interface DecisionHistory { at: number; reason: string; kinds: string[] }

/** The parts of an endpoint's status report (EngineStatus plus the daemon's host facts) the history reads. */
export interface ReportLike {
  backlog?: number;
  pending?: number;
  managers?: Array<{ workers: number; outstanding: number }>;
  blocks?: Array<{ id: string; jobId: string | null; state: string; nodes: number; phase?: string; reason?: string; detail?: string; busyWorkers?: number; idleWorkers?: number; managers?: number }>;
  decision?: { at: number; reason: string; submit: unknown[]; hold: unknown[]; release: unknown[]; cancel: unknown[]; drain: unknown[] } | null;
}

const MAX_BLOCKS = 200;
const MAX_DECISIONS = 20;

export class EndpointHistory {
  readonly samples: Ring<StatusSample>;
  report: unknown = null;
  reportAt = 0;
  reportError: string | null = null;
  private readonly blocks = new Map<string, BlockHistory>();
  readonly decisions = new Ring<DecisionHistory>(MAX_DECISIONS);

  constructor(capacity: number) {
    this.samples = new Ring(capacity);
  }

  /** Record one collection: the report (null when the endpoint did not answer) and the result counts. */
  record(now: number, report: ReportLike | null, counts: { success: number; failed: number }, error: string | null = null): StatusSample {
    if (report) {
      this.report = report;
      this.reportAt = now;
    }
    this.reportError = error;
    const r = report ?? {};
    let busy = 0;
    let idle = 0;
    let running = 0;
    let pending = 0;
    for (const b of r.blocks ?? []) {
      busy += b.busyWorkers ?? 0;
      idle += b.idleWorkers ?? 0;
      if (b.state === 'running') running++;
      else if (b.state === 'pending' || b.state === 'submitting') pending++;
    }
    const sample: StatusSample = {
      t: now,
      backlog: r.backlog ?? 0,
      pending: r.pending ?? 0,
      managers: r.managers?.length ?? 0,
      workersBusy: busy,
      workersIdle: idle,
      blocks: r.blocks?.length ?? 0,
      blocksRunning: running,
      blocksPending: pending,
      success: counts.success,
      failed: counts.failed,
    };
    this.samples.push(sample);
    if (report) this.noteBlocks(now, report);
    const d = r.decision;
    // A new entry when what was decided changes (the strategy decides every period, mostly the same).
    if (d && d.reason !== this.decisions.last()?.reason) {
      const kinds = (['submit', 'hold', 'release', 'cancel', 'drain'] as const).filter((k) => (d[k]?.length ?? 0) > 0);
      this.decisions.push({ at: d.at, reason: d.reason, kinds: kinds.length ? kinds : ['none'] });
    }
    return sample;
  }

  private noteBlocks(now: number, report: ReportLike): void {
    const seen = new Set<string>();
    for (const b of report.blocks ?? []) {
      seen.add(b.id);
      const state = b.phase === 'draining' && b.state === 'running' ? 'draining' : b.state;
      let h = this.blocks.get(b.id);
      if (!h) {
        h = { id: b.id, jobId: b.jobId, nodes: b.nodes, firstSeen: now, lastSeen: now, state, states: [{ state, at: now }], ended: false };
        this.blocks.set(b.id, h);
      }
      h.lastSeen = now;
      h.jobId = b.jobId;
      h.detail = b.detail;
      if (h.state !== state) h.states.push({ state, at: now });
      h.state = state;
    }
    // A block the report no longer lists has ended.
    for (const h of this.blocks.values()) {
      if (!h.ended && !seen.has(h.id)) {
        h.ended = true;
        h.states.push({ state: 'ended', at: now });
        h.state = 'ended';
      }
    }
    while (this.blocks.size > MAX_BLOCKS) this.blocks.delete(this.blocks.keys().next().value as string);
  }

  blockTimeline(): BlockHistory[] {
    return [...this.blocks.values()];
  }
}
