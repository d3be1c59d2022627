/**
 * UnderstudyNode: one server process's replica of the document store. It composes the pure cores
 * (consensus, documents) with real ports (LMDB storage, TCP transport, wall and monotonic clocks)
 * through the shared Replica driver, and offers the operations the HTTP layer exposes: writes at
 * an acknowledgement level, reads at a consistency level, the change feed and cluster status.
 *
 * Not here: HTTP parsing, forwarding to the leader (http.ts), process lifecycle (main.ts).
 *
 * Invariants:
 *   - a write is answered as applied only after its entry was applied here (so committed, so
 *     durable on a majority); ack=all additionally waits until every voter holds it durably;
 *     ack=leader waits for the leader's own fsync;
 *   - the document store never applies an entry twice (its applied index is checked on restart);
 *   - ticks come from the monotonic clock and keep flowing while a disk write is in flight.
 */
import { randomUUID } from 'node:crypto';
import { assert } from '../shared/assert.ts';
import { Prng } from '../shared/prng.ts';
import { RaftCore, bootstrapState, type PersistentState } from '../consensus/raft_core.ts';
import type { Entry, LogIndex, Membership, MembershipChange, Message, NodeId, Term } from '../consensus/types.ts';
import { Replica, type ReplicaStorage } from '../replica/replica.ts';
import type { ProposalOutcome } from '../replica/proposals.ts';
import {
  applyCommand, applyMergePatch, decodeCommand, encodeCommand, lookupIdempotency, oldestChangeIndex, prepareCreate,
  prepareDelete, prepareMergePatch, prepareReplace, readAppliedIndex, readChanges, resolveDocumentOptions,
  validateBody, validateCollectionName, validateDocumentId,
  type ApplyResult, type BatchCommand, type ChangeRecord, type DocumentError, type DocumentOptions,
  type DocumentStore, type JsonObject, type JsonValue, type ListPage, type ListQuery, type OpResult,
  type RowOp, type StoredDocument,
} from '../documents/index.ts';
import { ApiError, type ErrorCode } from './errors.ts';
import { parseHostPort, type NodeConfig } from './config.ts';

export interface NodeLogStorage extends ReplicaStorage {
  load(): PersistentState | null;
  bootstrap(state: PersistentState, snapshotBytes: Uint8Array): void;
  close(): void | Promise<void>;
  stats?(): { readonly logBytesUsed: number; readonly snapshotBytes: number; readonly fsyncs: number };
}

export interface NodeDocumentStore extends DocumentStore {
  snapshot(): Uint8Array;
  /** snapshot() without holding the event loop (LmdbDocumentStore); state fixed at the call. */
  snapshotAsync?(): Promise<Uint8Array>;
  /** snapshotAsync() handed out piece by piece, never whole in memory (LmdbDocumentStore). */
  writeSnapshot?(write: (piece: Uint8Array) => Promise<void>): Promise<void>;
  /** Every transaction() inside `fn` shares one storage commit (LmdbDocumentStore). */
  batch?<T>(fn: () => T): T;
  restore(bytes: Uint8Array): DocumentError | null;
  close?(): void | Promise<void>;
}

export interface PeerTransportPort {
  send(message: Message): void;
  isConnected?(peer: NodeId): boolean;
  /** Learns (or updates) how to reach a peer: new members arrive through membership entries. */
  setPeer?(peer: { readonly id: NodeId; readonly host: string; readonly port: number }): void;
  /** Writes what send() queued now rather than at the transport's next flush. */
  flushAll?(): void;
}

export type AckLevel = 'leader' | 'majority' | 'all';
export type ReadConsistency = 'linearizable' | 'session' | 'stale';

export type UserOp =
  | { readonly op: 'create'; readonly collection: string; readonly id?: string; readonly body: unknown }
  | { readonly op: 'put'; readonly collection: string; readonly id: string; readonly body: unknown; readonly ifMatch?: number; readonly ifNoneMatch?: boolean }
  | { readonly op: 'patch'; readonly collection: string; readonly id: string; readonly patch: unknown; readonly ifMatch?: number }
  | { readonly op: 'delete'; readonly collection: string; readonly id: string; readonly ifMatch?: number };

export interface WriteRequest {
  readonly ops: readonly UserOp[];
  readonly idempotencyKey?: string;
  readonly ack: AckLevel;
  readonly timeoutMs: number;
}

export interface WriteResponse {
  readonly status: 'applied' | 'accepted';
  readonly ack: AckLevel;
  readonly index: LogIndex;
  readonly term: Term;
  readonly duplicate: boolean;
  readonly results: readonly OpResult[];
  /** Read-your-writes token: a session read carrying it sees this write. */
  readonly sessionToken: string;
}

export interface ReadOptions {
  readonly consistency: ReadConsistency;
  readonly sessionToken?: string;
  readonly timeoutMs: number;
}

export interface ReadMeta {
  readonly consistency: ReadConsistency;
  readonly node: NodeId;
  readonly appliedIndex: LogIndex;
  /** For stale reads: entries this node was last known to be behind the leader, and since when. */
  readonly lagEntries?: number;
  readonly lastLeaderContactMsAgo?: number | null;
}

export interface MemberStatus {
  readonly id: NodeId;
  readonly role: 'leader' | 'follower' | 'learner' | 'candidate' | 'unknown';
  readonly voter: boolean;
  readonly matchIndex: LogIndex | null;
  readonly lagEntries: number | null;
  readonly lagMs: number | null;
  readonly connected: boolean | null;
  readonly client: string | null;
}

export interface NodeStatus {
  readonly id: NodeId;
  readonly role: string;
  readonly term: Term;
  readonly leaderId: NodeId | null;
  readonly leaderClientUrl: string | null;
  readonly commitIndex: LogIndex;
  readonly appliedIndex: LogIndex;
  readonly lastIndex: LogIndex;
  readonly snapshotIndex: LogIndex;
  readonly membership: Membership;
  readonly members: readonly MemberStatus[];
  readonly lastLeaderContactMsAgo: number | null;
  readonly transferTarget: NodeId | null;
}

export interface NodeDependencies {
  readonly log: NodeLogStorage;
  readonly documents: NodeDocumentStore;
  readonly transport: PeerTransportPort;
  readonly monotonicMs?: () => number;
  readonly wallMs?: () => number;
  readonly seed?: number;
  readonly onEvent?: (event: NodeEvent) => void;
}

export interface ForceFailoverPlan {
  readonly node: NodeId;
  readonly role: string;
  readonly term: Term;
  readonly lastIndex: LogIndex;
  readonly lastTerm: Term;
  readonly commitIndex: LogIndex;
  readonly appliedIndex: LogIndex;
  readonly uncommittedEntries: number;
  readonly membership: Membership;
  readonly voters: readonly { readonly id: NodeId; readonly reachable: boolean; readonly lastHeardMsAgo: number | null }[];
  readonly majorityReachable: boolean;
  /** Why forcing is refused right now, or null. */
  readonly refusal: string | null;
  /** What forcing would cost, one sentence per line, for the operator to read before confirming. */
  readonly risk: readonly string[];
}

export type NodeEvent =
  | {
    readonly type: 'leaderChanged'; readonly term: Term; readonly leaderId: NodeId | null;
    /** From when this node noticed the leader was gone to when it knew the new one. */
    readonly failoverMs: number | null;
    /** The leader this node knew before (null for the first leader after start). */
    readonly previousLeaderId?: NodeId | null;
    /** From this node's last contact with the previous leader to when it knew the new one. */
    readonly sinceLeaderContactMs?: number | null;
  }
  | { readonly type: 'roleChanged'; readonly role: string; readonly term: Term }
  | { readonly type: 'snapshot'; readonly index: LogIndex; readonly source: 'taken' | 'installed'; readonly bytes: number | null; readonly durationMs: number | null }
  | { readonly type: 'persisted'; readonly durationMs: number; readonly entries: number; readonly synced: boolean }
  | { readonly type: 'applied'; readonly entries: number }
  | { readonly type: 'membershipChanged'; readonly voters: readonly NodeId[]; readonly learners: readonly NodeId[] };

interface AckWaiter {
  readonly index: LogIndex;
  readonly level: 'leader' | 'all';
  readonly resolve: () => void;
}

interface ChangeListener {
  (record: ChangeRecord): void;
}

const MAX_CATCH_UP_TICKS = 100;
const MERGE_PATCH_RETRIES = 5;

/** Thrown when this node is not the leader; the HTTP layer forwards the request. */
export class NotLeaderError extends Error {
  override readonly name = 'NotLeaderError';
  constructor(readonly leaderId: NodeId | null, readonly leaderClientUrl: string | null) {
    super(leaderId === null ? 'no leader is known' : `the leader is ${leaderId}`);
  }
}

function documentErrorToApi(error: DocumentError): ApiError {
  const known: ErrorCode[] = ['INVALID_COLLECTION', 'INVALID_ID', 'INVALID_BODY', 'INVALID_PATCH', 'DOCUMENT_TOO_LARGE',
    'DOCUMENT_TOO_DEEP', 'BATCH_EMPTY', 'BATCH_TOO_LARGE', 'INVALID_IDEMPOTENCY_KEY', 'NOT_FOUND', 'ALREADY_EXISTS',
    'PRECONDITION_FAILED'];
  const code = (known as string[]).includes(error.code) ? (error.code as ErrorCode) : 'BAD_REQUEST';
  const details: Record<string, unknown> = {};
  if (error.opIndex !== undefined) details['opIndex'] = error.opIndex;
  if (error.currentVersion !== undefined) details['currentVersion'] = error.currentVersion;
  return new ApiError(code, error.message, details);
}

export class UnderstudyNode {
  readonly config: NodeConfig;
  readonly id: NodeId;
  private readonly deps: NodeDependencies;
  private readonly documentOptions: DocumentOptions;
  private readonly monotonicMs: () => number;
  private readonly wallMs: () => number;
  private replicaValue: Replica<ApplyResult> | null = null;
  private ticker: NodeJS.Timeout | null = null;
  private lastTickAt = 0;
  private ackWaiters: AckWaiter[] = [];
  private readonly appliedWaiters = new Set<() => void>();
  private readonly changeListeners = new Set<ChangeListener>();
  /**
   * Leader only: when (monotonic ms) each of the newest log indexes was appended, for replication
   * lag in time. appendTimes[i] is index appendTimesBase + i; indexes only grow, so an array
   * trimmed at the front now and then does it (a Map trimmed from its front was slow to iterate
   * past its deleted slots, on every message).
   */
  private appendTimes: number[] = [];
  private appendTimesBase = 1;
  private lastLeaderContact: number | null = null;
  /** When each peer was last heard from (monotonic ms): who can acknowledge ack=all writes. */
  private readonly lastHeard = new Map<NodeId, number>();
  private leaderLostAt: number | null = null;
  /** Last message from the leader this node knows (monotonic ms), for the failover time. */
  private leaderContactAt: number | null = null;
  /** The leader lost most recently and this node's last contact with it, until a new one is known. */
  private lostLeaderId: NodeId | null = null;
  private lostLeaderContactAt: number | null = null;
  private lastMembershipKey: string | null = null;
  private lastRole = '';
  private lastLeader: NodeId | null = null;
  private lastTerm = 0;
  private stopped = false;
  private fatalError: Error | null = null;

  constructor(config: NodeConfig, deps: NodeDependencies) {
    this.config = config;
    this.id = config.id;
    this.deps = deps;
    this.monotonicMs = deps.monotonicMs ?? (() => performance.now());
    this.wallMs = deps.wallMs ?? (() => Date.now());
    this.documentOptions = resolveDocumentOptions({
      documentBytesMax: config.bodyBytesMax,
      idempotencyRetentionMs: config.idempotencyRetentionMs,
      changeRetentionEntries: config.changeRetentionEntries,
    });
  }

  get replica(): Replica<ApplyResult> {
    assert(this.replicaValue !== null, 'node not started');
    return this.replicaValue;
  }

  get core(): RaftCore {
    return this.replica.core;
  }

  /** The document store (read-only use: backups, see backup.ts). */
  get documentStore(): NodeDocumentStore {
    return this.deps.documents;
  }

  get isStarted(): boolean {
    return this.replicaValue !== null && !this.stopped;
  }

  /** Opens or bootstraps state and starts ticking. Peer messages may be delivered afterwards. */
  start(): void {
    assert(this.replicaValue === null, 'start twice');
    const { log, documents } = this.deps;
    let state = log.load();
    if (state === null) {
      const membership: Membership = { voters: [...this.config.bootstrapVoters], learners: [] };
      state = bootstrapState(membership);
      log.bootstrap(state, documents.snapshot());
    }
    // The document store syncs lazily (the log is the durable record): if it fell behind the
    // latest snapshot, restore it from the snapshot; later entries are replayed from the log.
    const snapshot = log.loadSnapshot();
    if (snapshot !== null && readAppliedIndex(documents).index < snapshot.meta.index) {
      const problem = documents.restore(snapshot.bytes);
      if (problem !== null) throw new Error(`cannot restore the document store from snapshot ${snapshot.meta.index}: ${problem.message}`);
    }
    const core = new RaftCore({
      id: this.id,
      random: new Prng(this.deps.seed ?? (Date.now() ^ process.pid), this.id),
      electionTimeoutTicks: this.config.electionTimeoutTicks,
      heartbeatIntervalTicks: this.config.heartbeatIntervalTicks,
      entriesKeptAfterCompaction: this.config.logEntriesKeptAfterSnapshot,
      bytesKeptAfterCompaction: this.config.logBytesKeptAfterSnapshot,
      plantedBug: this.config.plantedBug ?? null,
    }, state);
    const appliedInStore = readAppliedIndex(documents).index;
    const lastLogIndex = Math.max(state.snapshot.index, state.entries.at(-1)?.index ?? 0);
    if (appliedInStore > lastLogIndex) {
      throw new Error(`the document store applied entry ${appliedInStore} but the log ends at ${lastLogIndex}: the data directory is inconsistent`);
    }
    this.replicaValue = new Replica<ApplyResult>({
      core,
      storage: this.timedStorage(log),
      stateMachine: {
        apply: (entry) => this.applyEntry(entry),
        snapshot: () => documents.snapshot(),
        ...(documents.writeSnapshot === undefined ? {} : { writeSnapshot: (write: (piece: Uint8Array) => Promise<void>) => documents.writeSnapshot!(write) }),
        ...(documents.batch === undefined ? {} : { batch: (applyAll: () => void) => documents.batch!(applyAll) }),
        appliedIndex: () => readAppliedIndex(documents).index,
        restore: (bytes) => {
          const problem = documents.restore(bytes);
          if (problem !== null) throw new Error(`snapshot restore failed: ${problem.message}`);
        },
      },
      transport: { send: (message) => this.deps.transport.send(message), flush: () => this.deps.transport.flushAll?.() },
      deferCollect: (collect) => setImmediate(collect),
      snapshotEveryEntries: this.config.snapshotEveryEntries,
      snapshotEveryBytes: this.config.snapshotEveryBytes,
      // Members snapshot at different points of each stretch: a large state is then serialised by
      // one node at a time, not by all at once on shared cores.
      snapshotPhase: snapshotPhaseOf(this.config.id, this.config.members.map((member) => member.id)),
      snapshotChunkBytesMax: 1024 * 1024,
      // Entries the store applied were committed and persisted here first, so they are in the log;
      // the persisted commit index may lag (commit-only changes are not fsynced).
      stateMachineAppliedIndex: appliedInStore,
      observer: {
        onAdvanced: () => this.afterProgress(),
        onSnapshotRestored: (meta) => this.deps.onEvent?.({ type: 'snapshot', index: meta.index, source: 'installed', bytes: null, durationMs: null }),
        onSnapshotTaken: (meta, info) => this.deps.onEvent?.({ type: 'snapshot', index: meta.index, source: 'taken', bytes: info.bytes, durationMs: info.durationMs }),
      },
      now: () => this.monotonicMs(),
    });
    this.lastTickAt = this.monotonicMs();
    this.ticker = setInterval(() => this.onTimer(), Math.max(1, Math.floor(this.config.tickMs / 2)));
    this.ticker.unref?.();
    this.afterProgress();
  }

  private timedStorage(log: NodeLogStorage): ReplicaStorage {
    return {
      persist: (ready, done) => {
        const started = this.monotonicMs();
        log.persist(ready, (error) => {
          if (error !== null) {
            this.fail(error);
            return;
          }
          this.deps.onEvent?.({ type: 'persisted', durationMs: this.monotonicMs() - started, entries: ready.entries.length, synced: ready.mustSync });
          done(null);
        });
      },
      saveSnapshot: (meta, bytes) => log.saveSnapshot(meta, bytes),
      ...(log.saveSnapshotFrom === undefined ? {} : {
        saveSnapshotFrom: (meta, produce, done) => log.saveSnapshotFrom!(meta, produce, (error, saved, bytes) => {
          if (error !== null) {
            // A replica that stopped abandons its snapshot: that is no failure of the storage.
            if (this.replicaValue?.isStopped !== true) this.fail(error);
            return;
          }
          done(null, saved, bytes);
        }),
      }),
      readSnapshotChunk: (index, offset, bytesMax) => log.readSnapshotChunk(index, offset, bytesMax),
      loadSnapshot: () => log.loadSnapshot(),
    };
  }

  /** A storage failure is fatal: stop serving rather than run on a log of unknown state. */
  private fail(error: Error): void {
    this.fatalError = error;
    this.stopInternal();
  }

  storageStats(): { logBytesUsed: number; snapshotBytes: number; fsyncs: number } | null {
    return this.deps.log.stats?.() ?? null;
  }

  get fatal(): Error | null {
    return this.fatalError;
  }

  /** Ticks derived from the monotonic clock: a frozen process catches up on wake (lease safety). */
  private onTimer(): void {
    if (this.stopped) return;
    const now = this.monotonicMs();
    const due = Math.floor((now - this.lastTickAt) / this.config.tickMs);
    if (due <= 0) return;
    this.lastTickAt += due * this.config.tickMs;
    const ticks = Math.min(due, MAX_CATCH_UP_TICKS);
    this.replica.tick();
    if (ticks > 1) {
      // Late: the process was stalled (GC, a long synchronous call, SIGSTOP), and the messages
      // that arrived meanwhile wait in the sockets. Timers run before the poll phase reads them;
      // setImmediate runs after it. Reading them first keeps a leader whose followers did answer
      // from stepping down by CheckQuorum, and a follower whose leader did send heartbeats from
      // starting an election. Safe because this server never enables lease reads (RaftCore's
      // leaseReads): every read is confirmed by a quorum round, so a leader that believes less
      // time has passed than did cannot serve a stale read.
      setImmediate(() => {
        for (let i = 1; i < ticks && !this.stopped; i++) this.replica.tick();
        this.afterProgress();
      });
    }
    this.afterProgress();
  }

  receive(message: Message): void {
    if (this.stopped || this.replicaValue === null) return;
    this.lastHeard.set(message.from, this.monotonicMs());
    if (message.from === this.core.leaderId) this.leaderContactAt = this.monotonicMs();
    if (message.from === this.core.leaderId || message.type === 'appendEntries' || message.type === 'heartbeat') {
      if (message.term >= this.core.term) this.lastLeaderContact = this.monotonicMs();
    }
    this.replica.receive(message);
    this.afterProgress();
  }

  private afterProgress(): void {
    if (this.replicaValue === null) return;
    const core = this.core;
    if (core.role !== this.lastRole || core.term !== this.lastTerm) {
      this.lastRole = core.role;
      this.deps.onEvent?.({ type: 'roleChanged', role: core.role, term: core.term });
    }
    if (core.leaderId !== this.lastLeader) {
      const now = this.monotonicMs();
      const initial = this.lastLeader === null && this.lastTerm === 0;
      if (this.lastLeader !== null) {
        // Losing (or replacing) a known leader: remember when we last heard from it (a leader
        // that steps down "hears from itself" until now).
        this.lostLeaderId = this.lastLeader;
        this.lostLeaderContactAt = this.lastLeader === this.id ? now : this.leaderContactAt;
      }
      if (core.leaderId === null) {
        this.leaderLostAt ??= now;
      } else {
        const failoverMs = this.leaderLostAt === null || initial ? null : now - this.leaderLostAt;
        const previousLeaderId = initial ? null : this.lostLeaderId;
        const sinceLeaderContactMs = previousLeaderId === null || this.lostLeaderContactAt === null ? null : now - this.lostLeaderContactAt;
        this.deps.onEvent?.({ type: 'leaderChanged', term: core.term, leaderId: core.leaderId, failoverMs, previousLeaderId, sinceLeaderContactMs });
        this.leaderLostAt = null;
        this.lostLeaderId = null;
        this.lostLeaderContactAt = null;
        this.leaderContactAt = now;
      }
      this.lastLeader = core.leaderId;
    }
    this.lastTerm = core.term;
    this.syncPeers();
    const membershipKey = `${core.membership.voters.join(',')}|${core.membership.learners.join(',')}`;
    if (membershipKey !== this.lastMembershipKey) {
      if (this.lastMembershipKey !== null) this.deps.onEvent?.({ type: 'membershipChanged', voters: core.membership.voters, learners: core.membership.learners });
      this.lastMembershipKey = membershipKey;
    }
    if (core.role === 'leader') {
      this.lastLeaderContact = this.monotonicMs();
      this.noteAppendTimes();
    }
    this.checkAckWaiters();
    for (const waiter of [...this.appliedWaiters]) waiter();
  }

  private checkAckWaiters(): void {
    if (this.ackWaiters.length === 0) return;
    const watermarks = this.core.ackWatermarks();
    const persisted = this.core.persistedIndex;
    const still: AckWaiter[] = [];
    for (const waiter of this.ackWaiters) {
      const reached = waiter.level === 'leader' ? persisted >= waiter.index : (watermarks?.all ?? -1) >= waiter.index;
      if (reached) waiter.resolve();
      else still.push(waiter);
    }
    this.ackWaiters = still;
  }

  private applyEntry(entry: Entry): ApplyResult {
    const decoded = decodeCommand(entry.data);
    // A malformed entry is skipped identically on every node (documents/apply rejects it too).
    const command = decoded.ok ? decoded.command : ({ type: 'noop' } as const);
    const result = applyCommand(this.deps.documents, command, { index: entry.index, term: entry.term }, this.documentOptions);
    if (result.status === 'applied' && !result.duplicate && result.changes.length > 0 && command.type === 'batch') {
      const record: ChangeRecord = { index: entry.index, term: entry.term, timestampMs: command.timestampMs, changes: result.changes };
      for (const listener of this.changeListeners) listener(record);
    }
    return result;
  }

  // ---------------------------------------------------------------------------------------------
  // Writes.

  private leaderClientUrl(leaderId: NodeId | null): string | null {
    if (leaderId === null) return null;
    return this.replicaValue?.core.membership.addresses?.[leaderId]?.client
      ?? this.config.members.find((member) => member.id === leaderId)?.client ?? null;
  }

  private knownMembership: Membership | null = null;

  /** A membership entry may name new members' addresses: tell the transport about them. */
  private syncPeers(): void {
    const membership = this.core.membership;
    if (membership === this.knownMembership) return;
    this.knownMembership = membership;
    for (const [id, address] of Object.entries(membership.addresses ?? {})) {
      const parsed = parseHostPort(address.peer);
      if (parsed !== null && id !== this.id) this.deps.transport.setPeer?.({ id, host: parsed.host, port: parsed.port });
    }
  }

  private requireLeader(): void {
    this.requireRunning();
    if (this.core.role !== 'leader') {
      throw new NotLeaderError(this.core.leaderId, this.leaderClientUrl(this.core.leaderId));
    }
  }

  private requireRunning(): void {
    if (this.stopped || this.replicaValue === null) {
      throw new ApiError(this.fatalError === null ? 'UNAVAILABLE' : 'STORAGE_ERROR',
        this.fatalError === null ? 'the node is not running' : `the node stopped after a storage error: ${this.fatalError.message}`);
    }
  }

  /** Validates user ops and turns them into row ops against the current state (leader only). */
  private prepare(ops: readonly UserOp[]): { rows: RowOp[]; userConditioned: boolean[] } {
    if (ops.length === 0) throw new ApiError('BATCH_EMPTY', 'a batch needs at least one operation');
    if (ops.length > this.documentOptions.batchOperationsMax) {
      throw new ApiError('BATCH_TOO_LARGE', `a batch holds at most ${this.documentOptions.batchOperationsMax} operations`);
    }
    const rows: RowOp[] = [];
    const userConditioned: boolean[] = [];
    // Rows written by earlier ops of this batch: a later patch applies on top of them, since the
    // batch applies in order (collection/id -> resulting body, or null when deleted).
    const overlay = new Map<string, JsonObject | null>();
    const rowKey = (collection: string, id: string): string => `${collection}\u0000${id}`;
    ops.forEach((op, opIndex) => {
      const withIndex = (error: DocumentError): ApiError => {
        const api = documentErrorToApi(error);
        if (ops.length > 1) api.details['opIndex'] = opIndex;
        return api;
      };
      switch (op.op) {
        case 'create': {
          const id = op.id ?? randomUUID();
          const prepared = prepareCreate({ collection: op.collection, id, body: op.body as JsonObject }, this.documentOptions);
          if (!prepared.ok) throw withIndex(prepared.error);
          rows.push(prepared.value);
          userConditioned.push(true);
          overlay.set(rowKey(op.collection, id), op.body as JsonObject);
          return;
        }
        case 'put': {
          if (op.ifNoneMatch === true) {
            const prepared = prepareCreate({ collection: op.collection, id: op.id, body: op.body as JsonObject }, this.documentOptions);
            if (!prepared.ok) throw withIndex(prepared.error);
            rows.push(prepared.value);
          } else {
            const request = op.ifMatch === undefined
              ? { collection: op.collection, id: op.id, body: op.body as JsonObject }
              : { collection: op.collection, id: op.id, body: op.body as JsonObject, ifMatch: op.ifMatch };
            const prepared = prepareReplace(request, this.documentOptions);
            if (!prepared.ok) throw withIndex(prepared.error);
            rows.push(prepared.value);
          }
          userConditioned.push(true);
          overlay.set(rowKey(op.collection, op.id), op.body as JsonObject);
          return;
        }
        case 'patch': {
          const key = rowKey(op.collection, op.id);
          if (overlay.has(key)) {
            const base = overlay.get(key) ?? null;
            if (base === null) throw withIndex({ code: 'NOT_FOUND', message: `${op.collection}/${op.id} is deleted earlier in this batch` });
            const merged = applyMergePatch(base, op.patch as JsonValue);
            const problem = validateBody(merged, this.documentOptions);
            if (problem !== null) throw withIndex(problem.code === 'INVALID_BODY' ? { ...problem, code: 'INVALID_PATCH' } : problem);
            const put: RowOp = op.ifMatch === undefined
              ? { action: 'put', collection: op.collection, id: op.id, body: merged as JsonObject }
              : { action: 'put', collection: op.collection, id: op.id, body: merged as JsonObject, condition: { version: op.ifMatch } };
            rows.push(put);
            userConditioned.push(true);
            overlay.set(key, merged as JsonObject);
            return;
          }
          const request = op.ifMatch === undefined
            ? { collection: op.collection, id: op.id, patch: op.patch as JsonValue }
            : { collection: op.collection, id: op.id, patch: op.patch as JsonValue, ifMatch: op.ifMatch };
          const prepared = prepareMergePatch(this.deps.documents, request, this.documentOptions);
          if (!prepared.ok) throw withIndex(prepared.error);
          rows.push(prepared.value.op);
          userConditioned.push(op.ifMatch !== undefined);
          const patchedOp = prepared.value.op;
          if (patchedOp.action === 'put') overlay.set(key, patchedOp.body);
          return;
        }
        case 'delete': {
          const request = op.ifMatch === undefined
            ? { collection: op.collection, id: op.id }
            : { collection: op.collection, id: op.id, ifMatch: op.ifMatch };
          const prepared = prepareDelete(request);
          if (!prepared.ok) throw withIndex(prepared.error);
          rows.push(prepared.value);
          userConditioned.push(true);
          overlay.set(rowKey(op.collection, op.id), null);
          return;
        }
      }
    });
    return { rows, userConditioned };
  }

  /** Voters not heard from within an election timeout: an ack=all write would only wait for them. */
  unreachableVoters(): NodeId[] {
    const horizon = this.monotonicMs() - this.config.tickMs * this.config.electionTimeoutTicks;
    return this.core.membership.voters.filter((voter) => voter !== this.id && (this.lastHeard.get(voter) ?? -Infinity) < horizon);
  }

  async write(request: WriteRequest): Promise<WriteResponse> {
    this.requireLeader();
    const deadline = this.monotonicMs() + request.timeoutMs;
    if (request.ack === 'all') {
      const unreachable = this.unreachableVoters();
      if (unreachable.length > 0) {
        throw new ApiError('NOT_ENOUGH_REPLICAS', `ack=all needs every voter, but ${unreachable.join(', ')} has not been heard from; the write was not attempted (use ack=majority to write with a voter down)`, { unreachable, retryAfterMs: 500 });
      }
    }
    if (request.idempotencyKey !== undefined) {
      const record = lookupIdempotency(this.deps.documents, request.idempotencyKey, this.wallMs(), this.documentOptions);
      if (record !== null) {
        // The first attempt's record is committed; a retry at ack=all still waits for every voter.
        if (request.ack === 'all') await this.waitForAck(record.index, 'all', deadline);
        return {
          status: 'applied', ack: request.ack, index: record.index, term: this.core.term, duplicate: true,
          results: record.ops, sessionToken: String(Math.max(record.index, this.replica.appliedIndex)),
        };
      }
    }
    for (let attempt = 0; ; attempt++) {
      const { rows, userConditioned } = this.prepare(request.ops);
      const command: BatchCommand = { type: 'batch', ops: rows, timestampMs: this.wallMs(), requestId: randomUUID() };
      if (request.idempotencyKey !== undefined) command.idempotencyKey = request.idempotencyKey;
      const data = encodeCommand(command);
      if (data.byteLength > this.documentOptions.batchBytesMax) {
        throw new ApiError('BATCH_TOO_LARGE', `the batch encodes to ${data.byteLength} bytes, more than ${this.documentOptions.batchBytesMax}`);
      }
      const outcome = await this.propose(data, request.ack, deadline);
      if (outcome.kind === 'accepted') {
        return { status: 'accepted', ack: 'leader', index: outcome.index, term: outcome.term, duplicate: false, results: [], sessionToken: String(outcome.index) };
      }
      const result = outcome.result;
      if (result.status === 'applied') {
        if (request.ack === 'all') await this.waitForAck(outcome.index, 'all', deadline);
        return {
          status: 'applied', ack: request.ack, index: outcome.index, term: outcome.term, duplicate: result.duplicate,
          results: result.ops, sessionToken: String(outcome.index),
        };
      }
      if (result.status === 'conflict') {
        // A merge patch's own base-version condition lost a race with another write: prepare
        // again from the newer state. A user's condition failing is the user's answer.
        if (!userConditioned[result.opIndex] && attempt < MERGE_PATCH_RETRIES && result.code === 'PRECONDITION_FAILED') continue;
        const details: Record<string, unknown> = { currentVersion: result.currentVersion, index: outcome.index };
        if (request.ops.length > 1) details['opIndex'] = result.opIndex;
        throw new ApiError(result.code, result.message, details);
      }
      throw new ApiError('BAD_REQUEST', result.status === 'rejected' ? result.error.message : 'the command was not a write');
    }
  }

  private propose(data: Uint8Array, ack: AckLevel, deadline: number): Promise<
    | { kind: 'accepted'; index: LogIndex; term: Term }
    | { kind: 'applied'; index: LogIndex; term: Term; result: ApplyResult }
  > {
    return new Promise((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => settle(() => reject(new ApiError('TIMEOUT', 'the write did not complete in time; it may still apply'))), Math.max(0, deadline - this.monotonicMs()));
      const settle = (action: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        action();
      };
      const onOutcome = (outcome: ProposalOutcome<ApplyResult>): void => {
        if (ack === 'leader') return; // answered at the leader's fsync; the outcome is the client's to observe
        settle(() => {
          if (outcome.status === 'applied') resolve({ kind: 'applied', index: outcome.index, term: outcome.term, result: outcome.result });
          else if (outcome.status === 'failed') reject(new ApiError('NOT_APPLIED', 'a newer leader superseded the write; it was not applied'));
          else reject(new ApiError('OUTCOME_UNKNOWN', `the outcome of the write is unknown (${outcome.reason}); retry with the same Idempotency-Key`));
        });
      };
      const proposal = this.replica.propose(data, onOutcome);
      if (!proposal.ok) {
        settle(() => {
          switch (proposal.reason) {
            case 'NOT_LEADER':
              reject(new NotLeaderError(proposal.leaderId, this.leaderClientUrl(proposal.leaderId)));
              return;
            case 'LEADERSHIP_TRANSFER':
              reject(new ApiError('LEADERSHIP_TRANSFER', proposal.message, { retryAfterMs: 100 }));
              return;
            case 'TOO_MANY_UNCOMMITTED':
              reject(new ApiError('OVERLOADED', proposal.message, { retryAfterMs: 50 }));
              return;
            case 'ENTRY_TOO_LARGE':
              reject(new ApiError('BATCH_TOO_LARGE', proposal.message));
              return;
            default:
              reject(new ApiError('UNAVAILABLE', proposal.message));
          }
        });
        return;
      }
      this.afterProgress();
      if (ack === 'leader') {
        this.ackWaiters.push({
          index: proposal.index, level: 'leader',
          resolve: () => settle(() => resolve({ kind: 'accepted', index: proposal.index, term: proposal.term })),
        });
        this.checkAckWaiters();
      }
    });
  }

  private waitForAck(index: LogIndex, level: 'all', deadline: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.ackWaiters = this.ackWaiters.filter((waiter) => waiter !== entry);
        reject(new ApiError('TIMEOUT', `the write was applied (committed on a majority at index ${index}) but not confirmed durable on every voter in time; retry with the same Idempotency-Key to wait again`, { index }));
      }, Math.max(0, deadline - this.monotonicMs()));
      const entry: AckWaiter = { index, level, resolve: () => { clearTimeout(timer); resolve(); } };
      this.ackWaiters.push(entry);
      this.checkAckWaiters();
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Reads.

  private waitApplied(index: LogIndex, timeoutMs: number): Promise<boolean> {
    if (this.replica.appliedIndex >= index) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = (): void => {
        if (this.replicaValue === null || this.replica.appliedIndex >= index) done(true);
      };
      const done = (value: boolean): void => {
        clearTimeout(timer);
        this.appliedWaiters.delete(check);
        resolve(value);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      this.appliedWaiters.add(check);
    });
  }

  /** Establishes the point a read may be served at, per the requested consistency. */
  async readBarrier(options: ReadOptions): Promise<ReadMeta> {
    this.requireRunning();
    switch (options.consistency) {
      case 'linearizable': {
        const index = await new Promise<LogIndex>((resolve, reject) => {
          const timer = setTimeout(() => reject(new ApiError('READ_NOT_CONFIRMED', 'leadership could not be confirmed in time')), options.timeoutMs);
          this.replica.read(randomUUID(), (outcome) => {
            clearTimeout(timer);
            if (outcome.ok) resolve(outcome.index);
            else reject(new ApiError(this.core.leaderId === null ? 'NO_LEADER' : 'READ_NOT_CONFIRMED', 'the read could not be confirmed by the leader; retry', { retryAfterMs: 100 }));
          });
          this.afterProgress();
        });
        return { consistency: 'linearizable', node: this.id, appliedIndex: Math.max(index, this.replica.appliedIndex) };
      }
      case 'session': {
        const token = options.sessionToken === undefined ? 0 : Number(options.sessionToken);
        if (!Number.isSafeInteger(token) || token < 0) throw new ApiError('INVALID_SESSION_TOKEN', 'the session token must be a non-negative integer');
        const caughtUp = await this.waitApplied(token, Math.min(options.timeoutMs, this.config.sessionWaitMsMax));
        if (!caughtUp) {
          throw new ApiError('SESSION_TIMEOUT', `this node applied ${this.replica.appliedIndex}, not yet ${token}; retry or read from the leader`, { appliedIndex: this.replica.appliedIndex });
        }
        return { consistency: 'session', node: this.id, appliedIndex: this.replica.appliedIndex };
      }
      case 'stale': {
        const lastContact = this.lastLeaderContact === null ? null : Math.round(this.monotonicMs() - this.lastLeaderContact);
        return {
          consistency: 'stale', node: this.id, appliedIndex: this.replica.appliedIndex,
          lagEntries: Math.max(0, this.core.commitIndex - this.replica.appliedIndex),
          lastLeaderContactMsAgo: lastContact,
        };
      }
    }
  }

  async get(collection: string, id: string, options: ReadOptions): Promise<{ doc: StoredDocument | null; meta: ReadMeta }> {
    const problem = validateCollectionName(collection) ?? validateDocumentId(id);
    if (problem !== null) throw documentErrorToApi(problem);
    const meta = await this.readBarrier(options);
    return { doc: this.deps.documents.get(collection, id), meta };
  }

  async list(query: ListQuery, options: ReadOptions): Promise<{ page: ListPage; meta: ReadMeta }> {
    const problem = validateCollectionName(query.collection);
    if (problem !== null) throw documentErrorToApi(problem);
    const meta = await this.readBarrier(options);
    return { page: this.deps.documents.list(query), meta };
  }

  validateBody(body: unknown): void {
    const problem = validateBody(body, this.documentOptions);
    if (problem !== null) throw documentErrorToApi(problem);
  }

  // ---------------------------------------------------------------------------------------------
  // Change feed.

  /** Changes after `after`, or CHANGES_COMPACTED when the feed no longer holds them. */
  changesAfter(after: LogIndex, limit: number): ChangeRecord[] {
    this.requireRunning();
    const records = readChanges(this.deps.documents, after, limit);
    const oldest = oldestChangeIndex(this.deps.documents);
    const horizon = this.replica.appliedIndex - this.documentOptions.changeRetentionEntries;
    if (after < horizon && (oldest === null || oldest > after + 1)) {
      throw new ApiError('CHANGES_COMPACTED', `changes after ${after} were compacted; the feed holds indexes above ${Math.max(horizon, (oldest ?? 1) - 1)}`, { oldestIndex: oldest });
    }
    return records;
  }

  onChange(listener: ChangeListener): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  // ---------------------------------------------------------------------------------------------
  // Administration and status.

  /**
   * What `failover --force` on this node would do and risk, without changing anything. Refused
   * (refusal set) while a majority of voters is reachable or a leader is alive: then the safe
   * paths (waiting for the election, switchover) apply.
   */
  forceFailoverPlan(): ForceFailoverPlan {
    this.requireRunning();
    const core = this.core;
    const now = this.monotonicMs();
    // Three election timeouts: a voter silent that long is not in the middle of a slow election.
    const horizon = now - 3 * this.config.tickMs * this.config.electionTimeoutTicks;
    const voters = core.membership.voters.map((id) => {
      const heard = id === this.id ? now : this.lastHeard.get(id) ?? null;
      return { id, reachable: heard !== null && heard >= horizon, lastHeardMsAgo: heard === null ? null : Math.round(now - heard) };
    });
    const reachable = voters.filter((voter) => voter.reachable).length;
    const majorityReachable = reachable > voters.length / 2;
    const leaderAlive = core.role === 'leader'
      ? majorityReachable
      : core.leaderId !== null && this.lastLeaderContact !== null && now - this.lastLeaderContact < this.config.tickMs * this.config.electionTimeoutTicks;
    const refusal = !core.membership.voters.includes(this.id) && !core.membership.learners.includes(this.id)
      ? `${this.id} is not a member of the cluster`
      : leaderAlive
        ? `a leader is alive (${core.leaderId ?? this.id}, term ${core.term}): use switchover for a planned change`
        : majorityReachable
          ? `${reachable} of ${voters.length} voters are reachable, a majority: the cluster can elect a leader by itself; wait for it (or fix the network) instead of forcing`
          : null;
    const uncommitted = core.lastIndex - core.commitIndex;
    const risk = [
      `${this.id} holds log entries up to index ${core.lastIndex} (term ${core.lastTerm}); it knows entries up to ${core.commitIndex} to be committed.`,
      `Writes the lost voters (${voters.filter((voter) => !voter.reachable).map((voter) => voter.id).join(', ') || 'none'}) acknowledged after index ${core.lastIndex} are lost for good if this node is not the most up-to-date survivor: compare lastIndex/lastTerm of every survivor first.`,
      uncommitted > 0
        ? `${uncommitted} entr${uncommitted === 1 ? 'y' : 'ies'} (${core.commitIndex + 1}-${core.lastIndex}) were never confirmed committed; forcing commits them (a client may have been told they failed or timed out).`
        : 'Every entry in its log is known to be committed.',
      `Afterwards ${this.id} is the only voter. The old members must not rejoin with their data: wipe their data directories and add them back with \`understudy member add\`.`,
    ];
    return {
      node: this.id, role: core.role, term: core.term, lastIndex: core.lastIndex, lastTerm: core.lastTerm,
      commitIndex: core.commitIndex, appliedIndex: this.replica.appliedIndex, uncommittedEntries: uncommitted,
      membership: core.membership, voters, majorityReachable, refusal, risk,
    };
  }

  /** Unsafe recovery (RaftCore.forceSoleVoter) after forceFailoverPlan() raised no refusal. */
  forceFailover(): ForceFailoverPlan {
    const plan = this.forceFailoverPlan();
    if (plan.refusal !== null) throw new ApiError('FORCE_FAILOVER_REFUSED', plan.refusal, { plan });
    this.core.forceSoleVoter();
    this.replica.pump();
    this.afterProgress();
    return plan;
  }

  transferLeadership(target: NodeId): void {
    this.requireLeader();
    const result = this.replica.transferLeadership(target);
    if (!result.ok) throw new ApiError('BAD_REQUEST', result.message ?? 'transfer refused');
    this.afterProgress();
  }

  async changeMembership(change: MembershipChange, timeoutMs: number): Promise<LogIndex> {
    this.requireLeader();
    const membership = this.core.membership;
    if (change.type === 'promoteLearner') {
      const progress = this.core.progressOf(change.node);
      const behind = progress === undefined ? null : this.core.lastIndex - progress.match;
      if (behind === null || behind > 100) {
        throw new ApiError('BAD_REQUEST', `${change.node} is not caught up (${behind ?? 'unknown'} entries behind); promote it once its lag is small`, { lagEntries: behind });
      }
    }
    if (change.type === 'removeNode' && membership.voters.includes(change.node)) {
      const remaining = membership.voters.filter((voter) => voter !== change.node);
      const unreachable = new Set(this.unreachableVoters());
      const reachable = remaining.filter((voter) => !unreachable.has(voter)).length;
      if (reachable < Math.floor(remaining.length / 2) + 1) {
        throw new ApiError('BAD_REQUEST', `removing ${change.node} would leave ${remaining.length} voters of which only ${reachable} are reachable: the cluster would lose its quorum`);
      }
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new ApiError('TIMEOUT', 'the membership change did not commit in time')), timeoutMs);
      const result = this.replica.proposeMembershipChange(change, (outcome) => {
        clearTimeout(timer);
        if (outcome.status === 'applied') resolve(outcome.index);
        else reject(new ApiError(outcome.status === 'failed' ? 'NOT_APPLIED' : 'OUTCOME_UNKNOWN', 'the membership change did not apply'));
      });
      if (!result.ok) {
        clearTimeout(timer);
        reject(new ApiError('BAD_REQUEST', result.message, { reason: result.reason }));
      }
      this.afterProgress();
    });
  }

  status(): NodeStatus {
    this.requireRunning();
    const core = this.core;
    const membership = core.membership;
    const now = this.monotonicMs();
    const members: MemberStatus[] = [];
    const ids = [...new Set([...membership.voters, ...membership.learners, ...this.config.members.map((m) => m.id)])];
    for (const id of ids) {
      const voter = membership.voters.includes(id);
      const learner = membership.learners.includes(id);
      const client = this.leaderClientUrl(id);
      if (id === this.id) {
        members.push({
          id, role: core.role === 'leader' ? 'leader' : learner ? 'learner' : core.role === 'follower' ? 'follower' : core.role === 'candidate' || core.role === 'preCandidate' ? 'candidate' : 'unknown',
          voter, matchIndex: core.persistedIndex, lagEntries: 0, lagMs: 0, connected: true, client,
        });
        continue;
      }
      const progress = core.role === 'leader' ? core.progressOf(id) : undefined;
      const lagEntries = progress === undefined ? null : Math.max(0, core.lastIndex - progress.match);
      const behindSince = progress === undefined || lagEntries === 0 ? null : this.appendTimeOf(progress.match + 1);
      members.push({
        id,
        role: id === core.leaderId ? 'leader' : learner ? 'learner' : voter ? 'follower' : 'unknown',
        voter,
        matchIndex: progress?.match ?? null,
        lagEntries,
        lagMs: progress === undefined ? null : lagEntries === 0 ? 0 : behindSince === null ? null : Math.round(now - behindSince),
        connected: this.deps.transport.isConnected?.(id) ?? null,
        client,
      });
    }
    return {
      id: this.id, role: core.role, term: core.term, leaderId: core.leaderId, leaderClientUrl: this.leaderClientUrl(core.leaderId),
      commitIndex: core.commitIndex, appliedIndex: this.replica.appliedIndex, lastIndex: core.lastIndex,
      snapshotIndex: core.snapshotMeta.index, membership, members,
      lastLeaderContactMsAgo: this.lastLeaderContact === null ? null : Math.round(now - this.lastLeaderContact),
      transferTarget: core.transferTarget,
    };
  }

  /** Records when the leader appended recent entries, for replication lag in milliseconds. */
  private noteAppendTimes(): void {
    if (this.replicaValue === null || this.core.role !== 'leader') return;
    const now = this.monotonicMs();
    const last = this.core.lastIndex;
    let next = this.appendTimesBase + this.appendTimes.length;
    if (last < next - 1 || last - next + 1 > APPEND_TIMES_KEPT) {
      // The log was cut back (a new term), or we start noting with a long log: start afresh.
      this.appendTimes = [];
      this.appendTimesBase = Math.max(1, last - APPEND_TIMES_KEPT + 1);
      next = this.appendTimesBase;
    }
    for (let index = next; index <= last; index++) this.appendTimes.push(now);
    if (this.appendTimes.length > 2 * APPEND_TIMES_KEPT) {
      const drop = this.appendTimes.length - APPEND_TIMES_KEPT;
      this.appendTimes = this.appendTimes.slice(drop);
      this.appendTimesBase += drop;
    }
  }

  /** When `index` was appended (monotonic ms), if it is among the indexes noted. */
  private appendTimeOf(index: LogIndex): number | null {
    return this.appendTimes[index - this.appendTimesBase] ?? null;
  }

  private stopInternal(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.ticker !== null) clearInterval(this.ticker);
    this.ticker = null;
    this.replicaValue?.stop();
    for (const waiter of this.appliedWaiters) waiter();
  }

  async stop(): Promise<void> {
    this.stopInternal();
    await this.deps.log.close();
    await this.deps.documents.close?.();
  }
}

/** How many of the newest log indexes the leader remembers the append time of. */
const APPEND_TIMES_KEPT = 50_000;

/** This member's place among the sorted member ids, as a fraction in [0, 1). */
export function snapshotPhaseOf(id: string, memberIds: readonly string[]): number {
  const sorted = [...new Set([...memberIds, id])].sort();
  return sorted.indexOf(id) / sorted.length;
}
