// Reproduction of an availability bug found by the chaos suite (docs/chaos.md, "Findings").
//
// Goal: with no fault at all, a node taking a snapshot must not cost the cluster its leader.
// What happens: Replica.maybeSnapshot (src/replica/replica.ts) builds the snapshot synchronously
// on the event loop — LmdbDocumentStore.snapshot() serialises every document and every meta
// record (idempotency and change records) to one JSON string, then LmdbLogStorage.saveSnapshot
// writes and fsyncs the file and commits synchronously. For a few tens of MB this blocks the
// process for longer than the election timeout (200-400 ms by default): the leader sends no
// heartbeats, the followers elect a new leader, and when the old leader wakes its catch-up ticks
// (up to 100, before it reads the acknowledgements waiting in its sockets) make it step down by
// CheckQuorum anyway. Every node snapshots at the same index, so the new leader usually stalls
// on its own snapshot right after and loses leadership too. In the 10-minute chaos run every
// snapshot taken by a leader (at 20 000, 40 000 and 60 000 entries) was followed by one or two
// leader changes and 0.5-1.3 s without successful writes.
// Method: a 3-node cluster of real processes (src/chaos/cluster.ts) with snapshotEveryEntries
// lowered so the snapshot comes after ~24 MB of documents written in batches; the leader's health
// endpoint is polled every 10 ms to measure how long it stops answering; then the assertion that
// the leader and term are the same after every node took its snapshot. Expected to fail until
// snapshots stop blocking the event loop (for example: build the snapshot from an LMDB read
// transaction off the main thread, or in slices) — it is skipped in `npm test` unless
// UNDERSTUDY_RUN_REPROS=1, so the suite stays green while the bug is open.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChaosCluster, sleep } from '../../src/chaos/cluster.ts';
import { HttpClient } from '../../src/chaos/http.ts';

const RUN = process.env['UNDERSTUDY_RUN_REPROS'] === '1';
const SNAPSHOT_EVERY = 300;
const BATCHES = 240;
const OPS_PER_BATCH = 100;
const BODY = 'x'.repeat(1_000);

test('repro: a snapshot with no fault injected does not change the leader', {
  timeout: 180_000,
  skip: RUN ? false : 'reproduces an open bug (synchronous snapshots stall the leader past the election timeout); run with UNDERSTUDY_RUN_REPROS=1',
}, async () => {
  const logDir = mkdtempSync(join(tmpdir(), 'chaos-repro-snapshot-'));
  const http = new HttpClient();
  let cluster: ChaosCluster | null = null;
  try {
    cluster = await ChaosCluster.create({ nodes: 3, logDir, config: { snapshotEveryEntries: SNAPSHOT_EVERY } });
    const c = cluster;
    assert.ok(await c.waitForAllUp(30_000), 'every node is up');
    const leader = await c.waitForLeader(30_000);
    assert.ok(leader !== null);
    const leaderUrl = c.node(leader).clientUrl;

    // ~24 MB of documents in BATCHES log entries, below the snapshot threshold.
    for (let b = 0; b < BATCHES; b++) {
      const ops = Array.from({ length: OPS_PER_BATCH }, (_, i) => ({ op: 'put', collection: 'bulk', id: `d${b}-${i}`, body: { pad: BODY, b, i } }));
      const answer = await http.call('POST', `${leaderUrl}/v1/batch`, { body: { ops }, timeoutMs: 10_000 });
      assert.ok(answer.kind === 'response' && answer.status === 200, `batch ${b} applied`);
    }
    const before = await c.view(leader);
    assert.ok(before !== null && before.role === 'leader', `${leader} still leads before the snapshot`);

    // Watch the leader's responsiveness, then cross the threshold with small writes.
    let watching = true;
    let lastAnswer = Date.now();
    let longestGap = 0;
    const watcher = (async () => {
      while (watching) {
        const answer = await http.call('GET', `${leaderUrl}/v1/health/ready`, { timeoutMs: 5_000 });
        const now = Date.now();
        if (answer.kind === 'response') {
          longestGap = Math.max(longestGap, now - lastAnswer);
          lastAnswer = now;
        }
        await sleep(10);
      }
    })();
    const snapshotted = (): boolean => c.ids().every((id) => readFileSync(c.node(id).logFile, 'utf8').includes('"msg":"snapshot"'));
    for (let i = 0; i < SNAPSHOT_EVERY && !(i % 10 === 0 && snapshotted()); i++) {
      await http.call('PUT', `${leaderUrl}/v1/docs/small/s${i}`, { body: { i }, timeoutMs: 10_000 });
    }
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && !snapshotted()) await sleep(100);
    await sleep(2_000); // several election timeouts after the last snapshot
    watching = false;
    await watcher;

    const after = await Promise.all(c.ids().map((id) => c.view(id)));
    const roleChanges = c.ids().flatMap((id) => readFileSync(c.node(id).logFile, 'utf8').split('\n')
      .filter((line) => line.includes('"msg":"role changed"') || line.includes('"msg":"snapshot"'))
      .map((line) => `${id} ${line}`)).slice(-30).join('\n');
    const context = `leader before: ${leader} term ${before.term}; after: ${after.map((v) => `${v?.id} ${v?.role} term ${v?.term} leader ${v?.leaderId}`).join('; ')}; the leader did not answer for up to ${longestGap} ms\n${roleChanges}`;
    assert.ok(snapshotted(), `every node took a snapshot\n${context}`);
    assert.ok(after.every((view) => view !== null && view.leaderId === leader && view.term === before.term), `the leader and term are unchanged across the snapshot\n${context}`);
  } finally {
    await cluster?.stopAll();
    await http.close();
    rmSync(logDir, { recursive: true, force: true });
  }
});
