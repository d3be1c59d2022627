// Goal: the client's API works end to end against a real cluster: CRUD, conditional writes,
// merge patch, listing over several pages with a resumable cursor, atomic batches, idempotent
// retries by key, typed errors (404, 412 with currentVersion, 400 with the server's code), and
// read-your-writes sessions whose reads are served by followers; the bulkhead bounds in-flight
// requests per node and sheds the excess with a typed error; timeouts and aborts are prompt and
// leave no socket behind; close() lets a process exit by itself.
// Method: one 3-node ProcessCluster (real `understudy start` processes) for the whole file;
// slow requests are session reads with a token far in the future (the node waits for it until
// the request's timeout), so bulkhead and abort tests need no fault injection; the exit test runs
// a short child process (fixtures/close_exits.ts) that must end on its own.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  AbortError, AlreadyExistsError, BadRequestError, BulkheadRejectedError, NotFoundError, PreconditionFailedError,
  TimeoutError, UnderstudyError, VersionConflictError, connect, type UnderstudyClient,
} from '../../src/client/index.ts';
import { ProcessCluster, connectionString, settle, sleep, waitFor } from './helpers.ts';

const FUTURE_TOKEN = '999999999999';

describe('client against a 3-node cluster', { timeout: 120_000 }, () => {
  let cluster: ProcessCluster;
  let client: UnderstudyClient;

  before(async () => {
    cluster = await ProcessCluster.start({ nodes: 3 });
    client = await connect(connectionString(cluster, 'ack=majority&timeoutMs=8000'));
  });

  after(async () => {
    await client?.close();
    cluster?.stopAll();
  });

  it('discovers the cluster from the connection string and tracks the leader', async () => {
    const leader = await cluster.waitForLeader();
    await waitFor('the client to know the leader', () => client.leader?.id === leader, 5_000);
    const view = await client.cluster();
    assert.equal(view.leaderId, leader);
    assert.deepEqual(client.nodes().map((node) => node.id).sort(), ['n1', 'n2', 'n3']);
    assert.equal(client.nodeState(leader)?.isLeader, true);
    assert.equal(client.nodeState(leader)?.breaker, 'closed');
  });

  it('CRUD: create, get, put with ifMatch, merge patch, delete, and typed errors', async () => {
    const created = await client.create('todos', { title: 'write the client', done: false, tags: ['a'] });
    assert.equal(created.status, 'applied');
    assert.equal(created.version, 1);
    assert.equal(created.duplicate, false);
    assert.equal(created.attempts, 1);
    assert.match(created.idempotencyKey, /^[0-9a-f-]{36}$/);
    assert.ok(/^\d+$/.test(created.sessionToken));
    const id = created.id!;

    const read = await client.get<{ title: string; done: boolean }>('todos', id);
    assert.equal(read.body.title, 'write the client');
    assert.equal(read.version, 1);
    assert.equal(read.meta.consistency, 'linearizable');
    assert.equal(read.meta.servedBy, client.leader?.id, 'linearizable reads go to the leader');

    const replaced = await client.put('todos', id, { title: 'write the client', done: true }, { ifMatch: 1 });
    assert.equal(replaced.version, 2);

    let answers412 = 0;
    const count412 = client.on('response', (event) => { if (event.status === 412) answers412++; });
    const conflict = await settle(client.put('todos', id, { title: 'stale' }, { ifMatch: 1 }));
    count412();
    assert.ok(!conflict.ok && conflict.error instanceof VersionConflictError, String(!conflict.ok && conflict.error));
    const versionConflict = (conflict as { error: VersionConflictError }).error;
    assert.ok(versionConflict instanceof PreconditionFailedError);
    assert.equal(versionConflict.status, 412);
    assert.equal(versionConflict.code, 'PRECONDITION_FAILED');
    assert.equal(versionConflict.currentVersion, 2);
    assert.equal(versionConflict.outcome, 'rejected');
    assert.equal(versionConflict.retryable, false);
    assert.equal(answers412, 1, 'a 412 is final: not retried');

    const patched = await client.patch('todos', id, { done: null, priority: 'high', meta: { by: 'test' } }, { ifMatch: 2 });
    assert.equal(patched.version, 3);
    const afterPatch = await client.get('todos', id);
    assert.deepEqual(afterPatch.body, { title: 'write the client', priority: 'high', meta: { by: 'test' } });

    const deleted = await client.delete('todos', id, { ifMatch: 3 });
    assert.equal(deleted.deleted, true);
    const missing = await settle(client.get('todos', id));
    assert.ok(!missing.ok && missing.error instanceof NotFoundError);
    assert.equal((missing as { error: NotFoundError }).error.status, 404);
    assert.equal((missing as { error: NotFoundError }).error.code, 'NOT_FOUND');
    const patchMissing = await settle(client.patch('todos', id, { done: true }));
    assert.ok(!patchMissing.ok && patchMissing.error instanceof NotFoundError);
    const noop = await client.delete('todos', id);
    assert.equal(noop.deleted, false);
    assert.equal(noop.version, null);

    // create with an id is create-only.
    await client.create('todos', { title: 'pinned' }, { id: 'fixed-1' });
    const again = await settle(client.create('todos', { title: 'pinned again' }, { id: 'fixed-1' }));
    assert.ok(!again.ok && again.error instanceof AlreadyExistsError);
    assert.equal((again as { error: AlreadyExistsError }).error.currentVersion, 1);
  });

  it('bad requests are BadRequestError with the server code and message, not retried', async () => {
    let answers400 = 0;
    const count400 = client.on('response', (event) => { if (event.status === 400) answers400++; });
    const badCollection = await settle(client.create('_system', { a: 1 }));
    count400();
    assert.equal(answers400, 1, 'a 400 is final: not retried');
    assert.ok(!badCollection.ok && badCollection.error instanceof BadRequestError);
    const error = (badCollection as { error: BadRequestError }).error;
    assert.equal(error.code, 'INVALID_COLLECTION');
    assert.equal(error.status, 400);
    assert.match(error.message, /collection/i);
    const badId = await settle(client.get('todos', 'bad id with spaces'));
    assert.ok(!badId.ok && badId.error instanceof BadRequestError && badId.error.code === 'INVALID_ID');
    const badPatch = await settle(client.batch([]));
    assert.ok(!badPatch.ok && badPatch.error instanceof BadRequestError && badPatch.error.code === 'BATCH_EMPTY');
    const tooDeep = await settle(client.create('todos', JSON.parse(`${'{"a":'.repeat(40)}1${'}'.repeat(40)}`)));
    assert.ok(!tooDeep.ok && tooDeep.error instanceof BadRequestError && tooDeep.error.code === 'DOCUMENT_TOO_DEEP');
  });

  it('list iterates documents over several pages, in id order, and resumes from a cursor', async () => {
    const ids = Array.from({ length: 23 }, (_, i) => `item-${String(i).padStart(3, '0')}`);
    await client.batch(ids.map((id, i) => ({ op: 'put' as const, collection: 'listing', id, body: { i } })));
    await client.put('listing', 'other-1', { i: -1 });

    const pages = [];
    for await (const page of client.list('listing', { prefix: 'item-', limit: 5 }).pages()) pages.push(page);
    assert.equal(pages.length, 5);
    assert.deepEqual(pages.map((page) => page.documents.length), [5, 5, 5, 5, 3]);
    assert.deepEqual(pages.flatMap((page) => page.documents.map((doc) => doc.id)), ids);
    assert.equal(pages.at(-1)?.nextCursor, null);

    const seen: string[] = [];
    const listing = client.list('listing', { prefix: 'item-', limit: 4 });
    for await (const doc of listing) {
      seen.push(doc.id);
      if (seen.length === 10) break;
    }
    assert.equal(listing.position, ids[9]);
    const rest = await client.list('listing', { prefix: 'item-', limit: 4, cursor: listing.position! }).toArray();
    assert.deepEqual([...seen, ...rest.map((doc) => doc.id)], ids, 'resuming from position continues without gap or repeat');

    const stale = await client.list('listing', { consistency: 'stale', limit: 1000 }).toArray();
    assert.equal(stale.length, 24);
    const range = await client.list('listing', { start: 'item-005', end: 'item-008' }).toArray();
    assert.deepEqual(range.map((doc) => doc.id), ['item-005', 'item-006', 'item-007']);
  });

  it('batch applies atomically; a failing condition applies nothing and says which op', async () => {
    const result = await client.batch([
      { op: 'put', collection: 'accounts', id: 'a', body: { balance: 100 } },
      { op: 'put', collection: 'accounts', id: 'b', body: { balance: 0 } },
      { op: 'create', collection: 'transfers', body: { from: 'a', to: 'b', amount: 0 } },
    ]);
    assert.equal(result.results.length, 3);
    assert.ok(result.results.every((op) => op.index === result.index));
    const failed = await settle(client.batch([
      { op: 'put', collection: 'accounts', id: 'a', body: { balance: 50 }, ifMatch: 1 },
      { op: 'put', collection: 'accounts', id: 'b', body: { balance: 50 }, ifMatch: 7 },
    ]));
    assert.ok(!failed.ok && failed.error instanceof VersionConflictError);
    const conflict = (failed as { error: VersionConflictError }).error;
    assert.equal(conflict.details['opIndex'], 1);
    assert.equal(conflict.currentVersion, 1);
    assert.equal((await client.get('accounts', 'a')).body['balance'], 100, 'nothing of the failed batch applied');
  });

  it('a write retried with the same idempotency key applies once', async () => {
    const key = `order-${Date.now()}`;
    const first = await client.create('orders', { item: 'book' }, { idempotencyKey: key });
    const second = await client.create('orders', { item: 'book' }, { idempotencyKey: key });
    assert.equal(first.duplicate, false);
    assert.equal(second.duplicate, true);
    assert.equal(second.id, first.id);
    assert.equal(second.index, first.index);
    assert.equal(second.idempotencyKey, key);
  });

  it('a session reads its own writes on followers (x-served-by), right after each write', async () => {
    const leader = client.leader!.id;
    const followers = ['n1', 'n2', 'n3'].filter((id) => id !== leader);
    const session = client.session();
    for (let i = 0; i < 10; i++) {
      const write = await session.put('sessions', `doc-${i}`, { i, at: Date.now() });
      assert.equal(session.token, write.sessionToken);
      const follower = followers[i % followers.length]!;
      const read = await session.get<{ i: number }>('sessions', `doc-${i}`, { node: follower });
      assert.equal(read.meta.servedBy, follower);
      assert.equal(read.meta.consistency, 'session');
      assert.equal(read.body.i, i);
      assert.ok(read.meta.appliedIndex! >= Number(write.sessionToken), 'the follower applied at least the write');
      assert.equal(client.lastServedBy, follower);
    }
    // Without pinning, session reads are spread over the nodes and still see every write.
    const servedBy = new Set<string>();
    for (let i = 0; i < 9; i++) {
      await session.patch('sessions', 'doc-0', { i });
      const read = await session.get<{ i: number }>('sessions', 'doc-0');
      assert.equal(read.body.i, i);
      servedBy.add(read.meta.servedBy!);
    }
    assert.ok(followers.some((id) => servedBy.has(id)), `served by ${[...servedBy].join(', ')}`);
    assert.equal(servedBy.size, 3, 'round-robin over all three nodes');
  });

  it('the bulkhead bounds in-flight requests per node and rejects the excess beyond its queue', async () => {
    // A high breaker threshold: this test is about the bulkhead, even on a machine so busy that
    // the node answers late.
    const limited = await connect(connectionString(cluster, 'maxConcurrent=4&maxQueue=8&probeIntervalMs=0&breakerThreshold=1000'));
    try {
      const node = 'n1';
      let sampled = 0;
      const sampler = setInterval(() => {
        sampled = Math.max(sampled, limited.nodeState(node)!.inFlight);
      }, 2);
      const fired = performance.now();
      // Each call holds its slot ~900 ms: the node waits for a session token it will not reach.
      const calls = Array.from({ length: 40 }, () => settle(limited.get('bulkhead', 'x', {
        node, consistency: 'session', sessionToken: FUTURE_TOKEN, timeoutMs: 1_000, maxAttempts: 1,
      })));
      await sleep(50);
      const midway = limited.nodeState(node)!;
      const results = await Promise.all(calls);
      clearInterval(sampler);
      const rejected = results.filter((result) => !result.ok && result.error instanceof BulkheadRejectedError);
      const timedOut = results.filter((result) => !result.ok && result.error instanceof TimeoutError);
      assert.equal(rejected.length, 28, 'beyond 4 running + 8 queued, calls are rejected');
      assert.equal(timedOut.length, 12, results.filter((result) => !result.ok && !(result.error instanceof BulkheadRejectedError) && !(result.error instanceof TimeoutError)).map((result) => String((result as { error: unknown }).error)).join('; '));
      assert.ok(rejected.every((result) => result.ms < 150), 'rejections are immediate (no wait for a slot)');
      const rejection = (rejected[0] as { error: BulkheadRejectedError }).error;
      assert.equal(rejection.code, 'BULKHEAD_FULL');
      assert.equal(rejection.outcome, 'rejected');
      assert.equal(midway.inFlight, 4);
      assert.equal(midway.queued, 8);
      assert.ok(sampled <= 4, `in-flight sampled up to ${sampled}`);
      assert.equal(limited.nodeState(node)!.peakInFlight, 4);
      assert.ok(performance.now() - fired < 3_000);
      // A call cut off by its budget rejects first; its aborted request unwinds a moment later.
      await waitFor('the node to have nothing in flight', () => limited.nodeState(node)!.inFlight === 0, 1_000);

      // A call waiting in the queue can be aborted: it rejects at once.
      const holders = Array.from({ length: 4 }, () => settle(limited.get('bulkhead', 'x', { node, consistency: 'session', sessionToken: FUTURE_TOKEN, timeoutMs: 2_000, maxAttempts: 1 })));
      const controller = new AbortController();
      const queued = settle(limited.get('bulkhead', 'x', { node, consistency: 'stale', signal: controller.signal }));
      await waitFor('one call waiting in the queue', () => limited.nodeState(node)!.queued === 1 && limited.nodeState(node)!.inFlight === 4, 1_500)
        .catch((error: Error) => { throw new Error(`${error.message}; now ${JSON.stringify(limited.nodeState(node))}`); });
      const abortedAt = performance.now();
      controller.abort();
      const outcome = await queued;
      assert.ok(!outcome.ok && outcome.error instanceof AbortError);
      assert.ok(performance.now() - abortedAt < 50, 'a queued call rejects promptly on abort');
      await Promise.all(holders);
    } finally {
      await limited.close();
    }
  });

  it('aborts reject within a few ms and timeouts are honoured; no request or socket is left running', async () => {
    await client.put('slow', 'x', { v: 1 });
    // Abort a request in flight.
    const latencies: number[] = [];
    for (let i = 0; i < 5; i++) {
      const controller = new AbortController();
      const call = settle(client.get('slow', 'x', { consistency: 'session', sessionToken: FUTURE_TOKEN, signal: controller.signal }));
      await sleep(40);
      const abortedAt = performance.now();
      controller.abort();
      const outcome = await call;
      const latency = performance.now() - abortedAt;
      assert.ok(!outcome.ok && outcome.error instanceof AbortError, String(!outcome.ok && outcome.error));
      assert.equal((outcome as { error: AbortError }).error.outcome, 'rejected', 'an aborted read is simply rejected');
      latencies.push(latency);
    }
    // Prompt means no waiting on the node or a timer: microseconds, plus scheduling noise when
    // the machine is busy (the suite runs two clusters on two cores).
    latencies.sort((a, b) => a - b);
    assert.ok(latencies[2]! < 10 && latencies[3]! < 20, `abort latencies ${latencies.map((ms) => ms.toFixed(1)).join(', ')} ms`);
    // A signal that is already aborted: rejected before anything is sent.
    const early = await settle(client.put('slow', 'y', { v: 1 }, { signal: AbortSignal.abort() }));
    assert.ok(!early.ok && early.error instanceof AbortError && early.error.outcome === 'rejected');

    // The budget bounds retries: SESSION_TIMEOUT is retried on other nodes until the budget ends.
    const timed = await settle(client.get('slow', 'x', { consistency: 'session', sessionToken: FUTURE_TOKEN, timeoutMs: 400 }));
    assert.ok(!timed.ok && timed.error instanceof TimeoutError, String(!timed.ok && timed.error));
    assert.ok(timed.ms >= 300 && timed.ms < 650, `timed out after ${timed.ms.toFixed(0)} ms (budget 400)`);

    await waitFor('no request left running', () => client.nodes().every((node) => node.inFlight === 0 && node.pool.running === 0 && node.pool.pending === 0), 2_000);
    assert.ok(client.nodes().every((node) => node.queued === 0));
  });

  it('close() leaves nothing behind: a process that used the client (feeds, aborts, timeouts) exits by itself', { timeout: 30_000 }, async () => {
    const fixture = fileURLToPath(new URL('./fixtures/close_exits.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', fixture, connectionString(cluster)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let closedAt: number | null = null;
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (closedAt === null && stdout.includes('"closed":true')) closedAt = performance.now();
    });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    const exit = await new Promise<{ code: number | null; at: number }>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      child.on('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, at: performance.now() });
      });
    });
    assert.equal(exit.code, 0, `child exit ${exit.code}; stderr: ${stderr}; stdout: ${stdout}`);
    assert.ok(closedAt !== null, stdout);
    const report = JSON.parse(stdout.trim().split('\n').at(-1)!) as { resources: string[]; pools: unknown[] };
    assert.ok(exit.at - closedAt! < 1_000, `exited ${(exit.at - closedAt!).toFixed(0)} ms after close()`);
    assert.deepEqual(report.resources.filter((name) => name === 'TCPSocketWrap' || name === 'Timeout'), [], `resources after close: ${report.resources.join(', ')}`);
  });

  it('the typed errors all share UnderstudyError', () => {
    for (const type of [NotFoundError, VersionConflictError, AlreadyExistsError, BadRequestError, TimeoutError, AbortError, BulkheadRejectedError]) {
      assert.ok(type.prototype instanceof UnderstudyError);
    }
  });
});
