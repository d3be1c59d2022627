// Goal: every bad request is refused with a 4xx and a JSON `{ code, message }` body from the error
// catalogue, and changes nothing: no log entry is proposed, no document or change record appears.
// Covers malformed and non-object bodies, size and depth limits, content types, collection and id
// rules, query parameters, conditional headers, unknown routes and methods, and authentication.
// Method: a table of cases run against one single-node server through Fastify's inject, with a
// fingerprint of the node (log, documents, change feed) taken before and after each case; a second
// server with a 1 KiB body limit and a bearer token for the size and auth cases; a raw socket for
// paths that an URL parser would normalise ('..'). Known server bugs are `todo` tests.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { InjectOptions } from 'fastify';
import type { ErrorCode } from '../../src/server/errors.ts';
import {
  assertClientError, assertError, fingerprint, json, JSON_HEADERS, nestedObject, rawRequest, startTestServer, type Json, type TestServer,
} from './helpers.ts';

interface BadCase {
  readonly name: string;
  readonly request: InjectOptions;
  readonly status: number;
  readonly code: ErrorCode;
}

const DOC = '/v1/docs/guard/g1';
const NEW = '/v1/docs/guard/new';
const COLLECTIONS = ['guard'];

function body(method: 'PUT' | 'PATCH' | 'POST', url: string, payload: string, contentType = 'application/json'): InjectOptions {
  return { method, url, payload, headers: { 'content-type': contentType } };
}

function putJson(url: string, value: unknown, headers: Record<string, string> = {}): InjectOptions {
  return { method: 'PUT', url, payload: json(value), headers: { ...JSON_HEADERS, ...headers } };
}

function batchOf(ops: unknown): InjectOptions {
  return { method: 'POST', url: '/v1/batch', payload: json({ ops }), headers: JSON_HEADERS };
}

const long = (n: number, ch = 'x'): string => ch.repeat(n);

const CASES: readonly BadCase[] = [
  // Bodies.
  { name: 'malformed JSON on PUT', request: body('PUT', DOC, '{"v": 2'), status: 400, code: 'INVALID_JSON' },
  { name: 'malformed JSON on PATCH', request: body('PATCH', DOC, '{v: 2}', 'application/merge-patch+json'), status: 400, code: 'INVALID_JSON' },
  { name: 'malformed JSON on POST create', request: body('POST', '/v1/docs/guard', '{"a":1,}'), status: 400, code: 'INVALID_JSON' },
  { name: 'malformed JSON on batch', request: body('POST', '/v1/batch', '{"ops": [}'), status: 400, code: 'INVALID_JSON' },
  { name: 'trailing garbage after JSON', request: body('PUT', DOC, '{"v": 2} x'), status: 400, code: 'INVALID_JSON' },
  { name: 'empty body on PUT (JSON content type)', request: body('PUT', DOC, ''), status: 400, code: 'INVALID_BODY' },
  { name: 'whitespace body on PUT', request: body('PUT', NEW, '  \n '), status: 400, code: 'INVALID_BODY' },
  { name: 'no body and no content type on PUT', request: { method: 'PUT', url: NEW }, status: 400, code: 'INVALID_BODY' },
  { name: 'JSON array as a document', request: body('PUT', NEW, '[{"a":1}]'), status: 400, code: 'INVALID_BODY' },
  { name: 'JSON string as a document', request: body('PUT', NEW, '"text"'), status: 400, code: 'INVALID_BODY' },
  { name: 'JSON number as a document', request: body('PUT', NEW, '42'), status: 400, code: 'INVALID_BODY' },
  { name: 'JSON null as a document', request: body('PUT', DOC, 'null'), status: 400, code: 'INVALID_BODY' },
  { name: 'JSON array as a POST document', request: body('POST', '/v1/docs/guard', '[]'), status: 400, code: 'INVALID_BODY' },
  { name: 'non-finite number (1e400)', request: body('PUT', NEW, '{"a": 1e400}'), status: 400, code: 'INVALID_BODY' },
  { name: 'lone surrogate in a string', request: body('PUT', NEW, '{"a": "\\ud800"}'), status: 400, code: 'INVALID_BODY' },
  { name: 'lone surrogate in a key', request: body('PUT', NEW, '{"\\udc00": 1}'), status: 400, code: 'INVALID_BODY' },
  { name: 'empty PATCH', request: { method: 'PATCH', url: DOC, headers: JSON_HEADERS }, status: 400, code: 'INVALID_PATCH' },
  { name: 'PATCH with an array (would replace the body)', request: body('PATCH', DOC, '[1]'), status: 400, code: 'INVALID_PATCH' },
  { name: 'PATCH with a string', request: body('PATCH', DOC, '"x"'), status: 400, code: 'INVALID_PATCH' },
  { name: 'PATCH with null', request: body('PATCH', DOC, 'null'), status: 400, code: 'INVALID_PATCH' },
  { name: 'document nested 33 deep (limit 32)', request: body('PUT', NEW, nestedObject(33)), status: 400, code: 'DOCUMENT_TOO_DEEP' },
  { name: 'document nested 100000 deep', request: body('PUT', NEW, nestedObject(100_000)), status: 400, code: 'DOCUMENT_TOO_DEEP' },
  { name: 'arrays nested 200000 deep', request: body('PUT', NEW, `{"a":${'['.repeat(200_000)}${']'.repeat(200_000)}}`), status: 400, code: 'DOCUMENT_TOO_DEEP' },
  { name: 'merge patch nested 33 deep', request: body('PATCH', DOC, nestedObject(33), 'application/merge-patch+json'), status: 400, code: 'DOCUMENT_TOO_DEEP' },
  { name: 'batch body nested 33 deep', request: body('POST', '/v1/batch', `{"ops":[{"op":"put","collection":"guard","id":"new","body":${nestedObject(33)}}]}`), status: 400, code: 'DOCUMENT_TOO_DEEP' },

  // Content types.
  { name: 'XML content type', request: body('PUT', NEW, '<a/>', 'application/xml'), status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  { name: 'form content type', request: body('PUT', NEW, 'a=1', 'application/x-www-form-urlencoded'), status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  { name: 'octet-stream content type', request: body('POST', '/v1/batch', '{"ops":[]}', 'application/octet-stream'), status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  { name: 'JSON body labelled as CSV on PATCH', request: body('PATCH', DOC, '{"v":3}', 'text/csv'), status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },

  // Collection names and ids.
  { name: 'reserved collection _sys (PUT)', request: putJson('/v1/docs/_sys/a', { a: 1 }), status: 400, code: 'INVALID_COLLECTION' },
  { name: 'reserved collection _sys (GET)', request: { url: '/v1/docs/_sys/a' }, status: 400, code: 'INVALID_COLLECTION' },
  { name: 'reserved collection _sys (list)', request: { url: '/v1/docs/_sys' }, status: 400, code: 'INVALID_COLLECTION' },
  { name: 'reserved collection _sys (POST)', request: body('POST', '/v1/docs/_sys', '{}'), status: 400, code: 'INVALID_COLLECTION' },
  { name: 'reserved collection _sys (batch)', request: batchOf([{ op: 'put', collection: '_sys', id: 'a', body: {} }]), status: 400, code: 'INVALID_COLLECTION' },
  { name: 'collection of 65 characters', request: putJson(`/v1/docs/${long(65, 'c')}/a`, { a: 1 }), status: 400, code: 'INVALID_COLLECTION' },
  { name: 'collection with a dot', request: putJson('/v1/docs/a.b/a', { a: 1 }), status: 400, code: 'INVALID_COLLECTION' },
  { name: 'collection with an encoded space', request: putJson('/v1/docs/a%20b/a', { a: 1 }), status: 400, code: 'INVALID_COLLECTION' },
  { name: 'collection with non-ASCII', request: putJson('/v1/docs/caf%C3%A9/a', { a: 1 }), status: 400, code: 'INVALID_COLLECTION' },
  { name: 'collection with an encoded slash', request: putJson('/v1/docs/a%2Fb/a', { a: 1 }), status: 400, code: 'INVALID_COLLECTION' },
  { name: 'empty collection in a batch', request: batchOf([{ op: 'put', collection: '', id: 'a', body: {} }]), status: 400, code: 'INVALID_COLLECTION' },
  { name: 'id with an encoded slash', request: putJson('/v1/docs/guard/a%2Fb', { a: 1 }), status: 400, code: 'INVALID_ID' },
  { name: 'id with an encoded space', request: putJson('/v1/docs/guard/a%20b', { a: 1 }), status: 400, code: 'INVALID_ID' },
  { name: 'id with non-ASCII', request: putJson('/v1/docs/guard/%C3%A9t%C3%A9', { a: 1 }), status: 400, code: 'INVALID_ID' },
  { name: 'id with a star', request: putJson('/v1/docs/guard/a*b', { a: 1 }), status: 400, code: 'INVALID_ID' },
  { name: 'id with a percent sign', request: putJson('/v1/docs/guard/a%25b', { a: 1 }), status: 400, code: 'INVALID_ID' },
  { name: 'id with an encoded NUL', request: { url: '/v1/docs/guard/a%00b' }, status: 400, code: 'INVALID_ID' },
  { name: 'id .. in a batch', request: batchOf([{ op: 'put', collection: 'guard', id: '..', body: {} }]), status: 400, code: 'INVALID_ID' },
  { name: 'id of 257 characters in a batch', request: batchOf([{ op: 'put', collection: 'guard', id: long(257), body: {} }]), status: 400, code: 'INVALID_ID' },
  { name: 'non-string id in a batch', request: batchOf([{ op: 'put', collection: 'guard', id: 7, body: {} }]), status: 400, code: 'BAD_REQUEST' },

  // Query parameters.
  { name: 'unknown parameter on PUT', request: putJson(`${DOC}?force=true`, { v: 9 }), status: 400, code: 'UNKNOWN_PARAMETER' },
  { name: 'unknown parameter on GET', request: { url: `${DOC}?fields=a` }, status: 400, code: 'UNKNOWN_PARAMETER' },
  { name: 'unknown parameter on list', request: { url: '/v1/docs/guard?offset=3' }, status: 400, code: 'UNKNOWN_PARAMETER' },
  { name: 'unknown parameter on DELETE', request: { method: 'DELETE', url: `${DOC}?cascade=1` }, status: 400, code: 'UNKNOWN_PARAMETER' },
  { name: 'unknown parameter on batch', request: { ...batchOf([{ op: 'delete', collection: 'guard', id: 'g1' }]), url: '/v1/batch?dryRun=1' }, status: 400, code: 'UNKNOWN_PARAMETER' },
  { name: 'read parameter on a write (token)', request: putJson(`${DOC}?token=1`, { v: 9 }), status: 400, code: 'UNKNOWN_PARAMETER' },
  { name: 'unknown parameter on changes', request: { url: '/v1/changes?since=0' }, status: 400, code: 'UNKNOWN_PARAMETER' },
  { name: 'unknown parameter on cluster', request: { url: '/v1/cluster?verbose=1' }, status: 400, code: 'UNKNOWN_PARAMETER' },
  { name: 'repeated ack', request: putJson(`${DOC}?ack=all&ack=all`, { v: 9 }), status: 400, code: 'INVALID_PARAMETER' },
  { name: 'repeated limit', request: { url: '/v1/docs/guard?limit=1&limit=2' }, status: 400, code: 'INVALID_PARAMETER' },
  { name: 'repeated consistency', request: { url: `${DOC}?consistency=stale&consistency=stale` }, status: 400, code: 'INVALID_PARAMETER' },
  { name: 'invalid ack', request: putJson(`${DOC}?ack=quorum`, { v: 9 }), status: 400, code: 'INVALID_PARAMETER' },
  { name: 'list limit=0', request: { url: '/v1/docs/guard?limit=0' }, status: 400, code: 'INVALID_PARAMETER' },
  { name: 'list limit=abc', request: { url: '/v1/docs/guard?limit=abc' }, status: 400, code: 'INVALID_PARAMETER' },
  { name: 'list limit=1001', request: { url: '/v1/docs/guard?limit=1001' }, status: 400, code: 'INVALID_PARAMETER' },
  { name: 'list limit=-1', request: { url: '/v1/docs/guard?limit=-1' }, status: 400, code: 'INVALID_PARAMETER' },
  { name: 'list limit=2.5', request: { url: '/v1/docs/guard?limit=2.5' }, status: 400, code: 'INVALID_PARAMETER' },
  { name: 'changes after=-1', request: { url: '/v1/changes?after=-1' }, status: 400, code: 'INVALID_PARAMETER' },
  { name: 'changes after=abc', request: { url: '/v1/changes?after=abc' }, status: 400, code: 'INVALID_PARAMETER' },
  { name: 'changes after beyond 2^53', request: { url: '/v1/changes?after=99999999999999999999' }, status: 400, code: 'INVALID_PARAMETER' },
  { name: 'changes Last-Event-ID not a number', request: { url: '/v1/changes', headers: { 'last-event-id': 'abc' } }, status: 400, code: 'INVALID_PARAMETER' },
  { name: 'changes limit=0', request: { url: '/v1/changes?limit=0' }, status: 400, code: 'INVALID_PARAMETER' },
  { name: 'changes format=xml', request: { url: '/v1/changes?format=xml' }, status: 400, code: 'INVALID_PARAMETER' },
  { name: 'changes follow=yes', request: { url: '/v1/changes?follow=yes' }, status: 400, code: 'INVALID_PARAMETER' },
  { name: 'read timeoutMs=0', request: { url: `${DOC}?timeoutMs=0` }, status: 400, code: 'INVALID_PARAMETER' },

  // Conditional headers and other headers.
  { name: 'If-Match not a version', request: putJson(DOC, { v: 9 }, { 'if-match': 'abc' }), status: 400, code: 'INVALID_PARAMETER' },
  { name: 'If-Match with an opaque ETag', request: putJson(DOC, { v: 9 }, { 'if-match': '"v1-abc"' }), status: 400, code: 'INVALID_PARAMETER' },
  { name: 'If-Match: * (unsupported)', request: putJson(DOC, { v: 9 }, { 'if-match': '*' }), status: 400, code: 'INVALID_PARAMETER' },
  { name: 'If-Match with a list', request: putJson(DOC, { v: 9 }, { 'if-match': '"1", "2"' }), status: 400, code: 'INVALID_PARAMETER' },
  { name: 'If-Match negative', request: putJson(DOC, { v: 9 }, { 'if-match': '-1' }), status: 400, code: 'INVALID_PARAMETER' },
  { name: 'If-Match on DELETE not a version', request: { method: 'DELETE', url: DOC, headers: { 'if-match': 'W/"x"' } }, status: 400, code: 'INVALID_PARAMETER' },
  { name: 'If-Match on PATCH not a version', request: { ...putJson(DOC, { v: 9 }, { 'if-match': 'nope' }), method: 'PATCH' }, status: 400, code: 'INVALID_PARAMETER' },
  { name: 'If-None-Match with an ETag', request: putJson(NEW, { v: 9 }, { 'if-none-match': '"1"' }), status: 400, code: 'INVALID_PARAMETER' },
  { name: 'If-None-Match with garbage', request: putJson(NEW, { v: 9 }, { 'if-none-match': 'everything' }), status: 400, code: 'INVALID_PARAMETER' },
  { name: 'Idempotency-Key with a space', request: putJson(NEW, { v: 9 }, { 'idempotency-key': 'a b' }), status: 400, code: 'INVALID_IDEMPOTENCY_KEY' },
  { name: 'Idempotency-Key of 257 characters', request: putJson(NEW, { v: 9 }, { 'idempotency-key': long(257) }), status: 400, code: 'INVALID_IDEMPOTENCY_KEY' },
  { name: 'session token not a number', request: { url: `${DOC}?consistency=session&token=abc` }, status: 400, code: 'INVALID_SESSION_TOKEN' },

  // Routes and methods.
  { name: 'unknown route', request: { url: '/v1/nope' }, status: 404, code: 'ROUTE_NOT_FOUND' },
  { name: 'root', request: { url: '/' }, status: 404, code: 'ROUTE_NOT_FOUND' },
  { name: 'other API version', request: { url: '/v2/docs/guard/g1' }, status: 404, code: 'ROUTE_NOT_FOUND' },
  { name: 'too many path segments', request: { url: '/v1/docs/guard/g1/extra' }, status: 404, code: 'ROUTE_NOT_FOUND' },
  { name: 'empty id (trailing slash)', request: putJson('/v1/docs/guard/', { a: 1 }), status: 400, code: 'INVALID_ID' },
  { name: 'POST to a document', request: body('POST', DOC, '{"v":9}'), status: 404, code: 'ROUTE_NOT_FOUND' },
  { name: 'DELETE a collection', request: { method: 'DELETE', url: '/v1/docs/guard' }, status: 404, code: 'ROUTE_NOT_FOUND' },
  { name: 'PUT a collection', request: putJson('/v1/docs/guard', { a: 1 }), status: 404, code: 'ROUTE_NOT_FOUND' },
  { name: 'GET /v1/batch', request: { url: '/v1/batch' }, status: 404, code: 'ROUTE_NOT_FOUND' },
  { name: 'DELETE /v1/changes', request: { method: 'DELETE', url: '/v1/changes' }, status: 404, code: 'ROUTE_NOT_FOUND' },
  { name: 'OPTIONS on a document', request: { method: 'OPTIONS', url: DOC }, status: 404, code: 'ROUTE_NOT_FOUND' },

  // Batches.
  { name: 'batch body is an array', request: body('POST', '/v1/batch', '[]'), status: 400, code: 'BAD_REQUEST' },
  { name: 'batch without ops', request: body('POST', '/v1/batch', '{}'), status: 400, code: 'BAD_REQUEST' },
  { name: 'batch with no body', request: { method: 'POST', url: '/v1/batch' }, status: 400, code: 'BAD_REQUEST' },
  { name: 'batch ops not an array', request: body('POST', '/v1/batch', '{"ops":{}}'), status: 400, code: 'BAD_REQUEST' },
  { name: 'batch with an extra member', request: body('POST', '/v1/batch', '{"ops":[],"atomic":true}'), status: 400, code: 'BAD_REQUEST' },
  { name: 'empty batch', request: batchOf([]), status: 400, code: 'BATCH_EMPTY' },
  { name: 'unknown batch op', request: batchOf([{ op: 'upsert', collection: 'guard', id: 'g1', body: {} }]), status: 400, code: 'BAD_REQUEST' },
  { name: 'batch op without op', request: batchOf([{ collection: 'guard', id: 'g1', body: {} }]), status: 400, code: 'BAD_REQUEST' },
  { name: 'batch op with an unknown member', request: batchOf([{ op: 'delete', collection: 'guard', id: 'g1', force: true }]), status: 400, code: 'BAD_REQUEST' },
  { name: 'batch patch without id', request: batchOf([{ op: 'patch', collection: 'guard', patch: {} }]), status: 400, code: 'BAD_REQUEST' },
  { name: 'batch delete without id', request: batchOf([{ op: 'delete', collection: 'guard' }]), status: 400, code: 'BAD_REQUEST' },
  { name: 'batch ifMatch not a positive integer', request: batchOf([{ op: 'delete', collection: 'guard', id: 'g1', ifMatch: '1' }]), status: 400, code: 'BAD_REQUEST' },
  { name: 'batch put with an array body', request: batchOf([{ op: 'put', collection: 'guard', id: 'g1', body: [1] }]), status: 400, code: 'INVALID_BODY' },
  { name: 'batch put without a body', request: batchOf([{ op: 'put', collection: 'guard', id: 'g1' }]), status: 400, code: 'INVALID_BODY' },
  { name: 'batch patch without a patch', request: batchOf([{ op: 'patch', collection: 'guard', id: 'g1' }]), status: 400, code: 'INVALID_PATCH' },
  { name: 'batch of 101 ops', request: batchOf(Array.from({ length: 101 }, (_, i) => ({ op: 'put', collection: 'guard', id: `b${i}`, body: {} }))), status: 413, code: 'BATCH_TOO_LARGE' },
];

describe('bad input on the default server', () => {
  let t: TestServer;
  let seed: Json;

  before(async () => {
    t = await startTestServer({}, 'bad-input');
    const response = await t.inject(putJson(DOC, { v: 1 }));
    assert.equal(response.statusCode, 201);
    seed = response.json();
  });

  after(async () => {
    await t?.stop();
  });

  for (const testCase of CASES) {
    it(`${testCase.name} -> ${testCase.status} ${testCase.code}, nothing changed`, async () => {
      const before = await fingerprint(t, COLLECTIONS);
      const response = await t.inject(testCase.request);
      assertError(response, testCase.status, testCase.code);
      assert.equal(await fingerprint(t, COLLECTIONS), before, 'the request changed the node state');
    });
  }

  it('after all the bad requests the seeded document is untouched', async () => {
    const response = await t.inject({ url: DOC });
    assert.equal(response.statusCode, 200);
    assert.deepEqual((response.json() as Json).body, { v: 1 });
    assert.equal((response.json() as Json).index, seed.index);
  });

  it('paths an URL parser would normalise (".", "..", "%2E%2E") sent raw are 400 INVALID_ID', async () => {
    for (const id of ['..', '.', '%2E%2E', '%2e', '.%2E']) {
      const before = await fingerprint(t, COLLECTIONS);
      const put = await rawRequest(t.server.clientUrl, 'PUT', `/v1/docs/guard/${id}`, { 'content-type': 'application/json' }, '{"a":1}');
      assert.equal(put.status, 400, `${id}: ${put.body}`);
      assert.equal((JSON.parse(put.body) as Json).code, 'INVALID_ID');
      const get = await rawRequest(t.server.clientUrl, 'GET', `/v1/docs/guard/${id}`);
      assert.equal(get.status, 400, `${id}: ${get.body}`);
      assert.equal(await fingerprint(t, COLLECTIONS), before);
    }
  });

  it('an id of exactly 100 characters (Fastify\'s default parameter length) works', async () => {
    const response = await t.inject(putJson(`/v1/docs/guard/${long(100, 'i')}`, { a: 1 }));
    assert.equal(response.statusCode, 201, response.body);
  });

  it('a text/plain body is 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    const before = await fingerprint(t, COLLECTIONS);
    assertError(await t.inject(body('PUT', NEW, '{"a":1}', 'text/plain')), 415, 'UNSUPPORTED_MEDIA_TYPE');
    assert.equal(await fingerprint(t, COLLECTIONS), before);
  });

  it('a malformed percent-encoding in the path is a catalogue error (400 BAD_REQUEST)', async () => {
    for (const url of ['/v1/docs/guard/%ZZ', '/v1/docs/guard/%', '/v1/docs/%E0%A4%A/x']) {
      const response = await t.inject({ url });
      assertClientError(response);
      assertError(response, 400, 'BAD_REQUEST');
    }
  });

  it('ids of 101-256 characters are valid and reachable through the document routes', async () => {
    const id = long(200, 'j');
    const created = await t.inject(batchOf([{ op: 'put', collection: 'guard', id, body: { a: 1 } }]));
    assert.equal(created.statusCode, 200, created.body);
    const read = await t.inject({ url: `/v1/docs/guard/${id}` });
    assert.equal(read.statusCode, 200, read.body);
    const put = await t.inject(putJson(`/v1/docs/guard/${long(256, 'k')}`, { a: 1 }));
    assert.equal(put.statusCode, 201, put.body);
  });

  it('an id of 257 characters in the path is 400 INVALID_ID', async () => {
    assertError(await t.inject(putJson(`/v1/docs/guard/${long(257, 'k')}`, { a: 1 })), 400, 'INVALID_ID');
  });

  // Regression: bounds longer than LMDB's key limit once made the list route answer 500 INTERNAL.
  it('list bounds longer than the store key limit are a 4xx or a correct page, never a 500', async () => {
    for (const collection of ['guard', 'nothing-here']) {
      for (const name of ['prefix', 'start', 'cursor', 'end']) {
        for (const length of [2100, 5000]) {
          const response = await t.inject({ url: `/v1/docs/${collection}?${name}=${long(length, 'a')}` });
          assert.ok(response.statusCode < 500, `${name}: ${response.statusCode} ${response.body}`);
          if (response.statusCode !== 200) assertClientError(response);
          else if (name === 'prefix' || collection === 'nothing-here') assert.deepEqual((response.json() as Json).documents, [], `${collection} ${name}`);
        }
      }
    }
    // The bounds still mean what they say: 'aaa...' sorts before 'g1' and 'hhh...' after it.
    const has = async (query: string): Promise<boolean> => ((await t.inject({ url: `/v1/docs/guard?${query}` })).json() as Json).documents.some((doc: Json) => doc.id === 'g1');
    assert.equal(await has(`start=${long(5000, 'a')}`), true);
    assert.equal(await has(`cursor=${long(5000, 'a')}`), true);
    assert.equal(await has(`end=${long(5000, 'h')}`), true);
    assert.equal(await has(`start=${long(5000, 'h')}`), false);
    assert.equal(await has(`end=${long(5000, 'a')}`), false);
  });

  it('If-Match: "0" is reported like every other bad If-Match (400 INVALID_PARAMETER)', async () => {
    assertError(await t.inject(putJson(DOC, { v: 9 }, { 'if-match': '"0"' })), 400, 'INVALID_PARAMETER');
  });

  it('/v1/cluster validates local like every other flag (400 INVALID_PARAMETER)', async () => {
    assertError(await t.inject({ url: '/v1/cluster?local=yes' }), 400, 'INVALID_PARAMETER');
  });

  it('batch members that do not apply to an op, or have the wrong type, are refused', async () => {
    const before = await fingerprint(t, COLLECTIONS);
    assertError(await t.inject(batchOf([{ op: 'put', collection: 'guard', id: 'g1', body: { v: 'x' }, ifNoneMatch: 'yes' }])), 400, 'BAD_REQUEST');
    assertError(await t.inject(batchOf([{ op: 'create', collection: 'guard', id: 'c9', body: {}, ifMatch: 3 }])), 400, 'BAD_REQUEST');
    assert.equal(await fingerprint(t, COLLECTIONS), before);
  });
});

describe('a server with a 1 KiB body limit and a bearer token', () => {
  let t: TestServer;
  const AUTH = { authorization: 'Bearer tok' };

  before(async () => {
    t = await startTestServer({ bodyBytesMax: 1024, authToken: 'tok' }, 'limits');
    const seeded = await t.inject({ ...putJson(DOC, { v: 1 }), headers: { ...JSON_HEADERS, ...AUTH } });
    assert.equal(seeded.statusCode, 201, seeded.body);
  });

  after(async () => {
    await t?.stop();
  });

  /** The fingerprint reads through the API, so it needs the token. */
  async function state(): Promise<string> {
    const list = await t.inject({ url: '/v1/docs/guard', headers: AUTH });
    assert.equal(list.statusCode, 200);
    return JSON.stringify([t.server.node.core.lastIndex, list.json(), t.server.node.changesAfter(0, 10_000).length]);
  }

  function authed(request: InjectOptions): InjectOptions {
    return { ...request, headers: { ...(request.headers ?? {}), ...AUTH } };
  }

  const exactly = (bytes: number): string => `{"a":"${'x'.repeat(bytes - 8)}"}`;

  it('a body over bodyBytesMax is 413 BODY_TOO_LARGE on every write route and changes nothing', async () => {
    const big = exactly(1025);
    assert.equal(Buffer.byteLength(big), 1025);
    for (const request of [
      body('PUT', NEW, big), body('PATCH', DOC, big), body('POST', '/v1/docs/guard', big),
      body('POST', '/v1/batch', `{"ops":[{"op":"put","collection":"guard","id":"new","body":${big}}]}`),
      body('PUT', NEW, `{"a":"${'é'.repeat(600)}"}`),
    ]) {
      const before = await state();
      assertError(await t.inject(authed(request)), 413, 'BODY_TOO_LARGE');
      assert.equal(await state(), before);
    }
  });

  it('a body of exactly bodyBytesMax is accepted', async () => {
    const response = await t.inject(authed(body('PUT', '/v1/docs/guard/edge', exactly(1024))));
    assert.equal(response.statusCode, 201, response.body);
  });

  it('a merge patch that grows the document past the limit is 413 DOCUMENT_TOO_LARGE and leaves it unchanged', async () => {
    assert.equal((await t.inject(authed(body('PUT', '/v1/docs/guard/grow', `{"a":"${'x'.repeat(900)}"}`)))).statusCode, 201);
    const before = await state();
    assertError(await t.inject(authed(body('PATCH', '/v1/docs/guard/grow', `{"b":"${'y'.repeat(900)}"}`, 'application/merge-patch+json'))), 413, 'DOCUMENT_TOO_LARGE');
    assert.equal(await state(), before);
  });

  it('requests without "Authorization: Bearer tok" are 401 UNAUTHORIZED and change nothing', async () => {
    const before = await state();
    const attempts: Array<Record<string, string>> = [
      {}, { authorization: 'Bearer wrong' }, { authorization: 'bearer tok' }, { authorization: 'Bearer tok ' },
      { authorization: 'Basic dG9rOnRvaw==' }, { authorization: 'tok' }, { 'x-api-key': 'tok' },
    ];
    for (const headers of attempts) {
      for (const request of [
        putJson(NEW, { v: 2 }), { url: DOC }, { url: '/v1/docs/guard' }, { method: 'DELETE', url: DOC } as InjectOptions,
        { url: '/v1/changes' }, { url: '/v1/cluster' }, { url: '/metrics' }, { url: '/v1/unknown' }, batchOf([{ op: 'delete', collection: 'guard', id: 'g1' }]),
      ]) {
        const response = await t.inject({ ...request, headers: { ...(request.headers ?? {}), ...headers } });
        assertError(response, 401, 'UNAUTHORIZED');
      }
    }
    assert.equal(await state(), before);
  });

  it('health endpoints stay open without a token; with the token everything works', async () => {
    for (const url of ['/v1/health/leader', '/v1/health/replica', '/v1/health/ready']) {
      const response = await t.inject({ url });
      assert.equal(response.statusCode, 200, `${url}: ${response.body}`);
    }
    assert.equal((await t.inject({ url: DOC, headers: AUTH })).statusCode, 200);
    assert.equal((await t.inject({ url: '/metrics', headers: AUTH })).statusCode, 200);
    assert.equal((await t.inject({ url: '/v1/cluster', headers: AUTH })).statusCode, 200);
  });

  it('a 401 carries a WWW-Authenticate challenge', async () => {
    const response = await t.inject({ url: DOC });
    assert.equal(response.statusCode, 401);
    assert.match(String(response.headers['www-authenticate']), /^Bearer/);
  });
});
