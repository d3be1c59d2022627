/**
 * The leader's view of one peer's log (etcd's tracker.Progress), with its transitions kept here
 * instead of strewn through the core.
 *
 *   probe      -- one append in flight at a time, until the peer's match point is found
 *   replicate  -- optimistic pipelining: next moves ahead as appends are sent, bounded in flight
 *   snapshot   -- the peer needs entries we compacted away: a snapshot is being sent in chunks
 *
 * Invariant: 0 <= match < next.
 */
import { assert } from '../shared/assert.ts';
import type { LogIndex, SnapshotMeta } from './types.ts';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export class Progress {
  match: LogIndex = 0;
  next: LogIndex;
  state: ProgressState = 'probe';
  /** In probe state: an append is outstanding; wait for its answer or the next heartbeat. */
  probeSent = false;
  /** Last indices of appends in flight, oldest first (replicate state). */
  readonly inflight: LogIndex[] = [];
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  /** Highest heartbeat round this peer acknowledged in the current term (ReadIndex, leases). */
  ackedRound = 0;
  snapshot: SnapshotMeta | null = null;
  snapshotOffset = 0;
  snapshotTicksSinceSend = 0;

  constructor(next: LogIndex) {
    assert(next >= 1, 'next starts at 1');
    this.next = next;
  }

  becomeProbe(): void {
    if (this.state === 'snapshot' && this.snapshot !== null) {
      this.next = Math.max(this.match + 1, this.snapshot.index + 1);
    } else {
      this.next = this.match + 1;
    }
    this.state = 'probe';
    this.probeSent = false;
    this.inflight.length = 0;
    this.snapshot = null;
  }

  becomeReplicate(): void {
    this.state = 'replicate';
    this.next = this.match + 1;
    this.probeSent = false;
    this.inflight.length = 0;
  }

  becomeSnapshot(snapshot: SnapshotMeta): void {
    this.state = 'snapshot';
    this.snapshot = snapshot;
    this.snapshotOffset = 0;
    this.snapshotTicksSinceSend = 0;
    this.inflight.length = 0;
    this.probeSent = false;
  }

  /** Whether the leader should hold back appends to this peer. */
  isPaused(inflightMax: number): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflight.length >= inflightMax;
      case 'snapshot':
        return true;
    }
  }

  /** Records an append that ends at lastIndex being sent. */
  onSent(lastIndex: LogIndex, entryCount: number): void {
    if (this.state === 'replicate') {
      if (entryCount > 0) {
        this.next = lastIndex + 1;
        this.inflight.push(lastIndex);
      }
    } else if (this.state === 'probe') {
      this.probeSent = true;
    }
  }

  /** A successful append response; returns true when match moved forward. */
  onMatch(matchIndex: LogIndex): boolean {
    const advanced = matchIndex > this.match;
    if (advanced) this.match = matchIndex;
    if (this.next <= matchIndex) this.next = matchIndex + 1;
    while (this.inflight.length > 0 && (this.inflight[0] as number) <= matchIndex) this.inflight.shift();
    this.probeSent = false;
    assert(this.match < this.next, 'progress: match < next');
    return advanced;
  }

  /**
   * A rejected append for prevIndex `rejected`. Returns false when the rejection is stale (it is
   * for an append the leader already moved past) and must be ignored.
   */
  onReject(rejected: LogIndex, nextGuess: LogIndex): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.becomeProbe();
      this.next = Math.max(this.match + 1, Math.min(rejected, nextGuess));
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(this.match + 1, Math.min(rejected, nextGuess));
    this.probeSent = false;
    return true;
  }
}
