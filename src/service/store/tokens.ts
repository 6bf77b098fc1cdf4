/**
 * User tokens: `fx_` + 32 random bytes in base64url; the store keeps only their SHA-256 hash.
 */
import { createHash, randomBytes } from 'node:crypto';

export function newToken(): string {
  return 'fx_' + randomBytes(32).toString('base64url');
}

/** The only form of a token the service keeps. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}
