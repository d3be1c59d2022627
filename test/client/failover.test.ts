// Goal: one client instance rides out kill -9 of the leader while 8 tasks write through it:
// every write either succeeds within its time budget or fails with a typed error; no write is
// applied twice (each created document has version 1, no (writer, seq) appears twice, and the
// number of documents equals the successful creates plus indeterminate ones that turn out to
// have applied); the client reports the new leader (leaderChanged) and routes writes straight
// to it, also after the killed node restarts, whose breaker closes again.
// Method: a 3-node ProcessCluster; 8 async tasks create documents with server-generated ids
// (POST, so a duplicate apply would show as a second document) through one client; SIGKILL of
// the leader by PID mid-stream, restart, then a full linearizable listing through the client.
// Figures (the longest pause between acknowledged writes around the kill, the slowest write,
// retries) are printed as test diagnostics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AbortError, ClientClosedError, IndeterminateError, UnderstudyError, type LeaderChange } from '../../src/client/index.ts';
import { ProcessCluster, connectTo, settle, sleep, waitFor } from './helpers.ts';

interface Ack { id: string; writer: number; seq: number; at: number; latencyMs: number; attempts: number; duplicate: boolean }

test('failover: 8 writers through one client survive kill -9 of the leader; nothing applies twice', { timeout: 90_000 }, async (t) => {
  const cluster = await ProcessCluster.start({ nodes: 3 });
  const client = await connectTo(cluster, { timeoutMs: 15_000, probeIntervalMs: 200, breaker: { failureThreshold: 3, halfOpenAfterMs: 1_000 } });
  let running = true;
  let writers: Promise<void>[] = [];
  try {
    const leaderChanges: (LeaderChange & { at: number })[] = [];
    client.on('leaderChanged', (change) => leaderChanges.push({ ...change, at: performance.now() }));
    const breakerStates: string[] = [];
    client.on('breakerStateChanged', (event) => breakerStates.push(`${event.id}:${event.state}`));
    const downs: string[] = [];
    client.on('nodeDown', (event) => downs.push(String(event.id)));
    let retries = 0;
    const retryLog: string[] = [];
    client.on('retry', (event) => {
      retries++;
      retryLog.push(`${(performance.now() - t0).toFixed(0)} retry ${event.attempt} after ${event.error}`);
    });
    const t0 = performance.now();
    const writeTargets: { node: string; at: number; status: number; attempt: number }[] = [];
    client.on('response', (event) => {
      // `at`: when the attempt was sent (a response may arrive after a leader change).
      if (event.method === 'POST' && event.path === '/v1/docs/orders') writeTargets.push({ node: event.node, at: performance.now() - event.durationMs, status: event.status, attempt: event.attempt });
    });
    client.on('leaderChanged', (event) => retryLog.push(`${(performance.now() - t0).toFixed(0)} leaderChanged ${JSON.stringify(event)}`));

    const acks: Ack[] = [];
    const failures: { writer: number; seq: number; error: unknown }[] = [];
    writers = Array.from({ length: 8 }, async (_, writer) => {
      for (let seq = 0; running; seq++) {
        const started = performance.now();
        try {
          const result = await client.create('orders', { writer, seq });
          acks.push({ id: result.id!, writer, seq, at: performance.now(), latencyMs: performance.now() - started, attempts: result.attempts, duplicate: result.duplicate });
        } catch (error) {
          if (error instanceof ClientClosedError) return;
          failures.push({ writer, seq, error });
        }
      }
    });

    await waitFor('writes before the kill', () => acks.length >= 200, 20_000);
    const oldLeader = await cluster.waitForLeader();
    assert.equal(client.leader?.id, oldLeader);
    const killedAt = performance.now();
    await cluster.kill(oldLeader);
    await waitFor('writes after the kill', () => acks.filter((ack) => ack.at > killedAt).length >= 200, 30_000);
    const newLeader = await cluster.waitForLeader(15_000, oldLeader);
    await waitFor('the client to follow the new leader', () => client.leader?.id === newLeader, 5_000);

    cluster.startNode(oldLeader);
    await waitFor('the restarted node to be up again in the client', () => {
      const state = client.nodeState(oldLeader);
      return state !== null && state.up && state.breaker === 'closed';
    }, 20_000);
    const restartedAt = performance.now();
    await waitFor('writes with the old leader back', () => acks.filter((ack) => ack.at > restartedAt + 300).length >= 100, 20_000);
    running = false;
    await Promise.all(writers);

    // Every failure is typed; an indeterminate one is resolved by retrying with its key.
    let resolvedIndeterminate = 0;
    for (const failure of failures) {
      assert.ok(failure.error instanceof UnderstudyError, `untyped failure: ${String(failure.error)}`);
      if (failure.error instanceof IndeterminateError) {
        const retried = await client.create('orders', { writer: failure.writer, seq: failure.seq }, { idempotencyKey: failure.error.idempotencyKey! });
        acks.push({ id: retried.id!, writer: failure.writer, seq: failure.seq, at: performance.now(), latencyMs: 0, attempts: retried.attempts, duplicate: retried.duplicate });
        resolvedIndeterminate++;
      }
    }
    const rejected = failures.length - resolvedIndeterminate;

    // The client noticed the leader change and sends writes straight to the new leader.
    const change = leaderChanges.find((event) => event.previousLeaderId === oldLeader);
    assert.ok(change !== undefined, `leaderChanged events: ${JSON.stringify(leaderChanges)}`);
    assert.notEqual(change.leaderId, oldLeader);
    // The restarted node rejoins as a follower (pre-vote keeps it from disrupting the leader);
    // should an election happen anyway, the client must follow that leader too.
    const finalLeader = await cluster.waitForLeader();
    assert.equal(client.leader?.id, finalLeader);
    const settledAt = Math.max(restartedAt, ...leaderChanges.map((event) => event.at + 200));
    const lateTargets = writeTargets.filter((target) => target.at > settledAt);
    const byNode = new Map<string, number>();
    for (const target of lateTargets) byNode.set(target.node, (byNode.get(target.node) ?? 0) + 1);
    const direct = lateTargets.filter((target) => target.node === finalLeader).length;
    // Straight to the leader; a write retried while the leader was briefly unusable may go
    // through a follower (which forwards it), so allow a few.
    assert.ok(lateTargets.length >= 50 && direct >= lateTargets.length * 0.95 && lateTargets.slice(-20).every((target) => target.node === finalLeader),
      `writes after the restart went to ${JSON.stringify([...byNode])} (leader ${finalLeader}); restart at ${(restartedAt - t0).toFixed(0)}, settled ${(settledAt - t0).toFixed(0)}; elsewhere: ${JSON.stringify(lateTargets.filter((target) => target.node !== finalLeader).map((target) => ({ ...target, at: Math.round(target.at - t0) })))}; log: ${retryLog.join(' | ')}`);
    assert.ok(downs.includes(oldLeader), 'nodeDown fired for the killed leader');
    // Its breaker opened while it was dead and closed again after the restart (a node still slow
    // from starting up on a busy machine may open it again later: that is the breaker working).
    const opened = breakerStates.indexOf(`${oldLeader}:open`);
    assert.ok(opened >= 0 && breakerStates.indexOf(`${oldLeader}:closed`, opened) > opened, breakerStates.join(' '));

    // Exactly once: one document per acknowledged create, each at version 1, no (writer, seq) twice.
    await cluster.waitForConvergence();
    const docs = await client.list<{ writer: number; seq: number }>('orders', { limit: 1000 }).toArray();
    const keys = new Set(docs.map((doc) => `${doc.body.writer}/${doc.body.seq}`));
    assert.equal(keys.size, docs.length, 'a (writer, seq) was applied twice');
    assert.ok(docs.every((doc) => doc.version === 1));
    const docIds = new Set(docs.map((doc) => doc.id));
    const missing = acks.filter((ack) => !docIds.has(ack.id));
    assert.deepEqual(missing, [], 'acknowledged writes missing');
    assert.equal(docs.length, acks.length, 'documents == successful creates (indeterminate ones resolved by key)');
    // Each writer's sequence numbers form one gap-free run, minus rejected (not applied) ones.
    assert.equal(rejected, failures.filter((failure) => !(failure.error instanceof IndeterminateError)).length);

    // Figures.
    const sorted = [...acks].filter((ack) => ack.latencyMs > 0).sort((a, b) => a.at - b.at);
    const around = sorted.filter((ack) => ack.at > killedAt - 2_000 && ack.at < killedAt + 10_000);
    let pause = 0;
    for (let i = 1; i < around.length; i++) pause = Math.max(pause, around[i]!.at - around[i - 1]!.at);
    const firstAfter = sorted.find((ack) => ack.at > killedAt);
    const slowest = Math.max(...sorted.map((ack) => ack.latencyMs));
    const retriedWrites = sorted.filter((ack) => ack.attempts > 1).length;
    const maxAttempts = Math.max(...sorted.map((ack) => ack.attempts));
    const learnedAt = change.at - killedAt;
    t.diagnostic(`writes acknowledged: ${acks.length}; failed: ${failures.length} (${resolvedIndeterminate} indeterminate, resolved by key); retries: ${retries}`);
    t.diagnostic(`kill -9 of ${oldLeader} -> new leader ${newLeader} known to the client after ${learnedAt.toFixed(0)} ms`);
    t.diagnostic(`first acknowledged write after the kill: +${((firstAfter?.at ?? killedAt) - killedAt).toFixed(0)} ms; longest pause between acknowledgements: ${pause.toFixed(0)} ms`);
    t.diagnostic(`slowest write: ${slowest.toFixed(0)} ms; writes that needed retries: ${retriedWrites} (max ${maxAttempts} attempts); answered as duplicates of an earlier attempt: ${acks.filter((ack) => ack.duplicate).length}`);
    assert.ok(pause < 5_000, `writes paused ${pause.toFixed(0)} ms`);
    assert.ok(slowest < 15_000, 'every write finished within its budget');
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

test('failover: a client whose seeds include a dead node connects and works; an abort during backoff is prompt', { timeout: 60_000 }, async () => {
  const cluster = await ProcessCluster.start({ nodes: 3 });
  try {
    const leader = await cluster.waitForLeader();
    const follower = ['n1', 'n2', 'n3'].find((id) => id !== leader)!;
    await cluster.kill(follower);
    const started = performance.now();
    const client = await connectTo(cluster, { probeIntervalMs: 0 });
    try {
      assert.ok(performance.now() - started < 2_000);
      const write = await client.create('seeds', { ok: true });
      assert.equal(write.version, 1);
      // Session reads (not stale: a follower may not have applied the write yet) spread over the
      // live nodes, and the dead one, until it is skipped.
      const reads = await Promise.all(Array.from({ length: 12 }, () => settle(client.list('seeds', { consistency: 'session', sessionToken: write.sessionToken }).toArray())));
      const failed = reads.filter((read) => !read.ok).map((read) => String((read as { error: unknown }).error));
      assert.deepEqual(failed, [], 'session reads spread over the nodes all succeed');
      assert.ok(reads.every((read) => read.ok && read.value.length === 1));
      assert.equal(client.nodeState(follower)?.up, false);
    } finally {
      await client.close();
    }
    // A call to the dead node is refused, then waits in backoff; an abort ends it at once.
    const patient = await connectTo(cluster, { probeIntervalMs: 0, retry: { initialDelayMs: 3_000, maxDelayMs: 3_000 } });
    try {
      const controller = new AbortController();
      const call = settle(patient.get('seeds', 'x', { node: follower, consistency: 'stale', signal: controller.signal, timeoutMs: 60_000 }));
      await sleep(150);
      const abortedAt = performance.now();
      controller.abort();
      const outcome = await call;
      assert.ok(!outcome.ok && outcome.error instanceof AbortError, String(!outcome.ok && outcome.error));
      assert.ok(performance.now() - abortedAt < 50, 'an abort during a backoff wait (up to 3 s) is prompt');
    } finally {
      await patient.close();
    }
  } finally {
    cluster.stopAll();
  }
});
