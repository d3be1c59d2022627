// Goal: log replication follows Raft §5.3 (replicate, commit on a majority, repair conflicting
// followers), the §5.4.2 commit rule, and the flow-control limits of the core (fast backtracking,
// bounded in-flight appends).
// Method: interaction tests on the synchronous TestCluster harness. Some start from pre-built
// durable logs (like etcd's newTestRaft with a MemoryStorage) to set up divergence exactly; each
// checks one rule on the cores' logs, commit indices and the messages they exchanged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AppendEntriesMessage, AppendEntriesResponseMessage, Message } from '../../src/consensus/types.ts';
import { TestCluster, electedCluster } from './harness.ts';

const THREE = ['n1', 'n2', 'n3'];

function isRejection(message: Message): boolean {
  return message.type === 'appendEntriesResponse' && !message.success;
}

test('Raft §5.3: entries replicate, and commit once a majority holds them', () => {
  const cluster = electedCluster({ voters: THREE }, 'n1');
  cluster.isolate('n3');
  const result = cluster.propose('n1', 'a');
  assert.ok(result.ok);
  cluster.stabilize();
  assert.equal(cluster.core('n1').commitIndex, result.index, 'n1 + n2 are a majority');
  assert.deepEqual(cluster.appliedTexts('n1'), ['a']);
  assert.deepEqual(cluster.log('n2'), cluster.log('n1'));
  assert.equal(cluster.core('n3').lastIndex, result.index - 1, 'n3 did not get it');

  cluster.heal();
  cluster.runUntil(() => THREE.every((id) => cluster.appliedTexts(id).length === 1), 5);
  for (const id of THREE) assert.deepEqual(cluster.appliedTexts(id), ['a']);
  assert.ok(cluster.checker.ok);
});

test('Raft §5.3: a follower with a conflicting uncommitted suffix has it truncated and replaced', () => {
  const cluster = electedCluster({ voters: THREE }, 'n1');
  cluster.isolate('n1');
  cluster.propose('n1', 'x1');
  cluster.propose('n1', 'x2');
  cluster.stabilize();
  assert.deepEqual(cluster.log('n1'), ['1/1:noop', '2/1:x1', '3/1:x2']);

  cluster.runUntil(() => cluster.leader() !== 'n1' && cluster.leader() !== null, 60, { ids: ['n2', 'n3'] });
  const leader = cluster.leader() as string;
  cluster.propose(leader, 'y1');
  cluster.stabilize();
  assert.equal(cluster.core(leader).commitIndex, 3);

  cluster.heal();
  cluster.runUntil(() => cluster.core('n1').commitIndex === 3, 5);
  assert.deepEqual(cluster.log('n1'), cluster.log(leader));
  assert.deepEqual(cluster.log('n1'), ['1/1:noop', '2/2:noop', '3/2:y1']);
  assert.deepEqual(cluster.appliedTexts('n1'), ['y1']);
  assert.ok(cluster.checker.ok);
});

test('Raft §5.3 fast backtracking: a far-behind follower with a divergent log is repaired in a few round trips', () => {
  // n1 and n2 hold 60 entries of term 3 after index 1; n3 holds 20 entries of term 2 instead.
  const long = [1, ...Array.from({ length: 60 }, () => 3)];
  const divergent = [1, ...Array.from({ length: 20 }, () => 2)];
  const cluster = new TestCluster({
    voters: THREE,
    logs: { n1: { terms: long, commit: 1 }, n2: { terms: long, commit: 1 }, n3: { terms: divergent, commit: 1 } },
  });
  cluster.campaign('n1');
  cluster.stabilize();
  assert.equal(cluster.leader(), 'n1');
  const rejections = cluster.sentWhere({ from: 'n3' }).filter(isRejection);
  // One rejection per entry would be 60; findConflictByTerm skips a whole term per round trip.
  assert.ok(rejections.length >= 1 && rejections.length <= 2, `${rejections.length} rejections`);
  assert.deepEqual(cluster.log('n3'), cluster.log('n1'));
  assert.equal(cluster.core('n3').lastIndex, 62);
  assert.ok(cluster.checker.ok);
});

test('flow control: with inflightMessagesMax 2, a follower in replicate state never has more than 2 unacknowledged appends', () => {
  const cluster = electedCluster({ voters: THREE, config: { inflightMessagesMax: 2, entriesPerMessageMax: 1 } }, 'n1');
  assert.equal(cluster.core('n1').progressOf('n2')?.state, 'replicate');
  for (let i = 0; i < 10; i++) cluster.propose('n1', `e${i}`);
  let rounds = 0;
  while (cluster.core('n1').progressOf('n2')?.match !== cluster.core('n1').lastIndex) {
    rounds++;
    assert.ok(rounds <= 20, 'replication stalled');
    cluster.process('n1');
    const inFlight = cluster.queue.filter((m): m is AppendEntriesMessage =>
      m.type === 'appendEntries' && m.to === 'n2' && m.entries.length > 0);
    assert.ok(inFlight.length <= 2, `${inFlight.length} appends in flight to n2`);
    assert.ok((cluster.core('n1').progressOf('n2')?.inflight.length ?? 0) <= 2);
    cluster.deliver({ to: 'n2' });
    cluster.deliver({ to: 'n3' });
    cluster.process('n2');
    cluster.process('n3');
    cluster.deliver({ to: 'n1' });
  }
  assert.ok(rounds >= 5, `10 entries at 2 in flight need at least 5 rounds, took ${rounds}`);
  cluster.stabilize();
  assert.equal(cluster.core('n1').commitIndex, 11);
  assert.ok(cluster.checker.ok);
});

/** Entry 2 (term 1) is on n1 only; n1 becomes leader of term 2 and appends its no-op at 3. */
function earlierTermScenario(plantedBug: 'commitEarlierTermByCounting' | null): TestCluster {
  const cluster = new TestCluster({
    voters: THREE, config: { entriesPerMessageMax: 1, plantedBug },
    logs: { n1: { terms: [1, 1], commit: 1 }, n2: { terms: [1], commit: 1 }, n3: { terms: [1], commit: 1 } },
  });
  cluster.campaign('n1');
  // Lose every append that would hand a follower an entry of term 2 (probes it rejects get through).
  const wouldGiveTerm2 = (m: Message): boolean => m.type === 'appendEntries' &&
    m.entries.some((e) => e.term === 2) && cluster.core(m.to).termAt(m.prevIndex) === m.prevTerm;
  cluster.stabilize({ drop: wouldGiveTerm2 });
  return cluster;
}

test('Raft §5.4.2 (Figure 8): a leader does not commit an entry of an earlier term by counting replicas', () => {
  const cluster = earlierTermScenario(null);
  const n1 = cluster.core('n1');
  assert.equal(n1.role, 'leader');
  assert.equal(n1.term, 2);
  for (const id of THREE) assert.equal(cluster.core(id).termAt(2), 1, `${id} holds 2/1`);
  assert.equal(n1.commitIndex, 1, 'entry 2 is on every node yet not committed: its term is 1');

  cluster.runUntil(() => n1.commitIndex === 3, 5);
  assert.equal(cluster.core('n2').termAt(3), 2);
  assert.deepEqual(cluster.node('n1').applied.map((a) => `${a.index}/${a.term}`), ['1/1', '2/1', '3/2'],
    'entry 2 commits together with the no-op of term 2');
  assert.ok(cluster.checker.ok);

  // The scenario is sharp: with counting allowed, the same script commits entry 2 on its own.
  assert.equal(earlierTermScenario('commitEarlierTermByCounting').core('n1').commitIndex, 2);
});

test('Raft §5.3: a stale rejection does not roll a replicating follower back', () => {
  const cluster = electedCluster({ voters: THREE }, 'n1');
  cluster.propose('n1', 'a');
  cluster.stabilize();
  const before = cluster.core('n1').progressOf('n2');
  assert.equal(before?.state, 'replicate');
  const match = before?.match ?? 0;
  const stale: AppendEntriesResponseMessage = {
    type: 'appendEntriesResponse', from: 'n2', to: 'n1', term: 1,
    success: false, matchIndex: 0, rejectIndex: 1, hintIndex: 0, hintTerm: 0,
  };
  cluster.inject(stale);
  cluster.deliver();
  assert.equal(cluster.core('n1').progressOf('n2')?.state, 'replicate');
  assert.equal(cluster.core('n1').progressOf('n2')?.match, match);
});

test('backpressure in bytes: a leader refuses proposals once uncommittedBytesMax bytes await commit, and accepts again after they commit', () => {
  const cluster = electedCluster({ voters: ['n1', 'n2', 'n3'], config: { uncommittedBytesMax: 3000 } }, 'n1');
  cluster.crash('n2');
  cluster.crash('n3');
  const results = Array.from({ length: 4 }, () => cluster.propose('n1', 'x'.repeat(1000)));
  assert.deepEqual(results.map((r) => r.ok), [true, true, true, false], 'the fourth finds 3000 bytes awaiting commit');
  const refused = results[3];
  assert.ok(refused !== undefined && !refused.ok && refused.reason === 'TOO_MANY_UNCOMMITTED');
  assert.match(refused.message, /3000 bytes/);
  cluster.restart('n2');
  cluster.runUntil(() => cluster.core('n1').commitIndex === 4, 20);
  assert.equal(cluster.propose('n1', 'x'.repeat(1000)).ok, true, 'committed entries no longer count');
});

test('a Ready hands out at most committedBytesPerReadyMax bytes of committed entries (at least one), the rest in later Readies', () => {
  const cluster = electedCluster({ voters: THREE, config: { committedBytesPerReadyMax: 25 } }, 'n1');
  const before = cluster.node('n1').readies.length;
  for (const body of ['a', 'b', 'c', 'd', 'e']) cluster.propose('n1', body.repeat(10));
  cluster.propose('n1', 'f'.repeat(40)); // larger than the bound on its own: still handed out
  cluster.stabilize();
  const committed = cluster.node('n1').readies.slice(before).map((ready) => ready.committed).filter((entries) => entries.length > 0);
  for (const entries of committed) {
    const bytes = entries.reduce((sum, entry) => sum + entry.data.byteLength, 0);
    assert.ok(entries.length === 1 || bytes <= 25, `a Ready applied ${entries.length} entries of ${bytes} bytes`);
  }
  assert.deepEqual(committed.flat().map((entry) => entry.data.byteLength), [10, 10, 10, 10, 10, 40]);
  assert.ok(committed.length >= 4, `${committed.length} Readies`);
});

test('proposals and acknowledgements between two collections of messages leave as one append per follower', () => {
  const cluster = electedCluster({ voters: THREE }, 'n1');
  cluster.stabilize();
  const a = cluster.propose('n1', 'a');
  assert.ok(a.ok);
  cluster.beginReady('n1'); // n1's fsync of `a` is in flight; its appends are queued
  cluster.deliver({ type: 'appendEntries' });
  cluster.process('n2');
  cluster.process('n3');
  cluster.propose('n1', 'b');
  cluster.deliver({ type: 'appendEntriesResponse' }); // both acknowledge `a`, which frees their window
  cluster.propose('n1', 'c');
  const appends = cluster.core('n1').takeMessages().filter((message): message is AppendEntriesMessage => message.type === 'appendEntries');
  // One message each, carrying both entries: an acknowledgement no longer sends at once what was
  // proposed before it, with the rest following in a second message.
  assert.deepEqual(appends.map((message) => [message.to, message.entries.map((entry) => new TextDecoder().decode(entry.data))]), [
    ['n2', ['b', 'c']],
    ['n3', ['b', 'c']],
  ]);
});

test('a follower acknowledges the appends one Ready persists once, with the highest match', () => {
  const cluster = electedCluster({ voters: THREE }, 'n1');
  cluster.stabilize();
  const first = cluster.propose('n1', 'a');
  cluster.process('n1');
  const second = cluster.propose('n1', 'b');
  cluster.process('n1');
  assert.ok(first.ok && second.ok);
  assert.equal(cluster.deliver({ type: 'appendEntries', to: 'n2' }).length, 2, 'two appends reach n2 before it persists');
  const ready = cluster.process('n2');
  assert.ok(ready !== null);
  const acks = ready.messagesAfterPersist.filter((message): message is AppendEntriesResponseMessage => message.type === 'appendEntriesResponse');
  assert.deepEqual(acks.map((ack) => [ack.success, ack.matchIndex]), [[true, second.index]]);
  cluster.stabilize();
  assert.equal(cluster.core('n1').commitIndex, second.index);
  assert.ok(cluster.checker.ok);
});
