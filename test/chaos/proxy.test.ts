// Goal: the fault-injecting proxies cut exactly one direction: cutting j→i stops j's traffic to i
// and nothing else, in both cut modes, and healing restores it; in a real cluster, cutting a
// follower's link to the leader leaves the leader's link to the follower working.
// Method: (1) plain TCP servers behind a ProxyMesh; (2) a 3-node ChaosCluster of real processes,
// observed through each node's own /v1/cluster view. Every wait is bounded; processes are
// stopped by PID in `finally`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChaosCluster, sleep } from '../../src/chaos/cluster.ts';
import { HttpClient } from '../../src/chaos/http.ts';
import { ProxyMesh } from '../../src/chaos/proxy.ts';

async function waitUntil<T>(what: string, check: () => Promise<T | null | false> | T | null | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== null && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

/** A TCP server that records every byte it receives. */
async function sink(): Promise<{ server: Server; port: number; received: () => string; sockets: Set<Socket> }> {
  let data = '';
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('data', (chunk) => {
      data += chunk.toString();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('no address');
  return { server, port: address.port, received: () => data, sockets };
}

/** A dialer like the transport's: connects to `port`, remembers whether it was closed. */
async function dial(port: number): Promise<{ socket: Socket; closed: () => boolean }> {
  let closed = false;
  const socket = connect({ host: '127.0.0.1', port });
  socket.on('error', () => undefined);
  socket.on('close', () => {
    closed = true;
  });
  await new Promise<void>((resolve) => {
    socket.once('connect', () => resolve());
    socket.once('close', () => resolve());
  });
  return { socket, closed: () => closed };
}

test('proxy: cutting a→b stops a→b only (refuse and blackhole), healing restores it', { timeout: 30_000 }, async () => {
  const a = await sink();
  const b = await sink();
  const mesh = await ProxyMesh.start(['a', 'b'], (_kind, id) => (id === 'a' ? a.port : b.port), ['raft']);
  const open: Socket[] = [];
  try {
    const ab = await dial(mesh.link('raft', 'a', 'b').port);
    const ba = await dial(mesh.link('raft', 'b', 'a').port);
    open.push(ab.socket, ba.socket);
    ab.socket.write('a1;');
    ba.socket.write('b1;');
    await waitUntil('both directions deliver', () => b.received() === 'a1;' && a.received() === 'b1;');

    // refuse: the existing a→b connection is destroyed, new ones bounce; b→a is untouched.
    mesh.cut('a', 'b', 'refuse');
    assert.deepEqual(mesh.cutLinks(), ['a->b']);
    await waitUntil('the a→b connection closes', () => ab.closed());
    const bounced = await dial(mesh.link('raft', 'a', 'b').port);
    open.push(bounced.socket);
    bounced.socket.write('lost;');
    await waitUntil('a new a→b connection is closed at once', () => bounced.closed());
    ba.socket.write('b2;');
    await waitUntil('b→a still delivers', () => a.received() === 'b1;b2;');
    assert.equal(ba.closed(), false);
    assert.equal(b.received(), 'a1;');

    mesh.healAll();
    const again = await dial(mesh.link('raft', 'a', 'b').port);
    open.push(again.socket);
    again.socket.write('a2;');
    await waitUntil('a→b delivers after healing', () => b.received() === 'a1;a2;');

    // blackhole: the connection stays open but nothing arrives; b→a still works.
    mesh.cut('a', 'b', 'blackhole');
    again.socket.write('dropped;');
    ba.socket.write('b3;');
    await waitUntil('b→a delivers during the blackhole', () => a.received() === 'b1;b2;b3;');
    await sleep(200);
    assert.equal(b.received(), 'a1;a2;', 'nothing crosses a blackholed link');
    assert.equal(again.closed(), false, 'a blackhole does not tell the sender');
    assert.ok(mesh.link('raft', 'a', 'b').bytesDiscarded > 0);
    // Healing closes the connection that lost bytes (a frame may have been cut in half).
    mesh.healAll();
    await waitUntil('the damaged connection is closed on heal', () => again.closed());
    const fresh = await dial(mesh.link('raft', 'a', 'b').port);
    open.push(fresh.socket);
    fresh.socket.write('a3;');
    await waitUntil('a fresh a→b connection delivers', () => b.received() === 'a1;a2;a3;');
    assert.equal(ba.closed(), false, 'the b→a connection survived everything');
  } finally {
    for (const socket of open) socket.destroy();
    await mesh.close();
    for (const s of [a, b]) {
      for (const socket of s.sockets) socket.destroy();
      await new Promise<void>((resolve) => s.server.close(() => resolve()));
    }
  }
});

interface View {
  id: string;
  role: string;
  leaderId: string | null;
  lastIndex: number;
  lastLeaderContactMsAgo: number | null;
  members: { id: string; matchIndex: number | null; connected: boolean | null }[];
}

test('proxy: in a real cluster, cutting follower→leader leaves leader→follower working', { timeout: 90_000 }, async () => {
  const logDir = mkdtempSync(join(tmpdir(), 'chaos-proxy-logs-'));
  const http = new HttpClient();
  let cluster: ChaosCluster | null = null;
  try {
    cluster = await ChaosCluster.create({ nodes: 3, logDir });
    const c = cluster;
    const leader = await c.waitForLeader(30_000);
    assert.ok(leader !== null, 'a leader is elected');
    const follower = c.ids().find((id) => id !== leader)!;
    const view = async (id: string): Promise<View | null> => {
      const answer = await http.call('GET', `${c.node(id).clientUrl}/v1/cluster?local=true`, { timeoutMs: 1_000 });
      return answer.kind === 'response' && answer.status === 200 ? (answer.body as View) : null;
    };
    let n = 0;
    const write = async (): Promise<void> => {
      const answer = await http.call('PUT', `${c.node(leader).clientUrl}/v1/docs/proxy/d${n++}`, { body: { n }, timeoutMs: 5_000 });
      assert.equal(answer.kind === 'response' && answer.status < 300, true, 'writes succeed with one one-way cut');
    };
    await write();

    c.proxies.cut(follower, leader, 'refuse');
    // The follower's own dial to the leader is refused...
    await waitUntil('the follower sees its link to the leader down', async () => (await view(follower))?.members.find((m) => m.id === leader)?.connected === false);
    for (let i = 0; i < 20; i++) await write();
    const leaderView = await waitUntil('the leader sees the follower fall behind', async () => {
      const v = await view(leader);
      const match = v?.members.find((m) => m.id === follower)?.matchIndex;
      return v !== null && match !== null && match !== undefined && match < v.lastIndex ? v : null;
    });
    // ...but the leader's link to the follower is up, and the follower keeps hearing the leader.
    assert.equal(leaderView.role, 'leader');
    assert.equal(leaderView.members.find((m) => m.id === follower)?.connected, true, 'leader→follower is not cut');
    await sleep(1_000); // several election timeouts
    const followerView = await view(follower);
    assert.equal(followerView?.role, 'follower');
    assert.equal(followerView?.leaderId, leader);
    assert.ok((followerView?.lastLeaderContactMsAgo ?? Infinity) < 300, `the follower hears the leader (last contact ${followerView?.lastLeaderContactMsAgo} ms ago)`);

    c.proxies.healAll();
    await waitUntil('the follower catches up after healing', async () => {
      const v = await view(leader);
      const match = v?.members.find((m) => m.id === follower)?.matchIndex;
      return v !== null && match === v.lastIndex;
    }, 15_000);

    // The other direction: leader→follower cut; the follower stops hearing the leader while the
    // leader's view of the link from the follower is unaffected (it still gets the follower's messages).
    c.proxies.cut(leader, follower, 'refuse');
    await waitUntil('the leader sees its link to the follower down', async () => (await view(leader))?.members.find((m) => m.id === follower)?.connected === false);
    await waitUntil('the follower stops hearing the leader', async () => ((await view(follower))?.lastLeaderContactMsAgo ?? 0) > 500);
    const stillUp = await view(follower);
    assert.equal(stillUp?.members.find((m) => m.id === leader)?.connected, true, 'follower→leader is not cut');
    await write();
    c.proxies.healAll();
    await waitUntil('the cluster agrees on a leader after healing', async () => (await c.waitForLeader(1_000)) !== null, 15_000);
  } catch (error) {
    if (cluster !== null) for (const id of cluster.ids()) console.error(`--- ${id}\n${cluster.tail(id)}`);
    throw error;
  } finally {
    await cluster?.stopAll();
    await http.close();
    rmSync(logDir, { recursive: true, force: true });
  }
});
