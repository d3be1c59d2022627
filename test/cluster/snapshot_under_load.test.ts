// Goal: snapshots taken while writes keep arriving describe exactly the state at their index, so
// a learner that installs one (and a node that restarts from its own) continues from there. A
// snapshot streamed into its file once pinned its state only when the file was open, a few
// applied entries later than its index said: the learner that installed it crashed on the next
// entry (found by the growth benchmark; this test failed then).
// Method: a real 3-node cluster snapshotting every 100 entries under 8 concurrent writers; a
// learner added with --join mid-load must catch up and apply writes made after it joined; then a
// follower is killed and restarted (from its own snapshot) and must catch up too. Every
// acknowledged write is then read on the learner. Processes are stopped by PID in `finally`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProcessCluster, freePort, http, waitFor, type NodeHandle } from './process_cluster.ts';

test('a learner installs a snapshot taken under load, and a follower restarts from its own', { timeout: 180_000 }, async () => {
  const cluster = await ProcessCluster.start({ config: { snapshotEveryEntries: 100, logEntriesKeptAfterSnapshot: 10 } });
  let learner: NodeHandle | null = null;
  let writing = true;
  const acknowledged: string[] = [];
  const writers: Array<Promise<void>> = [];
  try {
    await cluster.waitForLeader();
    for (let w = 0; w < 8; w++) {
      writers.push((async () => {
        for (let i = 0; writing && i < 100_000; i++) {
          const id = `w${w}-${i}`;
          const leader = await cluster.waitForLeader().catch(() => null);
          if (leader === null) continue;
          const response = await http('PUT', `${cluster.url(leader)}/v1/docs/load/${id}`, { id, pad: 'x'.repeat(100) }).catch(() => null);
          if (response?.status === 201) acknowledged.push(id);
        }
      })());
    }
    await waitFor('800 acknowledged writes', () => acknowledged.length >= 800, 60_000);

    const leader = await cluster.waitForLeader();
    learner = { id: 'n4', clientUrl: `http://127.0.0.1:${await freePort()}`, peer: `127.0.0.1:${await freePort()}`, process: null, output: [] };
    cluster.nodes.set('n4', learner);
    cluster.joining.add('n4');
    cluster.startNode('n4');
    const added = await http('POST', `${cluster.url(leader)}/v1/admin/members`, { action: 'add', id: 'n4', peer: learner.peer, client: learner.clientUrl });
    assert.ok(added.status < 300, JSON.stringify(added.body));
    const learnerUrl = learner.clientUrl;
    const onLearner = async (id: string): Promise<boolean> => (await http('GET', `${learnerUrl}/v1/docs/load/${id}?consistency=stale`).catch(() => null))?.status === 200;
    const mark = acknowledged.length + 400;
    await waitFor('400 more writes after the learner joined', () => acknowledged.length >= mark, 60_000);
    await waitFor('the learner to apply a write made after it joined', () => onLearner(acknowledged[mark - 1] as string), 60_000);
    assert.ok(cluster.isRunning('n4'), 'the learner is alive');
    const status = (await http('GET', `${learnerUrl}/v1/cluster`)).body as { snapshotIndex: number };
    assert.ok(status.snapshotIndex > 0, 'the learner caught up through a snapshot');

    const follower = ['n1', 'n2', 'n3'].find((id) => id !== leader) as string;
    await cluster.kill(follower);
    await waitFor('300 writes while it is down', () => acknowledged.length >= mark + 300, 60_000);
    cluster.startNode(follower);
    const restartedUrl = cluster.url(follower);
    const last = acknowledged.at(-1) as string;
    await waitFor('the restarted follower to catch up', async () => (await http('GET', `${restartedUrl}/v1/docs/load/${last}?consistency=stale`).catch(() => null))?.status === 200, 60_000);

    writing = false;
    await Promise.all(writers);
    const final = acknowledged.at(-1) as string;
    await waitFor('the learner to apply the last write', () => onLearner(final), 30_000);
    const missing: string[] = [];
    for (const id of acknowledged) if (!(await onLearner(id))) missing.push(id);
    assert.deepEqual(missing, [], 'every acknowledged write is on the learner');
    for (const id of ['n1', 'n2', 'n3', 'n4']) assert.ok(cluster.isRunning(id), `${id} is alive`);
  } catch (error) {
    console.error(cluster.logs(), learner?.output.join('').split('\n').slice(-40).join('\n') ?? '');
    throw error;
  } finally {
    writing = false;
    cluster.stopAll();
    const child = learner?.process;
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
    await Promise.allSettled(writers);
  }
});
