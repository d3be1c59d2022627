/**
 * Micro-benchmark of the Raft log storages: N sequential persists of Readies with 20 entries of
 * 150 bytes and a hard state (what a busy leader writes), on LMDB or on segment files.
 *   npx tsx bench/micro/log_storage.ts segments|lmdb [persists=10000]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { bootstrapState } from '../../src/consensus/raft_core.ts';
import type { Entry, Ready } from '../../src/consensus/types.ts';
import { LmdbLogStorage, SegmentLogStorage } from '../../src/storage/index.ts';

const N = Number(process.argv[3] ?? 10_000);
const kind = process.argv[2];
if (kind !== 'lmdb' && kind !== 'segments') {
  console.error('usage: npx tsx bench/micro/log_storage.ts segments|lmdb [persists=10000]');
  process.exit(2);
}
const membership = { voters: ['a', 'b', 'c'], learners: [] };
const dir = fs.mkdtempSync(path.join(os.tmpdir(), `bench-${kind}-`));
const storage = kind === 'lmdb' ? LmdbLogStorage.open(dir) : SegmentLogStorage.open(dir);
storage.bootstrap(bootstrapState(membership), new Uint8Array([1]));
const data = new Uint8Array(150).fill(7);
let next = 1;
function readyOf(number: number): Ready {
  const entries: Entry[] = [];
  for (let i = 0; i < 20; i += 1) entries.push({ index: next + i, term: 1, kind: 'normal', data });
  next += 20;
  return { number, hardState: { term: 1, vote: 'a', commit: next - 21 }, entries, snapshot: null, snapshotChunks: [], messages: [], messagesAfterPersist: [], committed: [], readStates: [], readsDropped: [], mustSync: true };
}
const persist = (r: Ready): Promise<void> => new Promise((res, rej) => storage.persist(r, (e) => (e === null ? res() : rej(e))));
const cpu0 = process.cpuUsage();
const elu0 = performance.eventLoopUtilization();
const t0 = performance.now();
for (let i = 1; i <= N; i += 1) await persist(readyOf(i));
const ms = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const elu = performance.eventLoopUtilization(elu0);
const stats = storage.stats();
await storage.close();
console.log(JSON.stringify({
  kind, persists: N, wallMs: Math.round(ms), perPersistUs: Math.round((ms / N) * 1000),
  cpuMs: Math.round((cpu.user + cpu.system) / 1000), cpuUserMs: Math.round(cpu.user / 1000), cpuSysMs: Math.round(cpu.system / 1000),
  mainThreadBusyMs: Math.round(elu.active), fsyncs: stats.fsyncs, logMiB: +(stats.logBytesUsed / 1048576).toFixed(1),
}));
fs.rmSync(dir, { recursive: true, force: true });
