// Goal: the operator and data commands work against a real cluster and fail with one clear line
// and a non-zero exit on bad input; a switchover under write load moves leadership with no
// failed client write.
// Method: a real 3-node cluster (test/cluster/process_cluster.ts); the `understudy` command runs
// as a child process with a bounded timeout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProcessCluster } from '../cluster/process_cluster.ts';
import { startWriters } from '../cluster/writers.ts';
import { cli } from './run_cli.ts';



test('cli: status, data commands, switchover under load, and bad input', { timeout: 120_000 }, async () => {
  const cluster = await ProcessCluster.start();
  try {
    const url = cluster.url('n1');
    const put = await cli(['put', 'todos', 't1', '{"title":"write tests"}', '--url', url]);
    assert.equal(put.code, 0, put.stderr);
    assert.equal(JSON.parse(put.stdout).version, 1);
    const got = await cli(['get', 'todos', 't1', '--url', cluster.url('n3'), '--consistency', 'linearizable']);
    assert.equal(got.code, 0, got.stderr);
    assert.equal(JSON.parse(got.stdout).body.title, 'write tests');
    const patched = await cli(['patch', 'todos', 't1', '{"done":true}', '--url', url, '--if-match', '1']);
    assert.equal(patched.code, 0, patched.stderr);
    const listed = await cli(['list', 'todos', '--url', url]);
    assert.equal(listed.stdout.trim().split('\n').length, 1);
    assert.equal(JSON.parse(listed.stdout).body.done, true);

    const status = await cli(['status', '--json', '--url', cluster.url('n2')]);
    assert.equal(status.code, 0, status.stderr);
    const view = JSON.parse(status.stdout);
    assert.equal(view.members.length, 3);
    const table = await cli(['status', '--url', url]);
    assert.match(table.stdout, /leader: n\d/);
    assert.match(table.stdout, /NODE\s+ROLE/);

    // Switchover while clients write: every write is acknowledged (the client retries with its
    // idempotency key through the short pause).
    const before = view.leaderId as string;
    const load = startWriters(cluster, { writers: 4, collection: 'switch' });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const switched = await cli(['switchover', '--url', url]);
    assert.equal(switched.code, 0, switched.stderr);
    assert.match(switched.stdout, /leadership moved .* in \d+ ms; longest pause between successful writes \d+ ms/);
    await new Promise((resolve) => setTimeout(resolve, 500));
    await load.stop();
    assert.deepEqual(load.failures, []);
    assert.ok(load.acked.size > 20, `only ${load.acked.size} writes`);
    const after = JSON.parse((await cli(['status', '--json', '--url', url])).stdout);
    assert.notEqual(after.leaderId, before);

    const bad: [string[], RegExp][] = [
      [['put', 'todos', 't2', 'not json', '--url', url], /not valid JSON/],
      [['get', 'todos', 'missing', '--url', url], /NOT_FOUND/],
      [['get', '_bad', 'x', '--url', url], /INVALID_COLLECTION/],
      [['put', 'todos', 't1', '{}', '--if-match', '99', '--url', url], /PRECONDITION_FAILED/],
      [['get', 'todos', 't1', '--url', '127.0.0.1:9'], /cannot reach/],
      [['switchover', '--to', 'n9', '--url', url], /unknown node 'n9'/],
      [['switchover', '--to', after.leaderId, '--url', url], /already the leader/],
      [['status', '--url', 'http://[bad'], /node address/],
      [['get', 'todos', '--url', url], /missing required argument/],
      [['list', 'todos', '--limit', '0', '--url', url], /positive integer/],
      [['watch', '--after', 'x', '--url', url], /log index/],
      [['switchover', '--max-lag', 'abc', '--url', url], /--max-lag must be a whole number/],
      [['switchover', '--timeout', '0', '--url', url], /--timeout must be at least 1 ms/],
      [['failover', '--url', url], /needs --force/],
    ];
    for (const [args, expected] of bad) {
      const result = await cli(args);
      assert.notEqual(result.code, 0, `${args.join(' ')} should fail`);
      assert.match(result.stderr, expected, `${args.join(' ')}: ${result.stderr}`);
      assert.ok(result.stderr.trim().split('\n').length <= 3, `one clear line: ${result.stderr}`);
    }
  } catch (error) {
    console.error(cluster.logs());
    throw error;
  } finally {
    cluster.stopAll();
  }
});
