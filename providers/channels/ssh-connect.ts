/**
 * Opening one `ssh2` connection: authentication by key or agent, and the host key checked against an
 * OpenSSH known_hosts file. An unknown, changed or revoked host key refuses the connection with a message
 * that says which and names the file.
 */
import { existsSync, readFileSync } from 'node:fs';
import ssh2 from 'ssh2';
import type { Client as SSHClient, ClientChannel, ConnectConfig, TcpConnectionDetails } from 'ssh2';
import { ConfigError, FuncxError } from '../../src/errors.js';
import { checkHostKey, parseKnownHosts, preferredHostKeyAlgorithms, type HostKeyVerdict } from './known-hosts.js';
import { expandHome } from './local.js';

/** Host key algorithms ssh2 offers, asked for after the ones known_hosts has keys for. */
const HOST_KEY_ALGORITHMS = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];

/** Error codes that retrying cannot fix. */
export const PERMANENT_SSH_ERRORS: ReadonlySet<string> = new Set(['SSH_HOST_KEY', 'SSH_AUTH', 'CONFIG']);

/** What one connection needs. */
export interface ConnectParams {
  hostname: string;
  port: number;
  username: string;
  /** Absolute path of the known_hosts file. */
  knownHosts: string;
  keyFilename?: string;
  /** Agent socket; undefined: none. */
  agent?: string;
  connectTimeoutMs: number;
  keepaliveMs: number;
  /** Called when the connection closes (after it was ready). */
  onClose: (client: SSHClient) => void;
  /** Called for errors after the connection was ready (the 'close' that follows is what matters). */
  onLateError: (err: Error) => void;
  /** Called for each connection to a reverse-forwarded port; return false to refuse it. */
  onForwarded: (info: TcpConnectionDetails, accept: () => ClientChannel) => boolean;
}

/** Open and authenticate a connection; rejects with a FuncxError (SSH_HOST_KEY, SSH_AUTH, SSH_CONNECT) or ConfigError. */
export function openConnection(p: ConnectParams): Promise<SSHClient> {
  const target = `${p.username}@${p.hostname}:${p.port}`;
  const { connect, entries, methods } = connectConfig(p, target);
  let verdict: HostKeyVerdict | undefined;
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    let ready = false;
    client.on('ready', () => {
      ready = true;
      resolve(client);
    });
    client.on('error', (err: Error & { level?: string }) => {
      if (ready) return p.onLateError(err);
      client.destroy();
      if (verdict && !verdict.ok) {
        reject(new FuncxError('SSH_HOST_KEY', `SSH to ${target} refused: ${verdict.message}`, hostKeySuggestions(p, verdict.reason)));
      } else if (err.level === 'client-authentication') {
        reject(new FuncxError('SSH_AUTH', `SSH authentication as ${p.username} at ${p.hostname}:${p.port} failed (tried ${methods})`, [
          'check that the public key is in ~/.ssh/authorized_keys on the remote host',
        ]));
      } else {
        reject(new FuncxError('SSH_CONNECT', `cannot connect to ${target}: ${err.message}`));
      }
    });
    client.on('close', () => {
      if (ready) p.onClose(client);
      else reject(new FuncxError('SSH_CONNECT', `cannot connect to ${target}: the connection closed during the handshake`));
    });
    client.on('tcp connection', (info, accept, refuse) => {
      if (!p.onForwarded(info, accept)) refuse();
    });
    client.connect({
      ...connect,
      hostVerifier: (key: Buffer) => {
        verdict = checkHostKey(entries, p.hostname, p.port, key, p.knownHosts);
        return verdict.ok;
      },
    });
  });
}

/** Everything ssh2 needs, read fresh at each connection (keys and known_hosts may have changed). */
function connectConfig(p: ConnectParams, target: string): { connect: ConnectConfig; entries: ReturnType<typeof parseKnownHosts>; methods: string } {
  if (!existsSync(p.knownHosts)) {
    throw new FuncxError('SSH_HOST_KEY', `SSH to ${target} refused: known_hosts file ${p.knownHosts} does not exist, so the host key cannot be checked`,
      hostKeySuggestions(p, 'unknown'));
  }
  const entries = parseKnownHosts(readFileSync(p.knownHosts, 'utf8'));
  const known = preferredHostKeyAlgorithms(entries, p.hostname, p.port);
  const connect: ConnectConfig = {
    host: p.hostname,
    port: p.port,
    username: p.username,
    readyTimeout: p.connectTimeoutMs,
    keepaliveInterval: p.keepaliveMs,
    keepaliveCountMax: 3,
    // Ask first for the key types we can check, as OpenSSH does.
    algorithms: { serverHostKey: [...known, ...HOST_KEY_ALGORITHMS.filter((a) => !known.includes(a))] as never },
  };
  const methods: string[] = [];
  if (p.keyFilename !== undefined) {
    const keyPath = expandHome(p.keyFilename);
    try {
      connect.privateKey = readFileSync(keyPath);
    } catch (err) {
      throw new ConfigError(`SSHChannel option key_filename: cannot read ${keyPath}: ${(err as Error).message}`);
    }
    methods.push(`key ${keyPath}`);
  }
  if (p.agent) {
    connect.agent = p.agent;
    methods.push(`agent ${p.agent}`);
  }
  if (methods.length === 0) {
    throw new ConfigError(`SSHChannel to ${target}: no key_filename and no SSH agent (SSH_AUTH_SOCK is not set)`);
  }
  return { connect, entries, methods: methods.join(', ') };
}

function hostKeySuggestions(p: ConnectParams, reason: string): string[] {
  const portArg = p.port === 22 ? '' : `-p ${p.port} `;
  if (reason === 'changed') {
    const name = p.port === 22 ? p.hostname : `'[${p.hostname}]:${p.port}'`;
    return [`if the host was really reinstalled, remove its old line with: ssh-keygen -R ${name} -f ${p.knownHosts}`];
  }
  return [
    `log in once with ssh ${portArg}${p.username}@${p.hostname} and accept the key after checking its fingerprint, ` +
      `or add it with: ssh-keyscan ${portArg}${p.hostname} >> ${p.knownHosts}`,
  ];
}

/** Ask the server to listen on its loopback `port` (0: it picks) and forward connections to us. */
export function forwardIn(client: SSHClient, port: number): Promise<number> {
  return new Promise((res, rej) => client.forwardIn('127.0.0.1', port, (e, bound) => (e ? rej(e) : res(bound || port))));
}
