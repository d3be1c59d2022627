// Goal: learners and single-server membership changes follow Raft thesis §4.1-§4.2 (one change at
// a time, effective when appended; a leader commits an entry of its term first, Ongaro's fix of
// the single-server change bug; learners are non-voting members, §4.2.1 "catching up").
// Method: interaction tests on the TestCluster harness: propose changes on the leader, cut links
// to control what commits, and check memberships, commit indices and who receives what.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Message } from '../../src/consensus/types.ts';
import { TestCluster, electedCluster } from './harness.ts';

const THREE = ['n1', 'n2', 'n3'];

test('thesis §4.2.1 learners: a learner receives entries but does not vote and does not count for commit', () => {
  const cluster = electedCluster({ voters: THREE, learners: ['n4'] }, 'n1');
  assert.equal(cluster.sentWhere({ to: 'n4', type: 'requestVote' }).length, 0, 'nobody asks a learner for a vote');
  cluster.propose('n1', 'a');
  cluster.tickAll();
  cluster.stabilize();
  assert.deepEqual(cluster.appliedTexts('n4'), ['a']);

  cluster.isolate('n2');
  cluster.isolate('n3');
  const { index } = cluster.propose('n1', 'b') as { index: number };
  cluster.stabilize();
  assert.equal(cluster.core('n4').lastIndex, index, 'the learner has it');
  assert.equal(cluster.core('n1').progressOf('n4')?.match, index);
  assert.equal(cluster.core('n1').commitIndex, index - 1, 'leader + learner are not a majority of voters');

  cluster.heal();
  cluster.isolate('n4');
  cluster.tick('n4', 100);
  assert.equal(cluster.core('n4').role, 'follower', 'a learner never campaigns');
  assert.equal(cluster.sentWhere({ from: 'n4', type: 'requestVote' }).length, 0);
});

test('thesis §4.2.1: an added learner catches up from an empty log, and promoteLearner makes it a voter', () => {
  const cluster = electedCluster({ voters: THREE, spares: ['n4'] }, 'n1');
  cluster.propose('n1', 'a');
  cluster.stabilize();
  assert.ok(cluster.proposeChange('n1', { type: 'addLearner', node: 'n4' }).ok);
  cluster.runUntil(() => cluster.core('n4').commitIndex === cluster.core('n1').commitIndex, 10);
  assert.deepEqual(cluster.core('n4').membership, { voters: THREE, learners: ['n4'] });
  assert.deepEqual(cluster.appliedTexts('n4'), ['a']);
  assert.equal(cluster.core('n4').isVoter(), false);

  assert.ok(cluster.proposeChange('n1', { type: 'promoteLearner', node: 'n4' }).ok);
  cluster.runUntil(() => cluster.ids().every((id) => cluster.core(id).isVoter('n4')), 10);
  for (const id of cluster.ids()) {
    assert.deepEqual(cluster.core(id).membership, { voters: [...THREE, 'n4'], learners: [] }, id);
  }
  // Now it counts: with 4 voters, n1 + n4 are not enough, n1 + n2 + n4 are.
  cluster.isolate('n3');
  cluster.isolate('n2');
  const b = cluster.propose('n1', 'b') as { index: number };
  cluster.stabilize();
  assert.equal(cluster.core('n1').commitIndex, b.index - 1);
  cluster.heal();
  cluster.isolate('n3');
  cluster.tick('n1');
  cluster.stabilize();
  assert.equal(cluster.core('n1').commitIndex, b.index);
  // And it campaigns when it stops hearing from a leader.
  cluster.isolate('n4');
  cluster.tick('n4', 20);
  assert.notEqual(cluster.core('n4').role, 'follower');
  assert.ok(cluster.checker.ok);
});

test('thesis §4.1: a membership change is refused while another one is uncommitted (MEMBERSHIP_CHANGE_PENDING)', () => {
  const cluster = electedCluster({ voters: THREE, spares: ['n4', 'n5'] }, 'n1');
  cluster.isolate('n2');
  cluster.isolate('n3');
  assert.ok(cluster.proposeChange('n1', { type: 'addLearner', node: 'n4' }).ok);
  const second = cluster.proposeChange('n1', { type: 'addLearner', node: 'n5' });
  assert.equal(!second.ok && second.reason, 'MEMBERSHIP_CHANGE_PENDING');
  cluster.heal();
  cluster.runUntil(() => cluster.core('n1').commitIndex === cluster.core('n1').lastIndex, 5);
  assert.ok(cluster.proposeChange('n1', { type: 'addLearner', node: 'n5' }).ok);
});

test('thesis §4.1 (single-server change bug, Ongaro 2015): a new leader refuses changes until it committed an entry of its term', () => {
  const cluster = new TestCluster({ voters: THREE, spares: ['n4'] });
  cluster.campaign('n1');
  cluster.stabilize({ drop: (m: Message) => m.type === 'appendEntries' });
  assert.equal(cluster.core('n1').role, 'leader');
  const refused = cluster.proposeChange('n1', { type: 'addLearner', node: 'n4' });
  assert.equal(!refused.ok && refused.reason, 'MEMBERSHIP_CHANGE_PENDING');
  assert.ok(cluster.propose('n1', 'normal entries are fine').ok);
  cluster.runUntil(() => cluster.core('n1').commitIndex === 2, 5);
  assert.ok(cluster.proposeChange('n1', { type: 'addLearner', node: 'n4' }).ok);
});

test('thesis §4.2.2: the leader cannot remove itself (INVALID_MEMBERSHIP_CHANGE; transfer leadership first)', () => {
  const cluster = electedCluster({ voters: THREE }, 'n1');
  const result = cluster.proposeChange('n1', { type: 'removeNode', node: 'n1' });
  assert.equal(!result.ok && result.reason, 'INVALID_MEMBERSHIP_CHANGE');
  const unknown = cluster.proposeChange('n1', { type: 'promoteLearner', node: 'n2' });
  assert.equal(!unknown.ok && unknown.reason, 'INVALID_MEMBERSHIP_CHANGE');
});

test('thesis §4.2.3: a removed node receives its removal, then nothing more, and does not disrupt the cluster', () => {
  const cluster = electedCluster({ voters: THREE }, 'n1');
  cluster.tickAll();
  cluster.stabilize();
  const removal = cluster.proposeChange('n1', { type: 'removeNode', node: 'n3' }) as { index: number };
  assert.ok(removal.index > 0);
  cluster.stabilize();
  assert.ok(cluster.core('n3').lastIndex >= removal.index, 'n3 got the entry that removes it');
  const since = cluster.step;
  const n3Last = cluster.core('n3').lastIndex;
  for (let i = 0; i < 60; i++) {
    if (i % 10 === 0) cluster.propose('n1', `after${i}`);
    cluster.tickAll();
    cluster.stabilize();
  }
  assert.deepEqual(cluster.core('n1').membership, { voters: ['n1', 'n2'], learners: [] });
  assert.ok(cluster.core('n1').commitIndex >= removal.index + 6);
  assert.equal(cluster.sentWhere({ from: 'n1', to: 'n3', since }).length, 0, 'the leader sends nothing to n3');
  assert.equal(cluster.core('n3').lastIndex, n3Last);
  assert.equal(cluster.leader(), 'n1');
  assert.equal(cluster.core('n1').term, 1, 'n3\'s campaigns (pre-votes) changed no term');
  assert.ok(cluster.checker.ok);
});

test('forceSoleVoter (unsafe recovery): a lone survivor of a lost majority leads alone in a new term, commits what its log holds, and records the new configuration', () => {
  const cluster = electedCluster({ voters: THREE }, 'n1');
  cluster.propose('n1', 'a');
  cluster.stabilize();
  // 'x' reaches only n3 and is never committed; then the leader and n2 are lost for good.
  cluster.cutLink('n1', 'n2');
  cluster.cutLink('n3', 'n1'); // n3 stores x, but its acknowledgement never arrives
  cluster.propose('n1', 'x');
  cluster.stabilize();
  assert.equal(cluster.core('n3').lastIndex, cluster.core('n1').lastIndex, 'n3 holds x');
  cluster.crash('n1');
  cluster.crash('n2');
  cluster.heal();
  const survivor = cluster.core('n3');
  const termBefore = survivor.term;
  assert.ok(survivor.commitIndex < survivor.lastIndex, 'x is not committed on n3');
  cluster.tick('n3', 50);
  cluster.stabilize();
  assert.notEqual(survivor.role, 'leader', 'without the force, no majority: no leader');

  survivor.forceSoleVoter();
  cluster.stabilize();
  assert.equal(survivor.role, 'leader');
  assert.ok(survivor.term > termBefore, 'a new term');
  assert.deepEqual(survivor.membership, { voters: ['n3'], learners: [] });
  assert.equal(survivor.commitIndex, survivor.lastIndex, 'everything in its log is committed, x included');
  assert.deepEqual(cluster.appliedTexts('n3'), ['a', 'x']);
  const b = cluster.propose('n3', 'b');
  assert.ok(b.ok);
  cluster.stabilize();
  assert.deepEqual(cluster.appliedTexts('n3'), ['a', 'x', 'b'], 'it commits alone');

  // The configuration is in the log: a restart keeps it (no election among lost members).
  cluster.crash('n3');
  cluster.restart('n3');
  assert.deepEqual(cluster.core('n3').membership, { voters: ['n3'], learners: [] });
  cluster.tick('n3', 50);
  cluster.stabilize();
  assert.equal(cluster.core('n3').role, 'leader');
});

test('thesis §4.2.2: a removed voter receives the entry that removes it, then never campaigns; the leader stops replicating to it', () => {
  const cluster = electedCluster({ voters: THREE }, 'n1');
  cluster.propose('n1', 'a');
  cluster.stabilize();
  const removal = cluster.proposeChange('n1', { type: 'removeNode', node: 'n3' }) as { ok: true; index: number };
  assert.ok(removal.ok);
  cluster.stabilize();
  assert.deepEqual(cluster.core('n3').membership.voters, ['n1', 'n2'], 'n3 holds its own removal');
  assert.equal(cluster.core('n3').isVoter(), false);
  assert.equal(cluster.core('n1').progressOf('n3'), undefined, 'the leader forgot n3 once it acknowledged');
  const since = cluster.sentWhere().length;
  cluster.isolate('n3');
  cluster.tick('n3', 100);
  cluster.heal();
  cluster.stabilize();
  assert.equal(cluster.sentWhere({ from: 'n3', since, type: 'requestVote' }).length, 0, 'n3 never campaigns (no vote or pre-vote requests)');
  assert.equal(cluster.core('n1').role, 'leader');

  // A removed node that is down when it is removed: the leader tries for a few election timeouts, then gives up.
  const four = electedCluster({ voters: ['n1', 'n2', 'n3', 'n4'] }, 'n1');
  four.propose('n1', 'a');
  four.stabilize();
  four.isolate('n4');
  assert.ok(four.proposeChange('n1', { type: 'removeNode', node: 'n4' }).ok);
  four.stabilize();
  assert.ok(four.core('n1').progressOf('n4') !== undefined, 'still trying to tell n4');
  four.tick('n1', 3 * 10 + 1); // the harness's election timeout is 10 ticks
  four.stabilize();
  assert.equal(four.core('n1').progressOf('n4'), undefined, 'given up after three election timeouts');
});
