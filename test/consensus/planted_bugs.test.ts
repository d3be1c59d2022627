// Goal: show that the SafetyChecker (src/sim/safety_checker.ts), wired into the TestCluster
// harness, catches each bug the core can plant (config.plantedBug), and that the same scripted
// scenario is clean without the bug. Each scenario is a classic from the Raft paper or thesis.
// Method: scripted, deterministic scenarios on the harness (partitions, crashes, restarts and
// selective message loss); each runs twice, with and without the planted bug, and the test
// compares what the checker and the cores report.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PlantedBug } from '../../src/consensus/config.ts';
import type { Message, NodeId } from '../../src/consensus/types.ts';
import { TestCluster, electedCluster, type CoreOverrides } from './harness.ts';

const FIVE = ['n1', 'n2', 'n3', 'n4', 'n5'];

/** The original algorithm of the paper, without the thesis's PreVote and CheckQuorum. */
const PAPER: CoreOverrides = { preVote: false, checkQuorum: false };

/** A leader's appends that would hand a follower an entry of the leader's own term are lost. */
function ownTermEntriesLost(cluster: TestCluster): (m: Message) => boolean {
  return (m) => m.type === 'appendEntries' && m.entries.some((e) => e.term === m.term) &&
    cluster.node(m.to).core?.termAt(m.prevIndex) === m.prevTerm;
}

/**
 * With CheckQuorum, a voter that heard from a leader less than an election timeout ago ignores
 * vote requests (leader stickiness): let the nodes' timers run out, losing whatever they send.
 */
function expireLeases(cluster: TestCluster, ids: readonly NodeId[]): void {
  for (const id of ids) {
    if (!cluster.core(id).config.checkQuorum) continue;
    cluster.tick(id, cluster.core(id).config.electionTimeoutTicks);
    cluster.process(id);
    cluster.dropQueued({ from: id });
  }
}

function campaignUntilLeader(cluster: TestCluster, id: NodeId): void {
  for (let attempt = 0; attempt < 4 && cluster.core(id).role !== 'leader'; attempt++) {
    cluster.campaign(id);
    cluster.stabilize({ drop: ownTermEntriesLost(cluster) });
  }
  assert.equal(cluster.core(id).role, 'leader', `${id} could not win`);
}

interface Figure8 {
  readonly cluster: TestCluster;
  /** n1's commit index at the end of step (c), when entry 2 (term 1) is on a majority. */
  readonly commitAfterC: number;
  readonly holdersOfEntry2AfterC: number;
}

/**
 * Raft §5.4.2, Figure 8, on five nodes. Index 1 is the no-op of term 1, committed everywhere.
 *   (a) n1 leads term 1 and replicates entry A (2/1) to n2 only;
 *   (b) n1 crashes; X (one of n3..n5) is elected by n3, n4, n5 and appends entries of its term
 *       at 2 and 3 that reach nobody;
 *   (c) X crashes; n1 restarts and is elected by n1 and the other two; it replicates A to them,
 *       so A is on a majority, while its own no-op reaches nobody;
 *   (d) n1 crashes; X restarts, is elected by n2 and the other two (its last term is higher),
 *       and overwrites index 2 everywhere.
 * A is committed in (c) only if an entry of an earlier term may be committed by counting.
 */
function figure8(base: CoreOverrides, plantedBug: PlantedBug | null): Figure8 {
  const cluster = electedCluster({ voters: FIVE, config: { ...base, entriesPerMessageMax: 1, plantedBug } }, 'n1');
  cluster.tickAll();
  cluster.stabilize();
  for (const id of FIVE) assert.equal(cluster.core(id).commitIndex, 1);
  const lost = ownTermEntriesLost(cluster);

  // (a)
  cluster.partition([['n1', 'n2'], ['n3', 'n4', 'n5']]);
  assert.deepEqual(cluster.propose('n1', 'A'), { ok: true, index: 2, term: 1 });
  cluster.stabilize();
  assert.equal(cluster.core('n2').termAt(2), 1);

  // (b)
  cluster.crash('n1');
  cluster.partition([['n3', 'n4', 'n5'], ['n2']]);
  cluster.runUntil(() => cluster.leader() !== null, 200, { ids: ['n3', 'n4', 'n5'], drop: lost });
  const x = cluster.leader() as NodeId;
  const others = ['n3', 'n4', 'n5'].filter((id) => id !== x);
  cluster.propose(x, 'B');
  cluster.stabilize({ drop: lost });
  assert.equal(cluster.core(x).lastIndex, 3);
  for (const id of others) assert.equal(cluster.core(id).lastIndex, 1);

  // (c)
  cluster.crash(x);
  cluster.restart('n1');
  cluster.partition([['n1', ...others], ['n2']]);
  cluster.runUntil(() => cluster.leader() === 'n1', 200, { ids: ['n1', ...others], drop: lost });
  const n1 = cluster.core('n1');
  assert.equal(n1.termAt(2), 1);
  assert.ok(n1.term > cluster.node(x).durable.hardState.term);
  const holders = ['n1', 'n2', ...others].filter((id) => cluster.core(id).termAt(2) === 1).length;
  const commitAfterC = n1.commitIndex;

  // (d)
  cluster.crash('n1');
  cluster.heal();
  cluster.restart(x);
  expireLeases(cluster, ['n2', ...others]);
  campaignUntilLeader(cluster, x);
  const leader = cluster.core(x);
  cluster.runUntil(() => ['n2', ...others].every((id) => cluster.core(id).commitIndex >= leader.commitIndex) &&
    leader.termAt(leader.commitIndex) === leader.term, 20);
  for (const id of [x, 'n2', ...others]) assert.notEqual(cluster.core(id).termAt(2), 1, `${id} no longer holds A`);
  return { cluster, commitAfterC, holdersOfEntry2AfterC: holders };
}

for (const [name, base] of [['the paper\'s algorithm', PAPER], ['PreVote + CheckQuorum (defaults)', {}]] as const) {
  test(`Raft §5.4.2 Figure 8 (${name}): with commitEarlierTermByCounting, a committed entry is overwritten and the checker reports it`, () => {
    const { cluster, commitAfterC, holdersOfEntry2AfterC } = figure8(base, 'commitEarlierTermByCounting');
    assert.ok(holdersOfEntry2AfterC >= 3);
    assert.equal(commitAfterC, 2, 'entry 2 of term 1 was committed by counting replicas');
    assert.ok(!cluster.checker.ok);
    const properties = new Set(cluster.checker.violations.map((v) => v.property));
    assert.ok(properties.has('committed entry lost') || properties.has('state machine safety'), [...properties].join(', '));
  });

  test(`Raft §5.4.2 Figure 8 (${name}): without the bug, entry 2 is not committed early and nothing is violated`, () => {
    const { cluster, commitAfterC, holdersOfEntry2AfterC } = figure8(base, null);
    assert.ok(holdersOfEntry2AfterC >= 3, 'entry 2 of term 1 was on a majority');
    assert.equal(commitAfterC, 1, '...and yet not committed');
    assert.ok(cluster.checker.ok, JSON.stringify(cluster.checker.violations));
    assert.equal(cluster.node('n1').applied.some((a) => a.text === 'A'), false);
  });
}

/**
 * Thesis §6.4: n1 leads term 1 and commits x; it is cut off, n2/n3 elect a new leader that commits
 * y. n1 does not know it was deposed. A read on n1 must not be answered from its stale state.
 */
function deposedLeaderRead(plantedBug: PlantedBug | null): { cluster: TestCluster; newLeader: NodeId } {
  const cluster = electedCluster({ voters: ['n1', 'n2', 'n3'], config: { plantedBug } }, 'n1');
  cluster.propose('n1', 'x');
  cluster.tickAll();
  cluster.stabilize();
  cluster.isolate('n1');
  cluster.runUntil(() => cluster.leader() !== 'n1' && cluster.leader() !== null, 60, { ids: ['n2', 'n3'] });
  const newLeader = cluster.leader() as NodeId;
  cluster.propose(newLeader, 'y');
  cluster.stabilize();
  assert.equal(cluster.core(newLeader).commitIndex, 4, 'y is committed (and acknowledged) at 4');
  assert.equal(cluster.core('n1').role, 'leader', 'n1 still believes it leads term 1');
  cluster.read('n1', 'r');
  cluster.stabilize();
  return { cluster, newLeader };
}

test('thesis §6.4 ReadIndex, planted readWithoutQuorum: a deposed leader answers a read at once with a stale index', () => {
  const { cluster, newLeader } = deposedLeaderRead('readWithoutQuorum');
  const answered = cluster.node('n1').readStates;
  assert.deepEqual(answered, [{ requestId: 'r', index: 2 }]);
  assert.ok((answered[0]?.index ?? 0) < cluster.core(newLeader).commitIndex,
    'serving at index 2 misses y, committed before the read started: not linearizable');
});

test('thesis §6.4 ReadIndex: without the bug, the deposed leader never answers the read', () => {
  const { cluster } = deposedLeaderRead(null);
  assert.deepEqual(cluster.node('n1').readStates, []);
  cluster.runUntil(() => cluster.core('n1').role !== 'leader', 25, { ids: ['n1'] });
  cluster.stabilize();
  assert.deepEqual(cluster.node('n1').readStates, []);
  assert.deepEqual(cluster.node('n1').readsDropped, ['r']);
});

/** Raft §5.2: n2 votes for n1 in term 1, then n3 asks n2 for its vote in the same term. */
function secondCandidate(plantedBug: PlantedBug | null): TestCluster {
  const cluster = new TestCluster({ voters: ['n1', 'n2', 'n3'], config: { ...PAPER, plantedBug } });
  cluster.campaign('n1');
  cluster.process('n1');
  cluster.deliver({ from: 'n1', to: 'n2' });
  cluster.process('n2');
  cluster.deliver({ from: 'n2', to: 'n1' });
  assert.equal(cluster.core('n1').role, 'leader');
  cluster.campaign('n3');
  cluster.process('n3');
  cluster.deliver({ from: 'n3', to: 'n2' });
  cluster.process('n2');
  cluster.deliver({ from: 'n2', to: 'n3' });
  return cluster;
}

test('Raft §5.2, planted voteTwiceInTerm: two leaders in one term, reported as an election safety violation', () => {
  const cluster = secondCandidate('voteTwiceInTerm');
  assert.equal(cluster.core('n3').role, 'leader');
  assert.equal(cluster.core('n3').term, cluster.core('n1').term);
  assert.deepEqual(cluster.checker.violations.map((v) => v.property), ['election safety']);
});

test('Raft §5.2: without the bug, the second candidate of the term is refused', () => {
  const cluster = secondCandidate(null);
  assert.equal(cluster.core('n3').role, 'candidate');
  assert.ok(cluster.checker.ok);
});

/**
 * Ready contract: both followers acknowledge entry x, then crash before their fsync completes.
 * The leader counts the acknowledgements, commits x, then crashes; the followers restart without x.
 */
function lostAcknowledgedWrite(plantedBug: PlantedBug | null): TestCluster {
  const cluster = electedCluster({ voters: ['n1', 'n2', 'n3'], config: { plantedBug } }, 'n1');
  cluster.tickAll();
  cluster.stabilize();
  cluster.propose('n1', 'x');
  cluster.process('n1');
  cluster.deliver({ from: 'n1' });
  cluster.beginReady('n2');
  cluster.beginReady('n3');
  cluster.crash('n2');
  cluster.crash('n3');
  cluster.deliver({ to: 'n1' });
  cluster.process('n1');
  cluster.crash('n1');
  cluster.restart('n2');
  cluster.restart('n3');
  cluster.runUntil(() => {
    const leader = cluster.leader();
    return leader !== null && cluster.core(leader).commitIndex >= 2;
  }, 60);
  return cluster;
}

test('Ready contract, planted ackBeforePersist: an acknowledged, committed entry is lost after follower crashes', () => {
  const cluster = lostAcknowledgedWrite('ackBeforePersist');
  assert.deepEqual(cluster.appliedTexts('n1'), ['x'], 'n1 committed and applied x before it crashed');
  assert.equal(cluster.node('n2').durable.entries.some((e) => e.index === 2 && e.term === 1), false, 'n2 never persisted x');
  const properties = new Set(cluster.checker.violations.map((v) => v.property));
  assert.ok(properties.has('committed entry lost') || properties.has('state machine safety'), [...properties].join(', '));
});

test('Ready contract: without the bug, no acknowledgement leaves before the fsync, so nothing committed is lost', () => {
  const cluster = lostAcknowledgedWrite(null);
  assert.deepEqual(cluster.appliedTexts('n1'), [], 'x was never committed');
  assert.ok(cluster.checker.ok, JSON.stringify(cluster.checker.violations));
});
