// Goal: the chaos client classifies answers honestly: 2xx ok; a definite rejection (4xx, or a 5xx
// whose body says outcome "rejected", or a connection that never opened) fail; everything that
// may have taken effect (timeout, reset, 504, outcome "indeterminate", a 5xx without a catalogue
// body) info.
// Method: table of answers; real sockets on loopback for refused, timed-out and reset requests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { HttpClient, classifyWrite, describeAnswer, type HttpAnswer } from '../../src/chaos/http.ts';

function response(status: number, body: unknown = null): HttpAnswer {
  return { kind: 'response', status, headers: {}, body };
}

test('http: write answers are classified ok / fail / info', () => {
  const cases: [HttpAnswer, string][] = [
    [response(200, { status: 'applied' }), 'ok'],
    [response(201), 'ok'],
    [response(202, { status: 'accepted' }), 'ok'],
    [response(412, { code: 'PRECONDITION_FAILED', outcome: 'rejected' }), 'fail'],
    [response(404, { code: 'NOT_FOUND', outcome: 'rejected' }), 'fail'],
    [response(400, { code: 'INVALID_BODY' }), 'fail'],
    [response(503, { code: 'NO_LEADER', outcome: 'rejected' }), 'fail'],
    [response(503, { code: 'NOT_APPLIED', outcome: 'rejected' }), 'fail'],
    [response(504, { code: 'TIMEOUT', outcome: 'indeterminate' }), 'info'],
    [response(504, { code: 'OUTCOME_UNKNOWN', outcome: 'indeterminate' }), 'info'],
    [response(507, { code: 'STORAGE_ERROR', outcome: 'indeterminate' }), 'info'],
    [response(503, { error: 'Service Unavailable', statusCode: 503 }), 'info'],
    [response(500, { code: 'INTERNAL', message: 'internal error' }), 'info'],
    [{ kind: 'failure', failure: 'refused', message: '' }, 'fail'],
    [{ kind: 'failure', failure: 'timeout', message: '' }, 'info'],
    [{ kind: 'failure', failure: 'reset', message: '' }, 'info'],
  ];
  for (const [answer, expected] of cases) assert.equal(classifyWrite(answer), expected, describeAnswer(answer));
  assert.equal(describeAnswer(response(503, { code: 'NO_LEADER' })), '503 NO_LEADER');
  assert.equal(describeAnswer({ kind: 'failure', failure: 'timeout', message: '' }), 'timeout');
});

test('http: a closed port is refused, a silent server times out, a dropped connection is a reset', { timeout: 20_000 }, async () => {
  const client = new HttpClient();
  const sockets = new Set<import('node:net').Socket>();
  const silent = createServer((socket) => sockets.add(socket));
  const rude = createServer((socket) => socket.once('data', () => socket.destroy()));
  const closed = createServer();
  try {
    const listen = async (server: ReturnType<typeof createServer>): Promise<number> => {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const address = server.address();
      if (typeof address !== 'object' || address === null) throw new Error('no address');
      return address.port;
    };
    const closedPort = await listen(closed);
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const refused = await client.call('PUT', `http://127.0.0.1:${closedPort}/v1/docs/a/b`, { body: {}, timeoutMs: 2_000 });
    assert.equal(refused.kind === 'failure' && refused.failure, 'refused');

    const silentPort = await listen(silent);
    const started = Date.now();
    const timedOut = await client.call('GET', `http://127.0.0.1:${silentPort}/`, { timeoutMs: 300 });
    assert.equal(timedOut.kind === 'failure' && timedOut.failure, 'timeout');
    assert.ok(Date.now() - started < 3_000, 'the timeout bounds the call');

    const rudePort = await listen(rude);
    const reset = await client.call('PUT', `http://127.0.0.1:${rudePort}/`, { body: { a: 1 }, timeoutMs: 2_000 });
    assert.equal(reset.kind === 'failure' && reset.failure, 'reset');
  } finally {
    for (const socket of sockets) socket.destroy();
    await Promise.all([silent, rude].map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    await client.close();
  }
});
