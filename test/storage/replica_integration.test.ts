// Goal: each durable log storage (LmdbLogStorage, SegmentLogStorage) works as the ReplicaStorage of
// the real driver: a single-node Replica elects itself, commits and applies proposals through asynchronous persists, takes snapshots through
// saveSnapshot (compacting the log), and after a restart from load() + loadSnapshot() reaches the
// same state machine content.
// Method: RaftCore + Replica + the storage in one process with a tiny list state machine,
// ticking with real (bounded) waits for the fsyncs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RaftCore, bootstrapState } from '../../src/consensus/raft_core.ts';
import type { Entry } from '../../src/consensus/types.ts';
import { Replica, type ReplicaStateMachine } from '../../src/replica/replica.ts';
import type { ProposalOutcome } from '../../src/replica/proposals.ts';
import { Prng } from '../../src/shared/prng.ts';
import { LmdbLogStorage, SegmentLogStorage } from '../../src/storage/index.ts';
import { withTempDir } from './helpers.ts';

class ListMachine implements ReplicaStateMachine<number> {
  values: string[] = [];
  apply(entry: Entry): number {
    this.values.push(new TextDecoder().decode(entry.data));
    return this.values.length;
  }
  snapshot(): Uint8Array {
    return new TextEncoder().encode(JSON.stringify(this.values));
  }
  restore(bytes: Uint8Array): void {
    this.values = JSON.parse(new TextDecoder().decode(bytes)) as string[];
  }
}

/**
 * Takes its snapshots in the background like the server's LmdbDocumentStore: the state is fixed
 * at the call, the bytes arrive later, after more entries were applied.
 */
class BackgroundSnapshotMachine extends ListMachine {
  snapshotsStarted = 0;
  async writeSnapshot(write: (piece: Uint8Array) => Promise<void>): Promise<void> {
    this.snapshotsStarted += 1;
    const bytes = this.snapshot();
    // In three pieces, the first after a pause: more entries are applied while it is written.
    await new Promise((resolve) => setTimeout(resolve, 15));
    const third = Math.ceil(bytes.byteLength / 3);
    for (let at = 0; at < bytes.byteLength; at += third) await write(bytes.subarray(at, at + third));
  }
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what: string, condition: () => boolean, tick: () => void): Promise<void> {
  for (let i = 0; i < 2000; i += 1) {
    if (condition()) return;
    tick();
    await pause(1);
  }
  throw new Error(`timed out waiting for ${what}`);
}

type LogStorage = LmdbLogStorage | SegmentLogStorage;

const implementations: Array<{ name: string; open: (dir: string) => LogStorage }> = [
  { name: 'LmdbLogStorage', open: (dir) => LmdbLogStorage.open(dir, { compactionTailEntries: 2 }) },
  { name: 'SegmentLogStorage', open: (dir) => SegmentLogStorage.open(dir, { compactionTailEntries: 2 }) },
  // Tiny segments: every few writes rotate, and snapshots delete old segments under the Replica.
  { name: 'SegmentLogStorage (300-byte segments)', open: (dir) => SegmentLogStorage.open(dir, { compactionTailEntries: 2, segmentBytes: 300 }) },
];

function startNode(storage: LogStorage, machine: ListMachine): Replica<number> {
  const state = storage.load();
  assert.ok(state !== null);
  const snapshot = storage.loadSnapshot();
  assert.ok(snapshot !== null);
  machine.restore(snapshot.bytes);
  const core = new RaftCore({ id: 'n1', random: new Prng(7), entriesKeptAfterCompaction: 2 }, state);
  const replica = new Replica<number>({
    core, storage, stateMachine: machine, transport: { send: () => undefined }, snapshotEveryEntries: 5, snapshotChunkBytesMax: 64,
  });
  replica.pump();
  return replica;
}

for (const implementation of implementations) {
for (const background of [false, true]) {
test(`a single-node Replica on ${implementation.name} commits, snapshots${background ? ' in the background (streamed: saveSnapshotFrom)' : ''}, and restarts to the same state`, async () => {
  await withTempDir('replica', async (dir) => {
    const newMachine = (): ListMachine => (background ? new BackgroundSnapshotMachine() : new ListMachine());
    let storage = implementation.open(dir);
    storage.bootstrap(bootstrapState({ voters: ['n1'], learners: [] }), new TextEncoder().encode('[]'));
    const machine = newMachine();
    let replica = startNode(storage, machine);
    try {
      await until('leadership', () => replica.core.role === 'leader', () => replica.tick());
      const outcomes: Array<ProposalOutcome<number>> = [];
      for (let i = 1; i <= 12; i += 1) {
        const accepted = replica.propose(new TextEncoder().encode(`v${i}`), (outcome) => outcomes.push(outcome));
        assert.equal(accepted.ok, true);
        if (i % 4 === 0) await until('some commits', () => outcomes.length >= i - 2, () => replica.pump());
      }
      await until('all applied', () => outcomes.length === 12, () => replica.tick());
      assert.ok(outcomes.every((o) => o.status === 'applied'));
      assert.deepEqual(machine.values, Array.from({ length: 12 }, (_, i) => `v${i + 1}`));
      await until('a durable snapshot', () => storage.stats().snapshotIndex >= 5, () => replica.tick());
      const stats = storage.stats();
      assert.ok(stats.snapshotIndex >= 5, `a snapshot was saved (at ${stats.snapshotIndex})`);
      assert.ok(stats.firstIndex === 0 || stats.firstIndex > 1, 'the log was compacted');
      assert.ok(stats.fsyncs > 0);
      if (machine instanceof BackgroundSnapshotMachine) {
        assert.ok(machine.snapshotsStarted >= 1);
        // The durable snapshot holds exactly the state at its index (entry 1 is the term's no-op).
        const saved = storage.loadSnapshot();
        assert.ok(saved !== null);
        const values = JSON.parse(new TextDecoder().decode(saved.bytes)) as string[];
        assert.deepEqual(values, Array.from({ length: saved.meta.index - 1 }, (_, i) => `v${i + 1}`));
        assert.equal(replica.core.snapshotMeta.index, saved.meta.index, 'the core compacted to the durable snapshot only');
      }
    } finally {
      replica.stop();
      await storage.close();
    }

    // Restart: state from disk only.
    storage = implementation.open(dir);
    const restarted = newMachine();
    replica = startNode(storage, restarted);
    try {
      await until('leadership after restart', () => replica.core.role === 'leader', () => replica.tick());
      await until('replay', () => restarted.values.length >= 12, () => replica.tick());
      assert.deepEqual(restarted.values, Array.from({ length: 12 }, (_, i) => `v${i + 1}`));
    } finally {
      replica.stop();
      await storage.close();
    }
  });
});
}
}
