// Goal: what a client sees beyond a lone leader: a follower forwards writes to the leader itself
// (one hop, marked by X-Forwarded-To on the response, conditions and Idempotency-Key carried
// along), serves reads, and refuses to forward twice; a leadership transfer moves the target of
// forwarding; a node without a quorum answers 503 NO_LEADER with Retry-After and still serves
// stale reads.
// Method: a real two-node cluster in this process (LMDB, TCP peer transport, HTTP listeners on
// ports picked free up front), and a separate node bootstrapped with a voter that never starts;
// requests through Fastify's inject on the node under test.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { NodeConfig } from '../../src/server/config.ts';
import {
  assertError, freePort, json, JSON_HEADERS, singleNodeConfig, startWith, tempDir, waitFor, type Json, type TestServer,
} from './helpers.ts';

describe('a two-node cluster', () => {
  const nodes = new Map<string, TestServer>();
  let leader: TestServer;
  let follower: TestServer;

  function roles(): { leader: TestServer; follower: TestServer } | null {
    const all = [...nodes.values()];
    const leading = all.filter((node) => node.server.node.core.role === 'leader');
    if (leading.length !== 1) return null;
    const [lead] = leading;
    const other = all.find((node) => node !== lead);
    if (lead === undefined || other === undefined || other.server.node.core.leaderId !== lead.server.node.id) return null;
    return { leader: lead, follower: other };
  }

  async function settle(): Promise<void> {
    await waitFor(() => roles() !== null, 10_000, 'a leader known to both nodes');
    const found = roles();
    assert.ok(found !== null);
    ({ leader, follower } = found);
  }

  before(async () => {
    const ids = ['n1', 'n2'];
    const ports = await Promise.all(ids.flatMap(() => [freePort(), freePort()]));
    const members = ids.map((id, i) => ({ id, peer: `127.0.0.1:${ports[2 * i + 1]}`, client: `http://127.0.0.1:${ports[2 * i]}` }));
    const started = await Promise.all(ids.map((id, i) => {
      const dir = tempDir(`cluster-${id}`);
      const config: NodeConfig = singleNodeConfig(dir, {
        id, members, bootstrapVoters: ids, clientPort: ports[2 * i] ?? 0, peerPort: ports[2 * i + 1] ?? 0,
      });
      return startWith(config, dir, false);
    }));
    started.forEach((node, i) => nodes.set(ids[i] ?? '', node));
    await settle();
  });

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
    assert.equal(((await follower.inject({ url: '/v1/cluster' })).json() as Json).role, 'follower');

    assert.equal((await leader.inject({ url: '/v1/health/leader' })).statusCode, 200);
    const notLeader = await follower.inject({ url: '/v1/health/leader' });
    assert.equal(notLeader.statusCode, 503);
    assert.deepEqual({ ok: (notLeader.json() as Json).ok, role: (notLeader.json() as Json).role }, { ok: false, role: 'follower' });
    for (const node of [leader, follower]) {
      assert.equal((await node.inject({ url: '/v1/health/replica' })).statusCode, 200);
      assert.equal((await node.inject({ url: '/v1/health/ready' })).statusCode, 200);
    }
  });

  it('an admin request on the follower does not claim that no leader is known', { todo: 'bug: http.ts setErrorHandler maps every NotLeaderError to NO_LEADER "no leader is known right now" (retryAfterMs 200, no leaderId); POST /v1/admin/transfer on a follower answers that although the follower knows the leader (expected: forward, or 503 NOT_LEADER naming the leader)' }, async () => {
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
