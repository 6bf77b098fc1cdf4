/**
 * Dashboard sign-in: a token pasted once is exchanged for a random session id in an HttpOnly,
 * SameSite=Strict cookie (the token itself is never stored in the browser nor put in a URL). Each session
 * has its own CSRF token, which the page reads from GET /ui/api/session and sends back in X-CSRF-Token on
 * every state-changing request. Sessions live in memory (a service restart signs everyone out), bounded
 * in number and age.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';

export const SESSION_COOKIE = 'funcx_session';
export const CSRF_HEADER = 'x-csrf-token';

export interface Session { id: string; userId: string; csrf: string; expiresAt: number }

export interface SessionOptions {
  /** @default 12 hours */
  ttlMs?: number;
  /** Oldest sessions are dropped past this many. @default 10000 */
  max?: number;
}

export class Sessions {
  private readonly byId = new Map<string, Session>();
  private readonly ttlMs: number;
  private readonly max: number;

  constructor(options: SessionOptions = {}) {
    this.ttlMs = options.ttlMs ?? 12 * 3600 * 1000;
    this.max = options.max ?? 10_000;
  }

  create(userId: string): Session {
    const session: Session = { id: randomBytes(32).toString('base64url'), userId, csrf: randomBytes(32).toString('base64url'), expiresAt: Date.now() + this.ttlMs };
    this.byId.set(session.id, session);
    while (this.byId.size > this.max) this.byId.delete(this.byId.keys().next().value as string);
    return session;
  }

  get(id: string | undefined): Session | undefined {
    if (!id) return undefined;
    const s = this.byId.get(id);
    if (s && s.expiresAt < Date.now()) {
      this.byId.delete(id);
      return undefined;
    }
    return s;
  }

  delete(id: string): void {
    this.byId.delete(id);
  }

  get ttlSeconds(): number {
    return Math.floor(this.ttlMs / 1000);
  }
}

/** The cookies of a Cookie header (first value wins; values are not URL-decoded: ours are base64url). */
export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    if (!out.has(name)) out.set(name, part.slice(eq + 1).trim());
  }
  return out;
}

export function sessionCookie(id: string, maxAgeS: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeS}${secure ? '; Secure' : ''}`;
}

export function clearedCookie(secure: boolean): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${secure ? '; Secure' : ''}`;
}

export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
