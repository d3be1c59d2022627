// Goal: names, ids, bodies and list queries are accepted or refused exactly by the documented rules,
// with stable error codes, and option resolution refuses nonsense configuration.
// Method: table-driven examples at and around each boundary (lengths, charsets, reserved forms,
// non-JSON values, size and depth limits).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  collectionNameLengthMax,
  defaultDocumentOptions,
  documentIdLengthMax,
  resolveDocumentOptions,
  validateBody,
  validateCollectionName,
  validateDocumentId,
  validateIdempotencyKey,
  validateListQuery,
  validateRequestId,
  validateTimestamp,
} from '../../src/documents/index.ts';
import { AssertionError } from '../../src/shared/assert.ts';

test('collection names: good ones pass', () => {
  for (const name of ['users', 'a', 'A-b_c-9', 'x'.repeat(collectionNameLengthMax), 'orders-2024']) {
    assert.equal(validateCollectionName(name), null, name);
  }
});

test('collection names: bad ones fail with INVALID_COLLECTION', () => {
  for (const name of ['', 'x'.repeat(collectionNameLengthMax + 1), '_system', '_', 'a/b', 'a.b', 'a b', 'é', 'a:b', 42, null, undefined]) {
    assert.equal(validateCollectionName(name)?.code, 'INVALID_COLLECTION', String(name));
  }
});

test('document ids: good ones pass', () => {
  for (const id of ['1', 'abc', 'user@example.com', 'a:b:c', '...', '.x', '_x', 'a-b_c.d', 'x'.repeat(documentIdLengthMax)]) {
    assert.equal(validateDocumentId(id), null, id);
  }
});

test('document ids: bad ones fail with INVALID_ID', () => {
  for (const id of ['', '.', '..', 'a/b', 'a b', 'ü', 'x'.repeat(documentIdLengthMax + 1), 'a?b', 'a#b', 7, null]) {
    assert.equal(validateDocumentId(id)?.code, 'INVALID_ID', String(id));
  }
});

test('bodies must be JSON objects', () => {
  assert.equal(validateBody({}), null);
  assert.equal(validateBody({ a: [1, 'x', null, true, { b: -0.5 }] }), null);
  assert.equal(validateBody(JSON.parse('{"__proto__": {"x": 1}}')), null);
  for (const body of [[], [1], 'x', 1, null, true, undefined, new Date(0), new Map()]) {
    assert.equal(validateBody(body)?.code, 'INVALID_BODY', String(body));
  }
});

test('bodies must be strictly JSON inside', () => {
  const sparse: unknown[] = [];
  sparse[2] = 1;
  for (const body of [{ a: undefined }, { a: NaN }, { a: Infinity }, { a: () => 1 }, { a: 1n }, { a: sparse }, { a: '\ud800' }, { ['\udc00']: 1 }, { a: new Date(0) }]) {
    assert.equal(validateBody(body)?.code, 'INVALID_BODY', JSON.stringify(Object.keys(body)));
  }
  const cyclic: Record<string, unknown> = {};
  cyclic['self'] = cyclic;
  assert.equal(validateBody(cyclic)?.code, 'DOCUMENT_TOO_DEEP');
  // A well-formed surrogate pair is fine.
  assert.equal(validateBody({ emoji: '😀' }), null);
});

test('oversize bodies fail with DOCUMENT_TOO_LARGE, measured in UTF-8 bytes of compact JSON', () => {
  const options = resolveDocumentOptions({ documentBytesMax: 20 });
  // {"a":"xxxxxxxxxxxxx"} is 8 + 13 = 21 bytes; one less fits exactly.
  assert.equal(validateBody({ a: 'x'.repeat(12) }, options), null);
  assert.equal(validateBody({ a: 'x'.repeat(13) }, options)?.code, 'DOCUMENT_TOO_LARGE');
  // 'é' is 2 bytes in UTF-8: 8 + 12 = 20 fits, 8 + 14 = 22 does not.
  assert.equal(validateBody({ a: 'é'.repeat(6) }, options), null);
  assert.equal(validateBody({ a: 'é'.repeat(7) }, options)?.code, 'DOCUMENT_TOO_LARGE');
  assert.equal(validateBody({ a: 'x'.repeat(defaultDocumentOptions.documentBytesMax) })?.code, 'DOCUMENT_TOO_LARGE');
});

test('too deep bodies fail with DOCUMENT_TOO_DEEP', () => {
  const options = resolveDocumentOptions({ documentDepthMax: 3 });
  assert.equal(validateBody({ a: { b: [1] } }, options), null);
  assert.equal(validateBody({ a: { b: [[1]] } }, options)?.code, 'DOCUMENT_TOO_DEEP');
});

test('idempotency keys, request ids and timestamps', () => {
  assert.equal(validateIdempotencyKey('k-1:abc/def'), null);
  for (const key of ['', 'a b', 'x'.repeat(257), 'ü', 3]) assert.equal(validateIdempotencyKey(key)?.code, 'INVALID_IDEMPOTENCY_KEY');
  assert.equal(validateRequestId('req-1'), null);
  assert.equal(validateRequestId('x'.repeat(129))?.code, 'INVALID_REQUEST_ID');
  assert.equal(validateTimestamp(0), null);
  for (const ts of [-1, 1.5, NaN, '1', 2 ** 53]) assert.equal(validateTimestamp(ts)?.code, 'INVALID_TIMESTAMP');
});

test('list queries', () => {
  assert.equal(validateListQuery({ collection: 'c', limit: 10, prefix: 'a', startAfter: 'b', start: '', end: 'z' }), null);
  assert.equal(validateListQuery({ collection: '_sys', limit: 10 })?.code, 'INVALID_COLLECTION');
  for (const query of [null, { collection: 'c', limit: 0 }, { collection: 'c', limit: 1001 }, { collection: 'c', limit: 1.5 }, { collection: 'c', limit: 1, prefix: 'a/b' }, { collection: 'c', limit: 1, end: 5 }]) {
    assert.equal(validateListQuery(query)?.code, 'INVALID_LIST_QUERY', JSON.stringify(query));
  }
});

test('options: defaults, overrides, and programmer errors assert', () => {
  assert.equal(resolveDocumentOptions().batchOperationsMax, 100);
  assert.equal(resolveDocumentOptions({ batchOperationsMax: 5 }).batchOperationsMax, 5);
  assert.throws(() => resolveDocumentOptions({ batchOperationsMax: 0 }), AssertionError);
  assert.throws(() => resolveDocumentOptions({ documentDepthMax: 10_000 }), AssertionError);
  // A body at the limit must still fit inside the records that embed it (change records, commands).
  assert.throws(() => resolveDocumentOptions({ documentDepthMax: 510 }), AssertionError);
  assert.equal(resolveDocumentOptions({ documentDepthMax: 504 }).documentDepthMax, 504);
  assert.ok(Object.isFrozen(defaultDocumentOptions));
});
