// Goal: repeated kill -9 under heavy writes loses no acknowledged write and corrupts nothing;
// a node stopped long enough that the log was compacted catches up by snapshot; writes through a
// follower work; a session read on a follower sees the client's own write; stale reads report
// how far behind they may be.
// Method: real processes on loopback; writers count only acknowledged writes; SIGKILL by PID.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProcessCluster, http, waitFor } from './process_cluster.ts';
import { listAll, startWriters } from './writers.ts';

test('cluster: kill -9 during heavy writes, restart, three times: nothing acknowledged is lost, replicas agree', { timeout: 150_000 }, async () => {
  const cluster = await ProcessCluster.start();
  try {
    const load = startWriters(cluster, { writers: 12, collection: 'heavy', retryBudgetMs: 40_000 });
    const victims = ['n1', 'n2', 'n3'];
    for (const victim of victims) {
      const before = load.acked.size;
      await waitFor('writes before the crash', () => load.acked.size >= before + 100, 30_000);
      await cluster.kill(victim);
      await waitFor('writes while a node is down', () => load.acked.size >= before + 200, 30_000);
      cluster.startNode(victim);
      await cluster.waitForLeader(20_000);
    }
    await load.stop();
    assert.deepEqual(load.failures, []);
    await cluster.waitForConvergence(30_000);
    const leader = await cluster.waitForLeader();
    // Group commit: under 12 concurrent writers the leader makes several entries durable per fsync.
    const metrics = String((await http('GET', `${cluster.url(leader)}/metrics`)).body);
    const sum = Number(/understudy_log_entries_per_fsync_sum (\S+)/.exec(metrics)?.[1]);
    const count = Number(/understudy_log_entries_per_fsync_count (\S+)/.exec(metrics)?.[1]);
    assert.ok(count > 0 && sum / count > 1.5, `entries per fsync ${sum}/${count}`);
    const reference = await listAll(cluster.url(leader), 'heavy');
    const lost = [...load.acked.keys()].filter((id) => !reference.has(id));
    assert.deepEqual(lost, [], `${lost.length} acknowledged writes lost`);
    for (const node of cluster.running()) {
      const replica = await listAll(node.clientUrl, 'heavy', 'stale');
      assert.equal(replica.size, reference.size, `${node.id} holds a different number of documents`);
      for (const [id, doc] of reference) {
        assert.deepEqual(replica.get(id)?.body, doc.body, `${node.id}: ${id} differs`);
        assert.equal(replica.get(id)?.version, 1, `${node.id}: ${id} applied twice`);
      }
    }
  } catch (error) {
    console.error(cluster.logs());
    throw error;
  } finally {
    cluster.stopAll();
  }
});

test('cluster: a node down while the log is compacted catches up by snapshot', { timeout: 90_000 }, async () => {
  const cluster = await ProcessCluster.start({ config: { snapshotEveryEntries: 50, logEntriesKeptAfterSnapshot: 10 } });
  try {
    const leader = await cluster.waitForLeader();
    const lagging = [...cluster.nodes.keys()].find((id) => id !== leader) as string;
    await cluster.kill(lagging);
    for (let i = 0; i < 300; i++) {
      const result = await http('PUT', `${cluster.url(leader)}/v1/docs/snap/d${i}`, { i });
      assert.equal(result.status, 201, JSON.stringify(result.body));
    }
    const leaderStatus = await cluster.status(leader);
    assert.ok(leaderStatus.snapshotIndex > 100, `the leader compacted its log (snapshot at ${leaderStatus.snapshotIndex})`);
    cluster.startNode(lagging);
    await cluster.waitForConvergence(30_000);
    const status = await cluster.status(lagging);
    assert.ok(status.snapshotIndex >= leaderStatus.snapshotIndex - 50, `caught up from a snapshot (snapshot at ${status.snapshotIndex})`);
    const metrics = await http('GET', `${cluster.url(lagging)}/metrics`);
    assert.match(String(metrics.body), /understudy_snapshots_total\{source="installed"\} [1-9]/);
    const docs = await listAll(cluster.url(lagging), 'snap', 'stale');
    assert.equal(docs.size, 300);
  } catch (error) {
    console.error(cluster.logs());
    throw error;
  } finally {
    cluster.stopAll();
  }
});

test('cluster: writes through a follower, session reads on a follower, stale reads report staleness', { timeout: 60_000 }, async () => {
  const cluster = await ProcessCluster.start();
  try {
    const leader = await cluster.waitForLeader();
    const followers = [...cluster.nodes.keys()].filter((id) => id !== leader);
    const [first, second] = followers as [string, string];
    const write = await http('PUT', `${cluster.url(first)}/v1/docs/users/ada`, { name: 'Ada' });
    assert.equal(write.status, 201);
    assert.ok(String(write.headers['x-forwarded-to']).startsWith('http://'), 'the follower forwarded the write');
    const token = write.body.sessionToken as string;
    // Read-your-writes on the other follower, immediately, with the token.
    for (let i = 0; i < 20; i++) {
      const update = await http('PUT', `${cluster.url(first)}/v1/docs/users/ada`, { name: 'Ada', n: i });
      const read = await http('GET', `${cluster.url(second)}/v1/docs/users/ada?consistency=session`, undefined, { 'x-session-token': update.body.sessionToken });
      assert.equal(read.status, 200);
      assert.equal(read.body.body.n, i, 'a session read sees the session\'s own write');
      assert.equal(read.headers['x-served-by'], second);
    }
    assert.ok(Number(token) > 0);
    const linearizable = await http('GET', `${cluster.url(second)}/v1/docs/users/ada`);
    assert.equal(linearizable.status, 200);
    assert.equal(linearizable.headers['x-consistency'], 'linearizable');
    const stale = await http('GET', `${cluster.url(second)}/v1/docs/users/ada?consistency=stale`);
    assert.equal(stale.status, 200);
    assert.equal(stale.headers['x-consistency'], 'stale');
    assert.ok(Number(stale.headers['x-applied-index']) > 0);
    assert.ok(stale.headers['x-lag-entries'] !== undefined);
    assert.ok(Number(stale.headers['x-leader-contact-ms']) < 5_000);
  } catch (error) {
    console.error(cluster.logs());
    throw error;
  } finally {
    cluster.stopAll();
  }
});

test('cluster: a corrupted snapshot file is detected at start and the node refuses to serve', { timeout: 60_000 }, async () => {
  const { readdirSync, readFileSync, writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const cluster = await ProcessCluster.start({ config: { snapshotEveryEntries: 20 } });
  try {
    const leader = await cluster.waitForLeader();
    for (let i = 0; i < 60; i++) await http('PUT', `${cluster.url(leader)}/v1/docs/c/d${i}`, { i });
    await cluster.waitForConvergence();
    const victim = [...cluster.nodes.keys()].find((id) => id !== leader) as string;
    await cluster.kill(victim, 'SIGTERM');
    const logDir = join(cluster.dir, victim, 'log');
    const file = readdirSync(logDir).find((name) => /^snapshot-\d+\.bin$/.test(name));
    assert.ok(file !== undefined, 'the follower holds a snapshot file');
    const bytes = readFileSync(join(logDir, file));
    const middle = Math.floor(bytes.length / 2);
    bytes[middle] = (bytes[middle] ?? 0) ^ 0xff;
    writeFileSync(join(logDir, file), bytes);
    cluster.startNode(victim);
    const child = cluster.nodes.get(victim)?.process;
    const code = await waitFor('the corrupted node to exit', () => (child?.exitCode ?? null) !== null ? child?.exitCode : null, 20_000);
    assert.notEqual(code, 0);
    const output = cluster.nodes.get(victim)?.output.join('') ?? '';
    assert.match(output, /corrupt|checksum/i, output.slice(-2000));
    assert.ok(output.includes(file), 'the message names the file');
    // The rest of the cluster keeps serving.
    assert.equal((await http('PUT', `${cluster.url(leader)}/v1/docs/c/after`, { ok: true })).status, 201);
  } finally {
    cluster.stopAll();
  }
});

test('cluster: unsafe configurations are refused with a clear message', { timeout: 30_000 }, async () => {
  const { spawnSync } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const bin = fileURLToPath(new URL('../../bin/understudy.js', import.meta.url));
  const cases: [string[], RegExp][] = [
    [['start', '--id', 'n1', '--members', 'n1@127.0.0.1:1@http://127.0.0.1:2,n1@127.0.0.1:3@http://127.0.0.1:4', '--secret', 'long-enough-secret'], /two members have the id 'n1'/],
    [['start', '--id', 'n1', '--secret', 'short'], /secret must be at least 8/],
    [['start', '--id', 'n9', '--members', 'n1@127.0.0.1:1@http://127.0.0.1:2', '--secret', 'long-enough-secret'], /not among the members/],
    [['start', '--id', 'n1', '--client', 'nonsense', '--secret', 'long-enough-secret'], /host:port/],
    [['start'], /node id is required/],
  ];
  for (const [args, expected] of cases) {
    const result = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, UNDERSTUDY_SECRET: '' } });
    assert.notEqual(result.status, 0, `${args.join(' ')} should fail`);
    assert.match(result.stderr, expected, `${args.join(' ')}: ${result.stderr}`);
  }
});
