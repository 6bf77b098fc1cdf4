/**
 * Length-prefixed msgpack frames on a byte stream (the manager ⇄ worker pipe).
 * Each frame: 4-byte big-endian length, then that many bytes of msgpack.
 */
import { encode, decodeFrame, MAX_FRAME_BYTES } from './codec.js';
import { ProtocolError } from '../errors.js';

export function encodeLengthPrefixed(message: object): Buffer {
  const body = encode(message);
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  body.copy(out, 4);
  return out;
}

/** Accumulates chunks and yields whole decoded frames; a bad frame throws a ProtocolError. */
export class FrameReader {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  /** Feed a chunk; returns the frames it completed (possibly none). */
  push(chunk: Buffer): Array<{ kind: string } & Record<string, unknown>> {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    const frames: Array<{ kind: string } & Record<string, unknown>> = [];
    if (this.pendingBytes < 4) return frames;
    let buf = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingBytes);
    let offset = 0;
    while (buf.length - offset >= 4) {
      const length = buf.readUInt32BE(offset);
      if (length > MAX_FRAME_BYTES) throw new ProtocolError(`pipe frame of ${length} bytes exceeds ${MAX_FRAME_BYTES}`);
      if (buf.length - offset - 4 < length) break;
      frames.push(decodeFrame(buf.subarray(offset + 4, offset + 4 + length)));
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
