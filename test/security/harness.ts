/**
 * Shared helpers for the security tests: temporary folders, waiting, users on an in-process service, raw
 * ZeroMQ peers holding the CURVE keys a test chooses (or none), and a whole system driven through the real
 * CLIs the way examples/demo.ts does it (service, user, endpoint init/start/stop, the SDK).
 */
import type { TestContext } from 'node:test';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as zmq from 'zeromq';
import { startService, type RunningService, type ServiceOptions } from '../../src/service/api.js';
import { FuncXClient } from '../../src/sdk/client.js';
import { decodeFrame } from '../../src/protocol/codec.js';
import { encodeRaw } from '../helpers/raw-frame.js';
import type { CurveKeyPair } from '../../src/protocol/keys.js';
import { silentLogger } from '../../src/logger.js';
import { databaseFor, dropTestDatabases } from '../helpers/store-backends.js';

export { until } from '../helpers/wait.js';

/** A fresh temporary folder. */
export function tmpDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `funcx-sec-${prefix}-`));
}

/** The built CLI program `name` (service, endpoint, funcx). */
export function cliPath(name: string): string {
  return fileURLToPath(new URL(`../../src/cli/${name}.js`, import.meta.url));
}

/** A service in this process on a free loopback port, closed when the test ends. */
export async function inProcessService(t: TestContext, options: Partial<ServiceOptions> = {}): Promise<RunningService> {
  // FUNCX_TEST_STORE=postgres runs the same test with the state in PostgreSQL (test/helpers/store-backends.ts).
  const home = options.home ?? tmpDir('service');
  const database = await databaseFor(home);
  const s = await startService({ home, database, port: 0, heartbeatPeriodMs: 200, heartbeatThresholdMs: 3000, log: silentLogger, ...options });
  t.after(async () => {
    await s.close();
    if (database) await dropTestDatabases();
  });
  return s;
}

export interface TestUser {
  name: string;
  token: string;
  sdk: FuncXClient;
}

/** Create a user directly in the service's store (as `funcx-service user add` does). */
export async function addUser(s: RunningService, name: string): Promise<TestUser> {
  const { token } = await s.store.createUser(name);
  return { name, token, sdk: new FuncXClient({ serviceUrl: s.url, token }) };
}

/** One raw HTTP call; the body is parsed JSON (or {} when there is none). */
export async function api(url: string, token: string | undefined, method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown>; headers: Record<string, string> }> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {}, headers: Object.fromEntries(r.headers) };
}

export interface PeerOptions {
  /** The server's CURVE public key; with `keys`, the peer speaks CURVE. Without both, it speaks plain ZMTP. */
  serverKey?: string;
  keys?: CurveKeyPair;
  routingId?: string;
  /** How long a send may wait for the connection (ms); 0 fails at once. @default 200 */
  sendTimeout?: number;
}

/** A raw DEALER that records everything it receives and every failed CURVE handshake. */
export class Peer {
  readonly received: Buffer[] = [];
  authFailures = 0;
  handshakes = 0;
  /** Connections the server closed (a CURVE handshake it failed ends that way too). */
  disconnects = 0;
  private closed = false;

  private constructor(readonly socket: zmq.Dealer) {}

  static connect(endpoint: string, options: PeerOptions = {}): Peer {
    const curve = options.serverKey && options.keys
      ? { curveServerKey: options.serverKey, curvePublicKey: options.keys.publicKey, curveSecretKey: options.keys.secretKey }
      : {};
    const id = options.routingId === undefined ? {} : { routingId: options.routingId };
    const socket = new zmq.Dealer({ linger: 0, sendTimeout: options.sendTimeout ?? 200, sendHighWaterMark: 100_000, ...id, ...curve });
    const peer = new Peer(socket);
    // Watch first: events of a connection made before the observer exists are lost.
    void peer.watch();
    void peer.receive();
    socket.connect(endpoint);
    return peer;
  }

  private async watch(): Promise<void> {
    try {
      for await (const event of this.socket.events) {
        if (event.type === 'handshake') this.handshakes++;
        if (event.type.startsWith('handshake:error')) this.authFailures++;
        if (event.type === 'disconnect') this.disconnects++;
      }
    } catch {
      // closed
    }
  }

  private async receive(): Promise<void> {
    try {
      for await (const frames of this.socket) this.received.push(frames[frames.length - 1]);
    } catch {
      // closed
    }
  }

  /** The server turned this peer away at least once (its handshake failed, or the server hung up). */
  get refused(): boolean {
    return this.authFailures > 0 || (this.disconnects > 0 && this.handshakes === 0);
  }

  /** Send a message (an object is msgpack-encoded); false when ZeroMQ would not take it. */
  async send(message: object | Buffer | Buffer[]): Promise<boolean> {
    if (this.closed) return false;
    try {
      await this.socket.send(Buffer.isBuffer(message) || Array.isArray(message) ? message : encodeRaw(message));
      return true;
    } catch {
      return false;
    }
  }

  /** The kinds of the received messages ("?" for what does not decode), for assertions and messages. */
  kinds(): string[] {
    return this.received.map((b) => {
      try {
        return decodeFrame(b).kind;
      } catch {
        return '?';
      }
    });
  }

  close(): void {
    this.closed = true;
    this.socket.close();
  }
}

/** Environment for the CLIs: nothing of the caller's FUNCX_* leaks in. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('FUNCX_')) env[k] = v;
  return { ...env, ...extra };
}

/** Run a CLI; rejects with its stderr when it exits non-zero. */
export function runCli(program: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [cliPath(program), ...args], { env, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${program} ${args.join(' ')} failed (${(err as { code?: unknown }).code}): ${stderr || stdout}`));
      else resolve({ stdout, stderr });
    });
  });
}

export interface CliStackOptions {
  /** Keep FUNCX_TOKEN in the environment of `funcx-endpoint start`, as examples/demo.ts does. @default true */
  tokenInStartEnv?: boolean;
}

/**
 * The whole system through its real programs: `funcx-service start` (detached, free port), a user, and
 * `funcx-endpoint init` in a temporary FUNCX_HOME. Call `startEndpoint()` (after writing a profile if the
 * test needs one), then use `sdk`. `stop()` stops both and removes the folder (FUNCX_TEST_KEEP keeps it).
 */
export class CliStack {
  endpointId = '';
  private endpointStarted = false;
  private serviceStarted = true;

  private constructor(
    readonly root: string,
    readonly env: NodeJS.ProcessEnv,
    readonly url: string,
    readonly token: string,
    readonly sdk: FuncXClient,
    private readonly options: CliStackOptions,
  ) {}

  /** FUNCX_HOME of the endpoint. */
  get home(): string {
    return this.env.FUNCX_HOME!;
  }

  get serviceHome(): string {
    return this.env.FUNCX_SERVICE_HOME!;
  }

  static async start(options: CliStackOptions = {}): Promise<CliStack> {
    const root = tmpDir('stack');
    const env = cleanEnv({
      FUNCX_HOME: join(root, 'home'),
      FUNCX_SERVICE_HOME: join(root, 'service'),
      FUNCX_SITE_TEMPLATES: join(root, 'no-site-templates'),
      FUNCX_LOG_LEVEL: 'info',
    });
    // As examples/demo.ts does: `funcx-service start` opens its log before creating its home.
    mkdirSync(env.FUNCX_SERVICE_HOME!, { recursive: true, mode: 0o700 });
    const started = await runCli('service', ['start', '--port', '0'], env);
    const url = /running at (\S+)/.exec(started.stdout)?.[1];
    if (!url) throw new Error(`cannot read the service URL from: ${started.stdout}`);
    env.FUNCX_SERVICE_URL = url;
    try {
      const token = /fx_[A-Za-z0-9_-]+/.exec((await runCli('service', ['user', 'add', 'alice'], env)).stdout)?.[0];
      if (!token) throw new Error('`funcx-service user add` printed no token');
      await runCli('endpoint', ['init', '--service', url], { ...env, FUNCX_TOKEN: token });
      return new CliStack(root, env, url, token, new FuncXClient({ serviceUrl: url, token }), options);
    } catch (err) {
      await runCli('service', ['stop'], env).catch(() => undefined);
      rmSync(root, { recursive: true, force: true });
      throw err;
    }
  }

  /** Replace the default profile's config.ts. */
  writeProfile(source: string): void {
    writeFileSync(join(this.home, 'default', 'config.ts'), source);
  }

  /** `funcx-endpoint start`; resolves once the endpoint is Active, with its id. */
  async startEndpoint(): Promise<string> {
    const env = this.options.tokenInStartEnv === false ? this.env : { ...this.env, FUNCX_TOKEN: this.token };
    await runCli('endpoint', ['start'], env);
    this.endpointStarted = true;
    const list = JSON.parse((await runCli('endpoint', ['list', '--json'], this.env)).stdout) as Array<{ id: string; name: string }>;
    this.endpointId = list.find((e) => e.name === 'default')?.id ?? '';
    if (!this.endpointId) throw new Error(`no endpoint id in \`funcx-endpoint list --json\`: ${JSON.stringify(list)}`);
    return this.endpointId;
  }

  /**
   * `funcx-service start` again after stopProcesses, at `port` (back at the same address); stop() stops it.
   * (A test's own `t.after` stop would run after stop() removed the home, pid file included: it leaked.)
   */
  async restartService(port: string): Promise<void> {
    await runCli('service', ['start', '--port', port], this.env);
    this.serviceStarted = true;
  }

  /** `funcx-endpoint start` with these flags (the default endpoint); stop() stops it. Resolves to its output. */
  async startEndpointWith(args: string[]): Promise<{ stdout: string; stderr: string }> {
    const out = await runCli('endpoint', ['start', ...args], { ...this.env, FUNCX_TOKEN: this.token });
    this.endpointStarted = true;
    return out;
  }

  /** Stop the endpoint and the service, keeping their files (safe to call twice). */
  async stopProcesses(): Promise<void> {
    if (this.endpointStarted) await runCli('endpoint', ['stop'], this.env).catch((err) => console.error(String(err)));
    this.endpointStarted = false;
    if (this.serviceStarted) await runCli('service', ['stop'], this.env).catch((err) => console.error(String(err)));
    this.serviceStarted = false;
  }

  /** Stop everything and remove the folder (FUNCX_TEST_KEEP keeps it). */
  async stop(): Promise<void> {
    await this.stopProcesses();
    if (process.env.FUNCX_TEST_KEEP) console.error(`kept ${this.root}`);
    else rmSync(this.root, { recursive: true, force: true });
  }
}

/**
 * A LocalProvider profile for the tests: one block of one manager with two workers, started with the
 * endpoint and kept, heartbeats fast enough for a test. `extra` goes into the Config as is (TypeScript source).
 */
export function localProfile(extra = '', engineExtra = ''): string {
  return `import { Config, LocalProvider } from 'funcx-endpoint';

export default new Config({
  engine: { address: '127.0.0.1', max_workers_per_node: 2, heartbeat_period: 2, heartbeat_threshold: 10, ${engineExtra} },
  provider: new LocalProvider({ nodes_per_block: 1, init_blocks: 1, min_blocks: 1, max_blocks: 1 }),
  strategy: { period: 1, max_idletime: 60 },
  ${extra}
});
`;
}
