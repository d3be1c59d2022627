/**
 * Cross-origin requests (CORS) for the dashboard: the page at /ui of one node polls every other
 * member directly, so it keeps working when the node that served it dies. A hand-written hook
 * rather than @fastify/cors: the policy is ten lines, and it must sit before authentication (a
 * preflight carries no Authorization header) and answer refusals from the error catalogue.
 *
 * Policy: only the cluster's own members' client origins (plus their loopback aliases, and
 * whatever the operator lists in `corsOrigins`) may read responses; a preflight from any other
 * origin is refused with 403 ORIGIN_NOT_ALLOWED. Requests without an Origin header (curl, the
 * CLI, other nodes) are not affected. Used by the node API (http.ts) and the dev cluster's
 * control server (cli/dev_control.ts).
 */
import type { FastifyInstance } from 'fastify';
import { ApiError } from './errors.ts';

const LOOPBACK = ['127.0.0.1', 'localhost', '[::1]'];

export const CORS_ALLOWED_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE';
export const CORS_ALLOWED_HEADERS = 'authorization, content-type, if-match, if-none-match, idempotency-key, x-session-token, last-event-id';
const EXPOSED_HEADERS = 'etag, x-session-token, x-served-by, x-consistency, x-applied-index, x-lag-entries, x-leader-contact-ms, x-forwarded-to, retry-after, location';

/** The origin of an http(s) URL (`http://127.0.0.1:7001`), or null when it is not one. */
export function originOf(url: string): string | null {
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return null;
    return parsed.origin;
  } catch {
    return null;
  }
}

/**
 * The origins a browser may use for these client URLs: each URL's origin, and for a loopback
 * host the same port on the other loopback names (a page opened at localhost:7001 polls
 * 127.0.0.1:7002). `extra` entries are taken as they are ('*' allows every origin).
 */
export function allowedOrigins(clientUrls: Iterable<string>, extra: Iterable<string> = []): Set<string> {
  const out = new Set<string>();
  for (const url of clientUrls) {
    const origin = originOf(url);
    if (origin === null) continue;
    out.add(origin);
    const parsed = new URL(origin);
    if (LOOPBACK.includes(parsed.hostname)) {
      for (const host of LOOPBACK) out.add(`${parsed.protocol}//${host}${parsed.port === '' ? '' : `:${parsed.port}`}`);
    }
  }
  for (const origin of extra) out.add(origin === '*' ? '*' : (originOf(origin) ?? origin));
  return out;
}

/**
 * Adds the CORS hook to `app`. Register it before any authentication hook: it answers
 * preflights itself. `origins()` is asked on every request with an Origin header.
 */
export function installCors(app: FastifyInstance, origins: () => ReadonlySet<string>): void {
  app.addHook('onRequest', async (request, reply) => {
    const origin = request.headers.origin;
    if (typeof origin !== 'string') return;
    const allowedSet = origins();
    const allowed = allowedSet.has('*') || allowedSet.has(origin);
    const preflight = request.method === 'OPTIONS' && request.headers['access-control-request-method'] !== undefined;
    if (allowed) {
      reply.header('access-control-allow-origin', origin);
      reply.header('vary', 'Origin');
      reply.header('access-control-expose-headers', EXPOSED_HEADERS);
    }
    // A browser sends simple cross-site POSTs without a preflight: refuse anything but reads
    // from a foreign origin outright, so no other web page can act on the cluster.
    if (!allowed && request.method !== 'GET' && request.method !== 'HEAD' && !preflight) {
      throw new ApiError('ORIGIN_NOT_ALLOWED', `${request.method} requests from ${origin} are not allowed (only the cluster members' own origins, and corsOrigins)`);
    }
    if (!preflight) return;
    if (!allowed) throw new ApiError('ORIGIN_NOT_ALLOWED', `cross-origin requests from ${origin} are not allowed (only the cluster members' own origins, and corsOrigins)`);
    const method = String(request.headers['access-control-request-method']).toUpperCase();
    if (!CORS_ALLOWED_METHODS.split(', ').includes(method)) {
      throw new ApiError('BAD_REQUEST', `method ${method} is not allowed (allowed: ${CORS_ALLOWED_METHODS})`);
    }
    reply.header('access-control-allow-methods', CORS_ALLOWED_METHODS);
    reply.header('access-control-allow-headers', CORS_ALLOWED_HEADERS);
    reply.header('access-control-max-age', '600');
    await reply.code(204).send();
    return reply;
  });
}
