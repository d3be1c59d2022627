// Goal: (1) random sequences of PUT / PATCH / DELETE, with and without If-Match, on a few ids
// agree with a simple in-test model of versions and bodies (RFC 7396 merge patch included);
// (2) random garbage (methods, paths, query strings, headers, bodies) never produces a 5xx, and
// every error is a JSON `{ code, message }`.
// Method: fast-check properties run against one real single-node server through Fastify's
// inject. Each run of (1) uses a fresh collection, so the model starts empty; after every request
// the response and a read of the touched document are compared with the model.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { InjectOptions } from 'fastify';
import { json, JSON_HEADERS, startTestServer, type Json, type TestServer } from './helpers.ts';

type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
type JsonObject = { [key: string]: JsonValue };

type IfMatch = 'none' | 'current' | 'stale';
type Op =
  | { readonly kind: 'put'; readonly id: string; readonly body: JsonObject; readonly ifMatch: IfMatch }
  | { readonly kind: 'patch'; readonly id: string; readonly patch: JsonObject; readonly ifMatch: IfMatch }
  | { readonly kind: 'delete'; readonly id: string; readonly ifMatch: IfMatch };

interface ModelDoc { version: number; body: JsonObject }

function isObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** RFC 7396, section 2, written independently of src/documents/merge_patch.ts. */
function mergePatch(target: JsonValue | undefined, patch: JsonValue): JsonValue {
  if (!isObject(patch)) return structuredClone(patch);
  const result: JsonObject = isObject(target) ? structuredClone(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

const key = fc.constantFrom('a', 'b', 'c', 'd');
const leaf: fc.Arbitrary<JsonValue> = fc.oneof(
  fc.integer({ min: -3, max: 3 }), fc.constantFrom('x', 'y', ''), fc.boolean(), fc.constant(null), fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 2 }),
);
const object: fc.Arbitrary<JsonObject> = fc.dictionary(key, fc.oneof(leaf, fc.dictionary(key, fc.oneof(leaf, fc.dictionary(key, leaf, { maxKeys: 2 })), { maxKeys: 3 })), { maxKeys: 4 });
const id = fc.constantFrom('d1', 'd2', 'd3');
const ifMatch = fc.constantFrom<IfMatch>('none', 'none', 'current', 'stale');
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('put' as const), id, body: object, ifMatch }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('patch' as const), id, patch: object, ifMatch }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), id, ifMatch }) },
);

let t: TestServer;
let run = 0;

before(async () => {
  t = await startTestServer({}, 'property');
});

after(async () => {
  await t?.stop();
});

function conditionHeader(choice: IfMatch, current: ModelDoc | undefined): Record<string, string> {
  if (choice === 'none') return {};
  if (choice === 'current') return { 'if-match': `"${current?.version ?? 1}"` };
  return { 'if-match': `"${(current?.version ?? 0) + 7}"` };
}

async function step(collection: string, model: Map<string, ModelDoc>, operation: Op): Promise<void> {
  const current = model.get(operation.id);
  const url = `/v1/docs/${collection}/${operation.id}`;
  const headers = conditionHeader(operation.ifMatch, current);
  const conditioned = operation.ifMatch !== 'none';
  const matches = operation.ifMatch !== 'stale';
  let response;
  switch (operation.kind) {
    case 'put':
      response = await t.inject({ method: 'PUT', url, payload: json(operation.body), headers: { ...JSON_HEADERS, ...headers } });
      break;
    case 'patch':
      response = await t.inject({ method: 'PATCH', url, payload: json(operation.patch), headers: { 'content-type': 'application/merge-patch+json', ...headers } });
      break;
    case 'delete':
      response = await t.inject({ method: 'DELETE', url, headers });
      break;
  }
  const body = response.json() as Json;
  const context = `${JSON.stringify(operation)} on ${JSON.stringify(current)}: ${response.statusCode} ${response.body}`;

  if (current === undefined && (conditioned || operation.kind === 'patch')) {
    assert.equal(response.statusCode, 404, context);
    assert.equal(body.code, 'NOT_FOUND', context);
  } else if (current !== undefined && !matches) {
    assert.equal(response.statusCode, 412, context);
    assert.equal(body.code, 'PRECONDITION_FAILED', context);
    assert.equal(body.currentVersion, current.version, context);
  } else if (operation.kind === 'delete') {
    assert.equal(response.statusCode, 200, context);
    assert.equal(body.deleted, current !== undefined, context);
    assert.equal(body.version, current === undefined ? null : current.version, context);
    model.delete(operation.id);
  } else {
    const next: ModelDoc = operation.kind === 'put'
      ? { version: (current?.version ?? 0) + 1, body: structuredClone(operation.body) }
      : { version: (current?.version ?? 0) + 1, body: mergePatch(current?.body, operation.patch) as JsonObject };
    assert.equal(response.statusCode, current === undefined ? 201 : 200, context);
    assert.equal(body.version, next.version, context);
    assert.equal(response.headers['etag'], `"${next.version}"`, context);
    model.set(operation.id, next);
  }

  const read = await t.inject({ url });
  const expected = model.get(operation.id);
  if (expected === undefined) {
    assert.equal(read.statusCode, 404, `${context}; then GET ${read.statusCode} ${read.body}`);
  } else {
    assert.equal(read.statusCode, 200, context);
    const doc = read.json() as Json;
    assert.equal(doc.version, expected.version, context);
    assert.deepEqual(doc.body, expected.body, `${context}; GET body ${JSON.stringify(doc.body)}`);
  }
}

describe('API properties', () => {
  it('random PUT/PATCH/DELETE sequences agree with the model (versions, bodies, 404/412)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 12 }), async (ops) => {
        const collection = `prop${run++}`;
        const model = new Map<string, ModelDoc>();
        for (const operation of ops) await step(collection, model, operation);
        const list = await t.inject({ url: `/v1/docs/${collection}` });
        const listed = (list.json() as Json).documents.map((doc: Json) => [doc.id, doc.version, doc.body]);
        assert.deepEqual(listed, [...model.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([docId, doc]) => [docId, doc.version, doc.body]));
      }),
      { numRuns: Number(process.env['API_MODEL_RUNS'] ?? 30) },
    );
  });

  it('random garbage never gets a 5xx, and every error is JSON { code, message }', async () => {
    const segment = fc.oneof(
      fc.constantFrom('v1', 'docs', 'batch', 'changes', 'cluster', 'health', 'ready', 'leader', 'admin', 'transfer', 'metrics', 'c', 'id-1', '_sys', '..', '.', '%', '%ZZ', '%2F', '%00', '%C3%A9', '%ED%A0%80', '', 'x'.repeat(70), 'y'.repeat(300)),
      fc.string({ maxLength: 12 }).map(encodeURIComponent),
      fc.stringMatching(/^[A-Za-z0-9_.:@-]{1,12}$/),
    );
    const path = fc.oneof(
      fc.array(segment, { minLength: 0, maxLength: 5 }).map((segments) => `/${segments.join('/')}`),
      fc.tuple(fc.constantFrom('/v1/docs/', '/v1/docs/c/', '/v1/'), fc.array(segment, { maxLength: 2 })).map(([prefix, segments]) => prefix + segments.join('/')),
    );
    const queryPair = fc.oneof(
      fc.tuple(fc.constantFrom('ack', 'timeoutMs', 'consistency', 'token', 'limit', 'cursor', 'prefix', 'start', 'end', 'after', 'format', 'follow=false&x'), fc.oneof(fc.constantFrom('', '0', '-1', '1', 'all', 'leader', 'stale', 'session', 'sse', 'abc', '1e3', '99999999999999999999'), fc.string({ maxLength: 8 }).map(encodeURIComponent))),
      fc.tuple(fc.string({ maxLength: 6 }).map(encodeURIComponent), fc.string({ maxLength: 6 }).map(encodeURIComponent)),
    ).map(([name, value]) => `${name}=${value}`);
    const query = fc.array(queryPair, { maxLength: 3 }).map((pairs) => (pairs.length === 0 ? '' : `?${pairs.join('&')}`));
    const printable = fc.string({ unit: 'grapheme-ascii', maxLength: 20 });
    const headers = fc.record({
      'content-type': fc.constantFrom('application/json', 'application/merge-patch+json', 'text/plain', 'application/xml', 'application/json; charset=latin1', 'multipart/form-data'),
      'if-match': printable, 'if-none-match': fc.oneof(fc.constant('*'), printable), 'idempotency-key': printable,
      'x-session-token': printable, 'last-event-id': printable,
    }, { requiredKeys: [] });
    const payload = fc.oneof(
      fc.json({ maxDepth: 3 }), fc.string({ maxLength: 30 }), fc.constant(''), fc.constant('{"ops":[]}'),
      fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify({ ops: [value] })),
      fc.record({ op: fc.constantFrom('put', 'patch', 'delete', 'create', 'x'), collection: fc.constantFrom('c', '_s', ''), id: fc.oneof(fc.constantFrom('a', '..'), fc.integer()), body: fc.jsonValue({ maxDepth: 2 }), patch: fc.jsonValue({ maxDepth: 2 }), ifMatch: fc.oneof(fc.integer(), fc.string({ maxLength: 3 })) }, { requiredKeys: ['op'] }).map((value) => JSON.stringify({ ops: [value] })),
    );
    const request = fc.record({
      method: fc.constantFrom('GET', 'PUT', 'PATCH', 'POST', 'DELETE', 'HEAD', 'OPTIONS'),
      path, query, headers, payload: fc.option(payload, { nil: undefined }),
    });

    await fc.assert(
      fc.asyncProperty(request, async (input) => {
        if (input.query.includes('follow=true')) return; // a live stream never ends; not for inject
        const options: InjectOptions = {
          method: input.method as InjectOptions['method'],
          url: input.path + input.query,
          headers: input.headers,
          ...(input.payload === undefined || input.method === 'GET' || input.method === 'HEAD' ? {} : { payload: input.payload }),
        };
        const response = await t.inject(options);
        const context = `${input.method} ${options.url} ${JSON.stringify(input.headers)} ${String(input.payload)} -> ${response.statusCode} ${response.body}`;
        assert.ok(response.statusCode < 500, context);
        if (response.statusCode >= 400 && input.method !== 'HEAD') {
          const body = JSON.parse(response.body) as Json;
          assert.equal(typeof body.code, 'string', context);
          assert.equal(typeof body.message, 'string', context);
        }
      }),
      { numRuns: Number(process.env['API_GARBAGE_RUNS'] ?? 400) },
    );
    assert.equal(t.server.node.core.role, 'leader', 'the node survived the garbage');
    assert.equal((await t.inject({ url: '/v1/health/ready' })).statusCode, 200);
  });
});
