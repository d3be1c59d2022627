// Goal: a node that stops answering gets its circuit breaker opened, after which the client no
// longer waits on it (a batch of reads completes quickly and none goes to that node); when the
// node answers again the breaker half-opens (a probe is the trial) and closes, without user
// traffic; an attempt cut short by its call's own budget does not count against the node. A
// write whose only attempt hangs on a frozen leader rejects with IndeterminateError
// carrying its idempotency key; retrying with that key later applies it exactly once.
// Method: a 3-node ProcessCluster; SIGSTOP freezes a node (its kernel still accepts connections,
// so requests hang until the attempt timeout: the worst case for a client, unlike kill -9 which
// is refused at once); SIGCONT resumes it. Breaker transitions are recorded from the client's
// breakerStateChanged events; routing from the `response` debug events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IndeterminateError, TimeoutError, type BreakerState } from '../../src/client/index.ts';
import { ProcessCluster, connectTo, settle, signalNode, sleep, stopCluster, waitFor } from './helpers.ts';

test('breaker: a frozen node is cut off after 3 failures, half-opens and closes when it answers again', { timeout: 60_000 }, async (t) => {
  const cluster = await ProcessCluster.start({ nodes: 3 });
  const client = await connectTo(cluster, {
    attemptTimeoutMs: 1_000, discoveryTimeoutMs: 300, probeIntervalMs: 100, timeoutMs: 5_000,
    breaker: { failureThreshold: 3, halfOpenAfterMs: 1_000 },
  });
  try {
    const leader = await cluster.waitForLeader();
    await waitFor('the client to know the leader', () => client.leader?.id === leader, 5_000);
    const frozen = ['n1', 'n2', 'n3'].find((id) => id !== leader)!;
    await client.put('breaker', 'doc', { v: 1 });
    const transitions: { state: BreakerState; at: number }[] = [];
    client.on('breakerStateChanged', (event) => {
      if (event.id === frozen) transitions.push({ state: event.state, at: performance.now() });
    });
    const ups: string[] = [];
    client.on('nodeUp', (event) => ups.push(String(event.id)));
    const served: string[] = [];
    client.on('response', (event) => served.push(event.node));
    // A second client whose breakers open on the first failure that is the node's fault.
    const strict = await connectTo(cluster, { probeIntervalMs: 0, breaker: { failureThreshold: 1, halfOpenAfterMs: 60_000 } });

    signalNode(cluster, frozen, 'SIGSTOP');
    const frozenAt = performance.now();

    // An attempt cut short by its call's budget (120 ms, less than min(attemptTimeoutMs, 250 ms))
    // says nothing about the node: the breaker stays closed. A fair one (600 ms) opens it.
    for (let i = 0; i < 3; i++) {
      const starved = await settle(strict.get('breaker', 'doc', { node: frozen, consistency: 'stale', timeoutMs: 120, maxAttempts: 1 }));
      assert.ok(!starved.ok && starved.error instanceof TimeoutError, String(!starved.ok && starved.error));
    }
    assert.equal(strict.nodeState(frozen)?.breaker, 'closed');
    assert.equal(strict.nodeState(frozen)?.up, true);
    const fair = await settle(strict.get('breaker', 'doc', { node: frozen, consistency: 'stale', timeoutMs: 600, maxAttempts: 1 }));
    assert.ok(!fair.ok && fair.error instanceof TimeoutError);
    assert.equal(strict.nodeState(frozen)?.breaker, 'open');
    assert.equal(strict.nodeState(frozen)?.up, false);
    await strict.close();
    // Stale reads are spread round-robin; those sent to the frozen node hang for the attempt
    // timeout (1 s), then go elsewhere. Three such failures open its breaker.
    const warmup = await Promise.all(Array.from({ length: 12 }, () => settle(client.get('breaker', 'doc', { consistency: 'stale' }))));
    assert.deepEqual(warmup.filter((result) => !result.ok).map((result) => String((result as { error: unknown }).error)), [], 'every read succeeded on another node');
    await waitFor('the breaker to open', () => client.nodeState(frozen)?.breaker === 'open', 5_000);
    const openedAfter = transitions.find((transition) => transition.state === 'open')!.at - frozenAt;

    // While open, the client does not wait on the node: a batch of reads is as fast as usual.
    served.length = 0;
    const batchStarted = performance.now();
    const batch = await Promise.all(Array.from({ length: 60 }, () => settle(client.get('breaker', 'doc', { consistency: 'stale' }))));
    const batchMs = performance.now() - batchStarted;
    assert.deepEqual(batch.filter((result) => !result.ok).map((result) => String((result as { error: unknown }).error)), []);
    assert.ok(!served.includes(frozen), 'no read was sent to the frozen node');
    assert.ok(batchMs < 700, `60 reads took ${batchMs.toFixed(0)} ms with the node frozen (one attempt to it would take 1000 ms)`);
    assert.equal(client.nodeState(frozen)?.inFlight, 0);

    // Probes keep trying it every halfOpenAfter: half-open, trial fails (still frozen), open again.
    await waitFor('a failed half-open trial', () => transitions.filter((transition) => transition.state === 'open').length >= 2, 5_000);

    signalNode(cluster, frozen, 'SIGCONT');
    const resumedAt = performance.now();
    await waitFor('the breaker to close', () => client.nodeState(frozen)?.breaker === 'closed', 10_000);
    const closedAfter = performance.now() - resumedAt;
    const states = transitions.map((transition) => transition.state);
    assert.deepEqual(states.slice(-2), ['halfOpen', 'closed'], states.join(' -> '));
    assert.equal(states[0], 'open');
    assert.ok(ups.includes(frozen), 'nodeUp fired');
    // It serves reads again.
    const pinned = await client.get('breaker', 'doc', { node: frozen, consistency: 'stale' });
    assert.equal(pinned.meta.servedBy, frozen);
    t.diagnostic(`breaker opened ${openedAfter.toFixed(0)} ms after the freeze; 60 reads with it open: ${batchMs.toFixed(0)} ms; closed ${closedAfter.toFixed(0)} ms after SIGCONT; transitions: ${states.join(' -> ')}`);
  } catch (error) {
    console.error(cluster.logs());
    throw error;
  } finally {
    await client.close();
    stopCluster(cluster);
  }
});

test('indeterminate: a write stuck on a frozen leader is IndeterminateError; a retry with its key applies it once', { timeout: 60_000 }, async (t) => {
  const cluster = await ProcessCluster.start({ nodes: 3 });
  const client = await connectTo(cluster, { attemptTimeoutMs: 400, probeIntervalMs: 100, timeoutMs: 10_000 });
  try {
    const leader = await cluster.waitForLeader();
    await waitFor('the client to know the leader', () => client.leader?.id === leader, 5_000);
    await client.create('payments', { warmup: true });
    signalNode(cluster, leader, 'SIGSTOP');
    const stuck = await settle(client.create('payments', { amount: 42 }, { idempotencyKey: 'payment-42', maxAttempts: 1 }));
    assert.ok(!stuck.ok && stuck.error instanceof IndeterminateError, String(!stuck.ok && stuck.error));
    const error = (stuck as { error: IndeterminateError }).error;
    assert.equal(error.outcome, 'indeterminate');
    assert.equal(error.idempotencyKey, 'payment-42');
    assert.equal(error.retryable, true);
    assert.ok(stuck.ms >= 390 && stuck.ms < 1_000, `gave up after ${stuck.ms.toFixed(0)} ms (one 400 ms attempt)`);

    // The retry, with the same key, finds the new leader and applies the write.
    const retried = await client.create('payments', { amount: 42 }, { idempotencyKey: 'payment-42' });
    assert.notEqual(client.leader?.id, leader);
    // The frozen leader wakes up with the first request still in its socket buffer.
    signalNode(cluster, leader, 'SIGCONT');
    await cluster.waitForConvergence();
    const again = await client.create('payments', { amount: 42 }, { idempotencyKey: 'payment-42' });
    assert.equal(again.duplicate, true);
    assert.equal(again.id, retried.id);
    await sleep(200);
    const docs = await client.list<{ amount?: number }>('payments').toArray();
    const payments = docs.filter((doc) => doc.body.amount === 42);
    assert.equal(payments.length, 1, 'applied exactly once');
    assert.equal(payments[0]!.version, 1);
    t.diagnostic(`indeterminate after ${stuck.ms.toFixed(0)} ms; the retry took ${retried.attempts} attempt(s) and was ${retried.duplicate ? 'a duplicate' : 'the first apply'}`);
  } catch (error) {
    console.error(cluster.logs());
    throw error;
  } finally {
    await client.close();
    stopCluster(cluster);
  }
});
