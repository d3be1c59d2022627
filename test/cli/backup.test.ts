// Goal (issue 6): `understudy backup` writes a consistent, checksummed snapshot file that holds
// every write acknowledged before the backup started, and `understudy restore` seeds a new cluster
// from it with identical contents (documents, versions, indexes, idempotency records), which then
// accepts new writes. Every bad input of both commands is refused with one clear line and a
// non-zero exit, and writes nothing. A flipped byte anywhere in a backup file, or a truncation, is
// refused.
// Method: the file format directly (src/server/backup.ts); GET /v1/admin/backup on an in-process
// single node; real 3-node clusters of processes (test/cluster/process_cluster.ts) for backup
// under write load and restore into a fresh cluster; the CLI as a child process with a bounded
// timeout; `understudy dev --restore` through test/ui/dev_process.ts. Everything on loopback;
// processes are stopped by PID in `finally`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyCommand, MemoryDocumentStore, type BatchCommand } from '../../src/documents/index.ts';
import {
  BackupFormatError, encodeBackup, encodeBackupPrefix, parseBackup, parseBackupHeader, type BackupHeader,
} from '../../src/server/backup.ts';
import { ProcessCluster, http, waitFor } from '../cluster/process_cluster.ts';
import { listAll, startWriters } from '../cluster/writers.ts';
import { assertError, startTestServer, JSON_HEADERS } from '../server/helpers.ts';
import { DevProcess } from '../ui/dev_process.ts';
import { cli as runCli } from './run_cli.ts';

const cli = (args: string[], timeoutMs = 90_000): ReturnType<typeof runCli> => runCli(args, timeoutMs);



/** A document snapshot of `docs` documents applied as entries 1..n (one batch per 10 docs), and its applied index. */
function makeSnapshot(docs: number, collection = 'things'): { bytes: Uint8Array; appliedIndex: number; term: number; count: number } {
  const store = new MemoryDocumentStore();
  let index = 0;
  for (let start = 0; start < docs; start += 10) {
    index += 1;
    const ops = [];
    for (let i = start; i < Math.min(docs, start + 10); i++) ops.push({ action: 'put' as const, collection, id: `d${i}`, body: { i, text: `document ${i}` } });
    const command: BatchCommand = { type: 'batch', ops, timestampMs: 1_700_000_000_000 + index, requestId: `r${index}`, idempotencyKey: `key-${index}` };
    applyCommand(store, command, { index, term: 1 });
  }
  return { bytes: store.snapshot(), appliedIndex: index, term: 1, count: store.documentCount() };
}

function makeBackupFile(docs = 25): { bytes: Buffer; header: BackupHeader } {
  const snapshot = makeSnapshot(docs);
  const bytes = encodeBackup({
    clusterId: 'test', takenFrom: 'n1', appliedIndex: snapshot.appliedIndex, term: snapshot.term,
    createdAt: new Date().toISOString(), documentCount: snapshot.count,
  }, snapshot.bytes);
  return { bytes, header: parseBackup(bytes).header };
}

/** Every file and directory under `dir` with a hash of its content: what "nothing changed" means. */
function treeOf(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (path: string, rel: string): void => {
    if (!existsSync(path)) return;
    if (statSync(path).isDirectory()) {
      out[`${rel}/`] = 'dir';
      for (const name of readdirSync(path).sort()) walk(join(path, name), `${rel}/${name}`);
    } else {
      out[rel] = createHash('sha256').update(readFileSync(path)).digest('hex');
    }
  };
  walk(dir, '');
  return out;
}

/** Runs `work` over `items` with at most `limit` at a time (the CLI is a process each). */
async function pool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item);
    }
  }));
}

function assertOneLineFailure(result: { code: number; stderr: string; stdout: string }, expected: RegExp, what: string): void {
  assert.notEqual(result.code, 0, `${what} should fail; stdout: ${result.stdout}`);
  assert.match(result.stderr, expected, `${what}: ${result.stderr}`);
  assert.equal(result.stderr.trim().split('\n').length, 1, `${what}: one line on stderr, got: ${result.stderr}`);
  assert.match(result.stderr, /^understudy: /, what);
  assert.equal(result.stdout, '', `${what}: nothing on stdout`);
}

// -----------------------------------------------------------------------------------------------

test('backup format: round trip; every flipped byte, every truncation and trailing bytes are refused', () => {
  const { bytes, header } = makeBackupFile(12);
  const parsed = parseBackup(bytes);
  assert.equal(parsed.header.format, 'understudy-backup');
  assert.equal(parsed.header.version, 1);
  assert.equal(parsed.header.appliedIndex, header.appliedIndex);
  assert.equal(parsed.header.documentCount, 12);
  assert.equal(parsed.header.bytes, parsed.body.byteLength);
  assert.equal(parsed.header.sha256, createHash('sha256').update(parsed.body).digest('hex'));
  assert.equal(parsed.headerBytes + parsed.body.byteLength, bytes.byteLength);
  // The body is the store's snapshot, byte for byte: restoring it gives the same content.
  const restored = new MemoryDocumentStore();
  assert.equal(restored.restore(parsed.body), null);
  assert.equal(restored.documentCount(), 12);
  assert.ok(bytes.subarray(0, 20).toString('utf8').startsWith('UNDERSTUDY-BACKUP 1\n'));

  // A flipped bit or byte anywhere: magic, header, header checksum line, body.
  for (let at = 0; at < bytes.byteLength; at++) {
    for (const mask of [0x01, 0x80, 0xff]) {
      const corrupt = Buffer.from(bytes);
      corrupt[at] = (corrupt[at] as number) ^ mask;
      assert.throws(() => parseBackup(corrupt), BackupFormatError, `byte ${at} ^ ${mask} was accepted`);
    }
  }
  // Every truncation, and anything appended.
  for (let length = 0; length < bytes.byteLength; length++) {
    assert.throws(() => parseBackup(bytes.subarray(0, length)), BackupFormatError, `truncated to ${length} bytes was accepted`);
  }
  assert.throws(() => parseBackup(Buffer.concat([bytes, Buffer.from('x')])), /1 unexpected bytes after/);
  assert.throws(() => parseBackup(bytes.subarray(0, bytes.byteLength - 1)), /truncated: the header announces \d+ body bytes, the file holds \d+/);
  assert.throws(() => parseBackup(bytes.subarray(0, 30)), /truncated: it ends inside the header/);
  assert.throws(() => parseBackup(Buffer.alloc(0)), /is empty/);
  assert.throws(() => parseBackup(Buffer.from('hello world\n')), /not an Understudy backup/);
  assert.throws(() => parseBackup(Buffer.from('UNDERSTUDY-BACKUP 2\n{}\n')), /format version "2"/);
  // A body flip is a checksum failure, a header flip a header failure: the message says which.
  const bodyFlip = Buffer.from(bytes);
  bodyFlip[bytes.byteLength - 5] = (bodyFlip[bytes.byteLength - 5] as number) ^ 1;
  assert.throws(() => parseBackup(bodyFlip), /failed its checksum/);
  assert.doesNotThrow(() => parseBackupHeader(bodyFlip), 'the header alone is intact');
  const headerFlip = Buffer.from(bytes);
  headerFlip[40] = (headerFlip[40] as number) ^ 1;
  assert.throws(() => parseBackup(headerFlip), /corrupt header/);
  // The writer refuses to describe a body it was not given properly.
  assert.throws(() => encodeBackupPrefix({ ...header, appliedIndex: -1 }), /appliedIndex/);
  assert.throws(() => encodeBackupPrefix({ ...header, sha256: 'abc' }), /sha256/);
});

test('GET /v1/admin/backup: a consistent, self-describing file; auth, parameters, one backup at a time', { timeout: 60_000 }, async () => {
  const server = await startTestServer({ authToken: 'backup-token-123' }, 'backup-api');
  const auth = { authorization: 'Bearer backup-token-123' };
  try {
    let lastIndex = 0;
    for (let i = 0; i < 20; i++) {
      const put = await server.inject({ method: 'PUT', url: `/v1/docs/items/i${i}`, headers: { ...JSON_HEADERS, ...auth, 'idempotency-key': `item-${i}` }, payload: JSON.stringify({ i }) });
      assert.equal(put.statusCode, 201, put.body);
      lastIndex = put.json().index;
    }
    assertError(await server.inject({ url: '/v1/admin/backup' }), 401, 'UNAUTHORIZED');
    assertError(await server.inject({ url: '/v1/admin/backup', headers: { authorization: 'Bearer wrong' } }), 401, 'UNAUTHORIZED');
    assertError(await server.inject({ url: '/v1/admin/backup?bogus=1', headers: auth }), 400, 'UNKNOWN_PARAMETER');
    assertError(await server.inject({ url: '/v1/admin/backup?timeoutMs=0', headers: auth }), 400, 'INVALID_PARAMETER');
    assertError(await server.inject({ url: '/v1/admin/backup?timeoutMs=abc', headers: auth }), 400, 'INVALID_PARAMETER');
    assertError(await server.inject({ url: '/v1/admin/backup?timeoutMs=1&timeoutMs=2', headers: auth }), 400, 'INVALID_PARAMETER');
    assertError(await server.inject({ method: 'POST', url: '/v1/admin/backup', headers: auth }), 404, 'ROUTE_NOT_FOUND');
    // No HEAD: it would take a whole backup to answer nothing.
    assert.equal((await server.inject({ method: 'HEAD', url: '/v1/admin/backup', headers: auth })).statusCode, 404);

    const response = await server.inject({ url: '/v1/admin/backup?timeoutMs=5000', headers: auth });
    assert.equal(response.statusCode, 200, response.body);
    assert.equal(response.headers['content-type'], 'application/octet-stream');
    assert.equal(Number(response.headers['content-length']), response.rawPayload.byteLength);
    assert.match(String(response.headers['content-disposition']), /^attachment; filename="understudy-test-\d+\.backup"$/);
    const { header, body } = parseBackup(response.rawPayload);
    const node = server.server.node;
    assert.equal(header.clusterId, 'test');
    assert.equal(header.takenFrom, 'n1');
    assert.ok(header.appliedIndex >= lastIndex, `backup at ${header.appliedIndex}, last acknowledged write at ${lastIndex}`);
    assert.equal(header.appliedIndex, node.replica.appliedIndex, 'nothing was written meanwhile');
    assert.equal(header.term, node.core.term);
    assert.equal(header.documentCount, 20);
    assert.equal(response.headers['x-backup-applied-index'], String(header.appliedIndex));
    assert.equal(response.headers['x-backup-sha256'], header.sha256);
    assert.ok(Math.abs(Date.parse(header.createdAt) - Date.now()) < 60_000);
    assert.deepEqual(Buffer.from(body), Buffer.from(node.documentStore.snapshot()), 'the body is the state machine snapshot');

    // One backup at a time per node: a second request while one runs is refused, retryable.
    const [first, second] = await Promise.all([
      server.inject({ url: '/v1/admin/backup', headers: auth }),
      server.inject({ url: '/v1/admin/backup', headers: auth }),
    ]);
    assert.equal(first?.statusCode, 200, first?.body);
    assert.ok(second !== undefined);
    assertError(second, 429, 'BACKUP_IN_PROGRESS');
    assert.equal(second.headers['retry-after'], '1');
    // ... and the next one, after it finished, is served.
    const put = await server.inject({ method: 'PUT', url: '/v1/docs/items/later', headers: { ...JSON_HEADERS, ...auth }, payload: '{"later":true}' });
    assert.equal(put.statusCode, 201);
    const again = await server.inject({ url: '/v1/admin/backup', headers: auth });
    assert.equal(again.statusCode, 200, again.body);
    const later = parseBackup(again.rawPayload).header;
    assert.ok(later.appliedIndex >= put.json().index);
    assert.equal(later.documentCount, 21);
  } finally {
    await server.stop();
  }
});

test('cli: backup from a follower under write load, restore into a fresh 3-node cluster: identical contents', { timeout: 300_000 }, async () => {
  const work = mkdtempSync(join(tmpdir(), 'understudy-backup-'));
  const source = await ProcessCluster.start();
  let restored: ProcessCluster | null = null;
  try {
    const leader = await source.waitForLeader();
    const url = source.url(leader);
    // Documents with history: batches, patches (version 2), deletes, idempotency keys.
    let lastBaseIndex = 0;
    for (let batch = 0; batch < 5; batch++) {
      const ops = Array.from({ length: 100 }, (_, i) => ({ op: 'put', collection: 'base', id: `b${batch}-${i}`, body: { batch, i, tags: ['x', batch], nested: { deep: [i] } } }));
      const result = await http('POST', `${url}/v1/batch`, { ops }, {}, 15_000);
      assert.equal(result.status, 200, JSON.stringify(result.body));
      lastBaseIndex = result.body.index;
    }
    for (let i = 0; i < 20; i++) {
      const result = await http('PATCH', `${source.url('n2')}/v1/docs/base/b0-${i}`, { patched: true, nested: null });
      assert.equal(result.status, 200, JSON.stringify(result.body));
    }
    for (let i = 0; i < 10; i++) assert.equal((await http('DELETE', `${url}/v1/docs/base/b1-${i}`)).status, 200);
    const keyed = new Map<string, number>();
    for (let i = 0; i < 10; i++) {
      const result = await http('PUT', `${url}/v1/docs/keyed/k${i}`, { i }, { 'idempotency-key': `restore-key-${i}` });
      assert.equal(result.status, 201, JSON.stringify(result.body));
      keyed.set(`k${i}`, result.body.index);
      lastBaseIndex = result.body.index;
    }

    // Writes under way while the backup is taken, through every node.
    const load = startWriters(source, { writers: 3, collection: 'during' });
    await waitFor('writes under way', () => load.acked.size >= 30, 60_000);
    const follower = ['n1', 'n2', 'n3'].find((id) => id !== leader) as string;
    const ackedBefore = new Map(load.acked); // every one of these was acknowledged before the backup started
    const backupFile = join(work, 'source.backup');
    const backed = await cli(['backup', '--node', source.url(follower), '--out', backupFile]);
    await waitFor('writes after the backup', () => load.acked.size >= ackedBefore.size + 10, 60_000);
    await load.stop();
    assert.deepEqual(load.failures, []);
    assert.equal(backed.code, 0, backed.stderr);
    assert.match(backed.stdout, /^backup \S+: index \d+ term \d+ from n\d \(cluster test\), \d+ documents, \d+ bytes, sha256 [0-9a-f]{64}, \d+ ms\n$/);
    assert.equal(statSync(backupFile).mode & 0o777, 0o600, 'a backup holds every document: owner only');
    assert.deepEqual(readdirSync(work), ['source.backup'], 'no temporary file left behind');

    const { header, body } = parseBackup(readFileSync(backupFile));
    assert.equal(header.takenFrom, follower, 'served by the follower that was asked');
    const snapshot = JSON.parse(Buffer.from(body).toString('utf8')) as { documents: any[] };
    const inBackup = new Map<string, Map<string, any>>();
    for (const doc of snapshot.documents) {
      if (!inBackup.has(doc.collection)) inBackup.set(doc.collection, new Map());
      inBackup.get(doc.collection)?.set(doc.id, doc);
    }
    assert.equal(header.documentCount, snapshot.documents.length);
    // Every write acknowledged before the backup started is in it.
    const during = inBackup.get('during') ?? new Map();
    const missing = [...ackedBefore.keys()].filter((id) => !during.has(id));
    assert.deepEqual(missing, [], 'acknowledged writes missing from the backup');
    const maxAcked = Math.max(lastBaseIndex, ...[...ackedBefore.values()].map((ack) => ack.index));
    assert.ok(header.appliedIndex >= maxAcked, `backup index ${header.appliedIndex} < acknowledged ${maxAcked}`);
    assert.equal(inBackup.get('base')?.size, 490);
    assert.equal(inBackup.get('base')?.get('b0-3')?.version, 2);
    assert.deepEqual(inBackup.get('base')?.get('b0-3')?.body, { batch: 0, i: 3, tags: ['x', 0], patched: true });
    assert.equal(inBackup.get('base')?.has('b1-3'), false);
    assert.equal(inBackup.get('keyed')?.size, 10);

    // Restore: every member of a new cluster (new ports, new data directories) from the same file.
    const restoreTimes: number[] = [];
    restored = await ProcessCluster.start({
      beforeStart: async (cluster) => {
        const members = [...cluster.nodes.values()].map((node) => `${node.id}@${node.peer}@${node.clientUrl}`).join(',');
        for (const id of cluster.nodes.keys()) {
          const started = Date.now();
          const result = await cli(['restore', '--backup', backupFile, '--data', cluster.dataDir(id), '--id', id, '--members', members]);
          restoreTimes.push(Date.now() - started);
          assert.equal(result.code, 0, result.stderr);
          assert.match(result.stdout, new RegExp(`^restored ${id} into \\S+ from \\S+: index ${header.appliedIndex} term ${header.term} .* ${header.documentCount} documents, voters n1,n2,n3, \\d+ ms;`));
          const record = JSON.parse(readFileSync(join(cluster.dataDir(id), 'restored-from.json'), 'utf8'));
          assert.equal(record.sha256, header.sha256);
        }
      },
    });
    await restored.waitForConvergence(30_000);
    const restoredCluster = restored;

    // Identical contents, on every node: documents, versions, indexes, timestamps.
    for (const collection of ['base', 'during', 'keyed']) {
      const expected = inBackup.get(collection) ?? new Map();
      for (const id of ['n1', 'n2', 'n3']) {
        const docs = await listAll(restoredCluster.url(id), collection, 'linearizable');
        assert.deepEqual(docs, expected, `${collection} on restored ${id}`);
      }
    }
    // The collections that did not change after the backup equal the source's, through the API.
    for (const collection of ['base', 'keyed']) {
      assert.deepEqual(await listAll(restoredCluster.url('n1'), collection), await listAll(source.url(leader), collection), collection);
    }

    // Idempotency keys recorded before the backup still dedupe after the restore.
    const retry = await http('PUT', `${restoredCluster.url('n3')}/v1/docs/keyed/k4`, { different: true }, { 'idempotency-key': 'restore-key-4' });
    assert.equal(retry.status, 200, JSON.stringify(retry.body));
    assert.equal(retry.body.duplicate, true);
    assert.equal(retry.body.index, keyed.get('k4'));
    assert.deepEqual((await http('GET', `${restoredCluster.url('n1')}/v1/docs/keyed/k4`)).body.body, { i: 4 });

    // The restored cluster accepts new writes, after the backup's index, visible on every node.
    const fresh = await http('PUT', `${restoredCluster.url('n2')}/v1/docs/fresh/one`, { after: 'restore' });
    assert.equal(fresh.status, 201, JSON.stringify(fresh.body));
    assert.ok(fresh.body.index > header.appliedIndex);
    for (const id of ['n1', 'n3']) {
      const read = await http('GET', `${restoredCluster.url(id)}/v1/docs/fresh/one`);
      assert.equal(read.status, 200);
      assert.deepEqual(read.body.body, { after: 'restore' });
    }
    const view = await restoredCluster.status('n1');
    assert.deepEqual([...view.membership.voters].sort(), ['n1', 'n2', 'n3']);
    console.log(`backup: ${backed.stdout.trim()}; restore per node (CLI process): ${restoreTimes.join(', ')} ms`);
  } catch (error) {
    console.error(source.logs());
    if (restored !== null) console.error(restored.logs());
    throw error;
  } finally {
    source.stopAll();
    restored?.stopAll();
    rmSync(work, { recursive: true, force: true });
  }
});

test('cli: every bad input of backup and restore is refused with one line, a non-zero exit, and nothing written', { timeout: 420_000 }, async () => {
  const work = mkdtempSync(join(tmpdir(), 'understudy-backup-bad-'));
  const server = await startTestServer({ authToken: 'bad-input-token' }, 'backup-bad');
  const fakes: Server[] = [];
  try {
    const put = await server.inject({ method: 'PUT', url: '/v1/docs/x/1', headers: { ...JSON_HEADERS, authorization: 'Bearer bad-input-token' }, payload: '{"a":1}' });
    assert.equal(put.statusCode, 201);
    const nodeUrl = server.server.clientUrl;
    const valid = makeBackupFile(25);

    // Servers that answer the backup request wrongly.
    const fake = async (handler: (response: import('node:http').ServerResponse) => void): Promise<string> => {
      const http = createServer((_request, response) => handler(response));
      fakes.push(http);
      await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
      const address = http.address();
      return `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
    };
    const garbageUrl = await fake((response) => response.end('hello, I am not a backup\n'));
    const flipped = Buffer.from(valid.bytes);
    flipped[flipped.byteLength - 10] = (flipped[flipped.byteLength - 10] as number) ^ 1;
    const flippedUrl = await fake((response) => response.end(flipped));
    const truncatedUrl = await fake((response) => {
      response.writeHead(200, { 'content-length': String(valid.bytes.byteLength) });
      response.write(valid.bytes.subarray(0, 100));
      setTimeout(() => response.destroy(), 50);
    });
    const shortUrl = await fake((response) => response.end(valid.bytes.subarray(0, valid.bytes.byteLength - 7)));
    const html500Url = await fake((response) => {
      response.writeHead(500, { 'content-type': 'text/html' });
      response.end('<html>oops</html>');
    });
    const closedUrl = await fake(() => undefined);
    const closedServer = fakes.at(-1) as Server;
    await new Promise<void>((resolve) => closedServer.close(() => resolve()));
    closedServer.closeAllConnections();

    interface Case { name: string; args: (dir: string) => string[]; setup?: (dir: string) => void; expect: RegExp }
    const out = (dir: string): string => join(dir, 'out.backup');
    const backupCases: Case[] = [
      { name: 'no flags', args: () => ['backup'], expect: /--node <url> is required/ },
      { name: 'no --out', args: () => ['backup', '--node', nodeUrl, '--token', 'bad-input-token'], expect: /--out <file> is required/ },
      { name: 'bad node address', args: (dir) => ['backup', '--node', 'http://[bad', '--out', out(dir)], expect: /expected a node address/ },
      { name: 'node URL with a path', args: (dir) => ['backup', '--node', 'http://127.0.0.1:7001/v1', '--out', out(dir)], expect: /expected a node address/ },
      { name: '--node and --url disagree', args: (dir) => ['backup', '--node', nodeUrl, '--url', '127.0.0.1:9', '--out', out(dir)], expect: /different nodes/ },
      { name: 'missing --node value', args: () => ['backup', '--node'], expect: /argument missing/ },
      { name: 'unknown flag', args: (dir) => ['backup', '--node', nodeUrl, '--out', out(dir), '--bogus'], expect: /unknown option '--bogus'/ },
      { name: 'extra argument', args: (dir) => ['backup', 'extra', '--node', nodeUrl, '--out', out(dir)], expect: /too many arguments/ },
      { name: 'bad --timeout', args: (dir) => ['backup', '--node', nodeUrl, '--out', out(dir), '--timeout', '0'], expect: /positive number of milliseconds/ },
      { name: 'output directory missing', args: (dir) => ['backup', '--node', nodeUrl, '--token', 'bad-input-token', '--out', join(dir, 'nope', 'out.backup')], expect: /directory .*nope does not exist/ },
      { name: 'output is a directory', setup: (dir) => mkdirSync(out(dir)), args: (dir) => ['backup', '--node', nodeUrl, '--token', 'bad-input-token', '--out', out(dir)], expect: /is a directory/ },
      { name: 'output exists, no --force', setup: (dir) => writeFileSync(out(dir), 'precious'), args: (dir) => ['backup', '--node', nodeUrl, '--token', 'bad-input-token', '--out', out(dir)], expect: /already exists \(use --force to replace it\)/ },
      { name: 'no token', args: (dir) => ['backup', '--node', nodeUrl, '--out', out(dir)], expect: /UNAUTHORIZED: .*\(HTTP 401\); nothing was written/ },
      { name: 'wrong token', args: (dir) => ['backup', '--node', nodeUrl, '--token', 'wrong', '--out', out(dir)], expect: /UNAUTHORIZED/ },
      { name: 'unreachable node', args: (dir) => ['backup', '--node', closedUrl, '--out', out(dir)], expect: /cannot reach http:\/\/127\.0\.0\.1:\d+/ },
      { name: 'not a backup', args: (dir) => ['backup', '--node', garbageUrl, '--out', out(dir)], expect: /is not an Understudy backup.*nothing was written/ },
      { name: 'checksum mismatch', args: (dir) => ['backup', '--node', flippedUrl, '--out', out(dir)], expect: /failed its checksum.*nothing was written/ },
      { name: 'download broken off', args: (dir) => ['backup', '--node', truncatedUrl, '--out', out(dir)], expect: /(broke off|incomplete).*nothing was written/ },
      { name: 'short download', args: (dir) => ['backup', '--node', shortUrl, '--out', out(dir)], expect: /truncated: the header announces \d+ body bytes.*nothing was written/ },
      { name: 'server error page', args: (dir) => ['backup', '--node', html500Url, '--out', out(dir)], expect: /HTTP 500 from .*<html>oops<\/html>; nothing was written/ },
    ];

    const members = 'n1@127.0.0.1:7101@http://127.0.0.1:7001,n2@127.0.0.1:7102@http://127.0.0.1:7002,n3@127.0.0.1:7103@http://127.0.0.1:7003';
    const write = (dir: string, name: string, bytes: Uint8Array | string): string => {
      writeFileSync(join(dir, name), bytes);
      return join(dir, name);
    };
    const flip = (at: number): Buffer => {
      const copy = Buffer.from(valid.bytes);
      copy[at] = (copy[at] as number) ^ 1;
      return copy;
    };
    const notSnapshot = encodeBackup({ clusterId: 'test', takenFrom: 'n1', appliedIndex: 3, term: 1, createdAt: new Date().toISOString(), documentCount: 0 }, Buffer.from('{"not":"a snapshot"}'));
    const snapshot = makeSnapshot(5);
    const disagreeing = encodeBackup({ clusterId: 'test', takenFrom: 'n1', appliedIndex: snapshot.appliedIndex + 5, term: 1, createdAt: new Date().toISOString(), documentCount: snapshot.count }, snapshot.bytes);
    const miscounted = encodeBackup({ clusterId: 'test', takenFrom: 'n1', appliedIndex: snapshot.appliedIndex, term: 1, createdAt: new Date().toISOString(), documentCount: snapshot.count + 1 }, snapshot.bytes);
    const orphanDocs = encodeBackup({ clusterId: 'test', takenFrom: 'n1', appliedIndex: 0, term: 0, createdAt: new Date().toISOString(), documentCount: 1 },
      Buffer.from('{"format":"understudy/documents-snapshot","version":1,"documents":[{"collection":"c","id":"a","body":{},"version":1,"index":1,"updatedAtMs":1}],"meta":[]}'));
    const restoreArgs = (dir: string, file: string, extra: string[] = []): string[] => ['restore', '--backup', file, '--data', join(dir, 'data'), '--id', 'n1', '--members', members, ...extra];
    const restoreCases: Case[] = [
      { name: 'no flags', args: () => ['restore'], expect: /--backup <file> is required/ },
      { name: 'no --id', args: (dir) => ['restore', '--backup', write(dir, 'b', valid.bytes), '--data', join(dir, 'data'), '--members', members], expect: /--id <id> is required/ },
      { name: 'no --data', args: (dir) => ['restore', '--backup', write(dir, 'b', valid.bytes), '--id', 'n1', '--members', members], expect: /--data <dir> is required/ },
      { name: 'no --members', args: (dir) => ['restore', '--backup', write(dir, 'b', valid.bytes), '--id', 'n1', '--data', join(dir, 'data')], expect: /--members <list> is required/ },
      { name: 'unknown flag', args: (dir) => restoreArgs(dir, write(dir, 'b', valid.bytes), ['--secret', 'x']), expect: /unknown option '--secret'/ },
      { name: 'extra argument', args: (dir) => [...restoreArgs(dir, write(dir, 'b', valid.bytes)), 'extra'], expect: /too many arguments/ },
      { name: 'backup file missing', args: (dir) => restoreArgs(dir, join(dir, 'missing.backup')), expect: /cannot read the backup .*missing\.backup: it does not exist/ },
      { name: 'backup is a directory', setup: (dir) => mkdirSync(join(dir, 'adir')), args: (dir) => restoreArgs(dir, join(dir, 'adir')), expect: /it is a directory/ },
      { name: 'empty file', args: (dir) => restoreArgs(dir, write(dir, 'b', '')), expect: /is empty/ },
      { name: 'wrong magic', args: (dir) => restoreArgs(dir, write(dir, 'b', '{"format":"understudy/documents-snapshot"}')), expect: /is not an Understudy backup/ },
      { name: 'unsupported version', args: (dir) => restoreArgs(dir, write(dir, 'b', Buffer.concat([Buffer.from('UNDERSTUDY-BACKUP 9\n'), valid.bytes.subarray(20)]))), expect: /format version "9"; this understudy reads version 1/ },
      { name: 'truncated body', args: (dir) => restoreArgs(dir, write(dir, 'b', valid.bytes.subarray(0, valid.bytes.byteLength - 100))), expect: /truncated: the header announces \d+ body bytes, the file holds \d+/ },
      { name: 'truncated header', args: (dir) => restoreArgs(dir, write(dir, 'b', valid.bytes.subarray(0, 60))), expect: /truncated: it ends inside the header/ },
      { name: 'trailing bytes', args: (dir) => restoreArgs(dir, write(dir, 'b', Buffer.concat([valid.bytes, Buffer.from('\n')]))), expect: /1 unexpected bytes after/ },
      { name: 'flipped body byte', args: (dir) => restoreArgs(dir, write(dir, 'b', flip(valid.bytes.byteLength - 20))), expect: /failed its checksum: the body's sha256 is/ },
      { name: 'flipped header byte', args: (dir) => restoreArgs(dir, write(dir, 'b', flip(70))), expect: /has a corrupt header/ },
      { name: 'body not a snapshot', args: (dir) => restoreArgs(dir, write(dir, 'b', notSnapshot)), expect: /body that is not a valid document snapshot/ },
      { name: 'header and body disagree (index)', args: (dir) => restoreArgs(dir, write(dir, 'b', disagreeing)), expect: /disagrees with itself: the header says index \d+ term 1, the body holds index \d+ term 1/ },
      { name: 'header and body disagree (count)', args: (dir) => restoreArgs(dir, write(dir, 'b', miscounted)), expect: /disagrees with itself: the header says 6 documents, the body holds 5/ },
      { name: 'documents without an applied index', args: (dir) => restoreArgs(dir, write(dir, 'b', orphanDocs)), expect: /holds 1 documents but no applied log index/ },
      { name: 'data directory not empty', setup: (dir) => { mkdirSync(join(dir, 'data')); writeFileSync(join(dir, 'data', 'old'), 'x'); }, args: (dir) => restoreArgs(dir, write(dir, 'b', valid.bytes)), expect: /data directory .* is not empty/ },
      { name: 'data directory is a file', setup: (dir) => writeFileSync(join(dir, 'data'), 'x'), args: (dir) => restoreArgs(dir, write(dir, 'b', valid.bytes)), expect: /is not a directory/ },
      { name: 'data directory parent missing', args: (dir) => ['restore', '--backup', write(dir, 'b', valid.bytes), '--data', join(dir, 'no', 'data'), '--id', 'n1', '--members', members], expect: /cannot create the data directory .*: .* does not exist/ },
      { name: 'member list syntax', args: (dir) => ['restore', '--backup', write(dir, 'b', valid.bytes), '--data', join(dir, 'data'), '--id', 'n1', '--members', 'n1@127.0.0.1:7101'], expect: /member 'n1@127\.0\.0\.1:7101' must look like id@peerHost:peerPort@http:\/\/clientHost:clientPort/ },
      { name: 'empty member list', args: (dir) => ['restore', '--backup', write(dir, 'b', valid.bytes), '--data', join(dir, 'data'), '--id', 'n1', '--members', ''], expect: /--members is empty/ },
      { name: 'duplicate member id', args: (dir) => ['restore', '--backup', write(dir, 'b', valid.bytes), '--data', join(dir, 'data'), '--id', 'n1', '--members', 'n1@127.0.0.1:7101@http://127.0.0.1:7001,n1@127.0.0.1:7102@http://127.0.0.1:7002'], expect: /two members have the id 'n1'/ },
      { name: 'shared peer address', args: (dir) => ['restore', '--backup', write(dir, 'b', valid.bytes), '--data', join(dir, 'data'), '--id', 'n1', '--members', 'n1@127.0.0.1:7101@http://127.0.0.1:7001,n2@127.0.0.1:7101@http://127.0.0.1:7002'], expect: /share the peer address/ },
      { name: 'bad client URL', args: (dir) => ['restore', '--backup', write(dir, 'b', valid.bytes), '--data', join(dir, 'data'), '--id', 'n1', '--members', 'n1@127.0.0.1:7101@127.0.0.1:7001'], expect: /client URL '127\.0\.0\.1:7001' is not http/ },
      { name: 'id not a member', args: (dir) => ['restore', '--backup', write(dir, 'b', valid.bytes), '--data', join(dir, 'data'), '--id', 'n9', '--members', members], expect: /this node 'n9' is not among the members/ },
      { name: 'invalid id', args: (dir) => ['restore', '--backup', write(dir, 'b', valid.bytes), '--data', join(dir, 'data'), '--id', 'n 1', '--members', members], expect: /node id 'n 1' must be 1-64 characters/ },
      { name: 'config file missing', args: (dir) => ['restore', '--backup', write(dir, 'b', valid.bytes), '--config', join(dir, 'node.json')], expect: /cannot read the config file .*node\.json: it does not exist/ },
      { name: 'config file not JSON', args: (dir) => ['restore', '--backup', write(dir, 'b', valid.bytes), '--config', write(dir, 'node.json', '{id: n1')], expect: /config file .* is not valid JSON/ },
      { name: 'config members not a list', args: (dir) => ['restore', '--backup', write(dir, 'b', valid.bytes), '--config', write(dir, 'node.json', JSON.stringify({ id: 'n1', dataDir: join(dir, 'data'), members: 'n1@127.0.0.1:7101@http://127.0.0.1:7001' }))], expect: /members must be a list/ },
      { name: 'config of a joining node', args: (dir) => ['restore', '--backup', write(dir, 'b', valid.bytes), '--config', write(dir, 'node.json', JSON.stringify({ id: 'n1', dataDir: join(dir, 'data'), members: [{ id: 'n1', peer: '127.0.0.1:7101', client: 'http://127.0.0.1:7001' }], bootstrapVoters: [] }))], expect: /needs voters/ },
    ];

    const failures: string[] = [];
    const run = async (kind: string, entry: Case): Promise<void> => {
      const dir = mkdtempSync(join(work, 'case-'));
      entry.setup?.(dir);
      const args = entry.args(dir);
      const before = treeOf(dir);
      const result = await cli(args);
      try {
        assertOneLineFailure(result, entry.expect, `${kind} ${entry.name}`);
        assert.deepEqual(treeOf(dir), before, `${kind} ${entry.name}: something was written`);
      } catch (error) {
        failures.push((error as Error).message);
      }
    };
    await pool([...backupCases.map((entry) => ['backup', entry] as const), ...restoreCases.map((entry) => ['restore', entry] as const)], 3, ([kind, entry]) => run(kind, entry));
    assert.deepEqual(failures, []);

    // The good paths next to the bad ones: --force replaces, --config works.
    const dir = mkdtempSync(join(work, 'good-'));
    writeFileSync(out(dir), 'old');
    const forced = await cli(['backup', '--url', nodeUrl, '--token', 'bad-input-token', '--out', out(dir), '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(parseBackup(readFileSync(out(dir))).header.documentCount, 1);
    assert.deepEqual(readdirSync(dir), ['out.backup']);
    const config = write(dir, 'node.json', JSON.stringify({
      id: 'n2', dataDir: join(dir, 'n2'), clusterId: 'x', secret: 'ignored-here',
      members: [{ id: 'n1', peer: '127.0.0.1:7101', client: 'http://127.0.0.1:7001' }, { id: 'n2', peer: '127.0.0.1:7102', client: 'http://127.0.0.1:7002' }],
    }));
    const fromConfig = await cli(['restore', '--backup', out(dir), '--config', config]);
    assert.equal(fromConfig.code, 0, fromConfig.stderr);
    assert.match(fromConfig.stdout, /^restored n2 into .*n2 from .*: index \d+ .* 1 documents, voters n1,n2, \d+ ms;/);
    assert.ok(existsSync(join(dir, 'n2', 'log')));
    // Restoring twice into the same directory is refused: it is not empty any more.
    const twice = await cli(['restore', '--backup', out(dir), '--config', config]);
    assertOneLineFailure(twice, /is not empty/, 'second restore');
  } finally {
    for (const http of fakes) {
      http.closeAllConnections();
      http.close();
    }
    await server.stop();
    rmSync(work, { recursive: true, force: true });
  }
});

test('dev --restore: a local cluster seeded from a backup serves its content; a used data directory is refused', { timeout: 180_000 }, async () => {
  const work = mkdtempSync(join(tmpdir(), 'understudy-backup-dev-'));
  const valid = makeBackupFile(30);
  const file = join(work, 'dev.backup');
  writeFileSync(file, valid.bytes);
  // A data directory with a node's data already in it: refused before anything starts.
  mkdirSync(join(work, 'used', 'n2'), { recursive: true });
  writeFileSync(join(work, 'used', 'n2', 'keep'), 'x');
  const refused = await cli(['dev', '--data', join(work, 'used'), '--restore', file, '--base-port', '65500']);
  assertOneLineFailure(refused, /data directory .*n2 is not empty/, 'dev --restore into used data');
  assert.deepEqual(readdirSync(join(work, 'used')), ['n2']);
  let dev: DevProcess | null = null;
  try {
    dev = await DevProcess.start(3, ['--restore', file]);
    const devCluster = dev;
    await waitFor('every node to serve the restored documents', async () => {
      for (const id of ['n1', 'n2', 'n3']) {
        const docs = await listAll(devCluster.url(id), 'things', 'stale');
        if (docs.size !== 30) return false;
      }
      return true;
    }, 30_000);
    const doc = await http('GET', `${dev.url('n3')}/v1/docs/things/d7`);
    assert.equal(doc.status, 200);
    assert.deepEqual(doc.body.body, { i: 7, text: 'document 7' });
    assert.equal(doc.body.index, 1);
    const write = await http('PUT', `${dev.url('n1')}/v1/docs/things/new`, { n: 1 });
    assert.equal(write.status, 201, JSON.stringify(write.body));
    assert.ok(write.body.index > valid.header.appliedIndex);
  } catch (error) {
    if (dev !== null) console.error(dev.logs());
    throw error;
  } finally {
    await dev?.stop();
    rmSync(work, { recursive: true, force: true });
  }
});
