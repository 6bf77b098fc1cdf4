/**
 * Bearer tokens → users, and the HTTP errors the API answers with (401 who are you, 403 not yours).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Store, User } from './store/index.js';
import type { AuthSnapshot, TokenWatch } from './token-watch.js';

/** An error the API turns into `{statusCode, code, message}` with that status. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    /** More fields for the error body (e.g. the limit or quota at fault). */
    readonly details: Record<string, unknown> = {},
    /** Response headers (e.g. Retry-After). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export function unauthorized(message: string): HttpError {
  return new HttpError(401, 'UNAUTHORIZED', message);
}

export function forbidden(message: string): HttpError {
  return new HttpError(403, 'FORBIDDEN', message);
}

export function notFound(message: string): HttpError {
  return new HttpError(404, 'NOT_FOUND', message);
}

export function badRequest(message: string, code = 'BAD_REQUEST'): HttpError {
  return new HttpError(400, code, message);
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated caller; set on every route except the public ones. */
    user: User | null;
    /** When its token was looked up (for the check after a long-poll, TokenWatch.needsRecheck). */
    auth: AuthSnapshot | null;
  }
}

/** The user a request's `Authorization: Bearer <token>` header names, or a 401 saying what is wrong. */
export async function authenticate(store: Store, header: string | undefined): Promise<User> {
  if (!header) {
    throw unauthorized('missing token: send "Authorization: Bearer <token>" (create one with `funcx-service user add NAME`)');
  }
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) throw unauthorized('malformed Authorization header: expected "Bearer <token>"');
  const user = await store.userByToken(match[1]);
  // Never echo the token back: it may be a real token of another service pasted by mistake.
  if (!user) throw unauthorized('invalid token: no user has this token (check FUNCX_TOKEN or your credentials.json)');
  return user;
}

/** Authenticate every request except those to `publicPaths`. */
export function installAuth(app: FastifyInstance, store: Store, publicPaths: readonly string[], tokenWatch?: TokenWatch): void {
  const open = new Set(publicPaths);
  app.decorateRequest('user', null);
  app.decorateRequest('auth', null);
  app.addHook('onRequest', async (request: FastifyRequest) => {
    if (open.has(request.routeOptions.url ?? '')) return;
    // Noted before the lookup: a change heard of while it runs makes the request check again.
    const at = Date.now();
    const epoch = tokenWatch?.epoch ?? 0;
    const user = await authenticate(store, request.headers.authorization);
    request.user = user;
    request.auth = { at, epoch, expiresAt: user.tokenExpiresAt };
  });
}

/** The authenticated caller (routes behind installAuth). */
export function userOf(request: FastifyRequest): User {
  if (!request.user) throw unauthorized('not authenticated');
  return request.user;
}
