// The DocumentStore contract, as a suite any implementation can be run against. The cases are
// test/documents/store.test.ts's (which stays as it is, for MemoryDocumentStore alone), rewritten
// over a factory so MemoryDocumentStore and LmdbDocumentStore are held to the same expectations:
// key order, list bounds and cursors, frozen values, meta records, all-or-nothing transactions with
// read-your-writes, misuse as programmer errors, snapshot/restore/digest determinism.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MemoryDocumentStore, type DocumentError, type DocumentStore, type JsonObject, type ListQuery, type StoredDocument } from '../../src/documents/index.ts';
import { AssertionError } from '../../src/shared/assert.ts';

/** What the contract needs beyond DocumentStore: the whole-store operations both stores have. */
export interface ContractStore extends DocumentStore {
  collectionNames(): string[];
  snapshot(): Uint8Array;
  restore(bytes: Uint8Array): DocumentError | null;
  digest(): string;
}

export interface StoreFactory {
  /** A new, empty store; `dispose` closes it and removes whatever it left on disk. */
  create(): Promise<{ store: ContractStore; dispose: () => Promise<void> }>;
}

export function doc(collection: string, id: string, body: JsonObject = {}, version = 1): StoredDocument {
  return { collection, id, body, version, index: 1, updatedAtMs: 0 };
}

function ids(store: { list(query: ListQuery): { documents: StoredDocument[] } }, query: ListQuery): string[] {
  return store.list(query).documents.map((d) => d.id);
}

function fill(store: ContractStore): ContractStore {
  for (const id of ['b2', 'a1', 'b1', 'c', 'a2', 'b10', 'ab']) store.put(doc('things', id));
  store.put(doc('other', 'zzz'));
  return store;
}

export function documentStoreContract(name: string, factory: StoreFactory): void {
  /** Runs `body` with `count` fresh stores, disposed afterwards whatever happens. */
  async function withStores(count: number, body: (...stores: ContractStore[]) => void | Promise<void>): Promise<void> {
    const made: Array<{ store: ContractStore; dispose: () => Promise<void> }> = [];
    try {
      for (let i = 0; i < count; i += 1) made.push(await factory.create());
      await body(...made.map((m) => m.store));
    } finally {
      for (const m of made) await m.dispose();
    }
  }
  const withStore = (body: (store: ContractStore) => void | Promise<void>): Promise<void> => withStores(1, (store) => body(store as ContractStore));

  test(`${name}: get, put, delete`, () => withStore((store) => {
    assert.equal(store.get('c', 'x'), null);
    store.put(doc('c', 'x', { n: 1 }));
    assert.deepEqual(store.get('c', 'x')?.body, { n: 1 });
    store.put(doc('c', 'x', { n: 2 }, 2));
    assert.equal(store.get('c', 'x')?.version, 2);
    assert.equal(store.delete('c', 'x'), true);
    assert.equal(store.delete('c', 'x'), false);
    assert.equal(store.get('c', 'x'), null);
    assert.deepEqual(store.collectionNames(), []);
  }));

  test(`${name}: list: id order, limit and cursor`, () => withStore((store) => {
    fill(store);
    assert.deepEqual(ids(store, { collection: 'things', limit: 100 }), ['a1', 'a2', 'ab', 'b1', 'b10', 'b2', 'c']);
    const first = store.list({ collection: 'things', limit: 3 });
    assert.deepEqual(first.documents.map((d) => d.id), ['a1', 'a2', 'ab']);
    assert.equal(first.nextCursor, 'ab');
    const second = store.list({ collection: 'things', limit: 3, startAfter: 'ab' });
    assert.deepEqual(second.documents.map((d) => d.id), ['b1', 'b10', 'b2']);
    assert.equal(second.nextCursor, 'b2');
    const third = store.list({ collection: 'things', limit: 3, startAfter: 'b2' });
    assert.deepEqual(third.documents.map((d) => d.id), ['c']);
    assert.equal(third.nextCursor, null);
    assert.equal(store.list({ collection: 'things', limit: 1, startAfter: 'b2' }).nextCursor, null);
    assert.deepEqual(ids(store, { collection: 'nothing', limit: 5 }), []);
    assert.deepEqual(store.collectionNames(), ['other', 'things']);
  }));

  test(`${name}: list: prefix and range bounds combine`, () => withStore((store) => {
    fill(store);
    assert.deepEqual(ids(store, { collection: 'things', prefix: 'b', limit: 10 }), ['b1', 'b10', 'b2']);
    assert.deepEqual(ids(store, { collection: 'things', prefix: 'b1', limit: 10 }), ['b1', 'b10']);
    assert.deepEqual(ids(store, { collection: 'things', prefix: 'b', startAfter: 'b1', limit: 10 }), ['b10', 'b2']);
    assert.deepEqual(ids(store, { collection: 'things', start: 'a2', end: 'b10', limit: 10 }), ['a2', 'ab', 'b1']);
    assert.deepEqual(ids(store, { collection: 'things', start: 'a2', startAfter: 'ab', limit: 10 }), ['b1', 'b10', 'b2', 'c']);
    assert.deepEqual(ids(store, { collection: 'things', prefix: 'a', end: 'ab', limit: 10 }), ['a1', 'a2']);
    assert.deepEqual(ids(store, { collection: 'things', prefix: 'x', limit: 10 }), []);
  }));

  test(`${name}: returned documents are frozen and put copies its input`, () => withStore((store) => {
    const body = { nested: { n: 1 } };
    store.put(doc('c', 'x', body));
    body.nested.n = 2;
    const stored = store.get('c', 'x');
    assert.ok(stored !== null);
    assert.deepEqual(stored.body, { nested: { n: 1 } });
    assert.ok(Object.isFrozen(stored) && Object.isFrozen(stored.body) && Object.isFrozen(stored.body['nested']));
    assert.throws(() => {
      (stored.body as Record<string, unknown>)['n'] = 1;
    }, TypeError);
  }));

  test(`${name}: meta records: get, put, delete, ordered listing; null is a value`, () => withStore((store) => {
    store.putMeta('b', 2);
    store.putMeta('a/2', { x: 1 });
    store.putMeta('a/1', null);
    assert.equal(store.getMeta('a/1'), null);
    assert.equal(store.getMeta('missing'), undefined);
    assert.deepEqual(store.listMeta({ prefix: 'a/', limit: 10 }).map((e) => e.key), ['a/1', 'a/2']);
    assert.deepEqual(store.listMeta({ startAfter: 'a/1', limit: 10 }).map((e) => e.key), ['a/2', 'b']);
    assert.deepEqual(store.listMeta({ limit: 2 }).map((e) => e.key), ['a/1', 'a/2']);
    for (const query of [{ prefix: 'a/', limit: 10 }, { startAfter: 'a/1', limit: 10 }, { limit: 2 }, { prefix: 'zz', limit: 3 }]) {
      assert.deepEqual(store.listMetaKeys(query), store.listMeta(query).map((e) => e.key));
    }
    assert.ok(Object.isFrozen(store.getMeta('a/2')));
    assert.equal(store.deleteMeta('b'), true);
    assert.equal(store.deleteMeta('b'), false);
  }));

  test(`${name}: transaction: reads see own writes, commit applies all at the end`, () => withStore((store) => {
    fill(store);
    const result = store.transaction((tx) => {
      tx.put(doc('things', 'a3'));
      assert.equal(tx.delete('things', 'a1'), true);
      assert.equal(tx.delete('things', 'a1'), false);
      tx.putMeta('k', 1);
      assert.equal(tx.get('things', 'a1'), null);
      assert.notEqual(tx.get('things', 'a3'), null);
      assert.equal(tx.getMeta('k'), 1);
      assert.deepEqual(tx.listMeta({ limit: 5 }).map((e) => e.key), ['k']);
      assert.deepEqual(tx.listMetaKeys({ limit: 5 }), ['k']);
      assert.deepEqual(tx.list({ collection: 'things', prefix: 'a', limit: 10 }).documents.map((d) => d.id), ['a2', 'a3', 'ab']);
      // Direct reads on the store during the transaction see the committed state only.
      assert.notEqual(store.get('things', 'a1'), null);
      assert.equal(store.get('things', 'a3'), null);
      assert.deepEqual(ids(store, { collection: 'things', prefix: 'a', limit: 10 }), ['a1', 'a2', 'ab']);
      assert.equal(store.getMeta('k'), undefined);
      return 'done';
    });
    assert.equal(result, 'done');
    assert.deepEqual(ids(store, { collection: 'things', prefix: 'a', limit: 10 }), ['a2', 'a3', 'ab']);
    assert.equal(store.getMeta('k'), 1);
  }));

  test(`${name}: transaction: a throw applies nothing`, () => withStore((store) => {
    fill(store);
    store.putMeta('keep', 'me');
    const before = store.digest();
    assert.throws(
      () => store.transaction((tx) => {
        tx.put(doc('things', 'new'));
        tx.delete('things', 'c');
        tx.putMeta('k', 1);
        tx.deleteMeta('keep');
        throw new Error('abort');
      }),
      /abort/,
    );
    assert.equal(store.digest(), before);
    assert.equal(store.get('things', 'new'), null);
    assert.equal(store.getMeta('keep'), 'me');
  }));

  test(`${name}: transaction misuse is a programmer error`, () => withStore((store) => {
    assert.throws(() => store.transaction(() => store.transaction(() => 1)), AssertionError);
    assert.throws(() => store.transaction(() => store.put(doc('c', 'x'))), AssertionError);
    let leaked: { get(c: string, i: string): unknown } | null = null;
    store.transaction((tx) => {
      leaked = tx;
    });
    assert.throws(() => leaked?.get('c', 'x'), AssertionError);
    assert.throws(() => store.transaction((tx) => {
      tx.put(doc('c', 'y'));
      return Promise.resolve(1);
    }), AssertionError);
    assert.equal(store.get('c', 'y'), null, 'an async callback applies nothing');
    assert.throws(() => store.put({ ...doc('c', 'x'), version: 0 }), AssertionError);
    assert.throws(() => store.put({ ...doc('c', 'x'), id: 'a/b' }), AssertionError);
    assert.throws(() => store.putMeta('', 1), AssertionError);
    assert.throws(() => store.list({ collection: 'c', limit: 0 }), AssertionError);
    // The store still works after all of that.
    store.put(doc('c', 'x'));
    assert.notEqual(store.get('c', 'x'), null);
  }));

  test(`${name}: snapshot → restore round trip gives equal content and digest`, () => withStores(2, (store, copy) => {
    assert.ok(store !== undefined && copy !== undefined);
    fill(store);
    store.put(doc('other', 'k', { z: 1, a: [1, { b: 'é😀' }] }, 7));
    store.putMeta('appliedIndex', { index: 9, term: 2 });
    const bytes = store.snapshot();
    copy.put(doc('junk', 'gone'));
    assert.equal(copy.restore(bytes), null);
    assert.equal(copy.digest(), store.digest());
    assert.deepEqual(copy.snapshot(), bytes);
    assert.deepEqual(copy.get('other', 'k'), store.get('other', 'k'));
    assert.deepEqual(Object.keys(copy.get('other', 'k')?.body ?? {}), ['z', 'a']);
    assert.equal(copy.get('junk', 'gone'), null);
    assert.deepEqual(copy.getMeta('appliedIndex'), { index: 9, term: 2 });
    // Restoring an empty store's snapshot empties it.
    assert.equal(copy.restore(new MemoryDocumentStore().snapshot()), null);
    assert.deepEqual(copy.collectionNames(), []);
    assert.equal(copy.digest(), new MemoryDocumentStore().digest());
  }));

  test(`${name}: digest: depends on content only, not member order or history`, () => withStores(2, (a, b) => {
    assert.ok(a !== undefined && b !== undefined);
    a.put(doc('c', 'x', { p: 1, q: 2 }));
    b.put(doc('d', 'temp'));
    b.put(doc('c', 'x', { q: 2, p: 1 }));
    b.delete('d', 'temp');
    assert.equal(a.digest(), b.digest());
    assert.match(a.digest(), /^[0-9a-f]{16}$/);
    b.putMeta('m', 1);
    assert.notEqual(a.digest(), b.digest());
    assert.notEqual(new MemoryDocumentStore().digest(), a.digest());
  }));

  test(`${name}: restore refuses malformed snapshots and leaves the store untouched`, () => withStore((store) => {
    fill(store);
    const before = store.digest();
    const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
    const valid = JSON.parse(new TextDecoder().decode(fill(store).snapshot())) as { documents: unknown[]; meta: unknown[] };
    const bad: Uint8Array[] = [
      new Uint8Array([0xff, 0xfe]),
      encode('nope'),
      encode({ ...valid, format: 'other' }),
      encode({ ...valid, documents: [...valid.documents].reverse() }),
      encode({ ...valid, documents: [{ collection: 'c', id: 'x', body: [], version: 1, index: 1, updatedAtMs: 0 }] }),
      encode({ ...valid, documents: [{ collection: 'c', id: 'x', body: {}, version: 0, index: 1, updatedAtMs: 0 }] }),
      encode({ ...valid, meta: [['b', 1], ['a', 1]] }),
    ];
    for (const bytes of bad) {
      assert.equal(store.restore(bytes)?.code, 'INVALID_SNAPSHOT');
      assert.equal(store.digest(), before);
    }
  }));

  test(`${name}: property: list (committed and inside a transaction) matches a naive model`, () => withStore((store) => {
    const empty = new MemoryDocumentStore().snapshot();
    const idArb = fc.stringMatching(/^[ab.]{1,3}$/);
    const boundArb = fc.option(fc.stringMatching(/^[ab.]{0,3}$/), { nil: undefined });
    fc.assert(
      fc.property(
        fc.uniqueArray(idArb),
        fc.array(fc.tuple(fc.boolean(), idArb)),
        fc.record({ prefix: boundArb, startAfter: boundArb, start: boundArb, end: boundArb, limit: fc.integer({ min: 1, max: 6 }) }),
        (committed, staged, bounds) => {
          assert.equal(store.restore(empty), null); // one store for every run: reset it
          for (const id of committed) store.put(doc('c', id));
          store.put(doc('b', 'x')); // neighbouring collections must not leak into the scan
          store.put(doc('d', 'a'));
          const model = new Set(committed);
          const query: ListQuery = { collection: 'c', ...bounds };
          const expected = (set: Set<string>) => {
            const all = [...set]
              .filter((id) => bounds.prefix === undefined || id.startsWith(bounds.prefix))
              .filter((id) => bounds.start === undefined || id >= bounds.start)
              .filter((id) => bounds.startAfter === undefined || id > bounds.startAfter)
              .filter((id) => bounds.end === undefined || id < bounds.end)
              .sort();
            const page = all.slice(0, bounds.limit);
            return { ids: page, nextCursor: all.length > bounds.limit ? (page[page.length - 1] ?? null) : null };
          };
          const actual = (page: { documents: StoredDocument[]; nextCursor: string | null }) => ({ ids: page.documents.map((d) => d.id), nextCursor: page.nextCursor });
          assert.deepEqual(actual(store.list(query)), expected(model));
          store.transaction((tx) => {
            for (const [isPut, id] of staged) {
              if (isPut) {
                tx.put(doc('c', id));
                model.add(id);
              } else {
                tx.delete('c', id);
                model.delete(id);
              }
            }
            assert.deepEqual(actual(tx.list(query)), expected(model));
          });
          assert.deepEqual(actual(store.list(query)), expected(model));
        },
      ),
      { numRuns: 150 },
    );
  }));
}
