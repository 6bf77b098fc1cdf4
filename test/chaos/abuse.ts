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
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { newKeyPair } from '../../src/protocol/keys.js';
import { PROTOCOL_VERSION } from '../../src/protocol/forwarder-messages.js';
import { FuncXClient } from '../../src/sdk/client.js';
import { Rig } from './harness.js';
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
  /** What each attack got back (status code → count). */
  attacks: Record<string, Record<string, number>>;
  notes: string[];
  error?: string;
}

/** Raw HTTP for the attacker (the SDK would split and dedupe for her). */
async function call(url: string, token: string, method: string, path: string, body?: unknown, raw?: Buffer): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined || raw ? { 'content-type': 'application/json' } : {}) },
    body: raw ? new Uint8Array(raw) : body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    /* not JSON */
  }
  return { status: r.status, json };
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

/** Mallory's attacks, one after the other, round after round until `until`. */
class Attacker {
  readonly outcomes: Record<string, Record<string, number>> = {};
  private readonly endpoints: string[] = [];
  private bigResultTask = '';

  constructor(
    private readonly url: string,
    private readonly token: string,
    private readonly endpointId: string,
    private readonly client: FuncXClient,
    private readonly skip: readonly string[] = [],
  ) {}

  private count(attack: string, status: number | string): void {
    const o = (this.outcomes[attack] ??= {});
    o[String(status)] = (o[String(status)] ?? 0) + 1;
  }

  async prepare(): Promise<void> {
    const fn = await this.client.registerFunction('(n) => "x".repeat(n)', { name: 'big' });
    const [task] = await this.client.batchRun(this.client.createBatch().add(this.endpointId, fn, 1024 * 1024));
    await this.client.getResult(task, { waitMs: 120_000 });
    this.bigResultTask = task;
    this.bigFn = fn;
  }
  private bigFn = '';

  async run(untilMs: number): Promise<void> {
    let round = 0;
    while (Date.now() < untilMs) {
      round++;
      const steps: Array<[string, () => Promise<void>]> = [
        ['duplicate-id-fetch', () => this.duplicateIds()],
        ['oversized-results', () => this.oversized()],
        ['huge-function-bodies', () => this.hugeFunctions()],
        ['tasks-naming-huge-function', () => this.tasksOfHugeFunction()],
        ['batch-over-count-cap', () => this.batchCap()],
        ['registration-flood', () => this.registrationFlood()],
        ['group-spam', () => this.groupSpam(round)],
      ];
      if (round % 5 === 1) steps.push(['body-over-64MiB', () => this.bodyCap()]);
      for (const [name, step] of steps) {
        if (Date.now() >= untilMs) break;
        if (this.skip.includes(name)) continue;
        try {
          await step();
        } catch (err) {
          this.count(name, `error: ${(err as Error).message.slice(0, 80)}`);
        }
      }
    }
  }

  /** 100,000 copies of the id of a 1 MiB result in one fetch (was: a 140 MB reply per 100 copies). */
  private async duplicateIds(): Promise<void> {
    for (let k = 0; k < 5; k++) {
      const r = await call(this.url, this.token, 'POST', '/v1/tasks/results', { ids: Array(100_000).fill(this.bigResultTask) });
      this.count('duplicate-id-fetch', r.status);
    }
  }

  /** Results over the 10 MB limit (the worker's limit is the endpoint owner's to change; the service's is not). */
  private async oversized(): Promise<void> {
    const batch = this.client.createBatch();
    for (let k = 0; k < 3; k++) batch.add(this.endpointId, this.bigFn, 12 * 1024 * 1024);
    const r = await call(this.url, this.token, 'POST', '/v1/tasks', { tasks: batch.tasks.map((t) => t) });
    this.count('oversized-results', r.status);
  }

  private hugeFnIds: string[] = [];
  /** 1M-character function sources until the functions quota answers 429. */
  private async hugeFunctions(): Promise<void> {
    for (let k = 0; k < 20; k++) {
      const source = `() => 1 /* ${'y'.repeat(1_000_000 - 20)} */`;
      const r = await call(this.url, this.token, 'POST', '/v1/functions', { name: `huge-${k}`, source });
      this.count('huge-function-bodies', r.status);
      if (r.status === 200) this.hugeFnIds.push(String(r.json.functionId));
      if (r.status === 429) break;
    }
  }

  /** Batches of 10,000 tasks naming a 1 MiB function (was: each task stored its own copy of the source). */
  private async tasksOfHugeFunction(): Promise<void> {
    const fn = this.hugeFnIds[0];
    if (!fn) return;
    const tasks = Array.from({ length: 10_000 }, () => ({ endpointId: this.endpointId, functionId: fn, args: '' }));
    const body = Buffer.from(JSON.stringify({ tasks }));
    for (let k = 0; k < 2; k++) {
      const r = await call(this.url, this.token, 'POST', '/v1/tasks', undefined, body);
      this.count('tasks-naming-huge-function', r.status);
      if (r.status === 429) break;
    }
  }

  private async batchCap(): Promise<void> {
    const tasks = Array.from({ length: 10_001 }, () => ({ endpointId: this.endpointId, shell: { command: 'true' } }));
    const r = await call(this.url, this.token, 'POST', '/v1/tasks', { tasks });
    this.count('batch-over-count-cap', r.status);
  }

  private async bodyCap(): Promise<void> {
    const r = await call(this.url, this.token, 'POST', '/v1/tasks', undefined, Buffer.from(`{"tasks":[{"endpointId":"${this.endpointId}","shell":{"command":"${'z'.repeat(65 * 1024 * 1024)}"}}]}`));
    this.count('body-over-64MiB', r.status);
  }

  /** New endpoints with fresh keys until the endpoints quota; then delete them all (their ports come back). */
  private async registrationFlood(): Promise<void> {
    for (let k = 0; k < 60; k++) {
      const r = await call(this.url, this.token, 'POST', '/v1/endpoints', { name: `flood-${k}`, publicKey: newKeyPair().publicKey, protocol: PROTOCOL_VERSION });
      this.count('registration-flood', r.status);
      if (r.status === 200) this.endpoints.push(String(r.json.endpointId));
      if (r.status !== 200) break;
    }
    while (this.endpoints.length > 0) {
      const r = await call(this.url, this.token, 'DELETE', `/v1/endpoints/${this.endpoints.pop()}`);
      this.count('registration-flood-delete', r.status);
    }
  }

  /** Groups with invitations to the honest users (and to names that do not exist, to probe them). */
  private async groupSpam(round: number): Promise<void> {
    for (let k = 0; k < 20; k++) {
      const name = `spam-${round}-${k}-${randomBytes(3).toString('hex')}`;
      const g = await call(this.url, this.token, 'POST', '/v1/groups', { name });
      this.count('group-spam-create', g.status);
      if (g.status !== 200) continue;
      for (const user of ['honest1', 'honest2', 'honest3', `nobody-${k}`]) {
        const r = await call(this.url, this.token, 'POST', `/v1/groups/${g.json.groupId}/members`, { user });
        this.count('group-spam-invite', r.status);
      }
    }
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

export async function runAbuse(o: AbuseOptions): Promise<AbuseResult> {
  const notes: string[] = [];
  const note = (l: string) => (notes.push(l), o.progress(l));
  const rig = Rig.create('abuse');
  const mal = Rig.create('abuse-mallory');
  let ok = false;
  const result: AbuseResult = {
    abuse_service_peak_rss_mib: NaN, abuse_db_growth_mib: NaN, abuse_honest_lost: NaN, abuse_honest_failed: NaN, abuse_honest_p50_ms: NaN,
    baseline_honest_p50_ms: NaN, abuse_honest_rate_per_s: o.rate, abuse_honest_achieved_per_s: NaN, abuse_honest_submitted: 0, abuse_service_unresponsive_s: 0, attacks: {}, notes,
  };
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
    await mal.initEndpoint();
    mal.writeProfile(localProfile());
    await mal.startEndpoint();
    const attacker = new Attacker(url, tokens.mallory, mal.endpointId, new FuncXClient({ serviceUrl: url, token: tokens.mallory }), o.skip);
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
    await delay(o.baselineS * 1000); // the baseline phase lasts this long by design
    const db0 = dbBytes(rig.serviceHome);
    const rssBefore = rssOf(pid);
    for (const l of loads) l.phase = 'attack';
    note(`attack for ${o.attackS} s (service RSS ${rssBefore.rss.toFixed(0)} MiB, database ${(db0 / 2 ** 20).toFixed(1)} MiB)`);
    const attackStart = Date.now();
    await attacker.run(attackStart + o.attackS * 1000);
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
      attacks: attacker.outcomes,
    });
    for (const l of loads) if (l.lastError) note(`an honest user's last error: ${l.lastError}`);
    ok = result.abuse_honest_lost === 0;
  } catch (err) {
    result.error = (err as Error).message;
    note(`failed: ${result.error}`);
  } finally {
    await mal.teardown(ok && !o.keep).catch((err: Error) => notes.push(`teardown: ${err.message}`));
    await rig.teardown(ok && !o.keep).catch((err: Error) => notes.push(`teardown: ${err.message}`));
    if (!ok || o.keep) notes.push(`kept ${rig.root} and ${mal.root}`);
  }
  return result;
}
