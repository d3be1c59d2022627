/**
 * The table of proposals waiting for their outcome, and the rule that decides each one.
 *
 * A proposal accepted at (index, term) is:
 *   applied  -- when the entry applied at `index` has the same term;
 *   failed   -- definitively, when an applied entry at an index <= `index` has a greater term:
 *               a committed entry of term T' at index j means every future leader's log holds
 *               entries of term >= T' at every index >= j, so (index, term < T') can never commit;
 *   pending  -- otherwise: the outcome is not known yet (after a leader change it may still
 *               commit). The caller's timeout turns it into "indeterminate", never into "failed".
 * Keeping these three apart is what lets a client retry safely (anchor C: ErrLeadershipLost).
 */
import { assert } from '../shared/assert.ts';
import type { Entry, LogIndex, Term } from '../consensus/types.ts';

export type ProposalOutcome<R> =
  | { readonly status: 'applied'; readonly index: LogIndex; readonly term: Term; readonly result: R }
  | { readonly status: 'failed'; readonly index: LogIndex; readonly term: Term; readonly reason: 'SUPERSEDED' }
  | {
    readonly status: 'unknown';
    readonly index: LogIndex;
    readonly term: Term;
    readonly reason: 'SNAPSHOT_INSTALLED' | 'STOPPED' | 'INDEX_REUSED';
  };

interface Waiting<R> {
  readonly term: Term;
  readonly callback: (outcome: ProposalOutcome<R>) => void;
}

export class ProposalTable<R> {
  private readonly waiting = new Map<LogIndex, Waiting<R>>();
  private lastTerm = 0;

  get size(): number {
    return this.waiting.size;
  }

  /**
   * Proposals arrive in non-decreasing term order (a node's term never decreases), which the
   * failure scan in onApplied relies on.
   */
  add(index: LogIndex, term: Term, callback: (outcome: ProposalOutcome<R>) => void): void {
    const previous = this.waiting.get(index);
    if (previous !== undefined) {
      // We lost leadership, our log was cut back, and we lead again: the old proposal's entry is
      // gone from our log but may survive elsewhere, so its outcome is unknown here.
      assert(previous.term < term, `two proposals at index ${index} in term ${term}`);
      this.waiting.delete(index);
      previous.callback({ status: 'unknown', index, term: previous.term, reason: 'INDEX_REUSED' });
    }
    this.lastTerm = Math.max(this.lastTerm, term);
    assert(term === this.lastTerm, 'proposals are added in term order');
    this.waiting.set(index, { term, callback });
  }

  /** Called for every applied entry, in log order. */
  onApplied(entry: Entry, result: R): void {
    if (this.waiting.size === 0) return;
    const own = this.waiting.get(entry.index);
    if (own !== undefined) {
      this.waiting.delete(entry.index);
      if (own.term === entry.term) {
        own.callback({ status: 'applied', index: entry.index, term: entry.term, result });
      } else {
        own.callback({ status: 'failed', index: entry.index, term: own.term, reason: 'SUPERSEDED' });
      }
    }
    // Terms are non-decreasing in insertion order: stop at the first proposal of a newer term.
    for (const [index, waiting] of this.waiting) {
      if (waiting.term >= entry.term) break;
      if (index > entry.index) {
        this.waiting.delete(index);
        waiting.callback({ status: 'failed', index, term: waiting.term, reason: 'SUPERSEDED' });
      }
    }
  }

  /** A snapshot replaced the state up to `index`: results of proposals it covers are unknown. */
  onSnapshotInstalled(index: LogIndex): void {
    for (const [at, waiting] of this.waiting) {
      if (at > index) continue;
      this.waiting.delete(at);
      waiting.callback({ status: 'unknown', index: at, term: waiting.term, reason: 'SNAPSHOT_INSTALLED' });
    }
  }

  /** The node stops: every outcome is unknown to this process. */
  failAll(): void {
    const all = [...this.waiting];
    this.waiting.clear();
    for (const [index, waiting] of all) {
      waiting.callback({ status: 'unknown', index, term: waiting.term, reason: 'STOPPED' });
    }
  }
}
