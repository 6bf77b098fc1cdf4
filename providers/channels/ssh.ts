/**
 * The SSH channel: scheduler commands run on a remote login node over one reused `ssh2` connection, files
 * move over SFTP, and the worker port rides back through a reverse forward (so managers on the cluster reach
 * an endpoint that runs elsewhere, the reason Parsl dropped its SSH channel).
 */
import { connect as netConnect, type Socket } from 'node:net';
import { userInfo } from 'node:os';
import { posix } from 'node:path';
import type { Client as SSHClient, ClientChannel, SFTPWrapper } from 'ssh2';
import { ConfigError, FuncxError, IllegalStateError } from '../../src/errors.js';
import type { Channel, CommandResult, RunOptions } from './channel.js';
import { ENV_NAME, expandHome } from './local.js';
import { forwardIn, openConnection, PERMANENT_SSH_ERRORS } from './ssh-connect.js';
import { execCommand, SessionLimit } from './ssh-exec.js';
import { shQuote, startRelay } from './ssh-relay.js';

/** How the channel reports what it sees (same shape as the providers' logger). */
export type ChannelLogger = (level: 'debug' | 'info' | 'warn' | 'error', message: string) => void;

/** Options of {@link SSHChannel} (Parsl's names where Parsl has one). */
export interface SSHChannelOptions {
  /** The login node. */
  hostname: string;
  /** @default 22 */
  port?: number;
  /** @default the local user's name */
  username?: string;
  /** Private key file (OpenSSH format, unencrypted; use the agent for keys with a passphrase). @default none: the agent */
  key_filename?: string;
  /** ssh-agent socket; `false` disables the agent. @default $SSH_AUTH_SOCK */
  agent?: string | false;
  /** OpenSSH known_hosts file the host key is checked against (plain, `[host]:port` and hashed `|1|` lines). @default "~/.ssh/known_hosts" */
  known_hosts?: string;
  /** Remote folder for submit scripts; `~/…` and relative paths are taken from the remote `$HOME`. @default "~/.funcx/submit_scripts" */
  script_dir?: string;
  /** Seconds to wait for the connection and handshake. @default 15 */
  connect_timeout?: number;
  /** Seconds before a command without its own timeout is killed. @default 60 */
  cmd_timeout?: number;
  /** Seconds between SSH keepalives (a dead link is noticed after 3 unanswered). @default 15 */
  keepalive_interval?: number;
  /** Commands run at once over the connection (sshd's MaxSessions is 10; SFTP and the relay take one each). @default 6 */
  max_sessions?: number;
  /**
   * When set, exposePort also starts a relay on the login node listening on this address (one compute nodes
   * can reach, e.g. the login node's internal interface) and returns it instead of the loopback forward.
   * Needs python3 on the login node. Without it, managers must run where the login node's loopback is
   * reachable, or the site must allow `GatewayPorts clientspecified`. @default none
   */
  relay_address?: string;
  /** Where connection events are reported. @default warnings and errors to console.warn */
  logger?: ChannelLogger;
}

const DEFAULT_SCRIPT_DIR = '~/.funcx/submit_scripts';
const CONNECT_ATTEMPTS = 3;
const MAX_BACKOFF_MS = 30_000;

interface Forward {
  localHost: string;
  localPort: number;
  remotePort: number;
  relay?: { port: number };
}

/** Run commands, move files and forward ports on a remote host over SSH. */
export class SSHChannel implements Channel {
  readonly kind = 'ssh';
  readonly isRemote = true;
  readonly hostname: string;
  readonly port: number;
  readonly username: string;
  private readonly opts: SSHChannelOptions;
  private readonly knownHostsPath: string;
  private readonly cmdTimeoutMs: number;
  private readonly sessions: SessionLimit;
  private client: SSHClient | undefined;
  private connecting: Promise<SSHClient> | undefined;
  private sftpSession: { client: SSHClient; sftp: Promise<SFTPWrapper> } | undefined;
  private home: string | undefined;
  private closed = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly forwards = new Map<number, Forward>();
  private readonly sockets = new Set<Socket>();
  private readonly madeDirs = new Set<string>();

  constructor(options: SSHChannelOptions) {
    const where = 'SSHChannel option';
    if (!options || typeof options.hostname !== 'string' || !/^[A-Za-z0-9_.:-]+$/.test(options.hostname)) {
      throw new ConfigError(`${where} hostname: ${JSON.stringify(options?.hostname)} is not a host name or address`);
    }
    const positive = (field: keyof SSHChannelOptions, fallback: number, integer = false): number => {
      const v = options[field] ?? fallback;
      if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v) || (integer && !Number.isInteger(v))) {
        throw new ConfigError(`${where} ${field}: ${JSON.stringify(v)} must be a positive ${integer ? 'integer' : 'number'}`);
      }
      return v;
    };
    this.opts = options;
    this.hostname = options.hostname;
    this.port = positive('port', 22, true);
    if (this.port > 65535) throw new ConfigError(`${where} port: ${this.port} is above 65535`);
    this.username = options.username ?? userInfo().username;
    this.knownHostsPath = expandHome(options.known_hosts ?? '~/.ssh/known_hosts');
    this.cmdTimeoutMs = positive('cmd_timeout', 60) * 1000;
    positive('connect_timeout', 15);
    positive('keepalive_interval', 15);
    this.sessions = new SessionLimit(positive('max_sessions', 6, true));
    const dir = options.script_dir ?? DEFAULT_SCRIPT_DIR;
    if (typeof dir !== 'string' || dir.trim() === '') throw new ConfigError(`${where} script_dir: ${JSON.stringify(dir)} is not a folder path`);
    if (options.relay_address !== undefined && !/^[A-Za-z0-9_.:-]+$/.test(options.relay_address)) {
      throw new ConfigError(`${where} relay_address: ${JSON.stringify(options.relay_address)} is not an address`);
    }
  }

  /** user@host:port, for messages. */
  get target(): string {
    return `${this.username}@${this.hostname}:${this.port}`;
  }

  /**
   * The remote submit-script folder. A `~/…` or relative script_dir becomes absolute once connected (the
   * remote `$HOME` is asked then): call {@link connect} before rendering scripts.
   */
  get scriptDir(): string {
    return this.remotePath(this.opts.script_dir ?? DEFAULT_SCRIPT_DIR, true);
  }

  /** Connect now (otherwise the first command connects). Idempotent. */
  async connect(): Promise<void> {
    await this.connection();
  }

  async run(command: string, options: RunOptions = {}): Promise<CommandResult> {
    for (const name of Object.keys(options.env ?? {})) {
      if (!ENV_NAME.test(name)) throw new ConfigError(`SSHChannel.run: environment variable name ${JSON.stringify(name)} is not valid`);
    }
    await this.sessions.acquire();
    try {
      for (let attempt = 0; ; attempt++) {
        const client = await this.connection();
        try {
          return await this.exec(client, command, options);
        } catch (err) {
          // The connection dropped between our check and the channel open: reconnect once and retry.
          if (attempt > 0 || this.client === client) throw err;
        }
      }
    } finally {
      this.sessions.release();
    }
  }

  /** Relative paths are taken inside {@link scriptDir}; parent folders are created. */
  async writeFile(remotePath: string, content: string | Buffer, mode = 0o644): Promise<string> {
    const sftp = await this.sftp();
    const path = this.remotePath(remotePath);
    const dir = posix.dirname(path);
    if (!this.madeDirs.has(dir)) {
      const r = await this.run(`mkdir -p -- ${shQuote(dir)}`);
      if (r.code !== 0) throw this.fileError('create folder', dir, r.stderr.trim());
      this.madeDirs.add(dir);
    }
    try {
      await new Promise<void>((res, rej) => sftp.writeFile(path, content, { mode }, (e) => (e ? rej(e) : res())));
      // The mode given at creation is reduced by the remote umask, and an existing file keeps its mode.
      await new Promise<void>((res, rej) => sftp.chmod(path, mode, (e) => (e ? rej(e) : res())));
    } catch (err) {
      throw this.fileError('write', path, (err as Error).message);
    }
    return path;
  }

  async readFile(remotePath: string): Promise<Buffer> {
    const sftp = await this.sftp();
    const path = this.remotePath(remotePath);
    try {
      return await new Promise<Buffer>((res, rej) => sftp.readFile(path, (e, data) => (e ? rej(e) : res(data))));
    } catch (err) {
      throw this.fileError('read', path, (err as Error).message);
    }
  }

  /**
   * Reverse-forward a port of the login node to `localHost:localPort` here. The remote side picks the port
   * (`forwardIn('127.0.0.1', 0)`); the returned address is what managers should dial.
   *
   * Caveat: sshd's `GatewayPorts` defaults to `no`, so the forward listens on the login node's loopback only
   * and compute nodes cannot reach it. Set `relay_address` to also start a relay on the login node that
   * listens on an address compute nodes reach.
   */
  async exposePort(localHost: string, localPort: number): Promise<{ host: string; port: number }> {
    const client = await this.connection();
    const remotePort = await forwardIn(client, 0);
    const fwd: Forward = { localHost, localPort, remotePort };
    this.forwards.set(remotePort, fwd);
    this.log('info', `${this.target}: 127.0.0.1:${remotePort} on the remote side now leads to ${localHost}:${localPort}`);
    if (this.opts.relay_address === undefined) return { host: '127.0.0.1', port: remotePort };
    await this.startRelay(client, fwd);
    return { host: this.opts.relay_address, port: fwd.relay!.port };
  }

  /** Stop forwarding and end the connection. Safe to call more than once. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    const client = this.client ?? (await this.connecting?.catch(() => undefined));
    this.client = undefined;
    if (!client) return;
    await new Promise<void>((res) => {
      const t = setTimeout(res, 2000);
      client.once('close', () => {
        clearTimeout(t);
        res();
      });
      client.end();
    });
  }

  // ---- connection ---------------------------------------------------------------------------------------

  private connection(): Promise<SSHClient> {
    if (this.closed) return Promise.reject(new IllegalStateError(`SSH channel to ${this.target} is closed`));
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= this.connectWithRetry().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async connectWithRetry(): Promise<SSHClient> {
    for (let attempt = 1; ; attempt++) {
      try {
        const client = await this.connectOnce();
        this.client = client;
        try {
          await this.afterConnect(client);
        } catch (err) {
          this.client = undefined;
          client.end();
          throw err;
        }
        return client;
      } catch (err) {
        if (attempt >= CONNECT_ATTEMPTS || (err instanceof FuncxError && PERMANENT_SSH_ERRORS.has(err.code)) || this.closed) throw err;
        this.log('warn', `${(err as Error).message}; retrying`);
        await sleep(backoffMs(attempt - 1));
      }
    }
  }

  private connectOnce(): Promise<SSHClient> {
    const agent = this.opts.agent === undefined ? process.env.SSH_AUTH_SOCK : this.opts.agent || undefined;
    return openConnection({
      hostname: this.hostname,
      port: this.port,
      username: this.username,
      knownHosts: this.knownHostsPath,
      ...(this.opts.key_filename !== undefined ? { keyFilename: this.opts.key_filename } : {}),
      ...(agent ? { agent } : {}),
      connectTimeoutMs: (this.opts.connect_timeout ?? 15) * 1000,
      keepaliveMs: (this.opts.keepalive_interval ?? 15) * 1000,
      onClose: (client) => this.onDrop(client),
      onLateError: (err) => this.log('warn', `${this.target}: ${err.message}`),
      onForwarded: (info, accept) => {
        const fwd = this.forwards.get(info.destPort);
        if (!fwd) return false;
        this.pipeToLocal(accept(), fwd);
        return true;
      },
    });
  }

  /** Learn the remote home once, then restore forwards and relays after a reconnect. */
  private async afterConnect(client: SSHClient): Promise<void> {
    if (this.home === undefined) {
      const r = await this.exec(client, 'printf "%s" "$HOME"', {});
      if (r.code !== 0 || !r.stdout.startsWith('/')) throw new FuncxError('SSH_CONNECT', `${this.target}: cannot read the remote $HOME: ${r.stderr.trim()}`);
      this.home = r.stdout;
    }
    for (const fwd of this.forwards.values()) {
      try {
        await forwardIn(client, fwd.remotePort); // the same port: managers already dial it
        // The old relay may hold its port until it notices its session ended: try a few times.
        for (let i = 0; fwd.relay && i < 5; i++) {
          try {
            await this.startRelay(client, fwd);
            break;
          } catch (err) {
            if (i === 4) throw err;
            await sleep(500);
          }
        }
        this.log('info', `${this.target}: forward of remote port ${fwd.remotePort} restored`);
      } catch (err) {
        this.log('error', `${this.target}: cannot restore the forward of remote port ${fwd.remotePort}: ${(err as Error).message}`);
      }
    }
  }

  private onDrop(client: SSHClient): void {
    if (this.client !== client) return;
    this.client = undefined;
    this.sftpSession = undefined;
    if (this.closed) return;
    this.log('warn', `connection to ${this.target} lost`);
    if (this.forwards.size > 0) this.scheduleReconnect(0);
  }

  /** Forwards need a live connection even when no command runs: reconnect in the background. */
  private scheduleReconnect(attempt: number): void {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      if (this.closed || this.client) return;
      this.connection().then(
        () => this.log('info', `reconnected to ${this.target}`),
        (err: Error) => {
          this.log('error', `reconnecting to ${this.target}: ${err.message}`);
          this.scheduleReconnect(attempt + 1);
        },
      );
    }, backoffMs(attempt));
    this.reconnectTimer.unref();
  }

  private exec(client: SSHClient, command: string, options: RunOptions): Promise<CommandResult> {
    return execCommand(client, {
      command,
      ...(options.env ? { env: options.env } : {}),
      ...(options.cwd !== undefined ? { cwd: this.remotePath(options.cwd, true) } : {}),
      ...(options.stdin !== undefined ? { stdin: options.stdin } : {}),
      timeoutMs: options.timeoutMs ?? this.cmdTimeoutMs,
      target: this.target,
    });
  }

  // ---- files, paths, forwards ---------------------------------------------------------------------------

  private async sftp(): Promise<SFTPWrapper> {
    const client = await this.connection();
    if (this.sftpSession?.client !== client) {
      const sftp = new Promise<SFTPWrapper>((res, rej) => client.sftp((e, s) => (e ? rej(e) : res(s))));
      this.sftpSession = { client, sftp };
      sftp.catch(() => (this.sftpSession = undefined));
    }
    return this.sftpSession.sftp;
  }

  /** `~`, `~/x` → under the remote home; relative → under the script folder (or the home for the script folder itself). */
  private remotePath(path: string, fromHome = false): string {
    if (path.startsWith('/')) return posix.normalize(path);
    const rest = path === '~' ? '' : path.startsWith('~/') ? path.slice(2) : path;
    const base = fromHome || path === '~' || path.startsWith('~/') ? this.home : this.scriptDir;
    if (base === undefined || !base.startsWith('/')) return path; // not connected yet: shown as configured
    return posix.join(base, rest);
  }

  private fileError(what: string, path: string, why: string): FuncxError {
    return new FuncxError('SSH_FILE', `${this.target}: cannot ${what} ${path}: ${why}`);
  }

  private pipeToLocal(stream: ClientChannel, fwd: Forward): void {
    const sock = netConnect(fwd.localPort, fwd.localHost);
    this.sockets.add(sock);
    stream.pipe(sock).pipe(stream);
    const done = (): void => {
      this.sockets.delete(sock);
      sock.destroy();
      stream.destroy();
    };
    sock.on('error', done).on('close', done);
    stream.on('error', done).on('close', done);
  }

  private async startRelay(client: SSHClient, fwd: Forward): Promise<void> {
    const address = this.opts.relay_address!;
    const relay = await startRelay(client, { address, port: fwd.relay?.port ?? 0, targetPort: fwd.remotePort, target: this.target }, (why) => {
      if (!this.closed && this.client === client) this.log('error', `${this.target}: the relay on ${address} stopped: ${why}`);
    });
    fwd.relay = relay;
    this.log('info', `${this.target}: relay on ${address}:${relay.port} leads to remote port ${fwd.remotePort}`);
  }

  private log(level: 'debug' | 'info' | 'warn' | 'error', message: string): void {
    if (this.opts.logger) this.opts.logger(level, `ssh: ${message}`);
    else if (level === 'warn' || level === 'error') console.warn(`ssh: ${message}`);
  }
}

function backoffMs(attempt: number): number {
  return Math.min(MAX_BACKOFF_MS, 1000 * 2 ** attempt);
}

function sleep(ms: number): Promise<void> {
  return new Promise((res) => setTimeout(res, ms));
}
