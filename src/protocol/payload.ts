/**
 * What travels inside a task's opaque payload and a result's opaque payload.
 *
 * The service, forwarder, interchange and manager route these bytes without decoding them; only the SDK
 * (which builds and reads them) and the worker (which runs them) look inside. They use V8's structured-clone
 * serializer so Dates, Maps, Sets, Buffers, typed arrays, BigInts and Errors survive the trip.
 */
import { serialize, deserialize } from 'node:v8';
import { ProtocolError } from '../errors.js';

/** A JavaScript function given as source, run with arguments. */
export interface JsTaskBody {
  kind: 'js';
  /** Stable id of the function (the service's function UUID); the worker compiles once per id and caches. */
  functionId: string;
  /** Source of a function expression or declaration, e.g. `(a, b) => a + b` or `async function f(x) {...}`. */
  source: string;
  /** The arguments, already serialized with `encodeArgs` (so the service can build a payload without decoding them). */
  args: Uint8Array;
}

/** A shell command line run with /bin/sh -c. */
export interface ShellTaskBody {
  kind: 'shell';
  command: string;
  /** Kill the command after this long; the result then has returncode 124 and `timedOut`. */
  walltimeMs?: number;
  cwd?: string;
  env?: Record<string, string>;
}

/** An MPI application: `command` is run under the launcher named by the manager (e.g. srun/mpiexec) with `ranks` ranks. */
export interface MpiTaskBody {
  kind: 'mpi';
  command: string;
  ranks: number;
  walltimeMs?: number;
}

export type TaskBody = JsTaskBody | ShellTaskBody | MpiTaskBody;

/** What a shell or MPI task returns. */
export interface ShellResult {
  returncode: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/**
 * Why a task failed, in words a person can act on. `type` is the error's class name on the worker
 * (e.g. "TypeError") or one of ours: "ManagerLost", "WorkerLost", "WalltimeExceeded", "FunctionNotAllowed",
 * "ResultTooLarge", "TaskCancelled", "InvalidTask".
 */
export interface RemoteErrorInfo {
  type: string;
  message: string;
  stack?: string;
}

export type Outcome = { ok: true; value: unknown } | { ok: false; error: RemoteErrorInfo };

export function encodeArgs(args: readonly unknown[]): Uint8Array {
  return serialize(args);
}

export function decodeArgs(bytes: Uint8Array): unknown[] {
  const value = deserialize(bytes);
  if (!Array.isArray(value)) throw new ProtocolError('task arguments are not an array');
  return value;
}

export function encodeTask(body: TaskBody): Buffer {
  return serialize(body);
}

export function decodeTask(bytes: Uint8Array): TaskBody {
  let body: unknown;
  try {
    body = deserialize(bytes);
  } catch (err) {
    throw new ProtocolError(`task payload is not a serialized task: ${(err as Error).message}`);
  }
  const kind = (body as { kind?: unknown } | null)?.kind;
  if (kind !== 'js' && kind !== 'shell' && kind !== 'mpi') {
    throw new ProtocolError(`task payload has unknown kind ${JSON.stringify(kind)}`);
  }
  return body as TaskBody;
}

export function encodeOutcome(outcome: Outcome): Buffer {
  return serialize(outcome);
}

export function decodeOutcome(bytes: Uint8Array): Outcome {
  const outcome = deserialize(bytes) as Outcome;
  if (outcome === null || typeof outcome !== 'object' || typeof outcome.ok !== 'boolean') {
    throw new ProtocolError('result payload is not a serialized outcome');
  }
  return outcome;
}

/** The payload of a failure made by the system itself (lost manager, refused function, ...). */
export function errorOutcome(type: string, message: string): Buffer {
  return encodeOutcome({ ok: false, error: { type, message } });
}

/** The error a caller sees when a task failed remotely. */
export class RemoteError extends Error {
  readonly remoteType: string;
  readonly remoteStack?: string;
  constructor(info: RemoteErrorInfo) {
    super(`${info.type}: ${info.message}`);
    this.name = 'RemoteError';
    this.remoteType = info.type;
    this.remoteStack = info.stack;
  }
}
