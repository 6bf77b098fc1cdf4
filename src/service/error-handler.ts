/**
 * How the API answers an error: `{statusCode, code, message, ...details}`, with the status the error's kind
 * says (HttpError, body too large, database unavailable, FuncxError codes, fastify's own 4xx), and 404 for a
 * route that does not exist.
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import { FuncxError } from '../errors.js';
import type { ErrorBody } from '../protocol/http.js';
import { HttpError } from './auth.js';
import { QuotaExceededError, StoreUnavailableError } from './store/index.js';
import { quotaExceeded } from './limits.js';
import type { ServiceContext } from './routes/context.js';

/** What a 503 tells the client to wait while the database is unavailable. */
const RETRY_AFTER_SECONDS = 2;

/** The not-found and error handlers of the app. */
export function installErrorHandler(app: FastifyInstance, ctx: ServiceContext): void {
  app.setNotFoundHandler((request, reply) => {
    const body: ErrorBody = { statusCode: 404, code: 'NOT_FOUND', message: `no route ${request.method} ${request.url}` };
    void reply.code(404).send(body);
  });
  app.setErrorHandler((thrown: FastifyError | Error, request, reply) => {
    // The store's quota refusal becomes the API's 429.
    const err = thrown instanceof QuotaExceededError ? quotaExceeded(thrown) : thrown;
    let status = 500;
    let code = 'INTERNAL';
    let message = err.message;
    let details: Record<string, unknown> = {};
    if (err instanceof HttpError) {
      status = err.statusCode;
      code = err.code;
      details = err.details;
      for (const [k, v] of Object.entries(err.headers)) void reply.header(k, v);
    } else if ((err as FastifyError).code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      const limit = request.routeOptions.bodyLimit ?? ctx.limits.maxBodyBytes;
      status = 413;
      code = 'BODY_TOO_LARGE';
      message = `the request body is larger than ${limit} bytes, the limit of ${request.method} ${request.routeOptions.url ?? request.url}`;
      details = { limit };
      // fastify closes the connection with the body unread; read and drop it instead, so the client hears this.
      const announced = Number(request.headers['content-length']);
      if (Number.isSafeInteger(announced) && announced <= ctx.limits.lingerBodyBytes) void reply.removeHeader('connection');
    } else if (err instanceof StoreUnavailableError) {
      // The database is restarting or unreachable: nothing was changed, the client may simply retry.
      status = 503;
      code = err.code;
      void reply.header('retry-after', String(RETRY_AFTER_SECONDS));
      ctx.log.warn(`${request.method} ${request.url}: 503: ${err.message}`);
    } else if (err instanceof FuncxError) {
      code = err.code;
      status = { ENDPOINT_NOT_CONNECTED: 409, COMMAND_TIMEOUT: 504, FORWARDER_BIND: 503 }[err.code] ?? 500;
    } else if (typeof (err as FastifyError).statusCode === 'number' && (err as FastifyError).statusCode! < 500) {
      // fastify's own 4xx: bad JSON, body too large, wrong content type.
      status = (err as FastifyError).statusCode!;
      code = (err as FastifyError).code ?? 'BAD_REQUEST';
    } else {
      ctx.log.error(`${request.method} ${request.url}: ${err.stack ?? err.message}`);
      message = `internal error: ${err.message}`;
    }
    const body: ErrorBody = { statusCode: status, code, message, ...details };
    void reply.code(status).send(body);
  });
}
