/**
 * The ~/.funcx layout ($FUNCX_HOME):
 *
 *   config.ts            global options: service URL, username, email, broker address/port, endpoint_address
 *   credentials.json     {serviceUrl, token}, 0600
 *   package.json         {"type": "module"} so profiles load as ES modules
 *   <name>/config.ts     the endpoint's profile (or config.yaml)
 *   <name>/endpoint.json {id, name}: written at first registration
 *   <name>/daemon.pid    the daemon's lease (pid, host, refreshed every few seconds)
 *   <name>/endpoint.log  the daemon's log
 *   <name>/keys/         CURVE key pairs (0700 folder, 0600 files)
 *   <name>/submit_scripts/  rendered block scripts and their output
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../errors.js';

export const DEFAULT_ENDPOINT = 'default';
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export interface EndpointInfo {
  /** The service's UUID for this endpoint; absent until registered. */
  id?: string;
  name: string;
  /** Service URL it registered with. */
  serviceUrl?: string;
  /** The username and email it registered with (global options). */
  metadata?: { username: string; email: string };
}

export interface Credentials {
  serviceUrl: string;
  token: string;
}

/** Global options from $FUNCX_HOME/config.ts (the seed's global_options). */
export interface GlobalOptions {
  service_url: string;
  username: string;
  email: string;
  broker_address: string;
  broker_port: number;
  /** Address managers dial when a profile's engine sets none. */
  endpoint_address: string;
}

export class FuncxHome {
  readonly root: string;

  constructor(root: string = process.env.FUNCX_HOME || join(homedir(), '.funcx')) {
    this.root = root;
  }

  get exists(): boolean {
    return existsSync(this.root);
  }

  get globalConfigFile(): string {
    return join(this.root, 'config.ts');
  }

  get credentialsFile(): string {
    return join(this.root, 'credentials.json');
  }

  /** Create the home (0700) with its package.json. */
  ensure(): void {
    mkdirSync(this.root, { recursive: true, mode: 0o700 });
    const pkg = join(this.root, 'package.json');
    if (!existsSync(pkg)) writeFileSync(pkg, JSON.stringify({ private: true, type: 'module' }, null, 2) + '\n');
  }

  static checkName(name: string): string {
    if (!NAME.test(name)) {
      throw new ConfigError(`endpoint name ${JSON.stringify(name)}: use 1-64 letters, digits, "_", "." or "-", starting with a letter or digit`);
    }
    return name;
  }

  endpointDir(name: string): string {
    return join(this.root, FuncxHome.checkName(name));
  }

  /** Profiles: folders holding a config.ts or config.yaml. */
  endpointNames(): string[] {
    if (!this.exists) return [];
    return readdirSync(this.root, { withFileTypes: true })
      .filter((e) => e.isDirectory() && NAME.test(e.name))
      .filter((e) => ['config.ts', 'config.yaml', 'config.yml'].some((f) => existsSync(join(this.root, e.name, f))))
      .map((e) => e.name)
      .sort();
  }

  isConfigured(name: string): boolean {
    return this.endpointNames().includes(name);
  }

  pidFile(name: string): string {
    return join(this.endpointDir(name), 'daemon.pid');
  }

  logFile(name: string): string {
    return join(this.endpointDir(name), 'endpoint.log');
  }

  keysDir(name: string): string {
    return join(this.endpointDir(name), 'keys');
  }

  submitScriptsDir(name: string): string {
    return join(this.endpointDir(name), 'submit_scripts');
  }

  /** Results sent to the forwarder and not yet acknowledged. */
  outboxDir(name: string): string {
    return join(this.endpointDir(name), 'outbox');
  }

  readEndpointInfo(name: string): EndpointInfo | null {
    const file = join(this.endpointDir(name), 'endpoint.json');
    if (!existsSync(file)) return null;
    try {
      return JSON.parse(readFileSync(file, 'utf8')) as EndpointInfo;
    } catch (err) {
      throw new ConfigError(`${file}: not valid JSON: ${(err as Error).message}`);
    }
  }

  writeEndpointInfo(name: string, info: EndpointInfo): void {
    writeJsonAtomic(join(this.endpointDir(name), 'endpoint.json'), info, 0o644);
  }

  readCredentials(): Credentials | null {
    if (!existsSync(this.credentialsFile)) return null;
    try {
      const c = JSON.parse(readFileSync(this.credentialsFile, 'utf8')) as Credentials;
      if (typeof c.token !== 'string' || typeof c.serviceUrl !== 'string') throw new Error('expected {serviceUrl, token}');
      return c;
    } catch (err) {
      throw new ConfigError(`${this.credentialsFile}: ${(err as Error).message}`);
    }
  }

  writeCredentials(credentials: Credentials): void {
    this.ensure();
    writeJsonAtomic(this.credentialsFile, credentials, 0o600);
  }
}

/** Write JSON through a temporary file and a rename, so a reader never sees half a file. */
export function writeJsonAtomic(path: string, value: unknown, mode: number): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n', { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}
