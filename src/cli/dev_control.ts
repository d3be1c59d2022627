/**
 * The dev cluster's control server (`understudy dev`, `npm start`): a small HTTP API on loopback
 * that the dashboard uses to kill (SIGKILL by PID), restart and partition (isolate from its
 * peers, and heal) a node of the local development cluster. Nodes learn its URL from
 * `--dev-control` and advertise it in /ui/config.json; the page shows dev actions only then.
 *
 *   GET  /dev/nodes                      every node: id, client, peer, pid, running, isolated
 *   POST /dev/nodes/:id/kill     {}      SIGKILL, as a crash (no shutdown code runs)
 *   POST /dev/nodes/:id/restart  {}      stop it if it runs (SIGTERM, then SIGKILL), start it again
 *   POST /dev/nodes/:id/isolate  {"isolated": true|false}   the node's dev fault switch
 *
 * Errors are `{code, message, ...}` from the node's catalogue (server/errors.ts). Only the
 * cluster's own origins may call it from a browser (cors.ts), and every POST needs a JSON body,
 * so no other web page can drive it. Development only: it listens on 127.0.0.1.
 */
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { ApiError } from '../server/errors.ts';
import { installCors } from '../server/cors.ts';
import { parseJsonBody } from '../server/http.ts';

export interface DevNodeInfo {
  readonly id: string;
  readonly client: string;
  readonly peer: string;
  readonly pid: number | null;
  readonly running: boolean;
  readonly isolated: boolean;
  readonly starts: number;
}

/** What the control server drives: the dev cluster (dev_cluster.ts). */
export interface DevControlTarget {
  nodes(): DevNodeInfo[];
  kill(id: string): Promise<DevNodeInfo>;
  restart(id: string): Promise<DevNodeInfo>;
  isolate(id: string, isolated: boolean): Promise<DevNodeInfo>;
}

export interface DevControlServer {
  readonly url: string;
  readonly app: FastifyInstance;
  close(): Promise<void>;
}

function jsonObject(request: FastifyRequest, shape: string): Record<string, unknown> {
  const key = Object.keys((request.query ?? {}) as Record<string, unknown>)[0];
  if (key !== undefined) throw new ApiError('UNKNOWN_PARAMETER', `unknown query parameter '${key}' (allowed: none)`);
  const body = request.body;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError('BAD_REQUEST', `body must be ${shape} (Content-Type: application/json)`);
  return body as Record<string, unknown>;
}

export function buildDevControlApp(target: DevControlTarget, origins: () => ReadonlySet<string>): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 4096 });
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, parseJsonBody);
  installCors(app, origins);
  app.setErrorHandler((error, _request, reply) => {
    let api: ApiError;
    if (error instanceof ApiError) api = error;
    else {
      const code = (error as { code?: string }).code;
      const statusCode = (error as { statusCode?: number }).statusCode;
      if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') api = new ApiError('UNSUPPORTED_MEDIA_TYPE', 'send JSON with Content-Type: application/json');
      else if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') api = new ApiError('BODY_TOO_LARGE', 'the body is too large');
      else if (statusCode !== undefined && statusCode >= 400 && statusCode < 500) api = new ApiError('BAD_REQUEST', (error as Error).message);
      else return reply.code(500).send({ code: 'INTERNAL', message: 'internal error' });
    }
    return reply.code(api.status).type('application/json').send(api.toJSON());
  });
  app.setNotFoundHandler((request, reply) => {
    const api = new ApiError('ROUTE_NOT_FOUND', `no endpoint ${request.method} ${request.url.split('?')[0]}`);
    return reply.code(api.status).send(api.toJSON());
  });

  const known = (id: string): void => {
    if (!target.nodes().some((node) => node.id === id)) throw new ApiError('UNKNOWN_NODE', `the dev cluster has no node '${id}'`);
  };

  app.get('/dev/nodes', async (request) => {
    const key = Object.keys((request.query ?? {}) as Record<string, unknown>)[0];
    if (key !== undefined) throw new ApiError('UNKNOWN_PARAMETER', `unknown query parameter '${key}' (allowed: none)`);
    return { nodes: target.nodes() };
  });
  app.post('/dev/nodes/:id/kill', async (request) => {
    const body = jsonObject(request, '{}');
    if (Object.keys(body).length > 0) throw new ApiError('BAD_REQUEST', 'kill takes an empty body {}');
    const { id } = request.params as { id: string };
    known(id);
    return { ok: true, node: await target.kill(id) };
  });
  app.post('/dev/nodes/:id/restart', async (request) => {
    const body = jsonObject(request, '{}');
    if (Object.keys(body).length > 0) throw new ApiError('BAD_REQUEST', 'restart takes an empty body {}');
    const { id } = request.params as { id: string };
    known(id);
    return { ok: true, node: await target.restart(id) };
  });
  app.post('/dev/nodes/:id/isolate', async (request) => {
    const body = jsonObject(request, '{"isolated": true|false}');
    if (typeof body['isolated'] !== 'boolean' || Object.keys(body).length !== 1) throw new ApiError('BAD_REQUEST', 'body must be {"isolated": true|false}');
    const { id } = request.params as { id: string };
    known(id);
    return { ok: true, node: await target.isolate(id, body['isolated']) };
  });
  return app;
}

export async function startDevControlServer(target: DevControlTarget, options: { port: number; origins: () => ReadonlySet<string> }): Promise<DevControlServer> {
  const app = buildDevControlApp(target, options.origins);
  await app.listen({ host: '127.0.0.1', port: options.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;
  return { url: `http://127.0.0.1:${port}`, app, close: () => app.close() };
}
