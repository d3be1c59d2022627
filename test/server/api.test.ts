// Goal: the HTTP API of a single-node cluster does what docs/api.md says for well-formed
// requests: CRUD with versions and ETags, merge patch, lists with ranges and cursors, conditional
// writes, atomic batches, idempotency keys, ack levels, read consistency levels, cluster status,
// health and metrics.
// Method: one real server (LMDB in a temporary directory, real Raft node) started in-process;
// requests go through Fastify's inject. Every response is checked for status, body and headers,
// and the effect of each write is checked with a follow-up read. Known server bugs are written as
// `todo` tests that show them.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertError, fingerprint, json, JSON_HEADERS, startTestServer, type Json, type Response, type TestServer } from './helpers.ts';

let t: TestServer;

before(async () => {
  t = await startTestServer();
});

after(async () => {
  await t?.stop();
});

function put(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return t.inject({ method: 'PUT', url: path, payload: json(body), headers: { ...JSON_HEADERS, ...headers } });
}

function patch(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return t.inject({ method: 'PATCH', url: path, payload: json(body), headers: { 'content-type': 'application/merge-patch+json', ...headers } });
}

function batch(ops: unknown[], query = '', headers: Record<string, string> = {}): Promise<Response> {
  return t.inject({ method: 'POST', url: `/v1/batch${query}`, payload: json({ ops }), headers: { ...JSON_HEADERS, ...headers } });
}

async function getDoc(path: string): Promise<Json> {
  const response = await t.inject({ url: path });
  assert.equal(response.statusCode, 200, response.body);
  return response.json();
}

async function assertMissing(path: string): Promise<void> {
  assertError(await t.inject({ url: path }), 404, 'NOT_FOUND');
}

async function listIds(query: string): Promise<{ ids: string[]; nextCursor: string | null }> {
  const response = await t.inject({ url: query });
  assert.equal(response.statusCode, 200, response.body);
  const body = response.json() as Json;
  return { ids: body.documents.map((doc: Json) => doc.id), nextCursor: body.nextCursor };
}

/** A successful applied single-document write: status, ack, ETag and session token agree. */
function assertApplied(response: Response, status: number, expected: { id: string; version: number | null; deleted?: boolean; ack?: string }): Json {
  assert.equal(response.statusCode, status, response.body);
  const body = response.json() as Json;
  assert.equal(body.status, 'applied');
  assert.equal(body.ack, expected.ack ?? 'majority');
  assert.equal(body.duplicate, false);
  assert.equal(body.id, expected.id);
  assert.equal(body.version, expected.version);
  assert.equal(body.deleted, expected.deleted ?? false);
  assert.equal(body.results.length, 1);
  assert.deepEqual(body.results[0], { collection: body.collection, id: body.id, version: body.version, index: body.index, deleted: body.deleted });
  assert.ok(Number.isSafeInteger(body.index) && body.index > 0);
  assert.ok(Number.isSafeInteger(body.term) && body.term >= 1);
  assert.equal(body.sessionToken, String(body.index));
  assert.equal(response.headers['x-session-token'], String(body.index));
  if (expected.version !== null && expected.deleted !== true) assert.equal(response.headers['etag'], `"${expected.version}"`);
  else assert.equal(response.headers['etag'], undefined);
  return body;
}

describe('CRUD', () => {
  it('PUT creates (201, version 1, ETag, session token), PUT replaces (200, version 2), GET reads it back', async () => {
    const created = assertApplied(await put('/v1/docs/users/alice', { name: 'Alice', age: 30 }), 201, { id: 'alice', version: 1 });
    assert.equal(created.collection, 'users');
    const replaced = assertApplied(await put('/v1/docs/users/alice', { name: 'Alice', city: 'Lyon' }), 200, { id: 'alice', version: 2 });
    assert.ok(replaced.index > created.index);

    const response = await t.inject({ url: '/v1/docs/users/alice' });
    assert.equal(response.statusCode, 200);
    const doc = response.json() as Json;
    assert.deepEqual(Object.keys(doc).sort(), ['body', 'collection', 'id', 'index', 'updatedAtMs', 'version']);
    assert.equal(doc.collection, 'users');
    assert.equal(doc.id, 'alice');
    assert.equal(doc.version, 2);
    assert.equal(doc.index, replaced.index);
    assert.deepEqual(doc.body, { name: 'Alice', city: 'Lyon' }, 'a PUT replaces the whole body');
    assert.ok(Number.isSafeInteger(doc.updatedAtMs) && Math.abs(doc.updatedAtMs - Date.now()) < 60_000);
    assert.equal(response.headers['etag'], '"2"');
    assert.equal(response.headers['x-consistency'], 'linearizable', 'reads are linearizable by default');
    assert.equal(response.headers['x-served-by'], 'n1');
    assert.ok(Number(response.headers['x-applied-index']) >= replaced.index);
    assert.match(String(response.headers['content-type']), /^application\/json/);
  });

  it('PATCH applies an RFC 7396 merge patch: nested members merge, null removes, arrays replace', async () => {
    assertApplied(await put('/v1/docs/users/bob', {
      name: 'Bob', age: 41, address: { city: 'Paris', zip: '75001', geo: { lat: 48.8, lon: 2.3 } }, tags: ['a', 'b'],
    }), 201, { id: 'bob', version: 1 });
    const patched = assertApplied(await patch('/v1/docs/users/bob', {
      age: null, nick: 'bobby', address: { zip: null, country: 'FR', geo: { lat: 48.9 } }, tags: ['c'],
    }), 200, { id: 'bob', version: 2 });
    const doc = await getDoc('/v1/docs/users/bob');
    assert.deepEqual(doc.body, { name: 'Bob', address: { city: 'Paris', geo: { lat: 48.9, lon: 2.3 }, country: 'FR' }, tags: ['c'], nick: 'bobby' });
    assert.equal(doc.version, 2);
    assert.equal(doc.index, patched.index);

    // application/json is accepted for a merge patch too; an object replaces a non-object member.
    const again = await t.inject({ method: 'PATCH', url: '/v1/docs/users/bob', payload: json({ tags: { first: 'x' } }), headers: JSON_HEADERS });
    assertApplied(again, 200, { id: 'bob', version: 3 });
    assert.deepEqual((await getDoc('/v1/docs/users/bob')).body.tags, { first: 'x' });
  });

  it('PATCH of a missing document is 404 NOT_FOUND and creates nothing', async () => {
    const body = assertError(await patch('/v1/docs/users/nobody', { a: 1 }), 404, 'NOT_FOUND');
    assert.equal(body.currentVersion, null);
    await assertMissing('/v1/docs/users/nobody');
  });

  it('DELETE removes (then GET is 404 NOT_FOUND); deleting a missing document is a no-op; re-creating starts at version 1', async () => {
    assertApplied(await put('/v1/docs/users/carol', { n: 1 }), 201, { id: 'carol', version: 1 });
    assertApplied(await put('/v1/docs/users/carol', { n: 2 }), 200, { id: 'carol', version: 2 });
    const deleted = assertApplied(await t.inject({ method: 'DELETE', url: '/v1/docs/users/carol' }), 200, { id: 'carol', version: 2, deleted: true });
    assert.equal(deleted.results[0].deleted, true);
    const notFound = assertError(await t.inject({ url: '/v1/docs/users/carol' }), 404, 'NOT_FOUND');
    assert.match(notFound.message, /users\/carol/);

    const noop = assertApplied(await t.inject({ method: 'DELETE', url: '/v1/docs/users/carol' }), 200, { id: 'carol', version: null, deleted: false });
    assert.equal(noop.results[0].version, null);

    assertApplied(await put('/v1/docs/users/carol', { n: 3 }), 201, { id: 'carol', version: 1 });
  });

  it('POST /v1/docs/:collection creates with a server-generated id (201, Location)', async () => {
    const response = await t.inject({ method: 'POST', url: '/v1/docs/notes', payload: json({ text: 'hello' }), headers: JSON_HEADERS });
    const body = assertApplied(response, 201, { id: (response.json() as Json).id, version: 1 });
    assert.match(body.id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.equal(response.headers['location'], `/v1/docs/notes/${body.id}`);
    const doc = await getDoc(String(response.headers['location']));
    assert.deepEqual(doc.body, { text: 'hello' });
    assert.equal(doc.version, 1);

    const second = await t.inject({ method: 'POST', url: '/v1/docs/notes', payload: json({ text: 'again' }), headers: JSON_HEADERS });
    assert.equal(second.statusCode, 201);
    assert.notEqual((second.json() as Json).id, body.id, 'every POST generates a new id');
  });
});

describe('list', () => {
  const ids = ['b2', 'a1', 'c3', 'a10', 'b1', 'a2', 'A0', 'a1.x', 'z:9'];
  const sorted = [...ids].sort();

  before(async () => {
    for (const id of ids) assert.equal((await put(`/v1/docs/shelf/${id}`, { id })).statusCode, 201);
    // Neighbouring collections whose names extend 'shelf' must never leak into its list.
    assert.equal((await put('/v1/docs/shelf-2/a1', { other: true })).statusCode, 201);
    assert.equal((await put('/v1/docs/shelfX/a1', { other: true })).statusCode, 201);
    assert.equal((await put('/v1/docs/shel/a1', { other: true })).statusCode, 201);
  });

  it('lists a collection in id order (code point order) with full documents', async () => {
    const response = await t.inject({ url: '/v1/docs/shelf' });
    assert.equal(response.statusCode, 200);
    assert.equal(response.headers['x-consistency'], 'linearizable');
    const body = response.json() as Json;
    assert.deepEqual(body.documents.map((doc: Json) => doc.id), sorted);
    assert.equal(body.nextCursor, null);
    for (const doc of body.documents) {
      assert.equal(doc.collection, 'shelf');
      assert.deepEqual(doc.body, { id: doc.id });
      assert.equal(doc.version, 1);
    }
  });

  it('filters by prefix and by the half-open range [start, end)', async () => {
    assert.deepEqual((await listIds('/v1/docs/shelf?prefix=a1')).ids, ['a1', 'a1.x', 'a10']);
    assert.deepEqual((await listIds('/v1/docs/shelf?prefix=b')).ids, ['b1', 'b2']);
    assert.deepEqual((await listIds('/v1/docs/shelf?prefix=q')).ids, []);
    assert.deepEqual((await listIds('/v1/docs/shelf?start=a2&end=b2')).ids, ['a2', 'b1']);
    assert.deepEqual((await listIds('/v1/docs/shelf?start=b')).ids, ['b1', 'b2', 'c3', 'z:9']);
    assert.deepEqual((await listIds('/v1/docs/shelf?end=a1')).ids, ['A0']);
    assert.deepEqual((await listIds('/v1/docs/shelf?start=c&end=b')).ids, []);
    assert.deepEqual((await listIds('/v1/docs/shelf?prefix=a&start=a10&end=a2')).ids, ['a10']);
    assert.deepEqual((await listIds('/v1/docs/empty-collection')).ids, []);
  });

  it('pages with limit and a resumable cursor (nextCursor -> cursor=) without gaps or repeats', async () => {
    const first = await listIds('/v1/docs/shelf?limit=2');
    assert.deepEqual(first.ids, sorted.slice(0, 2));
    assert.equal(first.nextCursor, sorted[1]);

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: { ids: string[]; nextCursor: string | null } = await listIds(`/v1/docs/shelf?limit=4${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`);
      assert.ok(page.ids.length <= 4);
      seen.push(...page.ids);
      cursor = page.nextCursor;
      pages++;
      assert.ok(pages < 10, 'paging terminates');
    } while (cursor !== null);
    assert.deepEqual(seen, sorted);
    assert.equal(pages, 3);

    // A page that ends exactly at the last document reports no further cursor.
    assert.equal((await listIds(`/v1/docs/shelf?limit=${ids.length}`)).nextCursor, null);
    // The cursor combines with a prefix.
    const prefixed = await listIds('/v1/docs/shelf?prefix=a&limit=2&cursor=a1');
    assert.deepEqual(prefixed.ids, ['a1.x', 'a10']);
    assert.equal(prefixed.nextCursor, 'a10');
    assert.deepEqual((await listIds('/v1/docs/shelf?prefix=a&cursor=a10')).ids, ['a2']);
  });

  it('accepts the largest limit (1000)', async () => {
    assert.deepEqual((await listIds('/v1/docs/shelf?limit=1000')).ids, sorted);
  });
});

describe('conditional writes', () => {
  it('If-Match with the current version succeeds (quoted, weak or bare); a stale one is 412 PRECONDITION_FAILED with currentVersion', async () => {
    assertApplied(await put('/v1/docs/cond/a', { v: 1 }), 201, { id: 'a', version: 1 });
    assertApplied(await put('/v1/docs/cond/a', { v: 2 }, { 'if-match': '"1"' }), 200, { id: 'a', version: 2 });
    assertApplied(await put('/v1/docs/cond/a', { v: 3 }, { 'if-match': 'W/"2"' }), 200, { id: 'a', version: 3 });
    assertApplied(await put('/v1/docs/cond/a', { v: 4 }, { 'if-match': '3' }), 200, { id: 'a', version: 4 });

    const failed = assertError(await put('/v1/docs/cond/a', { v: 'lost update' }, { 'if-match': '"2"' }), 412, 'PRECONDITION_FAILED');
    assert.equal(failed.currentVersion, 4);
    assert.equal(typeof failed.index, 'number', 'a condition checked at apply time reports the log index it was decided at');
    const doc = await getDoc('/v1/docs/cond/a');
    assert.deepEqual(doc.body, { v: 4 });
    assert.equal(doc.version, 4);
  });

  it('If-None-Match: * creates only: 201 when absent, 412 ALREADY_EXISTS when present (body untouched)', async () => {
    assertApplied(await put('/v1/docs/cond/b', { first: true }, { 'if-none-match': '*' }), 201, { id: 'b', version: 1 });
    const failed = assertError(await put('/v1/docs/cond/b', { first: false }, { 'if-none-match': '*' }), 412, 'ALREADY_EXISTS');
    assert.equal(failed.currentVersion, 1);
    assert.deepEqual((await getDoc('/v1/docs/cond/b')).body, { first: true });
  });

  it('PATCH and DELETE honour If-Match', async () => {
    assertApplied(await put('/v1/docs/cond/c', { a: 1 }), 201, { id: 'c', version: 1 });
    assertError(await patch('/v1/docs/cond/c', { b: 2 }, { 'if-match': '"7"' }), 412, 'PRECONDITION_FAILED');
    assert.deepEqual((await getDoc('/v1/docs/cond/c')).body, { a: 1 });
    assertApplied(await patch('/v1/docs/cond/c', { b: 2 }, { 'if-match': '"1"' }), 200, { id: 'c', version: 2 });
    assert.deepEqual((await getDoc('/v1/docs/cond/c')).body, { a: 1, b: 2 });

    const stale = assertError(await t.inject({ method: 'DELETE', url: '/v1/docs/cond/c', headers: { 'if-match': '"1"' } }), 412, 'PRECONDITION_FAILED');
    assert.equal(stale.currentVersion, 2);
    assert.equal((await getDoc('/v1/docs/cond/c')).version, 2);
    assertApplied(await t.inject({ method: 'DELETE', url: '/v1/docs/cond/c', headers: { 'if-match': '"2"' } }), 200, { id: 'c', version: 2, deleted: true });
    await assertMissing('/v1/docs/cond/c');
  });

  it('If-Match on a missing document is 404 NOT_FOUND (currentVersion null) for PUT, PATCH and DELETE, and creates nothing', async () => {
    for (const response of [
      await put('/v1/docs/cond/ghost', { a: 1 }, { 'if-match': '"1"' }),
      await patch('/v1/docs/cond/ghost', { a: 1 }, { 'if-match': '"1"' }),
      await t.inject({ method: 'DELETE', url: '/v1/docs/cond/ghost', headers: { 'if-match': '"1"' } }),
    ]) {
      const body = assertError(response, 404, 'NOT_FOUND');
      assert.equal(body.currentVersion, null);
    }
    await assertMissing('/v1/docs/cond/ghost');
  });

  it('If-Match together with If-None-Match: * does not silently drop the If-Match condition', async () => {
    const response = await put('/v1/docs/cond/both', { a: 1 }, { 'if-match': '"3"', 'if-none-match': '*' });
    assert.ok(response.statusCode === 400 || response.statusCode === 404 || response.statusCode === 412, `expected a rejection, got ${response.statusCode}`);
    await assertMissing('/v1/docs/cond/both');
  });
});

describe('batch', () => {
  it('applies every op atomically at one log index and reports a result per op, in order', async () => {
    assert.equal((await put('/v1/docs/bat/existing', { n: 1 })).statusCode, 201);
    assert.equal((await put('/v1/docs/bat/doomed', { n: 1 })).statusCode, 201);
    const response = await batch([
      { op: 'put', collection: 'bat', id: 'p1', body: { n: 'p1' } },
      { op: 'create', collection: 'bat', body: { n: 'generated' } },
      { op: 'create', collection: 'bat', id: 'c1', body: { n: 'c1' } },
      { op: 'put', collection: 'bat', id: 'p2', body: { n: 'p2' }, ifNoneMatch: true },
      { op: 'patch', collection: 'bat', id: 'existing', patch: { m: 2 }, ifMatch: 1 },
      { op: 'delete', collection: 'bat', id: 'doomed' },
      { op: 'put', collection: 'other', id: 'x', body: { cross: 'collection' } },
    ]);
    assert.equal(response.statusCode, 200, response.body);
    assert.equal(response.headers['etag'], undefined, 'no single ETag for a multi-op batch');
    const body = response.json() as Json;
    assert.equal(body.status, 'applied');
    assert.equal(body.results.length, 7);
    assert.equal(response.headers['x-session-token'], String(body.index));
    for (const result of body.results) assert.equal(result.index, body.index);
    assert.deepEqual(body.results.map((r: Json) => [r.id, r.version, r.deleted]), [
      ['p1', 1, false], [body.results[1].id, 1, false], ['c1', 1, false], ['p2', 1, false], ['existing', 2, false], ['doomed', 1, true], ['x', 1, false],
    ]);
    assert.deepEqual((await getDoc('/v1/docs/bat/p1')).body, { n: 'p1' });
    assert.deepEqual((await getDoc(`/v1/docs/bat/${body.results[1].id}`)).body, { n: 'generated' });
    assert.deepEqual((await getDoc('/v1/docs/bat/existing')).body, { n: 1, m: 2 });
    assert.deepEqual((await getDoc('/v1/docs/other/x')).body, { cross: 'collection' });
    await assertMissing('/v1/docs/bat/doomed');
  });

  it('all or nothing: when the last op fails its precondition, the earlier ops are not applied', async () => {
    assert.equal((await put('/v1/docs/bat/guard', { n: 1 })).statusCode, 201);
    const failed = assertError(await batch([
      { op: 'put', collection: 'bat', id: 'new1', body: { n: 1 } },
      { op: 'put', collection: 'bat', id: 'guard', body: { n: 'changed' } },
      { op: 'delete', collection: 'bat', id: 'bat-none' },
      { op: 'patch', collection: 'bat', id: 'guard', patch: { x: 1 }, ifMatch: 99 },
    ]), 412, 'PRECONDITION_FAILED');
    assert.equal(failed.opIndex, 3);
    // The op sees the batch's earlier put of the same document (version 2), as batches apply in order.
    assert.equal(failed.currentVersion, 2);
    await assertMissing('/v1/docs/bat/new1');
    assert.deepEqual((await getDoc('/v1/docs/bat/guard')).body, { n: 1 });

    // A failure decided at apply time (create-only on an existing id) is atomic too.
    const exists = assertError(await batch([
      { op: 'put', collection: 'bat', id: 'new2', body: { n: 1 } },
      { op: 'create', collection: 'bat', id: 'guard', body: { n: 2 } },
    ]), 412, 'ALREADY_EXISTS');
    assert.equal(exists.opIndex, 1);
    await assertMissing('/v1/docs/bat/new2');
    assert.equal((await getDoc('/v1/docs/bat/guard')).version, 1);
  });

  it('later ops see earlier ones: delete then create-only of the same id succeeds in one batch', async () => {
    assert.equal((await put('/v1/docs/bat/cycle', { n: 1 })).statusCode, 201);
    const response = await batch([
      { op: 'delete', collection: 'bat', id: 'cycle', ifMatch: 1 },
      { op: 'create', collection: 'bat', id: 'cycle', body: { n: 2 } },
    ]);
    assert.equal(response.statusCode, 200, response.body);
    assert.deepEqual((response.json() as Json).results.map((r: Json) => [r.version, r.deleted]), [[1, true], [1, false]]);
    const doc = await getDoc('/v1/docs/bat/cycle');
    assert.deepEqual([doc.version, doc.body], [1, { n: 2 }]);
  });

  it('an invalid op anywhere rejects the whole batch before anything is proposed', async () => {
    const before = await fingerprint(t, ['bat']);
    const invalid = assertError(await batch([
      { op: 'put', collection: 'bat', id: 'v1', body: { n: 1 } },
      { op: 'put', collection: 'bat', id: 'bad id', body: { n: 1 } },
    ]), 400, 'INVALID_ID');
    assert.equal(invalid.opIndex, 1);
    assertError(await batch([{ op: 'frobnicate', collection: 'bat', id: 'a' }]), 400, 'BAD_REQUEST');
    assertError(await batch([{ op: 'put', collection: 'bat', body: {} }]), 400, 'BAD_REQUEST');
    assertError(await batch([{ op: 'put', collection: 'bat', id: 'a', body: {}, extra: 1 }]), 400, 'BAD_REQUEST');
    assertError(await batch([{ op: 'delete', collection: 'bat', id: 'a', ifMatch: 0 }]), 400, 'BAD_REQUEST');
    assertError(await batch(['put']), 400, 'BAD_REQUEST');
    assert.equal(await fingerprint(t, ['bat']), before);
  });

  it('limits: 100 ops are accepted, 101 are 413 BATCH_TOO_LARGE, none is 400 BATCH_EMPTY', async () => {
    const ops = (n: number, prefix: string): unknown[] => Array.from({ length: n }, (_, i) => ({ op: 'put', collection: 'big', id: `${prefix}${i}`, body: { i } }));
    const ok = await batch(ops(100, 'ok'));
    assert.equal(ok.statusCode, 200, ok.body);
    assert.equal((ok.json() as Json).results.length, 100);

    const before = await fingerprint(t, ['big']);
    assertError(await batch(ops(101, 'no')), 413, 'BATCH_TOO_LARGE');
    assertError(await batch([]), 400, 'BATCH_EMPTY');
    assert.equal(await fingerprint(t, ['big']), before);
    await assertMissing('/v1/docs/big/no0');
  });

  it('a patch may follow a put of the same document in one batch', async () => {
    assert.equal((await put('/v1/docs/bat/seq', { n: 1 })).statusCode, 201);
    const lastBefore = t.server.node.core.lastIndex;
    const response = await batch([
      { op: 'put', collection: 'bat', id: 'seq', body: { n: 2 } },
      { op: 'patch', collection: 'bat', id: 'seq', patch: { m: 3 } },
    ]);
    assert.ok(t.server.node.core.lastIndex - lastBefore <= 1, `one batch should take one log entry, took ${t.server.node.core.lastIndex - lastBefore}`);
    assert.equal(response.statusCode, 200, response.body);
    assert.deepEqual((await getDoc('/v1/docs/bat/seq')).body, { n: 2, m: 3 });
  });
});

describe('Idempotency-Key', () => {
  it('the same PUT twice with one key applies once: the retry answers duplicate: true with the first result', async () => {
    const first = assertApplied(await put('/v1/docs/idem/a', { n: 1 }, { 'idempotency-key': 'key-1' }), 201, { id: 'a', version: 1 });
    const retry = await put('/v1/docs/idem/a', { n: 1 }, { 'idempotency-key': 'key-1' });
    assert.equal(retry.statusCode, 200, 'a duplicate is not a new creation');
    const body = retry.json() as Json;
    assert.equal(body.duplicate, true);
    assert.equal(body.status, 'applied');
    assert.equal(body.version, 1);
    assert.equal(body.index, first.index);
    assert.deepEqual(body.results, first.results);
    assert.equal(retry.headers['etag'], '"1"');
    const doc = await getDoc('/v1/docs/idem/a');
    assert.equal(doc.version, 1);
    assert.equal(doc.index, first.index);

    // The key names the request: a retry with another body is still answered from the record.
    const other = await put('/v1/docs/idem/a', { n: 'different' }, { 'idempotency-key': 'key-1' });
    assert.equal((other.json() as Json).duplicate, true);
    assert.deepEqual((await getDoc('/v1/docs/idem/a')).body, { n: 1 });
  });

  it('a different key applies again', async () => {
    const second = assertApplied(await put('/v1/docs/idem/a', { n: 1 }, { 'idempotency-key': 'key-2' }), 200, { id: 'a', version: 2 });
    assert.equal(second.duplicate, false);
    assert.equal((await getDoc('/v1/docs/idem/a')).version, 2);
  });

  it('POST create, DELETE and batches are idempotent too (a retried POST returns the same generated id)', async () => {
    const headers = { ...JSON_HEADERS, 'idempotency-key': 'post-1' };
    const first = await t.inject({ method: 'POST', url: '/v1/docs/idem', payload: json({ p: 1 }), headers });
    const retry = await t.inject({ method: 'POST', url: '/v1/docs/idem', payload: json({ p: 1 }), headers });
    assert.equal(first.statusCode, 201);
    assert.equal(retry.statusCode, 200);
    assert.equal((retry.json() as Json).duplicate, true);
    assert.equal((retry.json() as Json).id, (first.json() as Json).id);
    assert.equal(retry.headers['location'], first.headers['location']);
    assert.equal((await listIds('/v1/docs/idem?prefix=' + String((first.json() as Json).id).slice(0, 8))).ids.length, 1);

    const ops = [{ op: 'put', collection: 'idem', id: 'b1', body: { n: 1 } }, { op: 'put', collection: 'idem', id: 'b2', body: { n: 1 } }];
    const b1 = await batch(ops, '', { 'idempotency-key': 'batch-1' });
    const b2 = await batch(ops, '', { 'idempotency-key': 'batch-1' });
    assert.equal((b1.json() as Json).duplicate, false);
    assert.equal((b2.json() as Json).duplicate, true);
    assert.equal((await getDoc('/v1/docs/idem/b1')).version, 1);

    const d1 = await t.inject({ method: 'DELETE', url: '/v1/docs/idem/b1', headers: { 'idempotency-key': 'del-1' } });
    assert.equal(d1.statusCode, 200);
    assert.equal((await put('/v1/docs/idem/b1', { n: 'recreated' })).statusCode, 201);
    const d2 = await t.inject({ method: 'DELETE', url: '/v1/docs/idem/b1', headers: { 'idempotency-key': 'del-1' } });
    assert.equal((d2.json() as Json).duplicate, true);
    assert.deepEqual((await getDoc('/v1/docs/idem/b1')).body, { n: 'recreated' }, 'a retried DELETE does not delete the re-created document');
  });

  it('a failed conditional write is not recorded: a retry with the same key may succeed', async () => {
    assert.equal((await put('/v1/docs/idem/c', { n: 1 })).statusCode, 201);
    assertError(await put('/v1/docs/idem/c', { n: 2 }, { 'idempotency-key': 'cond-1', 'if-match': '"5"' }), 412, 'PRECONDITION_FAILED');
    const retry = await put('/v1/docs/idem/c', { n: 2 }, { 'idempotency-key': 'cond-1', 'if-match': '"1"' });
    assertApplied(retry, 200, { id: 'c', version: 2 });
  });

  it('an invalid key is 400 INVALID_IDEMPOTENCY_KEY and changes nothing', async () => {
    const before = await fingerprint(t, ['idem']);
    for (const key of ['has space', '', 'k'.repeat(257), 'tab\there']) {
      assertError(await put('/v1/docs/idem/z', { n: 1 }, { 'idempotency-key': key }), 400, 'INVALID_IDEMPOTENCY_KEY');
    }
    assert.equal(await fingerprint(t, ['idem']), before);
    assert.equal((await put('/v1/docs/idem/z', { n: 1 }, { 'idempotency-key': 'k'.repeat(256) })).statusCode, 201, '256 characters is the limit');
  });
});

describe('ack levels', () => {
  it('?ack=leader answers 202 accepted at the leader\'s fsync, without a version or ETag', async () => {
    const response = await put('/v1/docs/acks/l?ack=leader', { n: 1 });
    assert.equal(response.statusCode, 202, response.body);
    const body = response.json() as Json;
    assert.deepEqual(Object.keys(body).sort(), ['ack', 'duplicate', 'index', 'results', 'sessionToken', 'status', 'term']);
    assert.equal(body.status, 'accepted');
    assert.equal(body.ack, 'leader');
    assert.deepEqual(body.results, []);
    assert.equal(response.headers['etag'], undefined);
    assert.equal(response.headers['x-session-token'], String(body.index));
    // The session token makes the accepted write visible to a session read.
    const read = await t.inject({ url: `/v1/docs/acks/l?consistency=session&token=${body.index}` });
    assert.equal(read.statusCode, 200, read.body);
    assert.deepEqual((read.json() as Json).body, { n: 1 });
  });

  it('?ack=leader does not report a condition that fails at apply time (202, then not applied)', async () => {
    assert.equal((await put('/v1/docs/acks/cond', { n: 1 })).statusCode, 201);
    const response = await put('/v1/docs/acks/cond?ack=leader', { n: 2 }, { 'if-match': '"9"' });
    assert.equal(response.statusCode, 202);
    const token = (response.json() as Json).sessionToken;
    const read = await t.inject({ url: `/v1/docs/acks/cond?consistency=session&token=${token}` });
    assert.deepEqual((read.json() as Json).body, { n: 1 });
  });

  it('majority is the default; ?ack=majority and ?ack=all answer applied and say which level was used', async () => {
    assertApplied(await put('/v1/docs/acks/m', { n: 1 }), 201, { id: 'm', version: 1, ack: 'majority' });
    assertApplied(await put('/v1/docs/acks/m?ack=majority', { n: 2 }), 200, { id: 'm', version: 2, ack: 'majority' });
    assertApplied(await put('/v1/docs/acks/m?ack=all', { n: 3 }), 200, { id: 'm', version: 3, ack: 'all' });
    assertApplied(await patch('/v1/docs/acks/m?ack=all', { o: 1 }), 200, { id: 'm', version: 4, ack: 'all' });
    assertApplied(await t.inject({ method: 'DELETE', url: '/v1/docs/acks/m?ack=all' }), 200, { id: 'm', version: 4, deleted: true, ack: 'all' });
    const b = await batch([{ op: 'put', collection: 'acks', id: 'b', body: {} }], '?ack=leader');
    assert.equal(b.statusCode, 202);
  });

  it('an invalid ack or timeout is 400 INVALID_PARAMETER and changes nothing', async () => {
    const before = await fingerprint(t, ['acks']);
    for (const query of ['ack=bogus', 'ack=', 'ack=LEADER', 'timeoutMs=0', 'timeoutMs=abc', 'timeoutMs=120001']) {
      assertError(await put(`/v1/docs/acks/x?${query}`, { n: 1 }), 400, 'INVALID_PARAMETER');
    }
    assert.equal(await fingerprint(t, ['acks']), before);
  });
});

describe('read consistency', () => {
  let written: Json;

  before(async () => {
    const response = await put('/v1/docs/reads/r', { n: 1 });
    assert.equal(response.statusCode, 201);
    written = response.json();
  });

  it('?consistency=stale serves from local state with X-Applied-Index, X-Lag-Entries and X-Leader-Contact-Ms', async () => {
    const response = await t.inject({ url: '/v1/docs/reads/r?consistency=stale' });
    assert.equal(response.statusCode, 200);
    assert.equal(response.headers['x-consistency'], 'stale');
    assert.ok(Number(response.headers['x-applied-index']) >= written.index);
    assert.equal(response.headers['x-lag-entries'], '0');
    assert.match(String(response.headers['x-leader-contact-ms']), /^\d+$/);
    assert.deepEqual((response.json() as Json).body, { n: 1 });

    const list = await t.inject({ url: '/v1/docs/reads?consistency=stale' });
    assert.equal(list.headers['x-consistency'], 'stale');
    assert.equal(list.headers['x-lag-entries'], '0');
  });

  it('?consistency=linearizable is explicit too and carries no lag header', async () => {
    const response = await t.inject({ url: '/v1/docs/reads/r?consistency=linearizable' });
    assert.equal(response.statusCode, 200);
    assert.equal(response.headers['x-consistency'], 'linearizable');
    assert.equal(response.headers['x-lag-entries'], undefined);
  });

  it('?consistency=session with the token from a write (query or X-Session-Token header) sees that write', async () => {
    const byQuery = await t.inject({ url: `/v1/docs/reads/r?consistency=session&token=${written.sessionToken}` });
    assert.equal(byQuery.statusCode, 200);
    assert.equal(byQuery.headers['x-consistency'], 'session');
    assert.ok(Number(byQuery.headers['x-applied-index']) >= written.index);
    const byHeader = await t.inject({ url: '/v1/docs/reads/r?consistency=session', headers: { 'x-session-token': written.sessionToken } });
    assert.equal(byHeader.statusCode, 200);
    assert.equal(byHeader.headers['x-consistency'], 'session');
    const noToken = await t.inject({ url: '/v1/docs/reads?consistency=session' });
    assert.equal(noToken.statusCode, 200, 'without a token a session read waits for nothing');
  });

  it('a session token far ahead is 504 SESSION_TIMEOUT after timeoutMs', async () => {
    const started = Date.now();
    const body = assertError(await t.inject({ url: '/v1/docs/reads/r?consistency=session&token=999999999&timeoutMs=200' }), 504, 'SESSION_TIMEOUT');
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 150 && elapsed < 3_000, `waited ${elapsed} ms`);
    assert.equal(typeof body.appliedIndex, 'number');
    assertError(await t.inject({ url: '/v1/docs/reads?consistency=session&timeoutMs=200', headers: { 'x-session-token': '999999999' } }), 504, 'SESSION_TIMEOUT');
  });

  it('a malformed session token is 400 INVALID_SESSION_TOKEN; an unknown consistency is 400 INVALID_PARAMETER', async () => {
    for (const token of ['abc', '-1', '1.5', '1e3', '9999999999999999', '']) {
      assertError(await t.inject({ url: `/v1/docs/reads/r?consistency=session&token=${encodeURIComponent(token)}` }), 400, 'INVALID_SESSION_TOKEN');
    }
    assertError(await t.inject({ url: '/v1/docs/reads/r?consistency=session', headers: { 'x-session-token': 'x1' } }), 400, 'INVALID_SESSION_TOKEN');
    assertError(await t.inject({ url: '/v1/docs/reads/r?consistency=eventual' }), 400, 'INVALID_PARAMETER');
  });
});

describe('cluster, health and metrics', () => {
  it('/v1/cluster describes the single member as the leader', async () => {
    const response = await t.inject({ url: '/v1/cluster' });
    assert.equal(response.statusCode, 200);
    const status = response.json() as Json;
    assert.equal(status.id, 'n1');
    assert.equal(status.role, 'leader');
    assert.equal(status.leaderId, 'n1');
    assert.equal(status.leaderClientUrl, 'http://127.0.0.1:1');
    assert.ok(status.term >= 1);
    assert.ok(status.commitIndex >= status.appliedIndex - 0 && status.appliedIndex >= 1);
    assert.ok(status.lastIndex >= status.commitIndex);
    assert.deepEqual(status.membership, { voters: ['n1'], learners: [] });
    assert.equal(status.members.length, 1);
    assert.deepEqual(
      { id: status.members[0].id, role: status.members[0].role, voter: status.members[0].voter, connected: status.members[0].connected },
      { id: 'n1', role: 'leader', voter: true, connected: true },
    );
    assert.equal(status.transferTarget, null);
    assert.equal(status.servedBy, 'n1');
    assert.equal(((await t.inject({ url: '/v1/cluster?local=true' })).json() as Json).servedBy, 'n1');
  });

  it('health endpoints answer 200 on a single-node leader', async () => {
    const leader = await t.inject({ url: '/v1/health/leader' });
    assert.equal(leader.statusCode, 200);
    assert.deepEqual(leader.json(), { ok: true, role: 'leader', term: t.server.node.core.term });
    const replica = await t.inject({ url: '/v1/health/replica' });
    assert.equal(replica.statusCode, 200);
    assert.equal((replica.json() as Json).ok, true);
    assert.equal((replica.json() as Json).leaderId, 'n1');
    const ready = await t.inject({ url: '/v1/health/ready' });
    assert.equal(ready.statusCode, 200);
    assert.deepEqual(ready.json(), { ok: true, fatal: null });
  });

  it('/metrics is Prometheus text with the Raft gauges and request counters', async () => {
    const response = await t.inject({ url: '/metrics' });
    assert.equal(response.statusCode, 200);
    assert.match(String(response.headers['content-type']), /^text\/plain/);
    assert.match(response.body, /^understudy_raft_term \d+$/m);
    assert.match(response.body, /^understudy_raft_is_leader 1$/m);
    assert.match(response.body, /^understudy_raft_commit_index \d+$/m);
    assert.match(response.body, /understudy_http_requests_total\{method="PUT",route="\/v1\/docs\/:collection\/:id",status="201"\} \d+/);
    assert.doesNotMatch(response.body, /status="500"/, 'no request in this file was answered with a 500');
    // Process metrics: resident memory and heap, for watching a node's memory under load.
    assert.match(response.body, /^process_resident_memory_bytes \d+$/m);
    assert.match(response.body, /^nodejs_heap_size_used_bytes \d+$/m);
  });

  it('/v1/admin/transfer validates its body', async () => {
    assertError(await t.inject({ method: 'POST', url: '/v1/admin/transfer', payload: json({}), headers: JSON_HEADERS }), 400, 'BAD_REQUEST');
    assertError(await t.inject({ method: 'POST', url: '/v1/admin/transfer', payload: json({ to: 'n9' }), headers: JSON_HEADERS }), 400, 'BAD_REQUEST');
    assert.equal(t.server.node.core.role, 'leader');
  });
});
