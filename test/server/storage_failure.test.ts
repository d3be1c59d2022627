// Goal: the change feed answers 410 CHANGES_COMPACTED for an index it no longer holds, and a disk
// that fails (full disk) stops the node with a clear error instead of corrupting state or crashing.
// Method: an in-process single node; for the disk failure, a log storage whose persist fails
// with ENOSPC on demand, wrapped around the real (segment-file) log storage.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { SegmentLogStorage } from '../../src/storage/index.ts';
import { MemoryDocumentStore } from '../../src/documents/index.ts';
import { UnderstudyNode, type NodeLogStorage } from '../../src/server/node.ts';
import { ApiError } from '../../src/server/errors.ts';
import { singleNodeConfig, startTestServer, tempDir, waitFor } from './helpers.ts';

test('change feed: an index older than the retention window is 410 CHANGES_COMPACTED', async () => {
  const t = await startTestServer({ changeRetentionEntries: 10 });
  try {
    for (let i = 0; i < 40; i++) {
      const response = await t.inject({ method: 'PUT', url: `/v1/docs/c/d${i}`, payload: { i } });
      assert.equal(response.statusCode, 201);
    }
    const gone = await t.inject({ method: 'GET', url: '/v1/changes?after=0' });
    assert.equal(gone.statusCode, 410);
    assert.equal(gone.json().code, 'CHANGES_COMPACTED');
    assert.match(gone.json().message, /compacted/);
    const recent = await t.inject({ method: 'GET', url: `/v1/changes?after=${t.server.node.replica.appliedIndex - 5}` });
    assert.equal(recent.statusCode, 200);
    assert.equal(recent.body.trim().split('\n').length, 5);
  } finally {
    await t.stop();
  }
});

test('a failing disk (ENOSPC) stops the node with STORAGE_ERROR; nothing is acknowledged after it', async () => {
  const dir = tempDir('enospc');
  const real = SegmentLogStorage.open(join(dir, 'log'));
  let failing = false;
  const log: NodeLogStorage = {
    load: () => real.load(),
    bootstrap: (state, bytes) => real.bootstrap(state, bytes),
    close: () => real.close(),
    saveSnapshot: (meta, bytes) => real.saveSnapshot(meta, bytes),
    readSnapshotChunk: (index, offset, max) => real.readSnapshotChunk(index, offset, max),
    loadSnapshot: () => real.loadSnapshot(),
    persist: (ready, done) => {
      if (failing) {
        const error = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
        setImmediate(() => done(error));
        return;
      }
      real.persist(ready, done);
    },
  };
  const node = new UnderstudyNode(singleNodeConfig(dir), { log, documents: new MemoryDocumentStore(), transport: { send: () => undefined } });
  try {
    node.start();
    await waitFor(() => node.core.role === 'leader', 5_000, 'leadership');
    const ok = await node.write({ ops: [{ op: 'put', collection: 'c', id: 'a', body: { v: 1 } }], ack: 'majority', timeoutMs: 2_000 });
    assert.equal(ok.status, 'applied');
    failing = true;
    await assert.rejects(
      node.write({ ops: [{ op: 'put', collection: 'c', id: 'b', body: { v: 2 } }], ack: 'majority', timeoutMs: 2_000 }),
      (error: unknown) => error instanceof ApiError && error.code === 'OUTCOME_UNKNOWN',
    );
    assert.match(node.fatal?.message ?? '', /ENOSPC/);
    await assert.rejects(
      node.write({ ops: [{ op: 'put', collection: 'c', id: 'c', body: { v: 3 } }], ack: 'majority', timeoutMs: 2_000 }),
      (error: unknown) => error instanceof ApiError && error.code === 'STORAGE_ERROR' && /ENOSPC/.test(error.message),
    );
  } finally {
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
