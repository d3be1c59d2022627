// Goal: the leader-side helpers turn requests into the right row ops and commands: create-only,
// replace with optional If-Match, RFC 7396 merge patch pinned to its base version, delete; input
// errors come back as coded values; a merge patch prepared on a stale base conflicts at apply
// and succeeds when prepared again.
// Method: examples against a MemoryDocumentStore, feeding prepared commands through applyCommand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  applyCommand,
  MemoryDocumentStore,
  prepareBatch,
  prepareCreate,
  prepareDelete,
  prepareMergePatch,
  prepareReplace,
  prepareSingle,
  validateCommand,
  type PrepareResult,
  type RowOp,
} from '../../src/documents/index.ts';

function ok<T>(result: PrepareResult<T>): T {
  assert.ok(result.ok, result.ok ? '' : `${result.error.code}: ${result.error.message}`);
  return result.value;
}

function errorCode<T>(result: PrepareResult<T>): string | undefined {
  return result.ok ? undefined : result.error.code;
}

function seeded(): { store: MemoryDocumentStore; write: (op: RowOp) => ReturnType<typeof applyCommand> } {
  const store = new MemoryDocumentStore();
  let index = 0;
  const write = (op: RowOp) => {
    index += 1;
    return applyCommand(store, ok(prepareSingle(op, 1000 + index)), { index, term: 1 });
  };
  write({ action: 'put', collection: 'c', id: 'x', body: { title: 'Goodbye!', author: { givenName: 'John', familyName: 'Doe' } } });
  return { store, write };
}

test('prepareCreate: create-only put', () => {
  assert.deepEqual(ok(prepareCreate({ collection: 'c', id: 'gen-1', body: { a: 1 } })), {
    action: 'put',
    collection: 'c',
    id: 'gen-1',
    body: { a: 1 },
    condition: { exists: false },
  });
  assert.equal(errorCode(prepareCreate({ collection: '_c', id: 'x', body: {} })), 'INVALID_COLLECTION');
  assert.equal(errorCode(prepareCreate({ collection: 'c', id: '..', body: {} })), 'INVALID_ID');
  assert.equal(errorCode(prepareCreate({ collection: 'c', id: 'x', body: [] })), 'INVALID_BODY');
  assert.equal(errorCode(prepareCreate({ collection: 'c', id: 'x', body: { s: 'x'.repeat(50) } }, { documentBytesMax: 20 })), 'DOCUMENT_TOO_LARGE');
  const { write } = seeded();
  const again = write(ok(prepareCreate({ collection: 'c', id: 'x', body: {} })));
  assert.ok(again.status === 'conflict' && again.code === 'ALREADY_EXISTS');
});

test('prepareReplace: unconditional or If-Match', () => {
  assert.deepEqual(ok(prepareReplace({ collection: 'c', id: 'x', body: { a: 1 } })), { action: 'put', collection: 'c', id: 'x', body: { a: 1 } });
  assert.deepEqual(ok(prepareReplace({ collection: 'c', id: 'x', body: {}, ifMatch: 3 })).condition, { version: 3 });
  assert.equal(errorCode(prepareReplace({ collection: 'c', id: 'x', body: {}, ifMatch: 0 })), 'INVALID_CONDITION');
  const { write } = seeded();
  const stale = write(ok(prepareReplace({ collection: 'c', id: 'x', body: {}, ifMatch: 2 })));
  assert.ok(stale.status === 'conflict' && stale.code === 'PRECONDITION_FAILED' && stale.currentVersion === 1);
  assert.equal(write(ok(prepareReplace({ collection: 'c', id: 'x', body: {}, ifMatch: 1 }))).status, 'applied');
});

test('prepareMergePatch: RFC 7396 on the current body, pinned to its version', () => {
  const { store } = seeded();
  const prepared = ok(prepareMergePatch(store, { collection: 'c', id: 'x', patch: { title: 'Hello!', author: { familyName: null } } }));
  assert.deepEqual(prepared.op, {
    action: 'put',
    collection: 'c',
    id: 'x',
    body: { title: 'Hello!', author: { givenName: 'John' } },
    condition: { version: 1 },
  });
  assert.equal(prepared.baseVersion, 1);
  assert.equal(prepared.changed, true);
  assert.equal(ok(prepareMergePatch(store, { collection: 'c', id: 'x', patch: { title: 'Goodbye!', missing: null } })).changed, false);
  assert.equal(ok(prepareMergePatch(store, { collection: 'c', id: 'x', patch: {}, ifMatch: 1 })).baseVersion, 1);
});

test('prepareMergePatch: errors', () => {
  const { store } = seeded();
  const missing = prepareMergePatch(store, { collection: 'c', id: 'nope', patch: {} });
  assert.ok(!missing.ok && missing.error.code === 'NOT_FOUND' && missing.error.currentVersion === null);
  const stale = prepareMergePatch(store, { collection: 'c', id: 'x', patch: {}, ifMatch: 4 });
  assert.ok(!stale.ok && stale.error.code === 'PRECONDITION_FAILED' && stale.error.currentVersion === 1);
  // Non-object patches replace the whole value (RFC 7396), which cannot be a document.
  for (const patch of [null, 'bar', [1], 3]) {
    assert.equal(errorCode(prepareMergePatch(store, { collection: 'c', id: 'x', patch })), 'INVALID_PATCH', JSON.stringify(patch));
  }
  assert.equal(errorCode(prepareMergePatch(store, { collection: 'c', id: 'x', patch: { a: undefined } })), 'INVALID_PATCH');
  assert.equal(errorCode(prepareMergePatch(store, { collection: 'c', id: 'x', patch: { big: 'x'.repeat(200) } }, { documentBytesMax: 150 })), 'DOCUMENT_TOO_LARGE');
  assert.equal(errorCode(prepareMergePatch(store, { collection: 'c', id: 'x/y', patch: {} })), 'INVALID_ID');
});

test('a merge patch prepared on a stale base conflicts at apply, and succeeds when prepared again', () => {
  const { store, write } = seeded();
  const patch = { tags: ['a'] };
  const stalePrepared = ok(prepareMergePatch(store, { collection: 'c', id: 'x', patch }));
  // Another write commits between preparing and applying.
  write(ok(prepareReplace({ collection: 'c', id: 'x', body: { title: 'Other' } })));
  const result = write(stalePrepared.op);
  assert.ok(result.status === 'conflict' && result.code === 'PRECONDITION_FAILED' && result.currentVersion === 2);
  const again = ok(prepareMergePatch(store, { collection: 'c', id: 'x', patch }));
  assert.equal(write(again.op).status, 'applied');
  assert.deepEqual(store.get('c', 'x')?.body, { title: 'Other', tags: ['a'] });
  assert.equal(store.get('c', 'x')?.version, 3);
});

test('prepareDelete', () => {
  assert.deepEqual(ok(prepareDelete({ collection: 'c', id: 'x' })), { action: 'delete', collection: 'c', id: 'x' });
  assert.deepEqual(ok(prepareDelete({ collection: 'c', id: 'x', ifMatch: 2 })), { action: 'delete', collection: 'c', id: 'x', condition: { version: 2 } });
  assert.equal(errorCode(prepareDelete({ collection: 'c', id: '' })), 'INVALID_ID');
  const { store, write } = seeded();
  assert.equal(write(ok(prepareDelete({ collection: 'c', id: 'x', ifMatch: 1 }))).status, 'applied');
  assert.equal(store.get('c', 'x'), null);
});

test('prepareBatch: stamps, validates with limits, and yields commands that validate', () => {
  const ops = [ok(prepareCreate({ collection: 'c', id: 'a', body: {} })), ok(prepareDelete({ collection: 'c', id: 'b' }))];
  const command = ok(prepareBatch({ ops, timestampMs: 7, idempotencyKey: 'k', requestId: 'r' }));
  assert.deepEqual(command, { type: 'batch', ops, timestampMs: 7, idempotencyKey: 'k', requestId: 'r' });
  assert.equal(validateCommand(command, null), null);
  assert.deepEqual(Object.keys(ok(prepareBatch({ ops, timestampMs: 7 }))), ['type', 'ops', 'timestampMs']);
  assert.equal(errorCode(prepareBatch({ ops, timestampMs: 7 }, { batchOperationsMax: 1 })), 'BATCH_TOO_LARGE');
  assert.equal(errorCode(prepareBatch({ ops: [], timestampMs: 7 })), 'BATCH_EMPTY');
  assert.equal(errorCode(prepareBatch({ ops: 'nope', timestampMs: 7 })), 'INVALID_COMMAND');
  assert.equal(errorCode(prepareBatch({ ops, timestampMs: -1 })), 'INVALID_TIMESTAMP');
  assert.equal(errorCode(prepareBatch({ ops, timestampMs: 1, idempotencyKey: 'has space' })), 'INVALID_IDEMPOTENCY_KEY');
});
