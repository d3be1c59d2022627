// Goal: linearizable reads follow the thesis §6.4 ReadIndex protocol (a leader confirms it is
// still leader with a heartbeat round acknowledged by a majority, and first commits an entry of
// its own term), follower reads (§6.4 "reads from followers") and lease reads (§6.4.1).
// Method: interaction tests on the TestCluster harness: issue readIndex on a node, deliver
// heartbeats and their acknowledgements selectively, and check when (and with which index) a
// ReadState appears in the node's Readies, or that the read is dropped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Message } from '../../src/consensus/types.ts';
import { TestCluster, electedCluster } from './harness.ts';

const THREE = ['n1', 'n2', 'n3'];

function readIds(cluster: TestCluster, id: string): string[] {
  return cluster.node(id).readStates.map((r) => `${r.requestId}@${r.index}`);
}

test('thesis §6.4 ReadIndex: a read on the leader is answered only after a majority acknowledged a heartbeat round', () => {
  const cluster = electedCluster({ voters: THREE }, 'n1');
  cluster.tickAll();
  cluster.stabilize();
  cluster.read('n1', 'r1');
  const ready = cluster.process('n1');
  assert.equal(ready?.readStates.length, 0);
  assert.ok(ready?.messages.some((m) => m.type === 'heartbeat' && m.to === 'n2'), 'a heartbeat round goes out');
  cluster.dropQueued({ to: 'n3' });
  cluster.deliver({ to: 'n2' });
  cluster.process('n2');
  cluster.process('n1');
  assert.deepEqual(readIds(cluster, 'n1'), [], 'no acknowledgement yet');
  cluster.deliver({ from: 'n2', to: 'n1' });
  cluster.process('n1');
  assert.deepEqual(readIds(cluster, 'n1'), ['r1@1'], 'n1 + n2 acknowledged: answered with the commit index');
});

test('ReadIndex: one heartbeat round in flight; reads arriving meanwhile wait for the next round, which leaves once a majority answered', () => {
  const cluster = electedCluster({ voters: THREE }, 'n1');
  cluster.tickAll();
  cluster.stabilize();
  const heartbeats = (): number => cluster.sentWhere({ from: 'n1', type: 'heartbeat' }).length;
  const before = heartbeats();
  cluster.read('n1', 'r1');
  cluster.process('n1');
  assert.equal(heartbeats(), before + 2, 'round 1 to n2 and n3');
  cluster.read('n1', 'r2');
  cluster.process('n1');
  cluster.read('n1', 'r3');
  cluster.process('n1');
  assert.equal(heartbeats(), before + 2, 'no new round while round 1 is unanswered');
  cluster.deliver({ to: 'n2' });
  cluster.process('n2');
  cluster.deliver({ from: 'n2', to: 'n1' });
  cluster.process('n1');
  assert.deepEqual(readIds(cluster, 'n1'), ['r1@1'], 'round 1 confirmed r1 only: r2 and r3 came after it was sent');
  assert.equal(heartbeats(), before + 4, 'round 2 leaves once round 1 has a majority, for r2 and r3 together');
  cluster.stabilize();
  assert.deepEqual(readIds(cluster, 'n1'), ['r1@1', 'r2@1', 'r3@1']);
});

test('thesis §6.4 ReadIndex: a read is not answered without the acknowledgements', () => {
  const cluster = electedCluster({ voters: THREE }, 'n1');
  cluster.read('n1', 'r1');
  cluster.stabilize({ drop: (m) => m.type === 'heartbeatResponse' });
  assert.deepEqual(readIds(cluster, 'n1'), []);
  cluster.stabilize();
  cluster.tickAll();
  cluster.stabilize();
  assert.deepEqual(readIds(cluster, 'n1'), ['r1@1'], 'a later round confirms it');
});

test('thesis §6.4 ReadIndex: a new leader delays reads until it has committed an entry of its term', () => {
  // Entry 2 (term 1) may or may not have been committed by the previous leader: a read index of 1
  // could miss it. The new leader must wait for its no-op (3/2).
  const cluster = new TestCluster({
    voters: THREE,
    logs: { n1: { terms: [1, 1], commit: 1 }, n2: { terms: [1, 1], commit: 1 }, n3: { terms: [1, 1], commit: 1 } },
  });
  const noAppends = (m: Message): boolean => m.type === 'appendEntries';
  cluster.campaign('n1');
  cluster.stabilize({ drop: noAppends });
  assert.equal(cluster.core('n1').role, 'leader');
  assert.equal(cluster.core('n1').commitIndex, 1);
  cluster.read('n1', 'r1');
  for (let i = 0; i < 5; i++) {
    cluster.tickAll();
    cluster.stabilize({ drop: noAppends }); // heartbeats are acknowledged, appends are lost
  }
  assert.equal(cluster.core('n1').role, 'leader');
  assert.deepEqual(readIds(cluster, 'n1'), [], 'acknowledged heartbeats are not enough');
  cluster.runUntil(() => readIds(cluster, 'n1').length > 0, 5);
  assert.deepEqual(readIds(cluster, 'n1'), ['r1@3']);
});

test('thesis §6.4 follower read: forwarded to the leader and answered with the leader\'s commit index', () => {
  const cluster = electedCluster({ voters: THREE }, 'n1');
  cluster.tickAll();
  cluster.stabilize();
  const starveN2 = (m: Message): boolean => m.type === 'appendEntries' && m.to === 'n2';
  cluster.propose('n1', 'a');
  cluster.stabilize({ drop: starveN2 });
  assert.equal(cluster.core('n1').commitIndex, 2);
  assert.equal(cluster.core('n2').commitIndex, 1, 'n2 has not even got entry 2');
  cluster.read('n2', 'f1');
  assert.ok(cluster.process('n2')?.messages.some((m) => m.type === 'readIndexRequest' && m.to === 'n1'));
  cluster.stabilize({ drop: starveN2 });
  assert.deepEqual(readIds(cluster, 'n2'), ['f1@2'], 'n2 must apply up to 2 before serving it');
  assert.ok(cluster.sentWhere({ from: 'n1', to: 'n2', type: 'readIndexResponse' }).length === 1);
});

test('thesis §6.4: a leader partitioned away never confirms a read; it is dropped when it steps down', () => {
  const cluster = electedCluster({ voters: THREE }, 'n1');
  cluster.tickAll();
  cluster.stabilize();
  cluster.isolate('n1');
  cluster.read('n1', 'stale');
  cluster.runUntil(() => cluster.leader() !== 'n1' && cluster.leader() !== null, 60, { ids: ['n2', 'n3'] });
  const leader = cluster.leader() as string;
  cluster.propose(leader, 'newer');
  cluster.stabilize();
  assert.equal(cluster.core('n1').role, 'leader', 'n1 does not know yet');
  assert.deepEqual(readIds(cluster, 'n1'), []);
  cluster.runUntil(() => cluster.core('n1').role !== 'leader', 25, { ids: ['n1'] });
  cluster.stabilize();
  assert.deepEqual(readIds(cluster, 'n1'), []);
  assert.deepEqual(cluster.node('n1').readsDropped, ['stale']);
});

test('thesis §6.4.1 lease reads: answered without a round only while the lease holds', () => {
  const cluster = electedCluster({ voters: THREE, config: { leaseReads: true } }, 'n1');
  const n1 = cluster.core('n1');
  assert.equal(n1.hasLease(), false, 'no heartbeat round acknowledged yet');
  cluster.tickAll();
  cluster.stabilize();
  assert.equal(n1.hasLease(), true);
  cluster.isolate('n1');
  // The acknowledged round was sent at the last tick: the lease lasts T - leaseSafetyTicks = 8 ticks.
  cluster.tick('n1', 7);
  cluster.read('n1', 'l1', { lease: true });
  const ready = cluster.process('n1');
  assert.deepEqual(ready?.readStates, [{ requestId: 'l1', index: 1 }], 'answered at once, no round');
  cluster.tick('n1');
  assert.equal(n1.hasLease(), false);
  assert.equal(n1.role, 'leader');
  cluster.read('n1', 'l2', { lease: true });
  cluster.stabilize();
  assert.deepEqual(readIds(cluster, 'n1'), ['l1@1'], 'l2 waits for a round that cannot complete');
  cluster.runUntil(() => n1.role !== 'leader', 25, { ids: ['n1'] });
  cluster.stabilize();
  assert.deepEqual(cluster.node('n1').readsDropped, ['l2']);
});

/**
 * Every lease read answered on `id` must reflect every write committed before it was issued:
 * returns the reads that did not (requestId, answered index, index committed before the read).
 */
function staleLeaseReads(cluster: TestCluster, id: string, issued: Map<string, number>): string[] {
  return cluster.node(id).readStates
    .filter((r) => r.index < (issued.get(r.requestId) ?? 0))
    .map((r) => `${r.requestId}@${r.index} < ${issued.get(r.requestId)}`);
}

test('thesis §6.4.1 lease reads: a voter that restarts must not help elect a new leader while the old lease runs', () => {
  const stale: string[] = [];
  // Where n3's election timer stands when the partition changes decides whether it wins inside
  // the lease; try a few phases (all ticks are in lock-step: no clock drift at all).
  for (let phase = 0; phase < 5; phase++) {
    const cluster = electedCluster({ voters: THREE, config: { leaseReads: true } }, 'n1');
    cluster.isolate('n3'); // n3 has been cut off for a long time: its pre-votes went nowhere
    for (let i = 0; i < 30 + phase; i++) {
      cluster.tickAll();
      cluster.stabilize();
    }
    assert.equal(cluster.core('n1').hasLease(), true, 'n2 just acknowledged n1\'s round');
    cluster.partition([['n1'], ['n2', 'n3']]);
    cluster.crash('n2'); // ...and restarts at once: it no longer knows it heard from n1
    cluster.restart('n2');
    const issued = new Map<string, number>();
    for (let t = 1; t <= 8; t++) {
      cluster.tickAll();
      cluster.stabilize();
      if (cluster.leader() === 'n3' && !cluster.appliedTexts('n3').includes('y')) {
        cluster.propose('n3', 'y');
        cluster.stabilize();
      }
      issued.set(`p${phase}t${t}`, cluster.checker.maxCommitted);
      cluster.read('n1', `p${phase}t${t}`, { lease: true });
      cluster.process('n1');
    }
    stale.push(...staleLeaseReads(cluster, 'n1', issued));
  }
  assert.deepEqual(stale, [], 'n1 served lease reads that miss writes n3 committed before they were issued');
});

test('thesis §6.4.1 lease reads: a TimeoutNow that arrives after the transfer was aborted must not break the lease', () => {
  const cluster = electedCluster({ voters: THREE, config: { leaseReads: true } }, 'n1');
  cluster.tickAll();
  cluster.stabilize();
  assert.ok(cluster.core('n1').transferLeadership('n3').ok);
  cluster.process('n1');
  const delayed = cluster.dropQueued({ type: 'timeoutNow' }); // stuck in the network (or n3 is paused)
  assert.equal(delayed.length, 1);
  for (let i = 0; i < 20; i++) {
    cluster.tickAll();
    cluster.stabilize();
  }
  const n1 = cluster.core('n1');
  assert.equal(n1.transferTarget, null, 'the transfer was aborted');
  // The fix: once a timeoutNow left, its target may campaign at any time in this term (voters
  // ignore stickiness for it), so the leader gives up lease reads until the term ends.
  assert.equal(n1.hasLease(), false, 'the lease stays forfeited after a timeoutNow was sent');
  for (const message of delayed) cluster.inject(message);
  cluster.deliver({ to: 'n3' }); // the late TimeoutNow: n3 campaigns at once...
  cluster.process('n3');
  cluster.partition([['n1'], ['n2', 'n3']]); // ...while n1 is cut off
  cluster.stabilize();
  const issued = new Map<string, number>();
  if (cluster.leader() === 'n3') {
    cluster.propose('n3', 'y');
    cluster.stabilize();
  }
  issued.set('late', cluster.checker.maxCommitted);
  cluster.read('n1', 'late', { lease: true });
  cluster.process('n1');
  assert.deepEqual(staleLeaseReads(cluster, 'n1', issued), []);
});
