// Goal: the client authenticates with the cluster's bearer token on every request (calls,
// discovery, the change feed), from the options or the connection string, and a wrong or
// missing token fails fast at connect() with UnauthorizedError instead of retrying until a
// timeout. Also: a node that advertises an unreachable client URL (NAT, containers) is still
// used through the seed URL on which it answered.
// Method: a real single-node server started in this process with an auth token
// (test/server/helpers.ts; ProcessCluster cannot poll a token-protected node). Its member
// list advertises http://127.0.0.1:1, where nothing listens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UnauthorizedError, connect } from '../../src/client/index.ts';
import { startTestServer } from '../server/helpers.ts';
import { settle } from './helpers.ts';

test('auth: the token is sent everywhere; a wrong token is UnauthorizedError at once', { timeout: 60_000 }, async () => {
  const server = await startTestServer({ authToken: 'token-for-tests' }, 'client-auth');
  const host = server.server.clientUrl.replace(/^http:\/\//, '');
  try {
    const client = await connect(`understudy://${host}?token=token-for-tests`);
    try {
      assert.equal(client.nodeState('n1')?.url, server.server.clientUrl, 'the URL that answered wins over the advertised one');
      const write = await client.create('secure', { ok: true });
      const read = await client.get('secure', write.id!);
      assert.equal(read.body['ok'], true);
      assert.equal(read.meta.servedBy, 'n1');
      assert.equal((await client.cluster()).id, 'n1');
      const feed = client.changes({ after: write.index - 1 });
      for await (const record of feed) {
        assert.equal(record.index, write.index);
        break;
      }
    } finally {
      await client.close();
    }
    for (const token of ['wrong-token', undefined]) {
      const started = performance.now();
      const refused = await settle(connect({ seeds: [host], ...(token === undefined ? {} : { token }) }));
      assert.ok(!refused.ok && refused.error instanceof UnauthorizedError, String(!refused.ok && refused.error));
      assert.equal((refused as { error: UnauthorizedError }).error.status, 401);
      assert.equal((refused as { error: UnauthorizedError }).error.code, 'UNAUTHORIZED');
      assert.ok(performance.now() - started < 2_000, 'no retrying on 401');
    }
  } finally {
    await server.stop();
  }
});
