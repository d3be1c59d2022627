// Goal: the core keeps its side of the Ready contract (types.ts): every message that promises
// durable state (an append acknowledgement, a vote) leaves only after the persist step; a leader
// counts its own entries only once they are persisted; a restarted node recovers exactly its
// durable image (Raft §5.1 Figure 2 "persistent state", thesis §11.7.3); and the leader's
// acknowledgement watermarks (leader / majority / all) are right.
// Method: the harness's beginReady()/finishReady() split a Ready around its "fsync", so tests can
// look at what was sent before the persist step, crash a node in the middle, or deliver messages
// while the fsync is in flight.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TestCluster, electedCluster } from './harness.ts';

const THREE = ['n1', 'n2', 'n3'];

test('Ready contract (Raft §5.1): a follower acknowledges appended entries only in messagesAfterPersist', () => {
  const cluster = electedCluster({ voters: THREE }, 'n1');
  cluster.propose('n1', 'a');
  cluster.process('n1');
  cluster.deliver({ to: 'n2', type: 'appendEntries' });
  const ready = cluster.beginReady('n2');
  assert.ok(ready !== null && ready.entries.length === 1);
  assert.ok(!ready.messages.some((m) => m.type === 'appendEntriesResponse'));
  assert.ok(ready.messagesAfterPersist.some((m) => m.type === 'appendEntriesResponse' && m.success));
  assert.ok(!cluster.queue.some((m) => m.from === 'n2'), 'nothing left n2 before its fsync');
  cluster.finishReady('n2');
  assert.ok(cluster.queue.some((m) => m.from === 'n2' && m.type === 'appendEntriesResponse'));

  // And over a whole run with elections, proposals and heartbeats: never before the persist step.
  for (let i = 0; i < 30; i++) {
    if (i % 3 === 0) cluster.propose('n1', `w${i}`);
    cluster.tickAll();
    cluster.stabilize();
  }
  const acks = cluster.sent.filter((r) => r.message.type === 'appendEntriesResponse' && r.message.success);
  assert.ok(acks.length > 10);
  assert.ok(acks.every((r) => r.afterPersist));
});

test('Ready contract (Raft §5.2): a vote is granted only in messagesAfterPersist, with the vote persisted first', () => {
  const cluster = new TestCluster({ voters: THREE });
  cluster.campaign('n1');
  cluster.stabilize();
  const grants = cluster.sent.filter((r) => r.message.type === 'requestVoteResponse' && !r.message.preVote && r.message.granted);
  assert.equal(grants.length, 2);
  assert.ok(grants.every((r) => r.afterPersist));
  // A candidate's request carries its vote for itself: it too waits for the fsync.
  const requests = cluster.sent.filter((r) => r.message.type === 'requestVote' && !r.message.preVote);
  assert.ok(requests.length === 2 && requests.every((r) => r.afterPersist));

  // Step by step: the Ready that grants the vote persists it.
  const c2 = new TestCluster({ voters: THREE, config: { preVote: false } });
  c2.campaign('n1');
  c2.process('n1');
  c2.deliver({ to: 'n2' });
  const ready = c2.beginReady('n2');
  assert.equal(ready?.hardState?.vote, 'n1');
  assert.ok(ready?.mustSync);
  assert.ok(!ready?.messages.some((m) => m.type === 'requestVoteResponse'));
  assert.equal(c2.node('n2').durable.hardState.vote, null, 'not yet durable');
  c2.crash('n2'); // the fsync never happened: the grant never left
  c2.restart('n2');
  assert.equal(c2.core('n2').vote, null);
  assert.ok(!c2.queue.some((m) => m.type === 'requestVoteResponse'));
});

test('Ready contract: a leader\'s own entries count toward commit only after advance (its own fsync)', () => {
  const cluster = electedCluster({ voters: THREE }, 'n1');
  cluster.isolate('n3');
  const { index } = cluster.propose('n1', 'a') as { index: number };
  const ready = cluster.beginReady('n1'); // appends leave before the leader's own fsync
  assert.ok(ready?.messages.some((m) => m.type === 'appendEntries' && m.to === 'n2'));
  cluster.deliver({ to: 'n2' });
  cluster.process('n2');
  cluster.deliver({ to: 'n1' });
  const n1 = cluster.core('n1');
  assert.equal(n1.progressOf('n2')?.match, index, 'n2 has it durably');
  assert.equal(n1.commitIndex, index - 1, 'only one durable copy of two needed: the leader\'s is not yet');
  cluster.finishReady('n1');
  assert.equal(n1.commitIndex, index);
});

test('Raft §5.1: a restarted node keeps its term, vote and log', () => {
  const cluster = electedCluster({ voters: THREE }, 'n1');
  cluster.propose('n1', 'a');
  cluster.propose('n1', 'b');
  cluster.tickAll();
  cluster.stabilize();
  for (const id of ['n2', 'n1']) {
    const before = { term: cluster.core(id).term, vote: cluster.core(id).vote, log: cluster.log(id) };
    cluster.crash(id);
    cluster.restart(id);
    const core = cluster.core(id);
    assert.deepEqual({ term: core.term, vote: core.vote, log: cluster.log(id) }, before);
    assert.equal(core.role, 'follower');
  }
  cluster.runUntil(() => cluster.leader() !== null, 60);
  assert.ok(cluster.checker.ok);
});

test('Raft §5.1: entries not persisted before a crash are gone after the restart', () => {
  const cluster = electedCluster({ voters: THREE }, 'n1');
  // A leader's entry: its appends were lost on the wire, its fsync never completed.
  cluster.isolate('n1');
  cluster.propose('n1', 'lost');
  assert.equal(cluster.beginReady('n1')?.entries.length, 1);
  cluster.crash('n1');
  cluster.restart('n1');
  assert.deepEqual(cluster.log('n1'), ['1/1:noop']);
  cluster.heal();

  // A follower's entry: it crashed during its fsync, so it never acknowledged.
  cluster.runUntil(() => cluster.leader() !== null, 60);
  const leader = cluster.leader() as string;
  const follower = THREE.find((id) => id !== leader) as string;
  const lastBefore = cluster.core(follower).lastIndex;
  cluster.propose(leader, 'y');
  cluster.process(leader);
  cluster.deliver({ to: follower, type: 'appendEntries' });
  assert.equal(cluster.core(follower).lastIndex, lastBefore + 1);
  cluster.beginReady(follower);
  cluster.crash(follower);
  cluster.restart(follower);
  assert.equal(cluster.core(follower).lastIndex, lastBefore);
  assert.ok(!cluster.queue.some((m) => m.from === follower && m.type === 'appendEntriesResponse'));
  cluster.runUntil(() => cluster.appliedTexts(follower).includes('y'), 10);
  assert.ok(cluster.checker.ok);
});

test('ack watermarks: leader / majority / all, with one slow follower (all < majority)', () => {
  const cluster = electedCluster({ voters: THREE }, 'n1');
  cluster.propose('n1', 'a');
  cluster.tickAll();
  cluster.stabilize();
  const n1 = cluster.core('n1');
  assert.deepEqual(n1.ackWatermarks(), { term: 1, leader: 2, majority: 2, all: 2 });
  assert.equal(cluster.core('n2').ackWatermarks(), null, 'only a leader reports them');

  cluster.isolate('n3'); // the slow follower
  cluster.propose('n1', 'b');
  cluster.propose('n1', 'c');
  cluster.stabilize();
  assert.deepEqual(n1.ackWatermarks(), { term: 1, leader: 4, majority: 4, all: 2 });

  // Not yet on the leader's own disk: no watermark moves.
  cluster.propose('n1', 'd');
  assert.deepEqual(n1.ackWatermarks(), { term: 1, leader: 4, majority: 4, all: 2 });
  cluster.beginReady('n1');
  cluster.deliver({ to: 'n2' });
  cluster.process('n2');
  cluster.deliver({ to: 'n1' });
  assert.deepEqual(n1.ackWatermarks(), { term: 1, leader: 4, majority: 4, all: 2 });
  cluster.finishReady('n1');
  assert.deepEqual(n1.ackWatermarks(), { term: 1, leader: 5, majority: 5, all: 2 });

  cluster.heal();
  cluster.runUntil(() => n1.ackWatermarks()?.all === 5, 5);
  assert.deepEqual(n1.ackWatermarks(), { term: 1, leader: 5, majority: 5, all: 5 });
});
