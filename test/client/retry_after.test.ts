// Goal: the client honours a server's retryAfterMs: the retry after a 503 OVERLOADED that asks
// for 300 ms waits at least that long (the jittered backoff alone would retry within a few ms),
// never past the call's budget.
// Method: a fake one-node "cluster" on a loopback port (node:http): GET /v1/cluster names itself
// the leader; PUT answers 503 OVERLOADED with retryAfterMs twice, then 201. Arrival times of the
// PUTs are recorded; the server is closed in `finally`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from '../../src/client/index.ts';

async function fakeLeader(retryAfterMs: number, overloadedAnswers: number): Promise<{ url: string; puts: number[]; close: () => Promise<void> }> {
  const puts: number[] = [];
  let url = '';
  const server = http.createServer((request, response) => {
    const send = (status: number, body: unknown): void => {
      response.writeHead(status, { 'content-type': 'application/json', 'x-served-by': 'n1' });
      response.end(JSON.stringify(body));
    };
    request.resume();
    request.on('end', () => {
      if (request.method === 'GET' && request.url?.startsWith('/v1/cluster') === true) {
        send(200, { id: 'n1', role: 'leader', term: 1, leaderId: 'n1', leaderClientUrl: url, commitIndex: 1, appliedIndex: 1, members: [{ id: 'n1', role: 'leader', voter: true, client: url }] });
        return;
      }
      if (request.method === 'PUT') {
        puts.push(performance.now());
        if (puts.length <= overloadedAnswers) {
          send(503, { code: 'OVERLOADED', message: 'too many entries await commit', outcome: 'rejected', retryable: true, retryAfterMs });
          return;
        }
        send(201, { status: 'applied', ack: 'majority', index: 2, term: 1, duplicate: false, collection: 'c', id: 'd', version: 1, deleted: false });
        return;
      }
      send(404, { code: 'NOT_FOUND', message: 'no such route' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, puts, close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }) };
}

test('a retry after 503 OVERLOADED waits at least the retryAfterMs the server asked for', { timeout: 20_000 }, async () => {
  const fake = await fakeLeader(300, 2);
  const client = await connect({ seeds: [fake.url], probeIntervalMs: 0, retry: { initialDelayMs: 1, maxDelayMs: 5, maxAttempts: 5 } });
  try {
    await client.put('c', 'd', { v: 1 });
    assert.equal(fake.puts.length, 3);
    const gaps = fake.puts.slice(1).map((at, i) => at - (fake.puts[i] as number));
    for (const gap of gaps) assert.ok(gap >= 290, `retried after ${gap.toFixed(0)} ms, asked for 300`);
  } finally {
    await client.close();
    await fake.close();
  }
});

test('retryAfterMs never stretches a call past its budget', { timeout: 20_000 }, async () => {
  const fake = await fakeLeader(60_000, 100);
  const client = await connect({ seeds: [fake.url], probeIntervalMs: 0, retry: { initialDelayMs: 1, maxDelayMs: 5, maxAttempts: 5 } });
  try {
    const started = performance.now();
    await assert.rejects(client.put('c', 'd', { v: 1 }, { timeoutMs: 800 }));
    const took = performance.now() - started;
    assert.ok(took < 2_000, `the call ended after ${took.toFixed(0)} ms, its budget was 800 ms`);
  } finally {
    await client.close();
    await fake.close();
  }
});
