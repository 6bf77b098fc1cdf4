/**
 * The abuse run (`npm run chaos -- --only abuse [--json] [--rate N] [--baseline-s S] [--attack-s S]`):
 * one real funcx-service with its defaults, three honest users sharing one real endpoint (a group with
 * consent) at a steady open-loop rate, and one user, mallory, with her own endpoint, who replays the attacks
 * of issue 11 for `--attack-s` seconds: duplicate-id result fetches of a 1 MiB result, oversized results,
 * 1M-character function bodies (until the functions quota) and tasks naming them (until the tasks quota),
 * batches over the caps (count and body), endpoint registration floods (until the endpoints quota, then
 * delete and again), and group spam (groups with invitations to the honest users).
 *
 * Measured: the service's peak RSS (VmHWM), the growth of its database files over the attack, honest tasks
 * without a result by the end (lost), and the honest tasks' median latency (submit → result seen by a
 * long-poll) before the attack (baseline) and during it. The last line with --json is one JSON object.
 */
import { readFileSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { FuncXClient } from '../../src/sdk/client.js';
import Database from 'better-sqlite3';
import { Rig } from './harness.js';
import { AttackerThread, call } from './abuse-attacker.js';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { localProfile } from './profiles.js';

export interface AbuseOptions {
  /** Honest tasks per second, all three users together. */
  rate: number;
  baselineS: number;
  attackS: number;
  /** After the load stops, how long the honest tasks get for their results. */
  graceS: number;
  keep: boolean;
  /** Attacks left out (their names as in the report), to tell which one costs what. */
  skip: string[];
  /** Niceness of mallory's endpoint (its daemon, managers and workers). */
  malloryNice: number;
  progress(line: string): void;
}

export interface AbuseResult {
  abuse_service_peak_rss_mib: number;
  abuse_db_growth_mib: number;
  abuse_honest_lost: number;
  abuse_honest_failed: number;
  abuse_honest_p50_ms: number;
  baseline_honest_p50_ms: number;
  abuse_honest_rate_per_s: number;
  abuse_honest_achieved_per_s: number;
  abuse_honest_submitted: number;
  /** The longest the service did not answer /v1/health (2 s timeout, asked every second) during the run. */
  abuse_service_unresponsive_s: number;
  /**
   * The honest tasks' median time from received to result stored, as the service's database records it (no
   * client, HTTP or long-poll in it): what another user's attack costs inside the service and endpoint.
   */
  abuse_honest_service_p50_ms: number;
  baseline_honest_service_p50_ms: number;
  /** The runner's event-loop delay p99 during the attack (its honest clients' latency includes it). */
  abuse_runner_loop_delay_p99_ms: number;
  baseline_runner_loop_delay_p99_ms: number;
  /** What each attack got back (status code → count). */
  attacks: Record<string, Record<string, number>>;
  notes: string[];
  error?: string;
}

function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** One honest user: submits at a steady rate, follows the results with long-polls, records each latency. */
class HonestLoad {
  private readonly submittedAt = new Map<string, number>();
  private readonly phaseOf = new Map<string, 'baseline' | 'attack'>();
  readonly latencies = { baseline: [] as number[], attack: [] as number[] };
  failed = 0;
  submitted = 0;
  received = 0;
  phase: 'baseline' | 'attack' = 'baseline';
  private submitting = true;
  private following = true;
  lastError = '';

  constructor(
    private readonly url: string,
    private readonly token: string,
    private readonly endpointId: string,
    private readonly functionId: string,
    private readonly client: FuncXClient,
  ) {}

  async submitLoop(perSecond: number): Promise<void> {
    const tickMs = 100;
    const start = Date.now();
    let sent = 0;
    let i = 0;
    while (this.submitting) {
      const due = Math.floor(((Date.now() - start) / 1000) * perSecond) - sent;
      if (due > 0) {
        const batch = this.client.createBatch();
        for (let k = 0; k < due; k++) batch.add(this.endpointId, this.functionId, i++);
        try {
          const t = Date.now();
          const ids = await this.client.batchRun(batch);
          for (const id of ids) {
            this.submittedAt.set(id, t);
            this.phaseOf.set(id, this.phase);
          }
          this.submitted += ids.length;
        } catch (err) {
          this.lastError = `submit: ${(err as Error).message}`;
        }
        sent += due;
      }
      await delay(tickMs); // the load's pace: a steady rate, not a wait for an event
    }
  }

  async followLoop(): Promise<void> {
    while (this.following || this.submittedAt.size > 0) {
      const ids = [...this.submittedAt.keys()].slice(0, 10_000);
      if (ids.length === 0) {
        await delay(50); // nothing submitted yet
        continue;
      }
      try {
        const r = await call(this.url, this.token, 'POST', '/v1/tasks/results?wait=2', { ids, mode: 'any' });
        const now = Date.now();
        if (r.status !== 200) throw new Error(`results: ${r.status} ${String(r.json.message)}`);
        for (const v of r.json.results as Array<{ taskId: string; failed?: boolean }>) {
          const t = this.submittedAt.get(v.taskId);
          if (t === undefined) continue;
          this.submittedAt.delete(v.taskId);
          this.received++;
          if (v.failed) this.failed++;
          this.latencies[this.phaseOf.get(v.taskId)!].push(now - t);
          this.phaseOf.delete(v.taskId);
        }
      } catch (err) {
        this.lastError = (err as Error).message;
        await delay(200); // the service refused: ask again a little later
      }
      if (!this.following && this.submittedAt.size > 0 && Date.now() > this.giveUpAt) break;
    }
  }

  private giveUpAt = Infinity;
  stopSubmitting(): void {
    this.submitting = false;
  }
  stopFollowing(graceMs: number): void {
    this.following = false;
    this.giveUpAt = Date.now() + graceMs;
  }
  get pending(): number {
    return this.submittedAt.size;
  }
}

function rssOf(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

function dbBytes(serviceHome: string): number {
  let total = 0;
  for (const f of ['service.db', 'service.db-wal', 'service.db-shm']) {
    const p = join(serviceHome, f);
    if (existsSync(p)) total += statSync(p).size;
  }
  return total;
}

const HONEST = ['honest1', 'honest2', 'honest3'] as const;

/** Median received → stored of the honest users' finished tasks, submitted before the attack and during it. */
function honestServiceLatency(serviceHome: string, attackStart: number, attackEnd: number): { baseline: number; attack: number } {
  const db = new Database(join(serviceHome, 'service.db'), { readonly: true });
  try {
    const rows = db.prepare(`SELECT t.created_at AS c, t.updated_at AS u FROM tasks t JOIN users x ON x.id = t.owner
      WHERE x.name IN (${HONEST.map(() => '?').join(', ')}) AND t.state IN ('success', 'failed')`).all(...HONEST) as Array<{ c: number; u: number }>;
    return {
      baseline: median(rows.filter((r) => r.c < attackStart).map((r) => r.u - r.c)),
      attack: median(rows.filter((r) => r.c >= attackStart && r.c < attackEnd).map((r) => r.u - r.c)),
    };
  } finally {
    db.close();
  }
}

export async function runAbuse(o: AbuseOptions): Promise<AbuseResult> {
  const notes: string[] = [];
  const note = (l: string) => (notes.push(l), o.progress(l));
  const rig = Rig.create('abuse');
  const mal = Rig.create('abuse-mallory');
  let ok = false;
  const result: AbuseResult = {
    abuse_service_peak_rss_mib: NaN, abuse_db_growth_mib: NaN, abuse_honest_lost: NaN, abuse_honest_failed: NaN, abuse_honest_p50_ms: NaN,
    baseline_honest_p50_ms: NaN, abuse_honest_rate_per_s: o.rate, abuse_honest_achieved_per_s: NaN, abuse_honest_submitted: 0, abuse_service_unresponsive_s: 0, abuse_honest_service_p50_ms: NaN, baseline_honest_service_p50_ms: NaN, abuse_runner_loop_delay_p99_ms: NaN, baseline_runner_loop_delay_p99_ms: NaN, attacks: {}, notes,
  };
  let attacker: AttackerThread | undefined;
  try {
    note(`service and the honest endpoint in ${rig.root}; mallory's endpoint in ${mal.root}`);
    await rig.startService();
    const tokens: Record<string, string> = {};
    for (const name of [...HONEST, 'mallory']) {
      const out = await rig.cli('service', ['user', 'add', name]);
      tokens[name] = /fx_[A-Za-z0-9_-]+/.exec(out)![0];
    }
    const url = rig.url;
    // The honest endpoint belongs to honest1, shared with honest2 and honest3 through a group they accepted,
    // as its profile says (shared_with, and any function of the group's members).
    rig.token = tokens.honest1;
    rig.env.FUNCX_TOKEN = tokens.honest1;
    const clients = Object.fromEntries(HONEST.map((n) => [n, new FuncXClient({ serviceUrl: url, token: tokens[n] })])) as Record<string, FuncXClient>;
    await clients.honest1.createGroup('lab');
    for (const n of ['honest2', 'honest3']) {
      await clients.honest1.addGroupMember('lab', n);
      await clients[n].acceptInvitation('lab');
    }
    await rig.initEndpoint();
    rig.writeProfile(localProfile().replace('  engine:', "  shared_with: 'lab',\n  allow_any_function_from: 'lab',\n  engine:"));
    await rig.startEndpoint();
    const fn = await clients.honest1.registerFunction('(i) => i', { name: 'echo', group: 'lab' });

    mal.url = url;
    mal.env.FUNCX_SERVICE_URL = url;
    mal.token = tokens.mallory;
    mal.env.FUNCX_TOKEN = tokens.mallory;
    // Mallory's endpoint stands for her own cluster: at `malloryNice` its processes take this machine's two
    // cores only when the service and the honest endpoint leave them idle (0: they compete as equals).
    mal.nice = o.malloryNice;
    await mal.initEndpoint();
    mal.writeProfile(localProfile());
    await mal.startEndpoint();
    attacker = new AttackerThread({ url, token: tokens.mallory, endpointId: mal.endpointId, skip: o.skip });
    if (o.skip.length) note(`attacks left out: ${o.skip.join(', ')}`);
    await attacker.prepare();
    note('mallory has a 1 MiB result stored on her endpoint');

    const pid = rig.servicePid();
    let peak = 0;
    const sampler = setInterval(() => {
      try {
        peak = Math.max(peak, rssOf(pid).hwm);
      } catch {
        /* gone */
      }
    }, 200);
    // Is the service still answering? The longest stretch without an answer to /v1/health.
    let lastAnswer = Date.now();
    let longestSilence = 0;
    let watching = true;
    const watchdog = (async () => {
      while (watching) {
        const ok = await fetch(`${url}/v1/health`, { signal: AbortSignal.timeout(2000) }).then((r) => r.ok, () => false);
        const now = Date.now();
        if (ok) lastAnswer = now;
        longestSilence = Math.max(longestSilence, now - lastAnswer);
        await delay(1000); // a health probe's pace
      }
    })();

    const loads = HONEST.map((n) => new HonestLoad(url, tokens[n], rig.endpointId, fn, clients[n]));
    const submitters = loads.map((l) => l.submitLoop(o.rate / loads.length));
    const followers = loads.map((l) => l.followLoop());
    note(`honest load: ${o.rate} tasks/s from three users; baseline ${o.baselineS} s`);
    // The runner's own event loop: a stalled loop would delay the honest clients whose latency it measures.
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    await delay(o.baselineS * 1000); // the baseline phase lasts this long by design
    const db0 = dbBytes(rig.serviceHome);
    const rssBefore = rssOf(pid);
    for (const l of loads) l.phase = 'attack';
    note(`attack for ${o.attackS} s (service RSS ${rssBefore.rss.toFixed(0)} MiB, database ${(db0 / 2 ** 20).toFixed(1)} MiB)`);
    const attackStart = Date.now();
    const baselineLoopP99 = loopDelay.percentile(99);
    loopDelay.reset();
    const outcomes = await attacker.run(attackStart + o.attackS * 1000);
    loopDelay.disable();
    const attackEnd = Date.now();
    for (const l of loads) l.stopSubmitting();
    await Promise.all(submitters);
    const db1 = dbBytes(rig.serviceHome);
    for (const l of loads) l.stopFollowing(o.graceS * 1000);
    await Promise.all(followers);
    clearInterval(sampler);
    watching = false;
    await watchdog;
    let hwm = 0;
    try {
      hwm = rssOf(pid).hwm;
    } catch {
      note('the service process is gone (killed, or it died): its peak RSS is the last sample');
    }
    const inService = honestServiceLatency(rig.serviceHome, attackStart, attackEnd);
    const submitted = loads.reduce((s, l) => s + l.submitted, 0);
    Object.assign(result, {
      abuse_service_peak_rss_mib: Math.round(Math.max(peak, hwm)),
      abuse_db_growth_mib: Math.round(((db1 - db0) / 2 ** 20) * 10) / 10,
      abuse_honest_lost: loads.reduce((s, l) => s + l.pending, 0),
      abuse_honest_failed: loads.reduce((s, l) => s + l.failed, 0),
      abuse_honest_p50_ms: median(loads.flatMap((l) => l.latencies.attack)),
      baseline_honest_p50_ms: median(loads.flatMap((l) => l.latencies.baseline)),
      abuse_honest_achieved_per_s: Math.round(submitted / (o.baselineS + (attackEnd - attackStart) / 1000)),
      abuse_honest_submitted: submitted,
      abuse_service_unresponsive_s: Math.round(longestSilence / 100) / 10,
      abuse_honest_service_p50_ms: inService.attack,
      baseline_honest_service_p50_ms: inService.baseline,
      abuse_runner_loop_delay_p99_ms: Math.round(loopDelay.percentile(99) / 1e5) / 10,
      baseline_runner_loop_delay_p99_ms: Math.round(baselineLoopP99 / 1e5) / 10,
      attacks: outcomes,
    });
    for (const l of loads) if (l.lastError) note(`an honest user's last error: ${l.lastError}`);
    ok = result.abuse_honest_lost === 0;
  } catch (err) {
    result.error = (err as Error).message;
    note(`failed: ${result.error}`);
  } finally {
    await attacker?.close();
    await mal.teardown(ok && !o.keep).catch((err: Error) => notes.push(`teardown: ${err.message}`));
    await rig.teardown(ok && !o.keep).catch((err: Error) => notes.push(`teardown: ${err.message}`));
    if (!ok || o.keep) notes.push(`kept ${rig.root} and ${mal.root}`);
  }
  return result;
}
