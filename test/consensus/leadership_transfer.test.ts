// Goal: leadership transfer follows Raft thesis §3.10: the leader brings the target up to date,
// then sends it TimeoutNow so it campaigns at once (bypassing leader stickiness); proposals are
// refused while the transfer runs; a transfer that cannot finish is abandoned after
// transferTimeoutTicks.
// Method: interaction tests on the TestCluster harness; the order of events is read back from the
// harness's record of sent messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { electedCluster } from './harness.ts';

const THREE = ['n1', 'n2', 'n3'];

test('thesis §3.10: the target is caught up, then receives TimeoutNow and wins the election', () => {
  const cluster = electedCluster({ voters: THREE }, 'n1');
  cluster.isolate('n3');
  for (const body of ['a', 'b', 'c']) cluster.propose('n1', body);
  cluster.stabilize();
  cluster.heal();
  const n1 = cluster.core('n1');
  assert.equal(n1.progressOf('n3')?.match, 1, 'n3 is 3 entries behind');

  const since = cluster.step;
  assert.deepEqual(cluster.core('n1').transferLeadership('n3'), { ok: true });
  assert.equal(cluster.sentWhere({ type: 'timeoutNow', since }).length, 0, 'not before n3 is caught up');
  cluster.runUntil(() => cluster.leader() === 'n3', 5);

  const records = cluster.sent.filter((r) => r.step >= since);
  const timeoutNow = records.findIndex((r) => r.message.type === 'timeoutNow' && r.message.to === 'n3');
  const caughtUp = records.findIndex((r) => r.message.type === 'appendEntriesResponse' && r.message.from === 'n3' &&
    r.message.success && r.message.matchIndex === 4);
  assert.ok(caughtUp >= 0 && timeoutNow > caughtUp, 'TimeoutNow follows the acknowledgement of the last entry');
  const request = records.find((r) => r.message.type === 'requestVote' && r.message.from === 'n3')?.message;
  assert.ok(request?.type === 'requestVote' && request.transfer && !request.preVote, 'a real vote at once, marked transfer');
  assert.equal(cluster.core('n3').term, 2);
  assert.equal(cluster.core('n1').role, 'follower');
  assert.deepEqual(cluster.log('n3').slice(0, 4), cluster.log('n1').slice(0, 4));
  assert.ok(cluster.checker.ok);
});

test('thesis §3.10: proposals are refused with LEADERSHIP_TRANSFER while a transfer runs', () => {
  const cluster = electedCluster({ voters: THREE }, 'n1');
  cluster.isolate('n3');
  cluster.core('n1').transferLeadership('n3');
  const result = cluster.propose('n1', 'x');
  assert.equal(result.ok, false);
  assert.equal(!result.ok && result.reason, 'LEADERSHIP_TRANSFER');
  const change = cluster.proposeChange('n1', { type: 'removeNode', node: 'n2' });
  assert.equal(!change.ok && change.reason, 'LEADERSHIP_TRANSFER');
});

test('thesis §3.10: a transfer to an unreachable node is aborted after transferTimeoutTicks, then proposals are accepted', () => {
  const cluster = electedCluster({ voters: THREE, config: { transferTimeoutTicks: 20 } }, 'n1');
  cluster.isolate('n3');
  const n1 = cluster.core('n1');
  assert.ok(n1.transferLeadership('n3').ok);
  for (let tick = 1; tick <= 20; tick++) {
    cluster.tick('n1');
    cluster.tick('n2');
    cluster.stabilize();
    assert.equal(n1.role, 'leader');
    if (tick < 20) {
      assert.equal(n1.transferTarget, 'n3', `still transferring after ${tick} ticks`);
      assert.equal(cluster.propose('n1', 'x').ok, false);
    }
  }
  assert.equal(n1.transferTarget, null);
  assert.equal(cluster.propose('n1', 'after').ok, true);
  cluster.stabilize();
  assert.equal(cluster.core('n3').term, 1, 'the target never campaigned');
});
