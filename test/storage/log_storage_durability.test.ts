// Goal: demonstrate the durability guarantee LmdbLogStorage relies on, with the lmdb options it
// uses (overlappingSync off, noSync/noMetaSync off): once persist calls done,
//   1. another process that opens the environment sees the data;
//   2. a process killed with SIGKILL right after done still has the data when re-opened;
//   3. the fsyncs actually happen before done (strace: fdatasync of the data file and the O_DSYNC
//      meta-page write complete before the "done" marker; for a saved snapshot also fsync of the
//      temp file, rename, fsync of the directory), even when fdatasync is slowed down;
//   4. a full disk reaches done(error) as a StorageIoError naming the file, and later persists fail.
// Method: child processes (`node --import tsx test/storage/fixtures/storage_child.ts`) with bounded
// waits, killed by PID in `finally`. Tests 3 and 4 need strace / mount namespaces and are skipped,
// saying why, where those are unavailable. (1 and 2 cannot tell an fsync from the page cache, as the
// kernel keeps a killed process's writes; 3 is the one that shows the flush itself.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { bootstrapState } from '../../src/consensus/raft_core.ts';
import { LmdbLogStorage } from '../../src/storage/index.ts';
import { entries, membership, persist, ready, repoRoot, tempDir, removeDir, withTempDir } from './helpers.ts';
import { mountNamespacesWork, startChild, straceWorks, type Child } from './child.ts';

const fixture = path.join(repoRoot, 'test/storage/fixtures/storage_child.ts');
const nodeArgs = (mode: string, dir: string): string[] => ['--import', 'tsx', fixture, mode, dir];

test('after persist calls done, another process that opens the environment sees the data', async () => {
  await withTempDir('durable', async (dir) => {
    const storage = LmdbLogStorage.open(dir);
    let child: Child | null = null;
    try {
      storage.bootstrap(bootstrapState(membership), new Uint8Array([7]));
      await persist(storage, ready({ entries: entries(1, 3, 2), hardState: { term: 2, vote: 'b', commit: 1 } }));
      // The writer still has the environment open: the reader sees what was committed, no more.
      child = startChild(process.execPath, nodeArgs('load', dir));
      const line = await child.waitFor(/^STATE /, 30_000);
      const state = JSON.parse(line.slice('STATE '.length)) as { hardState: unknown; entries: Array<{ index: number; term: number; text: string }> };
      assert.deepEqual(state.hardState, { term: 2, vote: 'b', commit: 1 });
      assert.deepEqual(state.entries.map((e) => [e.index, e.term, e.text]), [[1, 2, 'e1'], [2, 2, 'e2'], [3, 2, 'e3']]);
      assert.equal((await child.exit(30_000)).code, 0);
    } finally {
      child?.kill();
      await storage.close();
    }
  });
});

test('a process killed with SIGKILL right after done keeps every acknowledged entry', async () => {
  await withTempDir('durable', async (dir) => {
    let child: Child | null = null;
    try {
      child = startChild(process.execPath, nodeArgs('ack-loop', dir));
      await child.waitFor(/^ACK 40$/, 60_000);
      child.kill(); // mid-stream: more persists are in flight
      const exit = await child.exit(30_000);
      assert.equal(exit.signal, 'SIGKILL');
      const acked = Math.max(...child.lines.filter((l) => l.startsWith('ACK ')).map((l) => Number(l.slice(4))));
      assert.ok(acked >= 40);
      const storage = LmdbLogStorage.open(dir);
      try {
        const state = storage.load();
        assert.ok(state !== null);
        const indexes = state.entries.map((e) => e.index);
        assert.ok(indexes.length >= acked, `acknowledged ${acked} entries, found ${indexes.length}`);
        assert.deepEqual(indexes, Array.from({ length: indexes.length }, (_, i) => i + 1));
        assert.equal(new TextDecoder().decode(state.entries[acked - 1]?.data).startsWith(`entry-${acked}-`), true);
        assert.ok(state.hardState.commit >= acked - 1);
      } finally {
        await storage.close();
      }
    } finally {
      child?.kill();
    }
  });
});

test('strace: fdatasync and the O_DSYNC meta write complete before done; snapshot file is fsynced, renamed, dir fsynced', async (t) => {
  const unavailable = straceWorks();
  if (unavailable !== null) {
    t.skip(unavailable);
    return;
  }
  const dir = tempDir('strace');
  const traceFile = path.join(dir, 'trace.txt');
  const dataDir = path.join(dir, 'store');
  let child: Child | null = null;
  try {
    child = startChild('strace', [
      '-f', '-qq', '-o', traceFile,
      '-e', 'trace=openat,fdatasync,fsync,pwrite64,write,rename',
      // Slow every fdatasync by 100 ms: done must still come after it.
      '-e', 'inject=fdatasync:delay_exit=100000',
      process.execPath, ...nodeArgs('trace', dataDir),
    ]);
    const exit = await child.exit(120_000);
    assert.equal(exit.code, 0, `child failed: ${child.lines.join(' | ')}`);
    const trace = fs.readFileSync(traceFile, 'utf8').split('\n');
    const marker = (name: string): number => {
      const at = trace.findIndex((line) => line.includes(`write(1, "${name}\\n"`));
      assert.ok(at >= 0, `marker ${name} in the trace`);
      return at;
    };
    const fdOf = (pattern: RegExp): string[] => trace.filter((line) => pattern.test(line)).map((line) => /= (\d+)$/.exec(line)?.[1]).filter((fd): fd is string => fd !== undefined);
    const metaFds = fdOf(/openat\(.*log\/data\.mdb", [^)]*O_DSYNC/);
    assert.ok(metaFds.length > 0, 'LMDB opened the meta-page descriptor with O_DSYNC');
    const completed = (line: string, call: string): boolean => line.includes(call) && (/\) += 0/.test(line) || /resumed>.*= 0/.test(line));
    // A meta-page write on the O_DSYNC descriptor that completed within `lines` (strace splits a
    // call into "<unfinished ...>" and "<... pwrite64 resumed>" when another thread interleaves).
    const metaWritten = (lines: string[]): boolean => lines.some((line, i) => metaFds.some((fd) => line.includes(`pwrite64(${fd},`)
      && (/= \d+$/.test(line) || lines.slice(i + 1).some((later) => /<\.\.\. pwrite64 resumed>.*= \d+$/.test(later)))));

    // persist: fdatasync (completed) and then the meta write, both before PERSIST-DONE.
    const persistStart = marker('PERSIST-START');
    const persistDone = marker('PERSIST-DONE');
    const window = trace.slice(persistStart, persistDone);
    const sync = window.findIndex((line) => completed(line, 'fdatasync'));
    assert.ok(sync >= 0, `a completed fdatasync between PERSIST-START and PERSIST-DONE:\n${window.join('\n')}`);
    assert.ok(metaWritten(window.slice(sync)), 'the meta page is written through the O_DSYNC descriptor after the data sync, before done');

    // saveSnapshot: fsync(temp file) → rename → fsync(directory) → LMDB commit flushed → SAVE-DONE.
    const saveStart = marker('SAVE-START');
    const saveDone = marker('SAVE-DONE');
    const save = trace.slice(saveStart, saveDone);
    const tempFd = fdOf(/openat\(.*snapshot-2\.bin\.tmp"/)[0];
    assert.ok(tempFd !== undefined, 'the snapshot is written to a temp file');
    const fsyncTemp = save.findIndex((line) => line.includes(`fsync(${tempFd})`) && /= 0/.test(line));
    const rename = save.findIndex((line) => /rename\(".*snapshot-2\.bin\.tmp", ".*snapshot-2\.bin"\) = 0/.test(line));
    const dirOpen = save.findIndex((line, i) => i > rename && /openat\(.*store", O_RDONLY/.test(line));
    const dirFd = /= (\d+)$/.exec(save[dirOpen] ?? '')?.[1];
    const fsyncDir = save.findIndex((line, i) => i > dirOpen && line.includes(`fsync(${dirFd})`) && /= 0/.test(line));
    const commitSync = save.findIndex((line, i) => i > fsyncDir && completed(line, 'fdatasync'));
    assert.ok(fsyncTemp >= 0 && rename > fsyncTemp && dirOpen > rename && fsyncDir > dirOpen && commitSync > fsyncDir,
      `order fsync(temp) ${fsyncTemp} < rename ${rename} < fsync(dir) ${fsyncDir} < LMDB flush ${commitSync}:\n${save.join('\n')}`);
    assert.ok(metaWritten(save.slice(commitSync)), 'the snapshot metadata commit writes its meta page O_DSYNC before saveSnapshot returns');
  } finally {
    child?.kill();
    removeDir(dir);
  }
});

test('a full disk reaches done(error) as a StorageIoError naming the file, and later persists fail too', async (t) => {
  const unavailable = mountNamespacesWork();
  if (unavailable !== null) {
    t.skip(unavailable);
    return;
  }
  const dir = tempDir('full');
  let child: Child | null = null;
  try {
    // A 2 MiB tmpfs mounted on `dir` inside a private mount namespace: it vanishes with the child.
    child = startChild('unshare', ['--mount', '--propagation', 'private', 'sh', '-c',
      'mount -t tmpfs -o size=2m tmpfs "$1" && exec "$0" --import tsx "$2" fill "$1"', process.execPath, dir, fixture]);
    const line = await child.waitFor(/^(ERROR|NO-ERROR)/, 60_000);
    assert.match(line, /^ERROR /);
    const error = JSON.parse(line.slice('ERROR '.length)) as { name: string; code: string | null; message: string };
    assert.equal(error.name, 'StorageIoError');
    assert.ok(error.code === 'EIO' || error.code === 'ENOSPC', `errno ${error.code}`);
    assert.match(error.message, /persisting Ready #\d+ to .*log\/data\.mdb failed: .*(EIO|ENOSPC)/);
    const again = await child.waitFor(/^AGAIN /, 30_000);
    assert.equal(JSON.parse(again.slice('AGAIN '.length)), error.message);
    assert.equal((await child.exit(30_000)).code, 0, 'no unhandled rejection crashed the process');
  } finally {
    child?.kill();
    removeDir(dir);
  }
});
