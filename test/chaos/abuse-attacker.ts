/**
 * Mallory, the abuse run's attacker (abuse.ts), in a worker thread of her own: her requests build and parse
 * bodies of tens of MiB (a 32 MiB results reply, a 65 MiB submission), and in the runner's thread that work
 * stalled the honest users' clients, whose latency the run measures. A real attacker is not in the honest
 * users' process; here she shares only the machine's cores with them.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { randomBytes } from 'node:crypto';
import { newKeyPair } from '../../src/protocol/keys.js';
import { PROTOCOL_VERSION } from '../../src/protocol/forwarder-messages.js';
import { FuncXClient } from '../../src/sdk/client.js';

/** Raw HTTP for the attacker (the SDK would split and dedupe for her). */
export async function call(url: string, token: string, method: string, path: string, body?: unknown, raw?: Buffer): Promise<{ status: number; json: Record<string, unknown> }> {
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


interface AttackerData {
  role: 'abuse-attacker';
  url: string;
  token: string;
  endpointId: string;
  skip: string[];
}
type FromAttacker = { kind: 'prepared' } | { kind: 'done'; outcomes: Record<string, Record<string, number>> } | { kind: 'error'; message: string };

/** The attacker's thread: `prepare()` resolves once her 1 MiB result is stored, `run(until)` with what each attack got. */
export class AttackerThread {
  private readonly worker: Worker;
  private readonly messages: FromAttacker[] = [];
  private wake: (() => void) | undefined;
  private failure: Error | undefined;

  constructor(data: Omit<AttackerData, 'role'>) {
    this.worker = new Worker(new URL(import.meta.url), { workerData: { role: 'abuse-attacker', ...data } satisfies AttackerData });
    this.worker.on('message', (m: FromAttacker) => (this.messages.push(m), this.wake?.()));
    this.worker.on('error', (err) => ((this.failure = err), this.wake?.()));
    this.worker.on('exit', (code) => ((this.failure ??= new Error(`the attacker's thread exited (${code})`)), this.wake?.()));
  }

  private async next(): Promise<FromAttacker> {
    for (;;) {
      const m = this.messages.shift();
      if (m?.kind === 'error') throw new Error(`attacker: ${m.message}`);
      if (m) return m;
      if (this.failure) throw this.failure;
      await new Promise<void>((r) => (this.wake = r));
    }
  }

  async prepare(): Promise<void> {
    await this.next();
  }

  async run(untilMs: number): Promise<Record<string, Record<string, number>>> {
    this.worker.postMessage({ untilMs });
    const m = await this.next();
    return m.kind === 'done' ? m.outcomes : {};
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

if (!isMainThread && (workerData as AttackerData | undefined)?.role === 'abuse-attacker') {
  const d = workerData as AttackerData;
  const port = parentPort!;
  const attacker = new Attacker(d.url, d.token, d.endpointId, new FuncXClient({ serviceUrl: d.url, token: d.token }), d.skip);
  attacker.prepare().then(
    () => {
      port.postMessage({ kind: 'prepared' } satisfies FromAttacker);
      port.once('message', ({ untilMs }: { untilMs: number }) => {
        attacker.run(untilMs).then(
          () => port.postMessage({ kind: 'done', outcomes: attacker.outcomes } satisfies FromAttacker),
          (err: Error) => port.postMessage({ kind: 'error', message: err.message } satisfies FromAttacker),
        );
      });
    },
    (err: Error) => port.postMessage({ kind: 'error', message: err.message } satisfies FromAttacker),
  );
}
