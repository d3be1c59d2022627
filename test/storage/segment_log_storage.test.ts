// Goal: what SegmentLogStorage adds beyond the shared contract (log_storage_contract.ts):
//   1. segments rotate at segmentBytes, each new one starting with a CHECKPOINT; whole old
//      segments are deleted once no entry in them is still in the log (after own snapshots and
//      installs), and a restart from the remaining segments gives the same state;
//   2. a long seeded random history of Readies (appends with truncation, hard states, installs that
//      keep or drop the log, own snapshots sync and async, empty Readies), with restarts, torn
//      tails and interrupted rotations injected between steps, always leaves load() and
//      loadSnapshot() equal to the reference SimDisk fed the same Readies;
//   3. a Ready costs exactly one fs.write and one fdatasync of the segment (two syncs when it
//      starts a new segment: the file and its directory), a Ready with nothing durable none, and
//      stats().fsyncs counts them;
//   4. open cleans up leftovers (stray snapshot files, temp files, stale staging files) and
//      recovers a staging file with a damaged tail; load() during a persist in flight sees only
//      what is durable.
// Method: real files in temporary directories; worked examples, and a seeded Prng over random
// operation sequences (the seed is in the test name, so a failure replays exactly).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { bootstrapState } from '../../src/consensus/raft_core.ts';
import type { Entry, SnapshotMeta } from '../../src/consensus/types.ts';
import type { SimDisk } from '../../src/sim/sim_disk.ts';
import { Prng } from '../../src/shared/prng.ts';
import { SegmentLogStorage, type SegmentLogStorageOptions } from '../../src/storage/index.ts';
import { readSnapshotFile, verifySnapshotFile, writeSnapshotFile } from '../../src/storage/lmdb/snapshot_file.ts';
import { RecordEncoder, RecordType } from '../../src/storage/segments/wal_format.ts';
import {
  bytes, chunksOf, entries, membership, persist, persistReference, ready, referenceDisk, withTempDir,
} from './helpers.ts';

const initialBytes = bytes('initial state');

function segmentFiles(dir: string): string[] {
  return fs.readdirSync(path.join(dir, 'wal')).filter((name) => /^\d{20}\.wal$/.test(name)).sort().map((name) => path.join(dir, 'wal', name));
}

function assertSame(storage: SegmentLogStorage, disk: SimDisk, context = ''): void {
  assert.deepEqual(storage.load(), disk.persistentState(), context);
  const snapshot = storage.loadSnapshot();
  assert.ok(snapshot !== null);
  assert.deepEqual(snapshot.meta, disk.image.snapshot.meta, context);
  assert.deepEqual(Buffer.from(snapshot.bytes), Buffer.from(disk.image.snapshot.bytes), context);
}

/** SimDisk's saveSnapshot keeps 64 entries; this mirrors any tail. */
function saveReference(disk: SimDisk, meta: SnapshotMeta, data: Uint8Array, tail: number): void {
  disk.image.snapshot = { meta, bytes: data };
  disk.image.entries = disk.image.entries.filter((e) => e.index > meta.index - tail);
}

function saveAsync(storage: SegmentLogStorage, meta: SnapshotMeta, data: Uint8Array): Promise<boolean> {
  return new Promise((resolve, reject) => storage.saveSnapshotAsync(meta, data, (error, saved) => (error !== null ? reject(error) : resolve(saved))));
}

function bigEntries(from: number, to: number, term: number, size: number): Entry[] {
  return entries(from, to, term).map((e) => ({ ...e, data: new Uint8Array(size).fill(e.index & 0xff) }));
}

test('segments rotate with a checkpoint first; old segments go after own snapshots and installs; restart gives the same state', async () => {
  await withTempDir('seg-rotate', async (dir) => {
    const options: SegmentLogStorageOptions = { compactionTailEntries: 4, segmentBytes: 1024 };
    let storage = SegmentLogStorage.open(dir, options);
    storage.bootstrap(bootstrapState(membership), initialBytes);
    const disk = referenceDisk(bootstrapState(membership), initialBytes);
    try {
      for (let i = 0; i < 40; i += 1) {
        const r = ready({ entries: bigEntries(i * 5 + 1, i * 5 + 5, 1, 50), hardState: { term: 1, vote: 'a', commit: i * 5 } });
        persistReference(disk, r);
        await persist(storage, r);
      }
      const files = segmentFiles(dir);
      assert.ok(files.length >= 10, `expected many segments, got ${files.length}`);
      for (const file of files) {
        const data = fs.readFileSync(file);
        assert.equal((data[8] as number) & 0x7f, RecordType.checkpoint, `${path.basename(file)} starts with a checkpoint`);
      }
      assert.equal(storage.stats().logBytesUsed, files.reduce((sum, file) => sum + fs.statSync(file).size, 0));
      assertSame(storage, disk);

      // An own snapshot at 150 keeps 147..200: every segment whose entries are all below 147 goes.
      const meta: SnapshotMeta = { index: 150, term: 1, membership };
      assert.equal(await saveAsync(storage, meta, bytes('state at 150')), true);
      saveReference(disk, meta, bytes('state at 150'), 4);
      assertSame(storage, disk);
      await storage.close();
      const kept = segmentFiles(dir);
      assert.ok(kept.length < files.length && kept.length >= 2, `kept ${kept.length} of ${files.length} segments`);
      assert.equal(path.basename(kept[kept.length - 1] as string), path.basename(files[files.length - 1] as string), 'the current segment stays');
      storage = SegmentLogStorage.open(dir, options);
      assertSame(storage, disk);
      assert.deepEqual(storage.recovery, { tornTail: null, removedSegments: [], removedStagingFiles: [], stagingBytesDropped: 0 });
      // The oldest remaining segment still holds an entry of the log (otherwise it would be gone).
      assert.equal(storage.stats().firstIndex, 147);

      // An install whose term disagrees with the log drops it entirely: only the current segment stays.
      const install: SnapshotMeta = { index: 180, term: 2, membership };
      const r = ready({ snapshotChunks: chunksOf(install, bytes('state at 180'), 5), snapshot: install, hardState: { term: 2, vote: null, commit: 180 } });
      persistReference(disk, r);
      await persist(storage, r);
      const after = ready({ entries: bigEntries(181, 190, 2, 50) });
      persistReference(disk, after);
      await persist(storage, after);
      assertSame(storage, disk);
      await storage.close();
      const remaining = segmentFiles(dir);
      storage = SegmentLogStorage.open(dir, options);
      assertSame(storage, disk);
      // Entries 181..190 went to new segments; the ones before the install are all gone.
      assert.ok(remaining.length <= 2, `segments after the install: ${remaining.map((f) => path.basename(f)).join(', ')}`);
    } finally {
      await storage.close();
    }
  });
});

// --- seeded random histories against SimDisk, with crashes ---------------------------------------

type Crash = 'none' | 'reopen' | 'torn-partial' | 'torn-garbage' | 'torn-zeros' | 'rotation-empty' | 'rotation-partial' | 'rotation-checkpoint-only';

async function injectCrash(dir: string, kind: Crash, disk: SimDisk, random: Prng): Promise<void> {
  const files = segmentFiles(dir);
  const last = files[files.length - 1] as string;
  const encoder = new RecordEncoder();
  const next = path.join(dir, 'wal', `${String(Number(path.basename(last, '.wal')) + 1).padStart(20, '0')}.wal`);
  switch (kind) {
    case 'torn-partial': {
      // A Ready that was being written: any proper prefix of its bytes, possibly whole records
      // (entries of a new term) without the rest (the hard state, the end-of-write mark).
      const index = (disk.image.entries.at(-1)?.index ?? disk.image.snapshot.meta.index) + 1;
      for (let i = 0; i < 3; i += 1) encoder.entry({ index: index + i, term: 999, kind: 'normal', data: bytes('never acknowledged') });
      encoder.hardState({ term: 999, vote: 'z', commit: index + 2 });
      encoder.seal();
      fs.appendFileSync(last, encoder.bytes.subarray(0, random.int(1, encoder.length - 1)));
      break;
    }
    case 'torn-garbage': {
      const garbage = Buffer.alloc(random.int(1, 300));
      for (let i = 0; i < garbage.length; i += 1) garbage[i] = random.int(0, 255);
      if (garbage.length >= 4) garbage.writeUInt32BE(random.int(1, 0xffff), 0); // a plausible length, then a wrong CRC
      fs.appendFileSync(last, garbage);
      break;
    }
    case 'torn-zeros':
      fs.appendFileSync(last, Buffer.alloc(random.int(1, 8192)));
      break;
    case 'rotation-empty':
      fs.writeFileSync(next, Buffer.alloc(0));
      break;
    case 'rotation-partial': {
      encoder.checkpoint(disk.image.hardState, disk.image.snapshot.meta);
      fs.writeFileSync(next, encoder.bytes.subarray(0, random.int(1, encoder.length - 1)));
      break;
    }
    case 'rotation-checkpoint-only': {
      // The checkpoint record made it whole, the Ready written after it in the same write did not.
      encoder.checkpoint(disk.image.hardState, disk.image.snapshot.meta);
      fs.writeFileSync(next, Buffer.concat([encoder.bytes, Buffer.alloc(random.int(0, 100))]));
      break;
    }
    case 'none':
    case 'reopen':
      break;
  }
}

/** What the random histories exercised, summed over all seeds (checked by the last test). */
const coverage = { rotations: 0, deletedSegments: 0, tornTails: 0, abandonedSegments: 0, installsKeeping: 0, installsDropping: 0, ownSnapshots: 0, truncations: 0 };

async function randomHistory(seed: number): Promise<void> {
  const random = new Prng(seed, 'segment-history');
  await withTempDir('seg-random', async (dir) => {
    const tail = random.int(0, 6);
    const options: SegmentLogStorageOptions = { compactionTailEntries: tail, segmentBytes: random.pick([64, 300, 2000, 1 << 20]) };
    let storage = SegmentLogStorage.open(dir, options);
    storage.bootstrap(bootstrapState(membership), initialBytes);
    const disk = referenceDisk(bootstrapState(membership), initialBytes);
    let term = 1;
    let highestSequence = 1;
    let lowestSequence = 1;
    const step = async (r: ReturnType<typeof ready>): Promise<void> => {
      persistReference(disk, r);
      await persist(storage, r);
    };
    try {
      for (let op = 0; op < 150; op += 1) {
        const log = disk.image.entries;
        const snapshotIndex = disk.image.snapshot.meta.index;
        const last = log.at(-1)?.index ?? snapshotIndex;
        const termAt = (index: number): number | undefined => (index === snapshotIndex ? disk.image.snapshot.meta.term : log.find((e) => e.index === index)?.term);
        const roll = random.int(0, 99);
        let what: string;
        if (roll < 45) {
          const low = log[0]?.index ?? snapshotIndex + 1;
          // Mostly appends at the end; sometimes a truncation into the log.
          const first = random.chance(0.75) ? last + 1 : random.int(low, last + 1);
          if (first <= last) coverage.truncations += 1;
          if (random.chance(0.2)) term += 1;
          const count = random.int(1, 8);
          what = `append ${first}..${first + count - 1} term ${term}`;
          await step(ready({ entries: bigEntries(first, first + count - 1, term, random.int(0, 120)), hardState: random.chance(0.5) ? { term, vote: null, commit: Math.min(last, first - 1) } : null }));
        } else if (roll < 55) {
          what = 'hard state';
          await step(ready({ hardState: { term, vote: random.chance(0.5) ? 'b' : null, commit: random.int(0, last) } }));
        } else if (roll < 65) {
          const index = snapshotIndex + random.int(1, last - snapshotIndex + 3);
          const metaTerm = random.chance(0.6) ? (termAt(index) ?? term) : term + 100;
          const meta: SnapshotMeta = { index, term: metaTerm, membership };
          const content = new Uint8Array(random.int(0, 200)).map((_, i) => (i * 13 + index) & 0xff);
          const chunks = chunksOf(meta, content, random.int(1, 64));
          const withEntries = random.chance(0.3) ? bigEntries(index + 1, index + random.int(1, 3), Math.max(term, metaTerm), 20) : [];
          what = `install ${index}/${metaTerm} (${chunks.length} chunks)`;
          if (termAt(index) === metaTerm) coverage.installsKeeping += 1;
          else coverage.installsDropping += 1;
          if (chunks.length > 1 && random.chance(0.5)) {
            const split = random.int(1, chunks.length - 1);
            await step(ready({ snapshotChunks: chunks.slice(0, split) }));
            await step(ready({ snapshotChunks: chunks.slice(split), snapshot: meta, entries: withEntries }));
          } else {
            await step(ready({ snapshotChunks: chunks, snapshot: meta, entries: withEntries }));
          }
          term = Math.max(term, metaTerm);
        } else if (roll < 75) {
          if (last <= snapshotIndex) continue;
          const index = snapshotIndex + random.int(1, last - snapshotIndex);
          const meta: SnapshotMeta = { index, term: termAt(index) ?? term, membership };
          const content = bytes(`own snapshot ${index}`);
          what = `own snapshot ${index}`;
          coverage.ownSnapshots += 1;
          if (random.chance(0.5)) storage.saveSnapshot(meta, content);
          else assert.equal(await saveAsync(storage, meta, content), true);
          saveReference(disk, meta, content, tail);
        } else if (roll < 80) {
          what = 'nothing durable';
          await step(ready({ mustSync: false, hardState: { ...disk.image.hardState } }));
        } else {
          const crash = random.pick<Crash>(['reopen', 'torn-partial', 'torn-garbage', 'torn-zeros', 'rotation-empty', 'rotation-partial', 'rotation-checkpoint-only']);
          what = `crash: ${crash}`;
          await storage.close();
          const files = segmentFiles(dir).map((file) => Number(path.basename(file, '.wal')));
          coverage.rotations += Math.max(0, (files.at(-1) ?? 1) - highestSequence);
          coverage.deletedSegments += Math.max(0, (files[0] ?? 1) - lowestSequence);
          highestSequence = Math.max(highestSequence, files.at(-1) ?? 1);
          lowestSequence = Math.max(lowestSequence, files[0] ?? 1);
          // Every file the storage still counts is on disk, and nothing else is.
          await injectCrash(dir, crash, disk, random);
          storage = SegmentLogStorage.open(dir, options);
          const recovery = storage.recovery;
          assert.ok(recovery !== null, `seed ${seed} op ${op}: recovery succeeded`);
          if (recovery.tornTail !== null) coverage.tornTails += 1;
          coverage.abandonedSegments += recovery.removedSegments.length;
          highestSequence = Math.max(highestSequence, ...segmentFiles(dir).map((file) => Number(path.basename(file, '.wal'))));
          if (crash.startsWith('torn')) assert.ok(recovery.tornTail !== null && recovery.tornTail.bytes > 0, `seed ${seed} op ${op}: the torn tail is reported`);
          if (crash.startsWith('rotation')) assert.equal(recovery.removedSegments.length, 1, `seed ${seed} op ${op}: the interrupted segment is removed`);
          assert.equal(storage.stats().logBytesUsed, segmentFiles(dir).reduce((sum, file) => sum + fs.statSync(file).size, 0), `seed ${seed} op ${op}: segment sizes`);
        }
        assertSame(storage, disk, `seed ${seed} op ${op}: ${what}`);
      }
    } finally {
      await storage.close();
    }
  });
}

for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
  test(`seeded random history ${seed}: Readies, snapshots, restarts, torn tails and interrupted rotations match SimDisk`, async () => {
    await randomHistory(seed);
  });
}

test('the random histories exercised rotation, deletion, torn tails, interrupted rotations and both kinds of install', () => {
  for (const [what, count] of Object.entries(coverage)) assert.ok(count > 0, `${what}: ${count}`);
});

// --- one write, one fdatasync -----------------------------------------------------------------

test('each Ready with a durable part is one fs.write and one fdatasync; a Ready with nothing durable touches nothing', async () => {
  await withTempDir('seg-fsync', async (dir) => {
    const storage = SegmentLogStorage.open(dir, { segmentBytes: 1 << 20 });
    storage.bootstrap(bootstrapState(membership), initialBytes);
    // Count the calls the storage makes through node:fs (it calls fs.write / fs.fdatasync on the
    // module object, so wrapping them here sees every call).
    const calls = { write: 0, fdatasync: 0, writeSync: 0, fsync: 0 };
    const original = { write: fs.write, fdatasync: fs.fdatasync, writeSync: fs.writeSync, fsync: fs.fsync };
    const mutable = fs as unknown as Record<string, unknown>;
    mutable.write = (...args: unknown[]) => {
      calls.write += 1;
      return (original.write as (...a: unknown[]) => unknown)(...args);
    };
    mutable.fdatasync = (...args: unknown[]) => {
      calls.fdatasync += 1;
      return (original.fdatasync as (...a: unknown[]) => unknown)(...args);
    };
    try {
      const before = storage.stats();
      const size = (): number => fs.statSync(segmentFiles(dir)[0] as string).size;
      for (let i = 0; i < 100; i += 1) {
        const bytesBefore = size();
        await persist(storage, ready({ entries: bigEntries(i * 20 + 1, i * 20 + 20, 1, 150), hardState: { term: 1, vote: 'a', commit: i * 20 } }));
        assert.equal(calls.write, i + 1, 'one write per Ready');
        assert.equal(calls.fdatasync, i + 1, 'one fdatasync per Ready');
        assert.ok(size() > bytesBefore + 20 * 150);
      }
      assert.equal(storage.stats().fsyncs - before.fsyncs, 100);

      // Only a commit-index change, mustSync false: no disk at all.
      const bytesBefore = size();
      for (let i = 0; i < 10; i += 1) await persist(storage, ready({ hardState: { term: 1, vote: 'a', commit: 2000 }, mustSync: false }));
      assert.equal(calls.write, 100);
      assert.equal(calls.fdatasync, 100);
      assert.equal(size(), bytesBefore);
      assert.equal(storage.stats().fsyncs - before.fsyncs, 100);
      assert.equal(storage.stats().persists - before.persists, 110);

      // A hard-state-only Ready that must be synced: one more of each.
      await persist(storage, ready({ hardState: { term: 2, vote: 'b', commit: 2000 } }));
      assert.equal(calls.write, 101);
      assert.equal(calls.fdatasync, 101);
      assert.equal(storage.stats().fsyncs - before.fsyncs, 101);
    } finally {
      mutable.write = original.write;
      mutable.fdatasync = original.fdatasync;
      await storage.close();
    }
  });
});

test('a Ready that starts a new segment syncs the new file and the directory: two syncs, still one write', async () => {
  await withTempDir('seg-fsync-rotate', async (dir) => {
    const storage = SegmentLogStorage.open(dir, { segmentBytes: 100 });
    storage.bootstrap(bootstrapState(membership), initialBytes);
    try {
      await persist(storage, ready({ entries: bigEntries(1, 2, 1, 100) })); // fills segment 1
      const before = storage.stats().fsyncs;
      await persist(storage, ready({ entries: bigEntries(3, 4, 1, 100) }));
      assert.equal(storage.stats().fsyncs - before, 2);
      assert.equal(segmentFiles(dir).length, 2);
    } finally {
      await storage.close();
    }
  });
});

// --- recovery details -------------------------------------------------------------------------

test('open removes stray snapshot, temp and stale staging files, and keeps the current snapshot and unrelated files', async () => {
  await withTempDir('seg-stray', async (dir) => {
    let storage = SegmentLogStorage.open(dir);
    storage.bootstrap(bootstrapState(membership), initialBytes);
    await persist(storage, ready({ entries: entries(1, 5, 1) }));
    storage.saveSnapshot({ index: 3, term: 1, membership }, bytes('at 3'));
    await storage.close();
    fs.writeFileSync(path.join(dir, 'snapshot-1.bin'), 'old');
    fs.writeFileSync(path.join(dir, 'snapshot-9.bin.tmp'), 'partial');
    fs.writeFileSync(path.join(dir, 'staging-2-1.bin'), 'stale: at or below the current snapshot');
    fs.writeFileSync(path.join(dir, 'wal', `${'2'.padStart(20, '0')}.wal.tmp`), 'interrupted bootstrap');
    fs.writeFileSync(path.join(dir, 'unrelated.txt'), 'kept');
    storage = SegmentLogStorage.open(dir);
    try {
      assert.deepEqual(fs.readdirSync(dir).sort(), ['snapshot-3.bin', 'unrelated.txt', 'wal']);
      assert.deepEqual(fs.readdirSync(path.join(dir, 'wal')), [`${'1'.padStart(20, '0')}.wal`]);
      assert.deepEqual(storage.recovery?.removedStagingFiles, [path.join(dir, 'staging-2-1.bin')]);
      assert.equal(storage.load()?.snapshot.index, 3);
    } finally {
      await storage.close();
    }
  });
});

test('a staging file with a damaged tail is cut back to its valid chunks; staging continues from there', async () => {
  await withTempDir('seg-staging', async (dir) => {
    let storage = SegmentLogStorage.open(dir);
    storage.bootstrap(bootstrapState(membership), initialBytes);
    const disk = referenceDisk(bootstrapState(membership), initialBytes);
    const meta: SnapshotMeta = { index: 7, term: 3, membership };
    const content = bytes('0123456789abcdefghij');
    const chunks = chunksOf(meta, content, 4);
    await persist(storage, ready({ snapshotChunks: chunks.slice(0, 3) }));
    persistReference(disk, ready({ snapshotChunks: chunks.slice(0, 3) }));
    await storage.close();
    const staging = path.join(dir, 'staging-7-3.bin');
    const size = fs.statSync(staging).size;
    fs.appendFileSync(staging, Buffer.alloc(37, 0xab)); // a torn frame
    storage = SegmentLogStorage.open(dir);
    try {
      assert.equal(storage.recovery?.stagingBytesDropped, 37);
      assert.equal(fs.statSync(staging).size, size);
      const rest = ready({ snapshotChunks: chunks.slice(3), snapshot: meta });
      await persist(storage, rest);
      persistReference(disk, rest);
      assertSame(storage, disk);
      assert.equal(fs.existsSync(staging), false, 'the staging file is removed after the install');
    } finally {
      await storage.close();
    }
  });
});

test('load() while a persist is in flight returns the durable state only', async () => {
  await withTempDir('seg-inflight', async (dir) => {
    const storage = SegmentLogStorage.open(dir);
    storage.bootstrap(bootstrapState(membership), initialBytes);
    try {
      await persist(storage, ready({ entries: entries(1, 3, 1) }));
      const pending = persist(storage, ready({ entries: entries(4, 6, 1) }));
      assert.deepEqual(storage.load()?.entries.map((e) => e.index), [1, 2, 3]);
      await pending;
      assert.deepEqual(storage.load()?.entries.map((e) => e.index), [1, 2, 3, 4, 5, 6]);
    } finally {
      await storage.close();
    }
  });
});

test('a snapshot is served to followers from its file, in chunks, and not kept in memory', async () => {
  await withTempDir('seg-snap-file', async (dir) => {
    const storage = SegmentLogStorage.open(dir, { compactionTailEntries: 2 });
    try {
      storage.bootstrap(bootstrapState(membership), bytes('initial'));
      await persist(storage, ready({ entries: entries(1, 6, 1), hardState: { term: 1, vote: 'a', commit: 6 } }));
      const state = new Uint8Array(300_000).map((_, i) => (i * 7) % 251);
      const original = new Uint8Array(state);
      assert.equal(await saveAsync(storage, { index: 5, term: 1, membership }, state), true);
      // The caller's buffer is free once the save is done: changing it changes nothing served.
      state.fill(0);
      const served: Uint8Array[] = [];
      for (let offset = 0, done = false; !done;) {
        const chunk = storage.readSnapshotChunk(5, offset, 64 * 1024);
        assert.ok(chunk !== null);
        served.push(chunk.data);
        offset += chunk.data.byteLength;
        done = chunk.done;
      }
      assert.equal(served.length, 5);
      assert.deepEqual(Buffer.concat(served), Buffer.from(original));
      assert.equal(storage.stats().snapshotBytes, original.byteLength);
      // The file is what is read: damage it and the next chunk read shows the damage.
      const file = path.join(dir, 'snapshot-5.bin');
      const raw = fs.readFileSync(file);
      raw[32 + 70_000] = ((raw[32 + 70_000] as number) + 1) % 256;
      fs.writeFileSync(file, raw);
      assert.notDeepEqual(storage.readSnapshotChunk(5, 65_536, 64 * 1024)?.data, original.subarray(65_536, 131_072));
    } finally {
      await storage.close();
    }
  });
});

test('verifySnapshotFile reads a file in slices: same verdicts as a whole read, whatever the slice size', async () => {
  await withTempDir('seg-snap-verify', async (dir) => {
    const body = new Uint8Array(10_000).map((_, i) => i % 256);
    writeSnapshotFile(dir, 9, 2, body);
    for (const slice of [1, 7, 4096, 1 << 20]) assert.equal(verifySnapshotFile(dir, 9, 2, slice), body.byteLength);
    assert.deepEqual(readSnapshotFile(dir, 9, 2), body);
    const file = path.join(dir, 'snapshot-9.bin');
    const raw = fs.readFileSync(file);
    raw[32 + 9_999] = (raw[32 + 9_999] as number) ^ 0x80; // the last byte of the body
    fs.writeFileSync(file, raw);
    for (const slice of [7, 1 << 20]) assert.throws(() => verifySnapshotFile(dir, 9, 2, slice), /failed its checksum/);
    assert.throws(() => verifySnapshotFile(dir, 9, 3), /failed its checksum/);
  });
});
