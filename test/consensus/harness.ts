/**
 * A small synchronous harness for interaction-style tests of the consensus core, in the spirit of
 * etcd-io/raft's rafttest: nothing happens unless the test says so.
 *
 * A TestCluster owns several RaftCores. Each node has
 *   - a durable image (hard state, log entries, snapshot meta + bytes, staged snapshot chunks),
 *     updated only when a Ready is processed: what a crash leaves behind and a restart reads back;
 *   - a tiny state machine: the list of entries it applied (a snapshot is the JSON of that list);
 *   - the Readies, read states and dropped reads it produced, for assertions.
 * Messages go to one in-flight queue. They are delivered only by deliver() / stabilize(); messages
 * on cut links or to crashed nodes are dropped at delivery.
 *
 * Processing a Ready follows the contract on the `Ready` interface (types.ts): send `messages`,
 * persist, send `messagesAfterPersist`, apply `committed`, `advance`. beginReady()/finishReady()
 * split this in two so a test can act (deliver, crash) while a node's fsync is "in flight".
 *
 * The SafetyChecker of the simulator watches every live node after every step (tick, delivery,
 * Ready, proposal...), and every applied entry; scenario tests assert `cluster.checker.ok` (a
 * violation's `timeMs` is the harness step number). Core assertion failures are not caught: they
 * fail the test at once.
 * Set RAFT_TRACE=1 to print a trace of every Ready and message.
 */
import { Prng } from '../../src/shared/prng.ts';
import { RaftCore, bootstrapState, type PersistentState } from '../../src/consensus/raft_core.ts';
import type { RaftConfig } from '../../src/consensus/config.ts';
import { describeMessage, describeReady } from '../../src/consensus/describe.ts';
import type {
  Entry, HardState, LogIndex, Membership, MembershipChange, Message, MessageType, NodeId,
  ProposalResult, ReadState, Ready, SnapshotMeta, Term,
} from '../../src/consensus/types.ts';
import { SafetyChecker } from '../../src/sim/safety_checker.ts';

export type CoreOverrides = Partial<Omit<RaftConfig, 'id' | 'random'>>;

/** One applied entry as the toy state machine records it. */
export interface Applied {
  readonly index: LogIndex;
  readonly term: Term;
  readonly kind: Entry['kind'];
  readonly text: string;
}

export interface Durable {
  hardState: HardState;
  entries: Entry[];
  snapshot: { meta: SnapshotMeta; bytes: Uint8Array };
  staged: { meta: SnapshotMeta; bytes: Uint8Array } | null;
}

export interface TestNode {
  readonly id: NodeId;
  core: RaftCore | null;
  durable: Durable;
  /** A Ready whose `messages` went out but which is not yet persisted (beginReady). */
  pending: Ready | null;
  applied: Applied[];
  readonly readies: Ready[];
  readonly readStates: ReadState[];
  readonly readsDropped: string[];
  restarts: number;
  readonly overrides: CoreOverrides;
}

export interface SentRecord {
  readonly message: Message;
  /** Sent from `messagesAfterPersist` (after the durable image was updated). */
  readonly afterPersist: boolean;
  readonly step: number;
}

export interface MessageFilter {
  readonly from?: NodeId;
  readonly to?: NodeId;
  readonly type?: MessageType;
  /** Messages matching the filter and this predicate are dropped instead of delivered. */
  readonly drop?: (message: Message) => boolean;
}

export interface ClusterOptions {
  /** Voters of the initial membership. */
  readonly voters: readonly NodeId[];
  readonly learners?: readonly NodeId[];
  /** Nodes started outside the cluster (empty membership), to be added by a membership change. */
  readonly spares?: readonly NodeId[];
  readonly seed?: number;
  /** Config overrides for every node, then per node. */
  readonly config?: CoreOverrides;
  readonly nodeConfig?: Readonly<Record<NodeId, CoreOverrides>>;
  /**
   * Pre-built durable logs (etcd's newTestRaft with a storage): the term of each entry from
   * index 1. Entry data is `e<index>t<term>`, so equal (index, term) means equal entries.
   */
  readonly logs?: Readonly<Record<NodeId, { readonly terms: readonly Term[]; readonly commit?: LogIndex }>>;
  /** InstallSnapshot chunk size in bytes. */
  readonly chunkBytes?: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function text(data: Uint8Array): string {
  return decoder.decode(data);
}

function encodeApplied(applied: readonly Applied[]): Uint8Array {
  return encoder.encode(JSON.stringify(applied.map((a) => [a.index, a.term, a.kind, a.text])));
}

function decodeApplied(bytes: Uint8Array): Applied[] {
  const rows = JSON.parse(text(bytes)) as [LogIndex, Term, Entry['kind'], string][];
  return rows.map(([index, term, kind, body]) => ({ index, term, kind, text: body }));
}

export class TestCluster {
  readonly nodes = new Map<NodeId, TestNode>();
  readonly checker: SafetyChecker;
  /** Messages in flight, oldest first. */
  queue: Message[] = [];
  /** Every message ever sent, in order. */
  readonly sent: SentRecord[] = [];
  readonly trace: string[] = [];
  private readonly cut = new Set<string>();
  private readonly seed: number;
  private readonly chunkBytes: number;
  private steps = 0;

  constructor(options: ClusterOptions) {
    this.seed = options.seed ?? 1;
    this.chunkBytes = options.chunkBytes ?? 8;
    this.checker = new SafetyChecker(() => this.steps);
    const membership: Membership = { voters: [...options.voters], learners: [...(options.learners ?? [])] };
    const outsiders: Membership = { voters: [], learners: [] };
    const members = [...membership.voters, ...membership.learners];
    for (const id of [...members, ...(options.spares ?? [])]) {
      const initial = initialState(members.includes(id) ? membership : outsiders, options.logs?.[id]);
      const node: TestNode = {
        id, core: null, pending: null, applied: [], readies: [], readStates: [], readsDropped: [], restarts: 0,
        overrides: { ...options.config, ...options.nodeConfig?.[id] },
        durable: {
          hardState: initial.hardState,
          entries: [...initial.entries],
          snapshot: { meta: initial.snapshot, bytes: encodeApplied([]) },
          staged: null,
        },
      };
      this.nodes.set(id, node);
      this.start(node);
    }
    this.afterStep();
  }

  // ---------------------------------------------------------------------------------------------
  // Access.

  node(id: NodeId): TestNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`unknown node ${id}`);
    return node;
  }

  core(id: NodeId): RaftCore {
    const core = this.node(id).core;
    if (core === null) throw new Error(`${id} is crashed`);
    return core;
  }

  ids(): NodeId[] {
    return [...this.nodes.keys()];
  }

  live(): NodeId[] {
    return this.ids().filter((id) => this.node(id).core !== null);
  }

  /** The live leader of the highest term, if any. */
  leader(): NodeId | null {
    let best: RaftCore | null = null;
    for (const id of this.live()) {
      const core = this.core(id);
      if (core.role === 'leader' && (best === null || core.term > best.term)) best = core;
    }
    return best?.id ?? null;
  }

  /** The node's in-memory log after its snapshot, as `index/term:text` (`index/term:noop` for no-ops). */
  log(id: NodeId): string[] {
    return this.core(id).heldEntries()
      .filter((entry) => entry.index > this.core(id).snapshotMeta.index)
      .map((entry) => `${entry.index}/${entry.term}:${entry.kind === 'normal' ? text(entry.data) : entry.kind}`);
  }

  /** The texts of the normal entries the node applied, in order. */
  appliedTexts(id: NodeId): string[] {
    return this.node(id).applied.filter((a) => a.kind === 'normal').map((a) => a.text);
  }

  /** Sent messages matching a filter (optionally only those sent at or after `since`). */
  sentWhere(filter: MessageFilter & { since?: number } = {}): Message[] {
    return this.sent
      .filter((record) => record.step >= (filter.since ?? 0) && matches(record.message, filter))
      .map((record) => record.message);
  }

  get step(): number {
    return this.steps;
  }

  // ---------------------------------------------------------------------------------------------
  // Inputs.

  tick(id: NodeId, n = 1): void {
    for (let i = 0; i < n; i++) {
      this.core(id).tick();
      this.afterStep();
    }
  }

  tickAll(n = 1): void {
    for (let i = 0; i < n; i++) for (const id of this.live()) this.tick(id);
  }

  campaign(id: NodeId): void {
    this.core(id).campaign();
    this.afterStep();
  }

  propose(id: NodeId, body: string): ProposalResult {
    const result = this.core(id).propose(encoder.encode(body));
    this.afterStep();
    return result;
  }

  proposeChange(id: NodeId, change: MembershipChange): ProposalResult {
    const result = this.core(id).proposeMembershipChange(change);
    this.afterStep();
    return result;
  }

  read(id: NodeId, requestId: string, options: { lease?: boolean } = {}): void {
    this.core(id).readIndex(requestId, options);
    this.afterStep();
  }

  /** Takes a snapshot of the node's applied state and compacts its log up to it. */
  snapshot(id: NodeId): SnapshotMeta {
    const node = this.node(id);
    const core = this.core(id);
    const meta = core.compact(core.appliedIndex);
    node.durable.snapshot = { meta, bytes: encodeApplied(node.applied.filter((a) => a.index <= meta.index)) };
    node.durable.entries = node.durable.entries.filter((entry) => entry.index > meta.index);
    this.afterStep();
    return meta;
  }

  /** Puts a message on the wire as if `message.from` had sent it (duplicates, reordering). */
  inject(message: Message): void {
    this.queue.push(message);
  }

  // ---------------------------------------------------------------------------------------------
  // Ready processing.

  /** Processes the node's Ready, if any, all the way to advance(). Returns it (null if none). */
  process(id: NodeId): Ready | null {
    const node = this.node(id);
    if (node.core === null) return null;
    if (node.pending === null && this.beginReady(id) === null) return null;
    return this.finishReady(id);
  }

  /** Takes the Ready and sends its `messages`; persisting is left "in flight". */
  beginReady(id: NodeId): Ready | null {
    const node = this.node(id);
    const core = this.core(id);
    if (node.pending !== null) throw new Error(`${id} already has a Ready in flight`);
    if (!core.hasReady()) return null;
    const ready = core.ready();
    node.pending = ready;
    node.readies.push(ready);
    this.note(`${id} ${describeReady(ready)}`);
    for (const message of ready.messages) this.send(node, message, false);
    this.afterStep();
    return ready;
  }

  /** Completes the in-flight Ready: persist, send messagesAfterPersist, apply, advance. */
  finishReady(id: NodeId): Ready {
    const node = this.node(id);
    const core = this.core(id);
    const ready = node.pending;
    if (ready === null) throw new Error(`${id} has no Ready in flight`);
    // Messages the core produced while the fsync was in flight (they are safe before it).
    for (const message of core.takeMessages()) this.send(node, message, false);
    this.persist(node, ready);
    for (const message of ready.messagesAfterPersist) this.send(node, message, true);
    for (const entry of ready.committed) {
      const last = node.applied.at(-1)?.index ?? node.durable.snapshot.meta.index;
      if (entry.index <= last) continue;
      if (entry.index !== last + 1) throw new Error(`${id} apply gap ${last} -> ${entry.index}`);
      node.applied.push({ index: entry.index, term: entry.term, kind: entry.kind, text: text(entry.data) });
      this.checker.onApplied(id, entry);
    }
    node.readStates.push(...ready.readStates);
    node.readsDropped.push(...ready.readsDropped);
    node.pending = null;
    core.advance(ready);
    this.afterStep();
    return ready;
  }

  private persist(node: TestNode, ready: Ready): void {
    const durable = node.durable;
    for (const chunk of ready.snapshotChunks) {
      if (chunk.offset === 0 || durable.staged?.meta.index !== chunk.snapshot.index) {
        durable.staged = { meta: chunk.snapshot, bytes: new Uint8Array(0) };
      }
      if (durable.staged.bytes.byteLength !== chunk.offset) continue;
      durable.staged.bytes = concat(durable.staged.bytes, chunk.data);
    }
    const snapshot = ready.snapshot;
    if (snapshot !== null) {
      // Install the staged chunks; keep the log after the snapshot only if it contains its last entry.
      const staged = durable.staged;
      if (staged === null || staged.meta.index !== snapshot.index) throw new Error('snapshot installed without its chunks');
      const keep = durable.entries.some((e) => e.index === snapshot.index && e.term === snapshot.term);
      durable.snapshot = { meta: snapshot, bytes: staged.bytes };
      durable.entries = keep ? durable.entries.filter((e) => e.index > snapshot.index) : [];
      durable.staged = null;
      node.applied = decodeApplied(staged.bytes); // the state machine restores from the snapshot
    }
    const first = ready.entries[0];
    if (first !== undefined) {
      const head = durable.entries[0]?.index ?? durable.snapshot.meta.index + 1;
      if (first.index > head + durable.entries.length) throw new Error(`${node.id}: durable log would have a gap`);
      durable.entries.length = Math.max(0, first.index - head);
      durable.entries.push(...ready.entries);
    }
    if (ready.hardState !== null) durable.hardState = ready.hardState;
  }

  private send(node: TestNode, message: Message, afterPersist: boolean): void {
    let out = message;
    if (message.type === 'installSnapshot' && message.data === null) {
      const snapshot = node.durable.snapshot;
      if (snapshot.meta.index !== message.snapshot.index) {
        node.core?.reportSnapshotUnavailable(message.to);
        return;
      }
      const end = Math.min(snapshot.bytes.byteLength, message.offset + this.chunkBytes);
      out = { ...message, data: snapshot.bytes.slice(message.offset, end), done: end === snapshot.bytes.byteLength };
    }
    this.note(`send ${describeMessage(out)}${afterPersist ? ' (after persist)' : ''}`);
    this.sent.push({ message: out, afterPersist, step: this.steps });
    this.queue.push(out);
  }

  // ---------------------------------------------------------------------------------------------
  // Network.

  /**
   * Delivers the queued messages matching the filter, oldest first (messages they cause are
   * queued, not delivered). Returns the messages actually stepped into a node.
   */
  deliver(filter: MessageFilter = {}): Message[] {
    const batch = this.queue.filter((message) => matches(message, filter));
    this.queue = this.queue.filter((message) => !matches(message, filter));
    const delivered: Message[] = [];
    for (const message of batch) {
      const target = this.nodes.get(message.to)?.core ?? null;
      if (target === null || this.cut.has(`${message.from}>${message.to}`) || filter.drop?.(message) === true) {
        this.note(`drop ${describeMessage(message)}`);
        continue;
      }
      this.note(`recv ${describeMessage(message)}`);
      target.step(message);
      delivered.push(message);
      this.afterStep();
    }
    return delivered;
  }

  /** Drops every queued message matching the filter. */
  dropQueued(filter: Omit<MessageFilter, 'drop'> = {}): Message[] {
    const dropped = this.queue.filter((message) => matches(message, filter));
    this.queue = this.queue.filter((message) => !matches(message, filter));
    return dropped;
  }

  /** Processes every node and delivers every message until nothing is left to do. */
  stabilize(options: { drop?: (message: Message) => boolean; maxRounds?: number } = {}): void {
    const maxRounds = options.maxRounds ?? 10_000;
    for (let round = 0; ; round++) {
      if (round >= maxRounds) throw new Error(`stabilize did not settle within ${maxRounds} rounds`);
      let busy = false;
      for (const id of this.live()) if (this.process(id) !== null) busy = true;
      if (this.queue.length > 0) {
        busy = true;
        this.deliver(options.drop === undefined ? {} : { drop: options.drop });
      }
      if (!busy) break;
    }
    this.checker.checkLogMatching(this.live().map((id) => this.core(id)));
  }

  /**
   * Ticks the nodes (default: every live node) once and stabilizes, until `done` holds. Returns
   * the number of ticks it took; throws when it would take more than `maxTicks`.
   */
  runUntil(
    done: () => boolean,
    maxTicks: number,
    options: { ids?: readonly NodeId[]; drop?: (message: Message) => boolean } = {},
  ): number {
    for (let ticks = 0; ; ticks++) {
      if (done()) return ticks;
      if (ticks >= maxTicks) throw new Error(`condition not reached within ${maxTicks} ticks`);
      for (const id of options.ids ?? this.live()) if (this.node(id).core !== null) this.tick(id);
      this.stabilize(options.drop === undefined ? {} : { drop: options.drop });
    }
  }

  /** Cuts every link to and from the node. */
  isolate(id: NodeId): void {
    for (const other of this.ids()) {
      if (other === id) continue;
      this.cut.add(`${id}>${other}`);
      this.cut.add(`${other}>${id}`);
    }
  }

  /** Cuts every link between different groups (nodes not listed are cut from everyone). */
  partition(groups: readonly (readonly NodeId[])[]): void {
    this.heal();
    const groupOf = new Map<NodeId, number>();
    groups.forEach((group, i) => { for (const id of group) groupOf.set(id, i); });
    for (const a of this.ids()) {
      for (const b of this.ids()) {
        if (a !== b && (groupOf.get(a) === undefined || groupOf.get(a) !== groupOf.get(b))) this.cut.add(`${a}>${b}`);
      }
    }
  }

  cutLink(from: NodeId, to: NodeId): void {
    this.cut.add(`${from}>${to}`);
  }

  heal(): void {
    this.cut.clear();
  }

  // ---------------------------------------------------------------------------------------------
  // Crashes.

  /** The process dies: the in-memory core and any Ready not yet persisted are lost. */
  crash(id: NodeId): void {
    const node = this.node(id);
    this.note(`crash ${id}`);
    node.core = null;
    node.pending = null;
    this.checker.forgetNode(id);
    this.afterStep();
  }

  /** Rebuilds the core from its durable image. */
  restart(id: NodeId): void {
    const node = this.node(id);
    if (node.core !== null) throw new Error(`${id} is running`);
    node.restarts++;
    this.note(`restart ${id}`);
    this.start(node);
    this.afterStep();
  }

  private start(node: TestNode): void {
    const state: PersistentState = {
      hardState: node.durable.hardState,
      snapshot: node.durable.snapshot.meta,
      entries: [...node.durable.entries],
    };
    node.applied = decodeApplied(node.durable.snapshot.bytes);
    node.core = new RaftCore(
      { id: node.id, random: new Prng(this.seed, `${node.id}#${node.restarts}`), ...node.overrides },
      state,
      (line) => this.note(line),
    );
  }

  // ---------------------------------------------------------------------------------------------

  private afterStep(): void {
    this.steps++;
    for (const id of this.live()) {
      const core = this.core(id);
      core.checkInvariants();
      this.checker.observe(core);
    }
  }

  private note(line: string): void {
    const entry = `[${this.steps}] ${line}`;
    this.trace.push(entry);
    if (process.env['RAFT_TRACE'] === '1') console.log(entry);
  }
}

function matches(message: Message, filter: MessageFilter): boolean {
  return (filter.from === undefined || message.from === filter.from) &&
    (filter.to === undefined || message.to === filter.to) &&
    (filter.type === undefined || message.type === filter.type);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a, 0);
  out.set(b, a.byteLength);
  return out;
}

function initialState(membership: Membership, log: { terms: readonly Term[]; commit?: LogIndex } | undefined): PersistentState {
  const state = bootstrapState(membership);
  if (log === undefined) return state;
  const entries: Entry[] = log.terms.map((term, i) => ({
    index: i + 1, term, kind: 'normal', data: encoder.encode(`e${i + 1}t${term}`),
  }));
  const term = Math.max(0, ...log.terms);
  return { ...state, hardState: { term, vote: null, commit: log.commit ?? 0 }, entries };
}

/** A cluster with a leader already elected and its no-op committed everywhere. */
export function electedCluster(options: ClusterOptions, leader: NodeId): TestCluster {
  const cluster = new TestCluster(options);
  if (options.config?.leaseReads === true) {
    // With lease reads a node refuses votes for one election timeout after it starts (it cannot
    // know whose lease it acknowledged before a restart): let that quiet period pass first.
    const ticks = options.config.electionTimeoutTicks ?? 10;
    for (let i = 0; i < ticks; i++) {
      cluster.tickAll(1);
      cluster.dropQueued();
    }
  }
  cluster.campaign(leader);
  cluster.stabilize();
  if (cluster.leader() !== leader) throw new Error(`${leader} did not win the first election`);
  return cluster;
}
