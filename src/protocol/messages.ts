/**
 * Every message on the worker channel (interchange ⇄ manager over ZeroMQ) and on the worker pipe
 * (manager ⇄ worker process), tagged by a string `kind`, and one parser per direction that turns a frame into
 * that direction's closed union or throws a ProtocolError naming the message and field at fault (the model is
 * forwarder-messages.ts). Encoded with msgpack (codec.ts).
 *
 * Task and result payloads are opaque bytes (payload.ts): routers never decode them; parsers check only that
 * they are bytes.
 */
import { ProtocolError } from '../errors.js';
import { badField, checkFunctions, checkResults, checkTasks, decodeFrame, isCount, needCount, needString, type RawMessage } from './codec.js';

/**
 * Bumped on any incompatible change; a peer with another version is refused with both versions named.
 * 2: the forwarder sends each function's source once per connection (tasks carry `h` and their arguments only).
 * 3: so do the interchange (once per manager registration) and the manager (once per worker process); a
 *    manager hands back tasks whose source it lacks (`missing`).
 */
export const PROTOCOL_VERSION = 3;

/** A task as routed: an id, a few routing headers, and the opaque payload. */
export interface TaskEnvelope {
  id: string;
  /** Function id when the task runs a registered function: used for duration estimates and allow-lists. */
  fn?: string;
  /** Walltime of the task in ms: the manager kills the worker running it past this. */
  wt?: number;
  /**
   * The submitting user's id when it is not the endpoint's owner (set by the service). The manager runs such
   * tasks only in that user's own worker processes; the interchange carries it untouched. Absent: the owner's.
   */
  u?: string;
  /**
   * The payload is the arguments alone (`encodeArgs`) and the task runs source version `h` of function `fn`,
   * sent once per link in a tasks message's `functions`: forwarder → endpoint (function-sources.ts), and for
   * sources over the endpoint's eager size interchange → manager → worker too (source-link.ts). Absent: a
   * full payload.
   */
  h?: string;
  payload: Uint8Array;
}

/**
 * A copy of task `t` with `payload` and source version `h` (absent: none), its other fields copied one by
 * one: hot paths build one per task, and a spread or rest copy is several times slower.
 */
export function envelopeWith(t: TaskEnvelope, payload: Uint8Array, h?: string): TaskEnvelope {
  const out: TaskEnvelope = { id: t.id, payload };
  if (t.fn !== undefined) out.fn = t.fn;
  if (h !== undefined) out.h = h;
  if (t.wt !== undefined) out.wt = t.wt;
  if (t.u !== undefined) out.u = t.u;
  return out;
}

/** A result as routed. `failed` lets routers record success or failure without decoding the payload. */
export interface ResultEnvelope {
  id: string;
  failed: boolean;
  payload: Uint8Array;
  /** How long the task ran on the worker, for per-function duration estimates. */
  ms?: number;
}

// ---- manager → interchange -------------------------------------------------------------------------------

export interface RegisterMessage {
  kind: 'register';
  protocol: number;
  managerId: string;
  hostname: string;
  /** Our block id (from the job), or "" when started by hand. */
  blockId: string;
  /** Node name inside the scheduler (SLURMD_NODENAME...), for telling emulated nodes apart. */
  node: string;
  workers: number;
  cores: number;
  memoryMiB: number;
  /** Tasks the manager accepts at once (workers + prefetch); updated later by `capacity` in results. */
  capacity: number;
  /** Epoch ms when the block's walltime runs out, or null when unlimited. */
  endsAt: number | null;
  pid: number;
}

export interface ResultsMessage {
  kind: 'results';
  results: ResultEnvelope[];
  /** The manager's current credit window (tasks it accepts in flight); absent means unchanged. */
  capacity?: number;
  /** Engine mode "mpi" only: every node of the block and the task holding it (null when free). */
  nodes?: NodeUse[];
}

/** One node of an MPI block and the task that holds it; `lost` says why a node is gone from the block. */
export interface NodeUse {
  node: string;
  task: string | null;
  lost?: string;
}

export interface HeartbeatMessage {
  kind: 'heartbeat';
  /** Manager → interchange: its worker pools, one per user with processes or queued tasks (for status). */
  pools?: PoolView[];
}

/** One user's worker pool on a manager: slots held, warm idle processes, tasks queued at the manager. */
export interface PoolView {
  /** The user ("" for the endpoint's owner). */
  user: string;
  running: number;
  idle: number;
  queued: number;
}

/** The manager is leaving on its own (drained, walltime end, signal); nothing is in flight any more. */
export interface ByeMessage {
  kind: 'bye';
  reason: string;
}

/**
 * The manager lacked the source these tasks name (a tasks message lost on a live link) and dropped them: the
 * interchange forgets which sources it sent this manager and queues the tasks again (never fails them).
 */
export interface MissingMessage {
  kind: 'missing';
  ids: string[];
}

export type ManagerToInterchange = RegisterMessage | ResultsMessage | HeartbeatMessage | ByeMessage | MissingMessage;

// ---- interchange → manager -------------------------------------------------------------------------------

export interface RegisteredMessage {
  kind: 'registered';
  protocol: number;
  heartbeatPeriodMs: number;
  heartbeatThresholdMs: number;
}

export interface RefusedMessage {
  kind: 'refused';
  reason: string;
}

export interface TasksMessage {
  kind: 'tasks';
  tasks: TaskEnvelope[];
  /**
   * Sources of functions the tasks name (by `fn` and `h`) that the sender has not sent on this link yet (or
   * is not sure it did), by function id (forwarder → endpoint, interchange → manager, manager → worker).
   */
  functions?: Record<string, FunctionSource>;
}

/** A function's source and its hash (first 16 hex digits of its SHA-256), as the forwarder sends it once. */
export interface FunctionSource {
  hash: string;
  source: string;
}

/** Finish what is in flight, take nothing new, say bye and exit (scale-in, walltime end, endpoint stop). */
export interface DrainMessage {
  kind: 'drain';
}

/** Exit now; in-flight tasks are the interchange's to retry. */
export interface ShutdownMessage {
  kind: 'shutdown';
}

export type InterchangeToManager =
  | RegisteredMessage
  | RefusedMessage
  | TasksMessage
  | HeartbeatMessage
  | DrainMessage
  | ShutdownMessage;

// ---- manager ⇄ worker process (length-prefixed frames on the worker's stdin/stdout) ------------------------

export interface WorkerReadyMessage {
  kind: 'ready';
  pid: number;
}

export type ManagerToWorker = TasksMessage | ShutdownMessage;
export type WorkerToManager = WorkerReadyMessage | ResultsMessage;

/** Every message of the worker channel and the worker pipe (what `encode` accepts besides the forwarder's). */
export type WorkerChannelMessage = ManagerToInterchange | InterchangeToManager | ManagerToWorker | WorkerToManager;

// ---- parsers, one per direction ------------------------------------------------------------------------------

/** The one wording of a version mismatch on the worker channel. */
export function workerProtocolMismatch(managerVersion: unknown): string {
  return `protocol version mismatch: manager speaks ${String(managerVersion)}, interchange speaks ${PROTOCOL_VERSION}`;
}

function unexpected(m: RawMessage, from: string): never {
  throw new ProtocolError(`unexpected message kind ${JSON.stringify(m.kind)} from ${from}`, m.kind);
}

/**
 * manager → interchange. A `register` with another protocol version throws the mismatch (naming both
 * versions) before its other fields are looked at: its `messageKind` is "register", so the interchange can
 * answer `refused` with the message.
 */
export function parseFromManager(frame: Uint8Array): ManagerToInterchange {
  const m = decodeFrame(frame);
  switch (m.kind) {
    case 'register':
      return checkRegister(m);
    case 'results':
      checkResults(m);
      needCount(m, 'capacity', true);
      if (m.nodes !== undefined && !Array.isArray(m.nodes)) badField(m, 'nodes', 'an array of {node, task}');
      return m as unknown as ResultsMessage;
    case 'heartbeat':
      if (m.pools !== undefined) checkPools(m);
      return m as unknown as HeartbeatMessage;
    case 'bye':
      needString(m, 'reason');
      return m as unknown as ByeMessage;
    case 'missing': {
      const ids = m.ids;
      if (!Array.isArray(ids) || ids.length > 1_000_000 || !ids.every((id) => typeof id === 'string')) badField(m, 'ids', 'an array of task ids');
      return m as unknown as MissingMessage;
    }
    default:
      return unexpected(m, 'a manager');
  }
}

/** heartbeat.pools: at most 10,000 entries of {user: string, running, idle, queued: counts}. */
function checkPools(m: RawMessage): void {
  const pools = m.pools;
  if (!Array.isArray(pools) || pools.length > 10_000) badField(m, 'pools', 'an array of at most 10000 {user, running, idle, queued}');
  pools.forEach((p: unknown, i: number) => {
    const v = p as Record<string, unknown> | null;
    if (v === null || typeof v !== 'object' || typeof v.user !== 'string') badField(m, `pools[${i}].user`, 'a string');
    for (const k of ['running', 'idle', 'queued']) if (!isCount(v[k])) badField(m, `pools[${i}].${k}`, 'a non-negative integer');
  });
}

function checkRegister(m: RawMessage): RegisterMessage {
  if (m.protocol !== PROTOCOL_VERSION) throw new ProtocolError(workerProtocolMismatch(m.protocol), 'register');
  needString(m, 'managerId', true);
  needString(m, 'hostname');
  needString(m, 'blockId');
  needString(m, 'node');
  const workers = m.workers;
  if (!isCount(workers) || workers < 1 || workers > 100_000) badField(m, 'workers', 'an integer from 1 to 100000');
  needCount(m, 'cores');
  if (typeof m.memoryMiB !== 'number' || !(m.memoryMiB >= 0)) badField(m, 'memoryMiB', 'a non-negative number');
  if (!isCount(m.capacity) || m.capacity < 1) badField(m, 'capacity', 'a positive integer');
  if (m.endsAt !== null && (typeof m.endsAt !== 'number' || !Number.isFinite(m.endsAt))) badField(m, 'endsAt', 'null or epoch milliseconds');
  needCount(m, 'pid');
  return m as unknown as RegisterMessage;
}

/** interchange → manager. */
export function parseFromInterchange(frame: Uint8Array): InterchangeToManager {
  const m = decodeFrame(frame);
  switch (m.kind) {
    case 'registered':
      if (typeof m.protocol !== 'number') badField(m, 'protocol', 'a number');
      needCount(m, 'heartbeatPeriodMs');
      needCount(m, 'heartbeatThresholdMs');
      return m as unknown as RegisteredMessage;
    case 'refused':
      needString(m, 'reason');
      return m as unknown as RefusedMessage;
    case 'tasks':
      checkTasks(m);
      checkFunctions(m);
      return m as unknown as TasksMessage;
    case 'heartbeat':
      return m as unknown as HeartbeatMessage;
    case 'drain':
      return m as unknown as DrainMessage;
    case 'shutdown':
      return m as unknown as ShutdownMessage;
    default:
      return unexpected(m, 'the interchange');
  }
}

/** manager → worker process (on the worker's pipe). */
export function parseToWorker(frame: Uint8Array): ManagerToWorker {
  const m = decodeFrame(frame);
  switch (m.kind) {
    case 'tasks':
      checkTasks(m);
      checkFunctions(m);
      return m as unknown as TasksMessage;
    case 'shutdown':
      return m as unknown as ShutdownMessage;
    default:
      return unexpected(m, 'the manager');
  }
}

/** worker process → manager (on the worker's pipe). */
export function parseFromWorker(frame: Uint8Array): WorkerToManager {
  const m = decodeFrame(frame);
  switch (m.kind) {
    case 'ready':
      needCount(m, 'pid');
      return m as unknown as WorkerReadyMessage;
    case 'results':
      checkResults(m);
      needCount(m, 'capacity', true);
      return m as unknown as ResultsMessage;
    default:
      return unexpected(m, 'a worker');
  }
}
