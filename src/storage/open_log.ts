/**
 * Opens a node's Raft log storage: the segment-file WAL (segments/segment_log_storage.ts). A log
 * directory written by an earlier version, in LMDB (lmdb/log_storage.ts, `<dir>/log/data.mdb`), is
 * migrated first: its state and snapshot are copied into a new segment log beside it, which then
 * takes its place; the LMDB files are kept as `<dir>.lmdb-<time>` for the operator to delete.
 *
 * Crash safety of the migration: the new log is complete and durable (bootstrap fsyncs it) before
 * the swap; the swap is two renames of sibling directories, fsynced in their parent. A crash
 * before the first rename leaves the old log in place and a temporary one that the next start
 * deletes and builds again; a crash between the renames leaves no `<dir>` but a complete
 * `<dir>.migrating`, which the next start moves into place.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fsyncDirectory } from './lmdb/fs_util.ts';
import { LmdbLogStorage } from './lmdb/log_storage.ts';
import { SegmentLogStorage, type SegmentLogStorageOptions } from './segments/segment_log_storage.ts';

export interface OpenedLog {
  readonly storage: SegmentLogStorage;
  /** Set when an LMDB log was migrated now: where its files were moved. */
  readonly migratedFrom: string | null;
}

export async function openLogStorage(dir: string, options: SegmentLogStorageOptions = {}, now: () => Date = () => new Date()): Promise<OpenedLog> {
  const parent = path.dirname(dir);
  const staging = `${dir}.migrating`;
  if (!fs.existsSync(dir) && fs.existsSync(staging)) {
    // The previous start built the new log and moved the old one away, then stopped.
    fs.renameSync(staging, dir);
    fsyncDirectory(parent);
  }
  if (!fs.existsSync(path.join(dir, 'log', 'data.mdb'))) return { storage: SegmentLogStorage.open(dir, options), migratedFrom: null };

  fs.rmSync(staging, { recursive: true, force: true });
  const old = LmdbLogStorage.open(dir);
  let state;
  let snapshot;
  try {
    state = old.load();
    snapshot = old.loadSnapshot();
  } finally {
    await old.close();
  }
  if (state === null || snapshot === null) {
    // Never bootstrapped: nothing to carry over.
    fs.rmSync(path.join(dir, 'log'), { recursive: true, force: true });
    return { storage: SegmentLogStorage.open(dir, options), migratedFrom: null };
  }
  const fresh = SegmentLogStorage.open(staging, options);
  fresh.bootstrap(state, snapshot.bytes);
  await fresh.close();
  fsyncDirectory(parent);
  const kept = `${dir}.lmdb-${now().toISOString().replace(/[:.]/g, '-')}`;
  fs.renameSync(dir, kept);
  fs.renameSync(staging, dir);
  fsyncDirectory(parent);
  return { storage: SegmentLogStorage.open(dir, options), migratedFrom: kept };
}
