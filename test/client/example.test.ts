// Goal: the example app (examples/todo-api.ts, an HTTP todo API built on the client) keeps
// serving through a leader failover: every request made to it while the leader is killed
// succeeds, and the todos it created are all there afterwards, once each. It also runs as a
// standalone program, importing the client through the package's exports map; and the tour of
// every documented method (examples/tour.ts) runs as docs/client.md says.
// Method: a 3-node ProcessCluster; the app runs in this process (startTodoApi) while 4 loops
// POST, GET and PATCH todos through it over HTTP; SIGKILL of the leader mid-run; then the
// todo list is compared with what was created. A second run starts the example as a child
// process (`node --import tsx examples/todo-api.ts`), does a few round trips, and runs the tour
// in this process against the same cluster.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { http } from '../cluster/process_cluster.ts';
import { startTodoApi } from '../../examples/todo-api.ts';
import { tour } from '../../examples/tour.ts';
import { ProcessCluster, connectionString, waitFor } from './helpers.ts';

test('example: the todo API keeps answering through kill -9 of the leader', { timeout: 90_000 }, async (t) => {
  const cluster = await ProcessCluster.start({ nodes: 3 });
  const api = await startTodoApi({ connection: connectionString(cluster, 'timeoutMs=15000'), port: 0 });
  let running = true;
  let loops: Promise<void>[] = [];
  try {
    const created = new Set<string>();
    const failures: string[] = [];
    const latencies: { at: number; ms: number }[] = [];
    const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<any> => {
      const started = performance.now();
      const result = await http(method, `${api.url}${path}`, body, headers, 20_000);
      latencies.push({ at: performance.now(), ms: performance.now() - started });
      if (result.status >= 300) failures.push(`${method} ${path}: ${result.status} ${JSON.stringify(result.body)}`);
      return result;
    };
    loops = Array.from({ length: 4 }, async (_, loop) => {
      for (let i = 0; running; i++) {
        const post = await call('POST', '/todos', { title: `loop ${loop} todo ${i}` });
        if (post.status >= 300) continue;
        created.add(post.body.id);
        const get = await call('GET', `/todos/${post.body.id}`);
        if (get.status !== 200) continue; // recorded in failures
        if (get.body.title !== `loop ${loop} todo ${i}`) failures.push(`GET /todos/${post.body.id}: wrong title ${JSON.stringify(get.body)}`);
        await call('PATCH', `/todos/${post.body.id}`, { done: true }, { 'if-match': String(get.body.version) });
      }
    });
    await waitFor('todos before the kill', () => created.size >= 60, 20_000);
    const leader = await cluster.waitForLeader();
    const killedAt = performance.now();
    await cluster.kill(leader);
    await waitFor('todos after the kill', () => latencies.filter((latency) => latency.at > killedAt).length >= 150, 30_000);
    running = false;
    await Promise.all(loops);

    assert.deepEqual(failures, [], 'every request to the API succeeded');
    const list = await call('GET', '/todos');
    const listed = list.body.todos as { id: string; done: boolean; version: number }[];
    assert.equal(listed.length, created.size, 'each todo exists once');
    assert.ok(listed.every((todo) => created.has(todo.id) && todo.done && todo.version === 2));
    const slowest = Math.max(...latencies.filter((latency) => latency.at > killedAt).map((latency) => latency.ms));
    t.diagnostic(`${latencies.length} API requests, none failed; ${created.size} todos, each once; slowest request after the kill: ${slowest.toFixed(0)} ms`);
  } catch (error) {
    console.error(cluster.logs());
    throw error;
  } finally {
    running = false;
    await Promise.race([Promise.allSettled(loops), new Promise((resolve) => setTimeout(resolve, 20_000))]);
    await api.close();
    cluster.stopAll();
  }
});

test('example: runs as a standalone program; the docs tour (every method of docs/client.md) runs as documented', { timeout: 60_000 }, async (t) => {
  const cluster = await ProcessCluster.start({ nodes: 3 });
  const script = fileURLToPath(new URL('../../examples/todo-api.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    env: { ...process.env, UNDERSTUDY_URL: connectionString(cluster), PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    const url = await waitFor('the API to listen', () => /listening on (http:\/\/\S+)/.exec(output)?.[1], 20_000);
    const post = await http('POST', `${url}/todos`, { title: 'standalone' }, { 'idempotency-key': 'standalone-1' });
    assert.equal(post.status, 201);
    const retry = await http('POST', `${url}/todos`, { title: 'standalone' }, { 'idempotency-key': 'standalone-1' });
    assert.equal(retry.status, 200, 'a retried create with the same key is answered, not applied again');
    assert.equal(retry.body.id, post.body.id);
    const missing = await http('GET', `${url}/todos/nope`);
    assert.equal(missing.status, 404);
    const health = await http('GET', `${url}/healthz`);
    assert.equal(health.body.leader.id, await cluster.waitForLeader());
    const lines: string[] = [];
    await tour(connectionString(cluster), (line) => lines.push(line));
    assert.equal(lines.at(-1), 'closed');
    for (const line of lines) t.diagnostic(`tour: ${line}`);
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => {
      const timer = setTimeout(() => { child.kill('SIGKILL'); resolve(null); }, 5_000);
      child.once('exit', () => { clearTimeout(timer); resolve(null); });
    });
    cluster.stopAll();
  }
});
