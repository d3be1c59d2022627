// Goal: a node's log written by the LMDB log storage of earlier versions is carried over to the
// segment-file log on start: the same hard state, snapshot (metadata and bytes) and entries; the
// old files are kept aside; a second start changes nothing; a start interrupted between the two
// renames of the swap finishes it. A directory never bootstrapped opens empty.
// Method: LmdbLogStorage writes a log (entries, hard state, a snapshot, compaction) in a temp dir;
// openLogStorage opens it; the states are compared field by field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { bootstrapState } from '../../src/consensus/raft_core.ts';
import { LmdbLogStorage, SegmentLogStorage, openLogStorage } from '../../src/storage/index.ts';
import { bytes, entries, membership, persist, ready, withTempDir } from './helpers.ts';

async function writeLmdbLog(dir: string): Promise<void> {
  const lmdb = LmdbLogStorage.open(dir, { compactionTailEntries: 3 });
  lmdb.bootstrap(bootstrapState(membership), bytes('{"state":0}'));
  await persist(lmdb, ready({ entries: entries(1, 10, 1), hardState: { term: 1, vote: 'a', commit: 8 } }));
  await new Promise<void>((resolve, reject) => lmdb.saveSnapshotAsync!({ index: 8, term: 1, membership }, bytes('{"state":8}'), (error) => (error === null ? resolve() : reject(error))));
  await persist(lmdb, ready({ entries: entries(11, 12, 2), hardState: { term: 2, vote: 'b', commit: 10 } }));
  await lmdb.close();
}

test('an LMDB log is migrated to segment files with the same state; the old files are kept aside', async () => {
  await withTempDir('open-log', async (root) => {
    const dir = path.join(root, 'log');
    await writeLmdbLog(dir);
    const before = LmdbLogStorage.open(dir);
    const expected = before.load();
    const expectedSnapshot = before.loadSnapshot();
    await before.close();
    assert.ok(expected !== null && expectedSnapshot !== null);

    const opened = await openLogStorage(dir, {}, () => new Date('2026-11-26T12:00:00Z'));
    try {
      assert.equal(opened.migratedFrom, `${dir}.lmdb-2026-11-26T12-00-00-000Z`);
      assert.ok(fs.existsSync(path.join(opened.migratedFrom, 'log', 'data.mdb')), 'the LMDB files are kept');
      assert.ok(!fs.existsSync(path.join(dir, 'log')), 'the log directory holds no LMDB environment any more');
      assert.deepEqual(opened.storage.load(), expected);
      assert.deepEqual(opened.storage.loadSnapshot(), expectedSnapshot);
    } finally {
      await opened.storage.close();
    }

    const again = await openLogStorage(dir);
    try {
      assert.equal(again.migratedFrom, null, 'nothing to migrate the second time');
      assert.deepEqual(again.storage.load(), expected);
    } finally {
      await again.storage.close();
    }
  });
});

test('a migration interrupted between its two renames is finished at the next start', async () => {
  await withTempDir('open-log', async (root) => {
    const dir = path.join(root, 'log');
    await writeLmdbLog(dir);
    const lmdb = LmdbLogStorage.open(dir);
    const expected = lmdb.load();
    await lmdb.close();
    const first = await openLogStorage(dir);
    await first.storage.close();
    // Undo the second rename: the new log is back at `<dir>.migrating` and `<dir>` is gone.
    fs.renameSync(dir, `${dir}.migrating`);
    const resumed = await openLogStorage(dir);
    try {
      assert.equal(resumed.migratedFrom, null);
      assert.ok(!fs.existsSync(`${dir}.migrating`));
      assert.deepEqual(resumed.storage.load(), expected);
    } finally {
      await resumed.storage.close();
    }
  });
});

test('a fresh directory opens as an empty segment log', async () => {
  await withTempDir('open-log', async (root) => {
    const opened = await openLogStorage(path.join(root, 'log'));
    try {
      assert.equal(opened.migratedFrom, null);
      assert.ok(opened.storage instanceof SegmentLogStorage);
      assert.equal(opened.storage.load(), null);
    } finally {
      await opened.storage.close();
    }
  });
});
