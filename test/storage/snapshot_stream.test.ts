// Goal: a node's own snapshot streams from its store into its file without ever being whole in
// memory, and the file is the same one a whole-buffer write makes: readers cannot tell them apart.
// Method: crc32Combine against the CRC of the concatenation (property test); writeSnapshotFileFrom
// against writeSnapshotFile byte for byte, for many ways of cutting the body; the store's pieces
// bounded by the slice size; a failing producer leaves no file and does not poison the log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { bootstrapState } from '../../src/consensus/raft_core.ts';
import { LmdbLogStorage, SegmentLogStorage, LmdbDocumentStore, StorageIoError } from '../../src/storage/index.ts';
import { crc32, crc32Combine } from '../../src/storage/lmdb/codec.ts';
import { readSnapshotFile, writeSnapshotFile, writeSnapshotFileFrom } from '../../src/storage/lmdb/snapshot_file.ts';
import { doc } from './document_store_contract.ts';
import { bytes, entries, membership, persist, ready, withTempDir } from './helpers.ts';

test('crc32Combine(crc(A), crc(B), |B|) is crc(A ‖ B)', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 3000 }), (a, b) => {
    const whole = new Uint8Array(a.byteLength + b.byteLength);
    whole.set(a);
    whole.set(b, a.byteLength);
    assert.equal(crc32Combine(crc32(a), crc32(b), b.byteLength), crc32(whole));
  }), { numRuns: 300 });
  // A length past 2^32 exercises the halving beyond 32-bit arithmetic: it must not throw or loop.
  assert.equal(typeof crc32Combine(1, 2, 2 ** 33 + 5), 'number');
});

test('writeSnapshotFileFrom writes the very file writeSnapshotFile writes, however the body is cut', async () => {
  await withTempDir('snap-stream', async (dir) => {
    const body = new Uint8Array(50_000).map((_, i) => (i * 31 + 7) % 256);
    const reference = path.join(dir, 'reference');
    fs.mkdirSync(reference);
    writeSnapshotFile(reference, 12, 3, body);
    const expected = fs.readFileSync(path.join(reference, 'snapshot-12.bin'));
    for (const cuts of [[], [0], [1], [49_999], [4096, 8192, 8192, 30_000], [0, 0, 25_000, 25_000, 50_000]]) {
      const points = [0, ...cuts, body.byteLength];
      const length = await writeSnapshotFileFrom(dir, 12, 3, async (write) => {
        for (let i = 1; i < points.length; i += 1) await write(body.subarray(points[i - 1], points[i]));
      });
      assert.equal(length, body.byteLength);
      assert.ok(fs.readFileSync(path.join(dir, 'snapshot-12.bin')).equals(expected), `cut at ${cuts.join(',')}`);
      assert.deepEqual(readSnapshotFile(dir, 12, 3), body);
    }
    // An empty body, written in no pieces.
    assert.equal(await writeSnapshotFileFrom(dir, 13, 3, async () => undefined), 0);
    assert.deepEqual(readSnapshotFile(dir, 13, 3), new Uint8Array(0));
  });
});

test('a producer that fails leaves no file, its error unchanged; the log stays usable', async () => {
  await withTempDir('snap-stream-fail', async (dir) => {
    const boom = new Error('the store went away');
    await assert.rejects(writeSnapshotFileFrom(dir, 5, 1, async (write) => {
      await write(bytes('half a state'));
      throw boom;
    }), (error) => error === boom);
    assert.deepEqual(fs.readdirSync(dir), [], 'no snapshot file and no temp file');

    const storage = SegmentLogStorage.open(dir, { compactionTailEntries: 2 });
    try {
      storage.bootstrap(bootstrapState(membership), bytes('initial'));
      await persist(storage, ready({ entries: entries(1, 6, 1), hardState: { term: 1, vote: 'a', commit: 6 } }));
      const failed = await new Promise<{ error: Error | null; saved: boolean }>((resolve) => storage.saveSnapshotFrom(
        { index: 5, term: 1, membership },
        async (write) => {
          await write(bytes('part'));
          throw boom;
        },
        (error, saved) => resolve({ error, saved }),
      ));
      assert.equal(failed.error, boom);
      assert.equal(failed.saved, false);
      assert.equal(storage.stats().snapshotIndex, 0, 'nothing was saved');
      // Not a storage failure: persists and a later snapshot go on.
      await persist(storage, ready({ entries: entries(7, 8, 1), hardState: { term: 1, vote: 'a', commit: 8 } }));
      const saved = await new Promise<{ saved: boolean; length: number }>((resolve, reject) => storage.saveSnapshotFrom(
        { index: 7, term: 1, membership },
        async (write) => {
          await write(bytes('state '));
          await write(bytes('at 7'));
        },
        (error, ok, length) => (error !== null ? reject(error) : resolve({ saved: ok, length })),
      ));
      assert.deepEqual(saved, { saved: true, length: 10 });
      assert.deepEqual(storage.loadSnapshot()?.bytes, bytes('state at 7'));
      assert.ok(!(failed.error instanceof StorageIoError));
    } finally {
      await storage.close();
    }
  });
});

test('the document store hands its snapshot out in pieces of about the slice size, never whole', async () => {
  await withTempDir('snap-stream-docs', async (dir) => {
    const store = LmdbDocumentStore.open(dir);
    try {
      store.transaction((tx) => {
        for (let i = 0; i < 3000; i += 1) tx.put(doc('c', `d${String(i).padStart(5, '0')}`, { i, pad: 'p'.repeat(200) }));
      });
      const expected = Buffer.from(store.snapshot());
      const pieces: Buffer[] = [];
      await store.writeSnapshot(async (piece) => {
        pieces.push(Buffer.from(piece));
      }, 100, 16 * 1024);
      assert.ok(Buffer.concat(pieces).equals(expected), 'the pieces make snapshot()\'s bytes');
      assert.ok(pieces.length >= expected.byteLength / (32 * 1024), `${pieces.length} pieces for ${expected.byteLength} bytes`);
      const largest = Math.max(...pieces.map((piece) => piece.byteLength));
      // A piece is one slice: at most 100 records of ~300 bytes each, or 16 KiB and one record.
      assert.ok(largest <= 40 * 1024, `largest piece ${largest} bytes`);
    } finally {
      await store.close();
    }
  });
});

test('the producer starts within the call, so the state it pins is the state at the call; a file that cannot be opened releases it', async () => {
  await withTempDir('snap-stream-sync', async (dir) => {
    // Nothing may be awaited before the producer runs: an LMDB read transaction opened a few
    // applied entries later would not be the state the snapshot's index names.
    let started = false;
    const writing = writeSnapshotFileFrom(dir, 4, 1, async (write) => {
      started = true;
      await write(bytes('state at 4'));
    });
    assert.equal(started, true, 'writeSnapshotFileFrom called the producer synchronously');
    assert.equal(await writing, 10);

    for (const open of [
      (at: string) => SegmentLogStorage.open(at, { compactionTailEntries: 2 }),
      (at: string) => LmdbLogStorage.open(at, { compactionTailEntries: 2 }),
    ]) {
      const at = path.join(dir, `log-${open.length}-${fs.readdirSync(dir).length}`);
      const storage = open(at);
      try {
        storage.bootstrap(bootstrapState(membership), bytes('initial'));
        await persist(storage, ready({ entries: entries(1, 6, 1), hardState: { term: 1, vote: 'a', commit: 6 } }));
        let called = false;
        const saved = new Promise<boolean>((resolve, reject) => storage.saveSnapshotFrom(
          { index: 5, term: 1, membership },
          async (write) => {
            called = true;
            await write(bytes('state at 5'));
          },
          (error, ok) => (error !== null ? reject(error) : resolve(ok)),
        ));
        assert.equal(called, true, `${storage.constructor.name}.saveSnapshotFrom called the producer synchronously`);
        assert.equal(await saved, true);
        assert.equal(Buffer.from(storage.loadSnapshot()?.bytes ?? []).toString(), 'state at 5');
      } finally {
        await storage.close();
      }
    }

    // The directory is gone: the open fails, the producer's next write fails with it, and the
    // call settles only once the producer has (so it holds nothing afterwards).
    let producerSettled = false;
    await assert.rejects(writeSnapshotFileFrom(path.join(dir, 'missing'), 6, 1, async (write) => {
      try {
        await write(bytes('never written'));
      } finally {
        producerSettled = true;
      }
    }), (error) => error instanceof StorageIoError);
    assert.equal(producerSettled, true);
  });
});
