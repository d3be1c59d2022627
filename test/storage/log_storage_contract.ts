// The ReplicaStorage contract of a durable Raft log storage, as a suite any implementation can be
// run against (log_storage.test.ts runs it for LmdbLogStorage and SegmentLogStorage): every part of
// a Ready is persisted exactly like the simulator's SimDisk (the reference model): entries with
// truncation at entries[0].index, hard state, snapshot install that keeps or drops the suffix,
// staged chunks, saveSnapshot compaction; survives close/reopen; keeps persists in call order;
// reports disk errors through done and then refuses further work.
// Method: worked examples against SimDisk, then a fast-check property driving both with random
// Ready sequences (including reopen) and comparing load() and loadSnapshot() after every step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { bootstrapState, type PersistentState } from '../../src/consensus/raft_core.ts';
import type { Entry, SnapshotMeta } from '../../src/consensus/types.ts';
import type { ReplicaStorage } from '../../src/replica/replica.ts';
import { StorageIoError, type LogStorageStats } from '../../src/storage/index.ts';
import { AssertionError } from '../../src/shared/assert.ts';
import type { SimDisk } from '../../src/sim/sim_disk.ts';
import {
  bytes, chunksOf, entries, entry, membership, persist, persistReference, ready, referenceDisk, withTempDir,
} from './helpers.ts';

export interface ContractOptions {
  readonly compactionTailEntries?: number;
}

/** What the contract needs beyond ReplicaStorage: the surface both log storages share. */
export interface ContractLogStorage extends ReplicaStorage {
  readonly dir: string;
  load(): PersistentState | null;
  bootstrap(state: PersistentState, snapshotBytes: Uint8Array): void;
  saveSnapshotAsync(meta: SnapshotMeta, bytes: Uint8Array, done: (error: Error | null, saved: boolean) => void): void;
  stats(): LogStorageStats;
  close(): Promise<void>;
}

export interface LogStorageFactory {
  open(dir: string, options?: ContractOptions): ContractLogStorage;
}

export function logStorageContract(name: string, factory: LogStorageFactory): void {
  const initialBytes = bytes('initial state');

  async function reopen(storage: ContractLogStorage, options: ContractOptions = {}): Promise<ContractLogStorage> {
    await storage.close();
    return factory.open(storage.dir, options);
  }

  function bootstrapped(dir: string): ContractLogStorage {
    const storage = factory.open(dir);
    storage.bootstrap(bootstrapState(membership), initialBytes);
    return storage;
  }

  /** Persists `r` on both and checks they agree. */
  async function both(storage: ContractLogStorage, disk: SimDisk, r: ReturnType<typeof ready>): Promise<void> {
    persistReference(disk, r);
    await persist(storage, r);
    assertSame(storage, disk);
  }

  function assertSame(storage: ContractLogStorage, disk: SimDisk): void {
    assert.deepEqual(storage.load(), disk.persistentState());
    const snapshot = storage.loadSnapshot();
    assert.ok(snapshot !== null);
    assert.deepEqual(snapshot.meta, disk.image.snapshot.meta);
    assert.deepEqual(Buffer.from(snapshot.bytes), Buffer.from(disk.image.snapshot.bytes));
  }

  test(`${name}: a fresh directory loads as null; bootstrap then load and reopen give the bootstrap state`, async () => {
    await withTempDir('log', async (dir) => {
      let storage = factory.open(dir);
      try {
        assert.equal(storage.load(), null);
        assert.equal(storage.loadSnapshot(), null);
        assert.equal(storage.readSnapshotChunk(0, 0, 10), null);
        const state: PersistentState = {
          hardState: { term: 3, vote: 'b', commit: 2 },
          snapshot: { index: 0, term: 0, membership },
          entries: [entry(1, 1), { ...entry(2, 3), kind: 'membership', membership: { voters: ['a', 'b'], learners: ['c'] } }, { index: 3, term: 3, kind: 'noop', data: new Uint8Array(0) }],
        };
        storage.bootstrap(state, initialBytes);
        assert.deepEqual(storage.load(), state);
        storage = await reopen(storage);
        assert.deepEqual(storage.load(), state);
        assert.deepEqual(storage.loadSnapshot(), { meta: state.snapshot, bytes: initialBytes });
        assert.throws(() => storage.bootstrap(state, initialBytes), AssertionError);
      } finally {
        await storage.close();
      }
    });
  });

  test(`${name}: entries and hard state round-trip, with truncation at entries[0].index, and survive reopen`, async () => {
    await withTempDir('log', async (dir) => {
      let storage = bootstrapped(dir);
      const disk = referenceDisk(bootstrapState(membership), initialBytes);
      try {
        await both(storage, disk, ready({ entries: entries(1, 5, 1), hardState: { term: 1, vote: 'a', commit: 0 } }));
        // A new leader overwrites 3..5 with 3..4 of term 2: the old 5 must go too.
        await both(storage, disk, ready({ entries: entries(3, 4, 2), hardState: { term: 2, vote: null, commit: 2 } }));
        assert.deepEqual(storage.load()?.entries.map((e) => [e.index, e.term]), [[1, 1], [2, 1], [3, 2], [4, 2]]);
        // Appending right after the last entry, and a hard-state-only Ready.
        await both(storage, disk, ready({ entries: entries(5, 6, 2) }));
        await both(storage, disk, ready({ hardState: { term: 2, vote: null, commit: 6 } }));
        // Large indexes and terms keep their order and value (8-byte big-endian keys).
        storage = await reopen(storage);
        assertSame(storage, disk);
        // Truncating at the first entry replaces the whole log.
        await both(storage, disk, ready({ entries: entries(1, 2, 7) }));
        assert.deepEqual(storage.load()?.entries.map((e) => e.term), [7, 7]);
      } finally {
        await storage.close();
      }
    });
  });

  test(`${name}: indexes beyond 2^32 keep their numeric order`, async () => {
    await withTempDir('log', async (dir) => {
      const storage = factory.open(dir);
      try {
        const base = 2 ** 40 - 2;
        const state: PersistentState = { hardState: { term: 2 ** 35, vote: null, commit: base }, snapshot: { index: base, term: 9, membership }, entries: [] };
        storage.bootstrap(state, initialBytes);
        await persist(storage, ready({ entries: [entry(base + 1, 9), entry(base + 2, 9), entry(base + 3, 2 ** 35)] }));
        assert.deepEqual(storage.load()?.entries.map((e) => e.index), [base + 1, base + 2, base + 3]);
        assert.equal(storage.load()?.entries[2]?.term, 2 ** 35);
      } finally {
        await storage.close();
      }
    });
  });

  test(`${name}: snapshot install keeps the suffix when the entry at its index has its term, else drops it`, async () => {
    await withTempDir('log', async (dir) => {
      const storage = bootstrapped(dir);
      const disk = referenceDisk(bootstrapState(membership), initialBytes);
      try {
        await both(storage, disk, ready({ entries: entries(1, 10, 1) }));
        const keep: SnapshotMeta = { index: 5, term: 1, membership };
        const keepBytes = bytes('state at 5 '.repeat(50));
        await both(storage, disk, ready({ snapshotChunks: chunksOf(keep, keepBytes, 64), snapshot: keep }));
        assert.deepEqual(storage.load()?.entries.map((e) => e.index), [6, 7, 8, 9, 10]);
        assert.equal(fs.existsSync(path.join(dir, 'snapshot-5.bin')), true);
        assert.equal(fs.existsSync(path.join(dir, 'snapshot-0.bin')), false, 'the previous snapshot file is deleted');

        // Term mismatch at the snapshot index: the whole log goes.
        const drop: SnapshotMeta = { index: 8, term: 2, membership };
        await both(storage, disk, ready({ snapshotChunks: chunksOf(drop, bytes('state at 8'), 4), snapshot: drop }));
        assert.deepEqual(storage.load()?.entries, []);

        // An install beyond the end of the log, followed in the same Ready by entries and hard state.
        await both(storage, disk, ready({ entries: entries(9, 9, 2) }));
        const beyond: SnapshotMeta = { index: 20, term: 3, membership: { voters: ['a', 'b'], learners: ['c'] } };
        await both(storage, disk, ready({
          snapshotChunks: chunksOf(beyond, bytes('state at 20'), 100),
          snapshot: beyond,
          entries: entries(21, 22, 3),
          hardState: { term: 3, vote: 'c', commit: 20 },
        }));
        assert.deepEqual(storage.load()?.entries.map((e) => e.index), [21, 22]);
        assert.deepEqual(storage.readSnapshotChunk(20, 0, 5), { data: bytes('state'), done: false });
        assert.deepEqual(storage.readSnapshotChunk(20, 5, 100), { data: bytes(' at 20'), done: true });
        assert.equal(storage.readSnapshotChunk(8, 0, 5), null, 'an older snapshot is not served');
        assert.equal(storage.readSnapshotChunk(20, 12, 5), null, 'an offset past the end is refused');
      } finally {
        await storage.close();
      }
    });
  });

  test(`${name}: staged chunks: spread over Readies, a gap is ignored, offset 0 or another snapshot restarts`, async () => {
    await withTempDir('log', async (dir) => {
      let storage = bootstrapped(dir);
      const disk = referenceDisk(bootstrapState(membership), initialBytes);
      try {
        await both(storage, disk, ready({ entries: entries(1, 3, 1) }));
        const meta: SnapshotMeta = { index: 3, term: 1, membership };
        const content = bytes('0123456789abcdefghij');
        const [c0, c1, c2, c3, c4] = chunksOf(meta, content, 4);
        assert.ok(c0 && c1 && c2 && c3 && c4);
        await both(storage, disk, ready({ snapshotChunks: [c0, c1] }));
        await both(storage, disk, ready({ snapshotChunks: [c3] })); // gap: ignored
        storage = await reopen(storage); // staged chunks are durable
        await both(storage, disk, ready({ snapshotChunks: [c2, c3] }));
        // Another snapshot's chunk restarts staging; then the first one is restarted from offset 0.
        const other: SnapshotMeta = { index: 2, term: 1, membership };
        await both(storage, disk, ready({ snapshotChunks: chunksOf(other, bytes('zz'), 1) }));
        await both(storage, disk, ready({ snapshotChunks: [c0, c1, c2, c3] }));
        await both(storage, disk, ready({ snapshotChunks: [c4], snapshot: meta }));
        assert.deepEqual(Buffer.from(storage.loadSnapshot()?.bytes ?? []), Buffer.from(content));
      } finally {
        await storage.close();
      }
    });
  });

  test(`${name}: saveSnapshot stores the file durably and compacts the log keeping a tail, like SimDisk`, async () => {
    await withTempDir('log', async (dir) => {
      let storage = bootstrapped(dir);
      const disk = referenceDisk(bootstrapState(membership), initialBytes);
      try {
        await both(storage, disk, ready({ entries: entries(1, 100, 1), hardState: { term: 1, vote: 'a', commit: 100 } }));
        const meta: SnapshotMeta = { index: 90, term: 1, membership };
        storage.saveSnapshot(meta, bytes('state at 90'));
        disk.saveSnapshot(meta, bytes('state at 90'));
        assertSame(storage, disk);
        assert.equal(storage.load()?.entries[0]?.index, 27);
        assert.deepEqual(fs.readdirSync(dir).filter((name) => name.startsWith('snapshot-')), ['snapshot-90.bin']);
        storage = await reopen(storage);
        assertSame(storage, disk);
        assert.throws(() => storage.saveSnapshot({ index: 90, term: 1, membership }, bytes('again')), AssertionError);
        const stats = storage.stats();
        assert.equal(stats.logEntries, 74);
        assert.equal(stats.firstIndex, 27);
        assert.equal(stats.lastIndex, 100);
        assert.equal(stats.snapshotIndex, 90);
        assert.ok(stats.logBytesUsed > 0);
      } finally {
        await storage.close();
      }
    });
  });

  test(`${name}: persists complete in call order, even when issued back to back`, async () => {
    await withTempDir('log', async (dir) => {
      const storage = bootstrapped(dir);
      try {
        const order: number[] = [];
        const all: Promise<void>[] = [];
        let next = 1;
        for (let i = 1; i <= 20; i += 1) {
          const r = i % 5 === 0 ? ready({ mustSync: false }) : ready({ entries: [entry(next, 1)], hardState: { term: 1, vote: null, commit: next - 1 } });
          if (i % 5 !== 0) next += 1;
          all.push(new Promise((resolve, reject) => {
            storage.persist(r, (error) => {
              order.push(i);
              if (error === null) resolve();
              else reject(error);
            });
          }));
        }
        await Promise.all(all);
        assert.deepEqual(order, Array.from({ length: 20 }, (_, i) => i + 1));
        assert.deepEqual(storage.load()?.entries.map((e) => e.index), Array.from({ length: 16 }, (_, i) => i + 1));
        const stats = storage.stats();
        assert.equal(stats.persists, 20);
        assert.ok(stats.fsyncs >= 16, 'every Ready with durable parts was committed with a sync');
        assert.ok(stats.lastFsyncMs > 0);
      } finally {
        await storage.close();
      }
    });
  });

  test(`${name}: a failing persist reports a clear error through done, writes nothing, and fails later persists`, async () => {
    await withTempDir('log', async (dir) => {
      let storage = bootstrapped(dir);
      try {
        await persist(storage, ready({ entries: entries(1, 3, 1) }));
        // Make the snapshot file impossible to write: its temp path is a directory.
        fs.mkdirSync(path.join(dir, 'snapshot-3.bin.tmp', 'x'), { recursive: true });
        const meta: SnapshotMeta = { index: 3, term: 1, membership };
        const error = await persist(storage, ready({ snapshotChunks: chunksOf(meta, bytes('s'), 8), snapshot: meta, entries: entries(4, 4, 1) })).then(() => null, (e: unknown) => e);
        assert.ok(error instanceof StorageIoError, `got ${String(error)}`);
        assert.match(error.message, /snapshot-3\.bin/);
        assert.equal(error.code, 'EISDIR');
        const later = await persist(storage, ready({ entries: entries(4, 4, 1) })).then(() => null, (e: unknown) => e);
        assert.equal(later, error, 'after a failure every persist fails with it');
        fs.rmSync(path.join(dir, 'snapshot-3.bin.tmp'), { recursive: true });
        storage = await reopen(storage);
        // The failed Ready was one transaction: nothing of it, staged chunks included, is on disk.
        assert.deepEqual(storage.load()?.entries.map((e) => e.index), [1, 2, 3]);
        assert.equal(storage.loadSnapshot()?.meta.index, 0);
      } finally {
        await storage.close();
      }
    });
  });

  test(`${name}: persist after close fails through done; close waits for persists in flight`, async () => {
    await withTempDir('log', async (dir) => {
      const storage = bootstrapped(dir);
      let firstDone = false;
      storage.persist(ready({ entries: entries(1, 1, 1) }), (error) => {
        assert.equal(error, null);
        firstDone = true;
      });
      await storage.close();
      assert.equal(firstDone, true);
      const error = await persist(storage, ready({ entries: entries(2, 2, 1) })).then(() => null, (e: unknown) => e);
      assert.ok(error instanceof StorageIoError);
      assert.match(error.message, /closed/);
    });
  });

  // --- property: random Ready sequences against SimDisk -------------------------------------------

  type Op =
    | { type: 'append'; at: number; count: number; bump: boolean }
    | { type: 'hardState'; vote: boolean; commit: number }
    | { type: 'install'; at: number; matchTerm: boolean; size: number; chunk: number; split: boolean }
    | { type: 'save'; at: number }
    | { type: 'empty' }
    | { type: 'reopen' };

  const opArb: fc.Arbitrary<Op> = fc.oneof(
    { weight: 5, arbitrary: fc.record({ type: fc.constant('append' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 4 }), bump: fc.boolean() }) },
    { weight: 2, arbitrary: fc.record({ type: fc.constant('hardState' as const), vote: fc.boolean(), commit: fc.nat() }) },
    { weight: 2, arbitrary: fc.record({ type: fc.constant('install' as const), at: fc.nat(), matchTerm: fc.boolean(), size: fc.integer({ min: 0, max: 40 }), chunk: fc.integer({ min: 1, max: 16 }), split: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ type: fc.constant('save' as const), at: fc.nat() }) },
    { weight: 1, arbitrary: fc.record({ type: fc.constant('empty' as const) }) },
    { weight: 1, arbitrary: fc.record({ type: fc.constant('reopen' as const) }) },
  );

  function termAt(disk: SimDisk, index: number): number | undefined {
    if (index === disk.image.snapshot.meta.index) return disk.image.snapshot.meta.term;
    return disk.image.entries.find((e) => e.index === index)?.term;
  }

  test(`${name}: property: any Ready sequence leaves the storage in the same state as SimDisk`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 14 }), async (ops) => {
        await withTempDir('log-prop', async (dir) => {
          let storage = factory.open(dir, { compactionTailEntries: 2 });
          const disk = referenceDisk(bootstrapState(membership), initialBytes);
          // SimDisk's saveSnapshot keeps 64 entries; mirror a tail of 2 by compacting it the same way.
          const saveReference = (meta: SnapshotMeta, data: Uint8Array): void => {
            disk.image.snapshot = { meta, bytes: data };
            disk.image.entries = disk.image.entries.filter((e) => e.index > meta.index - 2);
          };
          storage.bootstrap(bootstrapState(membership), initialBytes);
          let term = 1;
          try {
            for (const op of ops) {
              const log = disk.image.entries;
              const snapshotIndex = disk.image.snapshot.meta.index;
              const last = log.at(-1)?.index ?? snapshotIndex;
              switch (op.type) {
                case 'append': {
                  const low = log[0]?.index ?? snapshotIndex + 1;
                  const first = low + (op.at % (last + 1 - low + 1));
                  if (op.bump) term += 1;
                  const appended: Entry[] = entries(first, first + op.count - 1, term);
                  await both(storage, disk, ready({ entries: appended }));
                  break;
                }
                case 'hardState':
                  await both(storage, disk, ready({ hardState: { term, vote: op.vote ? 'b' : null, commit: op.commit % (last + 1) } }));
                  break;
                case 'install': {
                  const index = snapshotIndex + 1 + (op.at % (last - snapshotIndex + 3));
                  const metaTerm = op.matchTerm ? (termAt(disk, index) ?? term) : term + 100;
                  const meta: SnapshotMeta = { index, term: metaTerm, membership };
                  const content = new Uint8Array(op.size).map((_, i) => (i * 7 + index) & 0xff);
                  const chunks = chunksOf(meta, content, op.chunk);
                  if (op.split && chunks.length > 1) {
                    await both(storage, disk, ready({ snapshotChunks: chunks.slice(0, 1) }));
                    await both(storage, disk, ready({ snapshotChunks: chunks.slice(1), snapshot: meta }));
                  } else {
                    await both(storage, disk, ready({ snapshotChunks: chunks, snapshot: meta }));
                  }
                  break;
                }
                case 'save': {
                  if (last <= snapshotIndex) break;
                  const index = snapshotIndex + 1 + (op.at % (last - snapshotIndex));
                  const meta: SnapshotMeta = { index, term: termAt(disk, index) ?? term, membership };
                  const content = bytes(`saved ${index}`);
                  storage.saveSnapshot(meta, content);
                  saveReference(meta, content);
                  assertSame(storage, disk);
                  break;
                }
                case 'empty':
                  await both(storage, disk, ready({ mustSync: false }));
                  break;
                case 'reopen':
                  storage = await reopen(storage, { compactionTailEntries: 2 });
                  assertSame(storage, disk);
                  break;
              }
            }
          } finally {
            await storage.close();
          }
        });
      }),
      { numRuns: 40 },
    );
  });

  test(`${name}: saveSnapshotAsync: file written off the event loop, metadata committed in order with persists, compaction like saveSnapshot`, async () => {
    await withTempDir('log-snap-async', async (dir) => {
      let storage = bootstrapped(dir);
      const disk = referenceDisk(bootstrapState(membership), initialBytes);
      try {
        await both(storage, disk, ready({ entries: entries(1, 100, 1), hardState: { term: 1, vote: 'a', commit: 100 } }));
        const meta: SnapshotMeta = { index: 90, term: 1, membership };
        const order: string[] = [];
        const saved = new Promise<boolean>((resolve, reject) => storage.saveSnapshotAsync(meta, bytes('state at 90'), (error, ok) => {
          order.push('snapshot');
          if (error !== null) reject(error);
          else resolve(ok);
        }));
        // A persist issued while the file is being written completes in the queue's order.
        const next = ready({ entries: entries(101, 110, 1), hardState: { term: 1, vote: 'a', commit: 105 } });
        const persisted = new Promise<void>((resolve, reject) => storage.persist(next, (error) => {
          order.push('persist');
          if (error !== null) reject(error);
          else resolve();
        }));
        assert.equal(await saved, true);
        await persisted;
        assert.deepEqual(order, ['persist', 'snapshot'], 'the persist queued first completes first');
        persistReference(disk, next);
        disk.saveSnapshot(meta, bytes('state at 90'));
        assertSame(storage, disk);
        assert.deepEqual(fs.readdirSync(dir).filter((name) => name.startsWith('snapshot-')), ['snapshot-90.bin']);
        storage = await reopen(storage);
        assertSame(storage, disk);
        // An older snapshot than the durable one is not saved, and its file does not stay behind.
        const stale = await new Promise<boolean>((resolve, reject) => storage.saveSnapshotAsync({ index: 80, term: 1, membership }, bytes('old'), (error, ok) => (error !== null ? reject(error) : resolve(ok))));
        assert.equal(stale, false);
        assert.deepEqual(fs.readdirSync(dir).filter((name) => name.startsWith('snapshot-')), ['snapshot-90.bin']);
        assertSame(storage, disk);
      } finally {
        await storage.close();
      }
    });
  });
}
