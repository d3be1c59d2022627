// Goal: log compaction and InstallSnapshot follow Raft §7 / thesis §5.1-§5.3: a follower that
// needs compacted entries receives the snapshot in chunks (thesis §5.3 "InstallSnapshot in
// chunks"), installs it, then continues with ordinary appends; chunks must arrive in order.
// Method: the TestCluster harness fills each InstallSnapshot chunk with 8 bytes of the sender's
// snapshot (the JSON of its applied entries), so even a small snapshot takes many chunks; tests
// crash a follower, compact the leader's log past it, restart it and watch the transfer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { InstallSnapshotMessage, InstallSnapshotResponseMessage, Message } from '../../src/consensus/types.ts';
import { TestCluster, electedCluster } from './harness.ts';

const THREE = ['n1', 'n2', 'n3'];

/** n3 is down while 6 entries commit; n1 then compacts everything it applied. */
function compactedPastN3(): TestCluster {
  const cluster = electedCluster({ voters: THREE, config: { entriesKeptAfterCompaction: 0 } }, 'n1');
  cluster.crash('n3');
  for (const body of ['a', 'b', 'c', 'd', 'e', 'f']) cluster.propose('n1', body);
  cluster.tickAll();
  cluster.stabilize();
  const meta = cluster.snapshot('n1');
  assert.equal(meta.index, 7);
  assert.equal(cluster.core('n1').firstHeldIndex(), 8, 'nothing before the snapshot is kept');
  return cluster;
}

test('Raft §7: a follower that missed compacted entries catches up by InstallSnapshot in several chunks, then by appends', () => {
  const cluster = compactedPastN3();
  cluster.restart('n3');
  cluster.runUntil(() => cluster.core('n3').commitIndex === 7, 10);

  const chunks = cluster.sentWhere({ from: 'n1', to: 'n3', type: 'installSnapshot' }) as InstallSnapshotMessage[];
  const size = cluster.node('n1').durable.snapshot.bytes.byteLength;
  assert.ok(chunks.length > 1, `${chunks.length} chunk messages`);
  assert.ok(new Set(chunks.map((m) => m.offset)).size >= Math.ceil(size / 8));
  assert.equal(chunks.filter((m) => m.done).length, 1);
  const installs = cluster.node('n3').readies.filter((r) => r.snapshot !== null);
  assert.deepEqual(installs.map((r) => r.snapshot?.index), [7], 'Ready.snapshot set once');
  assert.equal(cluster.core('n3').snapshotMeta.index, 7);
  assert.deepEqual(cluster.appliedTexts('n3'), ['a', 'b', 'c', 'd', 'e', 'f'], 'state restored from the snapshot bytes');
  assert.equal(cluster.node('n3').durable.snapshot.meta.index, 7);

  cluster.propose('n1', 'g');
  cluster.runUntil(() => cluster.appliedTexts('n3').length === 7, 5);
  assert.deepEqual(cluster.log('n3'), ['8/1:g']);
  assert.deepEqual(cluster.appliedTexts('n3'), cluster.appliedTexts('n1'));

  // The installed snapshot survives a restart.
  cluster.crash('n3');
  cluster.restart('n3');
  assert.equal(cluster.core('n3').snapshotMeta.index, 7);
  cluster.runUntil(() => cluster.appliedTexts('n3').length === 7, 5);
  assert.ok(cluster.checker.ok);
});

test('thesis §5.3: a snapshot chunk out of order is answered with the offset the follower expects', () => {
  const cluster = compactedPastN3();
  cluster.restart('n3');
  // Let only the first chunk through.
  const laterChunks = (m: Message): boolean => m.type === 'installSnapshot' && m.offset > 0;
  cluster.runUntil(() => cluster.sentWhere({ from: 'n3', type: 'installSnapshotResponse' }).length > 0, 5, { drop: laterChunks });
  const first = cluster.sentWhere({ from: 'n3', type: 'installSnapshotResponse' }) as InstallSnapshotResponseMessage[];
  assert.deepEqual(first.map((m) => [m.nextOffset, m.done]), [[8, false]]);

  const snapshot = cluster.node('n1').durable.snapshot;
  const since = cluster.step;
  const chunk = (offset: number): InstallSnapshotMessage => ({
    type: 'installSnapshot', from: 'n1', to: 'n3', term: 1, snapshot: snapshot.meta, offset,
    data: snapshot.bytes.slice(offset, offset + 8), done: false,
  });
  cluster.inject(chunk(16)); // skips 8..16
  cluster.inject(chunk(0)); // a duplicate of the first
  cluster.deliver({ to: 'n3' });
  cluster.process('n3');
  const answers = cluster.sentWhere({ from: 'n3', type: 'installSnapshotResponse', since }) as InstallSnapshotResponseMessage[];
  assert.deepEqual(answers.map((m) => [m.nextOffset, m.done]), [[8, false], [8, false]]);
  assert.equal(cluster.node('n3').readies.at(-1)?.snapshotChunks.length, 0, 'neither chunk was staged');

  cluster.runUntil(() => cluster.core('n3').commitIndex === 7, 10);
  assert.deepEqual(cluster.appliedTexts('n3'), ['a', 'b', 'c', 'd', 'e', 'f']);
  assert.ok(cluster.checker.ok);
});

test('compaction keeps at most bytesKeptAfterCompaction bytes of entries (as well as at most entriesKeptAfterCompaction)', () => {
  const cluster = electedCluster({ voters: THREE, config: { entriesKeptAfterCompaction: 100, bytesKeptAfterCompaction: 25 } }, 'n1');
  for (const body of ['a', 'b', 'c', 'd', 'e', 'f']) cluster.propose('n1', body.repeat(10));
  cluster.tickAll();
  cluster.stabilize();
  const meta = cluster.snapshot('n1');
  assert.equal(meta.index, 7);
  // Entries 7 and 6 hold 20 bytes; entry 5 would make 30 > 25.
  assert.equal(cluster.core('n1').firstHeldIndex(), 6);
  // Unbounded bytes: the entry count alone decides (everything is kept).
  const unbounded = electedCluster({ voters: THREE, config: { entriesKeptAfterCompaction: 100 } }, 'n1');
  for (const body of ['a', 'b', 'c']) unbounded.propose('n1', body.repeat(10));
  unbounded.tickAll();
  unbounded.stabilize();
  assert.equal(unbounded.snapshot('n1').index, 4);
  assert.equal(unbounded.core('n1').firstHeldIndex(), 1);
});
