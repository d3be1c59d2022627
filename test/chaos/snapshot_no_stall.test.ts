// Regression test of an availability bug found by the chaos suite (docs/chaos.md, "Findings" 1).
//
// Goal: with no fault at all, a node taking a snapshot must not cost the cluster its leader.
// The bug: Replica.maybeSnapshot built the snapshot synchronously on the event loop (every
// document and meta record serialised to one string, then the file written and fsynced and the
// metadata committed synchronously). For a few tens of MB that blocked the process for longer
// than the election timeout (200-400 ms): the followers elected a new leader, and every node
// snapshots at the same index, so the new leader stalled on its own snapshot right after. Before
// the fix this test saw the leader silent for ~2.5 s and the term go from 1 to 4.
// The fix: LmdbDocumentStore.snapshotAsync (slices from one LMDB read transaction),
// the log storage's saveSnapshotAsync (file on the thread pool, metadata commit queued with the
// persists), and the node reading waiting messages before running catch-up ticks after a stall.
// Method: a 3-node cluster of real processes (src/chaos/cluster.ts) with snapshotEveryEntries
// lowered so the snapshot comes after ~8 MB of documents written in batches (an ~18 MB snapshot);
// the leader's health endpoint is polled every 10 ms; then the assertion that the leader and term
// are the same after every node took its snapshot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChaosCluster, sleep } from '../../src/chaos/cluster.ts';
import { HttpClient } from '../../src/chaos/http.ts';

const SNAPSHOT_EVERY = 300;
const BATCHES = 80;
const OPS_PER_BATCH = 100;
const BODY = 'x'.repeat(1_000);

test('an ~18 MB snapshot with no fault injected does not change the leader or stall it', { timeout: 180_000 }, async () => {
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

    // ~8 MB of documents in BATCHES log entries, below the snapshot threshold.
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
      .filter((line) => line.includes('"msg":"role changed"') || line.includes('"msg":"snapshot"') || line.includes('"msg":"event loop stalled"'))
      .map((line) => `${id} ${line}`)).slice(-30).join('\n');
    const context = `leader before: ${leader} term ${before.term}; after: ${after.map((v) => `${v?.id} ${v?.role} term ${v?.term} leader ${v?.leaderId}`).join('; ')}; the leader did not answer for up to ${longestGap} ms\n${roleChanges}`;
    assert.ok(snapshotted(), `every node took a snapshot\n${context}`);
    assert.ok(after.every((view) => view !== null && view.leaderId === leader && view.term === before.term), `the leader and term are unchanged across the snapshot\n${context}`);
    assert.ok(longestGap < 1_000, `the leader kept answering (longest silence ${longestGap} ms)\n${context}`);
    console.log(`snapshot regression: leader ${leader} kept term ${before.term}; longest silence of its health endpoint ${longestGap} ms`);
  } finally {
    await cluster?.stopAll();
    await http.close();
    if (process.env["KEEP_LOGS"] === undefined) rmSync(logDir, { recursive: true, force: true });
    else console.log(`logs kept in ${logDir}`);
  }
});
