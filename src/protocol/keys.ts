/**
 * CURVE key pairs, kept in files readable by their owner only.
 */
import { curveKeyPair } from 'zeromq';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';

/** A CURVE key pair as Z85 strings (40 characters each). */
export interface CurveKeyPair {
  publicKey: string;
  secretKey: string;
}

export function newKeyPair(): CurveKeyPair {
  return curveKeyPair();
}

const Z85 = /^[0-9a-zA-Z.\-:+=^!/*?&<>()[\]{}@%$#]{40}$/;

export function isZ85Key(value: unknown): value is string {
  return typeof value === 'string' && Z85.test(value);
}

/** Write a key pair as JSON, mode 0600 (the folder 0700). */
export function writeKeyPair(path: string, pair: CurveKeyPair): void {
  writeFileSync(path, JSON.stringify(pair) + '\n', { mode: 0o600 });
  chmodSync(path, 0o600);
}

export function readKeyPair(path: string): CurveKeyPair {
  let parsed: Partial<CurveKeyPair>;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(`${path}: cannot read key pair: ${(err as Error).message}`);
  }
  if (!isZ85Key(parsed.publicKey) || !isZ85Key(parsed.secretKey)) {
    throw new ConfigError(`${path}: "publicKey" and "secretKey" must be 40-character Z85 CURVE keys`);
  }
  return { publicKey: parsed.publicKey, secretKey: parsed.secretKey };
}

/** Read the pair at `path`, or create it (0600) when absent. */
export function loadOrCreateKeyPair(path: string): CurveKeyPair {
  if (existsSync(path)) return readKeyPair(path);
  const pair = newKeyPair();
  writeKeyPair(path, pair);
  return pair;
}

/**
 * The key material of an endpoint's worker channel, in `dir` (the profile's keys/ folder):
 * `interchange.json` (the server's pair) and `manager.json` (the pair every manager of this endpoint uses).
 * Managers get the manager pair and the interchange's public key only.
 */
export interface WorkerChannelKeys {
  interchange: CurveKeyPair;
  manager: CurveKeyPair;
}

export function loadOrCreateWorkerChannelKeys(dir: string): WorkerChannelKeys {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  return {
    interchange: loadOrCreateKeyPair(join(dir, 'interchange.json')),
    manager: loadOrCreateKeyPair(join(dir, 'manager.json')),
  };
}

/** What a manager reads: its own pair and the server's public key. Written 0600. */
export interface ManagerKeyFile {
  serverPublicKey: string;
  publicKey: string;
  secretKey: string;
}

export function writeManagerKeyFile(path: string, keys: WorkerChannelKeys): void {
  const file: ManagerKeyFile = {
    serverPublicKey: keys.interchange.publicKey,
    publicKey: keys.manager.publicKey,
    secretKey: keys.manager.secretKey,
  };
  writeFileSync(path, JSON.stringify(file) + '\n', { mode: 0o600 });
  chmodSync(path, 0o600);
}

export function readManagerKeyFile(path: string): ManagerKeyFile {
  let parsed: Partial<ManagerKeyFile>;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(`${path}: cannot read manager key file: ${(err as Error).message}`);
  }
  for (const field of ['serverPublicKey', 'publicKey', 'secretKey'] as const) {
    if (!isZ85Key(parsed[field])) throw new ConfigError(`${path}: "${field}" must be a 40-character Z85 CURVE key`);
  }
  return parsed as ManagerKeyFile;
}
