// Goal: the Replica's snapshot triggers: by bytes as well as by entries (snapshotEveryBytes), so the
// log held in memory is bounded in bytes even when each entry is large; and at a per-node phase of
// each stretch of entries (snapshotPhase), so members do not serialise their state all at once.
// Method: a single-node Replica on an in-memory ReplicaStorage (durable at once, done on
// nextTick); entries of 1 000 bytes; the entry trigger set far away so only bytes can fire.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RaftCore, bootstrapState } from '../../src/consensus/raft_core.ts';
import type { Entry, LogIndex, Ready, SnapshotMeta } from '../../src/consensus/types.ts';
import { Replica, type ReplicaStateMachine, type ReplicaStorage } from '../../src/replica/replica.ts';
import { Prng } from '../../src/shared/prng.ts';

class CountingMachine implements ReplicaStateMachine<number> {
  applied = 0;
  apply(_entry: Entry): number {
    this.applied += 1;
    return this.applied;
  }
  snapshot(): Uint8Array {
    return new TextEncoder().encode(String(this.applied));
  }
  restore(bytes: Uint8Array): void {
    this.applied = Number(new TextDecoder().decode(bytes));
  }
}

class MemoryStorage implements ReplicaStorage {
  snapshots: SnapshotMeta[] = [];
  private latest: { meta: SnapshotMeta; bytes: Uint8Array } | null = null;
  persist(_ready: Ready, done: (error: Error | null) => void): void {
    process.nextTick(() => done(null));
  }
  saveSnapshot(meta: SnapshotMeta, bytes: Uint8Array): void {
    this.snapshots.push(meta);
    this.latest = { meta, bytes };
  }
  readSnapshotChunk(_index: LogIndex, _offset: number, _bytesMax: number): null {
    return null;
  }
  loadSnapshot(): { meta: SnapshotMeta; bytes: Uint8Array } | null {
    return this.latest;
  }
}

async function run(snapshotEveryBytes: number | undefined, triggers: { snapshotEveryEntries?: number; snapshotPhase?: number } = {}): Promise<{ storage: MemoryStorage; replica: Replica<number> }> {
  const storage = new MemoryStorage();
  const core = new RaftCore({ id: 'n1', random: new Prng(3), entriesKeptAfterCompaction: 0 }, bootstrapState({ voters: ['n1'], learners: [] }));
  const replica = new Replica<number>({
    core, storage, stateMachine: new CountingMachine(), transport: { send: () => undefined },
    snapshotEveryEntries: triggers.snapshotEveryEntries ?? 1_000_000, snapshotChunkBytesMax: 1024,
    ...(snapshotEveryBytes === undefined ? {} : { snapshotEveryBytes }),
    ...(triggers.snapshotPhase === undefined ? {} : { snapshotPhase: triggers.snapshotPhase }),
  });
  for (let i = 0; i < 200 && core.role !== 'leader'; i += 1) {
    replica.tick();
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.equal(core.role, 'leader');
  let applied = 0;
  for (let i = 0; i < 30; i += 1) {
    replica.propose(new Uint8Array(1000), () => { applied += 1; });
    for (let j = 0; j < 100 && applied <= i; j += 1) await new Promise((resolve) => setImmediate(resolve));
  }
  assert.equal(applied, 30);
  return { storage, replica };
}

test('snapshotEveryBytes: a snapshot is taken once 10 000 bytes of entries were applied since the last', async () => {
  const { storage, replica } = await run(10_000);
  // 30 entries of 1 000 bytes: snapshots after the 10th and the 20th and the 30th byte-full stretch.
  assert.deepEqual(storage.snapshots.map((meta) => meta.index), [11, 21, 31]);
  assert.equal(replica.core.firstHeldIndex(), 32, 'the log in memory was compacted with each');
  replica.stop();
});

test('without snapshotEveryBytes only the entry count triggers snapshots', async () => {
  const { storage, replica } = await run(undefined);
  assert.deepEqual(storage.snapshots, []);
  replica.stop();
});

test('snapshotPhase: snapshots fall at k * every + phase * every, at least every / 2 apart', async () => {
  const at = async (snapshotPhase: number | undefined): Promise<number[]> => {
    const { storage, replica } = await run(undefined, { snapshotEveryEntries: 10, ...(snapshotPhase === undefined ? {} : { snapshotPhase }) });
    replica.stop();
    return storage.snapshots.map((meta) => meta.index);
  };
  // 31 entries (the term's no-op, then 30 proposals).
  assert.deepEqual(await at(undefined), [10, 20, 30]);
  assert.deepEqual(await at(0), [10, 20, 30]);
  assert.deepEqual(await at(0.5), [5, 15, 25]);
  // Offset 3: the first stretch ends at 3, too soon (fewer than 5 entries); then 5 is past it.
  assert.deepEqual(await at(1 / 3), [5, 13, 23]);
});
