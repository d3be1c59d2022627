// Goal: the address of a member added at run time (`POST /v1/admin/members` with its peer and
// client addresses) survives restarts: the original nodes, restarted with configurations that
// never mention it, still replicate to it, because the addresses are part of the membership stored
// in the log and in snapshot metadata. (They were dropped by the log codec until this test.)
// Method: a real 3-node cluster with frequent snapshots; a fourth process started with --join and
// added as a learner; writes until the membership is inside a snapshot; then all three original
// nodes are killed and restarted from configs that list only n1-n3; a write after that must reach
// the learner. Processes are stopped by PID in `finally`, the learner included.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProcessCluster, freePort, http, waitFor, type NodeHandle } from './process_cluster.ts';

test('a member added at run time is still replicated to after every original node restarts', { timeout: 120_000 }, async () => {
  const cluster = await ProcessCluster.start({ config: { snapshotEveryEntries: 20, logEntriesKeptAfterSnapshot: 5 } });
  let learner: NodeHandle | null = null;
  try {
    const leader = await cluster.waitForLeader();
    learner = { id: 'n4', clientUrl: `http://127.0.0.1:${await freePort()}`, peer: `127.0.0.1:${await freePort()}`, process: null, output: [] };
    cluster.nodes.set('n4', learner);
    cluster.joining.add('n4');
    cluster.startNode('n4');
    // From here on the original nodes' configurations do not name n4: only the log does.
    cluster.nodes.delete('n4');
    const added = await http('POST', `${cluster.url(leader)}/v1/admin/members`, { action: 'add', id: 'n4', peer: learner.peer, client: learner.clientUrl });
    assert.ok(added.status < 300, JSON.stringify(added.body));

    const put = async (id: string): Promise<void> => {
      const current = await cluster.waitForLeader();
      const response = await http('PUT', `${cluster.url(current)}/v1/docs/addresses/${id}`, { id });
      assert.equal(response.status, 201, JSON.stringify(response.body));
    };
    for (let i = 0; i < 60; i++) await put(`before-${i}`);
    const learnerUrl = learner.clientUrl;
    const readOnLearner = async (id: string): Promise<boolean> => (await http('GET', `${learnerUrl}/v1/docs/addresses/${id}?consistency=stale`)).status === 200;
    await waitFor('the learner to hold the writes', () => readOnLearner('before-59'), 30_000);

    for (const id of ['n1', 'n2', 'n3']) await cluster.kill(id);
    for (const id of ['n1', 'n2', 'n3']) cluster.startNode(id);
    await cluster.waitForLeader(30_000);
    await put('after-restart');
    await waitFor('the learner to receive a write made after the restarts', () => readOnLearner('after-restart'), 20_000);
  } catch (error) {
    console.error(cluster.logs(), learner?.output.join('') ?? '');
    throw error;
  } finally {
    cluster.stopAll();
    const child = learner?.process;
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
  }
});
