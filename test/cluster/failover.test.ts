// Goal: a real 3-node cluster survives kill -9 of its leader with no acknowledged write lost;
// the old leader rejoins as a follower and catches up; repeated crashes under heavy writes lose
// nothing and corrupt nothing; a retried write with the same idempotency key applies once, also
// across a leader change.
// Method: real `understudy start` processes on loopback (test/cluster/process_cluster.ts),
// concurrent writers that count a write only when acknowledged, SIGKILL by PID, then reads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProcessCluster, http, waitFor } from './process_cluster.ts';
import { listAll, startWriters } from './writers.ts';

test('cluster: kill -9 of the leader during writes loses no acknowledged write; the old leader rejoins and catches up', { timeout: 90_000 }, async () => {
  const cluster = await ProcessCluster.start();
  try {
    // Four writers at ack=majority keep going through the failover; two at ack=all are refused
    // (NOT_ENOUGH_REPLICAS) while a voter is down and resume once it is back.
    const load = startWriters(cluster, { writers: 6, collection: 'orders', ackOf: (writer) => (writer < 4 ? 'majority' : 'all'), retryBudgetMs: 40_000 });
    await waitFor('writes before the kill', () => load.acked.size >= 100, 20_000);
    const oldLeader = await cluster.waitForLeader();
    const killedAt = Date.now();
    await cluster.kill(oldLeader);
    const newLeader = await cluster.waitForLeader(15_000, oldLeader);
    assert.notEqual(newLeader, oldLeader);
    await waitFor('writes acknowledged after the kill', () => [...load.acked.values()].filter((write) => write.at > killedAt + 50).length >= 50, 20_000);
    cluster.startNode(oldLeader);
    await waitFor('more writes with the old leader back', () => [...load.acked.values()].filter((write) => write.at > Date.now() - 500).length >= 20, 20_000);
    await load.stop();
    assert.deepEqual(load.failures, []);
    await cluster.waitForConvergence();
    const rejoined = await cluster.status(oldLeader);
    assert.equal(rejoined.role, 'follower');
    assert.equal(rejoined.leaderId, newLeader);

    const onLeader = await listAll(cluster.url(newLeader), 'orders');
    const onOldLeader = await listAll(cluster.url(oldLeader), 'orders', 'stale');
    const lost = [...load.acked.keys()].filter((id) => !onLeader.has(id));
    assert.deepEqual(lost, [], `acknowledged writes lost: ${lost.length}`);
    assert.equal(onOldLeader.size, onLeader.size, 'the rejoined node has every document');
    for (const [id, doc] of onLeader) assert.equal(onOldLeader.get(id)?.version, doc.version);
    for (const id of load.acked.keys()) assert.equal(onLeader.get(id)?.version, 1, `${id} applied more than once`);
  } catch (error) {
    console.error(cluster.logs());
    throw error;
  } finally {
    cluster.stopAll();
  }
});

test('cluster: a retried write with the same idempotency key applies once, across a leader change', { timeout: 60_000 }, async () => {
  const cluster = await ProcessCluster.start();
  try {
    const leader = await cluster.waitForLeader();
    // ack=all needs every voter heard from within an election timeout (else a retryable 503
    // NOT_ENOUGH_REPLICAS): right after the election the leader may not have heard from all yet.
    await cluster.waitForConvergence();
    const headers = { 'idempotency-key': 'create-order-42' };
    const first = await http('POST', `${cluster.url(leader)}/v1/docs/orders?ack=all`, { item: 'book' }, headers);
    assert.equal(first.status, 201);
    await cluster.kill(leader);
    const next = await cluster.waitForLeader(15_000, leader);
    const retry = await http('POST', `${cluster.url(next)}/v1/docs/orders`, { item: 'book' }, headers);
    assert.equal(retry.status, 200);
    assert.equal(retry.body.duplicate, true);
    assert.equal(retry.body.id, first.body.id);
    assert.equal(retry.body.index, first.body.index);
    const all = await listAll(cluster.url(next), 'orders');
    assert.equal(all.size, 1);
    const other = cluster.running().find((node) => node.id !== next);
    assert.ok(other !== undefined);
    const viaFollower = await http('POST', `${other.clientUrl}/v1/docs/orders`, { item: 'book' }, headers);
    assert.equal(viaFollower.body.duplicate, true, 'a retry through a follower is forwarded and answered from the record');
  } catch (error) {
    console.error(cluster.logs());
    throw error;
  } finally {
    cluster.stopAll();
  }
});
