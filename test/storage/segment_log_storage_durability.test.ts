// Goal: demonstrate SegmentLogStorage's durability guarantee: once persist calls done,
//   1. a process killed with SIGKILL right after done still has every acknowledged entry when its
//      directory is re-opened (with default segments, and with tiny ones so the kill can land in a
//      rotation or a segment deletion);
//   2. the write and the fdatasync actually happen before done (strace): a plain Ready is exactly
//      one pwrite of the segment and one fdatasync of it, both completed before the "done" marker,
//      even with every fdatasync slowed by 100 ms; a Ready that starts a new segment creates it
//      with O_EXCL, writes and fdatasyncs it and fsyncs the wal directory, all before done; a
//      saved snapshot's file is fsynced, renamed and its directory fsynced before the SNAPSHOT
//      record is written and fdatasynced, all before done;
//   3. a full disk reaches done(error) as a StorageIoError naming the segment file, and later
//      persists fail with the same error.
// Method: child processes (test/storage/fixtures/storage_child.ts ... segments) with bounded
// waits, killed by PID in `finally`. The strace and full-disk tests are skipped, saying why, where
// strace cannot trace or a small tmpfs cannot be mounted in a private mount namespace. (1 cannot tell an fsync from the page cache, as the kernel keeps a killed process's
// writes; 2 is the one that shows the flush itself.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { SegmentLogStorage } from '../../src/storage/index.ts';
import { removeDir, repoRoot, tempDir, withTempDir } from './helpers.ts';
import { mountNamespacesWork, startChild, straceWorks, type Child } from './child.ts';

const fixture = path.join(repoRoot, 'test/storage/fixtures/storage_child.ts');
const nodeArgs = (mode: string, dir: string): string[] => ['--import', 'tsx', fixture, mode, dir, 'segments'];

for (const segmentBytes of [undefined, 256]) {
  test(`a process killed with SIGKILL right after done keeps every acknowledged entry (${segmentBytes === undefined ? 'default segments' : `${segmentBytes}-byte segments`})`, async () => {
    await withTempDir('seg-durable', async (dir) => {
      let child: Child | null = null;
      try {
        child = startChild(process.execPath, nodeArgs('ack-loop', dir), segmentBytes === undefined ? {} : { SEGMENT_BYTES: String(segmentBytes) });
        await child.waitFor(/^ACK 40$/, 60_000);
        child.kill(); // mid-stream: more persists are in flight
        const exit = await child.exit(30_000);
        assert.equal(exit.signal, 'SIGKILL');
        const acked = Math.max(...child.lines.filter((l) => l.startsWith('ACK ')).map((l) => Number(l.slice(4))));
        assert.ok(acked >= 40);
        const storage = SegmentLogStorage.open(dir, { segmentBytes });
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
}

/** One system call as strace saw it once it returned (unfinished/resumed halves joined). */
interface Call {
  readonly name: string;
  readonly args: string;
  readonly result: string;
  /** Position in the trace of its completion. */
  readonly at: number;
}

/**
 * Parses `strace -f` output into completed calls, in completion order. With several threads
 * strace splits a call into "name(args <unfinished ...>" and "<... name resumed>rest) = result".
 */
function parseTrace(text: string): Call[] {
  const calls: Call[] = [];
  const unfinished = new Map<string, string>();
  text.split('\n').forEach((raw) => {
    const pidMatch = /^(\d+)\s+(.*)$/.exec(raw);
    const pid = pidMatch?.[1] ?? '';
    let line = pidMatch?.[2] ?? raw;
    if (line.endsWith('<unfinished ...>')) {
      unfinished.set(pid, line.slice(0, -'<unfinished ...>'.length));
      return;
    }
    const resumed = /^<\.\.\. (\w+) resumed>(.*)$/.exec(line);
    if (resumed !== null) {
      line = (unfinished.get(pid) ?? `${resumed[1]}(`) + (resumed[2] ?? '');
      unfinished.delete(pid);
    }
    const call = /^(\w+)\((.*)\)\s+=\s+(-?\d+.*)$/.exec(line);
    if (call !== null) calls.push({ name: call[1] as string, args: call[2] as string, result: call[3] as string, at: calls.length });
  });
  return calls;
}

test('strace: one pwrite and one fdatasync of the segment complete before done; a new segment and a snapshot are synced before done', async (t) => {
  const unavailable = straceWorks(['-e', 'inject=fdatasync:delay_exit=1']);
  if (unavailable !== null) {
    t.skip(unavailable);
    return;
  }
  const dir = tempDir('seg-strace');
  const traceFile = path.join(dir, 'trace.txt');
  const dataDir = path.join(dir, 'store');
  let child: Child | null = null;
  try {
    child = startChild('strace', [
      '-f', '-qq', '-o', traceFile,
      '-e', 'trace=openat,fdatasync,fsync,pwrite64,pwritev,write,writev,rename,unlink',
      // Slow every fdatasync by 100 ms: done must still come after it.
      '-e', 'inject=fdatasync:delay_exit=100000',
      process.execPath, ...nodeArgs('trace-segments', dataDir),
    ], { SEGMENT_BYTES: '1024' });
    const exit = await child.exit(120_000);
    assert.equal(exit.code, 0, `child failed: ${child.lines.join(' | ')}`);
    const calls = parseTrace(fs.readFileSync(traceFile, 'utf8'));
    const marker = (name: string): number => {
      const found = calls.find((call) => call.name === 'write' && call.args.startsWith(`1, "${name}\\n"`));
      assert.ok(found !== undefined, `marker ${name} in the trace`);
      return found.at;
    };
    const opened = (pattern: RegExp): string => {
      const found = calls.find((call) => call.name === 'openat' && pattern.test(call.args) && /^\d+/.test(call.result));
      assert.ok(found !== undefined, `openat matching ${pattern}`);
      return (/^(\d+)/.exec(found.result) as RegExpExecArray)[1] as string;
    };
    const between = (from: number, to: number): Call[] => calls.filter((call) => call.at > from && call.at < to);
    const writesTo = (window: Call[], fd: string): Call[] => window.filter((call) => /^(pwrite64|pwritev|write|writev)$/.test(call.name) && call.args.startsWith(`${fd},`));
    const syncsOf = (window: Call[], fd: string, name = 'fdatasync'): Call[] => window.filter((call) => call.name === name && call.args === fd && call.result.startsWith('0'));

    // 1. A plain Ready: exactly one write of the segment and then one fdatasync of it, before done.
    const segment1 = opened(/wal\/0{19}1\.wal", O_RDWR/);
    const persist = between(marker('PERSIST-START'), marker('PERSIST-DONE'));
    const writes = writesTo(persist, segment1);
    const syncs = syncsOf(persist, segment1);
    assert.equal(writes.length, 1, `one write to the segment:\n${persist.map((c) => `${c.name}(${c.args.slice(0, 60)}) = ${c.result}`).join('\n')}`);
    assert.equal(syncs.length, 1, 'one fdatasync of the segment');
    assert.ok((writes[0] as Call).at < (syncs[0] as Call).at, 'the write completed before the fdatasync');
    assert.ok(persist.every((call) => call.name !== 'fdatasync' || call.args === segment1), 'no other file is synced');

    // 2. A Ready that starts segment 2: O_EXCL create, write, fdatasync, fsync(wal dir), then done.
    const rotate = between(marker('ROTATE-START'), marker('ROTATE-DONE'));
    const create = rotate.find((call) => call.name === 'openat' && /wal\/0{19}2\.wal", O_WRONLY\|O_CREAT\|O_EXCL/.test(call.args));
    assert.ok(create !== undefined, 'segment 2 is created with O_EXCL');
    const segment2 = (/^(\d+)/.exec(create.result) as RegExpExecArray)[1] as string;
    const write2 = writesTo(rotate, segment2);
    const sync2 = syncsOf(rotate, segment2);
    assert.equal(write2.length, 1, 'one write to the new segment');
    assert.equal(sync2.length, 1, 'one fdatasync of the new segment');
    const walDirOpen = rotate.find((call) => call.at > (sync2[0] as Call).at && call.name === 'openat' && /store\/wal", O_RDONLY/.test(call.args));
    assert.ok(walDirOpen !== undefined, 'the wal directory is opened after the new segment is synced');
    const walDirFd = (/^(\d+)/.exec(walDirOpen.result) as RegExpExecArray)[1] as string;
    assert.equal(syncsOf(rotate, walDirFd, 'fsync').filter((call) => call.at > walDirOpen.at).length, 1, 'and fsynced before done');
    assert.equal(writesTo(rotate, segment1).length, 0, 'nothing more goes to segment 1');

    // 3. saveSnapshotAsync: fsync(temp) → rename → fsync(dir) → SNAPSHOT record written and fdatasynced → done.
    const save = between(marker('SAVE-START'), marker('SAVE-DONE'));
    const tempOpen = save.find((call) => call.name === 'openat' && /snapshot-2\.bin\.tmp"/.test(call.args));
    assert.ok(tempOpen !== undefined, 'the snapshot is written to a temp file');
    const tempFd = (/^(\d+)/.exec(tempOpen.result) as RegExpExecArray)[1] as string;
    // File descriptor numbers are reused once closed: every lookup is "after the open that made it".
    const fsyncTemp = syncsOf(save, tempFd, 'fsync').find((call) => call.at > tempOpen.at);
    const rename = save.find((call) => call.name === 'rename' && /snapshot-2\.bin\.tmp", ".*snapshot-2\.bin"/.test(call.args) && call.result.startsWith('0'));
    const dirOpen = save.find((call) => rename !== undefined && call.at > rename.at && call.name === 'openat' && /store", O_RDONLY/.test(call.args));
    const dirFd = dirOpen === undefined ? '' : (/^(\d+)/.exec(dirOpen.result) as RegExpExecArray)[1] as string;
    const fsyncDir = syncsOf(save, dirFd, 'fsync').find((call) => dirOpen !== undefined && call.at > dirOpen.at);
    const record = writesTo(save, segment2)[0];
    const recordSync = syncsOf(save, segment2)[0];
    assert.ok(fsyncTemp !== undefined && rename !== undefined && fsyncDir !== undefined && record !== undefined && recordSync !== undefined,
      `all steps present:\n${save.map((c) => `${c.name}(${c.args.slice(0, 80)}) = ${c.result}`).join('\n')}`);
    assert.ok(fsyncTemp.at < rename.at && rename.at < fsyncDir.at && fsyncDir.at < record.at && record.at < recordSync.at,
      `order fsync(temp) ${fsyncTemp.at} < rename ${rename.at} < fsync(dir) ${fsyncDir.at} < record write ${record.at} < fdatasync ${recordSync.at}`);
  } finally {
    child?.kill();
    removeDir(dir);
  }
});

test('a full disk reaches done(error) as a StorageIoError naming the segment, and later persists fail too', async (t) => {
  const unavailable = mountNamespacesWork();
  if (unavailable !== null) {
    t.skip(unavailable);
    return;
  }
  const dir = tempDir('seg-full');
  let child: Child | null = null;
  try {
    // A 2 MiB tmpfs mounted on `dir` inside a private mount namespace: it vanishes with the child.
    child = startChild('unshare', ['--mount', '--propagation', 'private', 'sh', '-c',
      'mount -t tmpfs -o size=2m tmpfs "$1" && exec "$0" --import tsx "$2" fill "$1" segments', process.execPath, dir, fixture]);
    const line = await child.waitFor(/^(ERROR|NO-ERROR)/, 60_000);
    assert.match(line, /^ERROR /);
    const error = JSON.parse(line.slice('ERROR '.length)) as { name: string; code: string | null; message: string };
    assert.equal(error.name, 'StorageIoError');
    assert.equal(error.code, 'ENOSPC');
    assert.match(error.message, /persisting Ready #\d+ to .*wal\/\d{20}\.wal failed: .*ENOSPC/);
    const again = await child.waitFor(/^AGAIN /, 30_000);
    assert.equal(JSON.parse(again.slice('AGAIN '.length)), error.message);
    assert.equal((await child.exit(30_000)).code, 0, 'no unhandled rejection crashed the process');
  } finally {
    child?.kill();
    removeDir(dir);
  }
});
