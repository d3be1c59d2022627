/**
 * The in-memory view of one node's Raft log: the latest snapshot's metadata, the entries after
 * the compaction point, and the bookkeeping of what the driver has been handed, what is durable,
 * what is committed and what is applied.
 *
 * Entries live here until log compaction drops them, so the driver bounds memory by taking
 * snapshots (storage keeps its own durable copy; on restart the driver hands the persisted log
 * back through the constructor). This class does no I/O.
 *
 * Invariants (checked by checkInvariants):
 *   snapshot.index <= applied <= commit <= lastIndex
 *   persisted <= lastIndex; unstableFrom <= lastIndex + 1
 *   entries are contiguous: entries[i].index === firstIndex + i, terms never decrease
 *   firstIndex <= snapshot.index + 1 (entries before the snapshot may be kept for lagging peers)
 */
import { assert } from '../shared/assert.ts';
import type { Entry, LogIndex, Membership, SnapshotMeta, Term } from './types.ts';

export class RaftLog {
  private entries: Entry[];
  /** Index of entries[0]; when entries is empty, the index the next entry will get. */
  private firstIndex: LogIndex;
  snapshot: SnapshotMeta;
  commit: LogIndex;
  applied: LogIndex;
  /** Highest index durable on this node's disk and still matching the in-memory log. */
  persisted: LogIndex;
  /** Lowest index not yet handed to the driver for persisting. */
  unstableFrom: LogIndex;
  /** Highest committed index handed to the driver for applying (applied once advanced). */
  appliedHandedOut: LogIndex;
  /** Indices of membership entries after the snapshot, ascending (membership lookups stay O(log n)). */
  private membershipIndices: LogIndex[] = [];

  constructor(snapshot: SnapshotMeta, entries: readonly Entry[], commit: LogIndex) {
    this.snapshot = snapshot;
    this.entries = [...entries];
    const first = entries[0];
    this.firstIndex = first === undefined ? snapshot.index + 1 : first.index;
    assert(this.firstIndex <= snapshot.index + 1, 'persisted log starts after the snapshot');
    assert(this.lastIndex() >= snapshot.index, 'persisted log ends before the snapshot');
    this.commit = Math.max(commit, snapshot.index);
    this.commit = Math.min(this.commit, this.lastIndex());
    this.applied = snapshot.index;
    this.appliedHandedOut = snapshot.index;
    this.persisted = this.lastIndex();
    this.unstableFrom = this.lastIndex() + 1;
    for (const entry of this.entries) {
      if (entry.kind === 'membership' && entry.index > snapshot.index) this.membershipIndices.push(entry.index);
    }
    this.checkInvariants();
  }

  lastIndex(): LogIndex {
    return this.firstIndex + this.entries.length - 1;
  }

  lastTerm(): Term {
    const term = this.term(this.lastIndex());
    assert(term !== undefined, 'last entry has no term');
    return term;
  }

  /** The first index whose entry is still held (may be <= snapshot.index). */
  first(): LogIndex {
    return this.firstIndex;
  }

  /** The term of the entry at index, or undefined when compacted away or beyond the end. */
  term(index: LogIndex): Term | undefined {
    if (index === this.snapshot.index) return this.snapshot.term;
    if (index === 0) return 0;
    const entry = this.entries[index - this.firstIndex];
    if (index < this.firstIndex || entry === undefined) return undefined;
    return entry.term;
  }

  entry(index: LogIndex): Entry | undefined {
    if (index < this.firstIndex) return undefined;
    return this.entries[index - this.firstIndex];
  }

  matchTerm(index: LogIndex, term: Term): boolean {
    return this.term(index) === term;
  }

  /** Raft §5.4.1: is a log ending at (lastIndex, lastTerm) at least as up to date as ours? */
  isUpToDate(lastIndex: LogIndex, lastTerm: Term): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /** Bytes of entry data in [from, to] that this log holds (compacted entries count as 0). */
  dataBytes(from: LogIndex, to: LogIndex): number {
    let bytes = 0;
    for (let index = Math.max(from, this.firstIndex); index <= to; index++) {
      const entry = this.entries[index - this.firstIndex];
      if (entry === undefined) break;
      bytes += entry.data.byteLength;
    }
    return bytes;
  }

  /**
   * Entries in [from, to] bounded by count and bytes; always at least one entry when the range is
   * non-empty, so that an oversized entry still makes progress. Undefined when `from` is compacted.
   */
  slice(from: LogIndex, to: LogIndex, countMax: number, bytesMax: number): Entry[] | undefined {
    if (from < this.firstIndex) return undefined;
    const out: Entry[] = [];
    let bytes = 0;
    for (let index = from; index <= to && out.length < countMax; index++) {
      const entry = this.entries[index - this.firstIndex];
      if (entry === undefined) break;
      bytes += entry.data.byteLength + 32;
      if (out.length > 0 && bytes > bytesMax) break;
      out.push(entry);
    }
    return out;
  }

  append(entry: Entry): void {
    assert(entry.index === this.lastIndex() + 1, 'append must extend the log by one');
    assert(entry.term >= this.lastTerm(), 'terms in the log never decrease');
    this.entries.push(entry);
    if (entry.kind === 'membership') this.membershipIndices.push(entry.index);
  }

  /**
   * Appends entries received from a leader after (prevIndex, prevTerm) matched. Existing entries
   * that agree are kept; the first conflicting entry and everything after it are replaced
   * (Raft §5.3). Returns the index of the last entry of the request.
   */
  appendFromLeader(entries: readonly Entry[]): void {
    for (const entry of entries) {
      const existing = this.term(entry.index);
      if (existing === entry.term) continue;
      if (entry.index <= this.snapshot.index) continue;
      if (existing !== undefined) {
        assert(entry.index > this.commit, `conflict at committed index ${entry.index}`);
        this.truncateFrom(entry.index);
      }
      this.append(entry);
      this.unstableFrom = Math.min(this.unstableFrom, entry.index);
    }
  }

  private truncateFrom(index: LogIndex): void {
    assert(index > this.commit, 'never truncate committed entries');
    this.entries.length = index - this.firstIndex;
    while (this.membershipIndices.length > 0 && (this.membershipIndices.at(-1) as number) >= index) {
      this.membershipIndices.pop();
    }
    this.persisted = Math.min(this.persisted, index - 1);
    this.unstableFrom = Math.min(this.unstableFrom, index);
  }

  /**
   * Fast backtracking (etcd's findConflictByTerm): the largest index <= index whose term is
   * <= term. Lets a leader skip a whole term of divergent entries per round trip.
   */
  findConflictByTerm(index: LogIndex, term: Term): LogIndex {
    let candidate = Math.min(index, this.lastIndex());
    while (candidate > this.snapshot.index) {
      const candidateTerm = this.term(candidate);
      if (candidateTerm === undefined || candidateTerm <= term) break;
      candidate--;
    }
    return candidate;
  }

  commitTo(index: LogIndex): boolean {
    if (index <= this.commit) return false;
    assert(index <= this.lastIndex(), `commit ${index} beyond last index ${this.lastIndex()}`);
    this.commit = index;
    return true;
  }

  /** Entries not yet handed to the driver for persisting. */
  takeUnstable(): Entry[] {
    const from = this.unstableFrom;
    const out = from <= this.lastIndex() ? this.entries.slice(from - this.firstIndex) : [];
    this.unstableFrom = this.lastIndex() + 1;
    return out;
  }

  hasUnstable(): boolean {
    return this.unstableFrom <= this.lastIndex();
  }

  /** Committed entries not yet handed out for applying, at most countMax. */
  /**
   * Committed entries not handed out yet, at most countMax of them and (beyond the first) at most
   * bytesMax bytes of data: what one Ready asks the driver to apply, in one go.
   */
  takeCommitted(countMax: number, bytesMax = Number.POSITIVE_INFINITY): Entry[] {
    const out: Entry[] = [];
    const to = Math.min(this.commit, this.appliedHandedOut + countMax);
    let bytes = 0;
    for (let index = this.appliedHandedOut + 1; index <= to; index++) {
      const entry = this.entry(index);
      assert(entry !== undefined, `committed entry ${index} missing`);
      bytes += entry.data.byteLength;
      if (out.length > 0 && bytes > bytesMax) break;
      out.push(entry);
    }
    if (out.length > 0) this.appliedHandedOut = (out[out.length - 1] as Entry).index;
    return out;
  }

  hasCommittedToApply(): boolean {
    return this.commit > this.appliedHandedOut;
  }

  /**
   * After the driver persisted a Ready's entries. Entries the log has since replaced (a newer
   * leader overwrote them before the fsync finished) do not count: the longest still-matching
   * prefix of the batch is what is durable.
   */
  markPersisted(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined || first.index > this.persisted + 1) return;
    for (let i = entries.length - 1; i >= 0; i--) {
      const entry = entries[i] as Entry;
      if (this.term(entry.index) === entry.term) {
        this.persisted = Math.max(this.persisted, entry.index);
        return;
      }
    }
  }

  markApplied(index: LogIndex): void {
    assert(index <= this.commit, 'applied beyond commit');
    this.applied = Math.max(this.applied, index);
  }

  /** The membership in force at `index`: the last membership entry at or before it, else the snapshot's. */
  membershipAt(index: LogIndex): Membership {
    for (let i = this.membershipIndices.length - 1; i >= 0; i--) {
      const at = this.membershipIndices[i] as number;
      if (at > index) continue;
      const membership = this.entry(at)?.membership;
      assert(membership !== undefined, `membership entry ${at} missing`);
      return membership;
    }
    return this.snapshot.membership;
  }

  /** Index of the last membership entry after the snapshot, or the snapshot's index. */
  lastMembershipIndex(): LogIndex {
    return this.membershipIndices.at(-1) ?? this.snapshot.index;
  }

  private dropMembershipIndicesUpTo(index: LogIndex): void {
    while (this.membershipIndices.length > 0 && (this.membershipIndices[0] as number) <= index) {
      this.membershipIndices.shift();
    }
  }

  /** Log compaction after the driver took a snapshot of the state machine at `index`. */
  compact(index: LogIndex, keepEntries: number, keepBytes = Number.POSITIVE_INFINITY): SnapshotMeta {
    assert(index <= this.applied, 'compact beyond applied');
    assert(index > this.snapshot.index, 'compact must move forward');
    const term = this.term(index);
    assert(term !== undefined, 'compact index has no term');
    this.snapshot = { index, term, membership: this.membershipAt(index) };
    this.dropMembershipIndicesUpTo(index);
    // Keep up to keepEntries entries at and below `index`, as long as their data fits in keepBytes.
    let keep = 0;
    let bytes = 0;
    while (keep < keepEntries && index - keep >= this.firstIndex) {
      const entry = this.entries[index - keep - this.firstIndex];
      assert(entry !== undefined, 'compact: entry below the applied index is missing');
      bytes += entry.data.byteLength;
      if (bytes > keepBytes) break;
      keep += 1;
    }
    const dropUpTo = Math.max(this.firstIndex - 1, index - keep);
    if (dropUpTo >= this.firstIndex) {
      this.entries.splice(0, dropUpTo - this.firstIndex + 1);
      this.firstIndex = dropUpTo + 1;
    }
    this.checkInvariants();
    return this.snapshot;
  }

  /**
   * Installs a snapshot received from a leader. If our log already holds the snapshot's last
   * entry, the entries after it are kept (they may be ahead of the snapshot); otherwise the
   * whole log is replaced by the snapshot.
   */
  restore(snapshot: SnapshotMeta): void {
    assert(snapshot.index > this.commit, 'restore of a snapshot we already have committed');
    const keepSuffix = this.term(snapshot.index) === snapshot.term;
    if (keepSuffix) {
      const dropUpTo = snapshot.index;
      this.entries.splice(0, Math.max(0, dropUpTo - this.firstIndex + 1));
      this.firstIndex = dropUpTo + 1;
      this.dropMembershipIndicesUpTo(snapshot.index);
    } else {
      this.entries = [];
      this.membershipIndices = [];
      this.firstIndex = snapshot.index + 1;
      this.persisted = snapshot.index;
      this.unstableFrom = snapshot.index + 1;
    }
    this.snapshot = snapshot;
    this.commit = snapshot.index;
    this.applied = snapshot.index;
    this.appliedHandedOut = snapshot.index;
    this.persisted = Math.max(this.persisted, snapshot.index);
    this.unstableFrom = Math.max(this.unstableFrom, snapshot.index + 1);
    this.checkInvariants();
  }

  checkInvariants(): void {
    assert(this.snapshot.index <= this.applied, 'applied before snapshot');
    assert(this.applied <= this.commit, 'applied beyond commit');
    assert(this.commit <= this.lastIndex(), 'commit beyond last index');
    assert(this.persisted <= this.lastIndex(), 'persisted beyond last index');
    assert(this.unstableFrom <= this.lastIndex() + 1, 'unstable beyond end');
    assert(this.firstIndex <= this.snapshot.index + 1, 'gap between snapshot and log');
    assert(this.appliedHandedOut <= this.commit, 'handed out uncommitted entries');
  }

  /** For tests and the simulator: a copy of the held entries. */
  heldEntries(): readonly Entry[] {
    return this.entries;
  }
}
