// Goal: SegmentLogStorage tells damage from a torn write, as its header promises:
//   - an invalid record (flipped byte, trailing zeros, a write without its end) in any segment but
//     the last, a CRC-valid record with a malformed payload anywhere, a checkpoint that disagrees
//     with the segments before it, a hole in the log, a missing or damaged snapshot file, a
//     damaged staged chunk at install: StorageCorruptionError naming the file (and the record),
//     nothing served, persists fail, and the directory is left exactly as it was;
//   - a torn tail in the LAST segment (a record cut short, garbage, zero fill, whole records of a
//     write without its end-of-write mark): cut off at open, reported in `recovery`, and the log
//     is exactly what was acknowledged before the torn write; later writes append cleanly.
// Method: write through SegmentLogStorage with tiny segments, close it, damage the files, reopen.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { bootstrapState, type PersistentState } from '../../src/consensus/raft_core.ts';
import type { SnapshotMeta } from '../../src/consensus/types.ts';
import { SegmentLogStorage, StorageCorruptionError } from '../../src/storage/index.ts';
import { crc32 } from '../../src/storage/lmdb/codec.ts';
import { RecordEncoder, RecordType, endOfWriteFlag } from '../../src/storage/segments/wal_format.ts';
import { bytes, chunksOf, entries, membership, persist, ready, withTempDir } from './helpers.ts';

const segmentBytes = 200;

function segmentFiles(dir: string): string[] {
  return fs.readdirSync(path.join(dir, 'wal')).filter((name) => name.endsWith('.wal')).sort().map((name) => path.join(dir, 'wal', name));
}

/** Everything under `dir` with its bytes, to show a failed open changed nothing. */
function snapshotOfDir(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (at: string): void => {
    for (const name of fs.readdirSync(at)) {
      const full = path.join(at, name);
      if (fs.statSync(full).isDirectory()) walk(full);
      else out.set(full, fs.readFileSync(full).toString('hex'));
    }
  };
  walk(dir);
  return out;
}

/**
 * Five Readies of entries 1..20 (each starting a new 200-byte segment), commit moving on, and a
 * saved snapshot at 3 (file snapshot-3.bin). Returns the state after them.
 */
async function prepared(dir: string): Promise<PersistentState> {
  const storage = SegmentLogStorage.open(dir, { segmentBytes, compactionTailEntries: 10 });
  storage.bootstrap(bootstrapState(membership), bytes('initial'));
  for (let i = 0; i < 5; i += 1) {
    await persist(storage, ready({ entries: entries(i * 4 + 1, i * 4 + 4, 1).map((e) => ({ ...e, data: new Uint8Array(40).fill(i) })), hardState: { term: 1, vote: 'a', commit: i * 4 } }));
  }
  storage.saveSnapshot({ index: 3, term: 1, membership }, bytes('the state machine at index 3'));
  const state = storage.load();
  assert.ok(state !== null);
  await storage.close();
  assert.ok(segmentFiles(dir).length >= 5, 'several segments');
  return state;
}

function corruption(pattern: RegExp, file: RegExp | string): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof StorageCorruptionError, `expected StorageCorruptionError, got ${String(error)}`);
    assert.match(error.message, pattern);
    if (typeof file === 'string') assert.equal(error.file, file);
    else assert.match(error.file, file);
    assert.ok(error.message.endsWith(`(in ${error.file})`), 'the message names the file');
    return true;
  };
}

/** Opens `dir`, checks load() and loadSnapshot() and a persist all fail with `isCorrupt`, and that nothing on disk changed. */
async function expectCorruption(dir: string, isCorrupt: (error: unknown) => boolean): Promise<void> {
  const before = snapshotOfDir(dir);
  const storage = SegmentLogStorage.open(dir, { segmentBytes });
  try {
    assert.equal(storage.recovery, null, 'the recovery did not succeed');
    assert.throws(() => storage.load(), isCorrupt);
    assert.throws(() => storage.loadSnapshot(), isCorrupt);
    const error = await persist(storage, ready({ entries: entries(21, 21, 1) })).then(() => null, (e: unknown) => e);
    assert.ok(isCorrupt(error));
  } finally {
    await storage.close();
  }
  assert.deepEqual(snapshotOfDir(dir), before, 'a corrupt directory is left as it was');
}

/** A raw record, for damage that a valid encoder would never produce. */
function rawRecord(type: number, payload: Uint8Array): Buffer {
  const body = Buffer.concat([Buffer.from([type]), payload]);
  const header = Buffer.alloc(8);
  header.writeUInt32BE(body.byteLength, 0);
  header.writeUInt32BE(crc32(body), 4);
  return Buffer.concat([header, body]);
}

test('a flipped byte in a segment that is not the last is corruption naming the segment and the record', async () => {
  await withTempDir('seg-corrupt', async (dir) => {
    await prepared(dir);
    const file = segmentFiles(dir)[1] as string;
    const raw = fs.readFileSync(file);
    raw[raw.length - 3] = (raw[raw.length - 3] as number) ^ 0x01;
    fs.writeFileSync(file, raw);
    await expectCorruption(dir, corruption(/record \d+ at byte \d+ is invalid: checksum mismatch: stored crc32 [0-9a-f]{8}, computed [0-9a-f]{8} \(only the last segment may end in a torn write\)/, file));
  });
});

test('a segment that is not the last may not end in zeros or in the middle of a write', async () => {
  await withTempDir('seg-corrupt', async (dir) => {
    await prepared(dir);
    const file = segmentFiles(dir)[2] as string;
    fs.appendFileSync(file, Buffer.alloc(512));
    await expectCorruption(dir, corruption(/is invalid: zero length/, file));
  });
  await withTempDir('seg-corrupt', async (dir) => {
    await prepared(dir);
    const file = segmentFiles(dir)[2] as string;
    const encoder = new RecordEncoder();
    encoder.hardState({ term: 9, vote: null, commit: 0 }); // whole, CRC-valid, but never sealed
    fs.appendFileSync(file, encoder.bytes);
    await expectCorruption(dir, corruption(/the last write is incomplete: 1 record\(s\) from byte \d+ on lack its end-of-write mark/, file));
  });
});

test('a CRC-valid record with a malformed payload is corruption even in the last segment', async () => {
  await withTempDir('seg-corrupt', async (dir) => {
    await prepared(dir);
    const file = segmentFiles(dir).at(-1) as string;
    const at = fs.statSync(file).size;
    fs.appendFileSync(file, rawRecord(RecordType.entry | endOfWriteFlag, Buffer.from([0xc1, 0x00])));
    await expectCorruption(dir, corruption(new RegExp(`record \\d+ \\(entry\\) at byte ${at}: log entry is not valid msgpack`), file));
  });
  await withTempDir('seg-corrupt', async (dir) => {
    await prepared(dir);
    const file = segmentFiles(dir).at(-1) as string;
    fs.appendFileSync(file, rawRecord(42 | endOfWriteFlag, Buffer.from([1, 2, 3])));
    await expectCorruption(dir, corruption(/record \d+ \(unknown type 42\) at byte \d+: unknown record type/, file));
  });
});

test('a checkpoint that disagrees with the segments before it, and a hole in the log, are corruption', async () => {
  await withTempDir('seg-corrupt', async (dir) => {
    await prepared(dir);
    // Segment 3 lost and the later ones renumbered: the sequence looks whole, the state does not.
    const files = segmentFiles(dir);
    fs.rmSync(files[2] as string);
    for (let i = 3; i < files.length; i += 1) fs.renameSync(files[i] as string, files[i - 1] as string);
    await expectCorruption(dir, corruption(/record 1 \(checkpoint\) at byte 0 \(term 1 vote a commit \d+, snapshot 0\/0\) disagrees with the state replayed from the segments before it \(term 1 vote a commit \d+, snapshot 0\/0\)/, files[2] as string));
  });
  await withTempDir('seg-corrupt', async (dir) => {
    await prepared(dir);
    // A gap in the sequence means "deleted before": but the entries after the snapshot were there.
    const files = segmentFiles(dir);
    fs.rmSync(files[3] as string);
    await expectCorruption(dir, corruption(/log has a hole: the snapshot ends at index 3, the first entry is \d+/, files[4] as string));
  });
});

test('a missing or damaged snapshot file is corruption naming it', async () => {
  await withTempDir('seg-corrupt', async (dir) => {
    await prepared(dir);
    fs.rmSync(path.join(dir, 'snapshot-3.bin'));
    const storage = SegmentLogStorage.open(dir, { segmentBytes });
    try {
      assert.throws(() => storage.load(), corruption(/snapshot file for index 3 is missing/, /snapshot-3\.bin$/));
    } finally {
      await storage.close();
    }
  });
  await withTempDir('seg-corrupt', async (dir) => {
    await prepared(dir);
    const file = path.join(dir, 'snapshot-3.bin');
    const raw = fs.readFileSync(file);
    raw[40] = (raw[40] as number) ^ 0x04;
    fs.writeFileSync(file, raw);
    const storage = SegmentLogStorage.open(dir, { segmentBytes });
    try {
      const isCorrupt = corruption(/snapshot file failed its checksum/, /snapshot-3\.bin$/);
      assert.throws(() => storage.load(), isCorrupt);
      assert.throws(() => storage.readSnapshotChunk(3, 0, 4), isCorrupt);
    } finally {
      await storage.close();
    }
  });
});

test('a damaged staged chunk fails the install through done, naming the staging file, and nothing is installed', async () => {
  await withTempDir('seg-corrupt', async (dir) => {
    await prepared(dir);
    const meta: SnapshotMeta = { index: 25, term: 2, membership };
    const chunks = chunksOf(meta, bytes('abcdefghij'), 4);
    let storage = SegmentLogStorage.open(dir, { segmentBytes });
    await persist(storage, ready({ snapshotChunks: chunks.slice(0, 2) }));
    const staging = path.join(dir, 'staging-25-2.bin');
    const raw = fs.readFileSync(staging);
    raw[16 + 4 + 16 + 1] = (raw[16 + 4 + 16 + 1] as number) ^ 0x20; // inside the second chunk's data
    fs.writeFileSync(staging, raw);
    try {
      const error = await persist(storage, ready({ snapshotChunks: chunks.slice(2), snapshot: meta })).then(() => null, (e: unknown) => e);
      corruption(/staged chunk at offset 4 of snapshot 25 failed its checksum/, staging)(error);
      assert.equal(fs.existsSync(path.join(dir, 'snapshot-25.bin')), false, 'no file is written from corrupt chunks');
      await storage.close();
      storage = SegmentLogStorage.open(dir, { segmentBytes });
      assert.equal(storage.loadSnapshot()?.meta.index, 3);
    } finally {
      await storage.close();
    }
  });
});

// --- torn tails -------------------------------------------------------------------------------

for (const damage of ['a record cut short', 'garbage', 'zero fill', 'whole records without the end of their write'] as const) {
  test(`a torn tail in the last segment (${damage}) is cut off at open; the log is what was acknowledged; appends continue`, async () => {
    await withTempDir('seg-torn', async (dir) => {
      const acknowledged = await prepared(dir);
      const file = segmentFiles(dir).at(-1) as string;
      const size = fs.statSync(file).size;
      const encoder = new RecordEncoder();
      encoder.entry({ index: 21, term: 5, kind: 'normal', data: bytes('never acknowledged') });
      encoder.entry({ index: 22, term: 5, kind: 'normal', data: bytes('never acknowledged') });
      encoder.hardState({ term: 5, vote: 'b', commit: 22 });
      let tail: Buffer;
      switch (damage) {
        case 'a record cut short':
          encoder.seal();
          tail = encoder.bytes.subarray(0, encoder.bytes.readUInt32BE(0) + 8 + 5); // first record whole, second cut
          break;
        case 'garbage':
          tail = Buffer.from('9f3a11c0'.repeat(20), 'hex');
          break;
        case 'zero fill':
          tail = Buffer.alloc(4096);
          break;
        case 'whole records without the end of their write':
          tail = Buffer.from(encoder.bytes); // three valid records, never sealed
          break;
      }
      fs.appendFileSync(file, tail);
      let storage = SegmentLogStorage.open(dir, { segmentBytes });
      try {
        assert.deepEqual(storage.recovery?.tornTail?.file, file);
        assert.equal(storage.recovery?.tornTail?.offset, size);
        assert.equal(storage.recovery?.tornTail?.bytes, tail.byteLength);
        assert.equal(fs.statSync(file).size, size, 'the file is cut back to the acknowledged bytes');
        assert.deepEqual(storage.load(), acknowledged);
        await persist(storage, ready({ entries: entries(21, 21, 2), hardState: { term: 2, vote: null, commit: 20 } }));
        await storage.close();
        storage = SegmentLogStorage.open(dir, { segmentBytes });
        assert.equal(storage.recovery?.tornTail, null);
        const state = storage.load();
        assert.deepEqual(state?.entries.map((e) => [e.index, e.term]).at(-1), [21, 2]);
        assert.deepEqual(state?.hardState, { term: 2, vote: null, commit: 20 });
      } finally {
        await storage.close();
      }
    });
  });
}

test('a last segment without a complete first write (an interrupted rotation) is removed; the one before continues', async () => {
  await withTempDir('seg-torn', async (dir) => {
    const acknowledged = await prepared(dir);
    const files = segmentFiles(dir);
    const next = path.join(dir, 'wal', `${String(files.length + 1).padStart(20, '0')}.wal`);
    const encoder = new RecordEncoder();
    encoder.checkpoint(acknowledged.hardState, acknowledged.snapshot);
    fs.writeFileSync(next, encoder.bytes.subarray(0, 7));
    const storage = SegmentLogStorage.open(dir, { segmentBytes });
    try {
      assert.deepEqual(storage.recovery?.removedSegments, [next]);
      assert.equal(fs.existsSync(next), false);
      assert.deepEqual(storage.load(), acknowledged);
      await persist(storage, ready({ entries: entries(21, 21, 1).map((e) => ({ ...e, data: new Uint8Array(300) })) }));
      await persist(storage, ready({ entries: entries(22, 22, 1) })); // the segment is full: rotates into `next` again
      assert.equal(fs.existsSync(next), true);
    } finally {
      await storage.close();
    }
  });
});

test('a first and only segment without a valid checkpoint is corruption, not an empty log', async () => {
  await withTempDir('seg-corrupt', async (dir) => {
    const storage = SegmentLogStorage.open(dir);
    storage.bootstrap(bootstrapState(membership), bytes('initial'));
    await storage.close();
    const file = segmentFiles(dir)[0] as string;
    fs.writeFileSync(file, fs.readFileSync(file).subarray(0, 5));
    await expectCorruption(dir, corruption(/segment has no complete first write: record 1 at byte 0 is invalid/, file));
  });
});
