/**
 * The HTTP API (documented in docs/api.md), built on Fastify. `buildApp` only builds; listening
 * is main.ts's job, so tests can use `app.inject()` without sockets.
 *
 * Writes that reach a follower are forwarded to the leader by this node (one hop, marked with
 * X-Understudy-Forwarded-By so a request never loops); the client never needs to know the leader.
 * Every error is `{ code, message, ... }` with a status from the catalogue (errors.ts); anything a
 * client sends that we cannot parse is a 4xx, never a 500.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { request as httpRequest } from 'undici';
import type { LogIndex, MembershipChange } from '../consensus/types.ts';
import { parseHostPort } from './config.ts';
import { validateIdempotencyKey, type ChangeRecord, type OpResult, type StoredDocument } from '../documents/index.ts';
import { ApiError, ERROR_CATALOGUE } from './errors.ts';
import { NotLeaderError, type AckLevel, type ReadConsistency, type ReadMeta, type UnderstudyNode, type UserOp, type WriteRequest, type WriteResponse } from './node.ts';
import type { NodeMetrics } from './metrics.ts';
import { allowedOrigins, installCors } from './cors.ts';
import { LATENCY_BUCKET_BASE, LATENCY_BUCKET_MIN_MS } from './history.ts';
import { registerBackupRoute } from './backup.ts';
import { chooseSwitchoverTarget, SwitchoverRefused, SWITCHOVER_DEFAULTS, waitForNewLeader, type SwitchoverView } from './switchover.ts';

export interface AppOptions {
  readonly node: UnderstudyNode;
  readonly metrics?: NodeMetrics;
  readonly bodyBytesMax: number;
  readonly authToken: string | null;
  readonly writeTimeoutMs: number;
  readonly readTimeoutMs: number;
  /** Extra routes (the dashboard, dev-cluster controls) registered by the caller. */
  readonly extend?: (app: FastifyInstance) => void;
}

const FORWARDED_HEADER = 'x-understudy-forwarded-by';
const ACK_LEVELS: readonly AckLevel[] = ['leader', 'majority', 'all'];
const CONSISTENCIES: readonly ReadConsistency[] = ['linearizable', 'session', 'stale'];
const LIST_LIMIT_MAX = 1000;

type Query = Record<string, string | undefined>;

function queryOf(request: FastifyRequest, allowed: readonly string[]): Query {
  const raw = (request.query ?? {}) as Record<string, unknown>;
  const out: Query = {};
  for (const [key, value] of Object.entries(raw)) {
    if (!allowed.includes(key)) throw new ApiError('UNKNOWN_PARAMETER', `unknown query parameter '${key}' (allowed: ${allowed.join(', ') || 'none'})`);
    if (typeof value !== 'string') throw new ApiError('INVALID_PARAMETER', `query parameter '${key}' must be given once`);
    out[key] = value;
  }
  return out;
}

function intParam(value: string | undefined, name: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new ApiError('INVALID_PARAMETER', `'${name}' must be an integer`);
  const parsed = Number(value);
  if (parsed < min || parsed > max) throw new ApiError('INVALID_PARAMETER', `'${name}' must be between ${min} and ${max}`);
  return parsed;
}

function enumParam<T extends string>(value: string | undefined, name: string, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(value)) throw new ApiError('INVALID_PARAMETER', `'${name}' must be one of ${allowed.join(', ')}`);
  return value as T;
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  if (Array.isArray(value)) throw new ApiError('INVALID_PARAMETER', `header ${name} must be given once`);
  return value;
}

/** If-Match: a version number, bare or as an ETag ("3" or W/"3"). */
function ifMatchOf(request: FastifyRequest): number | undefined {
  const value = header(request, 'if-match');
  if (value === undefined) return undefined;
  const match = /^\s*(?:W\/)?"?(\d{1,15})"?\s*$/.exec(value);
  if (match === null || Number(match[1]) < 1) throw new ApiError('INVALID_PARAMETER', 'If-Match must be a document version, a positive integer (for example "3")');
  return Number(match[1]);
}

function ifNoneMatchOf(request: FastifyRequest): boolean {
  const value = header(request, 'if-none-match');
  if (value === undefined) return false;
  if (value.trim() !== '*') throw new ApiError('INVALID_PARAMETER', 'If-None-Match supports only * (create only)');
  return true;
}

function idempotencyKeyOf(request: FastifyRequest): string | undefined {
  const key = header(request, 'idempotency-key');
  if (key === undefined) return undefined;
  const problem = validateIdempotencyKey(key);
  if (problem !== null) throw new ApiError('INVALID_IDEMPOTENCY_KEY', problem.message);
  return key;
}

function sessionTokenOf(request: FastifyRequest, query: Query): string | undefined {
  return query['token'] ?? header(request, 'x-session-token');
}

function documentJson(doc: StoredDocument): Record<string, unknown> {
  return { collection: doc.collection, id: doc.id, version: doc.version, index: doc.index, updatedAtMs: doc.updatedAtMs, body: doc.body };
}

function setReadHeaders(reply: FastifyReply, meta: ReadMeta): void {
  reply.header('x-consistency', meta.consistency);
  reply.header('x-served-by', meta.node);
  reply.header('x-applied-index', String(meta.appliedIndex));
  if (meta.lagEntries !== undefined) reply.header('x-lag-entries', String(meta.lagEntries));
  if (meta.lastLeaderContactMsAgo !== undefined && meta.lastLeaderContactMsAgo !== null) reply.header('x-leader-contact-ms', String(meta.lastLeaderContactMsAgo));
}

/** The body of a write's answer; a single-op write also carries that op's result at the top level. */
function writeBody(response: WriteResponse, single?: OpResult): Record<string, unknown> {
  const body: Record<string, unknown> = {
    status: response.status, ack: response.ack, index: response.index, term: response.term, duplicate: response.duplicate,
    sessionToken: response.sessionToken, results: response.results,
  };
  if (single !== undefined) {
    // Member by member: a spread here showed in the leader's profile.
    body['collection'] = single.collection;
    body['id'] = single.id;
    body['version'] = single.version;
    body['index'] = single.index;
    body['deleted'] = single.deleted;
  }
  return body;
}

function sendError(reply: FastifyReply, error: ApiError): FastifyReply {
  const body = error.toJSON();
  const retryAfterMs = error.details['retryAfterMs'];
  if (typeof retryAfterMs === 'number') reply.header('retry-after', String(Math.max(1, Math.ceil(retryAfterMs / 1000))));
  return reply.code(error.status).type('application/json').send(body);
}

/**
 * Fastify body parser for JSON: an empty body is no body (the route decides whether it needs
 * one); bad JSON is 400 INVALID_JSON from the catalogue, never Fastify's own error shape.
 */
export function parseJsonBody(_request: unknown, body: string | Buffer, done: (error: Error | null, value?: unknown) => void): void {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  if (text.trim() === '') {
    done(null, undefined);
    return;
  }
  try {
    done(null, JSON.parse(text));
  } catch (error) {
    done(new ApiError('INVALID_JSON', `the body is not valid JSON: ${(error as Error).message}`), undefined);
  }
}

export function buildApp(options: AppOptions): FastifyInstance {
  const { node } = options;
  const followStreams = new Set<import('node:http').ServerResponse>();
  const app = Fastify({
    bodyLimit: options.bodyBytesMax,
    logger: false,
    return503OnClosing: true,
    // Ids may be 256 characters, and URL-encoding can triple them.
    routerOptions: { maxParamLength: 1024 },
    ajv: { customOptions: { removeAdditional: false } },
    frameworkErrors: (error, _request, reply) => {
      const message = error.code === 'FST_ERR_BAD_URL' ? 'the URL is not valid (bad percent-encoding)' : error.message;
      void sendError(reply, new ApiError('BAD_REQUEST', message));
    },
  });
  // Only JSON bodies are accepted: without this, Fastify's text parser would take text/plain.
  app.removeContentTypeParser('text/plain');
  // Followers of the change feed hold their connection open: end them so shutdown completes.
  app.addHook('preClose', async () => {
    for (const stream of followStreams) stream.end();
    followStreams.clear();
  });

  app.addContentTypeParser(['application/json', 'application/merge-patch+json'], { parseAs: 'string' }, parseJsonBody);

  // CORS for the dashboard, which polls every member from the page one of them served. Before
  // authentication: a preflight carries no token.
  installCors(app, () => allowedOrigins(memberClientUrls(node), node.config.corsOrigins ?? []));

  app.addHook('onRequest', async (request, reply) => {
    (request as FastifyRequest & { startedAt?: number }).startedAt = performance.now();
    // The dashboard's static files hold no data: a browser must load them before it can send a token.
    if (options.authToken === null || request.url.startsWith('/v1/health/') || isDashboardPath(request.url)) return;
    const authorization = request.headers.authorization;
    if (authorization !== `Bearer ${options.authToken}`) {
      reply.header('www-authenticate', 'Bearer realm="understudy"');
      throw new ApiError('UNAUTHORIZED', 'a valid bearer token is required (Authorization: Bearer <token>)');
    }
  });

  app.addHook('onResponse', async (request, reply) => {
    const metrics = options.metrics;
    if (metrics === undefined) return;
    const route = request.routeOptions.url ?? 'unmatched';
    const startedAt = (request as FastifyRequest & { startedAt?: number }).startedAt;
    if (startedAt === undefined) {
      metrics.requests.inc({ method: request.method, route, status: String(reply.statusCode) });
      return;
    }
    metrics.observeRequest(request.method, route, reply.statusCode, (performance.now() - startedAt) / 1000, request.headers[FORWARDED_HEADER] !== undefined);
  });

  app.setErrorHandler((error, request, reply) => {
    if (error instanceof ApiError) return sendError(reply, error);
    if (error instanceof NotLeaderError) {
      if (error.leaderId === null) return sendError(reply, new ApiError('NO_LEADER', 'no leader is known right now; retry shortly', { retryAfterMs: 200 }));
      return sendError(reply, new ApiError('NOT_LEADER', `this node is not the leader; the leader is ${error.leaderId}`, { leaderId: error.leaderId, leaderUrl: error.leaderClientUrl, retryAfterMs: 100 }));
    }
    const code = (error as { code?: string }).code;
    const statusCode = (error as { statusCode?: number }).statusCode;
    if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') return sendError(reply, new ApiError('BODY_TOO_LARGE', `the body exceeds ${options.bodyBytesMax} bytes`));
    if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return sendError(reply, new ApiError('UNSUPPORTED_MEDIA_TYPE', 'send JSON with Content-Type: application/json'));
    if (code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || code === 'FST_ERR_CTP_INVALID_CONTENT_LENGTH') return sendError(reply, new ApiError('INVALID_JSON', 'the body is empty or malformed'));
    if (statusCode !== undefined && statusCode >= 400 && statusCode < 500) return sendError(reply, new ApiError('BAD_REQUEST', (error as Error).message));
    request.log.error(error);
    return reply.code(500).send({ code: 'INTERNAL', message: 'internal error' });
  });

  app.setNotFoundHandler((request, reply) => sendError(reply, new ApiError('ROUTE_NOT_FOUND', `no endpoint ${request.method} ${request.url.split('?')[0]}`)));

  /** Runs a write here if we lead, else forwards it once to the leader. */
  async function leaderWrite(request: FastifyRequest, reply: FastifyReply, run: () => Promise<unknown>): Promise<unknown> {
    try {
      return await run();
    } catch (error) {
      if (!(error instanceof NotLeaderError)) throw error;
      if (header(request, FORWARDED_HEADER) !== undefined || error.leaderClientUrl === null) {
        throw new ApiError('NO_LEADER', error.leaderId === null ? 'no leader is known right now; retry shortly' : `the leader ${error.leaderId} could not be reached`, { retryAfterMs: 200, leaderId: error.leaderId });
      }
      return forward(request, reply, error.leaderClientUrl);
    }
  }

  async function forward(request: FastifyRequest, reply: FastifyReply, leaderUrl: string): Promise<unknown> {
    const headers: Record<string, string> = { [FORWARDED_HEADER]: node.id };
    for (const name of ['content-type', 'if-match', 'if-none-match', 'idempotency-key', 'authorization', 'x-session-token']) {
      const value = request.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    let response;
    try {
      response = await httpRequest(`${leaderUrl}${request.url}`, {
        method: request.method as 'PUT',
        headers,
        body: request.body === undefined ? null : JSON.stringify(request.body),
        headersTimeout: options.writeTimeoutMs + 1_000,
        bodyTimeout: options.writeTimeoutMs + 1_000,
      });
    } catch (error) {
      // A refused or timed-out connect never reached the leader: definitely not applied.
      const code = (error as { code?: string }).code;
      if (code === 'ECONNREFUSED' || code === 'UND_ERR_CONNECT_TIMEOUT') {
        throw new ApiError('NOT_LEADER', `the leader at ${leaderUrl} could not be reached (${code}); the write was not applied`, { leaderUrl, retryAfterMs: 100 });
      }
      // Otherwise the request may or may not have reached the leader: its outcome is unknown.
      throw new ApiError('OUTCOME_UNKNOWN', `forwarding to the leader failed: ${(error as Error).message}; retry with the same Idempotency-Key`, { retryAfterMs: 100 });
    }
    const text = await response.body.text();
    reply.code(response.statusCode);
    for (const name of ['content-type', 'etag', 'x-session-token', 'retry-after', 'location']) {
      const value = response.headers[name];
      if (typeof value === 'string') reply.header(name, value);
    }
    reply.header('x-forwarded-to', leaderUrl);
    return reply.send(text);
  }

  /**
   * The write for node.write, built member by member: spreading the options (which come in two
   * shapes) took a visible share of the leader's CPU in a profile.
   */
  function withOps(write: { ack: AckLevel; timeoutMs: number; idempotencyKey?: string }, ops: readonly UserOp[]): WriteRequest {
    return write.idempotencyKey === undefined
      ? { ops, ack: write.ack, timeoutMs: write.timeoutMs }
      : { ops, ack: write.ack, timeoutMs: write.timeoutMs, idempotencyKey: write.idempotencyKey };
  }

  function writeOptions(request: FastifyRequest, query: Query): { ack: AckLevel; timeoutMs: number; idempotencyKey?: string } {
    const ack = enumParam(query['ack'], 'ack', ACK_LEVELS, 'majority');
    const timeoutMs = intParam(query['timeoutMs'], 'timeoutMs', 1, 120_000) ?? options.writeTimeoutMs;
    const idempotencyKey = idempotencyKeyOf(request);
    return idempotencyKey === undefined ? { ack, timeoutMs } : { ack, timeoutMs, idempotencyKey };
  }

  function readOptions(request: FastifyRequest, query: Query): { consistency: ReadConsistency; timeoutMs: number; sessionToken?: string } {
    const consistency = enumParam(query['consistency'], 'consistency', CONSISTENCIES, 'linearizable');
    const timeoutMs = intParam(query['timeoutMs'], 'timeoutMs', 1, 120_000) ?? options.readTimeoutMs;
    const sessionToken = sessionTokenOf(request, query);
    if (sessionToken !== undefined && !/^\d{1,15}$/.test(sessionToken)) throw new ApiError('INVALID_SESSION_TOKEN', 'the session token must be a log index returned by a write');
    return sessionToken === undefined ? { consistency, timeoutMs } : { consistency, timeoutMs, sessionToken };
  }

  function replyWrite(reply: FastifyReply, response: WriteResponse, created: boolean): unknown {
    reply.header('x-session-token', response.sessionToken);
    const first = response.results[0];
    if (response.results.length === 1 && first !== undefined && first.version !== null && !first.deleted) reply.header('etag', `"${first.version}"`);
    if (response.status === 'accepted') return reply.code(202).send(writeBody(response));
    return reply.code(created && !response.duplicate ? 201 : 200).send(writeBody(response, first));
  }

  const WRITE_PARAMS = ['ack', 'timeoutMs'];

  app.put('/v1/docs/:collection/:id', async (request, reply) => {
    const { collection, id } = request.params as { collection: string; id: string };
    const query = queryOf(request, WRITE_PARAMS);
    return leaderWrite(request, reply, async () => {
      const write = writeOptions(request, query);
      const ifMatch = ifMatchOf(request);
      const ifNoneMatch = ifNoneMatchOf(request);
      if (ifMatch !== undefined && ifNoneMatch) throw new ApiError('INVALID_PARAMETER', 'If-Match and If-None-Match: * contradict each other; send one');
      const op: UserOp = ifMatch === undefined
        ? { op: 'put', collection, id, body: request.body, ifNoneMatch }
        : { op: 'put', collection, id, body: request.body, ifMatch, ifNoneMatch };
      const response = await node.write(withOps(write, [op]));
      return replyWrite(reply, response, response.results[0]?.version === 1);
    });
  });

  app.post('/v1/docs/:collection', async (request, reply) => {
    const { collection } = request.params as { collection: string };
    const query = queryOf(request, WRITE_PARAMS);
    return leaderWrite(request, reply, async () => {
      const write = writeOptions(request, query);
      const response = await node.write(withOps(write, [{ op: 'create', collection, body: request.body }]));
      const first = response.results[0];
      if (first !== undefined) reply.header('location', `/v1/docs/${encodeURIComponent(collection)}/${encodeURIComponent(first.id)}`);
      return replyWrite(reply, response, true);
    });
  });

  app.patch('/v1/docs/:collection/:id', async (request, reply) => {
    const { collection, id } = request.params as { collection: string; id: string };
    const query = queryOf(request, WRITE_PARAMS);
    return leaderWrite(request, reply, async () => {
      const write = writeOptions(request, query);
      if (request.body === undefined) throw new ApiError('INVALID_PATCH', 'a merge patch body is required');
      const ifMatch = ifMatchOf(request);
      const op: UserOp = ifMatch === undefined ? { op: 'patch', collection, id, patch: request.body } : { op: 'patch', collection, id, patch: request.body, ifMatch };
      return replyWrite(reply, await node.write(withOps(write, [op])), false);
    });
  });

  app.delete('/v1/docs/:collection/:id', async (request, reply) => {
    const { collection, id } = request.params as { collection: string; id: string };
    const query = queryOf(request, WRITE_PARAMS);
    return leaderWrite(request, reply, async () => {
      const write = writeOptions(request, query);
      const ifMatch = ifMatchOf(request);
      const op: UserOp = ifMatch === undefined ? { op: 'delete', collection, id } : { op: 'delete', collection, id, ifMatch };
      return replyWrite(reply, await node.write(withOps(write, [op])), false);
    });
  });

  app.post('/v1/batch', async (request, reply) => {
    const query = queryOf(request, WRITE_PARAMS);
    return leaderWrite(request, reply, async () => {
      const write = writeOptions(request, query);
      const ops = parseBatch(request.body);
      return replyWrite(reply, await node.write(withOps(write, ops)), false);
    });
  });

  app.get('/v1/docs/:collection/:id', async (request, reply) => {
    const { collection, id } = request.params as { collection: string; id: string };
    const query = queryOf(request, ['consistency', 'token', 'timeoutMs']);
    const { doc, meta } = await node.get(collection, id, readOptions(request, query));
    setReadHeaders(reply, meta);
    if (doc === null) throw new ApiError('NOT_FOUND', `${collection}/${id} does not exist`);
    reply.header('etag', `"${doc.version}"`);
    return documentJson(doc);
  });

  app.get('/v1/docs/:collection', async (request, reply) => {
    const { collection } = request.params as { collection: string };
    const query = queryOf(request, ['consistency', 'token', 'timeoutMs', 'prefix', 'start', 'end', 'limit', 'cursor']);
    const limit = intParam(query['limit'], 'limit', 1, LIST_LIMIT_MAX) ?? 100;
    const listQuery = {
      collection, limit,
      ...(query['prefix'] === undefined ? {} : { prefix: query['prefix'] }),
      ...(query['start'] === undefined ? {} : { start: query['start'] }),
      ...(query['end'] === undefined ? {} : { end: query['end'] }),
      ...(query['cursor'] === undefined ? {} : { startAfter: query['cursor'] }),
    };
    const { page, meta } = await node.list(listQuery, readOptions(request, query));
    setReadHeaders(reply, meta);
    return { documents: page.documents.map(documentJson), nextCursor: page.nextCursor };
  });

  app.get('/v1/changes', async (request, reply) => {
    const query = queryOf(request, ['after', 'limit', 'format', 'follow']);
    const lastEventId = header(request, 'last-event-id');
    const after = intParam(query['after'] ?? lastEventId, 'after', 0, Number.MAX_SAFE_INTEGER) ?? 0;
    const limit = intParam(query['limit'], 'limit', 1, 100_000);
    const format = enumParam(query['format'], 'format', ['ndjson', 'sse'] as const, 'ndjson');
    const follow = enumParam(query['follow'], 'follow', ['true', 'false'] as const, 'false') === 'true';
    return streamChanges(followStreams, node, reply, request, { after, limit, format, follow });
  });

  // A follower knows replication progress only for itself: it asks the leader for the full
  // picture (per-follower match index and lag) and falls back to its own view.
  app.get('/v1/cluster', async (request) => {
    const query = queryOf(request, ['local']);
    const wantLocal = enumParam(query['local'], 'local', ['true', 'false'] as const, 'false') === 'true';
    return clusterView(request, wantLocal);
  });

  async function clusterView(request: FastifyRequest, wantLocal: boolean): Promise<Record<string, unknown>> {
    const local = node.status();
    if (wantLocal || local.role === 'leader' || local.leaderClientUrl === null || header(request, FORWARDED_HEADER) !== undefined) {
      return { ...local, servedBy: node.id };
    }
    try {
      const headers: Record<string, string> = { [FORWARDED_HEADER]: node.id };
      if (typeof request.headers.authorization === 'string') headers['authorization'] = request.headers.authorization;
      const response = await httpRequest(`${local.leaderClientUrl}/v1/cluster`, { headers, headersTimeout: 1_000, bodyTimeout: 1_000 });
      if (response.statusCode !== 200) {
        await response.body.dump();
        return { ...local, servedBy: node.id };
      }
      const view = await response.body.json() as Record<string, unknown>;
      return { ...view, servedBy: view['id'], askedVia: node.id };
    } catch {
      return { ...local, servedBy: node.id };
    }
  }

  app.get('/v1/health/leader', async (_request, reply) => {
    const ok = node.isStarted && node.core.role === 'leader' && node.core.transferTarget === null;
    return reply.code(ok ? 200 : 503).send({ ok, role: node.isStarted ? node.core.role : 'stopped', term: node.isStarted ? node.core.term : null });
  });

  app.get('/v1/health/replica', async (_request, reply) => {
    const status = node.isStarted ? node.status() : null;
    const member = status !== null && [...status.membership.voters, ...status.membership.learners].includes(node.id);
    const ok = status !== null && member && status.leaderId !== null && (status.commitIndex - status.appliedIndex) < 1000;
    return reply.code(ok ? 200 : 503).send({ ok, role: status?.role ?? 'stopped', leaderId: status?.leaderId ?? null, appliedIndex: status?.appliedIndex ?? null });
  });

  app.get('/v1/health/ready', async (_request, reply) => {
    const ok = node.isStarted && (node.core.leaderId !== null);
    return reply.code(ok ? 200 : 503).send({ ok, fatal: node.fatal?.message ?? null });
  });

  app.post('/v1/admin/transfer', async (request, reply) => {
    queryOf(request, []);
    const body = request.body as { to?: unknown } | undefined;
    if (typeof body?.to !== 'string') throw new ApiError('BAD_REQUEST', 'body must be {"to": "<node id>"}');
    const target = body.to;
    return leaderWrite(request, reply, async () => {
      node.transferLeadership(target);
      return { ok: true, from: node.id, to: target };
    });
  });

  // Forced failover (unsafe recovery from a majority lost for good): always on THIS node, never
  // forwarded. GET is the plan and its risk; POST acts, and only with the node's own id as
  // confirmation, so a request sent to the wrong node by mistake changes nothing.
  app.get('/v1/admin/force-failover', async (request) => {
    queryOf(request, []);
    return node.forceFailoverPlan();
  });

  app.post('/v1/admin/force-failover', async (request) => {
    queryOf(request, []);
    const body = request.body as { confirm?: unknown } | undefined;
    if (body === undefined || body === null || typeof body !== 'object' || typeof body.confirm !== 'string') {
      throw new ApiError('BAD_REQUEST', `body must be {"confirm": "${node.id}"}: the id of the node that is to lead alone`);
    }
    if (body.confirm !== node.id) {
      throw new ApiError('BAD_REQUEST', `confirm names ${JSON.stringify(body.confirm).slice(0, 80)}, but this is node ${node.id}: nothing was changed`);
    }
    const plan = node.forceFailover();
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline && !(node.isStarted && node.core.role === 'leader' && node.core.commitIndex >= plan.lastIndex)) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const status = node.status();
    return { ok: status.role === 'leader', plan, leaderId: status.leaderId, term: status.term, commitIndex: status.commitIndex, membership: status.membership };
  });

  // A planned switchover in one request (the dashboard's action): the same target choice and
  // refusals as `understudy switchover` (switchover.ts), the Raft transfer on the leader, and a
  // bounded wait until this node knows the target as leader.
  app.post('/v1/admin/switchover', async (request) => {
    queryOf(request, []);
    const body = parseSwitchoverBody(request.body);
    const view = await clusterView(request, false) as unknown as SwitchoverView & { leaderClientUrl?: string | null };
    let target;
    try {
      target = chooseSwitchoverTarget(view, { to: body.to, maxLagEntries: body.maxLagEntries });
    } catch (error) {
      if (!(error instanceof SwitchoverRefused)) throw error;
      if (error.noLeader) throw new ApiError('NO_LEADER', error.message, { retryAfterMs: 200 });
      throw new ApiError('SWITCHOVER_REFUSED', error.message);
    }
    const from = view.leaderId;
    const started = performance.now();
    if (node.isStarted && node.core.role === 'leader' && node.id === from) {
      node.transferLeadership(target.id);
    } else {
      await forwardTransfer(request, view.leaderClientUrl ?? null, target.id);
    }
    const moved = await waitForNewLeader(() => (node.isStarted ? node.core.leaderId : null), target.id, body.timeoutMs);
    if (!moved) {
      throw new ApiError('SWITCHOVER_TIMEOUT', `leadership did not move to ${target.id} within ${body.timeoutMs} ms (the transfer aborts by itself; check GET /v1/cluster)`, { leaderId: node.isStarted ? node.core.leaderId : null });
    }
    return { ok: true, from, to: target.id, durationMs: Math.round(performance.now() - started) };
  });

  async function forwardTransfer(request: FastifyRequest, leaderUrl: string | null, target: string): Promise<void> {
    if (leaderUrl === null) throw new ApiError('NO_LEADER', 'the leader\'s address is not known; retry shortly', { retryAfterMs: 200 });
    const headers: Record<string, string> = { [FORWARDED_HEADER]: node.id, 'content-type': 'application/json' };
    if (typeof request.headers.authorization === 'string') headers['authorization'] = request.headers.authorization;
    let response;
    try {
      response = await httpRequest(`${leaderUrl}/v1/admin/transfer`, {
        method: 'POST', headers, body: JSON.stringify({ to: target }), headersTimeout: 5_000, bodyTimeout: 5_000,
      });
    } catch (error) {
      throw new ApiError('NOT_LEADER', `the leader at ${leaderUrl} could not be reached: ${(error as Error).message}`, { leaderUrl, retryAfterMs: 100 });
    }
    const text = await response.body.text();
    if (response.statusCode < 300) return;
    let relayed: Record<string, unknown> = {};
    try {
      relayed = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // not JSON
    }
    const { code, message, outcome: _outcome, retryable: _retryable, ...details } = relayed;
    if (typeof code === 'string' && Object.hasOwn(ERROR_CATALOGUE, code)) {
      throw new ApiError(code as keyof typeof ERROR_CATALOGUE, typeof message === 'string' ? message : 'the leader refused the transfer', details);
    }
    throw new ApiError('UNAVAILABLE', `the leader answered HTTP ${response.statusCode} to the transfer`);
  }

  // A consistent backup of the whole state (backup.ts, issue 6).
  registerBackupRoute(app, { node, readTimeoutMs: options.readTimeoutMs, query: queryOf });

  app.post('/v1/admin/members', async (request, reply) => {
    queryOf(request, []);
    const change = parseMembershipChange(request.body);
    return leaderWrite(request, reply, async () => {
      const index = await node.changeMembership(change, options.writeTimeoutMs);
      return { ok: true, index, change, membership: node.status().membership };
    });
  });

  if (options.metrics !== undefined) {
    const metrics = options.metrics;
    app.get('/metrics', async (_request, reply) => {
      reply.type(metrics.registry.contentType);
      return metrics.registry.metrics();
    });

    // The last few minutes, one sample per second (history.ts), for the dashboard's charts.
    app.get('/v1/stats/history', async (request) => {
      const query = queryOf(request, ['after']);
      const after = intParam(query['after'], 'after', 0, Number.MAX_SAFE_INTEGER) ?? 0;
      return {
        node: node.id, bootId: metrics.events.bootId, intervalMs: metrics.history.intervalMs, capacity: metrics.history.capacity,
        latencyBuckets: { base: LATENCY_BUCKET_BASE, minMs: LATENCY_BUCKET_MIN_MS },
        samples: metrics.history.since(after),
      };
    });

    // Notable events (history.ts), for the dashboard's timeline; resume with after=<lastSeq>.
    app.get('/v1/events', async (request) => {
      const query = queryOf(request, ['after', 'limit']);
      const after = intParam(query['after'], 'after', 0, Number.MAX_SAFE_INTEGER) ?? 0;
      const limit = intParam(query['limit'], 'limit', 1, 1000) ?? 1000;
      const events = metrics.events.after(after, limit);
      return { node: node.id, bootId: metrics.events.bootId, lastSeq: metrics.events.lastSeq, oldestSeq: metrics.events.oldestSeq, events };
    });
  }

  options.extend?.(app);
  return app;
}

function isDashboardPath(url: string): boolean {
  const path = url.split('?')[0] ?? '';
  return path === '/ui' || path.startsWith('/ui/');
}

/** Every member's client URL this node knows: from its configuration and from the membership. */
export function memberClientUrls(node: UnderstudyNode): string[] {
  const urls = node.config.members.map((member) => member.client);
  if (node.isStarted) {
    for (const address of Object.values(node.core.membership.addresses ?? {})) urls.push(address.client);
  }
  return urls;
}

function parseSwitchoverBody(body: unknown): { to: string | undefined; maxLagEntries: number; timeoutMs: number } {
  // A JSON body is required (send {} for the defaults): a cross-site form post cannot send one.
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ApiError('BAD_REQUEST', 'body must be {"to"?: "<node id>", "maxLagEntries"?: <entries>, "timeoutMs"?: <ms>}');
  }
  const { to, maxLagEntries, timeoutMs, ...rest } = body as Record<string, unknown>;
  const unknown = Object.keys(rest)[0];
  if (unknown !== undefined) throw new ApiError('BAD_REQUEST', `unknown member '${unknown}'`);
  if (to !== undefined && (typeof to !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(to))) throw new ApiError('BAD_REQUEST', 'to must be a node id (1-64 characters of [A-Za-z0-9_-])');
  if (maxLagEntries !== undefined && (!Number.isSafeInteger(maxLagEntries) || (maxLagEntries as number) < 0)) throw new ApiError('BAD_REQUEST', 'maxLagEntries must be a non-negative integer');
  if (timeoutMs !== undefined && (!Number.isSafeInteger(timeoutMs) || (timeoutMs as number) < 1 || (timeoutMs as number) > 120_000)) throw new ApiError('BAD_REQUEST', 'timeoutMs must be an integer between 1 and 120000');
  return {
    to: to as string | undefined,
    maxLagEntries: (maxLagEntries as number | undefined) ?? SWITCHOVER_DEFAULTS.maxLagEntries,
    timeoutMs: (timeoutMs as number | undefined) ?? SWITCHOVER_DEFAULTS.timeoutMs,
  };
}

function parseMembershipChange(body: unknown): MembershipChange {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ApiError('BAD_REQUEST', 'body must be {"action": "add"|"promote"|"remove", "id": "...", "peer"?: "host:port", "client"?: "http://host:port"}');
  }
  const { action, id, peer, client, ...rest } = body as Record<string, unknown>;
  const unknown = Object.keys(rest)[0];
  if (unknown !== undefined) throw new ApiError('BAD_REQUEST', `unknown member '${unknown}'`);
  if (typeof id !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(id)) throw new ApiError('BAD_REQUEST', 'id must be 1-64 characters of [A-Za-z0-9_-]');
  switch (action) {
    case 'add': {
      if (typeof peer !== 'string' || parseHostPort(peer) === null) throw new ApiError('BAD_REQUEST', 'add needs "peer": "host:port"');
      if (typeof client !== 'string' || !/^https?:\/\/[^/\s]+$/.test(client)) throw new ApiError('BAD_REQUEST', 'add needs "client": "http://host:port"');
      return { type: 'addLearner', node: id, address: { peer, client } };
    }
    case 'promote':
    case 'remove':
      if (peer !== undefined || client !== undefined) throw new ApiError('BAD_REQUEST', `${action} takes only an id`);
      return action === 'promote' ? { type: 'promoteLearner', node: id } : { type: 'removeNode', node: id };
    default:
      throw new ApiError('BAD_REQUEST', 'action must be one of add, promote, remove');
  }
}

function parseBatch(body: unknown): UserOp[] {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError('BAD_REQUEST', 'the batch body must be {"ops": [...]}');
  const extra = Object.keys(body).filter((key) => key !== 'ops');
  if (extra.length > 0) throw new ApiError('BAD_REQUEST', `unknown batch member '${extra[0]}'`);
  const ops = (body as { ops?: unknown }).ops;
  if (!Array.isArray(ops)) throw new ApiError('BAD_REQUEST', 'the batch body must be {"ops": [...]}');
  return ops.map((raw, opIndex): UserOp => {
    const fail = (message: string, code: 'BAD_REQUEST' | 'INVALID_BODY' | 'INVALID_PATCH' = 'BAD_REQUEST'): never => {
      throw new ApiError(code, `op ${opIndex}: ${message}`, { opIndex });
    };
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail('must be an object');
    const op = raw as Record<string, unknown>;
    const allowed = ['op', 'collection', 'id', 'body', 'patch', 'ifMatch', 'ifNoneMatch'];
    const unknown = Object.keys(op).find((key) => !allowed.includes(key));
    if (unknown !== undefined) fail(`unknown member '${unknown}'`);
    if (typeof op['collection'] !== 'string') fail('collection must be a string');
    const collection = op['collection'] as string;
    const id = op['id'];
    if (id !== undefined && typeof id !== 'string') fail('id must be a string');
    const ifMatch = op['ifMatch'];
    if (ifMatch !== undefined && (!Number.isSafeInteger(ifMatch) || (ifMatch as number) < 1)) fail('ifMatch must be a positive integer version');
    const withMatch = ifMatch === undefined ? {} : { ifMatch: ifMatch as number };
    const ifNoneMatch = op['ifNoneMatch'];
    if (ifNoneMatch !== undefined && typeof ifNoneMatch !== 'boolean') fail('ifNoneMatch must be true or false');
    if (ifNoneMatch !== undefined && op['op'] !== 'put') fail('ifNoneMatch applies to put only');
    if (ifNoneMatch === true && ifMatch !== undefined) fail('ifMatch and ifNoneMatch contradict each other');
    if (op['body'] !== undefined && op['op'] !== 'create' && op['op'] !== 'put') fail(`${String(op['op'])} takes no body`);
    if (op['patch'] !== undefined && op['op'] !== 'patch') fail('only patch takes a patch');
    switch (op['op']) {
      case 'create':
        if (ifMatch !== undefined) fail('create takes no ifMatch (it is create-only)');
        if (op['body'] === undefined) fail('create needs a body', 'INVALID_BODY');
        return id === undefined ? { op: 'create', collection, body: op['body'] } : { op: 'create', collection, id: id as string, body: op['body'] };
      case 'put':
        if (id === undefined) fail('put needs an id');
        if (op['body'] === undefined) fail('put needs a body', 'INVALID_BODY');
        return { op: 'put', collection, id: id as string, body: op['body'], ifNoneMatch: ifNoneMatch === true, ...withMatch };
      case 'patch':
        if (id === undefined) fail('patch needs an id');
        if (op['patch'] === undefined) fail('patch needs a patch', 'INVALID_PATCH');
        return { op: 'patch', collection, id: id as string, patch: op['patch'], ...withMatch };
      case 'delete':
        if (id === undefined) fail('delete needs an id');
        return { op: 'delete', collection, id: id as string, ...withMatch };
      default:
        return fail("op must be one of 'create', 'put', 'patch', 'delete'");
    }
  });
}

async function streamChanges(
  followStreams: Set<import('node:http').ServerResponse>,
  node: UnderstudyNode,
  reply: FastifyReply,
  request: FastifyRequest,
  options: { after: LogIndex; limit: number | undefined; format: 'ndjson' | 'sse'; follow: boolean },
): Promise<unknown> {
  // Validate resumability before committing to a streaming response.
  const first = node.changesAfter(options.after, 1000);
  if (!options.follow) {
    const records: ChangeRecord[] = [...first];
    let cursor = records.at(-1)?.index ?? options.after;
    while (options.limit === undefined || records.length < options.limit) {
      const page = node.changesAfter(cursor, 1000);
      if (page.length === 0) break;
      records.push(...page);
      cursor = page.at(-1)?.index ?? cursor;
    }
    const sliced = options.limit === undefined ? records : records.slice(0, options.limit);
    if (options.format === 'ndjson') {
      reply.type('application/x-ndjson');
      return sliced.map((record) => JSON.stringify(record)).join('\n') + (sliced.length > 0 ? '\n' : '');
    }
    reply.type('text/event-stream');
    return sliced.map(sseEvent).join('');
  }
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, {
    'content-type': options.format === 'ndjson' ? 'application/x-ndjson' : 'text/event-stream',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  });
  raw.flushHeaders();
  followStreams.add(raw);
  let lastSent = options.after;
  let sent = 0;
  const pending: ChangeRecord[] = [];
  let backlogDone = false;
  const write = (record: ChangeRecord): void => {
    if (raw.writableEnded || record.index <= lastSent) return;
    lastSent = record.index;
    sent++;
    raw.write(options.format === 'ndjson' ? `${JSON.stringify(record)}\n` : sseEvent(record));
    if (options.limit !== undefined && sent >= options.limit) raw.end();
  };
  const unsubscribe = node.onChange((record) => {
    if (backlogDone) write(record);
    else pending.push(record);
  });
  const keepAlive = setInterval(() => {
    if (!raw.writableEnded) raw.write(options.format === 'sse' ? ': keep-alive\n\n' : '\n');
  }, 15_000);
  const close = (): void => {
    clearInterval(keepAlive);
    unsubscribe();
    followStreams.delete(raw);
  };
  request.raw.on('close', close);
  raw.on('close', close);
  try {
    let page = first;
    while (page.length > 0 && !raw.writableEnded) {
      for (const record of page) write(record);
      page = node.changesAfter(lastSent, 1000);
    }
  } catch (error) {
    raw.end(options.format === 'sse' ? `event: error\ndata: ${JSON.stringify((error as ApiError).toJSON?.() ?? { message: String(error) })}\n\n` : '');
    close();
    return reply;
  }
  backlogDone = true;
  for (const record of pending) write(record);
  return reply;
}

function sseEvent(record: ChangeRecord): string {
  return `id: ${record.index}\nevent: change\ndata: ${JSON.stringify(record)}\n\n`;
}

export { ERROR_CATALOGUE };
