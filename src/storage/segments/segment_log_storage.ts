/**
 * SegmentLogStorage: the durable ReplicaStorage of one node as a write-ahead log of segment
 * files, a drop-in replacement for LmdbLogStorage (lmdb/log_storage.ts) with the same semantics
 * and the simulator's SimDisk (src/sim/sim_disk.ts) as its reference model. Each Ready with
 * something durable costs ONE write and ONE fdatasync of the current segment; LMDB's commit cost
 * about four times that, and its page management most of the per-entry CPU.
 *
 * Layout of `dir`:
 *   wal/<20-digit sequence>.wal   segments of records (format: wal_format.ts, replay: replay.ts)
 *   snapshot-<index>.bin          the current snapshot (lmdb/snapshot_file.ts, shared with LMDB)
 *   staging-<index>-<term>.bin    a snapshot being received in chunks (snapshot_staging.ts)
 *
 * Not responsible for: the document state, deciding what to persist (the consensus core does),
 * or recovering from errors: a disk error or corruption is reported and the caller stops the node.
 *
 * Writing a Ready (persist), in SimDisk's order:
 *   1. snapshotChunks: appended to the staging file, which is fdatasynced (not when the same Ready
 *      installs: then the snapshot file written in step 2 is what must be durable);
 *   2. snapshot: the staged bytes become `snapshot-<index>.bin` (temp, fsync, rename, fsync dir,
 *      on the thread pool), then a SNAPSHOT record saying whether the log was kept past the index
 *      or dropped (decided from the terms held in memory, exactly like SimDisk's termAt);
 *   3. entries: one ENTRY record each (appending index i supersedes everything >= i on replay);
 *   4. hardState: a HARD_STATE record.
 * The records of steps 2-4 are encoded into one reusable buffer, the last one carrying the
 * end-of-write mark, written with one fs.write at the end of the current segment and made
 * durable with one fdatasync, both on the thread pool; done is called only after the fdatasync
 * returned. Then (installs only) the staging file and the previous snapshot file are removed.
 * Nothing on this path blocks the event loop except those two rare unlinks and, on rotation,
 * closing the previous segment's descriptor (asynchronously too).
 *
 * Segments: when the current segment has reached `segmentBytes` (64 MiB), the next Ready goes to
 * a new segment, created with O_EXCL, whose first record is a CHECKPOINT of the hard state and
 * snapshot metadata before that Ready; the new file is fdatasynced and the directory fsynced
 * before the Ready is acknowledged. After any write, whole segments at the front that hold no
 * entry still in the log (every ENTRY index below the log's first index, or the log is empty)
 * and are not the current one are deleted: replay from the oldest remaining segment's checkpoint
 * gives the same state (replay.ts). A crash can leave a deleted segment's file behind; a gap in
 * the sequence numbers shows that everything before it was deleted, and open removes it.
 *
 * Durability and crashes: a crash during an append leaves at most a torn tail in the last
 * segment (nothing acknowledged is ever rewritten, and a segment stops being the last only once
 * the next one is durable). Replay applies a write only once its end-of-write record is read, so
 * a torn Ready is dropped whole, never half applied (wal_format.ts). Opening cuts the last segment
 * after its last complete write (ftruncate + fsync) and reports the dropped bytes in `recovery`;
 * an invalid record or an incomplete write in an earlier segment is StorageCorruptionError. A
 * limitation that follows: a flipped bit inside the last segment is indistinguishable from a torn
 * write and loses the records after it (`recovery.tornTail` says where and how many bytes, for the
 * operator's log).
 *
 * Memory: the log's entries are read only by load(); the storage keeps the term of every index it
 * holds (one number per entry, for the install decision and the checks), the hard state, the
 * snapshot metadata, each segment's size and highest entry index, and (like LmdbLogStorage) the
 * verified bytes of the current snapshot once they have been needed.
 *
 * Invariants (as LmdbLogStorage's):
 * - Persists complete, and call done, in call order, one at a time, from process.nextTick (a
 *   Ready with nothing durable from setImmediate, so that I/O is read between such Readies).
 * - A Ready with nothing durable (common/ready.ts hasDurableParts) completes without touching the
 *   disk; every other one is fdatasynced whatever its mustSync says.
 * - The snapshot file named by the durable metadata exists and verifies: it is durable before the
 *   record naming it is written. Any other snapshot file is garbage, removed after the write or at
 *   the next open.
 * - Every record read back is checksummed; a failure is StorageCorruptionError naming the file
 *   and the record, and nothing is served.
 * - After the first error every further persist fails with it: the node must stop.
 */
import fs from 'node:fs';
import path from 'node:path';
import { AssertionError, assert } from '../../shared/assert.ts';
import type { PersistentState } from '../../consensus/raft_core.ts';
import type { Entry, HardState, LogIndex, Ready, SnapshotChunk, SnapshotMeta, Term } from '../../consensus/types.ts';
import type { ReplicaStorage } from '../../replica/replica.ts';
import { StorageCorruptionError, StorageIoError } from '../errors.ts';
import { assertContiguous, hasDurableParts } from '../common/ready.ts';
import { fsyncDirectory, writeFileDurably } from '../lmdb/fs_util.ts';
import type { LogStorageStats } from '../lmdb/log_storage.ts';
import { readSnapshotBody, readSnapshotFile, snapshotFileName, snapshotFilePattern, verifySnapshotFile, writeSnapshotFile, writeSnapshotFileAsync, writeSnapshotFileFrom } from '../lmdb/snapshot_file.ts';
import { LogWindow } from './log_window.ts';
import { replaySegments, type SegmentSource } from './replay.ts';
import {
  encodeStagingFrames, planStaging, readStagedBytes, scanStagingFile, stagingFileName, stagingFilePattern, type Staged,
} from './snapshot_staging.ts';
import { RecordEncoder, SnapshotAction, segmentFileName, segmentFilePattern, segmentTempFilePattern } from './wal_format.ts';

export interface SegmentLogStorageOptions {
  /**
   * How many entries at and below a snapshot this node took itself are kept, so that slightly
   * lagging followers can still be caught up from the log. SimDisk keeps 64.
   */
  readonly compactionTailEntries?: number;
  /** A new segment is started once the current one holds at least this many bytes. */
  readonly segmentBytes?: number;
}

/** What open() repaired, for the server to log as a warning. All empty after a clean shutdown. */
export interface SegmentRecovery {
  /** The torn tail cut off the last segment: where, how many bytes, and the first problem seen. */
  readonly tornTail: { readonly file: string; readonly offset: number; readonly bytes: number; readonly reason: string } | null;
  /**
   * Segment files removed: a last segment without a complete first write (a rotation the crash
   * interrupted before anything in it was acknowledged), or files before a gap in the sequence
   * (deleted segments whose unlink the crash undid).
   */
  readonly removedSegments: readonly string[];
  /** Staging files removed (stale, or more than one) and bytes cut off a damaged staging tail. */
  readonly removedStagingFiles: readonly string[];
  readonly stagingBytesDropped: number;
}

/** The write queue: Readies, and the metadata commits of snapshots this node took itself. */
type PendingPersist =
  | { readonly kind: 'ready'; readonly ready: Ready; readonly done: (error: Error | null) => void }
  | { readonly kind: 'snapshot'; readonly meta: SnapshotMeta; readonly bodyBytes: number; readonly done: (error: Error | null, saved: boolean) => void };

interface Installed {
  readonly meta: SnapshotMeta;
  readonly bytes: Uint8Array;
}

interface Segment {
  readonly sequence: number;
  readonly file: string;
  /** Durable bytes: appends go here. */
  size: number;
  /** The highest index of any ENTRY record in it; 0 if none. */
  maxEntryIndex: number;
}

const defaultSegmentBytes = 64 * 1024 * 1024;

export class SegmentLogStorage implements ReplicaStorage {
  /** The directory holding `wal/`, the snapshot files and the staging file. */
  readonly dir: string;
  readonly walDir: string;
  private readonly options: Required<SegmentLogStorageOptions>;

  private readonly queue: PendingPersist[] = [];
  private inFlight = false;
  private failure: Error | null = null;
  private closed = false;
  /** saveSnapshotAsync file writes not yet queued; close() waits for them too. */
  private snapshotWrites = 0;
  private idleWaiters: Array<() => void> = [];

  // The durable state, as far as it is kept in memory. Null/empty until recover() ran; hard state
  // and snapshot stay null for a directory that was never bootstrapped.
  private recovered = false;
  private hardState: HardState | null = null;
  private snapshotMeta: SnapshotMeta | null = null;
  /** The term of every index in the log. */
  private readonly terms = new LogWindow<Term>();
  /** Oldest first; the last one is open (`fd`) and receives appends. */
  private segments: Segment[] = [];
  private fd: number | null = null;
  private staged: Staged | null = null;
  /** The entries replayed at open, handed to the first load() so it need not read them again. */
  private replayedEntries: Entry[] | null = null;
  private recoveryInfo: SegmentRecovery | null = null;

  /**
   * The durable snapshot once its file is known good (this process wrote it, or verified it once)
   * and the length of its body. Chunks for followers are read from the file, never kept in memory:
   * a copy of the whole state held for the node's lifetime was most of a node's memory at scale.
   */
  private snapshotOnDisk: { readonly meta: SnapshotMeta; readonly bodyBytes: number } | null = null;
  private readonly encoder = new RecordEncoder();
  /** Deletions of old segments, best effort, in order; close() waits for them. */
  private background: Promise<void> = Promise.resolve();

  private fsyncCount = 0;
  private lastFsyncMsValue = 0;
  private persistCount = 0;

  private constructor(dir: string, options: SegmentLogStorageOptions) {
    this.dir = dir;
    this.walDir = path.join(dir, 'wal');
    const tail = options.compactionTailEntries ?? 64;
    assert(Number.isSafeInteger(tail) && tail >= 0, 'compactionTailEntries must be a non-negative integer');
    const segmentBytes = options.segmentBytes ?? defaultSegmentBytes;
    assert(Number.isSafeInteger(segmentBytes) && segmentBytes >= 1, 'segmentBytes must be a positive integer');
    this.options = { compactionTailEntries: tail, segmentBytes };
  }

  /**
   * Opens (creating if needed) the storage in `dir` and recovers it: replays the segments, cuts a
   * torn tail off the last one, removes leftover files (see `recovery`) and snapshot files the
   * durable metadata does not name. Corruption is not thrown here but by load() (and by every
   * other call), as LmdbLogStorage does.
   */
  static open(dir: string, options: SegmentLogStorageOptions = {}): SegmentLogStorage {
    fs.mkdirSync(path.join(dir, 'wal'), { recursive: true });
    const storage = new SegmentLogStorage(dir, options);
    try {
      storage.ensureRecovered();
    } catch {
      // Reported by load(), which runs the recovery again.
    }
    return storage;
  }

  /** What open() found and repaired; null until the recovery succeeded. */
  get recovery(): SegmentRecovery | null {
    return this.recoveryInfo;
  }

  // ---------------------------------------------------------------------------------------------
  // Loading.

  /**
   * What a restarted node finds on disk; null for a directory that was never bootstrapped. The
   * first call after open returns the entries replayed by open; later calls read the segments
   * again (up to what is durable, so a persist in flight is not seen).
   */
  load(): PersistentState | null {
    this.assertUsable();
    this.ensureRecovered();
    if (this.hardState === null || this.snapshotMeta === null) return null;
    let state: PersistentState;
    if (this.replayedEntries !== null) {
      state = { hardState: this.hardState, snapshot: this.snapshotMeta, entries: this.replayedEntries };
      this.replayedEntries = null;
    } else {
      state = this.reread();
    }
    this.verifiedSnapshotBytes(state.snapshot); // verifies the snapshot file now (in slices), so a bad one stops the node at start
    return state;
  }

  /** Makes a fresh directory hold `state` and the snapshot bytes at state.snapshot, durably. */
  bootstrap(state: PersistentState, snapshotBytes: Uint8Array): void {
    this.assertUsable();
    this.ensureRecovered();
    assert(this.hardState === null && this.snapshotMeta === null, `bootstrap of ${this.dir}, which already holds a log`);
    assertContiguous(state.entries);
    const meta = state.snapshot;
    writeSnapshotFile(this.dir, meta.index, meta.term, snapshotBytes);
    const encoder = this.encoder;
    encoder.reset();
    encoder.checkpoint(state.hardState, meta);
    let maxEntryIndex = 0;
    for (const entry of state.entries) {
      encoder.entry(entry);
      maxEntryIndex = Math.max(maxEntryIndex, entry.index);
    }
    encoder.seal();
    const file = path.join(this.walDir, segmentFileName(1));
    try {
      // temp, fsync, rename, fsync wal/: a crash leaves no segment or the complete first one.
      writeFileDurably(file, [encoder.bytes]);
      fsyncDirectory(this.dir); // wal/ itself may be new
      this.fd = fs.openSync(file, 'r+');
    } catch (error) {
      throw new StorageIoError(`bootstrapping ${this.dir}: writing ${file} failed`, error);
    }
    this.fsyncCount += 1;
    this.segments = [{ sequence: 1, file, size: encoder.length, maxEntryIndex }];
    this.hardState = state.hardState;
    this.snapshotMeta = meta;
    for (const entry of state.entries) this.terms.put(entry.index, entry.term);
    this.replayedEntries = null;
    this.snapshotOnDisk = { meta, bodyBytes: snapshotBytes.byteLength };
  }

  // ---------------------------------------------------------------------------------------------
  // ReplicaStorage.

  /**
   * Makes a Ready's persistent parts durable (see the header for the order and the I/O). Calls
   * done(null) only after the segment's fdatasync returned; done(error) with a StorageIoError /
   * StorageCorruptionError / AssertionError otherwise, after which the node must stop.
   *
   * done is called from process.nextTick (or setImmediate), outside any promise chain, so an exception it throws
   * (Replica throws the error it is given) is an uncaught exception, not a swallowed rejection.
   */
  persist(ready: Ready, done: (error: Error | null) => void): void {
    this.queue.push({ kind: 'ready', ready, done });
    if (!this.inFlight) this.startNext();
  }

  /**
   * Durably stores a snapshot this node took of its own state machine, then compacts the log,
   * keeping `compactionTailEntries` entries at and below the snapshot index like SimDisk. Returns
   * only once the file and the SNAPSHOT record are on disk (synchronous writes and syncs: this
   * blocks the event loop; the server uses saveSnapshotAsync).
   */
  saveSnapshot(meta: SnapshotMeta, bytes: Uint8Array): void {
    this.assertUsable();
    this.ensureRecovered();
    // A synchronous write now could land before an in-flight Ready's and break the order on disk.
    assert(!this.inFlight && this.queue.length === 0, 'saveSnapshot while a persist is in flight');
    if (this.failure !== null) throw this.failure;
    const current = this.snapshotMeta;
    assert(current !== null, 'saveSnapshot before bootstrap');
    assert(meta.index > current.index, `snapshots move forward: have ${current.index}, got ${meta.index}`);
    writeSnapshotFile(this.dir, meta.index, meta.term, bytes);
    const cutoff = meta.index - this.options.compactionTailEntries;
    const rotate = this.encodeStart();
    this.encoder.snapshot(SnapshotAction.compact, cutoff, meta);
    this.encoder.seal();
    try {
      this.appendSync(rotate, 0, `saving snapshot ${meta.index}`);
    } catch (error) {
      if (this.failure === null) this.failure = error as Error;
      throw error;
    }
    this.snapshotMeta = meta;
    this.terms.dropThrough(cutoff);
    this.snapshotOnDisk = { meta, bodyBytes: bytes.byteLength };
    this.removeSnapshotFileSync(current.index, meta.index);
    this.collectSegments();
  }

  /**
   * saveSnapshot without blocking the event loop: the file is written and fsynced on the thread
   * pool first (nothing names it yet; a crash leaves a stray file that open() deletes), then the
   * SNAPSHOT record joins the persist queue, so it is ordered with the Readies around it exactly
   * as a Ready would be. done(null, true) once the snapshot is the durable current one;
   * done(null, false) if by then the node already had a snapshot at or past `meta.index` (one
   * installed from the leader meanwhile), in which case nothing changed and the file is removed.
   */
  saveSnapshotAsync(meta: SnapshotMeta, bytes: Uint8Array, done: (error: Error | null, saved: boolean) => void): void {
    this.saveSnapshotFrom(meta, (write) => write(bytes), (error, saved) => done(error, saved));
  }

  /**
   * saveSnapshotAsync for a snapshot produced piece by piece (the state machine streams its state
   * into the file: no copy of the whole state in memory). done() as for saveSnapshotAsync, plus
   * the snapshot's length; an error thrown by `produce` reaches done() as it is.
   */
  saveSnapshotFrom(
    meta: SnapshotMeta,
    produce: (write: (piece: Uint8Array) => Promise<void>) => Promise<void>,
    done: (error: Error | null, saved: boolean, bytes: number) => void,
  ): void {
    this.assertUsable();
    this.snapshotWrites += 1;
    writeSnapshotFileFrom(this.dir, meta.index, meta.term, produce).then(
      (bodyBytes) => {
        this.snapshotWrites -= 1;
        this.queue.push({ kind: 'snapshot', meta, bodyBytes, done: (error, saved) => done(error, saved, bodyBytes) });
        if (!this.inFlight) this.startNext();
      },
      (error: unknown) => {
        this.snapshotWrites -= 1;
        const failure = error instanceof Error ? error : new StorageIoError(`saving snapshot ${meta.index}`, error);
        if (this.failure === null && failure instanceof StorageIoError) this.failure = failure;
        process.nextTick(() => {
          try {
            done(failure, false, 0);
          } finally {
            this.notifyIfIdle();
          }
        });
      },
    );
  }


  readSnapshotChunk(index: LogIndex, offset: number, bytesMax: number): { data: Uint8Array; done: boolean } | null {
    this.assertUsable();
    this.ensureRecovered();
    const meta = this.snapshotMeta;
    if (meta === null || meta.index !== index) return null;
    const bodyBytes = this.verifiedSnapshotBytes(meta);
    if (offset > bodyBytes) return null;
    const end = Math.min(bodyBytes, offset + bytesMax);
    return { data: readSnapshotBody(this.dir, index, offset, end - offset), done: end === bodyBytes };
  }

  /**
   * The latest durable snapshot, its file verified (header, length, CRC) as it is read. Read from
   * disk on every call (restores and installs are rare; the bytes are not kept).
   */
  loadSnapshot(): { meta: SnapshotMeta; bytes: Uint8Array } | null {
    this.assertUsable();
    this.ensureRecovered();
    const meta = this.snapshotMeta;
    if (meta === null) return null;
    return this.snapshotFor(meta);
  }

  // ---------------------------------------------------------------------------------------------
  // Lifecycle and metrics.

  /**
   * `fsyncs` counts the sync calls of the write path: one fdatasync per Ready with a durable part
   * (plus one for the staging file of snapshot chunks, and a directory fsync when a segment or
   * staging file is created); `logBytesUsed` is the size of the live segment files.
   */
  stats(): LogStorageStats {
    this.ensureRecovered();
    const size = this.terms.size;
    return {
      fsyncs: this.fsyncCount,
      lastFsyncMs: this.lastFsyncMsValue,
      persists: this.persistCount,
      logEntries: size,
      firstIndex: size > 0 ? this.terms.first : 0,
      lastIndex: size > 0 ? this.terms.last : 0,
      logBytesUsed: this.segments.reduce((sum, segment) => sum + segment.size, 0),
      snapshotIndex: this.snapshotMeta?.index ?? 0,
      snapshotBytes: this.snapshotOnDisk?.bodyBytes ?? 0,
    };
  }

  /**
   * Waits for persists already issued (saveSnapshotAsync calls included, whose file may still be
   * being written), then closes the segment. Later persists fail.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    while (this.inFlight || this.queue.length > 0 || this.snapshotWrites > 0) {
      await new Promise<void>((resolve) => {
        this.idleWaiters.push(resolve);
      });
    }
    this.closed = true;
    if (this.fd !== null) {
      const fd = this.fd;
      this.fd = null;
      await new Promise<void>((resolve) => fs.close(fd, () => resolve()));
    }
    await this.background;
  }

  // ---------------------------------------------------------------------------------------------
  // Recovery.

  private ensureRecovered(): void {
    if (this.recovered) return;
    try {
      this.recover();
    } catch (error) {
      throw describeFailure(`opening the log in ${this.dir}`, error);
    }
  }

  /**
   * Replays the segments and sets up the in-memory state. Everything that can fail for corruption
   * is checked before anything on disk is changed, so a corrupt directory is left as it was.
   */
  private recover(): void {
    const removedSegments: string[] = [];
    const sequences: number[] = [];
    for (const name of fs.readdirSync(this.walDir)) {
      if (segmentTempFilePattern.test(name)) fs.rmSync(path.join(this.walDir, name), { force: true }); // an interrupted bootstrap
      const match = segmentFilePattern.exec(name);
      if (match !== null) sequences.push(Number(match[1]));
    }
    sequences.sort((a, b) => a - b);
    // Segments are created in sequence and deleted oldest first: files before a gap are deleted
    // segments that a crash brought back (their unlinks were not yet durable). Drop them.
    let start = 0;
    for (let i = 1; i < sequences.length; i += 1) if (sequences[i] !== (sequences[i - 1] as number) + 1) start = i;
    const stale = sequences.slice(0, start).map((sequence) => path.join(this.walDir, segmentFileName(sequence)));
    const live = sequences.slice(start);

    if (live.length === 0) {
      this.removeStraySnapshotAndStagingFiles(null);
      this.recoveryInfo = { tornTail: null, removedSegments: [], removedStagingFiles: [], stagingBytesDropped: 0 };
      this.recovered = true;
      return;
    }

    const sources: SegmentSource[] = live.map((sequence) => {
      const file = path.join(this.walDir, segmentFileName(sequence));
      return { sequence, file, read: () => this.readSegment(file) };
    });
    const result = replaySegments(sources, true);

    // From here on only repairs: nothing acknowledged is touched.
    try {
      for (const file of stale) {
        fs.rmSync(file, { force: true });
        removedSegments.push(file);
      }
      if (result.abandoned !== null) {
        fs.rmSync(result.abandoned.file, { force: true });
        removedSegments.push(result.abandoned.file);
      }
      if (removedSegments.length > 0) fsyncDirectory(this.walDir);
      const last = result.segments[result.segments.length - 1];
      assert(last !== undefined, 'replay returns at least one segment');
      const fd = fs.openSync(last.file, 'r+');
      try {
        if (result.tornTail !== null) {
          fs.ftruncateSync(fd, result.tornTail.offset);
          fs.fsyncSync(fd);
        }
      } catch (error) {
        fs.closeSync(fd);
        throw error;
      }
      if (this.fd !== null) fs.closeSync(this.fd);
      this.fd = fd;
    } catch (error) {
      if (error instanceof AssertionError) throw error;
      throw new StorageIoError(`recovering the log in ${this.walDir} failed`, error);
    }

    this.segments = result.segments.map((segment) => ({
      sequence: segment.sequence, file: segment.file, size: segment.validBytes, maxEntryIndex: segment.maxEntryIndex,
    }));
    this.hardState = result.hardState;
    this.snapshotMeta = result.snapshot;
    this.terms.clear();
    const entries = result.entries.toArray();
    for (const entry of entries) this.terms.put(entry.index, entry.term);
    this.replayedEntries = entries;
    const staging = this.removeStraySnapshotAndStagingFiles(result.snapshot.index);
    this.recoveryInfo = {
      tornTail: result.tornTail,
      removedSegments,
      removedStagingFiles: staging.removed,
      stagingBytesDropped: staging.dropped,
    };
    this.recovered = true;
  }

  private readSegment(file: string, limit: number | null = null): Buffer {
    try {
      const data = fs.readFileSync(file);
      if (limit === null) return data;
      if (data.byteLength < limit) throw new StorageCorruptionError(file, `segment is ${data.byteLength} bytes, ${limit} were written durably`);
      return data.subarray(0, limit);
    } catch (error) {
      if (error instanceof StorageCorruptionError) throw error;
      if ((error as { code?: unknown }).code === 'ENOENT') throw new StorageCorruptionError(file, 'segment file is missing', { cause: error });
      throw new StorageIoError(`reading log segment ${file} failed`, error);
    }
  }

  /** load() after the first: replays the durable prefix of every live segment again. */
  private reread(): PersistentState {
    const sources = this.segments.map((segment) => ({ sequence: segment.sequence, file: segment.file, read: () => this.readSegment(segment.file, segment.size) }));
    const result = replaySegments(sources, false);
    const entries = result.entries;
    assert(result.snapshot.index === this.snapshotMeta?.index && (entries.size === 0 ? this.terms.size === 0 : entries.first === this.terms.first && entries.last === this.terms.last),
      `the log read back from ${this.walDir} differs from the one written`);
    return { hardState: result.hardState, snapshot: result.snapshot, entries: entries.toArray() };
  }

  /**
   * Removes snapshot files other than the current one, and staging files that are stale (for a
   * snapshot at or below the current one: the install completed) or ambiguous (more than one);
   * recovers the staged state from the one that remains, cutting off a damaged tail.
   */
  private removeStraySnapshotAndStagingFiles(current: LogIndex | null): { removed: string[]; dropped: number } {
    const removed: string[] = [];
    const staging: Array<{ file: string; index: number; term: number }> = [];
    for (const name of fs.readdirSync(this.dir)) {
      const snapshot = snapshotFilePattern.exec(name);
      if (snapshot !== null) {
        const isTemp = snapshot[2] !== undefined;
        if (isTemp || Number(snapshot[1]) !== current) fs.rmSync(path.join(this.dir, name), { force: true });
        continue;
      }
      const match = stagingFilePattern.exec(name);
      if (match !== null) staging.push({ file: path.join(this.dir, name), index: Number(match[1]), term: Number(match[2]) });
    }
    const only = staging.length === 1 ? staging[0] : undefined;
    const keep = only !== undefined && current !== null && only.index > current ? only : undefined;
    for (const candidate of staging) {
      if (candidate === keep) continue;
      fs.rmSync(candidate.file, { force: true });
      removed.push(candidate.file);
    }
    this.staged = null;
    if (keep === undefined) return { removed, dropped: 0 };
    const scan = scanStagingFile(keep.file);
    if (scan.problem !== null) {
      const fd = fs.openSync(keep.file, 'r+');
      try {
        fs.ftruncateSync(fd, scan.validBytes);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    }
    this.staged = { index: keep.index, term: keep.term, bytes: scan.bytes, file: keep.file, fileBytes: scan.validBytes };
    return { removed, dropped: scan.fileBytes - scan.validBytes };
  }

  // ---------------------------------------------------------------------------------------------
  // The persist pipeline.

  private startNext(): void {
    const item = this.queue.shift();
    if (item === undefined) {
      this.notifyIfIdle();
      return;
    }
    this.inFlight = true;
    const what = item.kind === 'ready' ? `persist of Ready #${item.ready.number}` : `commit of snapshot ${item.meta.index}`;
    if (this.closed) return this.finish(item, new StorageIoError(what, new Error(`storage in ${this.dir} is closed`)));
    if (this.failure !== null) return this.finish(item, this.failure);
    try {
      this.ensureRecovered();
    } catch (error) {
      return this.finish(item, describeFailure(`${what} in ${this.dir}`, error));
    }
    if (item.kind === 'snapshot') {
      this.commitOwnSnapshot(item.meta, item.bodyBytes).then(
        (saved) => this.finish(item, null, saved),
        (error: unknown) => this.finish(item, describeFailure(`saving snapshot ${item.meta.index} in ${this.dir}`, error), false),
      );
      return;
    }
    const ready = item.ready;
    // Nothing to write: complete after the sockets were read (setImmediate), not on the next tick.
    // A burst of committed entries is applied over several such Readies, and heartbeats and
    // acknowledgements must get through between them.
    if (!hasDurableParts(ready)) return this.finish(item, null, false, 'afterIo');
    this.persistReady(ready).then(
      () => this.finish(item, null),
      (error: unknown) => this.finish(item, describeFailure(`persisting Ready #${ready.number} to ${this.walDir}`, error)),
    );
  }

  private notifyIfIdle(): void {
    if (this.inFlight || this.queue.length > 0 || this.snapshotWrites > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private finish(item: PendingPersist, error: Error | null, saved = false, when: 'nextTick' | 'afterIo' = 'nextTick'): void {
    if (error !== null && this.failure === null) this.failure = error;
    this.persistCount += 1;
    this.inFlight = false;
    (when === 'afterIo' ? setImmediate : process.nextTick)(() => {
      try {
        if (item.kind === 'ready') item.done(error);
        else item.done(error, saved);
      } finally {
        // Even if done threw, persists issued after this one still complete (with the failure).
        if (!this.inFlight) this.startNext();
      }
    });
  }

  private async persistReady(ready: Ready): Promise<void> {
    const snapshot = this.snapshotMeta;
    assert(this.hardState !== null && snapshot !== null, `persist to ${this.dir}, which was never bootstrapped`);
    this.replayedEntries = null;

    // 1. Stage chunks.
    if (ready.snapshotChunks.length > 0) await this.stageChunks(ready.snapshotChunks, ready.snapshot !== null);

    // 2. Install: the snapshot file first (durable before the record that names it), and whether
    //    the log survives past its index (the entry there has its term) or goes entirely.
    let installed: (Installed & { keep: boolean }) | null = null;
    if (ready.snapshot !== null) {
      const meta = ready.snapshot;
      const staged = this.staged;
      assert(staged !== null && staged.index === meta.index, `snapshot ${meta.index} installed without its chunks`);
      const bytes = await readStagedBytes(staged);
      await writeSnapshotFileAsync(this.dir, meta.index, meta.term, bytes);
      installed = { meta, bytes, keep: this.termAt(meta.index) === meta.term };
    }

    // 3. The appended entries must continue the log as it is after the install.
    const first = ready.entries[0];
    let lastAppended = 0;
    if (first !== undefined) {
      assertContiguous(ready.entries);
      const keepsLog = installed === null || (installed.keep && this.terms.last > installed.meta.index);
      if (this.terms.size > 0 && keepsLog) {
        assert(first.index <= this.terms.last + 1, `disk log must stay contiguous: last ${this.terms.last}, appending ${first.index}`);
      } else {
        const snapshotIndex = installed?.meta.index ?? snapshot.index;
        assert(first.index <= snapshotIndex + 1, `disk log must follow the snapshot: snapshot ${snapshotIndex}, appending ${first.index}`);
      }
      lastAppended = (ready.entries[ready.entries.length - 1] as Entry).index;
    }

    // 4. One buffer, one write, one fdatasync.
    if (installed !== null || first !== undefined || ready.hardState !== null) {
      const rotate = this.encodeStart();
      const encoder = this.encoder;
      if (installed !== null) encoder.snapshot(installed.keep ? SnapshotAction.installKeep : SnapshotAction.installDrop, installed.meta.index, installed.meta);
      for (const entry of ready.entries) encoder.entry(entry);
      if (ready.hardState !== null) encoder.hardState(ready.hardState);
      encoder.seal();
      await this.appendAsync(rotate, lastAppended, `persisting Ready #${ready.number}`);
    }

    // Durable: the in-memory state follows.
    if (installed !== null) {
      this.snapshotMeta = installed.meta;
      if (installed.keep) this.terms.dropThrough(installed.meta.index);
      else this.terms.clear();
    }
    for (const entry of ready.entries) this.terms.put(entry.index, entry.term);
    if (ready.hardState !== null) this.hardState = ready.hardState;
    if (installed !== null) {
      // Synchronous (rare) removals, so that no caller ever sees the new state without them or the
      // old state without its file; LmdbLogStorage does the same.
      this.snapshotOnDisk = { meta: installed.meta, bodyBytes: installed.bytes.byteLength };
      const stagedFile = this.staged?.file;
      this.staged = null;
      if (stagedFile !== undefined) removeQuietlySync(stagedFile);
      this.removeSnapshotFileSync(snapshot.index, installed.meta.index);
    }
    this.collectSegments();
  }

  /** The queued half of saveSnapshotAsync: one SNAPSHOT record, written and synced like a Ready. */
  private async commitOwnSnapshot(meta: SnapshotMeta, bodyBytes: number): Promise<boolean> {
    const current = this.snapshotMeta;
    assert(current !== null, 'saveSnapshot before bootstrap');
    if (current.index >= meta.index) {
      this.removeSnapshotFileSync(meta.index, current.index);
      return false;
    }
    this.replayedEntries = null;
    const cutoff = meta.index - this.options.compactionTailEntries;
    const rotate = this.encodeStart();
    this.encoder.snapshot(SnapshotAction.compact, cutoff, meta);
    this.encoder.seal();
    await this.appendAsync(rotate, 0, `saving snapshot ${meta.index}`);
    this.snapshotMeta = meta;
    this.terms.dropThrough(cutoff);
    this.snapshotOnDisk = { meta, bodyBytes };
    this.removeSnapshotFileSync(current.index, meta.index);
    this.collectSegments();
    return true;
  }

  /**
   * Appends snapshot chunks to the staging file (a new file when staging restarts) and fdatasyncs
   * it, unless the same Ready installs the snapshot: then the snapshot file is what must be
   * durable, and the staging file is removed right after.
   */
  private async stageChunks(chunks: readonly SnapshotChunk[], installing: boolean): Promise<void> {
    const plan = planStaging(this.staged, chunks);
    const current = this.staged;
    let target: Staged;
    if (plan.restart !== null) {
      const file = path.join(this.dir, stagingFileName(plan.restart.index, plan.restart.term));
      if (current !== null && current.file !== file) await removeQuietly(current.file);
      target = { index: plan.restart.index, term: plan.restart.term, bytes: 0, file, fileBytes: 0 };
    } else {
      if (plan.chunks.length === 0 || current === null) return; // every chunk ignored
      target = current;
    }
    const frames = encodeStagingFrames(plan.chunks);
    const file = target.file;
    try {
      const handle = await fs.promises.open(file, plan.restart !== null ? 'w' : 'r+');
      try {
        let written = 0;
        while (written < frames.byteLength) {
          written += (await handle.write(frames, written, frames.byteLength - written, target.fileBytes + written)).bytesWritten;
        }
        if (!installing) {
          await handle.datasync();
          this.fsyncCount += 1;
        }
      } finally {
        await handle.close();
      }
      if (plan.restart !== null && !installing) {
        await fsyncDirectoryAsync(this.dir);
        this.fsyncCount += 1;
      }
    } catch (error) {
      throw new StorageIoError(`staging snapshot chunks in ${file} failed`, error);
    }
    this.staged = { ...target, bytes: plan.bytes, fileBytes: target.fileBytes + frames.byteLength };
  }

  // ---------------------------------------------------------------------------------------------
  // Segments.

  private get current(): Segment {
    const segment = this.segments[this.segments.length - 1];
    assert(segment !== undefined && this.fd !== null, `the log in ${this.dir} has no open segment`);
    return segment;
  }

  /**
   * Resets the encoder for the next append and, when the current segment is full, starts it with
   * the CHECKPOINT of the new segment; returns whether the append rotates.
   */
  private encodeStart(): boolean {
    this.encoder.reset();
    const rotate = this.current.size >= this.options.segmentBytes;
    if (rotate) {
      assert(this.hardState !== null && this.snapshotMeta !== null, 'rotation of a log that was never bootstrapped');
      this.encoder.checkpoint(this.hardState, this.snapshotMeta);
    }
    return rotate;
  }

  /**
   * Writes the encoded records at the end of the current segment (or into a new segment when
   * rotating: O_EXCL, then its directory entry is fsynced too) and fdatasyncs them.
   */
  private async appendAsync(rotate: boolean, lastAppended: LogIndex, what: string): Promise<void> {
    const bytes = this.encoder.bytes;
    const started = performance.now();
    let segment = this.current;
    let fd = this.fd as number;
    let file = segment.file;
    let opened: number | null = null;
    try {
      if (rotate) {
        const sequence = segment.sequence + 1;
        file = path.join(this.walDir, segmentFileName(sequence));
        opened = await fsOpen(file, 'wx');
        fd = opened;
        segment = { sequence, file, size: 0, maxEntryIndex: 0 };
      }
      await writeFully(fd, bytes, segment.size);
      await fdatasync(fd);
      this.fsyncCount += 1;
      if (rotate) {
        await fsyncDirectoryAsync(this.walDir);
        this.fsyncCount += 1;
      }
    } catch (error) {
      if (opened !== null) fs.close(opened, () => undefined);
      throw new StorageIoError(`${what} to ${file} failed`, error);
    }
    this.lastFsyncMsValue = performance.now() - started;
    if (rotate) this.switchTo(segment, fd);
    segment.size += bytes.byteLength;
    if (lastAppended > segment.maxEntryIndex) segment.maxEntryIndex = lastAppended;
  }

  /** appendAsync with synchronous calls, for saveSnapshot. */
  private appendSync(rotate: boolean, lastAppended: LogIndex, what: string): void {
    const bytes = this.encoder.bytes;
    const started = performance.now();
    let segment = this.current;
    let fd = this.fd as number;
    let file = segment.file;
    let opened: number | null = null;
    try {
      if (rotate) {
        const sequence = segment.sequence + 1;
        file = path.join(this.walDir, segmentFileName(sequence));
        opened = fs.openSync(file, 'wx');
        fd = opened;
        segment = { sequence, file, size: 0, maxEntryIndex: 0 };
      }
      let written = 0;
      while (written < bytes.byteLength) written += fs.writeSync(fd, bytes, written, bytes.byteLength - written, segment.size + written);
      fs.fdatasyncSync(fd);
      this.fsyncCount += 1;
      if (rotate) {
        fsyncDirectory(this.walDir);
        this.fsyncCount += 1;
      }
    } catch (error) {
      if (opened !== null) fs.close(opened, () => undefined);
      throw new StorageIoError(`${what} to ${file} failed`, error);
    }
    this.lastFsyncMsValue = performance.now() - started;
    if (rotate) this.switchTo(segment, fd);
    segment.size += bytes.byteLength;
    if (lastAppended > segment.maxEntryIndex) segment.maxEntryIndex = lastAppended;
  }

  private switchTo(segment: Segment, fd: number): void {
    const previous = this.fd;
    this.fd = fd;
    this.segments.push(segment);
    if (previous !== null) fs.close(previous, () => undefined);
  }

  /**
   * Deletes whole segments at the front that no longer hold any entry of the log: every ENTRY in
   * them is below the log's first index (or the log is empty). The current segment stays. The
   * unlinks run in the background, in order; a crash that undoes some of them is handled at open.
   */
  private collectSegments(): void {
    while (this.segments.length > 1) {
      const oldest = this.segments[0] as Segment;
      if (this.terms.size > 0 && oldest.maxEntryIndex >= this.terms.first) break;
      this.segments.shift();
      this.background = this.background.then(() => removeQuietly(oldest.file));
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Snapshots.

  private termAt(index: LogIndex): Term | undefined {
    if (this.snapshotMeta !== null && index === this.snapshotMeta.index) return this.snapshotMeta.term;
    return this.terms.at(index);
  }

  private snapshotFor(meta: SnapshotMeta): Installed {
    const bytes = readSnapshotFile(this.dir, meta.index, meta.term);
    this.snapshotOnDisk = { meta, bodyBytes: bytes.byteLength };
    return { meta, bytes };
  }

  /** The body length of the current snapshot's file, verifying the file first if not yet known good. */
  private verifiedSnapshotBytes(meta: SnapshotMeta): number {
    const known = this.snapshotOnDisk;
    if (known !== null && known.meta.index === meta.index && known.meta.term === meta.term) return known.bodyBytes;
    const bodyBytes = verifySnapshotFile(this.dir, meta.index, meta.term);
    this.snapshotOnDisk = { meta, bodyBytes };
    return bodyBytes;
  }

  private removeSnapshotFileSync(index: LogIndex, current: LogIndex): void {
    if (index !== current) removeQuietlySync(path.join(this.dir, snapshotFileName(index)));
  }

  private assertUsable(): void {
    assert(!this.closed, `storage in ${this.dir} is closed`);
  }
}

function describeFailure(what: string, error: unknown): Error {
  if (error instanceof StorageCorruptionError || error instanceof StorageIoError || error instanceof AssertionError) return error;
  return new StorageIoError(`${what} failed`, error);
}

// ---------------------------------------------------------------------------------------------
// Thin promise wrappers over the callback API (no FileHandle objects on the hot path).

function fsOpen(file: string, flags: string): Promise<number> {
  return new Promise((resolve, reject) => fs.open(file, flags, (error, fd) => (error ? reject(error) : resolve(fd))));
}

function writeFully(fd: number, data: Buffer, position: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let offset = 0;
    const step = (): void => {
      fs.write(fd, data, offset, data.byteLength - offset, position + offset, (error, written) => {
        if (error) return reject(error);
        offset += written;
        if (offset < data.byteLength) step();
        else resolve();
      });
    };
    step();
  });
}

function fdatasync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fdatasync(fd, (error) => (error ? reject(error) : resolve())));
}

async function fsyncDirectoryAsync(dir: string): Promise<void> {
  const handle = await fs.promises.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Best-effort removal: a file left behind is garbage that the next open removes. */
async function removeQuietly(file: string): Promise<void> {
  await fs.promises.rm(file, { force: true }).catch(() => undefined);
}

function removeQuietlySync(file: string): void {
  try {
    fs.rmSync(file, { force: true });
  } catch {
    // as removeQuietly
  }
}
