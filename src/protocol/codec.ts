/**
 * msgpack encoding of wire messages, with the cheap shape checks a router needs before trusting a frame.
 * Payloads inside are left as bytes.
 */
import { Packr } from 'msgpackr';
import { ProtocolError } from '../errors.js';
import type { ResultEnvelope, TaskEnvelope } from './messages.js';

/** Frames above this are refused before decoding (a batch of tasks is far smaller). */
export const MAX_FRAME_BYTES = 256 * 1024 * 1024;

// Plain msgpack (no record extension): every frame is self-describing, so a peer's earlier frames never
// change how a later one decodes.
const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true });

export function encode(message: object): Buffer {
  return packr.pack(message);
}

/** Decode one frame into an object with a string `kind`, or throw a ProtocolError that says what is wrong. */
export function decodeFrame(frame: Uint8Array): { kind: string } & Record<string, unknown> {
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
  return value as { kind: string } & Record<string, unknown>;
}

function isBytes(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array;
}

/** Check a batch of results; throws naming the first bad entry. */
export function checkResults(value: unknown): ResultEnvelope[] {
  if (!Array.isArray(value)) throw new ProtocolError('"results" is not an array');
  for (let i = 0; i < value.length; i++) {
    const r = value[i] as ResultEnvelope;
    if (r === null || typeof r !== 'object' || typeof r.id !== 'string' || typeof r.failed !== 'boolean' || !isBytes(r.payload)) {
      throw new ProtocolError(`results[${i}] is not {id: string, failed: boolean, payload: bytes}`);
    }
  }
  return value as ResultEnvelope[];
}

/** Check a batch of tasks; throws naming the first bad entry. */
export function checkTasks(value: unknown): TaskEnvelope[] {
  if (!Array.isArray(value)) throw new ProtocolError('"tasks" is not an array');
  for (let i = 0; i < value.length; i++) {
    const t = value[i] as TaskEnvelope;
    if (t === null || typeof t !== 'object' || typeof t.id !== 'string' || !isBytes(t.payload)) {
      throw new ProtocolError(`tasks[${i}] is not {id: string, payload: bytes}`);
    }
  }
  return value as TaskEnvelope[];
}
