/**
 * An endpoint for service tests: the real registration and the real ForwarderClient, with tasks run in
 * this process (js functions compiled the way the worker does, shell commands with /bin/sh).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ForwarderClient } from '../../src/endpoint/service-link/forwarder-client.js';
import { registerEndpoint } from '../../src/endpoint/service-link/registration.js';
import type { ForwarderAddress } from '../../src/protocol/forwarder-messages.js';
import { newKeyPair, type CurveKeyPair } from '../../src/protocol/keys.js';
import type { ResultEnvelope, TaskEnvelope } from '../../src/protocol/messages.js';
import { decodeArgs, decodeTask, encodeOutcome } from '../../src/protocol/payload.js';

export interface FakeEndpointOptions {
  name?: string;
  endpointId?: string;
  keys?: CurveKeyPair;
  resultsDir?: string;
  /** Credit kept outstanding. @default 100 */
  window?: number;
  /** Wait this long before answering each task. */
  delayMs?: number;
  /** Keep tasks without answering (see `answerHeld`). */
  hold?: boolean;
  /** Register first. @default true (otherwise `forwarder` and `endpointId` are used as given) */
  register?: boolean;
  forwarder?: ForwarderAddress;
  /** Passed to ForwarderClient: how to find the forwarder again when it is lost. */
  reregister?: () => Promise<ForwarderAddress>;
  /** Passed to ForwarderClient: write a result batch once unacknowledged this long (ms). */
  spoolAfterMs?: number;
}

const createdDirs: string[] = [];

/** Remove the temporary folders fake endpoints made (call once the tests are done). */
export function removeFakeEndpointDirs(): void {
  for (const dir of createdDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** Run a task body like the worker: js via `return (source)`, shell via /bin/sh -c. */
export async function execute(task: TaskEnvelope): Promise<ResultEnvelope> {
  const body = decodeTask(task.payload);
  try {
    let value: unknown;
    if (body.kind === 'js') {
      const fn = new Function(`"use strict"; return (${body.source});`)() as (...a: unknown[]) => unknown;
      value = await fn(...decodeArgs(body.args));
    } else if (body.kind === 'shell') {
      const r = spawnSync('/bin/sh', ['-c', body.command], { encoding: 'utf8' });
      value = { returncode: r.status ?? 1, stdout: r.stdout, stderr: r.stderr, timedOut: false };
    } else {
      throw new Error('mpi is not run by the fake endpoint');
    }
    return { id: task.id, failed: false, payload: encodeOutcome({ ok: true, value }) };
  } catch (err) {
    const e = err as Error;
    return { id: task.id, failed: true, payload: encodeOutcome({ ok: false, error: { type: e.name, message: e.message } }) };
  }
}

export class FakeEndpoint {
  /** Ids of tasks this endpoint ran, in order. */
  readonly executed: string[] = [];
  /** The submitting user (`u`) of each task it ran, by task id: undefined for the owner's. */
  readonly submitters = new Map<string, string | undefined>();
  readonly heldTasks: TaskEnvelope[] = [];
  /** Largest number of tasks received in one message. */
  maxBatch = 0;
  delayMs: number;
  /** What a `status` command answers. */
  report: unknown = {};
  stopRequested = false;

  private constructor(
    readonly id: string,
    readonly keys: CurveKeyPair,
    readonly resultsDir: string,
    readonly forwarder: ForwarderAddress,
    readonly client: ForwarderClient,
    private readonly options: FakeEndpointOptions,
  ) {
    this.delayMs = options.delayMs ?? 0;
  }

  static async start(serviceUrl: string, token: string, options: FakeEndpointOptions = {}): Promise<FakeEndpoint> {
    const keys = options.keys ?? newKeyPair();
    let resultsDir = options.resultsDir;
    if (!resultsDir) {
      const dir = mkdtempSync(join(tmpdir(), 'funcx-fake-endpoint-'));
      createdDirs.push(dir);
      resultsDir = join(dir, 'results');
    }
    let endpointId = options.endpointId;
    let forwarder = options.forwarder;
    if (options.register !== false) {
      const reg = await registerEndpoint(serviceUrl, token, { name: options.name ?? 'ep', endpointId, publicKey: keys.publicKey });
      endpointId = reg.endpointId;
      forwarder = reg.forwarder;
    }
    const client = new ForwarderClient({ endpointId: endpointId!, forwarder: forwarder!, keys, resultsDir, window: options.window ?? 100, connectTimeoutMs: 5000, reregister: options.reregister, spoolAfterMs: options.spoolAfterMs });
    const ep = new FakeEndpoint(endpointId!, keys, resultsDir, forwarder!, client, options);
    client.on('tasks', (tasks) => ep.onTasks(tasks));
    client.on('command', (command, reply) => {
      if (command.name === 'stop') ep.stopRequested = true;
      reply({ ok: true, result: command.name === 'status' ? ep.report : null });
    });
    try {
      await client.start();
    } catch (err) {
      await client.close();
      throw err;
    }
    return ep;
  }

  private onTasks(tasks: TaskEnvelope[]): void {
    this.maxBatch = Math.max(this.maxBatch, tasks.length);
    this.client.markRunning(tasks.map((t) => t.id));
    if (this.options.hold) {
      this.heldTasks.push(...tasks);
      return;
    }
    for (const task of tasks) {
      this.executed.push(task.id);
      this.submitters.set(task.id, task.u);
      const answer = async () => {
        if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
        await this.client.sendResults([await execute(task)]);
      };
      void answer();
    }
  }

  /** Answer every held task with `value` (the promise resolves once the batch is acknowledged or on disk). */
  answerHeld(value: unknown): Promise<void> {
    const results = this.heldTasks.map((t) => ({ id: t.id, failed: false, payload: encodeOutcome({ ok: true, value }) }));
    return this.client.sendResults(results);
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
