// Goal: corrupted or truncated storage is detected and reported with a StorageCorruptionError whose
// message names the file and the record, and nothing from it is served: flipped bytes in a log
// entry, a record under the wrong key, a truncated record, a hole in the log, a bad hard state, a
// flipped byte / truncation / wrong or missing snapshot file, a bad staged chunk at install.
// Method: write through LmdbLogStorage, close it, damage the bytes through a raw lmdb handle (or
// the file system), reopen, and check what load()/loadSnapshot()/readSnapshotChunk()/persist do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { open } from 'lmdb';
import { bootstrapState } from '../../src/consensus/raft_core.ts';
import type { SnapshotMeta } from '../../src/consensus/types.ts';
import { LmdbLogStorage, StorageCorruptionError } from '../../src/storage/index.ts';
import { indexKey } from '../../src/storage/lmdb/codec.ts';
import { bytes, chunksOf, entries, membership, persist, ready, withTempDir } from './helpers.ts';

/** A storage with entries 1..5, hard state, and a saved snapshot at 3 (file snapshot-3.bin). */
async function prepared(dir: string): Promise<void> {
  const storage = LmdbLogStorage.open(dir);
  storage.bootstrap(bootstrapState(membership), bytes('initial'));
  await persist(storage, ready({ entries: entries(1, 5, 1), hardState: { term: 1, vote: 'a', commit: 4 } }));
  storage.saveSnapshot({ index: 3, term: 1, membership }, bytes('the state machine at index 3'));
  await storage.close();
}

/** Opens the log environment raw (same sync flags) and runs `damage` on one named database. */
async function damage(dir: string, name: 'entries' | 'state' | 'chunks', body: (db: ReturnType<typeof openRaw>['db']) => void): Promise<void> {
  const raw = openRaw(dir, name);
  try {
    raw.root.transactionSync(() => body(raw.db));
  } finally {
    await raw.root.close();
  }
}

function openRaw(dir: string, name: string) {
  const root = open<Buffer, Buffer>({ path: path.join(dir, 'log'), maxDbs: 3, overlappingSync: false, encoding: 'binary', keyEncoding: 'binary', cache: false });
  const db = root.openDB<Buffer, Buffer>({ name, encoding: 'binary', keyEncoding: 'binary', cache: false });
  return { root, db };
}

async function expectCorruption(dir: string, check: (storage: LmdbLogStorage) => void): Promise<void> {
  const storage = LmdbLogStorage.open(dir);
  try {
    check(storage);
  } finally {
    await storage.close();
  }
}

function corruption(pattern: RegExp, file: RegExp): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof StorageCorruptionError, `expected StorageCorruptionError, got ${String(error)}`);
    assert.match(error.message, pattern);
    assert.match(error.file, file);
    assert.ok(error.message.endsWith(`(in ${error.file})`), 'the message names the file');
    return true;
  };
}

const dataFile = /log\/data\.mdb$/;

test('a flipped byte in a stored log entry is detected on load, naming the index and file', async () => {
  await withTempDir('corrupt', async (dir) => {
    await prepared(dir);
    await damage(dir, 'entries', (db) => {
      const value = Buffer.from(db.getBinary(indexKey(4)) ?? []);
      value[value.length - 1] = (value[value.length - 1] as number) ^ 0x01;
      db.putSync(indexKey(4), value);
    });
    await expectCorruption(dir, (storage) => {
      assert.throws(() => storage.load(), corruption(/log entry 4 failed its checksum: stored crc32 [0-9a-f]{8}, computed [0-9a-f]{8}/, dataFile));
    });
  });
});

test('a valid record under the wrong key, a truncated record, and a hole are all detected', async () => {
  await withTempDir('corrupt', async (dir) => {
    await prepared(dir);
    await damage(dir, 'entries', (db) => db.putSync(indexKey(4), Buffer.from(db.getBinary(indexKey(5)) ?? [])));
    await expectCorruption(dir, (storage) => assert.throws(() => storage.load(), corruption(/log entry 4 failed its checksum/, dataFile)));
  });
  await withTempDir('corrupt', async (dir) => {
    await prepared(dir);
    await damage(dir, 'entries', (db) => db.putSync(indexKey(5), Buffer.from([1, 2])));
    await expectCorruption(dir, (storage) => assert.throws(() => storage.load(), corruption(/log entry 5 is truncated: 2 bytes/, dataFile)));
  });
  await withTempDir('corrupt', async (dir) => {
    await prepared(dir);
    await damage(dir, 'entries', (db) => db.removeSync(indexKey(4)));
    await expectCorruption(dir, (storage) => assert.throws(() => storage.load(), corruption(/log has a hole: entry 3 is followed by 5/, dataFile)));
  });
});

test('a corrupted hard state or snapshot metadata record is detected', async () => {
  await withTempDir('corrupt', async (dir) => {
    await prepared(dir);
    await damage(dir, 'state', (db) => {
      const key = Buffer.from('hardState');
      const value = Buffer.from(db.getBinary(key) ?? []);
      value[6] = (value[6] as number) ^ 0xff;
      db.putSync(key, value);
    });
    await expectCorruption(dir, (storage) => assert.throws(() => storage.load(), corruption(/hard state failed its checksum/, dataFile)));
  });
  await withTempDir('corrupt', async (dir) => {
    await prepared(dir);
    await damage(dir, 'state', (db) => db.removeSync(Buffer.from('hardState')));
    await expectCorruption(dir, (storage) => assert.throws(() => storage.load(), corruption(/hard state is missing while the other is present/, dataFile)));
  });
  await withTempDir('corrupt', async (dir) => {
    await prepared(dir);
    await damage(dir, 'state', (db) => {
      const key = Buffer.from('snapshot');
      const value = Buffer.from(db.getBinary(key) ?? []);
      value[1] = (value[1] as number) ^ 0x10; // the stored CRC itself
      db.putSync(key, value);
    });
    await expectCorruption(dir, (storage) => {
      assert.throws(() => storage.load(), corruption(/snapshot metadata failed its checksum/, dataFile));
      assert.throws(() => storage.loadSnapshot(), StorageCorruptionError);
    });
  });
});

test('a flipped byte in the snapshot file is detected by load, loadSnapshot and readSnapshotChunk', async () => {
  await withTempDir('corrupt', async (dir) => {
    await prepared(dir);
    const file = path.join(dir, 'snapshot-3.bin');
    const raw = fs.readFileSync(file);
    raw[40] = (raw[40] as number) ^ 0x04; // inside the body
    fs.writeFileSync(file, raw);
    await expectCorruption(dir, (storage) => {
      const isCorrupt = corruption(/snapshot file failed its checksum/, /snapshot-3\.bin$/);
      assert.throws(() => storage.load(), isCorrupt);
      assert.throws(() => storage.loadSnapshot(), isCorrupt);
      assert.throws(() => storage.readSnapshotChunk(3, 0, 4), isCorrupt);
    });
  });
});

test('a truncated, missing or foreign snapshot file is detected', async () => {
  await withTempDir('corrupt', async (dir) => {
    await prepared(dir);
    const file = path.join(dir, 'snapshot-3.bin');
    fs.truncateSync(file, fs.statSync(file).size - 5);
    await expectCorruption(dir, (storage) => {
      assert.throws(() => storage.loadSnapshot(), corruption(/snapshot file is truncated: \d+ bytes, its header promises \d+/, /snapshot-3\.bin$/));
    });
    fs.truncateSync(file, 10);
    await expectCorruption(dir, (storage) => {
      assert.throws(() => storage.load(), corruption(/snapshot file is truncated: 10 bytes, shorter than its 32-byte header/, /snapshot-3\.bin$/));
    });
  });
  await withTempDir('corrupt', async (dir) => {
    await prepared(dir);
    fs.rmSync(path.join(dir, 'snapshot-3.bin'));
    await expectCorruption(dir, (storage) => assert.throws(() => storage.load(), corruption(/snapshot file for index 3 is missing/, /snapshot-3\.bin$/)));
  });
  await withTempDir('corrupt', async (dir) => {
    // A well-formed file of another snapshot put in place of the right one.
    await withTempDir('other', async (other) => {
      const storage = LmdbLogStorage.open(other);
      storage.bootstrap({ ...bootstrapState(membership), snapshot: { index: 3, term: 2, membership } }, bytes('other'));
      await storage.close();
      await prepared(dir);
      fs.copyFileSync(path.join(other, 'snapshot-3.bin'), path.join(dir, 'snapshot-3.bin'));
    });
    await expectCorruption(dir, (storage) => assert.throws(() => storage.load(), corruption(/holds index 3 term 2, the log records index 3 term 1/, /snapshot-3\.bin$/)));
  });
});

test('a corrupted staged chunk fails the install through done, and nothing is installed', async () => {
  await withTempDir('corrupt', async (dir) => {
    await prepared(dir);
    const meta: SnapshotMeta = { index: 5, term: 1, membership };
    const chunks = chunksOf(meta, bytes('abcdefghij'), 4);
    let storage = LmdbLogStorage.open(dir);
    await persist(storage, ready({ snapshotChunks: chunks.slice(0, 2) }));
    await storage.close();
    await damage(dir, 'chunks', (db) => {
      const value = Buffer.from(db.getBinary(indexKey(4)) ?? []);
      value[5] = (value[5] as number) ^ 0x20;
      db.putSync(indexKey(4), value);
    });
    storage = LmdbLogStorage.open(dir);
    try {
      const error = await persist(storage, ready({ snapshotChunks: chunks.slice(2), snapshot: meta })).then(() => null, (e: unknown) => e);
      corruption(/staged chunk at offset 4 of snapshot 5 failed its checksum/, dataFile)(error);
      assert.equal(storage.loadSnapshot()?.meta.index, 3);
      assert.equal(fs.existsSync(path.join(dir, 'snapshot-5.bin')), false, 'no file is written from corrupt chunks');
    } finally {
      await storage.close();
    }
  });
});

test('open removes snapshot files the metadata does not name, and keeps the current one', async () => {
  await withTempDir('corrupt', async (dir) => {
    await prepared(dir);
    fs.writeFileSync(path.join(dir, 'snapshot-1.bin'), 'old');
    fs.writeFileSync(path.join(dir, 'snapshot-9.bin.tmp'), 'partial');
    fs.writeFileSync(path.join(dir, 'unrelated.txt'), 'kept');
    const storage = LmdbLogStorage.open(dir);
    try {
      assert.deepEqual(fs.readdirSync(dir).sort(), ['log', 'snapshot-3.bin', 'unrelated.txt']);
      assert.equal(storage.load()?.snapshot.index, 3);
    } finally {
      await storage.close();
    }
  });
});
