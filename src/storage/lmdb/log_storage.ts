/**
 * LmdbLogStorage: the durable ReplicaStorage of one node. One LMDB environment under
 * `<dir>/log` holds the Raft log, the hard state, the current snapshot's metadata and the chunks of
 * a snapshot being received; the current snapshot's bytes live beside it in
 * `<dir>/snapshot-<index>.bin` (snapshot_file.ts). It behaves exactly like the simulator's SimDisk
 * (src/sim/sim_disk.ts), which is its reference model, except that "durable" means on disk.
 *
 * Not responsible for: the document state (documents/store.ts, storage/lmdb/document_store.ts),
 * deciding what to persist (the consensus core does), or recovering from errors: a disk error or
 * corruption is reported and the caller stops the node.
 *
 * Durability — the LMDB options and what they guarantee (lmdb-js 3.5.6, read in
 * node_modules/lmdb/README.md, index.d.ts, write.js, src/writer.cpp and the patched mdb.c, and
 * checked with strace in test/storage/log_storage_durability.test.ts):
 * - `overlappingSync: false`. lmdb-js enables it by default on Linux; with it, "the write actions
 *   return a promise for when they are committed" and only `db.flushed` says when the commit is on
 *   disk (README, "Overlapping Sync Options"). Turned off, an asynchronous transaction's promise
 *   resolves only after its commit returned, and an LMDB commit without MDB_NOSYNC writes the data
 *   pages, fdatasync()s the data file and then writes the meta page through a file descriptor
 *   opened O_DSYNC (mdb.c mdb_txn_commit/mdb_env_write_meta). README, `put`: "Once the promise
 *   resolves, the transaction will have been fully written to the physical storage medium".
 *   Because only one Ready is in flight at a time, the overlap it would buy is small anyway. (In
 *   3.5.6 the patched mdb_txn_commit in fact syncs before returning in overlapping mode too, but
 *   only the documented behaviour is relied on.)
 * - `noSync: false`, `noMetaSync: false` (the defaults, stated explicitly): never skip the data or
 *   meta flush. `useWritemap: false`: pages are written with pwrite, not through a writable map.
 * - `transactionSync(fn)` with default flags is used for bootstrap and saveSnapshot (the server
 *   uses saveSnapshotAsync, whose commit is a queued childTransaction like persist's); index.d.ts:
 *   "defaults to abortable, synchronous commits that are flushed to disk before returning". It
 *   blocks the event loop for the fsync, which these two rare, synchronous operations accept.
 * - persist uses `childTransaction(fn)`: an asynchronous transaction whose callback runs on the
 *   main thread inside the write transaction (so reads in it see its own writes) and, unlike
 *   `transaction(fn)`, is aborted as a whole if the callback throws (write.js
 *   executeTxnCallbacks: only child callbacks get env.abortTxn()). The commit and its fsync run on
 *   lmdb-js's writer thread, so ticks and messages keep flowing while the disk works.
 * - The map grows on demand (lmdb-js's patched mdb_page_alloc calls mdb_env_set_mapsize), so
 *   MDB_MAP_FULL is not expected; ENOSPC and EIO surface as a failed commit and reach done(error).
 *
 * Invariants:
 * - Persists complete, and call done, in call order; one LMDB transaction per Ready holds all of
 *   its parts, applied in SimDisk's order (stage chunks, install, truncate/append, hard state; see
 *   persist() for why staging comes first although the port's comment lists install first).
 * - Every Ready that has a durable part is committed with a full sync, whatever its mustSync says
 *   (mustSync=false Readies carry at most a commit-index change; skipping their sync is a possible
 *   later optimisation). A Ready with nothing durable completes without touching the disk.
 * - The snapshot file named by the durable metadata exists and verifies: it is written, fsynced
 *   and renamed (directory fsynced) before the transaction that names it commits. Any other
 *   snapshot file is garbage, deleted after the commit or at the next open.
 * - Every record read back is checksummed (codec.ts) and the log is checked to be contiguous; a
 *   failure is a StorageCorruptionError naming the file and record, and nothing is served.
 * - After the first error every further persist fails with it: the node must stop.
 */
import fs from 'node:fs';
import path from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { AssertionError, assert } from '../../shared/assert.ts';
import type { PersistentState } from '../../consensus/raft_core.ts';
import type { Entry, HardState, LogIndex, Ready, SnapshotMeta, Term } from '../../consensus/types.ts';
import type { ReplicaStorage } from '../../replica/replica.ts';
import { StorageCorruptionError, StorageIoError } from '../errors.ts';
import { assertContiguous, hasDurableParts } from '../common/ready.ts';
import {
  decodeEntry, decodeFrame, decodeHardState, decodeSnapshotMeta, decodeStaged, encodeEntry, encodeFrame,
  encodeHardState, encodeSnapshotMeta, encodeStaged, indexKey, readIndexKey, stringKey, type StagedSnapshot,
} from './codec.ts';
import { readSnapshotFile, snapshotFileName, snapshotFilePattern, writeSnapshotFile, writeSnapshotFileAsync } from './snapshot_file.ts';

export interface LmdbLogStorageOptions {
  /**
   * How many entries at and below a snapshot this node took itself are kept, so that slightly
   * lagging followers can still be caught up from the log. SimDisk keeps 64.
   */
  readonly compactionTailEntries?: number;
}

export interface LogStorageStats {
  /** Durable LMDB commits (each is one fdatasync of the data file plus an O_DSYNC meta write). */
  readonly fsyncs: number;
  /** Wall time of the last durable commit, write plus flush, as seen from JavaScript. */
  readonly lastFsyncMs: number;
  /** Readies persisted (including ones with nothing to write). */
  readonly persists: number;
  readonly logEntries: number;
  /** 0 when the log is empty. */
  readonly firstIndex: LogIndex;
  readonly lastIndex: LogIndex;
  /** Bytes of the LMDB data file in use (last page number × page size). */
  readonly logBytesUsed: number;
  readonly snapshotIndex: LogIndex;
  readonly snapshotBytes: number;
}

const hardStateKey = stringKey('hardState');
const snapshotKey = stringKey('snapshot');
const stagedKey = stringKey('staged');

/** The write queue: Readies, and the metadata commits of snapshots this node took itself. */
type PendingPersist =
  | { readonly kind: 'ready'; readonly ready: Ready; readonly done: (error: Error | null) => void }
  | { readonly kind: 'snapshot'; readonly meta: SnapshotMeta; readonly bytes: Uint8Array; readonly done: (error: Error | null, saved: boolean) => void };

interface Installed {
  readonly meta: SnapshotMeta;
  readonly bytes: Uint8Array;
}

type BinaryDb = Database<Buffer, Buffer>;

export class LmdbLogStorage implements ReplicaStorage {
  /** The directory holding the `log` environment and the snapshot files. */
  readonly dir: string;
  /** The LMDB data file, named in error messages. */
  readonly dataFile: string;
  private readonly options: Required<LmdbLogStorageOptions>;
  private readonly root: RootDatabase<Buffer, Buffer>;
  private readonly entries: BinaryDb;
  private readonly state: BinaryDb;
  private readonly chunks: BinaryDb;

  private readonly queue: PendingPersist[] = [];
  private inFlight = false;
  private failure: Error | null = null;
  private closed = false;
  private drained: (() => void) | null = null;

  /** The durable snapshot's metadata and verified bytes, loaded on first use. */
  private snapshotCache: Installed | null = null;

  private fsyncCount = 0;
  private lastFsyncMsValue = 0;
  private persistCount = 0;

  private constructor(dir: string, options: LmdbLogStorageOptions) {
    this.dir = dir;
    const tail = options.compactionTailEntries ?? 64;
    assert(Number.isSafeInteger(tail) && tail >= 0, 'compactionTailEntries must be a non-negative integer');
    this.options = { compactionTailEntries: tail };
    const envDir = path.join(dir, 'log');
    this.dataFile = path.join(envDir, 'data.mdb');
    this.root = open<Buffer, Buffer>({
      path: envDir,
      maxDbs: 3,
      // Durability settings: see the header comment for what each guarantees and where it is documented.
      overlappingSync: false,
      noSync: false,
      noMetaSync: false,
      useWritemap: false,
      // Values are our own checksummed frames and keys our own byte strings: no lmdb-js encoding.
      encoding: 'binary',
      keyEncoding: 'binary',
      cache: false,
      compression: false,
    });
    const db = (name: string): BinaryDb => this.root.openDB<Buffer, Buffer>({ name, encoding: 'binary', keyEncoding: 'binary', cache: false, compression: false });
    this.entries = db('entries');
    this.state = db('state');
    this.chunks = db('chunks');
  }

  /**
   * Opens (creating if needed) the storage in `dir`. Does not read the log: call load(), which is
   * where corruption is reported. Deletes leftover snapshot files that the durable metadata does
   * not name (temp files of an interrupted write, the previous snapshot after a crash).
   */
  static open(dir: string, options: LmdbLogStorageOptions = {}): LmdbLogStorage {
    fs.mkdirSync(dir, { recursive: true });
    const storage = new LmdbLogStorage(dir, options);
    storage.removeStraySnapshotFiles();
    return storage;
  }

  // ---------------------------------------------------------------------------------------------
  // Loading.

  /** What a restarted node finds on disk; null for a directory that was never bootstrapped. */
  load(): PersistentState | null {
    this.assertUsable();
    const hardState = this.readHardState();
    const snapshot = this.readSnapshotMeta();
    const entries = this.readAllEntries();
    if (hardState === null && snapshot === null) {
      if (entries.length > 0) throw new StorageCorruptionError(this.dataFile, `log has ${entries.length} entries but no hard state or snapshot metadata`);
      return null;
    }
    if (hardState === null || snapshot === null) {
      throw new StorageCorruptionError(this.dataFile, `${hardState === null ? 'hard state' : 'snapshot metadata'} is missing while the other is present`);
    }
    this.snapshotFor(snapshot); // verifies the snapshot file now, so a bad one stops the node at start
    return { hardState, snapshot, entries };
  }

  /** Makes a fresh directory hold `state` and the snapshot bytes at state.snapshot, durably. */
  bootstrap(state: PersistentState, snapshotBytes: Uint8Array): void {
    this.assertUsable();
    assert(this.readHardState() === null && this.readSnapshotMeta() === null, `bootstrap of ${this.dir}, which already holds a log`);
    assertContiguous(state.entries);
    const meta = state.snapshot;
    writeSnapshotFile(this.dir, meta.index, meta.term, snapshotBytes);
    this.commitSync(`bootstrapping ${this.dir}`, () => {
      this.state.putSync(hardStateKey, encodeFrame(hardStateKey, encodeHardState(state.hardState)));
      this.state.putSync(snapshotKey, encodeFrame(snapshotKey, encodeSnapshotMeta(meta)));
      for (const entry of state.entries) this.putEntry(entry);
    });
    this.snapshotCache = { meta, bytes: new Uint8Array(snapshotBytes) };
  }

  // ---------------------------------------------------------------------------------------------
  // ReplicaStorage.

  /**
   * Makes a Ready's persistent parts durable in ONE LMDB transaction, in SimDisk's order: stage
   * `snapshotChunks`, install `snapshot` from the staged chunks, truncate the log at
   * `entries[0].index` and append `entries`, write `hardState`. (The ReplicaStorage comment lists
   * install before staging; SimDisk, the reference, stages first, which is what lets one Ready
   * carry the last chunk together with the install of that snapshot. Installing first would
   * install without that chunk, so the reference's order is the one that is right.) Calls done(null) only after the
   * commit, including its fdatasync, has returned; done(error) with a StorageIoError /
   * StorageCorruptionError / AssertionError otherwise, after which the node must stop.
   *
   * done is called from process.nextTick, outside any promise chain, so an exception it throws
   * (Replica throws the error it is given) is an uncaught exception, not a swallowed rejection.
   */
  persist(ready: Ready, done: (error: Error | null) => void): void {
    this.queue.push({ kind: 'ready', ready, done });
    if (!this.inFlight) this.startNext();
  }

  /**
   * Durably stores a snapshot this node took of its own state machine, then compacts the log,
   * keeping `compactionTailEntries` entries at and below the snapshot index like SimDisk. Returns
   * only once both the file and the metadata are on disk (synchronous commit, see header).
   */
  saveSnapshot(meta: SnapshotMeta, bytes: Uint8Array): void {
    this.assertUsable();
    // Persists run in an asynchronous LMDB transaction; a synchronous one now could commit before
    // an earlier Ready's and break the order of events on disk. The Replica never does this.
    assert(!this.inFlight && this.queue.length === 0, 'saveSnapshot while a persist is in flight');
    const current = this.readSnapshotMeta();
    assert(current !== null, 'saveSnapshot before bootstrap');
    assert(meta.index > current.index, `snapshots move forward: have ${current.index}, got ${meta.index}`);
    writeSnapshotFile(this.dir, meta.index, meta.term, bytes);
    const cutoff = meta.index - this.options.compactionTailEntries;
    this.commitSync(`saving snapshot ${meta.index} in ${this.dir}`, () => {
      this.state.putSync(snapshotKey, encodeFrame(snapshotKey, encodeSnapshotMeta(meta)));
      if (cutoff >= 1) this.removeKeys(this.entries, { end: indexKey(cutoff + 1) });
    });
    this.snapshotCache = { meta, bytes: new Uint8Array(bytes) };
    this.removeSnapshotFile(current.index, meta.index);
  }

  /** ReplicaStorage.saveSnapshotFrom: gathers the pieces, then saveSnapshotAsync (this log is kept for migration only). */
  saveSnapshotFrom(
    meta: SnapshotMeta,
    produce: (write: (piece: Uint8Array) => Promise<void>) => Promise<void>,
    done: (error: Error | null, saved: boolean, bytes: number) => void,
  ): void {
    const pieces: Buffer[] = [];
    produce(async (piece) => {
      pieces.push(Buffer.from(piece));
    }).then(
      () => {
        const bytes = Buffer.concat(pieces);
        this.saveSnapshotAsync(meta, bytes, (error, saved) => done(error, saved, bytes.byteLength));
      },
      (error: unknown) => process.nextTick(() => done(error instanceof Error ? error : new Error(String(error)), false, 0)),
    );
  }

  /**
   * saveSnapshot without blocking the event loop, for snapshots of any size: the file is written
   * and fsynced on the thread pool first (nothing names it yet; a crash leaves a stray file that
   * open() deletes), then the metadata commit and the compaction join the persist queue, so they
   * are ordered with the Readies around them exactly as a Ready would be. done(null, true) once
   * the snapshot is the durable current one; done(null, false) if by then the node already had a
   * snapshot at or past `meta.index` (one installed from the leader meanwhile), in which case
   * nothing changed and the file is removed.
   */
  saveSnapshotAsync(meta: SnapshotMeta, bytes: Uint8Array, done: (error: Error | null, saved: boolean) => void): void {
    this.assertUsable();
    writeSnapshotFileAsync(this.dir, meta.index, meta.term, bytes).then(
      () => {
        this.queue.push({ kind: 'snapshot', meta, bytes, done });
        if (!this.inFlight) this.startNext();
      },
      (error: unknown) => {
        const failure = error instanceof Error ? error : new StorageIoError(`saving snapshot ${meta.index}`, error);
        if (this.failure === null) this.failure = failure;
        process.nextTick(() => done(failure, false));
      },
    );
  }

  readSnapshotChunk(index: LogIndex, offset: number, bytesMax: number): { data: Uint8Array; done: boolean } | null {
    const snapshot = this.loadSnapshot();
    if (snapshot === null || snapshot.meta.index !== index || offset > snapshot.bytes.byteLength) return null;
    const end = Math.min(snapshot.bytes.byteLength, offset + bytesMax);
    return { data: snapshot.bytes.subarray(offset, end), done: end === snapshot.bytes.byteLength };
  }

  /**
   * The latest durable snapshot, its file verified (header, length, CRC) when first read; the
   * verified bytes are then kept in memory, so later chunk reads never serve unverified bytes.
   */
  loadSnapshot(): { meta: SnapshotMeta; bytes: Uint8Array } | null {
    this.assertUsable();
    const meta = this.readSnapshotMeta();
    if (meta === null) return null;
    return this.snapshotFor(meta);
  }

  // ---------------------------------------------------------------------------------------------
  // Lifecycle and metrics.

  stats(): LogStorageStats {
    const first = this.firstKey(this.entries);
    const last = this.lastKey(this.entries);
    const entryStats = this.entries.getStats() as { entryCount: number };
    const rootStats = this.root.getStats() as { lastPageNumber: number; pageSize: number };
    return {
      fsyncs: this.fsyncCount,
      lastFsyncMs: this.lastFsyncMsValue,
      persists: this.persistCount,
      logEntries: entryStats.entryCount,
      firstIndex: first ?? 0,
      lastIndex: last ?? 0,
      logBytesUsed: (rootStats.lastPageNumber + 1) * rootStats.pageSize,
      snapshotIndex: this.snapshotCache?.meta.index ?? this.readSnapshotMeta()?.index ?? 0,
      snapshotBytes: this.snapshotCache?.bytes.byteLength ?? 0,
    };
  }

  /** Waits for persists already issued, then closes the environment. Later persists fail. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.inFlight || this.queue.length > 0) {
      await new Promise<void>((resolve) => {
        this.drained = resolve;
      });
    }
    this.closed = true;
    await this.root.close();
  }

  // ---------------------------------------------------------------------------------------------
  // The persist pipeline.

  private startNext(): void {
    const item = this.queue.shift();
    if (item === undefined) {
      const drained = this.drained;
      this.drained = null;
      drained?.();
      return;
    }
    this.inFlight = true;
    const what = item.kind === 'ready' ? `persist of Ready #${item.ready.number}` : `commit of snapshot ${item.meta.index}`;
    if (this.closed) return this.finish(item, new StorageIoError(what, new Error(`storage in ${this.dir} is closed`)));
    if (this.failure !== null) return this.finish(item, this.failure);
    if (item.kind === 'snapshot') return this.commitOwnSnapshot(item);
    const ready = item.ready;
    if (!hasDurableParts(ready)) return this.finish(item, null);

    let installed: Installed | null = null;
    const started = performance.now();
    let commit: Promise<void>;
    try {
      commit = this.root.childTransaction(() => {
        // lmdb-js starts each event-turn batch with an internal commit promise that nobody awaits
        // (write.js: writeBatchStart = writeInstructions(1, store)); when a commit fails (EIO,
        // ENOSPC) it rejects unhandled and Node would crash the process before done(error) could
        // be acted on. `committed` is that promise while the batch runs: observe it. The failure
        // itself reaches done through `commit` below.
        this.root.committed.then(undefined, () => undefined);
        installed = this.applyReady(ready);
      });
    } catch (error) {
      return this.finish(item, this.describeFailure(ready, error));
    }
    commit.then(
      () => {
        this.fsyncCount += 1;
        this.lastFsyncMsValue = performance.now() - started;
        if (installed !== null) this.afterInstall(installed);
        this.finish(item, null);
      },
      (error: unknown) => {
        void commitErrorDetail(error).then((detail) => this.finish(item, this.describeFailure(ready, detail)));
      },
    );
  }

  /** The queued half of saveSnapshotAsync: one asynchronous, flushed LMDB commit. */
  private commitOwnSnapshot(item: Extract<PendingPersist, { kind: 'snapshot' }>): void {
    const { meta } = item;
    const current = this.readSnapshotMeta();
    assert(current !== null, 'saveSnapshot before bootstrap');
    if (current.index >= meta.index) {
      this.removeSnapshotFile(meta.index, current.index);
      return this.finish(item, null, false);
    }
    const cutoff = meta.index - this.options.compactionTailEntries;
    const started = performance.now();
    let commit: Promise<void>;
    try {
      commit = this.root.childTransaction(() => {
        this.root.committed.then(undefined, () => undefined); // see startNext
        this.state.putSync(snapshotKey, encodeFrame(snapshotKey, encodeSnapshotMeta(meta)));
        if (cutoff >= 1) this.removeKeys(this.entries, { end: indexKey(cutoff + 1) });
      });
    } catch (error) {
      return this.finish(item, new StorageIoError(`saving snapshot ${meta.index} in ${this.dir}`, error), false);
    }
    commit.then(
      () => {
        this.fsyncCount += 1;
        this.lastFsyncMsValue = performance.now() - started;
        this.snapshotCache = { meta, bytes: item.bytes };
        this.removeSnapshotFile(current.index, meta.index);
        this.finish(item, null, true);
      },
      (error: unknown) => {
        void commitErrorDetail(error).then((detail) => this.finish(item, new StorageIoError(`saving snapshot ${meta.index} in ${this.dir}`, detail), false));
      },
    );
  }

  private finish(item: PendingPersist, error: Error | null, saved = false): void {
    if (error !== null && this.failure === null) this.failure = error;
    this.persistCount += 1;
    this.inFlight = false;
    process.nextTick(() => {
      try {
        if (item.kind === 'ready') item.done(error);
        else item.done(error, saved);
      } finally {
        // Even if done threw, persists issued after this one still complete (with the failure).
        if (!this.inFlight) this.startNext();
      }
    });
  }

  private describeFailure(ready: Ready, error: unknown): Error {
    if (error instanceof StorageCorruptionError || error instanceof StorageIoError || error instanceof AssertionError) return error;
    return new StorageIoError(`persisting Ready #${ready.number} to ${this.dataFile} failed`, error);
  }

  /** Runs inside the LMDB write transaction; throwing aborts all of it. */
  private applyReady(ready: Ready): Installed | null {
    // 1. Stage chunks (SimDisk.applyReady): a chunk at offset 0, or of another snapshot, restarts
    //    staging; a chunk that does not continue the staged bytes exactly is ignored.
    let staged = this.readStaged();
    for (const chunk of ready.snapshotChunks) {
      if (chunk.offset === 0 || staged?.meta.index !== chunk.snapshot.index) {
        // clearSync inside a transaction callback runs in that transaction (lmdb-js runs a nested
        // synchronous transaction in the current one), so an abort restores the old chunks too.
        this.chunks.clearSync();
        staged = { meta: chunk.snapshot, bytes: 0 };
      }
      if (staged.bytes !== chunk.offset) continue;
      const key = indexKey(chunk.offset);
      this.chunks.putSync(key, encodeFrame(key, chunk.data));
      staged = { meta: staged.meta, bytes: staged.bytes + chunk.data.byteLength };
    }
    if (staged !== null && ready.snapshotChunks.length > 0) this.state.putSync(stagedKey, encodeFrame(stagedKey, encodeStaged(staged)));

    // 2. Install the staged snapshot: its file first (durable before this transaction commits),
    //    then drop the log up to its index, and the rest too unless the entry at its index has its
    //    term (a log that disagrees with the snapshot is discarded whole).
    let installed: Installed | null = null;
    if (ready.snapshot !== null) {
      const meta = ready.snapshot;
      assert(staged !== null && staged.meta.index === meta.index, `snapshot ${meta.index} installed without its chunks`);
      const bytes = this.readStagedBytes(staged);
      writeSnapshotFile(this.dir, meta.index, meta.term, bytes);
      const keep = this.termAt(meta.index) === meta.term;
      if (keep) this.removeKeys(this.entries, { end: indexKey(meta.index + 1) });
      else this.entries.clearSync();
      this.state.putSync(snapshotKey, encodeFrame(snapshotKey, encodeSnapshotMeta(meta)));
      this.chunks.clearSync();
      this.state.removeSync(stagedKey);
      installed = { meta, bytes };
    }

    // 3. Truncate at entries[0].index and append.
    const first = ready.entries[0];
    if (first !== undefined) {
      assertContiguous(ready.entries);
      const last = this.lastKey(this.entries);
      if (last !== null) {
        assert(first.index <= last + 1, `disk log must stay contiguous: last ${last}, appending ${first.index}`);
        this.removeKeys(this.entries, { start: indexKey(first.index) });
      } else {
        const snapshotIndex = this.readSnapshotMeta()?.index ?? 0;
        assert(first.index <= snapshotIndex + 1, `disk log must follow the snapshot: snapshot ${snapshotIndex}, appending ${first.index}`);
      }
      for (const entry of ready.entries) this.putEntry(entry);
    }

    // 4. Hard state.
    if (ready.hardState !== null) this.state.putSync(hardStateKey, encodeFrame(hardStateKey, encodeHardState(ready.hardState)));
    return installed;
  }

  private afterInstall(installed: Installed): void {
    const previous = this.snapshotCache?.meta.index ?? null;
    this.snapshotCache = installed;
    if (previous !== null) this.removeSnapshotFile(previous, installed.meta.index);
  }

  // ---------------------------------------------------------------------------------------------
  // Records.

  private putEntry(entry: Entry): void {
    const key = indexKey(entry.index);
    this.entries.putSync(key, encodeFrame(key, encodeEntry(entry)));
  }

  private readEntry(index: LogIndex): Entry | null {
    const key = indexKey(index);
    const frame = this.entries.getBinary(key);
    if (frame === undefined) return null;
    return this.decodeEntryRecord(key, frame);
  }

  private decodeEntryRecord(key: Uint8Array, frame: Uint8Array): Entry {
    const index = readIndexKey(this.dataFile, key);
    const what = `log entry ${index}`;
    const entry = decodeEntry(this.dataFile, what, decodeFrame(this.dataFile, what, key, frame));
    if (entry.index !== index) throw new StorageCorruptionError(this.dataFile, `${what} holds entry ${entry.index}`);
    return entry;
  }

  private readAllEntries(): Entry[] {
    const entries: Entry[] = [];
    for (const { key, value } of this.entries.getRange({})) {
      const entry = this.decodeEntryRecord(key, value);
      const previous = entries[entries.length - 1];
      if (previous !== undefined && entry.index !== previous.index + 1) {
        throw new StorageCorruptionError(this.dataFile, `log has a hole: entry ${previous.index} is followed by ${entry.index}`);
      }
      entries.push(entry);
    }
    return entries;
  }

  private termAt(index: LogIndex): Term | undefined {
    const snapshot = this.readSnapshotMeta();
    if (snapshot !== null && index === snapshot.index) return snapshot.term;
    return this.readEntry(index)?.term;
  }

  private readHardState(): HardState | null {
    const frame = this.state.getBinary(hardStateKey);
    if (frame === undefined) return null;
    return decodeHardState(this.dataFile, decodeFrame(this.dataFile, 'hard state', hardStateKey, frame));
  }

  private readSnapshotMeta(): SnapshotMeta | null {
    const frame = this.state.getBinary(snapshotKey);
    if (frame === undefined) return null;
    return decodeSnapshotMeta(this.dataFile, decodeFrame(this.dataFile, 'snapshot metadata', snapshotKey, frame));
  }

  private readStaged(): StagedSnapshot | null {
    const frame = this.state.getBinary(stagedKey);
    if (frame === undefined) return null;
    return decodeStaged(this.dataFile, decodeFrame(this.dataFile, 'staged snapshot record', stagedKey, frame));
  }

  private readStagedBytes(staged: StagedSnapshot): Uint8Array {
    const bytes = new Uint8Array(staged.bytes);
    let offset = 0;
    for (const { key, value } of this.chunks.getRange({})) {
      const at = readIndexKey(this.dataFile, key);
      const what = `staged chunk at offset ${at} of snapshot ${staged.meta.index}`;
      const data = decodeFrame(this.dataFile, what, key, value);
      if (at !== offset || offset + data.byteLength > staged.bytes) {
        throw new StorageCorruptionError(this.dataFile, `${what} does not continue the ${offset} bytes staged before it`);
      }
      bytes.set(data, offset);
      offset += data.byteLength;
    }
    if (offset !== staged.bytes) throw new StorageCorruptionError(this.dataFile, `snapshot ${staged.meta.index} has ${offset} staged bytes, its record says ${staged.bytes}`);
    return bytes;
  }

  private snapshotFor(meta: SnapshotMeta): Installed {
    const cached = this.snapshotCache;
    if (cached !== null && cached.meta.index === meta.index && cached.meta.term === meta.term) return { meta, bytes: cached.bytes };
    const bytes = readSnapshotFile(this.dir, meta.index, meta.term);
    this.snapshotCache = { meta, bytes };
    return this.snapshotCache;
  }

  private firstKey(db: BinaryDb): LogIndex | null {
    for (const key of db.getKeys({ limit: 1 })) return readIndexKey(this.dataFile, key);
    return null;
  }

  private lastKey(db: BinaryDb): LogIndex | null {
    for (const key of db.getKeys({ reverse: true, limit: 1 })) return readIndexKey(this.dataFile, key);
    return null;
  }

  /** Removes every key in [start, end); keys are collected first so no cursor sees its own deletes. */
  private removeKeys(db: BinaryDb, range: { start?: Buffer; end?: Buffer }): void {
    const keys = [...db.getKeys(range)].map((key) => Buffer.from(key));
    for (const key of keys) db.removeSync(key);
  }

  /** A synchronous, flushed commit (see header); disk errors become StorageIoError. */
  private commitSync(what: string, body: () => void): void {
    try {
      this.root.transactionSync(body);
    } catch (error) {
      if (error instanceof StorageCorruptionError || error instanceof AssertionError || error instanceof StorageIoError) throw error;
      throw new StorageIoError(`${what}: LMDB commit to ${this.dataFile} failed`, error);
    }
    this.fsyncCount += 1;
  }

  // ---------------------------------------------------------------------------------------------
  // Snapshot files.

  private removeSnapshotFile(index: LogIndex, current: LogIndex): void {
    if (index === current) return;
    // Best effort: a file left behind is garbage that the next open() removes.
    fs.rmSync(path.join(this.dir, snapshotFileName(index)), { force: true });
  }

  private removeStraySnapshotFiles(): void {
    let current: number | null;
    try {
      current = this.readSnapshotMeta()?.index ?? null;
    } catch {
      return; // unreadable metadata: delete nothing, load() will report the corruption
    }
    for (const name of fs.readdirSync(this.dir)) {
      const match = snapshotFilePattern.exec(name);
      if (match === null) continue;
      const isTemp = match[2] !== undefined;
      if (isTemp || Number(match[1]) !== current) fs.rmSync(path.join(this.dir, name), { force: true });
    }
  }

  private assertUsable(): void {
    assert(!this.closed, `storage in ${this.dir} is closed`);
  }
}

/**
 * lmdb-js rejects a failed asynchronous commit with "Commit failed (see commitError for details)"
 * and rejects `error.commitError` with the LMDB error itself (write.js rejectCommit/startWriting).
 * Returns that inner error when it arrives (it is settled in the same callback), else the outer.
 */
async function commitErrorDetail(error: unknown): Promise<unknown> {
  const inner = typeof error === 'object' && error !== null ? (error as { commitError?: unknown }).commitError : undefined;
  if (!(inner instanceof Promise)) return error;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([inner, new Promise((resolve) => { timer = setTimeout(resolve, 1000); })]);
    return error;
  } catch (detail) {
    return detail;
  } finally {
    clearTimeout(timer);
  }
}
