import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { InvalidInputError } from '../domain/errors.js';
import { RegistryError } from '../registry/errors.js';
import { UnknownRecordError } from '../application/errors.js';
import { ConflictError, isStoreUnavailable, NotFoundError } from '../store/errors.js';

/** The body of every error answer. */
export interface ErrorBody {
  error: string;
  message: string;
  /** The offending request field, as `body.trigger.schedule` or `querystring.limit`. */
  field?: string;
}

/** An answer other than success, thrown by a handler. */
export class ApiError extends Error {
  override readonly name = 'ApiError';

  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

function body(statusCode: number, message: string, field?: string): ErrorBody {
  return { error: STATUS_CODES[statusCode] ?? 'Error', message, ...(field ? { field } : {}) };
}

/** Where schema validation failed, and why, in the request's own terms. */
function validationFailure(error: FastifyError): ErrorBody {
  const [first] = error.validation ?? [];
  const path = (first?.instancePath ?? '').split('/').filter(Boolean).map((part) => part.replaceAll('~1', '/').replaceAll('~0', '~'));
  const named = first?.params['missingProperty'] ?? first?.params['additionalProperty'];
  if (typeof named === 'string') path.push(named);
  const field = [error.validationContext ?? 'body', ...path].join('.');
  switch (first?.keyword) {
    case 'required':
      return body(400, `${field} is required`, field);
    case 'additionalProperties':
      return body(400, `${field} is not allowed`, field);
    default:
      return body(400, first?.message ? `${field} ${first.message}` : error.message, field);
  }
}

/** Maps what handlers and the store throw to status codes; anything unforeseen is logged and answered 500. */
export function errorHandler(logger: Logger) {
  return (error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply => {
    if (error.validation) return reply.code(400).send(validationFailure(error));
    // The domain checks request bodies: its field paths start inside the body.
    if (error instanceof InvalidInputError) return reply.code(400).send(body(400, `body.${error.field} ${error.problem}`, `body.${error.field}`));
    if (error instanceof ApiError) return reply.code(error.statusCode).send(body(error.statusCode, error.message));
    if (error instanceof UnknownRecordError) return reply.code(404).send(body(404, error.message));
    if (error instanceof ConflictError) return reply.code(409).send(body(409, error.message));
    if (isStoreUnavailable(error)) {
      logger.warn({ err: error }, `${request.method} ${request.routeOptions.url ?? request.url}: the database is unavailable`);
      return reply.code(503).header('retry-after', '5').send(body(503, 'the database is unavailable; try again shortly'));
    }
    if (error instanceof NotFoundError) return reply.code(400).send(body(400, error.message));
    // A policy whose settings cannot work is the caller's to fix; a registry that fails is upstream's.
    if (error instanceof RegistryError) {
      const status = error.code === 'INVALID_CONFIG' || error.code === 'INVALID_REFERENCE' ? 409 : 502;
      return reply.code(status).send(body(status, error.message));
    }
    const status = error.statusCode ?? 500;
    if (status >= 400 && status < 500) return reply.code(status).send(body(status, error.message));
    logger.error({ err: error, method: request.method, url: request.routeOptions.url }, `${request.method} ${request.routeOptions.url ?? request.url} failed: ${error.message}`);
    return reply.code(500).send(body(500, 'internal error'));
  };
}
