// Goal: LmdbDocumentStore has exactly MemoryDocumentStore's semantics and produces the same bytes:
// the shared contract suite passes for both (and for both LMDB sync modes); random operation
// sequences give equal list/listMeta/get results, equal digests and byte-identical snapshots;
// snapshots restore across implementations; keys with unusual code units (U+0000, lone
// surrogates, astral characters, U+FFFF) order as JavaScript strings do; -0 and "__proto__"
// members survive; content survives close/reopen; the open/closed marker classifies restarts.
// Method: the contract suite from document_store_contract.ts, a fast-check model comparison, and
// worked examples (a child process killed with SIGKILL for the crash case).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { MemoryDocumentStore, type JsonObject, type JsonValue, type ListQuery } from '../../src/documents/index.ts';
import { LmdbDocumentStore, type DocumentDurability } from '../../src/storage/index.ts';
import { documentStoreContract, doc, type ContractStore } from './document_store_contract.ts';
import { removeDir, repoRoot, tempDir, withTempDir } from './helpers.ts';

documentStoreContract('memory', {
  create: () => Promise.resolve({ store: new MemoryDocumentStore(), dispose: () => Promise.resolve() }),
});

function lmdbFactory(durability: DocumentDurability) {
  return {
    create: () => {
      const dir = tempDir(`docs-${durability}`);
      const store = LmdbDocumentStore.open(dir, { durability });
      return Promise.resolve({
        store: store as ContractStore,
        dispose: async () => {
          try {
            await store.close();
          } finally {
            removeDir(dir);
          }
        },
      });
    },
  };
}

documentStoreContract('lmdb', lmdbFactory('rebuildable'));
documentStoreContract('lmdb (fsync)', lmdbFactory('fsync'));

// --- the same random operations on both implementations -----------------------------------------

// Code units that stress the key encoding: U+0000 (escaped in collection names), a lone high and
// low surrogate, an astral character (a surrogate pair, which sorts *below* U+E000..U+FFFF in
// UTF-16 order but above them in code point order), U+FFFF, and ordinary letters.
const unitArb = fc.constantFrom('a', 'b', 'z', '\u0000', '\u0001', '\uD800', '\uDC00', '\u{1F600}', '\uE000', '\uFFFF', 'é', '.');
const nameArb = fc.array(unitArb, { minLength: 1, maxLength: 3 }).map((units) => units.join(''));
const boundArb = fc.option(fc.array(unitArb, { maxLength: 2 }).map((units) => units.join('')), { nil: undefined });
const jsonLeaf = fc.oneof(fc.constant(null), fc.boolean(), fc.integer(), fc.constant(-0), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.string());
const bodyArb: fc.Arbitrary<JsonObject> = fc.dictionary(
  fc.oneof(fc.string(), fc.constantFrom('__proto__', '2', '10', 'constructor')),
  fc.oneof(jsonLeaf, fc.array(jsonLeaf, { maxLength: 3 }), fc.dictionary(fc.string(), jsonLeaf, { maxKeys: 3 })),
  { maxKeys: 4 },
).map((body) => body as JsonObject);

type Write =
  | { op: 'put'; collection: string; id: string; body: JsonObject; version: number }
  | { op: 'delete'; collection: string; id: string }
  | { op: 'putMeta'; key: string; value: JsonValue }
  | { op: 'deleteMeta'; key: string };

const writeArb: fc.Arbitrary<Write> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('put' as const), collection: nameArb, id: nameArb, body: bodyArb, version: fc.integer({ min: 1, max: 9 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), collection: nameArb, id: nameArb }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('putMeta' as const), key: nameArb, value: fc.oneof(jsonLeaf, bodyArb) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('deleteMeta' as const), key: nameArb }) },
);

type Step = { kind: 'direct'; write: Write } | { kind: 'transaction'; writes: Write[]; abort: boolean };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: writeArb.map((write): Step => ({ kind: 'direct', write })) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('transaction' as const), writes: fc.array(writeArb, { maxLength: 5 }), abort: fc.boolean() }) },
);

function apply(target: { put: ContractStore['put']; delete: ContractStore['delete']; putMeta: ContractStore['putMeta']; deleteMeta: ContractStore['deleteMeta'] }, write: Write): unknown {
  switch (write.op) {
    case 'put':
      return target.put({ collection: write.collection.replaceAll('/', '_'), id: write.id, body: write.body, version: write.version, index: 3, updatedAtMs: 5 });
    case 'delete':
      return target.delete(write.collection, write.id);
    case 'putMeta':
      return target.putMeta(write.key, write.value);
    case 'deleteMeta':
      return target.deleteMeta(write.key);
  }
}

function run(store: ContractStore, step: Step): unknown {
  if (step.kind === 'direct') return apply(store, step.write);
  try {
    return store.transaction((tx) => {
      const results = step.writes.map((write) => apply(tx, write));
      const listed = tx.list({ collection: step.writes.find((w) => w.op === 'put')?.collection ?? 'a', limit: 50 }).documents.map((d) => d.id);
      if (step.abort) throw new Error('abort');
      return { results, listed };
    });
  } catch (error) {
    return (error as Error).message;
  }
}

test('property: random operations on MemoryDocumentStore and LmdbDocumentStore give equal results, digests and snapshots', async () => {
  await withTempDir('docs-prop', async (dir) => {
    const lmdb = LmdbDocumentStore.open(dir);
    const empty = new MemoryDocumentStore().snapshot();
    try {
      fc.assert(
        fc.property(
          fc.array(stepArb, { maxLength: 25 }),
          fc.array(fc.record({ collection: nameArb, prefix: boundArb, startAfter: boundArb, start: boundArb, end: boundArb, limit: fc.integer({ min: 1, max: 5 }) }), { minLength: 1, maxLength: 4 }),
          (steps, queries) => {
            const memory = new MemoryDocumentStore();
            assert.equal(lmdb.restore(empty), null);
            for (const step of steps) assert.deepEqual(run(lmdb, step), run(memory, step));
            for (const query of queries as ListQuery[]) {
              assert.deepEqual(lmdb.list(query), memory.list(query));
              assert.deepEqual(lmdb.listMeta(query), memory.listMeta(query));
              assert.deepEqual(lmdb.listMetaKeys(query), memory.listMeta(query).map((e) => e.key));
            }
            assert.deepEqual(lmdb.collectionNames(), memory.collectionNames());
            assert.equal(lmdb.documentCount(), memory.documentCount());
            for (const name of memory.collectionNames()) {
              const all = memory.list({ collection: name, limit: 1000 });
              assert.deepEqual(lmdb.list({ collection: name, limit: 1000 }), all);
              for (const d of all.documents) assert.deepEqual(lmdb.get(name, d.id), d); // -0 and member order included
            }
            assert.deepEqual(lmdb.listMeta({ limit: 1000 }), memory.listMeta({ limit: 1000 }));
            assert.equal(lmdb.digest(), memory.digest());
            assert.deepEqual(Buffer.from(lmdb.snapshot()), Buffer.from(memory.snapshot()));
          },
        ),
        { numRuns: 200 },
      );
    } finally {
      await lmdb.close();
    }
  });
});

test('snapshots restore across implementations in both directions', async () => {
  await withTempDir('docs-cross', async (dir) => {
    const lmdb = LmdbDocumentStore.open(dir);
    try {
      const memory = new MemoryDocumentStore();
      memory.put(doc('users', 'u1', { name: 'Ada', tags: ['x'], zero: -0 }));
      memory.put(doc('users', '\u{1F600}', { emoji: true }));
      memory.put(doc('users', '\uFFFF', { last: true }));
      memory.putMeta('appliedIndex', { index: 12, term: 3 });
      assert.equal(lmdb.restore(memory.snapshot()), null);
      assert.equal(lmdb.digest(), memory.digest());
      assert.deepEqual(Buffer.from(lmdb.snapshot()), Buffer.from(memory.snapshot()));
      // UTF-16 order: the surrogate pair (0xD83D...) sorts before U+FFFF, unlike code point order.
      assert.deepEqual(lmdb.list({ collection: 'users', limit: 10 }).documents.map((d) => d.id), ['u1', '\u{1F600}', '\uFFFF']);
      lmdb.put(doc('users', 'u2', { name: 'Grace' }));
      const back = new MemoryDocumentStore();
      assert.equal(back.restore(lmdb.snapshot()), null);
      assert.equal(back.digest(), lmdb.digest());
    } finally {
      await lmdb.close();
    }
  });
});

test('values come back exactly: -0, "__proto__" members, integer-like keys, deep nesting, long ids', async () => {
  await withTempDir('docs-values', async (dir) => {
    const lmdb = LmdbDocumentStore.open(dir);
    const memory = new MemoryDocumentStore();
    try {
      const body = JSON.parse('{"__proto__": {"polluted": true}, "b": -0, "2": [0, -0], "a": {"x": [1.5e300, "é\\u0000"]}}') as JsonObject;
      let deep: JsonObject = { leaf: true };
      for (let i = 0; i < 100; i += 1) deep = { d: deep };
      const longId = 'i'.repeat(256);
      const longCollection = 'c'.repeat(64);
      for (const store of [lmdb, memory]) {
        store.put(doc('c', 'x', body));
        store.put(doc(longCollection, longId, deep));
        store.putMeta('m', -0);
      }
      const got = lmdb.get('c', 'x');
      assert.deepEqual(got, memory.get('c', 'x'));
      assert.ok(got !== null && Object.hasOwn(got.body, '__proto__'), '"__proto__" stays an own data member');
      assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
      assert.ok(Object.is(got.body['b'], -0));
      assert.deepEqual(Object.keys(got.body), ['2', '__proto__', 'b', 'a']);
      assert.deepEqual(lmdb.get(longCollection, longId), memory.get(longCollection, longId));
      assert.ok(Object.is(lmdb.getMeta('m'), -0));
      assert.equal(lmdb.digest(), memory.digest());
      assert.deepEqual(Buffer.from(lmdb.snapshot()), Buffer.from(memory.snapshot()));
    } finally {
      await lmdb.close();
    }
  });
});

test('content survives close and reopen; a cleanly closed store reopens as "clean"', async () => {
  await withTempDir('docs-reopen', async (dir) => {
    let store = LmdbDocumentStore.open(dir);
    assert.equal(store.recovery, 'fresh');
    store.transaction((tx) => {
      tx.put(doc('c', 'x', { n: 1 }));
      tx.putMeta('appliedIndex', 7);
    });
    const digest = store.digest();
    await store.close();
    assert.throws(() => store.get('c', 'x'), /closed/);
    store = LmdbDocumentStore.open(dir);
    try {
      assert.equal(store.recovery, 'clean');
      assert.equal(store.digest(), digest);
      assert.equal(store.getMeta('appliedIndex'), 7);
    } finally {
      await store.close();
    }
  });
});

test('an unclean shutdown is trusted on the same boot, discarded after another boot (rebuildable mode)', async () => {
  await withTempDir('docs-crash', async (dir) => {
    // A child writes, reports, and is killed with SIGKILL: no close, no fsync.
    const script = `
      import { LmdbDocumentStore } from './src/storage/index.ts';
      const store = LmdbDocumentStore.open(process.argv[1]);
      store.transaction((tx) => { tx.put({ collection: 'c', id: 'x', body: { n: 1 }, version: 1, index: 1, updatedAtMs: 0 }); tx.putMeta('appliedIndex', 1); });
      process.stdout.write('WRITTEN\\n');
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, dir], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('child did not write within 30 s')), 30_000);
        child.stdout.on('data', (chunk: Buffer) => {
          if (chunk.toString().includes('WRITTEN')) {
            clearTimeout(timer);
            resolve();
          }
        });
        child.on('exit', (code) => reject(new Error(`child exited early with ${code}`)));
      });
    } finally {
      if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
    }
    await new Promise((resolve) => child.once('exit', resolve));

    const marker = path.join(dir, 'store-state.json');
    const left = JSON.parse(fs.readFileSync(marker, 'utf8')) as { open: boolean; bootId: string | null };
    assert.equal(left.open, true, 'the killed process left the marker open');
    const bootIdKnown = left.bootId !== null;
    let store = LmdbDocumentStore.open(dir);
    try {
      if (bootIdKnown) {
        // Same boot: the kernel still has every page the killed process wrote.
        assert.equal(store.recovery, 'crash-trusted');
        assert.deepEqual(store.get('c', 'x')?.body, { n: 1 });
        assert.equal(store.getMeta('appliedIndex'), 1);
      } else {
        assert.equal(store.recovery, 'crash-discarded');
      }
    } finally {
      // Simulate the machine having crashed instead: close without marking clean, other boot id.
      await store.close();
    }
    fs.writeFileSync(marker, JSON.stringify({ open: true, bootId: 'another-boot', durability: 'rebuildable' }));
    store = LmdbDocumentStore.open(dir);
    try {
      assert.equal(store.recovery, 'crash-discarded');
      assert.equal(store.get('c', 'x'), null, 'a possibly torn environment is never read');
      assert.deepEqual(store.collectionNames(), []);
    } finally {
      await store.close();
    }
    // In fsync mode every commit was durable: an unclean shutdown from any boot is trusted.
    store = LmdbDocumentStore.open(dir, { durability: 'fsync' });
    store.put(doc('c', 'y'));
    await store.close();
    fs.writeFileSync(marker, JSON.stringify({ open: true, bootId: 'another-boot', durability: 'fsync' }));
    store = LmdbDocumentStore.open(dir);
    try {
      assert.equal(store.recovery, 'crash-trusted');
      assert.notEqual(store.get('c', 'y'), null);
    } finally {
      await store.close();
    }
  });
});

test('edge keys behave like the memory store: empty names, over-long keys', async () => {
  await withTempDir('docs-edges', async (dir) => {
    const lmdb = LmdbDocumentStore.open(dir);
    const memory = new MemoryDocumentStore();
    try {
      for (const store of [lmdb, memory] as ContractStore[]) {
        assert.equal(store.getMeta(''), undefined);
        assert.equal(store.deleteMeta(''), false);
        assert.equal(store.get('', ''), null);
        assert.equal(store.get('c', ''), null);
        assert.equal(store.delete('c', ''), false);
        assert.deepEqual(store.list({ collection: '', limit: 3 }), { documents: [], nextCursor: null });
        assert.deepEqual(store.transaction((tx) => [tx.getMeta(''), tx.deleteMeta(''), tx.delete('c', '')]), [undefined, false, false]);
        assert.equal(store.get('c', 'x'.repeat(5000)), null);
        assert.equal(store.getMeta('k'.repeat(5000)), undefined);
        assert.equal(store.delete('c', 'x'.repeat(5000)), false);
        assert.equal(store.deleteMeta('k'.repeat(5000)), false);
        store.put(doc('c', 'b'));
        store.put(doc('c', 'y'));
        store.putMeta('y', 1);
        const huge = 'x'.repeat(5000);
        assert.deepEqual(store.list({ collection: 'c', startAfter: huge, limit: 5 }).documents.map((d) => d.id), ['y']);
        assert.deepEqual(store.list({ collection: 'c', start: huge, limit: 5 }).documents.map((d) => d.id), ['y']);
        assert.deepEqual(store.listMeta({ startAfter: huge, limit: 5 }).map((e) => e.key), ['y']);
        assert.deepEqual(store.list({ collection: 'c', prefix: huge, limit: 5 }).documents, []);
      }
      // LMDB keys are limited to 1978 bytes; writing a longer one is refused with a clear message.
      assert.throws(() => lmdb.put(doc('c', 'x'.repeat(1000))), /key of 2\d{3} bytes \(UTF-16\) exceeds LMDB's 1978-byte limit/);
      assert.throws(() => lmdb.putMeta('k'.repeat(1000), 1), /exceeds LMDB's 1978-byte limit/);
      lmdb.put(doc('c'.repeat(64), 'x'.repeat(256))); // the largest validated names fit easily
    } finally {
      await lmdb.close();
    }
  });
});

test('snapshotAsync gives snapshot()\'s bytes for the state at the call, whatever is written while it runs, at any slice size', async () => {
  await withTempDir('docs-snap-async', async (dir) => {
    const lmdb = LmdbDocumentStore.open(dir);
    try {
      const empty = await lmdb.snapshotAsync();
      assert.deepEqual(Buffer.from(empty), Buffer.from(new MemoryDocumentStore().snapshot()), 'empty store');
      lmdb.transaction((tx) => {
        for (let i = 0; i < 50; i++) tx.put(doc(i % 3 === 0 ? 'a' : 'b', `d${String(i).padStart(3, '0')}`, { i, pad: 'x'.repeat(i * 40) }));
        for (let i = 0; i < 20; i++) tx.putMeta(`m${i}`, { i, big: 'y'.repeat(i * 500) });
        // What the copy-the-stored-text fast path must get right or leave to the slow path.
        tx.put(doc('edge', 'negzero', { zero: -0, list: [-0, -0.5, 1e21, -1e-7], text: '-0', nested: { z: -0 } }, 7));
        tx.put(doc('edge', 'text-only', { text: 'say -0, or -0] or -0}', num: -0.25 }));
        tx.put(doc('edge', 'proto', JSON.parse('{"__proto__": {"x": 1}, "2": "b", "1": "a", "é": "\u2028"}') as JsonObject));
        tx.put({ collection: 'edge', id: 'big-numbers', body: { n: Number.MAX_SAFE_INTEGER }, version: 123456789, index: 987654321, updatedAtMs: 1795686860361 });
        tx.putMeta('negzero', [-0, { a: -0 }]);
        tx.putMeta('text', 'a "-0" string, 1e-7');
      });
      const expected = Buffer.from(lmdb.snapshot());
      for (const [records, bytes] of [[1, 1 << 20], [3, 1 << 20], [7, 100], [2_000, 1], [2_000, 1 << 20]] as const) {
        const pending = lmdb.snapshotAsync(records, bytes);
        // Writes after the call, while the slices are produced, must not show in the result.
        lmdb.put(doc('a', 'd000', { changed: true }, 2));
        lmdb.put(doc('c', 'new', {}));
        lmdb.delete('b', 'd001');
        lmdb.putMeta('m0', 'changed');
        const got = Buffer.from(await pending);
        assert.ok(got.equals(expected), `slices of ${records} records / ${bytes} bytes give snapshot()'s bytes`);
        assert.equal(lmdb.restore(expected), null); // back to the state the snapshot describes
      }
      const memory = new MemoryDocumentStore();
      assert.equal(memory.restore(await lmdb.snapshotAsync(4)), null, 'the bytes restore into the reference store');
      assert.equal(memory.digest(), lmdb.digest());
    } finally {
      await lmdb.close();
    }
  });
});

test('batch: transactions inside share one commit, see each other, and a throw writes nothing of the batch', async () => {
  await withTempDir('docs-batch', async (dir) => {
    const lmdb = LmdbDocumentStore.open(dir);
    try {
      const results = lmdb.batch(() => [1, 2, 3].map((i) => lmdb.transaction((tx) => {
        const before = tx.get('c', 'counter');
        const next = (before === null ? 0 : (before.body['n'] as number)) + i;
        tx.put(doc('c', 'counter', { n: next }, before === null ? 1 : before.version + 1));
        tx.putMeta(`m${i}`, i);
        return next;
      })));
      assert.deepEqual(results, [1, 3, 6], 'each transaction saw the writes of the ones before it');
      assert.deepEqual(lmdb.get('c', 'counter')?.body, { n: 6 });
      assert.equal(lmdb.get('c', 'counter')?.version, 3);
      const digest = lmdb.digest();
      assert.throws(() => lmdb.batch(() => {
        lmdb.transaction((tx) => tx.put(doc('c', 'lost', {})));
        lmdb.transaction((tx) => tx.putMeta('m9', 9));
        throw new Error('boom');
      }), /boom/);
      assert.equal(lmdb.get('c', 'lost'), null, 'nothing of the failed batch was written');
      assert.equal(lmdb.getMeta('m9'), undefined);
      assert.equal(lmdb.digest(), digest);
      assert.throws(() => lmdb.batch(() => lmdb.batch(() => 1)), /batches do not nest/);
      // The store is usable afterwards, in and out of batches.
      lmdb.put(doc('c', 'after', {}));
      assert.equal(lmdb.batch(() => lmdb.transaction((tx) => tx.get('c', 'after')?.id)), 'after');
    } finally {
      await lmdb.close();
    }
  });
});
