/**
 * msgpack encoding of wire messages, and the field checks every parser (messages.ts, forwarder-messages.ts)
 * shares. `encode` takes only a declared message, so a misspelt kind or field is a compile error; the parsers
 * turn a frame into a closed union or throw a ProtocolError naming the message and the field at fault.
 * Payloads inside are left as bytes: routers never decode them.
 */
import { Packr } from 'msgpackr';
import { ProtocolError } from '../errors.js';
import type { ResultEnvelope, TaskEnvelope, WorkerChannelMessage } from './messages.js';
import type { ForwarderChannel, EndpointToForwarder, ForwarderToEndpoint } from './forwarder-messages.js';

/** Frames above this are refused before decoding (a batch of tasks is far smaller). */
export const MAX_FRAME_BYTES = 256 * 1024 * 1024;

// Plain msgpack (no record extension): every frame is self-describing, so a peer's earlier frames never
// change how a later one decodes.
const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true });

/** Every message any channel carries. */
export type WireMessage =
  | WorkerChannelMessage
  | EndpointToForwarder[ForwarderChannel]
  | ForwarderToEndpoint[ForwarderChannel];

export function encode(message: WireMessage): Buffer {
  return packr.pack(message);
}

/** A decoded frame before its parser has checked it: an object with a string `kind`. */
export type RawMessage = { kind: string } & Record<string, unknown>;

/** Decode one frame into an object with a string `kind`, or throw a ProtocolError that says what is wrong. */
export function decodeFrame(frame: Uint8Array): RawMessage {
  if (frame.length === 0) throw new ProtocolError('empty frame');
  if (frame.length > MAX_FRAME_BYTES) throw new ProtocolError(`frame of ${frame.length} bytes exceeds ${MAX_FRAME_BYTES}`);
  let value: unknown;
  try {
    value = packr.unpack(frame);
  } catch (err) {
    throw new ProtocolError(`frame is not msgpack: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new ProtocolError('frame is not a message object');
  const kind = (value as { kind?: unknown }).kind;
  if (typeof kind !== 'string') throw new ProtocolError('message has no string "kind"');
  return value as RawMessage;
}

// ---- field checks (each throws naming `kind.field`) ---------------------------------------------------------

/** A short, printable rendering of a bad value for an error message. */
export function shown(v: unknown): string {
  if (v instanceof Uint8Array) return `${v.length} bytes`;
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  return Array.isArray(v) ? `an array of ${v.length}` : typeof v;
}

/** Throw "kind.field must be …, got …" for message `m`. */
export function badField(m: RawMessage, field: string, expected: string): never {
  const value = field.split(/[.[\]]+/).filter(Boolean).reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], m);
  throw new ProtocolError(`${m.kind}.${field} must be ${expected}, got ${shown(value)}`, m.kind);
}

export function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0;
}

export function isBytes(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array;
}

export function needString(m: RawMessage, field: string, nonEmpty = false): void {
  const v = m[field];
  if (typeof v !== 'string' || (nonEmpty && v.length === 0)) badField(m, field, nonEmpty ? 'a non-empty string' : 'a string');
}

export function needCount(m: RawMessage, field: string, optional = false): void {
  const v = m[field];
  if (optional && v === undefined) return;
  if (!isCount(v)) badField(m, field, 'a non-negative integer');
}

/** Check `m.results` (a batch of results): one pass, no copy; throws naming the first bad entry and field. */
export function checkResults(m: RawMessage): ResultEnvelope[] {
  const value = m.results;
  if (!Array.isArray(value)) badField(m, 'results', 'an array');
  for (let i = 0; i < value.length; i++) {
    const r = value[i] as ResultEnvelope | null;
    if (r === null || typeof r !== 'object') badField(m, `results[${i}]`, 'an object');
    if (typeof r.id !== 'string') badField(m, `results[${i}].id`, 'a string');
    if (typeof r.failed !== 'boolean') badField(m, `results[${i}].failed`, 'a boolean');
    if (!isBytes(r.payload)) badField(m, `results[${i}].payload`, 'bytes');
    if (r.ms !== undefined && (typeof r.ms !== 'number' || !(r.ms >= 0))) badField(m, `results[${i}].ms`, 'a non-negative number');
  }
  return value as ResultEnvelope[];
}

/** Check `m.tasks` (a batch of tasks): one pass, no copy; payloads stay opaque bytes. */
export function checkTasks(m: RawMessage): TaskEnvelope[] {
  const value = m.tasks;
  if (!Array.isArray(value)) badField(m, 'tasks', 'an array');
  for (let i = 0; i < value.length; i++) {
    const t = value[i] as TaskEnvelope | null;
    if (t === null || typeof t !== 'object') badField(m, `tasks[${i}]`, 'an object');
    if (typeof t.id !== 'string') badField(m, `tasks[${i}].id`, 'a string');
    if (!isBytes(t.payload)) badField(m, `tasks[${i}].payload`, 'bytes');
    if (t.fn !== undefined && typeof t.fn !== 'string') badField(m, `tasks[${i}].fn`, 'a string');
    if (t.wt !== undefined && !isCount(t.wt)) badField(m, `tasks[${i}].wt`, 'a non-negative integer');
    if (t.u !== undefined && (typeof t.u !== 'string' || t.u === '')) badField(m, `tasks[${i}].u`, 'a non-empty user id');
    if (t.h !== undefined && (typeof t.h !== 'string' || t.fn === undefined)) badField(m, `tasks[${i}].h`, 'a string, with fn');
  }
  return value as TaskEnvelope[];
}

/** A tasks message's optional `functions`: {fnId: {hash, source}}. */
export function checkFunctions(m: RawMessage): void {
  const fns = m.functions;
  if (fns === undefined) return;
  if (fns === null || typeof fns !== 'object' || Array.isArray(fns)) badField(m, 'functions', 'a map of function id to {hash, source}');
  for (const [id, f] of Object.entries(fns as Record<string, unknown>)) {
    const v = f as { hash?: unknown; source?: unknown } | null;
    if (v === null || typeof v !== 'object' || typeof v.hash !== 'string' || typeof v.source !== 'string') {
      badField(m, `functions[${JSON.stringify(id)}]`, 'an object with string hash and source');
    }
  }
}
