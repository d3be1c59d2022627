// Shared helpers for the HTTP API tests: start a real single-node server (LMDB in a temporary
// directory, a real TCP peer listener on an ephemeral port) in-process, wait until it leads, and
// talk to it with Fastify's inject (no sockets) or, where a test needs one, a real socket.
// Also: assertions for the `{ code, message, outcome, retryable }` error shape and a fingerprint
// of the node's state, used to prove that a rejected request changed nothing.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request as httpRequest } from 'node:http';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { pino } from 'pino';
import { DEFAULTS, type NodeConfig } from '../../src/server/config.ts';
import { ERROR_CATALOGUE, type ErrorCode } from '../../src/server/errors.ts';
import { startServer, type RunningServer } from '../../src/server/server.ts';

export type Response = LightMyRequestResponse;
export type Json = any;

export interface TestServer {
  readonly server: RunningServer;
  readonly dir: string;
  inject(options: InjectOptions): Promise<Response>;
  stop(): Promise<void>;
}

/** The single-node configuration from the brief; tests override what they need. */
export function singleNodeConfig(dir: string, overrides: Partial<NodeConfig> = {}): NodeConfig {
  return {
    ...DEFAULTS,
    id: 'n1',
    clusterId: 'test',
    dataDir: dir,
    clientHost: '127.0.0.1',
    clientPort: 0,
    peerHost: '127.0.0.1',
    peerPort: 0,
    members: [{ id: 'n1', peer: '127.0.0.1:1', client: 'http://127.0.0.1:1' }],
    bootstrapVoters: ['n1'],
    secret: 'test-secret-123',
    authToken: null,
    tickMs: 10,
    electionTimeoutTicks: 10,
    heartbeatIntervalTicks: 2,
    ...overrides,
  };
}

export async function waitFor(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export function tempDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `understudy-${label}-`));
}

/** Starts a server from a full config; removes its directory on stop (and on a failed start). */
export async function startWith(config: NodeConfig, dir: string, waitForLeader = true): Promise<TestServer> {
  let server: RunningServer;
  try {
    server = await startServer(config, { logger: pino({ level: 'silent' }) });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const stop = async (): Promise<void> => {
    try {
      await server.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  if (waitForLeader) {
    try {
      await waitFor(() => server.node.core.role === 'leader', 5_000, 'the single node to lead');
    } catch (error) {
      await stop();
      throw error;
    }
  }
  return { server, dir, inject: (options) => server.app.inject(options), stop };
}

/** A single-node server that leads, ready for requests. */
export async function startTestServer(overrides: Partial<NodeConfig> = {}, label = 'api'): Promise<TestServer> {
  const dir = tempDir(label);
  return startWith(singleNodeConfig(dir, overrides), dir);
}

/** A TCP port that was free a moment ago (for configs that must name their ports up front). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

/** Asserts a catalogue error: status, code, JSON content type, message, outcome and retryable. */
export function assertError(response: Response, status: number, code: ErrorCode): Json {
  assert.equal(response.statusCode, status, `expected ${status} ${code}, got ${response.statusCode}: ${response.body}`);
  assert.match(String(response.headers['content-type']), /^application\/json/);
  const body = response.json() as Json;
  assert.equal(body.code, code, `expected code ${code}, got ${response.body}`);
  assert.equal(typeof body.message, 'string');
  assert.ok(body.message.length > 0);
  assert.equal(body.outcome, ERROR_CATALOGUE[code].outcome);
  assert.equal(body.retryable, ERROR_CATALOGUE[code].retryable);
  assert.equal(ERROR_CATALOGUE[code].status, status);
  return body;
}

/** Any 4xx with a JSON `{ code, message }` body. */
export function assertClientError(response: Response): Json {
  assert.ok(response.statusCode >= 400 && response.statusCode < 500, `expected a 4xx, got ${response.statusCode}: ${response.body}`);
  const body = response.json() as Json;
  assert.equal(typeof body.code, 'string', response.body);
  assert.equal(typeof body.message, 'string', response.body);
  return body;
}

/**
 * What a rejected request must not change: the Raft log (nothing proposed), the documents of the
 * given collections, and the change feed.
 */
export async function fingerprint(test: TestServer, collections: readonly string[]): Promise<string> {
  const node = test.server.node;
  const parts: unknown[] = [node.core.lastIndex, node.core.commitIndex];
  for (const collection of collections) {
    const list = await test.inject({ url: `/v1/docs/${collection}?limit=1000` });
    assert.equal(list.statusCode, 200, list.body);
    parts.push(list.json());
  }
  parts.push(node.changesAfter(0, 100_000).length);
  return JSON.stringify(parts);
}

export function json(body: unknown): InjectOptions['payload'] {
  return JSON.stringify(body);
}

export const JSON_HEADERS = { 'content-type': 'application/json' } as const;

/** A raw HTTP request over a socket, with the path sent exactly as given (no URL normalisation). */
export function rawRequest(
  clientUrl: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const url = new URL(clientUrl);
  return new Promise((resolve, reject) => {
    const request = httpRequest({ host: url.hostname, port: url.port, method, path, headers }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => { text += chunk; });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: text }));
      response.on('error', reject);
    });
    request.setTimeout(5_000, () => request.destroy(new Error('raw request timed out')));
    request.on('error', reject);
    if (body !== undefined) request.write(body);
    request.end();
  });
}

/** `{"a":{"a":...1...}}` nested `depth` objects deep (a flat object has depth 1). */
export function nestedObject(depth: number): string {
  return '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
}
