/**
 * Raft's safety properties, checked against every node after every simulator event
 * (Raft §5.2, §5.3, §5.4, Figure 3):
 *   election safety      -- at most one leader per term, ever;
 *   log matching         -- same (index, term) means same entry and same history before it;
 *   leader completeness  -- a new leader holds every entry committed before it was elected;
 *   state machine safety -- no two nodes apply different entries at the same index;
 *   committed stays committed -- no node ever commits an entry that differs from one committed.
 * The first violation is recorded with the virtual time; the simulator stops and reports it.
 */
import type { RaftCore } from '../consensus/raft_core.ts';
import type { Entry, LogIndex, NodeId, Term } from '../consensus/types.ts';

export interface Violation {
  readonly property: string;
  readonly detail: string;
  readonly timeMs: number;
}

interface CommittedEntry {
  readonly term: Term;
  readonly hash: string;
  /**
   * An upper bound on the term in which the entry was committed: the term of the first node seen
   * with it committed. Leader completeness binds leaders of later terms only; a leader of an older
   * term that wakes up late (a paused candidate counting its old votes) is legitimate.
   */
  readonly committedInTerm: Term;
}

const hashCache = new WeakMap<Uint8Array, string>();

export function entryHash(entry: Entry): string {
  let cached = hashCache.get(entry.data);
  if (cached === undefined) {
    let hash = 0x811c9dc5;
    for (const byte of entry.data) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
    cached = `${hash.toString(16)}:${entry.data.byteLength}`;
    hashCache.set(entry.data, cached);
  }
  if (entry.membership !== undefined) {
    return `${entry.kind}:${cached}:${entry.membership.voters.join(',')}/${entry.membership.learners.join(',')}`;
  }
  return `${entry.kind}:${cached}`;
}

export class SafetyChecker {
  readonly violations: Violation[] = [];
  private readonly leaderOfTerm = new Map<Term, NodeId>();
  private readonly committed = new Map<LogIndex, CommittedEntry>();
  private readonly applied = new Map<LogIndex, CommittedEntry>();
  private readonly lastCommitSeen = new Map<NodeId, LogIndex>();
  private readonly lastLeaderTermSeen = new Map<NodeId, Term>();
  maxCommitted = 0;

  constructor(private readonly now: () => number) {}

  get ok(): boolean {
    return this.violations.length === 0;
  }

  private fail(property: string, detail: string): void {
    if (this.violations.length < 20) this.violations.push({ property, detail, timeMs: this.now() });
  }

  recordAssertion(error: Error): void {
    const where = error.stack?.split('\n').slice(1, 3).map((line) => line.trim()).join(' ') ?? '';
    this.fail('assertion', `${error.message} (${where})`);
  }

  /** Called after every event for every running node. */
  observe(node: RaftCore): void {
    if (node.role === 'leader') {
      const known = this.leaderOfTerm.get(node.term);
      if (known === undefined) this.leaderOfTerm.set(node.term, node.id);
      else if (known !== node.id) this.fail('election safety', `term ${node.term} has leaders ${known} and ${node.id}`);
      if (this.lastLeaderTermSeen.get(node.id) !== node.term) {
        this.lastLeaderTermSeen.set(node.id, node.term);
        this.checkLeaderCompleteness(node);
      }
    }
    const previous = this.lastCommitSeen.get(node.id) ?? node.snapshotMeta.index;
    if (node.commitIndex > previous) this.recordCommitted(node, previous + 1, node.commitIndex);
    this.lastCommitSeen.set(node.id, node.commitIndex);
  }

  /** A node restarted: its commit index may start lower (it is recovered from disk). */
  forgetNode(node: NodeId): void {
    this.lastCommitSeen.delete(node);
    this.lastLeaderTermSeen.delete(node);
  }

  private recordCommitted(node: RaftCore, from: LogIndex, to: LogIndex): void {
    for (let index = Math.max(from, node.snapshotMeta.index + 1); index <= to; index++) {
      const entry = node.entryAt(index);
      if (entry === undefined) continue;
      const seen: CommittedEntry = { term: entry.term, hash: entryHash(entry), committedInTerm: node.term };
      const known = this.committed.get(index);
      if (known === undefined) {
        this.committed.set(index, seen);
        if (index > this.maxCommitted) this.maxCommitted = index;
      } else if (known.term !== seen.term || known.hash !== seen.hash) {
        this.fail('committed entry lost', `${node.id} committed ${index}/${seen.term} but ${index}/${known.term} was committed before`);
      }
    }
  }

  private checkLeaderCompleteness(leader: RaftCore): void {
    const snapshot = leader.snapshotMeta;
    for (const [index, committed] of this.committed) {
      if (index < snapshot.index || committed.committedInTerm >= leader.term) continue;
      const term = leader.termAt(index);
      if (term === undefined) {
        this.fail('leader completeness', `${leader.id} leads term ${leader.term} without committed entry ${index}/${committed.term} (last index ${leader.lastIndex})`);
        return;
      }
      const entry = leader.entryAt(index);
      const hash = entry === undefined ? committed.hash : entryHash(entry);
      if (term !== committed.term || hash !== committed.hash) {
        this.fail('leader completeness', `${leader.id} leads term ${leader.term} with ${index}/${term} where ${index}/${committed.term} was committed`);
        return;
      }
    }
  }

  /** Called by the replica for every entry it applies. */
  onApplied(node: NodeId, entry: Entry): void {
    const seen: CommittedEntry = { term: entry.term, hash: entryHash(entry), committedInTerm: entry.term };
    const known = this.applied.get(entry.index);
    if (known === undefined) this.applied.set(entry.index, seen);
    else if (known.term !== seen.term || known.hash !== seen.hash) {
      this.fail('state machine safety', `${node} applied ${entry.index}/${entry.term} but ${entry.index}/${known.term} was applied elsewhere`);
    }
  }

  /** Log matching across every pair of nodes, over the entries they hold. */
  checkLogMatching(nodes: readonly RaftCore[]): void {
    const byPosition = new Map<string, string>();
    for (const node of nodes) {
      let previousTerm = node.termAt(node.firstHeldIndex() - 1);
      for (const entry of node.heldEntries()) {
        const key = `${entry.index}/${entry.term}`;
        const value = `${entryHash(entry)}|${previousTerm ?? '?'}`;
        const known = byPosition.get(key);
        if (known === undefined) byPosition.set(key, value);
        else if (!sameHistory(known, value)) {
          this.fail('log matching', `${node.id} holds ${key} as ${value}, another node as ${known}`);
          return;
        }
        previousTerm = entry.term;
      }
    }
  }

  /** At the end: a converged node's log must still agree with everything ever committed. */
  checkCommittedPresent(node: RaftCore): void {
    if (node.commitIndex < this.maxCommitted) {
      this.fail('committed entry lost', `${node.id} ends with commit ${node.commitIndex} < ${this.maxCommitted} committed earlier`);
    }
    for (const [index, committed] of this.committed) {
      const term = node.termAt(index);
      if (term !== undefined && term !== committed.term) {
        this.fail('committed entry lost', `${node.id} ends with ${index}/${term}, committed was ${index}/${committed.term}`);
        return;
      }
    }
  }
}

function sameHistory(a: string, b: string): boolean {
  const [hashA, previousA] = a.split('|');
  const [hashB, previousB] = b.split('|');
  if (hashA !== hashB) return false;
  return previousA === '?' || previousB === '?' || previousA === previousB;
}
