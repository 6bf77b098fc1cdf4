/**
 * OpenSSH known_hosts: parse the file and decide whether a server's host key is the one on record.
 * Pure functions (no I/O) so every rule is tested without a server. Format: sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT".
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** One key line of a known_hosts file. */
export interface KnownHostEntry {
  /** `@revoked` lines name keys that must never be accepted; `@cert-authority` lines are not supported. */
  marker?: 'revoked' | 'cert-authority';
  /** The comma-separated host patterns, or one hashed `|1|salt|hash` entry. */
  patterns: string;
  /** Key type as written (e.g. "ssh-ed25519"). */
  keyType: string;
  /** The key blob (SSH wire format), as the server sends it. */
  key: Buffer;
  /** 1-based line number, for messages. */
  line: number;
}

/** Parse a known_hosts file. Lines that cannot be read are skipped, as OpenSSH does. */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const fields = line.split(/\s+/);
    let marker: KnownHostEntry['marker'];
    if (fields[0].startsWith('@')) {
      const m = fields.shift()!;
      if (m === '@revoked') marker = 'revoked';
      else if (m === '@cert-authority') marker = 'cert-authority';
      else return;
    }
    if (fields.length < 3) return;
    const [patterns, keyType, b64] = fields;
    if (!/^[A-Za-z0-9+/]+=*$/.test(b64)) return;
    const key = Buffer.from(b64, 'base64');
    if (key.length === 0) return;
    entries.push({ ...(marker ? { marker } : {}), patterns, keyType, key, line: index + 1 });
  });
  return entries;
}

/** The name OpenSSH looks up: `host` on port 22, `[host]:port` otherwise (lower case). */
export function knownHostName(host: string, port: number): string {
  const h = host.toLowerCase();
  return port === 22 ? h : `[${h}]:${port}`;
}

/** Glob match with `*` and `?`, as OpenSSH's match_pattern (case-insensitive for host names). */
function globMatch(pattern: string, name: string): boolean {
  const re = new RegExp(
    `^${pattern
      .toLowerCase()
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
  return re.test(name);
}

/** Does a hashed `|1|salt|hash` pattern stand for `name`? */
function hashedMatch(pattern: string, name: string): boolean {
  const parts = pattern.split('|');
  if (parts.length !== 4 || parts[1] !== '1') return false;
  const salt = Buffer.from(parts[2], 'base64');
  const want = Buffer.from(parts[3], 'base64');
  const got = createHmac('sha1', salt).update(name).digest();
  return want.length === got.length && timingSafeEqual(want, got);
}

/** Does the entry's host field match `name` (from {@link knownHostName})? A matching `!pattern` excludes it. */
export function hostMatches(patterns: string, name: string): boolean {
  if (patterns.startsWith('|')) return hashedMatch(patterns, name);
  let matched = false;
  for (const p of patterns.split(',')) {
    if (p.startsWith('!')) {
      if (globMatch(p.slice(1), name)) return false;
    } else if (globMatch(p, name)) {
      matched = true;
    }
  }
  return matched;
}

/** The key type written inside a key blob (its first SSH string). */
export function keyTypeOf(key: Buffer): string {
  if (key.length < 4) return 'unknown';
  const len = key.readUInt32BE(0);
  if (len > key.length - 4) return 'unknown';
  return key.subarray(4, 4 + len).toString('latin1');
}

/** `SHA256:…` fingerprint as `ssh-keygen -l` prints it. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/** Outcome of checking a server's host key. */
export type HostKeyVerdict =
  | { ok: true; line: number }
  | { ok: false; reason: 'unknown' | 'changed' | 'revoked'; message: string };

/**
 * Check `key` (as sent by the server at `host`:`port`) against known_hosts `entries` read from `file`.
 * - a `@revoked` line with this key refuses it;
 * - a line for this host with this key accepts it;
 * - lines for this host with other keys: "changed" (possible man-in-the-middle);
 * - no line for this host: "unknown".
 */
export function checkHostKey(entries: KnownHostEntry[], host: string, port: number, key: Buffer, file: string): HostKeyVerdict {
  const name = knownHostName(host, port);
  const type = keyTypeOf(key);
  const fp = fingerprint(key);
  const revoked = entries.find((e) => e.marker === 'revoked' && e.key.equals(key));
  if (revoked) {
    return { ok: false, reason: 'revoked', message: `the ${type} host key of ${name} (${fp}) is marked @revoked in ${file} line ${revoked.line}; refusing to connect` };
  }
  const forHost = entries.filter((e) => e.marker === undefined && hostMatches(e.patterns, name));
  const same = forHost.find((e) => e.key.equals(key));
  if (same) return { ok: true, line: same.line };
  if (forHost.length > 0) {
    const recorded = forHost.map((e) => `${e.keyType} ${fingerprint(e.key)} (line ${e.line})`).join(', ');
    return {
      ok: false,
      reason: 'changed',
      message:
        `the host key of ${name} has CHANGED: the server offered ${type} ${fp}, but ${file} records ${recorded}. ` +
        'Someone may be intercepting the connection, or the host was reinstalled; refusing to connect',
    };
  }
  return {
    ok: false,
    reason: 'unknown',
    message: `the host ${name} is not in ${file} (the server offered ${type} ${fp}); refusing to connect to an unknown host`,
  };
}

/** Host key algorithms for the key types on record for this host, so the server is asked for a key we can check. */
export function preferredHostKeyAlgorithms(entries: KnownHostEntry[], host: string, port: number): string[] {
  const name = knownHostName(host, port);
  const algos: string[] = [];
  for (const e of entries) {
    if (e.marker !== undefined || !hostMatches(e.patterns, name)) continue;
    const type = keyTypeOf(e.key);
    // An RSA key is used with the SHA-2 signature algorithms of RFC 8332 first.
    const forType = type === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [type];
    for (const a of forType) if (!algos.includes(a)) algos.push(a);
  }
  return algos;
}
