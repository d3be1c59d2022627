// Goal: the scripted rules hold together under arbitrary interleavings: Raft's safety properties
// (§5.2-§5.4, Figure 3, checked by the SafetyChecker after every step) and the linearizability of
// ReadIndex reads (thesis §6.4: a read must see every entry committed before it was issued).
// Method: a small seeded random schedule on the TestCluster harness (5 nodes, 3 voters + 2
// spares): ticks, partial Ready processing and delivery with loss, reordering and duplication,
// crashes (also in the middle of an fsync), isolation, snapshots, transfers, membership changes,
// proposals and reads. Fixed seeds, so every run is the same; a failure names its seed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Prng } from '../../src/shared/prng.ts';
import { TestCluster, type CoreOverrides } from './harness.ts';

const IDS = ['n1', 'n2', 'n3', 'n4', 'n5'];
const SMALL_LIMITS: CoreOverrides = {
  entriesKeptAfterCompaction: 1, inflightMessagesMax: 3, entriesPerMessageMax: 2, snapshotChunkTimeoutTicks: 5,
};

function runSchedule(seed: number, config: CoreOverrides): { committed: number; reads: number } {
  const random = new Prng(seed, 'schedule');
  const cluster = new TestCluster({ voters: IDS.slice(0, 3), spares: IDS.slice(3), seed, config: { ...SMALL_LIMITS, ...config } });
  const committedAtIssue = new Map<string, number>();
  for (let round = 0; round < 300; round++) {
    const id = random.pick(IDS);
    const live = cluster.node(id).core !== null;
    const roll = random.next();
    if (roll < 0.03) {
      if (live) cluster.crash(id);
      else cluster.restart(id);
    } else if (roll < 0.06) {
      cluster.isolate(id);
    } else if (roll < 0.10) {
      cluster.heal();
      for (const other of IDS) if (cluster.node(other).core === null && random.chance(0.5)) cluster.restart(other);
    } else if (roll < 0.13) {
      if (live && cluster.core(id).appliedIndex > cluster.core(id).snapshotMeta.index) cluster.snapshot(id);
    } else if (roll < 0.14) {
      if (live) cluster.core(id).transferLeadership(random.pick(IDS));
    } else if (roll < 0.17) {
      const leader = cluster.leader();
      const type = random.pick(['addLearner', 'promoteLearner', 'removeNode'] as const);
      if (leader !== null) cluster.proposeChange(leader, { type, node: random.pick(IDS) });
    } else if (roll < 0.20) {
      if (live && cluster.node(id).pending === null) cluster.beginReady(id); // an fsync in flight
    }
    const leader = cluster.leader();
    if (leader !== null && random.chance(0.5)) cluster.propose(leader, `v${round}`);
    const reader = random.pick(IDS);
    if (cluster.node(reader).core !== null && random.chance(0.2)) {
      committedAtIssue.set(`r${round}`, cluster.checker.maxCommitted);
      cluster.read(reader, `r${round}`);
    }
    for (const node of cluster.live()) if (random.chance(0.7)) cluster.tick(node);
    for (let k = 0; k < 3; k++) {
      for (const node of cluster.live()) if (random.chance(0.8)) cluster.process(node);
      if (random.chance(0.2)) random.shuffle(cluster.queue);
      if (random.chance(0.1)) cluster.queue.push(...cluster.queue.filter(() => random.chance(0.1)));
      cluster.deliver({ drop: () => random.chance(0.05) });
    }
    assert.ok(cluster.checker.ok, `seed ${seed} round ${round}: ${JSON.stringify(cluster.checker.violations)}`);
  }
  let reads = 0;
  for (const id of IDS) {
    for (const read of cluster.node(id).readStates) {
      reads++;
      const floor = committedAtIssue.get(read.requestId) ?? 0;
      assert.ok(read.index >= floor, `seed ${seed}: read ${read.requestId} on ${id} at ${read.index} misses ${floor}`);
    }
  }
  return { committed: cluster.checker.maxCommitted, reads };
}

for (const [name, config] of [['defaults', {}], ['without PreVote and CheckQuorum', { preVote: false, checkQuorum: false }]] as const) {
  test(`random schedules (${name}): no safety violation, every read sees what was committed before it`, () => {
    let committed = 0;
    let reads = 0;
    for (let seed = 1; seed <= 25; seed++) {
      const result = runSchedule(seed, config);
      committed += result.committed;
      reads += result.reads;
    }
    assert.ok(committed > 1000 && reads > 100, `the schedules did work: ${committed} committed, ${reads} reads`);
  });
}
