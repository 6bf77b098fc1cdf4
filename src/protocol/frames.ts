/**
 * Length-prefixed msgpack frames on a byte stream (the manager ⇄ worker pipe).
 * Each frame: 4-byte big-endian length, then that many bytes of msgpack.
 */
import { encode, MAX_FRAME_BYTES } from './codec.js';
import type { ManagerToWorker, WorkerToManager } from './messages.js';
import { ProtocolError } from '../errors.js';

export function encodeLengthPrefixed(message: ManagerToWorker | WorkerToManager): Buffer {
  const body = encode(message);
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  body.copy(out, 4);
  return out;
}

/**
 * Accumulates chunks and yields whole frames, each parsed by `parse` (parseToWorker or parseFromWorker in
 * messages.ts); a bad frame throws a ProtocolError.
 */
export class FrameReader<M> {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly parse: (frame: Uint8Array) => M) {}

  /** Feed a chunk; returns the messages it completed (possibly none). */
  push(chunk: Buffer): M[] {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    const frames: M[] = [];
    if (this.pendingBytes < 4) return frames;
    let buf = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingBytes);
    let offset = 0;
    while (buf.length - offset >= 4) {
      const length = buf.readUInt32BE(offset);
      if (length > MAX_FRAME_BYTES) throw new ProtocolError(`pipe frame of ${length} bytes exceeds ${MAX_FRAME_BYTES}`);
      if (buf.length - offset - 4 < length) break;
      frames.push(this.parse(buf.subarray(offset + 4, offset + 4 + length)));
      offset += 4 + length;
    }
    if (offset === buf.length) {
      this.pending = [];
      this.pendingBytes = 0;
    } else {
      buf = buf.subarray(offset);
      this.pending = [buf];
      this.pendingBytes = buf.length;
    }
    return frames;
  }
}
