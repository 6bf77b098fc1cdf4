/**
 * Every message on the worker channel (interchange ⇄ manager over ZeroMQ) and on the worker pipe
 * (manager ⇄ worker process), tagged by a string `kind`. Encoded with msgpack (codec.ts).
 *
 * Task and result payloads are opaque bytes (payload.ts): routers never decode them.
 */

/** Bumped on any incompatible change; a peer with another version is refused with both versions named. */
export const PROTOCOL_VERSION = 1;

/** A task as routed: an id, a few routing headers, and the opaque payload. */
export interface TaskEnvelope {
  id: string;
  /** Function id when the task runs a registered function: used for duration estimates and allow-lists. */
  fn?: string;
  /** Walltime of the task in ms: the manager kills the worker running it past this. */
  wt?: number;
  payload: Uint8Array;
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

/** One node of an MPI block and the task that holds it. */
export interface NodeUse {
  node: string;
  task: string | null;
}

export interface HeartbeatMessage {
  kind: 'heartbeat';
}

/** The manager is leaving on its own (drained, walltime end, signal); nothing is in flight any more. */
export interface ByeMessage {
  kind: 'bye';
  reason: string;
}

export type ManagerToInterchange = RegisterMessage | ResultsMessage | HeartbeatMessage | ByeMessage;

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
