/**
 * A small todo HTTP API on top of Understudy, using the TypeScript client. It keeps serving
 * through a leader failover: the client retries what is safe to retry (every write carries an
 * idempotency key), re-routes to the new leader, and maps the cluster's errors to HTTP answers.
 *
 * Run against a dev cluster (`npm start` starts one on 7001-7003):
 *
 *   UNDERSTUDY_URL='understudy://127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003' PORT=3000 \
 *     node --import tsx examples/todo-api.ts
 *
 *   curl -s -X POST localhost:3000/todos -H 'content-type: application/json' -d '{"title":"try it"}'
 *   curl -s localhost:3000/todos
 *   curl -s -X PATCH localhost:3000/todos/<id> -H 'content-type: application/json' -H 'if-match: 1' -d '{"done":true}'
 *   curl -s -X DELETE localhost:3000/todos/<id>
 *
 * Endpoints: GET /todos, POST /todos, GET /todos/:id, PATCH /todos/:id (If-Match optional),
 * DELETE /todos/:id, GET /healthz. A POST may carry Idempotency-Key, passed on to the cluster so
 * a client of this API can retry a create safely too.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import {
  BadRequestError, IndeterminateError, NotFoundError, PreconditionFailedError, TimeoutError, UnavailableError,
  UnderstudyError, connect, type UnderstudyClient,
} from 'understudy/client';

export interface Todo {
  title: string;
  done: boolean;
  createdAtMs: number;
}

export interface TodoApi {
  readonly url: string;
  readonly server: Server;
  readonly client: UnderstudyClient;
  close(): Promise<void>;
}

const COLLECTION = 'todos';

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

async function readJson(request: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'the body is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new HttpError(400, 'the body must be a JSON object');
  return value as Record<string, unknown>;
}

function send(response: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  response.writeHead(status, { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers });
  response.end(text);
}

/** Maps the client's typed errors to this API's answers. */
function sendError(response: ServerResponse, error: unknown): void {
  if (error instanceof HttpError) return send(response, error.status, { error: error.message });
  if (error instanceof NotFoundError) return send(response, 404, { error: 'no such todo' });
  if (error instanceof PreconditionFailedError) return send(response, 412, { error: 'the todo changed meanwhile', currentVersion: error.currentVersion });
  if (error instanceof BadRequestError) return send(response, 400, { error: error.message, code: error.code });
  if (error instanceof IndeterminateError) {
    // The write may have applied: the caller can retry with this key and will not create twice.
    return send(response, 504, { error: 'the outcome is unknown; retry with the same Idempotency-Key', idempotencyKey: error.idempotencyKey });
  }
  if (error instanceof UnavailableError || error instanceof TimeoutError) return send(response, 503, { error: error.message, code: error.code }, { 'retry-after': '1' });
  if (error instanceof UnderstudyError) return send(response, 502, { error: error.message, code: error.code });
  return send(response, 500, { error: 'internal error' });
}

function todoJson(doc: { id: string; version: number; body: Partial<Todo> }): Record<string, unknown> {
  return { id: doc.id, version: doc.version, title: doc.body.title, done: doc.body.done === true, createdAtMs: doc.body.createdAtMs };
}

async function handle(client: UnderstudyClient, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const url = new URL(request.url ?? '/', 'http://localhost');
  const parts = url.pathname.split('/').filter((part) => part !== '');
  if (parts.length === 1 && parts[0] === 'healthz' && request.method === 'GET') {
    return send(response, 200, { ok: true, leader: client.leader });
  }
  if (parts[0] !== 'todos' || parts.length > 2) throw new HttpError(404, 'no such route');
  const id = parts[1];
  if (id === undefined) {
    if (request.method === 'GET') {
      const todos = [];
      for await (const doc of client.list<Partial<Todo>>(COLLECTION, { limit: 500 })) todos.push(todoJson(doc));
      return send(response, 200, { todos });
    }
    if (request.method === 'POST') {
      const body = await readJson(request);
      if (typeof body['title'] !== 'string' || body['title'] === '') throw new HttpError(400, 'title (a non-empty string) is required');
      const key = request.headers['idempotency-key'];
      const todo: Todo = { title: body['title'], done: false, createdAtMs: Date.now() };
      const result = await client.create(COLLECTION, { ...todo }, typeof key === 'string' ? { idempotencyKey: key } : {});
      // `duplicate` on the first attempt: the caller's key was used by an earlier request (their
      // retry). After several attempts it is usually our own earlier attempt (a failover): created.
      const replay = result.duplicate && result.attempts === 1;
      return send(response, replay ? 200 : 201, { id: result.id, version: result.version, ...todo }, { location: `/todos/${result.id}` });
    }
  } else {
    if (request.method === 'GET') return send(response, 200, todoJson(await client.get<Partial<Todo>>(COLLECTION, id)));
    if (request.method === 'PATCH') {
      const body = await readJson(request);
      const patch: Record<string, string | boolean> = {};
      if (typeof body['title'] === 'string') patch['title'] = body['title'];
      if (typeof body['done'] === 'boolean') patch['done'] = body['done'];
      const ifMatch = request.headers['if-match'];
      const version = typeof ifMatch === 'string' ? Number(ifMatch.replace(/\D/g, '')) : undefined;
      const result = await client.patch(COLLECTION, id, patch, version === undefined || !Number.isSafeInteger(version) || version < 1 ? {} : { ifMatch: version });
      return send(response, 200, { id, version: result.version });
    }
    if (request.method === 'DELETE') {
      await client.delete(COLLECTION, id);
      return send(response, 204);
    }
  }
  throw new HttpError(405, 'method not allowed');
}

/** Connects to the cluster and starts the API (port 0 picks a free port). */
export async function startTodoApi(options: { connection: string; port?: number; host?: string }): Promise<TodoApi> {
  const client = await connect(options.connection);
  const server = createServer((request, response) => {
    handle(client, request, response).catch((error: unknown) => sendError(response, error));
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 3000, options.host ?? '127.0.0.1', resolve));
  const address = server.address() as AddressInfo;
  return {
    url: `http://${address.address}:${address.port}`,
    server,
    client,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await client.close();
    },
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const api = await startTodoApi({
    connection: process.env['UNDERSTUDY_URL'] ?? 'understudy://127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003',
    port: Number(process.env['PORT'] ?? 3000),
  });
  api.client.on('leaderChanged', ({ leaderId, term }) => console.log(`understudy leader is now ${leaderId} (term ${term})`));
  console.log(`todo API listening on ${api.url}`);
  const stop = (): void => {
    void api.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
