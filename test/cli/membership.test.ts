// Goal: a node joins as a learner under write load, catches up, is promoted to voter, and a node
// is removed; changes that would lose quorum or remove the leader are refused with a clear error.
// Method: a real 3-node cluster plus a fourth process started with --join; the CLI as a child
// process; writers count only acknowledged writes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProcessCluster, freePort, waitFor } from '../cluster/process_cluster.ts';
import { listAll, startWriters } from '../cluster/writers.ts';
import { cli } from './run_cli.ts';



test('cli: member add, promote and remove under write load; unsafe changes refused', { timeout: 120_000 }, async () => {
  const cluster = await ProcessCluster.start({ config: { snapshotEveryEntries: 200 } });
  try {
    const url = cluster.url('n1');
    const load = startWriters(cluster, { writers: 4, collection: 'members' });
    await waitFor('some writes', () => load.acked.size > 50, 20_000);

    // A fourth node, started empty with --join, added as a learner.
    const n4 = { id: 'n4', clientUrl: `http://127.0.0.1:${await freePort()}`, peer: `127.0.0.1:${await freePort()}`, process: null, output: [] };
    cluster.nodes.set('n4', n4);
    cluster.joining.add('n4');
    cluster.startNode('n4');
    const added = await cli(['member', 'add', '--id', 'n4', '--peer', n4.peer, '--client', n4.clientUrl, '--url', url]);
    assert.equal(added.code, 0, added.stderr);
    const premature = await cli(['member', 'add', '--id', 'n4', '--peer', n4.peer, '--client', n4.clientUrl, '--url', url]);
    assert.notEqual(premature.code, 0);
    assert.match(premature.stderr, /already a member/);

    await waitFor('n4 to catch up', async () => {
      const view = await cluster.status('n4');
      const leader = view?.leaderId === null || view === null ? null : await cluster.status(view.leaderId);
      return view !== null && leader !== null && view.appliedIndex >= leader.commitIndex - 20;
    }, 30_000);
    const promoted = await cli(['member', 'promote', 'n4', '--url', url]);
    assert.equal(promoted.code, 0, promoted.stderr);
    assert.match(promoted.stdout, /n4 is a voter/);

    const leader = await cluster.waitForLeader();
    const removeLeader = await cli(['member', 'remove', leader, '--url', url]);
    assert.notEqual(removeLeader.code, 0);
    assert.match(removeLeader.stderr, /leader cannot remove itself/);
    const victim = ['n1', 'n2', 'n3'].find((id) => id !== leader) as string;
    const removed = await cli(['member', 'remove', victim, '--url', cluster.url(leader)]);
    assert.equal(removed.code, 0, removed.stderr);
    await cluster.kill(victim);

    // Three voters left; kill one more and removing a reachable one would lose quorum.
    const others = ['n1', 'n2', 'n3', 'n4'].filter((id) => id !== leader && id !== victim);
    await cluster.kill(others[0] as string);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const unsafe = await cli(['member', 'remove', others[1] as string, '--url', cluster.url(leader)]);
    assert.notEqual(unsafe.code, 0);
    assert.match(unsafe.stderr, /lose its quorum/);
    cluster.startNode(others[0] as string);

    await load.stop();
    assert.deepEqual(load.failures, []);
    await cluster.waitForConvergence(30_000);
    const docs = await listAll(cluster.url('n4'), 'members', 'stale');
    const lost = [...load.acked.keys()].filter((id) => !docs.has(id));
    assert.deepEqual(lost, []);
    const status = JSON.parse((await cli(['status', '--json', '--url', cluster.url(leader)])).stdout);
    assert.deepEqual([...status.membership.voters].sort(), ['n1', 'n2', 'n3', 'n4'].filter((id) => id !== victim).sort());
  } catch (error) {
    console.error(cluster.logs());
    throw error;
  } finally {
    cluster.stopAll();
  }
});
