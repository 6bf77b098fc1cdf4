/**
 * A TCP load balancer in front of service replicas, as a facility puts HAProxy in front of theirs: each
 * connection goes to the first backend, in order, that accepts it. While the first replica lives everything
 * goes there; once it is dead (connection refused) new connections go to the next. Connections already
 * piped to a backend that dies are cut, as a real balancer's would be.
 *
 *   const lb = await TcpBalancer.start([portA, portB]);   // lb.url: http://127.0.0.1:PORT
 *   ... lb.connections → { [port]: count } ...
 *   await lb.close();
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export class TcpBalancer {
  /** Connections piped so far, by backend port. */
  readonly connections: Record<number, number> = {};
  private readonly open = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly backends: readonly number[],
    private readonly host: string,
  ) {
    for (const b of backends) this.connections[b] = 0;
    server.on('connection', (client) => this.accept(client));
  }

  /** Listen on HOST:any free port, in front of the backends HOST:PORT (in order of preference). */
  static start(backends: readonly number[], host = '127.0.0.1'): Promise<TcpBalancer> {
    if (backends.length === 0) throw new Error('TcpBalancer.start: give at least one backend port');
    const server = createServer({ pauseOnConnect: true });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, host, () => resolve(new TcpBalancer(server, (server.address() as { port: number }).port, backends, host)));
    });
  }

  get url(): string {
    return `http://${this.host}:${this.port}`;
  }

  /** Stop listening and cut every connection. */
  close(): Promise<void> {
    for (const s of this.open) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private track(s: Socket): void {
    this.open.add(s);
    s.once('close', () => this.open.delete(s));
  }

  private accept(client: Socket): void {
    this.track(client);
    client.on('error', () => client.destroy());
    const tryBackend = (i: number): void => {
      if (i >= this.backends.length || client.destroyed) {
        client.destroy(); // nobody accepts: the client sees the connection cut
        return;
      }
      const port = this.backends[i];
      const upstream = connect({ host: this.host, port });
      this.track(upstream);
      let piped = false;
      upstream.once('connect', () => {
        piped = true;
        this.connections[port]++;
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
      upstream.on('error', () => {
        if (!piped) tryBackend(i + 1); // refused (the replica is dead): the next one
        else client.destroy();
      });
      upstream.once('close', () => {
        if (piped) client.destroy();
      });
      client.once('close', () => upstream.destroy());
    };
    tryBackend(0);
  }
}
