import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import {
  checkHostKey, fingerprint, hostMatches, keyTypeOf, knownHostName, parseKnownHosts, preferredHostKeyAlgorithms,
} from '../../providers/channels/known-hosts.js';

/** A fake key blob in SSH wire format: string type, then bytes. */
function blob(type: string, fill: number): Buffer {
  const t = Buffer.from(type);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(t.length);
  return Buffer.concat([len, t, Buffer.alloc(32, fill)]);
}
const ED_A = blob('ssh-ed25519', 1);
const ED_B = blob('ssh-ed25519', 2);
const RSA = blob('ssh-rsa', 3);
const line = (hosts: string, key: Buffer, marker = ''): string => `${marker}${marker ? ' ' : ''}${hosts} ${keyTypeOf(key)} ${key.toString('base64')}`;

test('knownHostName uses [host]:port except on port 22, in lower case', () => {
  assert.equal(knownHostName('Login.Example.org', 22), 'login.example.org');
  assert.equal(knownHostName('127.0.0.1', 2222), '[127.0.0.1]:2222');
});

test('parse skips comments, blanks, bad lines and keeps markers and line numbers', () => {
  const entries = parseKnownHosts(`# c\n\n${line('a', ED_A)}\nbroken line\n${line('*', ED_B, '@revoked')}\n${line('b', RSA, '@cert-authority')}\n@weird x y z\n`);
  assert.deepEqual(entries.map((e) => [e.patterns, e.marker, e.line]), [['a', undefined, 3], ['*', 'revoked', 5], ['b', 'cert-authority', 6]]);
  assert.ok(entries[0].key.equals(ED_A));
});

test('host patterns: lists, wildcards, negation, brackets, hashed entries', () => {
  assert.ok(hostMatches('x,login1,y', 'login1'));
  assert.ok(hostMatches('login?.example.org', 'login3.example.org'));
  assert.ok(hostMatches('*.example.org,!bad.example.org', 'good.example.org'));
  assert.ok(!hostMatches('*.example.org,!bad.example.org', 'bad.example.org'));
  assert.ok(hostMatches('[127.0.0.1]:2222', '[127.0.0.1]:2222'));
  assert.ok(!hostMatches('127.0.0.1', '[127.0.0.1]:2222'));
  assert.ok(!hostMatches('login1', 'login10'));
  const salt = Buffer.alloc(20, 7);
  const hashed = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update('[h]:2222').digest('base64')}`;
  assert.ok(hostMatches(hashed, '[h]:2222'));
  assert.ok(!hostMatches(hashed, 'h'));
});

test('checkHostKey: accepted, changed, unknown, revoked', () => {
  const entries = parseKnownHosts([line('login', ED_A), line('other', ED_B), line('*', RSA, '@revoked')].join('\n'));
  assert.deepEqual(checkHostKey(entries, 'login', 22, ED_A, '/kh'), { ok: true, line: 1 });
  const changed = checkHostKey(entries, 'login', 22, ED_B, '/kh');
  assert.equal(changed.ok, false);
  assert.ok(!changed.ok && changed.reason === 'changed' && changed.message.includes('/kh') && changed.message.includes(fingerprint(ED_A)));
  const unknown = checkHostKey(entries, 'login', 2222, ED_A, '/kh');
  assert.ok(!unknown.ok && unknown.reason === 'unknown' && /\[login\]:2222 is not in \/kh/.test(unknown.message));
  const revoked = checkHostKey(entries, 'login', 22, RSA, '/kh');
  assert.ok(!revoked.ok && revoked.reason === 'revoked');
});

test('fingerprint matches ssh-keygen -l form; preferred algorithms follow the recorded key types', () => {
  assert.match(fingerprint(ED_A), /^SHA256:[A-Za-z0-9+/]{43}$/);
  const entries = parseKnownHosts([line('h', RSA), line('h', ED_A), line('z', blob('ecdsa-sha2-nistp256', 4))].join('\n'));
  assert.deepEqual(preferredHostKeyAlgorithms(entries, 'h', 22), ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa', 'ssh-ed25519']);
});
