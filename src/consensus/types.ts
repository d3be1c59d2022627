/**
 * The vocabulary of the consensus core: log entries, membership, persistent state, messages and
 * the Ready batch the core hands to its driver.
 *
 * Everything here is plain data (no classes, no Maps) so that it can cross the wire through
 * msgpackr, be stored in LMDB, and be printed in simulator traces unchanged.
 *
 * Words keep their Raft meaning (see docs/glossary.md): "commit" is the Raft commit index only;
 * the storage layer "persists"; the state machine "applies".
 */

export type NodeId = string;
export type Term = number;
export type LogIndex = number;

/** Who takes part in the cluster. Voters elect and count towards commit; learners only receive. */
export interface Membership {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  /**
   * How to reach each member, carried opaquely by the core so that every node learns a new
   * member's address from the same replicated entry that admits it.
   */
  readonly addresses?: Readonly<Record<NodeId, MemberAddresses>>;
}

export interface MemberAddresses {
  /** host:port of the peer (Raft) listener. */
  readonly peer: string;
  /** http(s)://host:port of the client API. */
  readonly client: string;
}

/**
 * A membership change, applied one server at a time (Raft thesis §4.1). See docs/consensus.md for
 * why single-server changes rather than joint consensus.
 */
export type MembershipChange =
  | { readonly type: 'addLearner'; readonly node: NodeId; readonly address?: MemberAddresses }
  | { readonly type: 'promoteLearner'; readonly node: NodeId }
  | { readonly type: 'removeNode'; readonly node: NodeId };

export type EntryKind = 'normal' | 'noop' | 'membership';

export interface Entry {
  readonly index: LogIndex;
  readonly term: Term;
  readonly kind: EntryKind;
  /** Opaque to the core for 'normal' entries; empty for 'noop'. */
  readonly data: Uint8Array;
  /** The full membership that takes effect when this entry is appended (kind 'membership'). */
  readonly membership?: Membership;
}

/** What must survive a crash besides the log (Raft §5.1 Figure 2, "persistent state"). */
export interface HardState {
  readonly term: Term;
  readonly vote: NodeId | null;
  readonly commit: LogIndex;
}

export interface SnapshotMeta {
  readonly index: LogIndex;
  readonly term: Term;
  readonly membership: Membership;
}

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

interface MessageBase {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: Term;
}

export interface AppendEntriesMessage extends MessageBase {
  readonly type: 'appendEntries';
  readonly prevIndex: LogIndex;
  readonly prevTerm: Term;
  readonly entries: readonly Entry[];
  readonly commit: LogIndex;
}

export interface AppendEntriesResponseMessage extends MessageBase {
  readonly type: 'appendEntriesResponse';
  readonly success: boolean;
  /** On success: the index of the last entry now known to match the leader's log. */
  readonly matchIndex: LogIndex;
  /** On rejection: the follower's guess of where the logs may agree (fast backtracking). */
  readonly rejectIndex: LogIndex;
  readonly hintIndex: LogIndex;
  readonly hintTerm: Term;
}

export interface RequestVoteMessage extends MessageBase {
  readonly type: 'requestVote';
  readonly preVote: boolean;
  readonly lastIndex: LogIndex;
  readonly lastTerm: Term;
  /** Set by a leadership transfer: voters ignore their "leader recently heard" stickiness. */
  readonly transfer: boolean;
}

export interface RequestVoteResponseMessage extends MessageBase {
  readonly type: 'requestVoteResponse';
  readonly preVote: boolean;
  readonly granted: boolean;
}

export interface HeartbeatMessage extends MessageBase {
  readonly type: 'heartbeat';
  readonly commit: LogIndex;
  /** The latest ReadIndex round the leader wants confirmed (0: none). */
  readonly readRound: number;
}

export interface HeartbeatResponseMessage extends MessageBase {
  readonly type: 'heartbeatResponse';
  readonly readRound: number;
}

export interface InstallSnapshotMessage extends MessageBase {
  readonly type: 'installSnapshot';
  readonly snapshot: SnapshotMeta;
  readonly offset: number;
  /**
   * The chunk's bytes. The core emits null: the driver fills it from its snapshot store when it
   * sends the message, so snapshot bytes never pass through the core.
   */
  readonly data: Uint8Array | null;
  readonly done: boolean;
}

export interface InstallSnapshotResponseMessage extends MessageBase {
  readonly type: 'installSnapshotResponse';
  readonly snapshotIndex: LogIndex;
  /** The next offset the follower expects; with done, the snapshot is installed. */
  readonly nextOffset: number;
  readonly done: boolean;
}

export interface TimeoutNowMessage extends MessageBase {
  readonly type: 'timeoutNow';
}

/** A follower asks the leader to confirm a read index on its behalf (linearizable follower reads). */
export interface ReadIndexRequestMessage extends MessageBase {
  readonly type: 'readIndexRequest';
  readonly requestId: string;
}

export interface ReadIndexResponseMessage extends MessageBase {
  readonly type: 'readIndexResponse';
  readonly requestId: string;
  /** -1 when the leader refused (not leader, or no entry committed in its term yet). */
  readonly index: LogIndex;
}

export type Message =
  | AppendEntriesMessage
  | AppendEntriesResponseMessage
  | RequestVoteMessage
  | RequestVoteResponseMessage
  | HeartbeatMessage
  | HeartbeatResponseMessage
  | InstallSnapshotMessage
  | InstallSnapshotResponseMessage
  | TimeoutNowMessage
  | ReadIndexRequestMessage
  | ReadIndexResponseMessage;

export type MessageType = Message['type'];

/** A linearizable read that may now be served once the state machine has applied `index`. */
export interface ReadState {
  readonly requestId: string;
  readonly index: LogIndex;
}

export interface SnapshotChunk {
  readonly snapshot: SnapshotMeta;
  readonly offset: number;
  readonly data: Uint8Array;
  readonly done: boolean;
}

/**
 * Durability watermarks, one per acknowledgement level. Each is the highest index that is durable
 * on (at least) the nodes that level names, as far as this leader knows. Only leaders report them.
 */
export interface AckWatermarks {
  readonly term: Term;
  /** Durable on the leader's own disk (ack=leader). */
  readonly leader: LogIndex;
  /** Committed: durable on a majority of voters, in this leader's term (ack=majority). */
  readonly majority: LogIndex;
  /** Durable on every voter (ack=all). */
  readonly all: LogIndex;
}

/**
 * Everything the driver must do after a burst of inputs, in this order:
 *   1. send `messages` (safe before the disk write: a leader's own appends, heartbeats);
 *   2. if `snapshot` is set, install it (the state machine is restored from the staged chunks);
 *      stage `snapshotChunks`; truncate the log at `entries[0].index` and append `entries`;
 *      write `hardState`; fsync once;
 *   3. send `messagesAfterPersist` (votes and acknowledgements promise durable state);
 *   4. apply `committed` in order, serve `readStates` once applied;
 *   5. call `advance(ready)`.
 * Only one Ready is outstanding at a time. Ticks and steps may continue while its fsync is in
 * flight: a stalled disk must never stop the leader from noticing it lost its quorum.
 */
export interface Ready {
  readonly number: number;
  readonly hardState: HardState | null;
  readonly entries: readonly Entry[];
  readonly snapshot: SnapshotMeta | null;
  readonly snapshotChunks: readonly SnapshotChunk[];
  readonly messages: readonly Message[];
  readonly messagesAfterPersist: readonly Message[];
  readonly committed: readonly Entry[];
  readonly readStates: readonly ReadState[];
  /** Reads that can no longer be confirmed here (leadership lost, no leader): fail or retry them. */
  readonly readsDropped: readonly string[];
  readonly mustSync: boolean;
}

export interface ProposalAccepted {
  readonly ok: true;
  readonly index: LogIndex;
  readonly term: Term;
}

export type ProposalRejectionReason =
  | 'NOT_LEADER'
  | 'LEADERSHIP_TRANSFER'
  | 'TOO_MANY_UNCOMMITTED'
  | 'ENTRY_TOO_LARGE'
  | 'MEMBERSHIP_CHANGE_PENDING'
  | 'INVALID_MEMBERSHIP_CHANGE';

export interface ProposalRejected {
  readonly ok: false;
  readonly reason: ProposalRejectionReason;
  readonly message: string;
  readonly leaderId: NodeId | null;
}

export type ProposalResult = ProposalAccepted | ProposalRejected;
