// Goal: applyCommand implements the document state machine as documented: versions and indexes,
// conditions evaluated against state including earlier ops of the batch, all-or-nothing batches,
// idempotency records (duplicates answered from the record, expiry by command time, bounded
// sweeps), rejected malformed commands, and the applied index.
// Method: scenario tests on a MemoryDocumentStore, comparing results and store content before
// and after each step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  applyCommand,
  lookupIdempotency,
  MemoryDocumentStore,
  readAppliedIndex,
  readChanges,
  readStateClock,
  resolveDocumentOptions,
  validateBody,
  type ApplyResult,
  type BatchCommand,
  type Command,
  type Condition,
  type DocumentOptions,
  type JsonObject,
  type RowOp,
  type StoredDocument,
} from '../../src/documents/index.ts';
import { AssertionError } from '../../src/shared/assert.ts';

/** A store plus a log position counter, so each test reads like a sequence of committed entries. */
class Harness {
  readonly store = new MemoryDocumentStore();
  index = 0;
  constructor(private readonly options: Partial<DocumentOptions> = {}) {}

  apply(command: Command, term = 1): ApplyResult {
    this.index += 1;
    return applyCommand(this.store, command, { index: this.index, term }, this.options);
  }

  batch(ops: RowOp[], extra: Partial<BatchCommand> = {}): ApplyResult {
    return this.apply({ type: 'batch', ops, timestampMs: 1000 + this.index, ...extra });
  }

  documents(): StoredDocument[] {
    return this.store.collectionNames().flatMap((collection) => this.store.list({ collection, limit: 1000 }).documents);
  }

  idempotencyKeys(): string[] {
    return this.store.listMeta({ prefix: 'idempotency/', limit: 1000 }).map((entry) => entry.key.slice('idempotency/'.length));
  }
}

const put = (id: string, body: JsonObject, condition?: Condition, collection = 'c'): RowOp =>
  condition === undefined ? { action: 'put', collection, id, body } : { action: 'put', collection, id, body, condition };
const del = (id: string, condition?: Condition, collection = 'c'): RowOp =>
  condition === undefined ? { action: 'delete', collection, id } : { action: 'delete', collection, id, condition };

function applied(result: ApplyResult) {
  assert.equal(result.status, 'applied', JSON.stringify(result));
  if (result.status !== 'applied') throw new Error('unreachable');
  return result;
}

function conflict(result: ApplyResult) {
  assert.equal(result.status, 'conflict', JSON.stringify(result));
  if (result.status !== 'conflict') throw new Error('unreachable');
  return result;
}

test('create, replace, delete: versions, indexes, timestamps and changes', () => {
  const h = new Harness();
  const created = applied(h.apply({ type: 'batch', ops: [put('x', { n: 1 })], timestampMs: 500, requestId: 'r1' }));
  assert.deepEqual(created.ops, [{ collection: 'c', id: 'x', version: 1, index: 1, deleted: false }]);
  assert.equal(created.requestId, 'r1');
  assert.equal(created.duplicate, false);
  assert.equal(created.originalIndex, 1);
  assert.deepEqual(created.changes, [{ collection: 'c', id: 'x', doc: { collection: 'c', id: 'x', body: { n: 1 }, version: 1, index: 1, updatedAtMs: 500 } }]);
  assert.deepEqual(h.store.get('c', 'x'), { collection: 'c', id: 'x', body: { n: 1 }, version: 1, index: 1, updatedAtMs: 500 });

  const replaced = applied(h.apply({ type: 'batch', ops: [put('x', { n: 2 })], timestampMs: 600 }));
  assert.deepEqual(replaced.ops, [{ collection: 'c', id: 'x', version: 2, index: 2, deleted: false }]);
  assert.deepEqual(h.store.get('c', 'x'), { collection: 'c', id: 'x', body: { n: 2 }, version: 2, index: 2, updatedAtMs: 600 });

  const deleted = applied(h.batch([del('x')]));
  assert.deepEqual(deleted.ops, [{ collection: 'c', id: 'x', version: 2, index: 3, deleted: true }]);
  assert.deepEqual(deleted.changes, [{ collection: 'c', id: 'x', doc: null }]);
  assert.equal(h.store.get('c', 'x'), null);

  // Re-creating starts the version again at 1; the index (unique per change) tells them apart.
  const recreated = applied(h.batch([put('x', { n: 3 })]));
  assert.deepEqual(recreated.ops, [{ collection: 'c', id: 'x', version: 1, index: 4, deleted: false }]);
});

test('deleting a missing document without a condition is a successful no-op', () => {
  const h = new Harness();
  const result = applied(h.batch([del('ghost')]));
  assert.deepEqual(result.ops, [{ collection: 'c', id: 'ghost', version: null, index: 1, deleted: false }]);
  assert.deepEqual(result.changes, []);
  assert.deepEqual(h.documents(), []);
});

test('changes carry frozen store copies; the command object can be reused safely', () => {
  const h = new Harness();
  const body = { list: [1] };
  const result = applied(h.batch([put('x', body)]));
  body.list.push(2);
  assert.deepEqual(h.store.get('c', 'x')?.body, { list: [1] });
  const doc = result.changes[0]?.doc;
  assert.ok(doc !== null && doc !== undefined && Object.isFrozen(doc.body));
});

test('condition exists', () => {
  const h = new Harness();
  assert.deepEqual(
    { ...conflict(h.batch([put('x', { n: 1 }, { exists: true })])), index: 0 },
    { index: 0, term: 1, status: 'conflict', code: 'NOT_FOUND', message: 'the document does not exist', opIndex: 0, collection: 'c', id: 'x', currentVersion: null },
  );
  applied(h.batch([put('x', { n: 1 }, { exists: false })]));
  const taken = conflict(h.batch([put('x', { n: 2 }, { exists: false })]));
  assert.equal(taken.code, 'ALREADY_EXISTS');
  assert.equal(taken.currentVersion, 1);
  applied(h.batch([put('x', { n: 2 }, { exists: true })]));
  assert.equal(conflict(h.batch([del('y', { exists: true })])).code, 'NOT_FOUND');
  applied(h.batch([del('y', { exists: false })]));
});

test('condition version', () => {
  const h = new Harness();
  assert.equal(conflict(h.batch([put('x', { n: 1 }, { version: 1 })])).code, 'NOT_FOUND');
  applied(h.batch([put('x', { n: 1 })]));
  applied(h.batch([put('x', { n: 2 }, { version: 1 })]));
  const stale = conflict(h.batch([put('x', { n: 3 }, { version: 1 })]));
  assert.equal(stale.code, 'PRECONDITION_FAILED');
  assert.equal(stale.currentVersion, 2);
  assert.deepEqual(h.store.get('c', 'x')?.body, { n: 2 });
  assert.equal(conflict(h.batch([del('x', { version: 1 })])).code, 'PRECONDITION_FAILED');
  applied(h.batch([del('x', { version: 2 })]));
  assert.equal(h.store.get('c', 'x'), null);
});

test('condition fields: top-level deep equality, key order irrelevant, missing is not null', () => {
  const h = new Harness();
  applied(h.batch([put('x', { state: 'open', meta: { a: 1, b: [1, 2] }, gone: null })]));
  applied(h.batch([put('x', { state: 'closed', meta: { a: 1, b: [1, 2] }, gone: null }, { fields: { state: 'open', meta: { b: [1, 2], a: 1 } } })]));
  const wrong = conflict(h.batch([put('x', { state: 'open' }, { fields: { state: 'open' } })]));
  assert.equal(wrong.code, 'PRECONDITION_FAILED');
  assert.equal(wrong.currentVersion, 2);
  assert.equal(conflict(h.batch([put('x', {}, { fields: { meta: { a: 1 } } })])).code, 'PRECONDITION_FAILED');
  assert.equal(conflict(h.batch([put('x', {}, { fields: { absent: null } })])).code, 'PRECONDITION_FAILED');
  applied(h.batch([put('x', {}, { fields: { gone: null }, version: 2, exists: true })]));
  assert.equal(conflict(h.batch([put('y', {}, { fields: { a: 1 } })])).code, 'NOT_FOUND');
});

test('a batch sees its own earlier ops', () => {
  const h = new Harness();
  const result = applied(
    h.batch([
      put('x', { n: 1 }, { exists: false }),
      put('x', { n: 2 }, { version: 1, fields: { n: 1 } }),
      put('y', { moved: true }, { exists: false }),
      del('x', { version: 2 }),
      put('x', { n: 'again' }, { exists: false }),
    ]),
  );
  assert.deepEqual(
    result.ops.map((op) => [op.id, op.version, op.deleted]),
    [['x', 1, false], ['x', 2, false], ['y', 1, false], ['x', 2, true], ['x', 1, false]],
  );
  assert.deepEqual(result.changes.map((change) => [change.id, change.doc?.version ?? null]), [['x', 1], ['x', 2], ['y', 1], ['x', null], ['x', 1]]);
  assert.deepEqual(h.store.get('c', 'x')?.body, { n: 'again' });
  assert.equal(h.store.get('c', 'x')?.version, 1);
  // ...and a later op can fail because of an earlier one.
  const failed = conflict(h.batch([del('y'), put('y', {}, { exists: true })]));
  assert.equal(failed.opIndex, 1);
  assert.equal(failed.code, 'NOT_FOUND');
  assert.notEqual(h.store.get('c', 'y'), null);
});

test('batch all-or-nothing: a failing last op leaves the earlier ops unapplied', () => {
  const h = new Harness();
  applied(h.batch([put('keep', { n: 1 }), put('victim', { n: 1 })]));
  const before = h.documents();
  const result = conflict(
    h.batch([put('keep', { n: 2 }), del('victim'), put('new', { n: 1 }, undefined, 'other'), put('keep', { n: 3 }, { version: 1 })]),
  );
  assert.equal(result.opIndex, 3);
  assert.equal(result.code, 'PRECONDITION_FAILED');
  assert.equal(result.currentVersion, 2); // as seen after op 0 of the same batch
  assert.deepEqual(h.documents(), before);
  assert.deepEqual(h.store.collectionNames(), ['c']);
});

test('the applied index advances with every entry, in the same transaction', () => {
  const h = new Harness();
  assert.deepEqual(readAppliedIndex(h.store), { index: 0, term: 0 });
  applied(h.batch([put('x', {})]));
  assert.deepEqual(readAppliedIndex(h.store), { index: 1, term: 1 });
  conflict(h.apply({ type: 'batch', ops: [put('x', {}, { exists: false })], timestampMs: 1 }, 2));
  assert.deepEqual(readAppliedIndex(h.store), { index: 2, term: 2 });
  assert.equal(h.apply({ type: 'noop' }, 3).status, 'housekeeping');
  assert.deepEqual(readAppliedIndex(h.store), { index: 3, term: 3 });
});

test('applying an index twice or out of order is a programmer error and changes nothing', () => {
  const h = new Harness();
  applied(h.batch([put('x', {})]));
  const digest = h.store.digest();
  assert.throws(() => applyCommand(h.store, { type: 'batch', ops: [put('y', {})], timestampMs: 1 }, { index: 1, term: 1 }), AssertionError);
  assert.throws(() => applyCommand(h.store, { type: 'noop' }, { index: 0, term: 1 }), AssertionError);
  assert.equal(h.store.digest(), digest);
});

test('a malformed command is rejected identically, changing only the applied index', () => {
  const h = new Harness();
  applied(h.batch([put('x', { n: 1 })]));
  const before = h.documents();
  const bad = { type: 'batch', ops: [put('y', {}), { action: 'put', collection: '_system', id: 'z', body: {} }], timestampMs: 1, requestId: 'r9' } as unknown as Command;
  const result = h.apply(bad);
  assert.equal(result.status, 'rejected');
  assert.ok(result.status === 'rejected' && result.error.code === 'INVALID_COLLECTION' && result.error.opIndex === 1);
  assert.equal(result.requestId, 'r9');
  assert.deepEqual(h.documents(), before);
  assert.equal(readAppliedIndex(h.store).index, 2);
});

test('configured size limits are not re-judged at apply (they were enforced before proposing)', () => {
  const h = new Harness({ documentBytesMax: 10, batchOperationsMax: 1 });
  applied(h.batch([put('x', { long: 'x'.repeat(100) }), put('y', {})]));
});

test('idempotency: a recorded key is answered from the record, not applied again', () => {
  const h = new Harness();
  const first = applied(h.apply({ type: 'batch', ops: [put('x', { n: 1 }), del('z')], timestampMs: 100, idempotencyKey: 'k1', requestId: 'a' }));
  const documents = h.documents();
  // The retry may even carry different ops (e.g. re-prepared): the key decides.
  const second = applied(h.apply({ type: 'batch', ops: [put('x', { n: 99 })], timestampMs: 200, idempotencyKey: 'k1', requestId: 'b' }));
  assert.equal(second.duplicate, true);
  assert.deepEqual(second.ops, first.ops);
  assert.equal(second.originalIndex, 1);
  assert.equal(second.index, 2);
  assert.equal(second.timestampMs, 100);
  assert.equal(second.idempotencyKey, 'k1');
  assert.equal(second.requestId, 'b');
  assert.deepEqual(second.changes, []);
  assert.deepEqual(h.documents(), documents);
  assert.equal(h.store.get('c', 'x')?.version, 1);
  assert.deepEqual(lookupIdempotency(h.store, 'k1', 300)?.ops, first.ops);
  assert.equal(lookupIdempotency(h.store, 'other', 300), null);
});

test('idempotency: conflicts are not recorded, so a retry under the same key can succeed', () => {
  const h = new Harness();
  applied(h.batch([put('x', { n: 1 })]));
  conflict(h.batch([put('x', { n: 2 }, { version: 7 })], { idempotencyKey: 'k' }));
  assert.deepEqual(h.idempotencyKeys(), []);
  const retry = applied(h.batch([put('x', { n: 2 }, { version: 1 })], { idempotencyKey: 'k' }));
  assert.equal(retry.duplicate, false);
  assert.equal(applied(h.batch([put('x', { n: 2 }, { version: 1 })], { idempotencyKey: 'k' })).duplicate, true);
});

test('idempotency: records expire after the retention window, by command time only', () => {
  const h = new Harness({ idempotencyRetentionMs: 1000 });
  applied(h.apply({ type: 'batch', ops: [put('x', {})], timestampMs: 5000, idempotencyKey: 'k' }));
  assert.equal(applied(h.apply({ type: 'batch', ops: [put('x', {})], timestampMs: 5999, idempotencyKey: 'k' })).duplicate, true);
  // A leader whose clock is behind does not expire anything early.
  assert.equal(applied(h.apply({ type: 'batch', ops: [put('x', {})], timestampMs: 10, idempotencyKey: 'k' })).duplicate, true);
  const after = applied(h.apply({ type: 'batch', ops: [put('x', {})], timestampMs: 6000, idempotencyKey: 'k' }));
  assert.equal(after.duplicate, false);
  assert.equal(after.ops[0]?.version, 2);
  assert.equal(h.store.get('c', 'x')?.version, 2);
});

test('idempotency: expired records are swept a bounded number per apply, oldest first', () => {
  const h = new Harness({ idempotencyRetentionMs: 1000, idempotencyExpiryPerApplyMax: 2 });
  // Key names sort against time order, so "oldest first" cannot pass by accident of key order.
  for (const [t, key] of ['z0', 'y1', 'x2', 'w3', 'v4'].entries()) {
    applied(h.apply({ type: 'batch', ops: [put(`d${t}`, {})], timestampMs: t, idempotencyKey: key }));
  }
  assert.deepEqual(h.idempotencyKeys(), ['v4', 'w3', 'x2', 'y1', 'z0']);
  applied(h.apply({ type: 'batch', ops: [put('x', {})], timestampMs: 1002 }));
  assert.deepEqual(h.idempotencyKeys(), ['v4', 'w3', 'x2']); // z0, y1 swept; x2 (1002 - 2 = 1000) is expired but over budget
  const conflicted = conflict(h.apply({ type: 'batch', ops: [put('x', {}, { exists: false })], timestampMs: 1003 }));
  assert.equal(conflicted.code, 'ALREADY_EXISTS');
  assert.deepEqual(h.idempotencyKeys(), ['v4']); // housekeeping happens even when the batch conflicts
  const sweep = h.apply({ type: 'expireIdempotency', timestampMs: 1003, max: 10 });
  assert.equal(sweep.status === 'housekeeping' ? sweep.expired : -1, 0); // v4 is not expired at 1003
  const later = h.apply({ type: 'expireIdempotency', timestampMs: 5000, max: 10 });
  assert.equal(later.status === 'housekeeping' ? later.expired : -1, 1);
  assert.deepEqual(h.store.listMeta({ prefix: 'idempotency', limit: 100 }), []);
});

test('a body as deep as documentDepthMax allows is stored with its change record (the record nests it deeper)', () => {
  const options = resolveDocumentOptions({ documentDepthMax: 504 }); // the largest allowed
  const deep = (levels: number): JsonObject => (levels === 1 ? { leaf: true } : { a: deep(levels - 1) });
  const body = deep(504);
  assert.equal(validateBody(body, options), null);
  const h = new Harness(options);
  applied(h.apply({ type: 'batch', ops: [put('deep', body)], timestampMs: 1 }));
  assert.equal(readChanges(h.store, 0, 10).length, 1);
  assert.equal(h.store.get('c', 'deep')?.version, 1);
});

test('idempotency: a record is swept by the first apply at which it has expired, however many applies saw it live', () => {
  // Applies remember a bound on the oldest expiry so that most skip the scan; the bound must not
  // delay a sweep by even a millisecond, nor survive a restore to another index.
  const h = new Harness({ idempotencyRetentionMs: 1000, idempotencyExpiryPerApplyMax: 4 });
  applied(h.apply({ type: 'batch', ops: [put('a', {})], timestampMs: 100, idempotencyKey: 'k' }));
  applied(h.apply({ type: 'batch', ops: [put('b', {})], timestampMs: 600, idempotencyKey: 'm' }));
  for (let t = 700; t < 1100; t += 100) applied(h.apply({ type: 'batch', ops: [put('x', {})], timestampMs: t }));
  applied(h.apply({ type: 'batch', ops: [put('x', {})], timestampMs: 1099 }));
  assert.deepEqual(h.idempotencyKeys(), ['k', 'm']);
  applied(h.apply({ type: 'batch', ops: [put('x', {})], timestampMs: 1100 })); // k: exactly 1000 ms
  assert.deepEqual(h.idempotencyKeys(), ['m']);
  // m's bound now comes from the scan that stopped at it, not from recording it.
  applied(h.apply({ type: 'batch', ops: [put('x', {})], timestampMs: 1599 }));
  assert.deepEqual(h.idempotencyKeys(), ['m']);
  applied(h.apply({ type: 'batch', ops: [put('x', {})], timestampMs: 1600 }));
  assert.deepEqual(h.idempotencyKeys(), []);
  // A store restored to an earlier state (k still there, clock behind) must scan again.
  const copy = new MemoryDocumentStore();
  const early = new Harness({ idempotencyRetentionMs: 1000 });
  applied(early.apply({ type: 'batch', ops: [put('a', {})], timestampMs: 100, idempotencyKey: 'k' }));
  applied(early.apply({ type: 'batch', ops: [put('b', {})], timestampMs: 1050, idempotencyKey: 'n' }));
  assert.equal(copy.restore(early.store.snapshot()), null);
  h.store.restore(copy.snapshot());
  h.index = 2;
  // h's last bound was "nothing left" (Infinity): used here, it would keep k.
  applied(h.apply({ type: 'batch', ops: [put('y', {})], timestampMs: 1100 }));
  assert.deepEqual(h.idempotencyKeys(), ['n']);
  applied(h.apply({ type: 'batch', ops: [put('y', {})], timestampMs: 2100 }));
  assert.deepEqual(h.idempotencyKeys(), []);
});

test('idempotency: expiry runs on a clock that never goes back', () => {
  const h = new Harness({ idempotencyRetentionMs: 1000 });
  applied(h.apply({ type: 'batch', ops: [put('x', {})], timestampMs: 5000, idempotencyKey: 'k' }));
  applied(h.apply({ type: 'batch', ops: [put('y', {})], timestampMs: 6000 })); // sweeps k
  assert.equal(readStateClock(h.store), 6000);
  // A new leader whose clock is behind: the state clock still says k expired, so it applies anew
  // (consistent with the sweep that already removed it), stamping the leader's own time.
  const retry = applied(h.apply({ type: 'batch', ops: [put('x', {})], timestampMs: 5500, idempotencyKey: 'k' }));
  assert.equal(retry.duplicate, false);
  assert.equal(h.store.get('c', 'x')?.updatedAtMs, 5500);
  assert.equal(readStateClock(h.store), 6000);
  assert.equal(lookupIdempotency(h.store, 'k', 0)?.recordedAtMs, 6000);
  assert.equal(lookupIdempotency(h.store, 'k', 6999, { idempotencyRetentionMs: 1000 })?.index, 3);
  assert.equal(lookupIdempotency(h.store, 'k', 7000, { idempotencyRetentionMs: 1000 }), null);
});

test('idempotency: a key reused after expiry survives the sweep of its stale expiry entry', () => {
  const h = new Harness({ idempotencyRetentionMs: 1000, idempotencyExpiryPerApplyMax: 1 });
  applied(h.apply({ type: 'batch', ops: [put('a', {})], timestampMs: 0, idempotencyKey: 'J' }));
  applied(h.apply({ type: 'batch', ops: [put('b', {})], timestampMs: 1, idempotencyKey: 'K' }));
  // The sweep's budget (1) removes J only; K is expired by time, so it applies anew.
  assert.equal(applied(h.apply({ type: 'batch', ops: [put('b', {})], timestampMs: 1001, idempotencyKey: 'K' })).duplicate, false);
  // This sweep removes K's old expiry entry but must keep K's new record.
  applied(h.apply({ type: 'batch', ops: [put('c', {})], timestampMs: 1002 }));
  assert.deepEqual(h.idempotencyKeys(), ['K']);
  const retry = applied(h.apply({ type: 'batch', ops: [put('b', {})], timestampMs: 1003, idempotencyKey: 'K' }));
  assert.equal(retry.duplicate, true);
  assert.equal(retry.originalIndex, 3);
});
