// Goal: `understudy failover --force` is the explicit, documented way out when a majority of
// voters is lost for good: it refuses while the cluster can still help itself, prints the
// data-loss risk, acts only with --yes, refuses a survivor that is behind another reachable one,
// and afterwards the survivor leads alone with every write the cluster had committed.
// Method: a real 3-node cluster (test/cluster/process_cluster.ts); two nodes are killed with
// SIGKILL; the CLI runs as a child process with a bounded timeout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProcessCluster, http, waitFor } from '../cluster/process_cluster.ts';
import { cli } from './run_cli.ts';



test('cli: failover --force refuses while a majority lives, shows the risk, and makes a lone survivor lead with every committed write', { timeout: 120_000 }, async () => {
  const cluster = await ProcessCluster.start();
  try {
    const leader = await cluster.waitForLeader();
    const leaderUrl = cluster.url(leader);
    for (let i = 0; i < 30; i++) {
      const put = await http('PUT', `${leaderUrl}/v1/docs/ledger/d${i}?ack=all`, { i });
      assert.equal(put.status, 201, JSON.stringify(put.body));
    }
    const survivor = [...cluster.nodes.keys()].find((id) => id !== leader) as string;
    const survivorUrl = cluster.url(survivor);

    // Healthy cluster: refused, nothing changed.
    const noForce = await cli(['failover', '--url', survivorUrl]);
    assert.notEqual(noForce.code, 0);
    assert.match(noForce.stderr, /needs --force/);
    const healthy = await cli(['failover', '--force', '--yes', '--url', survivorUrl]);
    assert.notEqual(healthy.code, 0);
    assert.match(healthy.stderr, /refused: a leader is alive/);
    const wrongConfirm = await http('POST', `${survivorUrl}/v1/admin/force-failover`, { confirm: 'someone-else' });
    assert.equal(wrongConfirm.status, 400);
    assert.equal((wrongConfirm.body as { code: string }).code, 'BAD_REQUEST');
    const noBody = await http('POST', `${survivorUrl}/v1/admin/force-failover`, { nope: 1 });
    assert.equal(noBody.status, 400);
    const healthyApi = await http('POST', `${survivorUrl}/v1/admin/force-failover`, { confirm: survivor });
    assert.equal(healthyApi.status, 409);
    assert.equal((healthyApi.body as { code: string }).code, 'FORCE_FAILOVER_REFUSED');
    assert.equal((await cluster.status(survivor)).membership.voters.length, 3, 'still three voters');

    // The majority is lost for good.
    for (const id of cluster.nodes.keys()) if (id !== survivor) await cluster.kill(id);
    // Bounded wait until the survivor stops believing in a leader and its peers look silent.
    const deadline = Date.now() + 15_000;
    let plan: any = null;
    while (Date.now() < deadline) {
      plan = (await http('GET', `${survivorUrl}/v1/admin/force-failover`)).body;
      if (plan.refusal === null) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(plan.refusal, null, `forcing became possible: ${JSON.stringify(plan)}`);

    const dryRun = await cli(['failover', '--force', '--url', survivorUrl]);
    assert.notEqual(dryRun.code, 0, 'without --yes nothing happens');
    assert.match(dryRun.stdout, /data-loss risk:/);
    assert.match(dryRun.stdout, new RegExp(`log ends at \\d+ term \\d+`));
    assert.match(dryRun.stderr, /nothing changed: re-run with --yes/);
    assert.notEqual((await cluster.status(survivor)).role, 'leader');

    const forced = await cli(['failover', '--force', '--yes', '--url', survivorUrl]);
    assert.equal(forced.code, 0, forced.stderr + forced.stdout);
    assert.match(forced.stdout, new RegExp(`${survivor} leads alone at term \\d+`));
    const status = await cluster.status(survivor);
    assert.equal(status.role, 'leader');
    assert.deepEqual(status.membership, { voters: [survivor], learners: [] });
    for (let i = 0; i < 30; i++) {
      const got = await http('GET', `${survivorUrl}/v1/docs/ledger/d${i}`);
      assert.equal(got.status, 200, `d${i} survived (acknowledged with ack=all)`);
    }
    const after = await http('PUT', `${survivorUrl}/v1/docs/ledger/after?ack=majority`, { after: true });
    assert.equal(after.status, 201, 'the survivor accepts majority writes alone');
  } catch (error) {
    console.error(cluster.logs());
    throw error;
  } finally {
    cluster.stopAll();
  }
});

test('cli: failover --force refuses a survivor that is behind another reachable survivor, and names the one to force', { timeout: 150_000 }, async () => {
  const cluster = await ProcessCluster.start({ nodes: 5 });
  try {
    const leader = await cluster.waitForLeader();
    await cluster.waitForConvergence();
    const followers = [...cluster.nodes.keys()].filter((id) => id !== leader);
    const [behind, ahead, lostA, lostB] = followers as [string, string, string, string];
    // `behind` misses the last writes: down while four of five nodes commit them. (A SIGSTOPped
    // node would not do: the kernel keeps accepting the leader's appends into its socket buffer.)
    await cluster.kill(behind);
    for (let i = 0; i < 10; i++) {
      const put = await http('PUT', `${cluster.url(leader)}/v1/docs/ledger/late${i}?ack=majority`, { i });
      assert.equal(put.status, 201, JSON.stringify(put.body));
    }
    // Every node but `behind` holds them (the test then keeps `ahead`, which must have them).
    await waitFor('the late writes on every running node', async () => {
      const views = await Promise.all([leader, ahead, lostA, lostB].map((id) => cluster.status(id)));
      return views.every((view) => view.appliedIndex >= views[0].commitIndex);
    }, 15_000);
    // The majority is lost for good; `behind` comes back from its disk, behind `ahead`.
    for (const id of [leader, lostA, lostB]) await cluster.kill(id);
    cluster.startNode(behind);
    const planOf = async (id: string): Promise<any> => (await http('GET', `${cluster.url(id)}/v1/admin/force-failover`).catch(() => ({ body: { refusal: 'not answering yet' } }))).body;
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && ((await planOf(behind)).refusal !== null || (await planOf(ahead)).refusal !== null)) {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const behindPlan = await planOf(behind);
    const aheadPlan = await planOf(ahead);
    assert.equal(behindPlan.refusal, null, JSON.stringify(behindPlan));
    assert.ok(aheadPlan.lastIndex > behindPlan.lastIndex, `${ahead} ends at ${aheadPlan.lastIndex}, ${behind} at ${behindPlan.lastIndex}`);

    const refused = await cli(['failover', '--force', '--yes', '--url', cluster.url(behind)]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, new RegExp(`refused: ${ahead} \\(.*\\) is reachable and more up to date`));
    assert.notEqual((await cluster.status(behind)).role, 'leader', 'nothing changed on the survivor that is behind');

    const forced = await cli(['failover', '--force', '--yes', '--url', cluster.url(ahead)]);
    assert.equal(forced.code, 0, forced.stderr + forced.stdout);
    assert.equal((await cluster.status(ahead)).role, 'leader');
    for (let i = 0; i < 10; i++) assert.equal((await http('GET', `${cluster.url(ahead)}/v1/docs/ledger/late${i}`)).status, 200, `late${i} kept`);
  } catch (error) {
    console.error(cluster.logs());
    throw error;
  } finally {
    cluster.stopAll();
  }
});
