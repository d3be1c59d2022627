/**
 * A simulated disk for one node: a durable image (what survives a crash) and writes in flight
 * that become durable only when their simulated fsync completes. A crash drops every write still
 * in flight, exactly what a real power loss does to unsynced data.
 *
 * It injects only faults the system claims to survive (TigerBeetle's fault atlas idea): lost
 * unsynced writes and slow fsyncs; never corruption of synced data (that is a storage-layer test).
 */
import { assert } from '../shared/assert.ts';
import type { Entry, HardState, LogIndex, Ready, SnapshotMeta } from '../consensus/types.ts';
import type { PersistentState } from '../consensus/raft_core.ts';
import type { ReplicaStorage } from '../replica/replica.ts';

export interface DurableImage {
  hardState: HardState;
  snapshot: { meta: SnapshotMeta; bytes: Uint8Array };
  entries: Entry[];
  staged: { meta: SnapshotMeta; chunks: Uint8Array[]; bytes: number } | null;
}

export class SimDisk implements ReplicaStorage {
  image: DurableImage;
  /** Bumped by a crash: completions scheduled before it are discarded. */
  private generation = 0;
  fsyncs = 0;

  constructor(
    initial: PersistentState,
    initialSnapshotBytes: Uint8Array,
    private readonly schedule: (delay: number, run: () => void) => void,
    public latency: () => number,
  ) {
    this.image = {
      hardState: initial.hardState,
      snapshot: { meta: initial.snapshot, bytes: initialSnapshotBytes },
      entries: [...initial.entries],
      staged: null,
    };
  }

  /** What a restarted node finds on disk. */
  persistentState(): PersistentState {
    return { hardState: this.image.hardState, snapshot: this.image.snapshot.meta, entries: [...this.image.entries] };
  }

  crash(): void {
    this.generation++;
  }

  persist(ready: Ready, done: (error: Error | null) => void): void {
    const generation = this.generation;
    this.schedule(this.latency(), () => {
      if (generation !== this.generation) return; // lost in the crash
      this.applyReady(ready);
      if (ready.mustSync) this.fsyncs++;
      done(null);
    });
  }

  private applyReady(ready: Ready): void {
    for (const chunk of ready.snapshotChunks) {
      if (chunk.offset === 0 || this.image.staged?.meta.index !== chunk.snapshot.index) {
        this.image.staged = { meta: chunk.snapshot, chunks: [], bytes: 0 };
      }
      const staged = this.image.staged;
      if (staged === null || staged.bytes !== chunk.offset) continue;
      staged.chunks.push(chunk.data);
      staged.bytes += chunk.data.byteLength;
    }
    if (ready.snapshot !== null) this.installStaged(ready.snapshot);
    const first = ready.entries[0];
    if (first !== undefined) {
      const entries = this.image.entries;
      const head = entries[0];
      if (head !== undefined) {
        assert(first.index <= (entries.at(-1)?.index ?? 0) + 1, 'disk log must stay contiguous');
        entries.length = Math.max(0, first.index - head.index);
      } else {
        assert(first.index <= this.image.snapshot.meta.index + 1, 'disk log must follow the snapshot');
      }
      entries.push(...ready.entries);
    }
    if (ready.hardState !== null) this.image.hardState = ready.hardState;
  }

  private installStaged(meta: SnapshotMeta): void {
    const staged = this.image.staged;
    assert(staged !== null && staged.meta.index === meta.index, 'snapshot installed without its chunks');
    const bytes = new Uint8Array(staged.bytes);
    let offset = 0;
    for (const chunk of staged.chunks) {
      bytes.set(chunk, offset);
      offset += chunk.byteLength;
    }
    const keep = this.termAt(meta.index) === meta.term;
    this.image.snapshot = { meta, bytes };
    this.image.entries = keep ? this.image.entries.filter((entry) => entry.index > meta.index) : [];
    this.image.staged = null;
  }

  private termAt(index: LogIndex): number | undefined {
    if (index === this.image.snapshot.meta.index) return this.image.snapshot.meta.term;
    return this.image.entries.find((entry) => entry.index === index)?.term;
  }

  saveSnapshot(meta: SnapshotMeta, bytes: Uint8Array): void {
    assert(meta.index > this.image.snapshot.meta.index, 'snapshots move forward');
    this.image.snapshot = { meta, bytes };
    // Entries up to the snapshot are no longer needed for recovery; keep a tail like the core does.
    this.image.entries = this.image.entries.filter((entry) => entry.index > meta.index - 64);
  }

  readSnapshotChunk(index: LogIndex, offset: number, bytesMax: number): { data: Uint8Array; done: boolean } | null {
    const snapshot = this.image.snapshot;
    if (snapshot.meta.index !== index || offset > snapshot.bytes.byteLength) return null;
    const end = Math.min(snapshot.bytes.byteLength, offset + bytesMax);
    return { data: snapshot.bytes.subarray(offset, end), done: end === snapshot.bytes.byteLength };
  }

  loadSnapshot(): { meta: SnapshotMeta; bytes: Uint8Array } | null {
    return this.image.snapshot;
  }
}
