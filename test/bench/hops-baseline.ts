/**
 * The tail's baseline: a pipeline with the engine's hops and nothing else. This process's CURVE ROUTER → a
 * DEALER process (hops-relay.js, the manager's place) → its child over a socket pair on fd 3 with
 * length-prefixed frames (the worker's place) → back the same way. One 100-byte message at a time.
 * The engine bench interleaves its round trips with the engine's, so both see the same machine.
 */
import * as zmq from 'zeromq';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export class HopsPipeline {
  private constructor(
    private readonly router: zmq.Router,
    private readonly child: ChildProcess,
    private readonly iterator: AsyncIterator<Buffer[]>,
    private readonly peer: Buffer,
  ) {}

  private readonly message = Buffer.alloc(100, 7);

  /** The relay process's pid (the manager's place; its child is the worker's). */
  get relayPid(): number {
    return this.child.pid!;
  }

  static async start(): Promise<HopsPipeline> {
    const server = zmq.curveKeyPair();
    const client = zmq.curveKeyPair();
    const router = new zmq.Router({ linger: 0, curveServer: true, curvePublicKey: server.publicKey, curveSecretKey: server.secretKey });
    await router.bind('tcp://127.0.0.1:0');
    const child = spawn(process.execPath, [fileURLToPath(new URL('./hops-relay.js', import.meta.url)), router.lastEndpoint!], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, HOPS_SERVER_KEY: server.publicKey, HOPS_PUBLIC_KEY: client.publicKey, HOPS_SECRET_KEY: client.secretKey },
    });
    const iterator = router[Symbol.asyncIterator]();
    const hello = (await iterator.next()).value as Buffer[];
    return new HopsPipeline(router, child, iterator, hello[0]);
  }

  /** One round trip through every hop; resolves with its duration (ms). */
  async roundTrip(): Promise<number> {
    const t = performance.now();
    await this.router.send([this.peer, this.message]);
    await this.iterator.next();
    return performance.now() - t;
  }

  async stop(): Promise<void> {
    const exited = new Promise((r) => this.child.once('exit', r));
    await this.router.send([this.peer, 'stop']);
    await exited;
    this.router.close();
  }
}
