// Goal: what a client sees beyond a lone leader: a follower forwards writes to the leader itself
// (one hop, marked by X-Forwarded-To on the response, conditions and Idempotency-Key carried
// along), serves reads, and refuses to forward twice; a leadership transfer moves the target of
// forwarding; with a voter down, ack=all is refused up front (503 NOT_ENOUGH_REPLICAS) while
// majority writes go on; a node without a quorum answers 503 NO_LEADER with Retry-After and
// still serves stale reads.
// Method: real clusters in this process (LMDB, TCP peer transport, HTTP listeners on ports picked
// free up front): two nodes; two running nodes of three voters; one node of two voters;
// requests through Fastify's inject on the node under test.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { NodeConfig } from '../../src/server/config.ts';
import {
  assertError, freePort, json, JSON_HEADERS, singleNodeConfig, startWith, tempDir, waitFor, type Json, type TestServer,
} from './helpers.ts';

/**
 * Starts the nodes `ids` of a cluster whose voters are `ids` plus `ghosts` (voters that are
 * configured but never started), on ports picked free up front.
 */
async function startCluster(ids: readonly string[], ghosts: readonly string[]): Promise<Map<string, TestServer>> {
  const all = [...ids, ...ghosts];
  const ports = await Promise.all(all.flatMap(() => [freePort(), freePort()]));
  const members = all.map((id, i) => ({ id, peer: `127.0.0.1:${ports[2 * i + 1]}`, client: `http://127.0.0.1:${ports[2 * i]}` }));
  const started = await Promise.allSettled(ids.map((id, i) => {
    const dir = tempDir(`cluster-${id}`);
    const config: NodeConfig = singleNodeConfig(dir, {
      id, members, bootstrapVoters: all, clientPort: ports[2 * i] ?? 0, peerPort: ports[2 * i + 1] ?? 0,
      // A 400 ms election timeout: event-loop pauses on a loaded test machine must not move leadership.
      tickMs: 10, electionTimeoutTicks: 40, heartbeatIntervalTicks: 4,
    });
    return startWith(config, dir, false);
  }));
  const nodes = new Map<string, TestServer>();
  started.forEach((result, i) => { if (result.status === 'fulfilled') nodes.set(ids[i] ?? '', result.value); });
  const failed = started.find((result) => result.status === 'rejected');
  if (failed !== undefined) {
    await Promise.all([...nodes.values()].map((node) => node.stop()));
    throw (failed as PromiseRejectedResult).reason;
  }
  return nodes;
}

/** The node that leads and is known as leader by every other started node, or null. */
function leaderOf(nodes: ReadonlyMap<string, TestServer>): TestServer | null {
  const all = [...nodes.values()];
  const leading = all.filter((node) => node.server.node.core.role === 'leader');
  const [lead] = leading;
  if (leading.length !== 1 || lead === undefined) return null;
  return all.every((node) => node.server.node.core.leaderId === lead.server.node.id) ? lead : null;
}

describe('a two-node cluster', () => {
  const nodes = new Map<string, TestServer>();
  let leader: TestServer;
  let follower: TestServer;

  function roles(): { leader: TestServer; follower: TestServer } | null {
    const lead = leaderOf(nodes);
    const other = [...nodes.values()].find((node) => node !== lead);
    return lead === null || other === undefined ? null : { leader: lead, follower: other };
  }

  async function settle(): Promise<void> {
    await waitFor(() => roles() !== null, 10_000, 'a leader known to both nodes');
    const found = roles();
    assert.ok(found !== null);
    ({ leader, follower } = found);
  }

  before(async () => {
    for (const [id, node] of await startCluster(['n1', 'n2'], [])) nodes.set(id, node);
  });

  // Each test starts from a settled cluster (and finds the leader again if it moved).
  beforeEach(settle);

  after(async () => {
    await Promise.all([...nodes.values()].map((node) => node.stop()));
  });

  it('a write sent to the follower is forwarded to the leader (X-Forwarded-To) and applied once', async () => {
    const leaderUrl = leader.server.node.status().leaderClientUrl;
    const response = await follower.inject({ method: 'PUT', url: '/v1/docs/fwd/a', payload: json({ n: 1 }), headers: JSON_HEADERS });
    assert.equal(response.statusCode, 201, response.body);
    assert.equal(response.headers['x-forwarded-to'], leaderUrl);
    assert.equal(response.headers['etag'], '"1"');
    const body = response.json() as Json;
    assert.equal(response.headers['x-session-token'], body.sessionToken);
    assert.equal(body.status, 'applied');
    assert.equal(body.version, 1);

    const onLeader = await leader.inject({ url: '/v1/docs/fwd/a' });
    assert.equal(onLeader.statusCode, 200);
    assert.equal(onLeader.headers['x-forwarded-to'], undefined, 'the leader answers directly');
    assert.deepEqual((onLeader.json() as Json).body, { n: 1 });
  });

  it('the follower serves session reads with a write\'s token, and linearizable reads', async () => {
    const write = await follower.inject({ method: 'PUT', url: '/v1/docs/fwd/r', payload: json({ n: 2 }), headers: JSON_HEADERS });
    const token = (write.json() as Json).sessionToken;
    const session = await follower.inject({ url: `/v1/docs/fwd/r?consistency=session&token=${token}` });
    assert.equal(session.statusCode, 200, session.body);
    assert.equal(session.headers['x-served-by'], follower.server.node.id);
    assert.deepEqual((session.json() as Json).body, { n: 2 });
    const linearizable = await follower.inject({ url: '/v1/docs/fwd/r' });
    assert.equal(linearizable.statusCode, 200, linearizable.body);
    assert.equal(linearizable.headers['x-consistency'], 'linearizable');
    assert.equal(linearizable.headers['x-served-by'], follower.server.node.id);
    const stale = await follower.inject({ url: '/v1/docs/fwd/r?consistency=stale' });
    assert.equal(stale.statusCode, 200);
    assert.match(String(stale.headers['x-lag-entries']), /^\d+$/);
  });

  it('forwarding carries POST Location, If-Match, Idempotency-Key, merge patches, deletes and errors', async () => {
    const created = await follower.inject({ method: 'POST', url: '/v1/docs/fwd', payload: json({ p: 1 }), headers: JSON_HEADERS });
    assert.equal(created.statusCode, 201, created.body);
    assert.match(String(created.headers['location']), /^\/v1\/docs\/fwd\/[0-9a-f-]{36}$/);
    assert.ok(created.headers['x-forwarded-to']);

    const stale = await follower.inject({ method: 'PUT', url: '/v1/docs/fwd/a', payload: json({ n: 9 }), headers: { ...JSON_HEADERS, 'if-match': '"5"' } });
    assertError(stale, 412, 'PRECONDITION_FAILED');
    assert.ok(stale.headers['x-forwarded-to']);

    const patched = await follower.inject({ method: 'PATCH', url: '/v1/docs/fwd/a?ack=all', payload: json({ m: 2 }), headers: { 'content-type': 'application/merge-patch+json', 'if-match': '"1"' } });
    assert.equal(patched.statusCode, 200, patched.body);
    assert.equal((patched.json() as Json).ack, 'all');

    const key = { ...JSON_HEADERS, 'idempotency-key': 'fwd-key-1' };
    const first = await follower.inject({ method: 'PUT', url: '/v1/docs/fwd/i', payload: json({ n: 1 }), headers: key });
    const retry = await follower.inject({ method: 'PUT', url: '/v1/docs/fwd/i', payload: json({ n: 1 }), headers: key });
    assert.equal(first.statusCode, 201);
    assert.equal((retry.json() as Json).duplicate, true);

    const invalid = await follower.inject({ method: 'PUT', url: '/v1/docs/_sys/x', payload: json({ n: 1 }), headers: JSON_HEADERS });
    assertError(invalid, 400, 'INVALID_COLLECTION');

    const deleted = await follower.inject({ method: 'DELETE', url: '/v1/docs/fwd/a' });
    assert.equal(deleted.statusCode, 200);
    assert.equal((deleted.json() as Json).deleted, true);
    assertError(await leader.inject({ url: '/v1/docs/fwd/a' }), 404, 'NOT_FOUND');
  });

  it('a write that was already forwarded once is not forwarded again: 503 NO_LEADER with Retry-After', async () => {
    const lastBefore = leader.server.node.core.lastIndex;
    const response = await follower.inject({
      method: 'PUT', url: '/v1/docs/fwd/loop', payload: json({ n: 1 }), headers: { ...JSON_HEADERS, 'x-understudy-forwarded-by': 'elsewhere' },
    });
    const body = assertError(response, 503, 'NO_LEADER');
    assert.equal(response.headers['retry-after'], '1');
    assert.equal(body.leaderId, leader.server.node.id);
    assert.equal(leader.server.node.core.lastIndex, lastBefore);
  });

  it('cluster status and health on both nodes', async () => {
    const status = (await leader.inject({ url: '/v1/cluster' })).json() as Json;
    assert.equal(status.role, 'leader');
    assert.deepEqual([...status.membership.voters].sort(), ['n1', 'n2']);
    const followerStatus = status.members.find((member: Json) => member.id === follower.server.node.id);
    assert.equal(followerStatus.role, 'follower');
    assert.equal(followerStatus.voter, true);
    assert.equal(followerStatus.connected, true);
    assert.equal(typeof followerStatus.matchIndex, 'number');
    assert.equal(status.servedBy, leader.server.node.id);

    // A follower relays the leader's view (which has the replication progress), saying so...
    const relayed = (await follower.inject({ url: '/v1/cluster' })).json() as Json;
    assert.equal(relayed.id, leader.server.node.id);
    assert.equal(relayed.role, 'leader');
    assert.equal(relayed.servedBy, leader.server.node.id);
    assert.equal(relayed.askedVia, follower.server.node.id);
    // ...and gives its own with ?local=true.
    const local = (await follower.inject({ url: '/v1/cluster?local=true' })).json() as Json;
    assert.equal(local.id, follower.server.node.id);
    assert.equal(local.role, 'follower');
    assert.equal(local.servedBy, follower.server.node.id);
    assert.equal(local.leaderId, leader.server.node.id);

    assert.equal((await leader.inject({ url: '/v1/health/leader' })).statusCode, 200);
    const notLeader = await follower.inject({ url: '/v1/health/leader' });
    assert.equal(notLeader.statusCode, 503);
    assert.deepEqual({ ok: (notLeader.json() as Json).ok, role: (notLeader.json() as Json).role }, { ok: false, role: 'follower' });
    for (const node of [leader, follower]) {
      assert.equal((await node.inject({ url: '/v1/health/replica' })).statusCode, 200);
      assert.equal((await node.inject({ url: '/v1/health/ready' })).statusCode, 200);
    }
  });

  it('an admin request on the follower does not claim that no leader is known', async () => {
    const response = await follower.inject({ method: 'POST', url: '/v1/admin/transfer', payload: json({ to: follower.server.node.id }), headers: JSON_HEADERS });
    const body = response.json() as Json;
    assert.ok(response.statusCode === 200 || (body.code === 'NOT_LEADER' && body.leaderId === leader.server.node.id), response.body);
  });

  it('after a leadership transfer the old leader forwards to the new one', async () => {
    const target = follower.server.node.id;
    const moved = await leader.inject({ method: 'POST', url: '/v1/admin/transfer', payload: json({ to: target }), headers: JSON_HEADERS });
    assert.equal(moved.statusCode, 200, moved.body);
    assert.deepEqual(moved.json(), { ok: true, from: leader.server.node.id, to: target });
    await waitFor(() => roles()?.leader.server.node.id === target, 10_000, `${target} to lead`);
    await settle();
    assert.equal(leader.server.node.id, target);

    const response = await follower.inject({ method: 'PUT', url: '/v1/docs/fwd/after-transfer', payload: json({ n: 1 }), headers: JSON_HEADERS });
    assert.equal(response.statusCode, 201, response.body);
    assert.equal(response.headers['x-forwarded-to'], leader.server.node.status().leaderClientUrl);
  });
});

describe('a three-voter cluster with one voter down', () => {
  let nodes: Map<string, TestServer>;
  let leader: TestServer;
  let follower: TestServer;

  before(async () => {
    nodes = await startCluster(['n1', 'n2'], ['n3']);
  });

  beforeEach(async () => {
    await waitFor(() => leaderOf(nodes) !== null, 10_000, 'a leader known to both running nodes');
    const lead = leaderOf(nodes);
    assert.ok(lead !== null);
    leader = lead;
    const other = [...nodes.values()].find((node) => node !== lead);
    assert.ok(other !== undefined);
    follower = other;
  });

  after(async () => {
    await Promise.all([...(nodes?.values() ?? [])].map((node) => node.stop()));
  });

  it('majority writes succeed without the third voter', async () => {
    const response = await follower.inject({ method: 'PUT', url: '/v1/docs/deg/a?ack=majority', payload: json({ n: 1 }), headers: JSON_HEADERS });
    assert.equal(response.statusCode, 201, response.body);
  });

  it('ack=all is refused up front with 503 NOT_ENOUGH_REPLICAS naming the silent voter, and nothing is proposed', async () => {
    for (const node of [leader, follower]) {
      const lastBefore = leader.server.node.core.lastIndex;
      const response = await node.inject({ method: 'PUT', url: '/v1/docs/deg/b?ack=all', payload: json({ n: 1 }), headers: { ...JSON_HEADERS, 'idempotency-key': 'deg-all-1' } });
      const body = assertError(response, 503, 'NOT_ENOUGH_REPLICAS');
      assert.deepEqual(body.unreachable, ['n3']);
      assert.equal(response.headers['retry-after'], '1');
      assert.equal(leader.server.node.core.lastIndex, lastBefore, 'the write was not attempted');
    }
    assertError(await leader.inject({ url: '/v1/docs/deg/b' }), 404, 'NOT_FOUND');
    // The same key at ack=majority then applies: the refused attempt recorded nothing.
    const majority = await leader.inject({ method: 'PUT', url: '/v1/docs/deg/b', payload: json({ n: 1 }), headers: { ...JSON_HEADERS, 'idempotency-key': 'deg-all-1' } });
    assert.equal(majority.statusCode, 201, majority.body);
    assert.equal((majority.json() as Json).duplicate, false);
  });

  it('health: the running nodes are ready; cluster status lists the silent voter as not connected', async () => {
    assert.equal((await follower.inject({ url: '/v1/health/ready' })).statusCode, 200);
    const status = (await leader.inject({ url: '/v1/cluster' })).json() as Json;
    const ghost = status.members.find((member: Json) => member.id === 'n3');
    assert.equal(ghost.voter, true);
    assert.equal(ghost.connected, false);
  });

  it('replication lag: the silent voter is behind by every entry, for as long as the first one it misses exists', async () => {
    const ghostOf = async (): Promise<Json> => ((await leader.inject({ url: '/v1/cluster' })).json() as Json).members.find((member: Json) => member.id === 'n3');
    const before = await ghostOf();
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal((await leader.inject({ method: 'PUT', url: '/v1/docs/deg/lag', payload: json({ n: 1 }), headers: JSON_HEADERS })).statusCode, 201);
    const after = await ghostOf();
    assert.equal(after.lagEntries, leader.server.node.core.lastIndex, 'it holds nothing');
    assert.ok(typeof before.lagMs === 'number' && typeof after.lagMs === 'number', JSON.stringify({ before, after }));
    assert.ok(after.lagMs >= before.lagMs + 250, `lag in time grows with the wall clock, not with new writes: ${before.lagMs} -> ${after.lagMs} ms`);
    const running = ((await leader.inject({ url: '/v1/cluster' })).json() as Json).members.find((member: Json) => member.id === follower.server.node.id);
    assert.ok(running.lagEntries <= 1 && running.lagMs < 1_000, JSON.stringify(running));
  });
});

describe('a node without a quorum', () => {
  let t: TestServer;

  before(async () => {
    const dir = tempDir('no-quorum');
    const [peer, ghostPeer, ghostClient] = await Promise.all([freePort(), freePort(), freePort()]);
    t = await startWith(singleNodeConfig(dir, {
      peerPort: peer ?? 0,
      members: [
        { id: 'n1', peer: `127.0.0.1:${peer}`, client: 'http://127.0.0.1:1' },
        { id: 'n2', peer: `127.0.0.1:${ghostPeer}`, client: `http://127.0.0.1:${ghostClient}` },
      ],
      bootstrapVoters: ['n1', 'n2'],
    }), dir, false);
    await new Promise((resolve) => setTimeout(resolve, 300)); // a few election timeouts
  });

  after(async () => {
    await t?.stop();
  });

  it('writes are 503 NO_LEADER with Retry-After and leaderId null, and nothing is written', async () => {
    const lastBefore = t.server.node.core.lastIndex;
    for (const request of [
      { method: 'PUT' as const, url: '/v1/docs/c/a', payload: json({ n: 1 }), headers: JSON_HEADERS },
      { method: 'POST' as const, url: '/v1/docs/c', payload: json({ n: 1 }), headers: JSON_HEADERS },
      { method: 'DELETE' as const, url: '/v1/docs/c/a' },
      { method: 'POST' as const, url: '/v1/batch', payload: json({ ops: [{ op: 'delete', collection: 'c', id: 'a' }] }), headers: JSON_HEADERS },
    ]) {
      const response = await t.inject(request);
      const body = assertError(response, 503, 'NO_LEADER');
      assert.equal(response.headers['retry-after'], '1');
      assert.equal(body.retryAfterMs, 200);
      assert.equal(body.leaderId, null);
    }
    assert.equal(t.server.node.core.lastIndex, lastBefore);
  });

  it('a linearizable read is refused (503); stale and token-less session reads are served locally', async () => {
    const read = await t.inject({ url: '/v1/docs/c/a?timeoutMs=200' });
    assert.equal(read.statusCode, 503, read.body);
    assert.ok(['NO_LEADER', 'READ_NOT_CONFIRMED'].includes((read.json() as Json).code));
    const stale = await t.inject({ url: '/v1/docs/c/a?consistency=stale' });
    assertError(stale, 404, 'NOT_FOUND');
    assert.equal(stale.headers['x-consistency'], 'stale');
    const session = await t.inject({ url: '/v1/docs/c?consistency=session' });
    assert.equal(session.statusCode, 200);
  });

  it('health says not ready; cluster status shows no leader', async () => {
    for (const url of ['/v1/health/leader', '/v1/health/replica', '/v1/health/ready']) {
      const response = await t.inject({ url });
      assert.equal(response.statusCode, 503, url);
      assert.equal((response.json() as Json).ok, false);
    }
    const status = (await t.inject({ url: '/v1/cluster' })).json() as Json;
    assert.equal(status.leaderId, null);
    assert.notEqual(status.role, 'leader');
  });
});
