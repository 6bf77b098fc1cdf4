/**
 * Every message on the three forwarder channels (service's forwarder ⇄ endpoint daemon), tagged by `kind`,
 * encoded with msgpack (codec.ts). The endpoint dials out with three DEALER sockets; the forwarder has one
 * CURVE ROUTER per channel.
 *
 * - Every channel opens with `hello` → `welcome` (or `refused`, e.g. on a protocol version mismatch). A peer
 *   the forwarder has no session for (it restarted, or the connection was replaced) gets `reset` and says
 *   `hello` again. Heartbeats flow both ways on every channel.
 * - tasks: the endpoint grants credit (`credit`); the forwarder sends at most that many tasks (`tasks`).
 *   Each `hello` carries the endpoint's outstanding credit, which replaces the forwarder's count, and makes
 *   the forwarder send again every task it delivered without a result yet (the endpoint drops duplicates).
 * - results: each batch has a sequence number; the forwarder stores it (dropping task ids it already has)
 *   and answers `ack` with that number. The endpoint keeps batches on disk until acked.
 * - commands: the forwarder asks (`command`), the endpoint answers (`command-reply`).
 */
import { badField, checkFunctions, checkResults, checkTasks, decodeFrame, type RawMessage } from './codec.js';
import { PROTOCOL_VERSION, type HeartbeatMessage, type RefusedMessage, type ResultEnvelope, type TaskEnvelope, type TasksMessage } from './messages.js';
import { ProtocolError } from '../errors.js';

export { PROTOCOL_VERSION };
export type { HeartbeatMessage, RefusedMessage, TasksMessage, TaskEnvelope, ResultEnvelope };

/** The three channels, in the order registration lists their ports. */
export type ForwarderChannel = 'tasks' | 'results' | 'commands';
export const FORWARDER_CHANNELS: readonly ForwarderChannel[] = ['tasks', 'results', 'commands'];

/** Where an endpoint finds its forwarder (returned by registration). */
export interface ForwarderAddress {
  host: string;
  ports: Record<ForwarderChannel, number>;
  /** The forwarder's CURVE public key (Z85). */
  publicKey: string;
}

// ---- any channel -----------------------------------------------------------------------------------------

/** endpoint → forwarder: opens (or re-opens) a session on one channel. */
export interface HelloMessage {
  kind: 'hello';
  protocol: number;
  endpointId: string;
  channel: ForwarderChannel;
  /** Random per ForwarderClient instance; tells a restart from a reconnect in the logs. */
  session: string;
  /** tasks channel only: how many more tasks the endpoint accepts now (replaces the forwarder's count). */
  credit?: number;
  /**
   * tasks channel only: the endpoint got a task naming a function source it does not hold (it dropped the
   * task): the forwarder treats this hello as a new connection (forgets which sources it sent, sends every
   * task without a result again).
   */
  resync?: boolean;
}

/** forwarder → endpoint: the session is open. */
export interface WelcomeMessage {
  kind: 'welcome';
  protocol: number;
  channel: ForwarderChannel;
  heartbeatPeriodMs: number;
  /** The endpoint counts the forwarder as lost after this long without a message. */
  heartbeatThresholdMs: number;
}

/** forwarder → endpoint: "I do not know your session, say hello again" (forwarder restarted or peer replaced). */
export interface ResetMessage {
  kind: 'reset';
  reason: string;
}

// ---- tasks channel ---------------------------------------------------------------------------------------

/** endpoint → forwarder: accept `n` more tasks. */
export interface CreditMessage {
  kind: 'credit';
  n: number;
}

// ---- results channel -------------------------------------------------------------------------------------

/** endpoint → forwarder: a batch of results, kept on the endpoint's disk until acked by `seq`. */
export interface ResultBatchMessage {
  kind: 'results';
  seq: number;
  results: ResultEnvelope[];
  /**
   * Tasks of this batch whose start was not told in a `running` message (the endpoint holds a start briefly
   * for its result to carry it): written with their results. Absent from older endpoints.
   */
  running?: string[];
}

/** forwarder → endpoint: batch `seq` is stored (`duplicates` of its results were already stored and dropped). */
export interface AckMessage {
  kind: 'ack';
  seq: number;
  stored: number;
  duplicates: number;
}

/** endpoint → forwarder: these tasks started running on a worker (best effort, not acked). */
export interface RunningMessage {
  kind: 'running';
  ids: string[];
}

// ---- commands channel ------------------------------------------------------------------------------------

/** What the service can ask of an endpoint. */
export type EndpointCommand = { name: 'status' } | { name: 'stop'; graceMs?: number };

/** forwarder → endpoint. */
export interface CommandMessage {
  kind: 'command';
  id: string;
  command: EndpointCommand;
}

/** endpoint → forwarder: the answer to command `id`. `result` is the endpoint's status report for `status`. */
export interface CommandReplyMessage {
  kind: 'command-reply';
  id: string;
  ok: boolean;
  result?: unknown;
  error?: string;
}

/** What the endpoint answers a command with (the body of a `command-reply`). */
export type CommandReply = { ok: true; result?: unknown } | { ok: false; error: string };

// ---- unions by channel and direction ---------------------------------------------------------------------

type Session = WelcomeMessage | RefusedMessage | ResetMessage | HeartbeatMessage;

export interface EndpointToForwarder {
  tasks: HelloMessage | HeartbeatMessage | CreditMessage;
  results: HelloMessage | HeartbeatMessage | ResultBatchMessage | RunningMessage;
  commands: HelloMessage | HeartbeatMessage | CommandReplyMessage;
}

export interface ForwarderToEndpoint {
  tasks: Session | TasksMessage;
  results: Session | AckMessage;
  commands: Session | CommandMessage;
}

/** The one wording of a version mismatch, used on every side. */
export function protocolMismatchMessage(peer: string, peerVersion: unknown, ourSide: string, ourVersion: number = PROTOCOL_VERSION): string {
  return `protocol version mismatch: the ${peer} speaks version ${String(peerVersion)}, the ${ourSide} speaks version ${ourVersion}`;
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0;
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string');
}

const ALLOWED_FROM_ENDPOINT: Record<ForwarderChannel, ReadonlySet<string>> = {
  tasks: new Set(['hello', 'heartbeat', 'credit']),
  results: new Set(['hello', 'heartbeat', 'results', 'running']),
  commands: new Set(['hello', 'heartbeat', 'command-reply']),
};

const ALLOWED_FROM_FORWARDER: Record<ForwarderChannel, ReadonlySet<string>> = {
  tasks: new Set(['welcome', 'refused', 'reset', 'heartbeat', 'tasks']),
  results: new Set(['welcome', 'refused', 'reset', 'heartbeat', 'ack']),
  commands: new Set(['welcome', 'refused', 'reset', 'heartbeat', 'command']),
};

/**
 * Decode a frame the endpoint sent on `channel`, checking its shape. A `hello` with another protocol version
 * is returned as is (the forwarder answers it with `refused`), so check `protocol` on hello yourself.
 */
export function parseFromEndpoint<C extends ForwarderChannel>(channel: C, frame: Uint8Array): EndpointToForwarder[C] {
  const m = decodeFrame(frame);
  if (!ALLOWED_FROM_ENDPOINT[channel].has(m.kind)) throw new ProtocolError(`unexpected "${m.kind}" message on the ${channel} channel`);
  switch (m.kind) {
    case 'hello':
      if (typeof m.endpointId !== 'string' || typeof m.session !== 'string' || m.channel !== channel) {
        throw new ProtocolError(`hello on the ${channel} channel needs endpointId, session and channel "${channel}"`);
      }
      if (m.credit !== undefined && !isCount(m.credit)) throw new ProtocolError('hello "credit" must be a non-negative integer');
      if (m.resync !== undefined && typeof m.resync !== 'boolean') throw new ProtocolError('hello "resync" must be a boolean');
      break;
    case 'credit':
      if (!isCount(m.n)) throw new ProtocolError('credit "n" must be a non-negative integer');
      break;
    case 'results':
      if (!isCount(m.seq)) throw new ProtocolError('results "seq" must be a non-negative integer');
      checkResults(m);
      if (m.running !== undefined && !isStringArray(m.running)) throw new ProtocolError('results "running" must be an array of strings');
      break;
    case 'running':
      if (!isStringArray(m.ids)) throw new ProtocolError('running "ids" must be an array of strings');
      break;
    case 'command-reply':
      if (typeof m.id !== 'string' || typeof m.ok !== 'boolean') throw new ProtocolError('command-reply needs id and ok');
      break;
  }
  return m as unknown as EndpointToForwarder[C];
}

/** Decode a frame the forwarder sent on `channel`, checking its shape. */
export function parseFromForwarder<C extends ForwarderChannel>(channel: C, frame: Uint8Array): ForwarderToEndpoint[C] {
  const m = decodeFrame(frame);
  if (!ALLOWED_FROM_FORWARDER[channel].has(m.kind)) throw new ProtocolError(`unexpected "${m.kind}" message on the ${channel} channel`);
  switch (m.kind) {
    case 'welcome':
      if (!isCount(m.heartbeatPeriodMs) || !isCount(m.heartbeatThresholdMs)) throw new ProtocolError('welcome needs heartbeat timings');
      break;
    case 'refused':
    case 'reset':
      if (typeof m.reason !== 'string') throw new ProtocolError(`${m.kind} needs a reason`);
      break;
    case 'tasks':
      checkTasks(m);
      checkFunctions(m);
      break;
    case 'ack':
      if (!isCount(m.seq)) throw new ProtocolError('ack "seq" must be a non-negative integer');
      break;
    case 'command': {
      const name = (m.command as { name?: unknown } | null)?.name;
      if (typeof m.id !== 'string' || (name !== 'status' && name !== 'stop')) throw new ProtocolError('command needs an id and a known command name');
      break;
    }
  }
  return m as unknown as ForwarderToEndpoint[C];
}
