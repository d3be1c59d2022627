/**
 * Replica: the driver that glues the pure consensus core to its ports (storage, transport,
 * state machine). The simulator and the server run this same code; only the ports differ.
 *
 * It follows the Ready contract in consensus/types.ts: at most one Ready is being persisted at a
 * time; while its fsync is in flight, ticks and messages keep flowing through the core, and
 * messages that are safe before the fsync (heartbeats, a leader's appends) still go out, so a
 * stalled disk never stops a leader from noticing it lost its quorum (etcd-io/etcd#13527).
 * Proposals that arrive during an fsync are batched into the next Ready: group commit.
 *
 * Not here: any decision that belongs to consensus (who leads, what is committed).
 */
import { assert } from '../shared/assert.ts';
import type { RaftCore } from '../consensus/raft_core.ts';
import type {
  Entry, LogIndex, MembershipChange, Message, ProposalResult, Ready, SnapshotMeta,
} from '../consensus/types.ts';
import { ProposalTable, type ProposalOutcome } from './proposals.ts';

export interface ReplicaStorage {
  /**
   * Makes a Ready's persistent parts durable, in this order: stage `snapshotChunks` (the last
   * chunk and the install arrive in the same Ready), install `snapshot` (drop log entries up to
   * its index; drop the rest too unless the entry at its index has its term), truncate at
   * `entries[0].index` and append `entries`, write `hardState`.
   * Calls done only after everything is on disk (fsync). An error is fatal to the node.
   */
  persist(ready: Ready, done: (error: Error | null) => void): void;
  /** Durably stores a snapshot this node took of its own state machine, then compacts the log. */
  saveSnapshot(meta: SnapshotMeta, bytes: Uint8Array): void;
  /**
   * Optional: saveSnapshot without blocking, for a snapshot `produce` streams piece by piece (it
   * calls `write` for each, in order), ordered with persists. `produce` must be called within
   * this call, synchronously: the state machine fixes the state it writes when it is called, and
   * that must be the state at `meta.index`, not a later one. done(null, true, bytes) once the
   * snapshot is durable; done(null, false, bytes) if the storage already had one at or past its
   * index. An error thrown by `produce` reaches done() as it is.
   */
  saveSnapshotFrom?(
    meta: SnapshotMeta,
    produce: (write: (piece: Uint8Array) => Promise<void>) => Promise<void>,
    done: (error: Error | null, saved: boolean, bytes: number) => void,
  ): void;
  /** A chunk of the latest snapshot, or null when the latest snapshot is not at `index`. */
  readSnapshotChunk(index: LogIndex, offset: number, bytesMax: number): { data: Uint8Array; done: boolean } | null;
  /** The latest durable snapshot (after an install, the one just installed). */
  loadSnapshot(): { meta: SnapshotMeta; bytes: Uint8Array } | null;
}

/** A snapshot stopped because its replica stopped (a crash or shutdown): not a failure. */
class SnapshotAbandoned extends Error {
  constructor() {
    super('snapshot abandoned: the replica stopped');
  }
}

export interface ReplicaStateMachine<R> {
  /** Deterministic: the same entries in the same order give the same state on every node. */
  apply(entry: Entry): R;
  snapshot(): Uint8Array;
  /**
   * Optional: the bytes snapshot() would return now, handed to `write` piece by piece without
   * holding the event loop (the next piece only once the promise `write` returned has settled).
   * The state is fixed when the call is made; applies that follow must not show in the result.
   */
  writeSnapshot?(write: (piece: Uint8Array) => Promise<void>): Promise<void>;
  restore(bytes: Uint8Array): void;
  /**
   * Optional: the last log index the state machine's own state says it applied (when it records
   * one). After a snapshot is restored it may be below the snapshot's index (entries that are not
   * applied to it, e.g. membership changes, come last) but never past it: a snapshot holding more
   * than its index says would have entries applied twice.
   */
  appliedIndex?(): LogIndex;
  /**
   * Optional: runs `applyAll` (several apply() calls) as one unit of storage work, e.g. one
   * commit for all the entries of a Ready. Each apply() still sees the ones before it.
   */
  batch?(applyAll: () => void): void;
}

export interface ReplicaTransport {
  send(message: Message): void;
  /** Sends what send() queued now, instead of at the transport's own next flush (optional). */
  flush?(): void;
}

export interface ReplicaObserver<R> {
  onApplied?(entry: Entry, result: R | undefined): void;
  onSnapshotRestored?(meta: SnapshotMeta): void;
  onReady?(ready: Ready): void;
  /** After a Ready was persisted, sent and applied, and the core advanced. */
  onAdvanced?(ready: Ready): void;
  /** A snapshot this node took of its own state is durable and the log was compacted to it. */
  onSnapshotTaken?(meta: SnapshotMeta, info: { readonly bytes: number; readonly durationMs: number }): void;
}

export interface ReplicaOptions<R> {
  readonly core: RaftCore;
  readonly storage: ReplicaStorage;
  readonly stateMachine: ReplicaStateMachine<R>;
  readonly transport: ReplicaTransport;
  /** Take a snapshot and compact the log after this many applied entries... */
  readonly snapshotEveryEntries: number;
  /**
   * ...or once the entries applied since the last snapshot hold this many bytes of data, so that
   * the log kept in memory is bounded in bytes, not only in entries (default: no byte trigger).
   */
  readonly snapshotEveryBytes?: number;
  /**
   * Where in each stretch of snapshotEveryEntries this node snapshots, as a fraction in [0, 1):
   * with it, snapshots fall at indexes k * every + phase * every (at least every / 2 apart), so
   * nodes given different phases do not all serialise a large state at the same moment. Without
   * it, a snapshot is due every snapshotEveryEntries entries since the last one.
   */
  readonly snapshotPhase?: number;
  readonly snapshotChunkBytesMax: number;
  readonly observer?: ReplicaObserver<R>;
  /**
   * The state machine's own applied index when it keeps durable state (the server's LMDB store):
   * committed entries at or below it are skipped on restart instead of applied twice.
   */
  readonly stateMachineAppliedIndex?: LogIndex;
  /**
   * Runs `collect` once the current burst of work is over (the server: setImmediate, after the
   * event loop has handled every request and message that arrived together; the simulator: an
   * event at the same virtual time). Without it, messages that can leave while a Ready is being
   * persisted are sent after every proposal and every message received. With it they are collected
   * once per burst, so the core builds one append per follower holding every entry proposed in
   * the burst, instead of one per proposal (and each of those acknowledged on its own).
   */
  readonly deferCollect?: (collect: () => void) => void;
  /** Milliseconds for snapshot durations (reporting only; the simulator passes its virtual clock). */
  readonly now?: () => number;
}

export type ReadOutcome =
  | { readonly ok: true; readonly index: LogIndex }
  | { readonly ok: false; readonly reason: 'DROPPED' | 'STOPPED' };

interface WaitingRead {
  readonly index: LogIndex;
  readonly callback: (outcome: ReadOutcome) => void;
}

export class Replica<R> {
  readonly core: RaftCore;
  private readonly storage: ReplicaStorage;
  private readonly stateMachine: ReplicaStateMachine<R>;
  private readonly transport: ReplicaTransport;
  private readonly options: ReplicaOptions<R>;
  private readonly proposals = new ProposalTable<R>();
  private readonly readsAwaitingIndex = new Map<string, (outcome: ReadOutcome) => void>();
  private readsAwaitingApply: WaitingRead[] = [];
  private persisting: Ready | null = null;
  private stopped = false;
  private collectScheduled = false;
  private appliedIndexValue: LogIndex;
  /** The index of the snapshot being taken in the background, if one is. */
  private snapshotInProgress: LogIndex | null = null;
  /** Bytes of entry data applied since the last snapshot was started (0 after a restart). */
  private bytesSinceSnapshot = 0;

  constructor(options: ReplicaOptions<R>) {
    assert(options.snapshotEveryEntries >= 1, 'snapshotEveryEntries >= 1');
    assert(options.snapshotChunkBytesMax >= 1, 'snapshotChunkBytesMax >= 1');
    assert(options.snapshotPhase === undefined || (options.snapshotPhase >= 0 && options.snapshotPhase < 1), 'snapshotPhase in [0, 1)');
    this.options = options;
    this.core = options.core;
    this.storage = options.storage;
    this.stateMachine = options.stateMachine;
    this.transport = options.transport;
    this.appliedIndexValue = Math.max(options.core.snapshotMeta.index, options.stateMachineAppliedIndex ?? 0);
  }

  get appliedIndex(): LogIndex {
    return this.appliedIndexValue;
  }

  get pendingProposals(): number {
    return this.proposals.size;
  }

  get pendingReads(): number {
    return this.readsAwaitingIndex.size + this.readsAwaitingApply.length;
  }

  tick(): void {
    if (this.stopped) return;
    this.core.tick();
    this.pump();
  }

  receive(message: Message): void {
    if (this.stopped) return;
    this.core.step(message);
    this.pump();
  }

  /** Proposes a command; the callback receives its definitive or unknown outcome later. */
  propose(data: Uint8Array, callback: (outcome: ProposalOutcome<R>) => void): ProposalResult {
    assert(!this.stopped, 'propose on a stopped replica');
    const result = this.core.propose(data);
    if (result.ok) this.proposals.add(result.index, result.term, callback);
    this.pump();
    return result;
  }

  proposeMembershipChange(change: MembershipChange, callback: (outcome: ProposalOutcome<R>) => void): ProposalResult {
    assert(!this.stopped, 'membership change on a stopped replica');
    const result = this.core.proposeMembershipChange(change);
    if (result.ok) this.proposals.add(result.index, result.term, callback);
    this.pump();
    return result;
  }

  /** A linearizable read: the callback fires once this node has applied the confirmed read index. */
  read(requestId: string, callback: (outcome: ReadOutcome) => void, options: { lease?: boolean } = {}): void {
    assert(!this.stopped, 'read on a stopped replica');
    assert(!this.readsAwaitingIndex.has(requestId), `duplicate read id ${requestId}`);
    this.readsAwaitingIndex.set(requestId, callback);
    this.core.readIndex(requestId, options);
    this.pump();
  }

  transferLeadership(target: string): ReturnType<RaftCore['transferLeadership']> {
    const result = this.core.transferLeadership(target);
    this.pump();
    return result;
  }

  /** Crash or shutdown: nothing more happens; waiting callers learn their outcome is unknown. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.proposals.failAll();
    for (const callback of this.readsAwaitingIndex.values()) callback({ ok: false, reason: 'STOPPED' });
    for (const read of this.readsAwaitingApply) read.callback({ ok: false, reason: 'STOPPED' });
    this.readsAwaitingIndex.clear();
    this.readsAwaitingApply = [];
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /** Moves work from the core to the ports. Safe to call at any time. */
  pump(): void {
    if (this.stopped) return;
    if (this.persisting !== null) {
      const defer = this.options.deferCollect;
      if (defer === undefined) this.sendTakenMessages();
      else if (!this.collectScheduled) {
        this.collectScheduled = true;
        defer(() => {
          this.collectScheduled = false;
          if (!this.stopped) this.sendTakenMessages();
        });
      }
      return;
    }
    if (!this.core.hasReady()) return;
    const ready = this.core.ready();
    this.persisting = ready;
    this.options.observer?.onReady?.(ready);
    for (const message of ready.messages) this.send(message);
    this.storage.persist(ready, (error) => {
      if (error !== null) throw error;
      this.afterPersist(ready);
    });
  }

  private sendTakenMessages(): void {
    const messages = this.core.takeMessages();
    for (const message of messages) this.send(message);
    if (messages.length > 0) this.options.transport.flush?.();
  }

  private afterPersist(ready: Ready): void {
    if (this.stopped) return;
    assert(this.persisting === ready, 'persist completions arrive in order');
    if (ready.snapshot !== null) this.restoreSnapshot(ready.snapshot);
    for (const message of ready.messagesAfterPersist) this.send(message);
    const applyAll = (): void => {
      for (const entry of ready.committed) this.applyEntry(entry);
    };
    if (ready.committed.length > 1 && this.stateMachine.batch !== undefined) this.stateMachine.batch(applyAll);
    else applyAll();
    for (const readState of ready.readStates) {
      const callback = this.readsAwaitingIndex.get(readState.requestId);
      if (callback === undefined) continue;
      this.readsAwaitingIndex.delete(readState.requestId);
      this.readsAwaitingApply.push({ index: readState.index, callback });
    }
    for (const requestId of ready.readsDropped) {
      const callback = this.readsAwaitingIndex.get(requestId);
      this.readsAwaitingIndex.delete(requestId);
      callback?.({ ok: false, reason: 'DROPPED' });
    }
    this.core.advance(ready);
    this.persisting = null;
    this.serveReads();
    this.maybeSnapshot();
    this.options.observer?.onAdvanced?.(ready);
    this.pump();
  }

  private restoreSnapshot(meta: SnapshotMeta): void {
    const snapshot = this.storage.loadSnapshot();
    assert(snapshot !== null && snapshot.meta.index === meta.index, 'installed snapshot is on disk');
    this.stateMachine.restore(snapshot.bytes);
    const own = this.stateMachine.appliedIndex?.();
    assert(own === undefined || own <= meta.index, `snapshot ${meta.index} restored a state that applied up to ${own}`);
    this.appliedIndexValue = meta.index;
    this.bytesSinceSnapshot = 0;
    this.proposals.onSnapshotInstalled(meta.index);
    this.options.observer?.onSnapshotRestored?.(meta);
  }

  private applyEntry(entry: Entry): void {
    if (entry.index <= this.appliedIndexValue) return;
    assert(entry.index === this.appliedIndexValue + 1, `apply gap: ${this.appliedIndexValue} -> ${entry.index}`);
    const result = entry.kind === 'normal' ? this.stateMachine.apply(entry) : undefined;
    this.appliedIndexValue = entry.index;
    this.bytesSinceSnapshot += entry.data.byteLength;
    this.options.observer?.onApplied?.(entry, result);
    this.proposals.onApplied(entry, result as R);
  }

  private serveReads(): void {
    if (this.readsAwaitingApply.length === 0) return;
    const still: WaitingRead[] = [];
    for (const read of this.readsAwaitingApply) {
      if (read.index <= this.appliedIndexValue) read.callback({ ok: true, index: read.index });
      else still.push(read);
    }
    this.readsAwaitingApply = still;
  }

  private maybeSnapshot(): void {
    if (this.snapshotInProgress !== null) return;
    const since = this.appliedIndexValue - this.core.snapshotMeta.index;
    const bytesDue = this.bytesSinceSnapshot >= (this.options.snapshotEveryBytes ?? Number.POSITIVE_INFINITY);
    if (!this.entriesDue(since) && !bytesDue) return;
    if (since === 0) return;
    // The snapshot must describe exactly the state at its index: wait until the core's view of
    // applied entries has caught up with the state machine's own (after a restart it may lag).
    if (this.core.appliedIndex !== this.appliedIndexValue) return;
    const now = this.options.now ?? (() => 0);
    const started = now();
    const index = this.appliedIndexValue;
    this.bytesSinceSnapshot = 0;
    const writeSnapshot = this.stateMachine.writeSnapshot?.bind(this.stateMachine);
    const saveSnapshotFrom = this.storage.saveSnapshotFrom?.bind(this.storage);
    if (writeSnapshot === undefined || saveSnapshotFrom === undefined) {
      const bytes = this.stateMachine.snapshot();
      const meta = this.core.compact(index);
      this.storage.saveSnapshot(meta, bytes);
      this.options.observer?.onSnapshotTaken?.(meta, { bytes: bytes.byteLength, durationMs: now() - started });
      return;
    }
    // In the background, streamed from the state machine into the file: a large state serialised
    // and written on the event loop held a leader past its election timeout, and one built in
    // memory first took as much memory again as the state. The core keeps every entry until the
    // snapshot is durable, so a lagging peer is still served from the log meanwhile, and
    // compaction happens only after.
    const meta = this.core.snapshotMetaAt(index);
    this.snapshotInProgress = index;
    saveSnapshotFrom(meta, (write) => writeSnapshot((piece) => (this.stopped ? Promise.reject(new SnapshotAbandoned()) : write(piece))), (error, saved, bytes) => {
      this.snapshotInProgress = null;
      if (this.stopped) return;
      // Thrown from a file system callback: fatal to the node, like any storage error.
      if (error !== null) throw error;
      // A snapshot installed from the leader meanwhile may already be past this one.
      if (saved && index > this.core.snapshotMeta.index) {
        this.core.compact(index);
        this.options.observer?.onSnapshotTaken?.(meta, { bytes, durationMs: now() - started });
      }
      this.pump();
    });
  }

  private entriesDue(since: number): boolean {
    const every = this.options.snapshotEveryEntries;
    const phase = this.options.snapshotPhase;
    if (phase === undefined) return since >= every;
    const offset = Math.floor(phase * every);
    const stretch = (index: LogIndex): number => Math.floor((index - offset) / every);
    return since >= Math.ceil(every / 2) && stretch(this.appliedIndexValue) > stretch(this.core.snapshotMeta.index);
  }

  private send(message: Message): void {
    if (message.type === 'installSnapshot' && message.data === null) {
      const chunk = this.storage.readSnapshotChunk(message.snapshot.index, message.offset, this.options.snapshotChunkBytesMax);
      if (chunk === null) {
        this.core.reportSnapshotUnavailable(message.to);
        return;
      }
      this.transport.send({ ...message, data: chunk.data, done: chunk.done });
      return;
    }
    this.transport.send(message);
  }
}
