/**
 * RaftCore: one node's Raft consensus as a pure, deterministic state machine.
 *
 * Inputs: tick(), step(message), propose(data), proposeMembershipChange(change),
 * readIndex(requestId), transferLeadership(target), compact(index), and the driver's reports.
 * Output: a Ready batch (see types.ts) saying what to persist, send, apply and serve.
 *
 * No timers, sockets, disk, clocks or Math.random: time is the tick count, randomness comes from
 * the injected generator, and I/O is the driver's job. The server and the simulator drive this
 * same class, so a simulator seed replays any run exactly.
 *
 * Safety features are part of the first design, not flags added later: PreVote (thesis §9.6),
 * CheckQuorum (§6.2), ReadIndex (§6.4), a no-op entry at the start of each term (§6.4),
 * leadership transfer (§3.10), single-server membership changes (§4.1).
 *
 * Invariants (checkInvariants, run after every input in tests and the simulator):
 *   a leader voted for itself in its term and its leaderId is itself;
 *   commit <= lastIndex; applied <= commit; a voter set is never empty once bootstrapped;
 *   the leader's own progress is its persisted index; for each peer, match < next.
 */
import { assert, assertNever } from '../shared/assert.ts';
import { defaultRaftConfig, validateRaftConfig, type RaftConfig, type RaftConfigInput } from './config.ts';
import { Progress } from './progress.ts';
import { RaftLog } from './raft_log.ts';
import type {
  AckWatermarks, AppendEntriesMessage, AppendEntriesResponseMessage, Entry, HardState,
  HeartbeatMessage, HeartbeatResponseMessage, InstallSnapshotMessage,
  InstallSnapshotResponseMessage, LogIndex, Membership, MembershipChange, Message, NodeId,
  ProposalRejectionReason, ProposalResult, ReadIndexRequestMessage, ReadIndexResponseMessage,
  ReadState, Ready, RequestVoteMessage, RequestVoteResponseMessage, Role, SnapshotChunk,
  SnapshotMeta, Term,
} from './types.ts';

export interface PersistentState {
  readonly hardState: HardState;
  readonly snapshot: SnapshotMeta;
  /** The persisted log entries after (or slightly before) the snapshot, contiguous. */
  readonly entries: readonly Entry[];
}

export interface TransferResult {
  readonly ok: boolean;
  readonly reason?: 'NOT_LEADER' | 'NOT_A_VOTER' | 'UNKNOWN_NODE';
  readonly message?: string;
}

interface PendingRead {
  readonly requestId: string;
  readonly index: LogIndex;
  readonly round: number;
  /** The follower that asked, or null for a read issued on this node. */
  readonly from: NodeId | null;
}

interface ReceivingSnapshot {
  readonly snapshot: SnapshotMeta;
  nextOffset: number;
}

const EMPTY = new Uint8Array(0);

/** An empty membership-less start; bootstrapped clusters start from a snapshot at index 0. */
export function bootstrapState(membership: Membership): PersistentState {
  return {
    hardState: { term: 0, vote: null, commit: 0 },
    snapshot: { index: 0, term: 0, membership },
    entries: [],
  };
}

export class RaftCore {
  readonly id: NodeId;
  readonly config: RaftConfig;
  private readonly log: RaftLog;

  private termValue: Term;
  private voteValue: NodeId | null;
  private roleValue: Role = 'follower';
  private leaderIdValue: NodeId | null = null;
  private membershipValue: Membership;

  private tickCount = 0;
  /**
   * Nodes removed by a membership entry this leader appended: their progress is kept until they
   * hold that entry (so they learn of their removal and stop campaigning) or until `untilTick`.
   */
  private readonly departing = new Map<NodeId, { readonly index: LogIndex; readonly untilTick: number }>();
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  private readonly votes = new Map<NodeId, boolean>();

  private readonly progress = new Map<NodeId, Progress>();
  private transferee: NodeId | null = null;
  /** Leader only: data bytes appended in this term and not yet committed (backpressure in bytes). */
  private uncommittedBytes = 0;
  private transferElapsed = 0;
  /**
   * The term in which this leader sent a timeoutNow. The target may campaign whenever that
   * message arrives, even after the transfer was aborted, and its voters ignore stickiness: no
   * lease can be trusted for the rest of the term.
   */
  private leaseForfeitedInTerm: Term = -1;

  private readRound = 0;
  private readonly roundSentTick = new Map<number, number>();
  private pendingReads: PendingRead[] = [];
  private readsAwaitingCommit: PendingRead[] = [];
  private readonly pendingRemoteReads = new Set<string>();
  private readBroadcastPending = false;
  private appendBroadcastPending = false;
  /** The commit index moved: followers should hear it now, not at the next heartbeat. */
  private commitBroadcastPending = false;
  /**
   * Followers whose acknowledgement freed room for more entries. Their appends are built when the
   * driver collects messages (takeMessages/ready), not per acknowledgement, so the entries
   * proposed and the acknowledgements received between two collections leave as one message.
   */
  private readonly appendsPendingFor = new Set<NodeId>();

  private receivingSnapshot: ReceivingSnapshot | null = null;

  // Output buffers, drained by ready().
  private messages: Message[] = [];
  private messagesAfterPersist: Message[] = [];
  private readStates: ReadState[] = [];
  private readsDropped: string[] = [];
  private snapshotChunks: SnapshotChunk[] = [];
  private snapshotToInstall: SnapshotMeta | null = null;
  private lastHardState: HardState;
  private readyNumber = 0;
  private outstandingReady: Ready | null = null;
  private readonly trace: ((line: string) => void) | null;

  constructor(
    input: RaftConfigInput,
    state: PersistentState,
    trace: ((line: string) => void) | null = null,
  ) {
    const config = defaultRaftConfig(input);
    const problems = validateRaftConfig(config);
    if (problems.length > 0) throw new Error(`invalid raft configuration: ${problems.join('; ')}`);
    this.config = config;
    this.id = config.id;
    this.trace = trace;
    this.log = new RaftLog(state.snapshot, state.entries, state.hardState.commit);
    this.termValue = state.hardState.term;
    this.voteValue = state.hardState.vote;
    this.membershipValue = this.log.membershipAt(this.log.lastIndex());
    this.lastHardState = { term: this.termValue, vote: this.voteValue, commit: this.log.commit };
    this.resetRandomizedElectionTimeout();
    this.checkInvariants();
  }

  // ---------------------------------------------------------------------------------------------
  // Introspection.

  get term(): Term { return this.termValue; }
  get vote(): NodeId | null { return this.voteValue; }
  get role(): Role { return this.roleValue; }
  get leaderId(): NodeId | null { return this.leaderIdValue; }
  get membership(): Membership { return this.membershipValue; }
  get commitIndex(): LogIndex { return this.log.commit; }
  get appliedIndex(): LogIndex { return this.log.applied; }
  get persistedIndex(): LogIndex { return this.log.persisted; }
  get lastIndex(): LogIndex { return this.log.lastIndex(); }
  get lastTerm(): Term { return this.log.lastTerm(); }
  get snapshotMeta(): SnapshotMeta { return this.log.snapshot; }
  get transferTarget(): NodeId | null { return this.transferee; }
  get ticks(): number { return this.tickCount; }

  isVoter(node: NodeId = this.id): boolean {
    return this.membershipValue.voters.includes(node);
  }

  termAt(index: LogIndex): Term | undefined {
    return this.log.term(index);
  }

  entryAt(index: LogIndex): Entry | undefined {
    return this.log.entry(index);
  }

  /** Entries held in memory (for the simulator's checkers). */
  heldEntries(): readonly Entry[] {
    return this.log.heldEntries();
  }

  firstHeldIndex(): LogIndex {
    return this.log.first();
  }

  progressOf(node: NodeId): Readonly<Progress> | undefined {
    return this.progress.get(node);
  }

  /** Durability watermarks for the three acknowledgement levels; null unless leader. */
  ackWatermarks(): AckWatermarks | null {
    if (this.roleValue !== 'leader') return null;
    let all = this.log.persisted;
    for (const voter of this.membershipValue.voters) {
      if (voter === this.id) continue;
      all = Math.min(all, this.progress.get(voter)?.match ?? 0);
    }
    return { term: this.termValue, leader: this.log.persisted, majority: this.log.commit, all };
  }

  /** The nodes known to hold `index` durably (leader only; others know only themselves). */
  durableOn(index: LogIndex): NodeId[] {
    const out: NodeId[] = [];
    if (this.log.persisted >= index) out.push(this.id);
    if (this.roleValue !== 'leader') return out;
    for (const [node, progress] of this.progress) {
      if (progress.match >= index) out.push(node);
    }
    return out;
  }

  /** Whether this leader holds a valid read lease right now (lease reads only). */
  hasLease(): boolean {
    if (!this.config.leaseReads || !this.config.checkQuorum) return false;
    if (this.roleValue !== 'leader' || this.transferee !== null) return false;
    if (this.leaseForfeitedInTerm === this.termValue) return false;
    if (!this.committedInCurrentTerm()) return false;
    if (this.membershipValue.voters.length === 1) return true;
    const round = this.quorumAckedRound();
    const sentTick = this.roundSentTick.get(round);
    if (sentTick === undefined) return false;
    const leaseTicks = this.config.electionTimeoutTicks - this.config.leaseSafetyTicks;
    return this.tickCount < sentTick + leaseTicks;
  }

  // ---------------------------------------------------------------------------------------------
  // Inputs.

  tick(): void {
    this.tickCount++;
    if (this.roleValue === 'leader') this.tickLeader();
    else this.tickElection();
  }

  /** Start an election now (operator or test action). Pre-vote still applies unless transfer. */
  campaign(): void {
    if (this.roleValue === 'leader') return;
    this.startCampaign(this.config.preVote, false);
  }

  step(message: Message): void {
    if (message.to !== this.id) return;
    if (!this.stepTerm(message)) return;
    switch (message.type) {
      case 'requestVote': return this.handleRequestVote(message);
      case 'requestVoteResponse': return this.handleVoteResponse(message);
      case 'appendEntries': return this.handleAppendEntries(message);
      case 'appendEntriesResponse': return this.handleAppendEntriesResponse(message);
      case 'heartbeat': return this.handleHeartbeat(message);
      case 'heartbeatResponse': return this.handleHeartbeatResponse(message);
      case 'installSnapshot': return this.handleInstallSnapshot(message);
      case 'installSnapshotResponse': return this.handleInstallSnapshotResponse(message);
      case 'timeoutNow': return this.handleTimeoutNow(message);
      case 'readIndexRequest': return this.handleReadIndexRequest(message);
      case 'readIndexResponse': return this.handleReadIndexResponse(message);
      default: return assertNever(message, 'unknown message type');
    }
  }

  propose(data: Uint8Array): ProposalResult {
    const refusal = this.proposalRefusal();
    if (refusal !== null) return refusal;
    if (data.byteLength > this.config.entryBytesMax) {
      return this.reject('ENTRY_TOO_LARGE', `entry of ${data.byteLength} bytes exceeds ${this.config.entryBytesMax}`);
    }
    return this.appendAsLeader('normal', data, undefined);
  }

  proposeMembershipChange(change: MembershipChange): ProposalResult {
    const refusal = this.proposalRefusal();
    if (refusal !== null) return refusal;
    if (this.log.lastMembershipIndex() > this.log.commit) {
      return this.reject('MEMBERSHIP_CHANGE_PENDING', 'a membership change is still uncommitted');
    }
    // Without this rule a single-server change can be lost after a leader change (Ongaro,
    // raft-dev 2015, "bug in single-server membership changes").
    if (!this.committedInCurrentTerm()) {
      return this.reject('MEMBERSHIP_CHANGE_PENDING', 'the leader has not committed an entry in its term yet');
    }
    const next = applyMembershipChange(this.membershipValue, change, this.id);
    if (typeof next === 'string') return this.reject('INVALID_MEMBERSHIP_CHANGE', next);
    return this.appendAsLeader('membership', EMPTY, next);
  }

  /**
   * Requests a linearizable read. The answer arrives in a later Ready: readStates (serve once the
   * state machine has applied that index) or readsDropped (leadership was lost; retry elsewhere).
   */
  readIndex(requestId: string, options: { lease?: boolean } = {}): void {
    if (this.roleValue === 'leader') {
      if (this.config.plantedBug === 'readWithoutQuorum') {
        this.readStates.push({ requestId, index: this.log.commit });
        return;
      }
      if (options.lease === true && this.hasLease()) {
        this.readStates.push({ requestId, index: this.log.commit });
        return;
      }
      this.registerRead(requestId, null);
      return;
    }
    if (this.leaderIdValue === null || this.pendingRemoteReads.size >= this.config.pendingReadsMax) {
      this.readsDropped.push(requestId);
      return;
    }
    this.pendingRemoteReads.add(requestId);
    this.send({ type: 'readIndexRequest', from: this.id, to: this.leaderIdValue, term: this.termValue, requestId });
  }

  transferLeadership(target: NodeId): TransferResult {
    if (this.roleValue !== 'leader') return { ok: false, reason: 'NOT_LEADER', message: 'not the leader' };
    if (target === this.id) return { ok: true };
    if (!this.membershipValue.voters.includes(target)) {
      return { ok: false, reason: 'NOT_A_VOTER', message: `${target} is not a voter` };
    }
    const progress = this.progress.get(target);
    if (progress === undefined) return { ok: false, reason: 'UNKNOWN_NODE', message: `${target} unknown` };
    this.transferee = target;
    this.transferElapsed = 0;
    this.note(`transferring leadership to ${target}`);
    if (progress.match === this.log.lastIndex()) this.sendTimeoutNow(target);
    else this.sendAppend(target, true);
    return { ok: true };
  }

  /**
   * Unsafe recovery for a majority of voters lost for good (etcd's --force-new-cluster): this node
   * becomes the only voter and leads at once, in a new term, without any vote. Everything in its
   * log is then committed, including entries the old cluster never committed; entries the lost
   * majority committed beyond this node's log are gone. The old members must never rejoin with
   * their data (they could hold different entries at the same indices): they are wiped and added
   * again as new members. Only an operator's explicit request may call this; nothing in the
   * protocol ever does.
   */
  forceSoleVoter(): void {
    assert(this.members().includes(this.id), 'only a member can be forced to lead');
    if (this.roleValue === 'leader') this.becomeFollower(this.termValue, null);
    const sole: Membership = { voters: [this.id], learners: [] };
    this.setMembership(sole);
    this.becomeCandidate();
    this.becomeLeader();
    // Recorded in the log so that restarts, snapshots and later members see the new configuration.
    this.appendAsLeader('membership', EMPTY, sole);
    this.note(`forced to lead alone at term ${this.termValue}: the cluster is now { ${this.id} }`);
  }

  /**
   * What compact(index) would record, without compacting: lets the driver name a snapshot it
   * takes in the background and compact only once it is durable.
   */
  snapshotMetaAt(index: LogIndex): SnapshotMeta {
    assert(index <= this.log.applied && index > this.log.snapshot.index, `snapshot index ${index} must be applied and after the current snapshot`);
    const term = this.log.term(index);
    assert(term !== undefined, `snapshot index ${index} has no term`);
    return { index, term, membership: this.log.membershipAt(index) };
  }

  /** Log compaction: the driver took a snapshot of the state machine at `index` (<= applied). */
  compact(index: LogIndex): SnapshotMeta {
    return this.log.compact(index, this.config.entriesKeptAfterCompaction, this.config.bytesKeptAfterCompaction);
  }

  /** The driver could not read the snapshot chunk a peer needed (it was replaced): start over. */
  reportSnapshotUnavailable(peer: NodeId): void {
    const progress = this.progress.get(peer);
    if (progress === undefined || progress.state !== 'snapshot') return;
    progress.snapshot = null;
    progress.becomeProbe();
  }

  // ---------------------------------------------------------------------------------------------
  // Ready / advance.

  hasReady(): boolean {
    if (this.outstandingReady !== null) return false;
    return this.messages.length > 0 || this.messagesAfterPersist.length > 0 ||
      this.log.hasUnstable() || this.log.hasCommittedToApply() || this.readStates.length > 0 ||
      this.readsDropped.length > 0 || this.snapshotChunks.length > 0 ||
      this.snapshotToInstall !== null || this.hardStateChanged() ||
      this.readRoundDue() || this.appendBroadcastPending || this.commitBroadcastPending ||
      this.hasAppendsToSend();
  }

  /** Whether an acknowledged follower has entries waiting that its window now lets us send. */
  private hasAppendsToSend(): boolean {
    if (this.appendsPendingFor.size === 0) return false;
    const lastIndex = this.log.lastIndex();
    for (const node of this.appendsPendingFor) {
      const progress = this.progress.get(node);
      if (progress !== undefined && progress.next <= lastIndex && !progress.isPaused(this.config.inflightMessagesMax)) return true;
    }
    return false;
  }

  /** Messages that are safe to send before the outstanding Ready is persisted. */
  takeMessages(): Message[] {
    this.flushBroadcasts();
    const out = this.messages;
    this.messages = [];
    return out;
  }

  ready(): Ready {
    assert(this.outstandingReady === null, 'ready() called before advance() of the previous Ready');
    this.flushBroadcasts();
    const hardState = this.hardStateChanged()
      ? { term: this.termValue, vote: this.voteValue, commit: this.log.commit }
      : null;
    const entries = this.log.takeUnstable();
    const snapshot = this.snapshotToInstall;
    const termOrVoteChanged = hardState !== null &&
      (hardState.term !== this.lastHardState.term || hardState.vote !== this.lastHardState.vote);
    const ready: Ready = {
      number: ++this.readyNumber,
      hardState,
      entries,
      snapshot,
      snapshotChunks: this.snapshotChunks,
      messages: this.messages,
      messagesAfterPersist: this.messagesAfterPersist,
      committed: this.log.takeCommitted(this.config.committedEntriesPerReadyMax, this.config.committedBytesPerReadyMax),
      readStates: this.readStates,
      readsDropped: this.readsDropped,
      mustSync: entries.length > 0 || termOrVoteChanged || snapshot !== null || this.snapshotChunks.length > 0,
    };
    if (hardState !== null) this.lastHardState = hardState;
    this.snapshotToInstall = null;
    this.snapshotChunks = [];
    this.messages = [];
    this.messagesAfterPersist = [];
    this.readStates = [];
    this.readsDropped = [];
    this.outstandingReady = ready;
    return ready;
  }

  /** The driver persisted, sent and applied everything in `ready`. */
  advance(ready: Ready): void {
    assert(this.outstandingReady === ready, 'advance() of a Ready that is not outstanding');
    this.outstandingReady = null;
    this.log.markPersisted(ready.entries);
    const lastCommitted = ready.committed.at(-1);
    if (lastCommitted !== undefined) this.log.markApplied(lastCommitted.index);
    if (this.roleValue === 'leader') {
      if (this.maybeCommit()) this.appendBroadcastPending = true;
    }
    this.checkInvariants();
  }

  // ---------------------------------------------------------------------------------------------
  // Term handling common to every message (Raft §5.1, thesis §9.6 and §6.2).

  /** Returns false when the message must be dropped. */
  private stepTerm(message: Message): boolean {
    if (message.term > this.termValue) {
      if (message.type === 'requestVote') {
        // Leader stickiness: a node that heard from a leader within the election timeout ignores
        // vote requests, so a rejoining or partitioned node cannot depose a healthy leader.
        // With lease reads, a node that just started cannot know whether it acknowledged a
        // leader's lease before it restarted, so it keeps the same distance for one timeout.
        const justStarted = this.config.leaseReads && this.tickCount < this.config.electionTimeoutTicks;
        const inLease = this.config.checkQuorum && (this.leaderIdValue !== null || justStarted) &&
          this.electionElapsed < this.config.electionTimeoutTicks;
        if (inLease && !message.transfer) {
          this.note(`ignored ${message.preVote ? 'pre-vote' : 'vote'} from ${message.from}: leader recently heard`);
          return false;
        }
        if (message.preVote) return true;
      }
      if (message.type === 'requestVoteResponse' && message.preVote && message.granted) return true;
      const fromLeader = message.type === 'appendEntries' || message.type === 'heartbeat' ||
        message.type === 'installSnapshot';
      this.becomeFollower(message.term, fromLeader ? message.from : null);
      return true;
    }
    if (message.term < this.termValue) {
      this.answerStaleMessage(message);
      return false;
    }
    return true;
  }

  private answerStaleMessage(message: Message): void {
    if (message.type === 'appendEntries' || message.type === 'heartbeat' || message.type === 'installSnapshot') {
      // Tell a deposed leader about the newer term so it steps down at once.
      this.send({
        type: 'appendEntriesResponse', from: this.id, to: message.from, term: this.termValue,
        success: false, matchIndex: 0, rejectIndex: 0, hintIndex: 0, hintTerm: 0,
      });
    } else if (message.type === 'requestVote') {
      this.send({
        type: 'requestVoteResponse', from: this.id, to: message.from, term: this.termValue,
        preVote: message.preVote, granted: false,
      });
    } else if (message.type === 'readIndexRequest') {
      this.send({
        type: 'readIndexResponse', from: this.id, to: message.from, term: message.term,
        requestId: message.requestId, index: -1,
      });
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Role transitions.

  private becomeFollower(term: Term, leader: NodeId | null): void {
    const wasLeader = this.roleValue === 'leader';
    if (term > this.termValue) {
      this.termValue = term;
      this.voteValue = null;
    }
    assert(term === this.termValue, 'becomeFollower at an older term');
    if (wasLeader) this.dropLeaderState();
    if (leader !== this.leaderIdValue || this.roleValue !== 'follower') this.dropRemoteReads();
    this.roleValue = 'follower';
    this.leaderIdValue = leader;
    this.electionElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.note(`became follower at term ${term}${leader === null ? '' : ` of leader ${leader}`}`);
  }

  private becomePreCandidate(): void {
    assert(this.roleValue !== 'leader', 'invalid transition leader -> preCandidate');
    this.dropRemoteReads();
    this.roleValue = 'preCandidate';
    this.leaderIdValue = null;
    this.votes.clear();
    this.electionElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.note(`became pre-candidate at term ${this.termValue}`);
  }

  private becomeCandidate(): void {
    assert(this.roleValue !== 'leader', 'invalid transition leader -> candidate');
    this.dropRemoteReads();
    this.termValue += 1;
    this.voteValue = this.id;
    this.roleValue = 'candidate';
    this.leaderIdValue = null;
    this.votes.clear();
    this.electionElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.note(`became candidate at term ${this.termValue}`);
  }

  private becomeLeader(): void {
    assert(this.roleValue === 'candidate', `invalid transition ${this.roleValue} -> leader`);
    assert(this.voteValue === this.id, 'leader must have voted for itself');
    this.roleValue = 'leader';
    this.leaderIdValue = this.id;
    this.progress.clear();
    for (const node of this.members()) {
      if (node === this.id) continue;
      const progress = new Progress(this.log.lastIndex() + 1);
      progress.recentActive = true;
      this.progress.set(node, progress);
    }
    this.transferee = null;
    this.uncommittedBytes = 0;
    this.readRound = 0;
    this.roundSentTick.clear();
    this.heartbeatElapsed = 0;
    this.electionElapsed = 0;
    this.note(`became leader at term ${this.termValue}`);
    // Thesis §6.4: a leader commits an entry of its own term before it knows the commit index.
    this.appendAsLeader('noop', EMPTY, undefined);
  }

  /** Stops replicating to a removed node once it holds its removal, or when its time is up. */
  private forgetDeparted(node: NodeId): void {
    const departing = this.departing.get(node);
    if (departing === undefined) return;
    const progress = this.progress.get(node);
    if (progress !== undefined && progress.match < departing.index && this.tickCount < departing.untilTick) return;
    this.departing.delete(node);
    this.progress.delete(node);
    this.note(`stopped replicating to removed node ${node}`);
  }

  private dropLeaderState(): void {
    this.departing.clear();
    for (const read of [...this.readsAwaitingCommit, ...this.pendingReads]) this.failRead(read);
    this.readsAwaitingCommit = [];
    this.pendingReads = [];
    this.progress.clear();
    this.transferee = null;
    this.readBroadcastPending = false;
    this.appendBroadcastPending = false;
    this.commitBroadcastPending = false;
  }

  private dropRemoteReads(): void {
    for (const requestId of this.pendingRemoteReads) this.readsDropped.push(requestId);
    this.pendingRemoteReads.clear();
  }

  // ---------------------------------------------------------------------------------------------
  // Elections.

  private tickElection(): void {
    this.electionElapsed++;
    if (!this.isVoter()) return;
    if (this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.startCampaign(this.config.preVote, false);
    }
  }

  private startCampaign(preVote: boolean, transfer: boolean): void {
    if (!this.isVoter()) return;
    if (preVote) this.becomePreCandidate();
    else this.becomeCandidate();
    const voteTerm = preVote ? this.termValue + 1 : this.termValue;
    this.votes.set(this.id, true);
    if (this.tallyVotes()) return;
    for (const voter of this.membershipValue.voters) {
      if (voter === this.id) continue;
      const request: RequestVoteMessage = {
        type: 'requestVote', from: this.id, to: voter, term: voteTerm, preVote,
        lastIndex: this.log.lastIndex(), lastTerm: this.log.lastTerm(), transfer,
      };
      // A real vote request carries our own vote for ourselves: it may leave only once persisted.
      if (preVote) this.send(request);
      else this.sendAfterPersist(request);
    }
  }

  /** Counts votes; moves on when decided. Returns true when the election is over. */
  private tallyVotes(): boolean {
    const voters = this.membershipValue.voters;
    const quorum = Math.floor(voters.length / 2) + 1;
    let granted = 0;
    let rejected = 0;
    for (const voter of voters) {
      const vote = this.votes.get(voter);
      if (vote === true) granted++;
      else if (vote === false) rejected++;
    }
    if (granted >= quorum) {
      if (this.roleValue === 'preCandidate') this.startCampaign(false, false);
      else this.becomeLeader();
      return true;
    }
    if (rejected > voters.length - quorum) {
      this.becomeFollower(this.termValue, null);
      return true;
    }
    return false;
  }

  private handleRequestVote(message: RequestVoteMessage): void {
    // Raft §5.2 and §5.4.1. A pre-vote asks "would you vote for me at term+1?" and changes nothing.
    const canVote = (this.config.plantedBug === 'voteTwiceInTerm' && this.roleValue === 'follower') ||
      this.voteValue === message.from ||
      (this.voteValue === null && this.leaderIdValue === null) ||
      (message.preVote && message.term > this.termValue);
    const upToDate = this.log.isUpToDate(message.lastIndex, message.lastTerm);
    const granted = canVote && upToDate;
    if (granted && !message.preVote) {
      this.voteValue = message.from;
      this.electionElapsed = 0;
    }
    this.note(`${granted ? 'granted' : 'rejected'} ${message.preVote ? 'pre-vote' : 'vote'} to ${message.from} at term ${message.term}`);
    const response: RequestVoteResponseMessage = {
      type: 'requestVoteResponse', from: this.id, to: message.from,
      term: granted ? message.term : this.termValue, preVote: message.preVote, granted,
    };
    if (message.preVote) this.send(response);
    else this.sendAfterPersist(response);
  }

  private handleVoteResponse(message: RequestVoteResponseMessage): void {
    const expecting = (this.roleValue === 'preCandidate' && message.preVote) ||
      (this.roleValue === 'candidate' && !message.preVote);
    if (!expecting || !this.membershipValue.voters.includes(message.from)) return;
    this.votes.set(message.from, message.granted);
    this.tallyVotes();
  }

  private handleTimeoutNow(message: Message): void {
    if (!this.isVoter()) return;
    this.note(`timeoutNow from ${message.from}: campaigning at once`);
    this.startCampaign(false, true);
  }

  private resetRandomizedElectionTimeout(): void {
    const base = this.config.electionTimeoutTicks;
    this.randomizedElectionTimeout = base + (this.config.random.nextUint32() % base);
  }

  // ---------------------------------------------------------------------------------------------
  // Leader: replication, commit, heartbeats, check-quorum, transfer.

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    for (const node of [...this.departing.keys()]) this.forgetDeparted(node);
    if (this.electionElapsed >= this.config.electionTimeoutTicks) {
      this.electionElapsed = 0;
      if (this.config.checkQuorum && !this.quorumActive()) {
        this.note('stepping down: no quorum heard within an election timeout');
        this.becomeFollower(this.termValue, null);
        return;
      }
    }
    if (this.transferee !== null && ++this.transferElapsed >= this.config.transferTimeoutTicks) {
      this.note(`leadership transfer to ${this.transferee} aborted: timed out`);
      this.transferee = null;
    }
    if (this.heartbeatElapsed >= this.config.heartbeatIntervalTicks) {
      this.heartbeatElapsed = 0;
      this.broadcastHeartbeat();
    }
    for (const [node, progress] of this.progress) {
      if (progress.state !== 'snapshot') continue;
      if (++progress.snapshotTicksSinceSend >= this.config.snapshotChunkTimeoutTicks) this.sendSnapshotChunk(node);
    }
  }

  private quorumActive(): boolean {
    const voters = this.membershipValue.voters;
    let active = 0;
    for (const voter of voters) {
      if (voter === this.id || this.progress.get(voter)?.recentActive === true) active++;
    }
    for (const progress of this.progress.values()) progress.recentActive = false;
    return active >= Math.floor(voters.length / 2) + 1;
  }

  private proposalRefusal(): ProposalResult | null {
    if (this.roleValue !== 'leader') return this.reject('NOT_LEADER', 'not the leader');
    if (this.transferee !== null) {
      return this.reject('LEADERSHIP_TRANSFER', `leadership is moving to ${this.transferee}`);
    }
    if (this.log.lastIndex() - this.log.commit >= this.config.uncommittedEntriesMax) {
      return this.reject('TOO_MANY_UNCOMMITTED', `${this.config.uncommittedEntriesMax} entries are awaiting commit`);
    }
    if (this.uncommittedBytes > 0 && this.uncommittedBytes >= this.config.uncommittedBytesMax) {
      return this.reject('TOO_MANY_UNCOMMITTED', `${this.uncommittedBytes} bytes of entries are awaiting commit`);
    }
    return null;
  }

  private reject(reason: ProposalRejectionReason, message: string): ProposalResult {
    return { ok: false, reason, message, leaderId: this.leaderIdValue };
  }

  private appendAsLeader(kind: Entry['kind'], data: Uint8Array, membership: Membership | undefined): ProposalResult {
    assert(this.roleValue === 'leader', 'only a leader appends');
    const index = this.log.lastIndex() + 1;
    const entry: Entry = membership === undefined
      ? { index, term: this.termValue, kind, data }
      : { index, term: this.termValue, kind, data, membership };
    this.log.append(entry);
    this.uncommittedBytes += data.byteLength;
    this.log.unstableFrom = Math.min(this.log.unstableFrom, index);
    if (membership !== undefined) this.setMembership(membership, index);
    // Followers get it with the next flush; our own vote counts once the entry is fsynced (advance).
    this.appendBroadcastPending = true;
    return { ok: true, index, term: this.termValue };
  }

  private flushBroadcasts(): void {
    if (this.roleValue !== 'leader') {
      this.appendBroadcastPending = false;
      this.readBroadcastPending = false;
      this.commitBroadcastPending = false;
      this.appendsPendingFor.clear();
      return;
    }
    if (this.appendBroadcastPending || this.commitBroadcastPending) {
      const withCommit = this.commitBroadcastPending;
      this.appendBroadcastPending = false;
      this.commitBroadcastPending = false;
      this.appendsPendingFor.clear();
      for (const node of this.progress.keys()) this.sendAppends(node, withCommit);
    } else if (this.appendsPendingFor.size > 0) {
      for (const node of this.appendsPendingFor) this.sendAppends(node, false);
      this.appendsPendingFor.clear();
    }
    if (this.readRoundDue()) {
      this.readBroadcastPending = false;
      this.broadcastHeartbeat();
    }
  }

  /**
   * Reads wait for a heartbeat round, and one round at a time is in flight (as etcd's read loop):
   * reads that arrive while a round is out wait for the next, sent once a majority answered this
   * one, so a burst of reads costs one round trip's messages, not one round per event-loop turn.
   * A lost answer cannot stall them: the next tick's heartbeat starts a newer round, and an
   * answer to it confirms every earlier one.
   */
  private readRoundDue(): boolean {
    return this.readBroadcastPending && this.quorumAckedRound() >= this.readRound;
  }

  /** Sends as many appends to `node` as its progress state allows. */
  private sendAppends(node: NodeId, sendIfEmpty: boolean): void {
    let first = true;
    for (let sent = 0; sent <= this.config.inflightMessagesMax; sent++) {
      if (!this.sendAppend(node, first && sendIfEmpty)) return;
      first = false;
      if (this.progress.get(node)?.state !== 'replicate') return;
    }
  }

  /** Returns true when a message was sent. */
  private sendAppend(node: NodeId, sendIfEmpty: boolean): boolean {
    const progress = this.progress.get(node);
    if (progress === undefined || progress.isPaused(this.config.inflightMessagesMax)) return false;
    const prevIndex = progress.next - 1;
    const prevTerm = this.log.term(prevIndex);
    const entries = this.log.slice(
      progress.next, this.log.lastIndex(), this.config.entriesPerMessageMax, this.config.bytesPerMessageMax,
    );
    if (prevTerm === undefined || entries === undefined) {
      progress.becomeSnapshot(this.log.snapshot);
      this.note(`${node} needs entries compacted away: sending snapshot at ${this.log.snapshot.index}`);
      this.sendSnapshotChunk(node);
      return true;
    }
    if (entries.length === 0 && !sendIfEmpty) return false;
    const message: AppendEntriesMessage = {
      type: 'appendEntries', from: this.id, to: node, term: this.termValue,
      prevIndex, prevTerm, entries, commit: this.log.commit,
    };
    this.send(message);
    progress.onSent(prevIndex + entries.length, entries.length);
    return true;
  }

  private sendSnapshotChunk(node: NodeId): void {
    const progress = this.progress.get(node);
    assert(progress !== undefined && progress.snapshot !== null, 'snapshot chunk without a snapshot in progress');
    progress.snapshotTicksSinceSend = 0;
    const message: InstallSnapshotMessage = {
      type: 'installSnapshot', from: this.id, to: node, term: this.termValue,
      snapshot: progress.snapshot, offset: progress.snapshotOffset, data: null, done: false,
    };
    this.send(message);
  }

  private sendTimeoutNow(node: NodeId): void {
    this.note(`${node} is up to date: sending timeoutNow`);
    this.leaseForfeitedInTerm = this.termValue;
    this.send({ type: 'timeoutNow', from: this.id, to: node, term: this.termValue });
  }

  private broadcastHeartbeat(): void {
    this.readRound++;
    this.roundSentTick.set(this.readRound, this.tickCount);
    if (this.roundSentTick.size > 1024) {
      const oldest = this.roundSentTick.keys().next().value;
      if (oldest !== undefined) this.roundSentTick.delete(oldest);
    }
    for (const [node, progress] of this.progress) {
      const message: HeartbeatMessage = {
        type: 'heartbeat', from: this.id, to: node, term: this.termValue,
        commit: Math.min(progress.match, this.log.commit), readRound: this.readRound,
      };
      this.send(message);
    }
    if (this.membershipValue.voters.length === 1) this.releaseReads();
  }

  private handleAppendEntriesResponse(message: AppendEntriesResponseMessage): void {
    if (this.roleValue !== 'leader') return;
    const progress = this.progress.get(message.from);
    if (progress === undefined) return;
    progress.recentActive = true;
    if (!message.success) {
      let guess = message.hintIndex;
      if (message.hintTerm > 0) guess = this.log.findConflictByTerm(message.hintIndex, message.hintTerm);
      if (progress.state === 'snapshot') return;
      if (progress.onReject(message.rejectIndex, guess + 1)) this.sendAppend(message.from, true);
      return;
    }
    const advanced = progress.onMatch(message.matchIndex);
    if (progress.state === 'snapshot' && progress.snapshot !== null && progress.match >= progress.snapshot.index) {
      progress.becomeProbe();
    }
    if (progress.state === 'probe' && progress.match + 1 === progress.next) progress.becomeReplicate();
    if (advanced && this.maybeCommit()) this.appendBroadcastPending = true;
    this.forgetDeparted(message.from);
    if (this.transferee === message.from && progress.match === this.log.lastIndex()) {
      this.sendTimeoutNow(message.from);
    }
    this.appendsPendingFor.add(message.from);
  }

  private handleHeartbeatResponse(message: HeartbeatResponseMessage): void {
    if (this.roleValue !== 'leader') return;
    const progress = this.progress.get(message.from);
    if (progress === undefined) return;
    progress.recentActive = true;
    progress.probeSent = false;
    if (message.readRound > progress.ackedRound) progress.ackedRound = message.readRound;
    // Appends in flight may have been lost: free one slot so a probe goes out; if the follower
    // lacks what we sent, it rejects and we fall back to probing (etcd does the same).
    if (progress.state === 'replicate' && progress.isPaused(this.config.inflightMessagesMax)) progress.inflight.shift();
    if (progress.match < this.log.lastIndex()) this.sendAppends(message.from, true);
    this.releaseReads();
  }

  private handleInstallSnapshotResponse(message: InstallSnapshotResponseMessage): void {
    if (this.roleValue !== 'leader') return;
    const progress = this.progress.get(message.from);
    if (progress === undefined) return;
    progress.recentActive = true;
    if (progress.state !== 'snapshot' || progress.snapshot?.index !== message.snapshotIndex) return;
    if (message.done) {
      progress.match = Math.max(progress.match, message.snapshotIndex);
      progress.becomeProbe();
      this.note(`${message.from} installed snapshot at ${message.snapshotIndex}`);
      if (this.maybeCommit()) this.appendBroadcastPending = true;
      this.sendAppend(message.from, true);
      return;
    }
    progress.snapshotOffset = message.nextOffset;
    this.sendSnapshotChunk(message.from);
  }

  /**
   * Raft §5.3/§5.4.2: an entry is committed once a majority of voters hold it durably, and only
   * entries of the leader's own term are committed by counting replicas (Figure 8).
   */
  private maybeCommit(): boolean {
    const matches = this.membershipValue.voters.map((voter) =>
      voter === this.id ? this.log.persisted : (this.progress.get(voter)?.match ?? 0));
    if (matches.length === 0) return false;
    matches.sort((a, b) => b - a);
    const quorumIndex = matches[Math.floor(matches.length / 2)] as number;
    if (quorumIndex <= this.log.commit) return false;
    const countingAllowed = this.config.plantedBug === 'commitEarlierTermByCounting';
    if (this.log.term(quorumIndex) !== this.termValue && !countingAllowed) return false;
    this.uncommittedBytes = Math.max(0, this.uncommittedBytes - this.log.dataBytes(this.log.commit + 1, quorumIndex));
    this.log.commitTo(quorumIndex);
    this.commitBroadcastPending = true;
    this.onCommitAdvanced();
    return true;
  }

  private onCommitAdvanced(): void {
    if (!this.committedInCurrentTerm() || this.readsAwaitingCommit.length === 0) return;
    const waiting = this.readsAwaitingCommit;
    this.readsAwaitingCommit = [];
    for (const read of waiting) this.registerRead(read.requestId, read.from);
  }

  private committedInCurrentTerm(): boolean {
    return this.log.term(this.log.commit) === this.termValue;
  }

  // ---------------------------------------------------------------------------------------------
  // ReadIndex (thesis §6.4).

  private registerRead(requestId: string, from: NodeId | null): void {
    assert(this.roleValue === 'leader', 'reads are registered on the leader');
    const queued = this.pendingReads.length + this.readsAwaitingCommit.length;
    if (queued >= this.config.pendingReadsMax) {
      this.failRead({ requestId, index: -1, round: 0, from });
      return;
    }
    if (!this.committedInCurrentTerm()) {
      this.readsAwaitingCommit.push({ requestId, index: -1, round: 0, from });
      return;
    }
    const read: PendingRead = { requestId, index: this.log.commit, round: this.readRound + 1, from };
    if (this.membershipValue.voters.length === 1) {
      this.deliverRead(read);
      return;
    }
    this.pendingReads.push(read);
    this.readBroadcastPending = true;
  }

  /** The highest heartbeat round acknowledged by a majority of voters (we ack our own). */
  private quorumAckedRound(): number {
    const rounds = this.membershipValue.voters.map((voter) =>
      voter === this.id ? this.readRound : (this.progress.get(voter)?.ackedRound ?? 0));
    rounds.sort((a, b) => b - a);
    return rounds[Math.floor(rounds.length / 2)] ?? 0;
  }

  private releaseReads(): void {
    if (this.pendingReads.length === 0) return;
    const confirmed = this.quorumAckedRound();
    let released = 0;
    while (released < this.pendingReads.length && (this.pendingReads[released] as PendingRead).round <= confirmed) {
      this.deliverRead(this.pendingReads[released] as PendingRead);
      released++;
    }
    if (released > 0) this.pendingReads = this.pendingReads.slice(released);
  }

  private deliverRead(read: PendingRead): void {
    if (read.from === null) {
      this.readStates.push({ requestId: read.requestId, index: read.index });
      return;
    }
    const response: ReadIndexResponseMessage = {
      type: 'readIndexResponse', from: this.id, to: read.from, term: this.termValue,
      requestId: read.requestId, index: read.index,
    };
    this.send(response);
  }

  private failRead(read: PendingRead): void {
    if (read.from === null) {
      this.readsDropped.push(read.requestId);
      return;
    }
    this.send({
      type: 'readIndexResponse', from: this.id, to: read.from, term: this.termValue,
      requestId: read.requestId, index: -1,
    });
  }

  private handleReadIndexRequest(message: ReadIndexRequestMessage): void {
    if (this.roleValue !== 'leader') {
      this.failRead({ requestId: message.requestId, index: -1, round: 0, from: message.from });
      return;
    }
    this.registerRead(message.requestId, message.from);
  }

  private handleReadIndexResponse(message: ReadIndexResponseMessage): void {
    if (!this.pendingRemoteReads.delete(message.requestId)) return;
    if (message.index < 0) this.readsDropped.push(message.requestId);
    else this.readStates.push({ requestId: message.requestId, index: message.index });
  }

  // ---------------------------------------------------------------------------------------------
  // Follower side of replication.

  private acceptLeader(message: Message): void {
    if (this.roleValue !== 'follower' || this.leaderIdValue !== message.from) {
      this.becomeFollower(message.term, message.from);
    }
    this.electionElapsed = 0;
  }

  private handleAppendEntries(message: AppendEntriesMessage): void {
    this.acceptLeader(message);
    const respond = (fields: Omit<AppendEntriesResponseMessage, 'type' | 'from' | 'to' | 'term'>): void => {
      const response: AppendEntriesResponseMessage = {
        type: 'appendEntriesResponse', from: this.id, to: message.from, term: this.termValue, ...fields,
      };
      // An acknowledgement promises the entries are on disk: it leaves only after the fsync.
      if (this.config.plantedBug === 'ackBeforePersist') this.send(response);
      else this.sendAfterPersist(response);
    };
    if (message.prevIndex < this.log.commit) {
      respond({ success: true, matchIndex: this.log.commit, rejectIndex: 0, hintIndex: 0, hintTerm: 0 });
      return;
    }
    if (this.log.matchTerm(message.prevIndex, message.prevTerm)) {
      this.log.appendFromLeader(message.entries);
      const last = message.prevIndex + message.entries.length;
      this.refreshMembership();
      this.log.commitTo(Math.min(message.commit, last));
      respond({ success: true, matchIndex: last, rejectIndex: 0, hintIndex: 0, hintTerm: 0 });
      return;
    }
    const hint = this.log.findConflictByTerm(Math.min(message.prevIndex, this.log.lastIndex()), message.prevTerm);
    respond({
      success: false, matchIndex: 0, rejectIndex: message.prevIndex,
      hintIndex: hint, hintTerm: this.log.term(hint) ?? 0,
    });
  }

  private handleHeartbeat(message: HeartbeatMessage): void {
    this.acceptLeader(message);
    this.log.commitTo(Math.min(message.commit, this.log.lastIndex()));
    this.send({
      type: 'heartbeatResponse', from: this.id, to: message.from, term: this.termValue,
      readRound: message.readRound,
    });
  }

  private handleInstallSnapshot(message: InstallSnapshotMessage): void {
    this.acceptLeader(message);
    const respond = (nextOffset: number, done: boolean): void => {
      this.sendAfterPersist({
        type: 'installSnapshotResponse', from: this.id, to: message.from, term: this.termValue,
        snapshotIndex: message.snapshot.index, nextOffset, done,
      });
    };
    if (message.snapshot.index <= this.log.commit) {
      respond(0, true);
      return;
    }
    const receiving = this.receivingSnapshot;
    const same = receiving !== null && receiving.snapshot.index === message.snapshot.index &&
      receiving.snapshot.term === message.snapshot.term;
    if (!same) {
      if (message.offset !== 0) {
        respond(0, false);
        return;
      }
      this.receivingSnapshot = { snapshot: message.snapshot, nextOffset: 0 };
    }
    const current = this.receivingSnapshot;
    assert(current !== null, 'receiving snapshot state');
    if (message.offset !== current.nextOffset || message.data === null) {
      respond(current.nextOffset, false);
      return;
    }
    this.snapshotChunks.push({ snapshot: message.snapshot, offset: message.offset, data: message.data, done: message.done });
    current.nextOffset += message.data.byteLength;
    if (!message.done) {
      respond(current.nextOffset, false);
      return;
    }
    this.receivingSnapshot = null;
    this.log.restore(message.snapshot);
    this.snapshotToInstall = message.snapshot;
    this.refreshMembership();
    this.note(`installed snapshot at ${message.snapshot.index} term ${message.snapshot.term}`);
    respond(current.nextOffset, true);
  }

  // ---------------------------------------------------------------------------------------------
  // Membership.

  private members(): NodeId[] {
    return [...this.membershipValue.voters, ...this.membershipValue.learners];
  }

  private refreshMembership(): void {
    const membership = this.log.membershipAt(this.log.lastIndex());
    if (membership !== this.membershipValue) this.setMembership(membership);
  }

  /** `appendedAt`: the index of the membership entry this leader just appended, if it did. */
  private setMembership(membership: Membership, appendedAt?: LogIndex): void {
    this.membershipValue = membership;
    if (this.roleValue !== 'leader') return;
    const members = new Set(this.members());
    for (const node of members) {
      if (node !== this.id && !this.progress.has(node)) {
        const progress = new Progress(this.log.lastIndex() + 1);
        progress.recentActive = true;
        this.progress.set(node, progress);
      }
    }
    for (const [node, progress] of [...this.progress]) {
      if (members.has(node)) {
        this.departing.delete(node);
        continue;
      }
      if (this.departing.has(node)) continue;
      if (appendedAt !== undefined && progress.match < appendedAt) {
        this.departing.set(node, { index: appendedAt, untilTick: this.tickCount + 3 * this.config.electionTimeoutTicks });
      } else {
        this.progress.delete(node);
      }
    }
    if (this.transferee !== null && !membership.voters.includes(this.transferee)) this.transferee = null;
  }

  // ---------------------------------------------------------------------------------------------
  // Plumbing.

  private send(message: Message): void {
    assert(message.from === this.id, 'messages leave from this node');
    this.messages.push(message);
  }

  private sendAfterPersist(message: Message): void {
    assert(message.from === this.id, 'messages leave from this node');
    // Several appends persisted by one Ready need one acknowledgement, of the highest match: the
    // leader's progress only moves forward, so the earlier ones would tell it nothing more.
    const last = this.messagesAfterPersist.at(-1);
    if (message.type === 'appendEntriesResponse' && message.success && last?.type === 'appendEntriesResponse' &&
      last.success && last.to === message.to && last.term === message.term) {
      this.messagesAfterPersist[this.messagesAfterPersist.length - 1] =
        message.matchIndex >= last.matchIndex ? message : last;
      return;
    }
    this.messagesAfterPersist.push(message);
  }

  private hardStateChanged(): boolean {
    const last = this.lastHardState;
    return last.term !== this.termValue || last.vote !== this.voteValue || last.commit !== this.log.commit;
  }

  private note(line: string): void {
    if (this.trace !== null) this.trace(`${this.id} t${this.termValue}: ${line}`);
  }

  checkInvariants(): void {
    this.log.checkInvariants();
    if (this.roleValue === 'leader') {
      assert(this.leaderIdValue === this.id, 'a leader leads itself');
      assert(this.voteValue === this.id, 'a leader voted for itself');
      for (const progress of this.progress.values()) assert(progress.match < progress.next, 'match < next');
    } else {
      assert(this.progress.size === 0, 'only a leader tracks progress');
    }
    if (this.roleValue === 'candidate') assert(this.voteValue === this.id, 'a candidate voted for itself');
    assert(this.lastHardState.term <= this.termValue, 'term never decreases');
  }
}

/** Validates a single-server change and returns the new membership, or the reason it is refused. */
export function applyMembershipChange(current: Membership, change: MembershipChange, leader: NodeId): Membership | string {
  const isVoter = current.voters.includes(change.node);
  const isLearner = current.learners.includes(change.node);
  const withAddresses = (next: { voters: readonly NodeId[]; learners: readonly NodeId[] }, addresses: Membership['addresses']): Membership =>
    addresses === undefined ? next : { ...next, addresses };
  switch (change.type) {
    case 'addLearner': {
      if (isVoter || isLearner) return `${change.node} is already a member`;
      const addresses = change.address === undefined ? current.addresses : { ...current.addresses, [change.node]: change.address };
      return withAddresses({ voters: current.voters, learners: [...current.learners, change.node] }, addresses);
    }
    case 'promoteLearner':
      if (!isLearner) return `${change.node} is not a learner`;
      return withAddresses({
        voters: [...current.voters, change.node],
        learners: current.learners.filter((node) => node !== change.node),
      }, current.addresses);
    case 'removeNode': {
      if (!isVoter && !isLearner) return `${change.node} is not a member`;
      if (change.node === leader) return 'the leader cannot remove itself: transfer leadership first';
      if (isVoter && current.voters.length <= 1) return 'cannot remove the last voter';
      let addresses = current.addresses;
      if (addresses !== undefined && change.node in addresses) {
        addresses = Object.fromEntries(Object.entries(addresses).filter(([node]) => node !== change.node));
      }
      return withAddresses({
        voters: current.voters.filter((node) => node !== change.node),
        learners: current.learners.filter((node) => node !== change.node),
      }, addresses);
    }
    default:
      return assertNever(change, 'unknown membership change');
  }
}
