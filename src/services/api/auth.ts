import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from './errors.js';

const digest = (value: string) => createHash('sha256').update(value).digest();

/** An onRequest hook requiring `Authorization: Bearer <token>`; digests make the comparison constant-time whatever the lengths. */
export function bearerAuth(token: string) {
  const expected = digest(token);
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const match = /^Bearer +(\S+) *$/i.exec(request.headers.authorization ?? '');
    if (match?.[1] && timingSafeEqual(digest(match[1]), expected)) return;
    reply.header('www-authenticate', 'Bearer realm="ferry"');
    throw new ApiError(401, match ? 'the bearer token is not valid' : 'a bearer token is required');
  };
}
