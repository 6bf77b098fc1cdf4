/**
 * The files of the service's home it reads at start: the TLS certificate and key, the forwarder's shared key
 * pair (`--forwarder-key`), and this replica's stable name.
 */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { readKeyPair, type CurveKeyPair } from '../protocol/keys.js';
import { FuncxError } from '../errors.js';

/** The PEM files of `--tls-cert/--tls-key`, or an error naming the one that cannot be read. */
export function readTls(tls: { cert: string; key: string }): { cert: Buffer; key: Buffer } {
  const read = (path: string, what: string) => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new FuncxError('CONFIG', `cannot read the TLS ${what} ${path}: ${(err as Error).message}`);
    }
  };
  return { cert: read(tls.cert, 'certificate'), key: read(tls.key, 'key') };
}

/**
 * The forwarder key pair every replica of a facility presents (`--forwarder-key FILE`): an endpoint pins the
 * key it first learns, so replicas behind one address must share it, as they share the TLS key. The file must
 * exist and be readable by its owner only; the secret never goes into the database or its backups.
 */
export function sharedForwarderKeys(file: string): CurveKeyPair {
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch (err) {
    throw new FuncxError('CONFIG', `--forwarder-key ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file (copy keys/forwarder.json of the first replica, 0600)' : (err as Error).message}`);
  }
  if (mode & 0o077) {
    throw new FuncxError('CONFIG', `--forwarder-key ${file}: readable by others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`);
  }
  return readKeyPair(file);
}

/** This replica's stable name (HOME/replica-id, created once). */
export function loadOrCreateReplicaId(home: string): string {
  const path = join(home, 'replica-id');
  if (existsSync(path)) {
    const id = readFileSync(path, 'utf8').trim();
    if (/^[A-Za-z0-9._:-]{1,100}$/.test(id)) return id;
  }
  const id = randomUUID();
  writeFileSync(path, id + '\n', { mode: 0o600 });
  return id;
}
