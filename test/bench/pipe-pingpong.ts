/**
 * The smallest round trip the machine offers between two Node processes: this process → a child over a
 * socket pair (fd 3, length-prefixed frames, the manager ⇄ worker transport) → back; the child is
 * hops-relay.js's echo. No ZeroMQ, no CURVE, no engine: its tail is the operating system's wake-ups alone.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';

export class PipePingPong {
  private answered: () => void = () => {};
  private readonly frame: Buffer;

  private constructor(private readonly child: ChildProcess, private readonly pipe: Socket) {
    this.frame = Buffer.alloc(104, 7);
    this.frame.writeUInt32BE(100, 0);
    let pending = 0;
    // The echo returns the same 104 bytes; a round trip ends when all of them are back.
    pipe.on('data', (chunk: Buffer) => {
      pending += chunk.length;
      if (pending >= this.frame.length) {
        pending -= this.frame.length;
        this.answered();
      }
    });
  }

  static async start(): Promise<PipePingPong> {
    const child = spawn(process.execPath, [fileURLToPath(new URL('./hops-relay.js', import.meta.url)), 'child'], { stdio: ['ignore', 'inherit', 'inherit', 'pipe'] });
    const p = new PipePingPong(child, child.stdio[3] as Socket);
    await p.roundTrip(); // the child is up and answering
    return p;
  }

  get childPid(): number {
    return this.child.pid!;
  }

  /** One round trip; resolves with its duration (ms). */
  roundTrip(): Promise<number> {
    const t = performance.now();
    return new Promise((resolve) => {
      this.answered = () => resolve(performance.now() - t);
      this.pipe.write(this.frame);
    });
  }

  async stop(): Promise<void> {
    const exited = new Promise((r) => this.child.once('exit', r));
    this.pipe.end();
    await exited;
  }
}
