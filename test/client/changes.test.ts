// Goal: client.changes() delivers the change feed in log order and, when the node it follows
// (the leader) is killed, reconnects and resumes after the last index it delivered: no gap, no
// duplicate. Breaking out of the loop or aborting its signal ends it and closes the connection.
// Method: a 3-node ProcessCluster; 4 tasks write through the client while one feed iterator
// consumes; SIGKILL of the leader mid-stream; afterwards the delivered index sequence must equal
// the complete feed read in one non-follow request from a surviving node, and contain every
// acknowledged write.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { http } from '../cluster/process_cluster.ts';
import { ClientClosedError, type ChangeRecord } from '../../src/client/index.ts';
import { ProcessCluster, connectTo, sleep, waitFor } from './helpers.ts';

test('changes: the feed resumes across kill -9 of the leader without gaps or duplicates', { timeout: 90_000 }, async (t) => {
  const cluster = await ProcessCluster.start({ nodes: 3 });
  const client = await connectTo(cluster, { timeoutMs: 15_000, probeIntervalMs: 200 });
  let running = true;
  let writers: Promise<void>[] = [];
  try {
    const first = await client.put('feed', 'start', { n: 0 });
    const startAfter = first.index; // follow from just after this write
    const feed = client.changes({ after: startAfter });
    const delivered: ChangeRecord[] = [];
    const deliveredAt: number[] = [];
    const nodesFollowed = new Set<string>();
    const consumer = (async () => {
      for await (const record of feed) {
        delivered.push(record);
        deliveredAt.push(performance.now());
        if (feed.servedBy !== null) nodesFollowed.add(feed.servedBy);
      }
    })();

    const acked: { id: string; index: number }[] = [];
    writers = Array.from({ length: 4 }, async (_, writer) => {
      for (let seq = 0; running; seq++) {
        try {
          const result = await client.put('feed', `w${writer}-${seq}`, { writer, seq });
          acked.push({ id: result.id!, index: result.index });
        } catch (error) {
          if (error instanceof ClientClosedError) return;
          // another typed failure: the write is simply not counted (failover.test.ts checks these)
        }
      }
    });

    await waitFor('records before the kill', () => delivered.length >= 150, 20_000);
    const leader = await cluster.waitForLeader();
    // The feed follows the leader; kill the node it follows (on a very busy machine a spurious
    // election may have moved leadership meanwhile: the node followed is what matters here).
    const followedBeforeKill = feed.servedBy!;
    const killedAt = performance.now();
    const deliveredAtKill = delivered.length;
    await cluster.kill(followedBeforeKill);
    await waitFor('records after the kill', () => delivered.length >= deliveredAtKill + 150, 30_000);
    const resumedAfter = performance.now() - killedAt;
    running = false;
    await Promise.all(writers);
    const lastAcked = Math.max(...acked.map((write) => write.index));
    await waitFor('the feed to catch up with the last write', () => feed.lastIndex >= lastAcked, 10_000);
    feed.close();
    await consumer;

    // In order, no duplicate.
    const indexes = delivered.map((record) => record.index);
    for (let i = 1; i < indexes.length; i++) assert.ok(indexes[i]! > indexes[i - 1]!, `out of order at ${i}: ${indexes[i - 1]} then ${indexes[i]}`);
    assert.ok(indexes[0]! > startAfter);
    // No gap: the same records as the complete feed, read in one request from a surviving node.
    const survivor = cluster.running()[0]!;
    const full = await http('GET', `${survivor.clientUrl}/v1/changes?after=${startAfter}`);
    assert.equal(full.status, 200);
    const fullIndexes = String(full.body).split('\n').filter((line) => line.trim() !== '').map((line) => (JSON.parse(line) as ChangeRecord).index).filter((index) => index <= feed.lastIndex);
    assert.deepEqual(indexes, fullIndexes);
    const seenIds = new Set(delivered.flatMap((record) => record.changes.map((change) => change.id)));
    assert.deepEqual(acked.filter((write) => !seenIds.has(write.id)), [], 'every acknowledged write is in the feed');
    assert.ok(feed.reconnects >= 1, 'the feed reconnected');
    assert.ok(nodesFollowed.size >= 2, `followed ${[...nodesFollowed].join(', ')}`);
    let gap = 0;
    for (let i = deliveredAtKill; i < deliveredAt.length; i++) gap = Math.max(gap, deliveredAt[i]! - Math.max(killedAt, deliveredAt[i - 1]!));
    t.diagnostic(`killed ${followedBeforeKill} (${followedBeforeKill === leader ? 'the leader' : `a follower; the leader was ${leader}`}); ${delivered.length} records delivered; ${feed.reconnects} reconnect(s); longest wait for a record after the kill: ${gap.toFixed(0)} ms; 150 more records by +${resumedAfter.toFixed(0)} ms; followed ${[...nodesFollowed].join(' then ')}`);
  } catch (error) {
    console.error(cluster.logs());
    throw error;
  } finally {
    running = false;
    await client.close();
    await Promise.all(writers);
    cluster.stopAll();
  }
});

test('changes: break and abort end the iteration; the connection is released', { timeout: 60_000 }, async () => {
  const cluster = await ProcessCluster.start({ nodes: 3 });
  const client = await connectTo(cluster);
  try {
    const writes = [];
    for (let i = 0; i < 5; i++) writes.push(await client.put('feed2', `d${i}`, { i }));
    const firstIndex = writes[0]!.index;
    // break after three records
    const seen: number[] = [];
    for await (const record of client.changes({ after: firstIndex - 1 })) {
      seen.push(record.index);
      if (seen.length === 3) break;
    }
    assert.deepEqual(seen, writes.slice(0, 3).map((write) => write.index));
    // abort a feed that is waiting for new records (the server has not even sent headers yet)
    const controller = new AbortController();
    const waiting = (async () => {
      const got: number[] = [];
      for await (const record of client.changes({ after: writes.at(-1)!.index, signal: controller.signal })) got.push(record.index);
      return got;
    })();
    await sleep(200);
    const abortedAt = performance.now();
    controller.abort();
    assert.deepEqual(await waiting, []);
    assert.ok(performance.now() - abortedAt < 100);
    // a feed pinned to a follower delivers the same records
    const leader = client.leader!.id;
    const follower = ['n1', 'n2', 'n3'].find((id) => id !== leader)!;
    const pinned = client.changes({ after: firstIndex - 1, node: follower });
    const fromFollower: number[] = [];
    for await (const record of pinned) {
      fromFollower.push(record.index);
      if (fromFollower.length === 5) break;
    }
    assert.equal(pinned.servedBy, follower);
    assert.deepEqual(fromFollower, writes.map((write) => write.index));
  } finally {
    await client.close();
    cluster.stopAll();
  }
});
