// Goal: leader election follows Raft §5.2/§5.4.1 and the thesis extensions PreVote (§9.6) and
// CheckQuorum / leader stickiness (§6.2, §4.2.3).
// Method: interaction tests on the synchronous TestCluster harness: each test scripts ticks,
// campaigns and message deliveries one at a time, then checks one rule on the cores' state and
// on the messages they sent. Fixed seeds; the SafetyChecker watches every step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RequestVoteResponseMessage } from '../../src/consensus/types.ts';
import { TestCluster, electedCluster } from './harness.ts';

const THREE = ['n1', 'n2', 'n3'];

test('Raft §5.2: a follower campaigns after its randomized election timeout in [T, 2T)', () => {
  const seen = new Set<number>();
  for (const seed of [1, 2, 3, 4, 5]) {
    const cluster = new TestCluster({ voters: THREE, seed, config: { preVote: false } });
    for (const id of THREE) {
      const core = cluster.core(id);
      let ticks = 0;
      while (core.role === 'follower') {
        cluster.tick(id);
        ticks++;
        assert.ok(ticks < 20, `${id} did not campaign within 2T`);
      }
      assert.ok(ticks >= 10, `${id} campaigned after ${ticks} ticks, before T`);
      assert.equal(core.role, 'candidate');
      assert.equal(core.term, 1);
      seen.add(ticks);
      cluster.process(id);
      assert.equal(cluster.sentWhere({ from: id, type: 'requestVote' }).length, 2, 'asks every other voter');
    }
  }
  assert.ok(seen.size > 1, 'timeouts are randomized');
});

test('Raft §5.2: a candidate with votes from a majority becomes leader and appends a no-op of its term (thesis §6.4)', () => {
  const cluster = new TestCluster({ voters: THREE, config: { preVote: false } });
  cluster.campaign('n1');
  cluster.process('n1');
  cluster.deliver({ to: 'n2' });
  cluster.dropQueued({ to: 'n3' });
  cluster.process('n2');
  cluster.deliver({ to: 'n1' });
  const n1 = cluster.core('n1');
  assert.equal(n1.role, 'leader', 'two votes of three are a majority');
  const last = n1.entryAt(n1.lastIndex);
  assert.equal(last?.kind, 'noop');
  assert.equal(last?.term, n1.term);
  cluster.stabilize();
  assert.equal(cluster.core('n3').leaderId, 'n1');
  assert.ok(cluster.checker.ok);
});

test('Raft §5.2: a voter grants at most one vote per term', () => {
  const cluster = new TestCluster({ voters: THREE, config: { preVote: false } });
  cluster.campaign('n1');
  cluster.process('n1');
  cluster.deliver({ from: 'n1', to: 'n2' });
  cluster.process('n2');
  assert.equal(cluster.core('n2').vote, 'n1');

  cluster.campaign('n3'); // also term 1
  assert.equal(cluster.core('n3').term, 1);
  cluster.process('n3');
  cluster.deliver({ from: 'n3', to: 'n2' });
  cluster.process('n2');
  const answer = cluster.queue.find((m): m is RequestVoteResponseMessage => m.type === 'requestVoteResponse' && m.to === 'n3');
  assert.equal(answer?.granted, false, 'second candidate of the same term refused');
  assert.equal(cluster.core('n2').vote, 'n1');
  assert.equal(cluster.node('n2').durable.hardState.vote, 'n1');
});

test('Raft §5.4.1: a candidate whose log is less up to date is refused', () => {
  // n3 lacks entry 2 (term 1) that n1 and n2 hold.
  const cluster = new TestCluster({
    voters: THREE, config: { preVote: false },
    logs: { n1: { terms: [1, 1] }, n2: { terms: [1, 1] }, n3: { terms: [1] } },
  });
  cluster.campaign('n3');
  assert.equal(cluster.core('n3').term, 2);
  cluster.stabilize();
  const answers = cluster.sentWhere({ to: 'n3', type: 'requestVoteResponse' }) as RequestVoteResponseMessage[];
  assert.equal(answers.length, 2);
  assert.ok(answers.every((m) => !m.granted));
  assert.notEqual(cluster.core('n3').role, 'leader');
  assert.equal(cluster.core('n2').vote, null, 'the voter moved to term 2 without voting');

  // The more up-to-date node wins.
  cluster.campaign('n1');
  cluster.stabilize();
  assert.equal(cluster.leader(), 'n1');
  assert.ok(cluster.checker.ok);
});

test('Raft §5.2: split votes are resolved by randomized timeouts within a bounded number of ticks', () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    const cluster = new TestCluster({ voters: ['n1', 'n2', 'n3', 'n4', 'n5'], seed, config: { preVote: false } });
    for (const id of cluster.ids()) cluster.campaign(id); // everyone votes for itself in term 1
    cluster.stabilize();
    assert.equal(cluster.leader(), null, 'a five-way split elects nobody');
    const ticks = cluster.runUntil(() => cluster.leader() !== null, 60);
    assert.ok(ticks <= 40, `seed ${seed}: leader after ${ticks} ticks`);
    const leaders = cluster.live().filter((id) => cluster.core(id).role === 'leader');
    assert.equal(leaders.length, 1);
    assert.ok(cluster.checker.ok, JSON.stringify(cluster.checker.violations));
  }
});

test('thesis §9.6 PreVote: an isolated node that rejoins neither raises its term nor disrupts the leader', () => {
  const cluster = electedCluster({ voters: THREE }, 'n1');
  cluster.isolate('n3');
  for (let i = 0; i < 100; i++) {
    cluster.tickAll();
    if (i % 10 === 0) cluster.propose('n1', `w${i}`);
    cluster.stabilize();
  }
  assert.equal(cluster.core('n3').term, 1, 'pre-votes never bump the term');
  assert.notEqual(cluster.core('n3').role, 'candidate');
  cluster.heal();
  cluster.runUntil(() => cluster.core('n3').lastIndex === cluster.core('n1').lastIndex, 10);
  assert.equal(cluster.leader(), 'n1');
  for (const id of THREE) assert.equal(cluster.core(id).term, 1);
  assert.deepEqual(cluster.log('n3'), cluster.log('n1'));
  assert.ok(cluster.checker.ok);
});

test('thesis §9.6 PreVote: answering a pre-vote changes neither the voter\'s term nor its vote', () => {
  const cluster = new TestCluster({ voters: THREE });
  cluster.campaign('n1');
  assert.equal(cluster.core('n1').role, 'preCandidate');
  assert.equal(cluster.core('n1').term, 0, 'a pre-candidate keeps its term');
  cluster.process('n1');
  cluster.deliver({ from: 'n1', to: 'n2' });
  assert.equal(cluster.core('n2').term, 0);
  assert.equal(cluster.core('n2').vote, null);
  const ready = cluster.process('n2');
  assert.equal(ready?.hardState, null, 'nothing to persist');
  const grant = ready?.messages.find((m) => m.type === 'requestVoteResponse');
  assert.ok(grant?.type === 'requestVoteResponse' && grant.preVote && grant.granted);
  assert.equal(ready?.messagesAfterPersist.length, 0);
});

test('thesis §9.6 PreVote: a pre-candidate that could not win leaves every term unchanged', () => {
  const cluster = new TestCluster({
    voters: THREE,
    logs: { n1: { terms: [1] }, n2: { terms: [1, 1] }, n3: { terms: [1, 1] } },
  });
  cluster.campaign('n1');
  cluster.stabilize();
  for (const id of THREE) assert.equal(cluster.core(id).term, 1);
  assert.equal(cluster.core('n1').role, 'follower');
  assert.equal(cluster.sentWhere({ type: 'requestVote' }).filter((m) => m.type === 'requestVote' && !m.preVote).length, 0);
});

test('thesis §6.2 CheckQuorum: a leader cut off from the majority steps down within about an election timeout', () => {
  const cluster = electedCluster({ voters: THREE }, 'n1');
  cluster.tickAll(3);
  cluster.stabilize();
  cluster.isolate('n1');
  const n1 = cluster.core('n1');
  const ticks = cluster.runUntil(() => n1.role !== 'leader', 25, { ids: ['n1'] });
  assert.ok(ticks >= 1 && ticks <= 20, `stepped down after ${ticks} ticks (T = 10)`);
  assert.equal(n1.term, 1);
});

test('thesis §6.2 CheckQuorum: a leader that hears from a majority stays leader', () => {
  const cluster = electedCluster({ voters: THREE }, 'n1');
  cluster.isolate('n3');
  for (let i = 0; i < 60; i++) {
    cluster.tick('n1');
    cluster.tick('n2');
    cluster.stabilize();
  }
  assert.equal(cluster.leader(), 'n1');
  assert.equal(cluster.core('n1').term, 1);
});

test('thesis §4.2.3 leader stickiness: a follower that heard from the leader recently ignores a vote request of a higher term', () => {
  const cluster = electedCluster({ voters: THREE, config: { preVote: false } }, 'n1');
  cluster.tickAll(2);
  cluster.stabilize();
  cluster.campaign('n3'); // term 2, no pre-vote to stop it
  assert.equal(cluster.core('n3').term, 2);
  cluster.process('n3');
  const delivered = cluster.deliver({ from: 'n3', type: 'requestVote' });
  assert.equal(delivered.length, 2);
  cluster.process('n1');
  cluster.process('n2');
  assert.equal(cluster.queue.filter((m) => m.type === 'requestVoteResponse').length, 0, 'the request is ignored, not answered');
  assert.equal(cluster.core('n2').term, 1);
  assert.equal(cluster.core('n2').vote, 'n1');
  assert.equal(cluster.core('n1').role, 'leader');
  assert.equal(cluster.core('n1').term, 1);
});
