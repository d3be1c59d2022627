// Goal: applied batches leave change records (the change feed) in the replicated state, skip
// conflicts and duplicates, and drop records older than the retention window deterministically.
// Method: apply commands to a MemoryDocumentStore and read the records back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryDocumentStore, applyCommand, oldestChangeIndex, readChanges, type BatchCommand } from '../../src/documents/index.ts';

function put(id: string, v: number, extra: Partial<BatchCommand> = {}): BatchCommand {
  return { type: 'batch', ops: [{ action: 'put', collection: 'c', id, body: { v } }], timestampMs: 1000 + v, ...extra };
}

test('change records: one per applied batch, none for conflicts or duplicates, resumable by index', () => {
  const store = new MemoryDocumentStore();
  applyCommand(store, put('a', 1, { idempotencyKey: 'k' }), { index: 1, term: 1 });
  applyCommand(store, put('a', 2, { idempotencyKey: 'k' }), { index: 2, term: 1 }); // duplicate
  applyCommand(store, { type: 'batch', ops: [{ action: 'put', collection: 'c', id: 'a', body: {}, condition: { version: 9 } }], timestampMs: 5 }, { index: 3, term: 1 });
  applyCommand(store, { type: 'batch', ops: [{ action: 'delete', collection: 'c', id: 'a' }], timestampMs: 6 }, { index: 5, term: 2 });
  const all = readChanges(store, 0, 10);
  assert.deepEqual(all.map((r) => r.index), [1, 5]);
  assert.equal(all[0]?.changes[0]?.doc?.body['v'], 1);
  assert.equal(all[1]?.changes[0]?.doc, null);
  assert.deepEqual(readChanges(store, 1, 10).map((r) => r.index), [5]);
  assert.deepEqual(readChanges(store, 5, 10), []);
});

test('change records: older than the retention window are dropped, oldest first', () => {
  const store = new MemoryDocumentStore();
  for (let index = 1; index <= 30; index++) applyCommand(store, put(`d${index}`, index), { index, term: 1 }, { changeRetentionEntries: 10 });
  assert.equal(oldestChangeIndex(store), 21);
  assert.deepEqual(readChanges(store, 0, 100).map((r) => r.index), [21, 22, 23, 24, 25, 26, 27, 28, 29, 30]);
});

test('change records: stragglers from a longer retention are swept within 64 entries', () => {
  const store = new MemoryDocumentStore();
  for (let index = 1; index <= 40; index++) applyCommand(store, put(`d${index}`, index), { index, term: 1 }, { changeRetentionEntries: 100 });
  assert.equal(oldestChangeIndex(store), 1);
  // Retention shortened to 10: the window's edge moves one record per entry, older ones wait for the sweep.
  for (let index = 41; index <= 63; index++) applyCommand(store, put(`d${index}`, index), { index, term: 1 }, { changeRetentionEntries: 10 });
  assert.equal(oldestChangeIndex(store), 1);
  applyCommand(store, put('d64', 64), { index: 64, term: 1 }, { changeRetentionEntries: 10 });
  assert.deepEqual(readChanges(store, 0, 100).map((r) => r.index), [55, 56, 57, 58, 59, 60, 61, 62, 63, 64]);
});
