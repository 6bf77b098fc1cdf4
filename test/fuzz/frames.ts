/** Generators of malformed frames for the fuzz tests: seeded, so a failure can be replayed. */
import { encodeRaw as encode } from '../helpers/raw-frame.js';
import { PROTOCOL_VERSION } from '../../src/protocol/messages.js';

/** A small seeded PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const KINDS = ['register', 'results', 'heartbeat', 'bye', 'tasks', 'credit', 'hello', 'ack', 'command', 'command-reply', 'mystery', '', '__proto__'];
const WEIRD: unknown[] = [null, true, 0, -1, 1e308, NaN, 'x'.repeat(100), [], {}, [1, 2, 3], { id: 1 }, Buffer.from('zz'), 2 ** 53 + 1];

/** One malformed frame of a random family (or [frame, extra frame] to test multi-part handling). */
export function malformedFrame(rand: () => number, peerId: string): Buffer | Buffer[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const family = Math.floor(rand() * 8);
  switch (family) {
    case 0: {
      const b = Buffer.alloc(Math.floor(rand() * 64));
      for (let i = 0; i < b.length; i++) b[i] = Math.floor(rand() * 256);
      return b;
    }
    case 1: {
      const whole = encode({ kind: pick(KINDS), results: [{ id: 'a', failed: false, payload: Buffer.alloc(10) }] });
      return whole.subarray(0, Math.max(1, Math.floor(rand() * whole.length)));
    }
    case 2:
      return encode({ kind: pick(KINDS), results: pick(WEIRD), tasks: pick(WEIRD), capacity: pick(WEIRD), reason: pick(WEIRD) });
    case 3: {
      // A msgpack header claiming a huge string/array/map length, with no body.
      return Buffer.from(pick([[0xdb, 0x7f, 0xff, 0xff, 0xff], [0xdd, 0xff, 0xff, 0xff, 0xff], [0xdf, 0xff, 0xff, 0xff, 0xff], [0xc6, 0x7f, 0xff, 0xff, 0xff]]));
    }
    case 4:
      return encode({ kind: `unknown-${Math.floor(rand() * 1000)}`, data: pick(WEIRD) });
    case 5:
      return encode({
        kind: 'register', protocol: pick([PROTOCOL_VERSION, 0, 99, 'one']), managerId: pick([peerId, '', 5]), hostname: pick(['h', 7]),
        blockId: pick(['b', null]), node: 'n', workers: pick([1, 0, -3, 1e9, 'many']), cores: 1, memoryMiB: 0, capacity: pick([1, 0, 1.5]), endsAt: pick([null, 'soon', 5]), pid: 1,
      });
    case 6:
      return encode({ kind: 'results', results: [{ id: `never-${Math.floor(rand() * 1e6)}`, failed: pick([false, 'no']), payload: pick([Buffer.alloc(3), 'str']) }] });
    default:
      return [encode({ kind: 'heartbeat' }), Buffer.from('extra frame')];
  }
}
