/**
 * Trust on first use for the forwarder's CURVE key: the first key an endpoint learns from the service's
 * registration answer is pinned in its keys folder (0600), and a later answer with another key is refused:
 * whoever answers at the service's address with another key is not the forwarder the endpoint first met
 * (a hijacked DNS name, a plain-HTTP man in the middle). If the service's operator replaced its keys, the
 * endpoint's owner says so with `funcx-endpoint start NAME --reset-forwarder-key`, which forgets the pin.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { FuncxError } from '../../errors.js';
import { isZ85Key } from '../../protocol/keys.js';

export interface ForwarderPin {
  publicKey: string;
  /** Where it was learnt, for the message when it changes. */
  serviceUrl: string;
  pinnedAt: string;
}

/** The pin file of an endpoint: KEYS_DIR/forwarder-pin.json. */
export function forwarderPinPath(keysDir: string): string {
  return join(keysDir, 'forwarder-pin.json');
}

export function readForwarderPin(path: string): ForwarderPin | undefined {
  if (!existsSync(path)) return undefined;
  let pin: Partial<ForwarderPin>;
  try {
    pin = JSON.parse(readFileSync(path, 'utf8')) as Partial<ForwarderPin>;
  } catch (err) {
    throw new FuncxError('CONFIG', `${path}: not JSON (${(err as Error).message})`, ['remove it, or start with --reset-forwarder-key']);
  }
  if (!isZ85Key(pin.publicKey)) throw new FuncxError('CONFIG', `${path}: "publicKey" is not a 40-character Z85 key`, ['start with --reset-forwarder-key']);
  return { publicKey: pin.publicKey, serviceUrl: String(pin.serviceUrl ?? ''), pinnedAt: String(pin.pinnedAt ?? '') };
}

/** Forget the pinned key (--reset-forwarder-key); true when there was one. */
export function resetForwarderPin(path: string): boolean {
  const had = existsSync(path);
  rmSync(path, { force: true });
  return had;
}

/**
 * Pin `publicKey` if nothing is pinned yet; throw FORWARDER_KEY_CHANGED when another key is pinned. The
 * file is written whole (temporary file, then rename) with mode 0600.
 */
export function checkForwarderPin(path: string, serviceUrl: string, publicKey: string): void {
  const pinned = readForwarderPin(path);
  if (pinned) {
    if (pinned.publicKey === publicKey) return;
    throw new FuncxError(
      'FORWARDER_KEY_CHANGED',
      `the forwarder at ${serviceUrl} offers key ${publicKey.slice(0, 8)}…, not the key ${pinned.publicKey.slice(0, 8)}… this endpoint pinned ` +
        `(learnt from ${pinned.serviceUrl || 'the service'} at ${pinned.pinnedAt || 'its first registration'}): refusing to connect`,
      [
        'someone may be answering in the service\'s place: check the service URL and that it uses https',
        'if the service\'s operator replaced its keys, start the endpoint with --reset-forwarder-key',
      ],
    );
  }
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const pin: ForwarderPin = { publicKey, serviceUrl, pinnedAt: new Date().toISOString() };
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(pin, null, 2) + '\n', { mode: 0o600 });
  renameSync(tmp, path);
}
