/**
 * What travels inside a task's opaque payload and a result's opaque payload.
 *
 * The service, forwarder, interchange and manager route these bytes without decoding them; only the SDK
 * (which builds and reads them) and the worker (which runs them) look inside. Arguments and values use V8's
 * structured-clone serializer so Dates, Maps, Sets, Buffers, typed arrays, BigInts and Errors survive the trip.
 *
 * Hot-path shortcuts (a profile showed V8's serializer objects dominating no-op tasks): the task body
 * around the arguments is msgpack, empty arguments are zero bytes, and an outcome whose value is null, a
 * boolean, a number or a string is msgpack behind a one-byte tag (V8's format always starts with 0xFF).
 */
import { serialize, deserialize } from 'node:v8';
import { Packr } from 'msgpackr';
import { ProtocolError } from '../errors.js';
import type { ResourceSpec } from './resource-spec.js';

const packr = new Packr({ useRecords: false, moreTypes: false });
const EMPTY = new Uint8Array(0);
/** First byte of an outcome in the compact (msgpack) form. */
const COMPACT_OUTCOME = 0x01;

/**
 * Where an MPI engine placed a task: the nodes it holds while it runs and the launch prefix for them
 * (`FUNCX_MPI_PREFIX`). Added by the block's manager, never by a user.
 */
export interface Placement {
  nodes: string[];
  prefix: string;
  /** Epoch ms when the manager gave the nodes (`FUNCX_MPI_PLACED_AT`, for measuring start latency). */
  at?: number;
}

/** Fields every task body may carry besides its own. */
export interface TaskResources {
  /** The task's resource specification (checked at submit); only an MPI engine acts on it. */
  resources?: ResourceSpec;
  placement?: Placement;
}

/** A JavaScript function given as source, run with arguments. */
export interface JsTaskBody extends TaskResources {
  kind: 'js';
  /** Stable id of the function (the service's function UUID); the worker compiles once per id and caches. */
  functionId: string;
  /** Source of a function expression or declaration, e.g. `(a, b) => a + b` or `async function f(x) {...}`. */
  source: string;
  /** The arguments, already serialized with `encodeArgs` (so the service can build a payload without decoding them). */
  args: Uint8Array;
}

/** A shell command line run with /bin/sh -c. */
export interface ShellTaskBody extends TaskResources {
  kind: 'shell';
  command: string;
  /** Kill the command after this long; the result then has returncode 124 and `timedOut`. */
  walltimeMs?: number;
  cwd?: string;
  env?: Record<string, string>;
}

/** An MPI application: `command` is run under the launcher named by the manager (e.g. srun/mpiexec) with `ranks` ranks. */
export interface MpiTaskBody extends TaskResources {
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
  return args.length === 0 ? EMPTY : serialize(args);
}

export function decodeArgs(bytes: Uint8Array): unknown[] {
  if (bytes.length === 0) return [];
  const value = deserialize(bytes);
  if (!Array.isArray(value)) throw new ProtocolError('task arguments are not an array');
  return value;
}

export function encodeTask(body: TaskBody): Buffer {
  return packr.pack(body);
}

/** The msgpack of `{kind: 'js', functionId, source, args: <empty>}` less its empty bin (c4 00), for the last function. */
let jsPrefix: { functionId: string; source: string; bytes: Buffer } | undefined;

/**
 * encodeTask({kind: 'js', functionId, source, args}), byte for byte, without packing the function's id and
 * source again for every task of a batch: the bytes before `args` are kept for the last function and the
 * arguments appended as a msgpack bin.
 */
export function encodeJsTask(functionId: string, source: string, args: Uint8Array): Buffer {
  if (jsPrefix?.functionId !== functionId || jsPrefix.source !== source) {
    const whole = encodeTask({ kind: 'js', functionId, source, args: EMPTY });
    // `args` is the last field, an empty bin: anything else (a msgpackr change) packs every task in full.
    if (whole.length < 2 || whole[whole.length - 2] !== 0xc4 || whole[whole.length - 1] !== 0) return encodeTask({ kind: 'js', functionId, source, args });
    jsPrefix = { functionId, source, bytes: Buffer.from(whole.subarray(0, whole.length - 2)) };
  }
  const prefix = jsPrefix.bytes;
  const n = args.length;
  const head = n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
  const out = Buffer.allocUnsafe(prefix.length + head + n);
  prefix.copy(out, 0);
  let at = prefix.length;
  if (head === 2) {
    out[at] = 0xc4;
    out[at + 1] = n;
  } else if (head === 3) {
    out[at] = 0xc5;
    out.writeUInt16BE(n, at + 1);
  } else {
    out[at] = 0xc6;
    out.writeUInt32BE(n, at + 1);
  }
  at += head;
  out.set(args, at);
  return out;
}

export function decodeTask(bytes: Uint8Array): TaskBody {
  let body: unknown;
  try {
    body = packr.unpack(bytes);
  } catch (err) {
    throw new ProtocolError(`task payload is not a serialized task: ${(err as Error).message}`);
  }
  const kind = (body as { kind?: unknown } | null)?.kind;
  if (kind !== 'js' && kind !== 'shell' && kind !== 'mpi') {
    throw new ProtocolError(`task payload has unknown kind ${JSON.stringify(kind)}`);
  }
  if (kind === 'js' && !((body as JsTaskBody).args instanceof Uint8Array)) throw new ProtocolError('js task payload has no argument bytes');
  return body as TaskBody;
}

export function encodeOutcome(outcome: Outcome): Buffer {
  if (outcome.ok) {
    const v = outcome.value;
    const t = typeof v;
    if (v === null || t === 'boolean' || (t === 'number' && !Object.is(v, -0)) || (t === 'string' && (v as string).length < 4096)) {
      const body = packr.pack(v);
      const out = Buffer.allocUnsafe(body.length + 1);
      out[0] = COMPACT_OUTCOME;
      body.copy(out, 1);
      return out;
    }
  }
  return serialize(outcome);
}

export function decodeOutcome(bytes: Uint8Array): Outcome {
  if (bytes.length > 0 && bytes[0] === COMPACT_OUTCOME) return { ok: true, value: packr.unpack(bytes.subarray(1)) };
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
