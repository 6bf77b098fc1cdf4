/**
 * Serializes sends on a zeromq.js socket: zeromq.js allows one pending send at a time, and callers on the
 * hot path must not await each send.
 */
import type * as zmq from 'zeromq';

type Frames = zmq.MessageLike | zmq.MessageLike[];

export class SocketWriter {
  private queue: Frames[] = [];
  private head = 0;
  private pumping = false;
  private closed = false;

  constructor(
    private readonly socket: { send(frames: Frames): Promise<void> },
    private readonly onError: (err: Error) => void = () => {},
  ) {}

  send(frames: Frames): void {
    if (this.closed) return;
    this.queue.push(frames);
    if (!this.pumping) void this.pump();
  }

  /** Messages waiting to be handed to ZeroMQ. */
  get backlog(): number {
    return this.queue.length - this.head;
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.head < this.queue.length && !this.closed) {
        const frames = this.queue[this.head];
        this.queue[this.head++] = undefined as unknown as Frames;
        try {
          await this.socket.send(frames);
        } catch (err) {
          if (!this.closed) this.onError(err as Error);
        }
      }
      this.queue = [];
      this.head = 0;
    } finally {
      this.pumping = false;
    }
  }

  /** Resolves when everything queued so far has been handed to ZeroMQ. */
  async flushed(timeoutMs = 2000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((this.pumping || this.backlog > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  }

  close(): void {
    this.closed = true;
    this.queue = [];
    this.head = 0;
  }
}
