/**
 * Measures backup and restore (issue 6) for docs/operations.md: a real 3-node cluster of processes
 * on loopback is loaded with N documents, then
 *   - `understudy backup` runs against a follower while a writer keeps writing (the CLI's wall time,
 *     the server's time to answer, the longest write latency seen meanwhile),
 *   - `understudy restore` seeds three new data directories (per node, the CLI's wall time),
 *   - the restored cluster starts: time until every node serves a linearizable read of the data.
 * RTO = restore of one node (nodes restore in parallel on their own machines) + start.
 *
 *   node --import tsx bench/backup_restore.ts [--docs 10000,100000] [--body-bytes 200]
 *
 * Every process is stopped by PID at the end, also on failure.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { ProcessCluster, http, waitFor } from '../test/cluster/process_cluster.ts';

const BIN = fileURLToPath(new URL('../bin/understudy.js', import.meta.url));

function argument(name: string, fallback: string): string {
  const at = process.argv.indexOf(name);
  return at === -1 ? fallback : (process.argv[at + 1] ?? fallback);
}

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 600_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr, ms: Math.round(performance.now() - started) });
    });
  });
}

async function load(url: string, docs: number, bodyBytes: number): Promise<void> {
  const filler = 'x'.repeat(Math.max(0, bodyBytes - 40));
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < docs) {
      const start = next;
      next += 100;
      const ops = [];
      for (let i = start; i < Math.min(docs, start + 100); i++) ops.push({ op: 'put', collection: 'bench', id: `d${String(i).padStart(7, '0')}`, body: { i, filler } });
      for (let attempt = 0; ; attempt++) {
        const result = await http('POST', `${url}/v1/batch`, { ops }, {}, 30_000).catch(() => null);
        if (result !== null && result.status === 200) break;
        if (attempt > 20) throw new Error(`batch at ${start} failed: ${result === null ? 'no answer' : JSON.stringify(result.body).slice(0, 200)}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
}

async function measure(docs: number, bodyBytes: number): Promise<Record<string, number | string>> {
  const work = mkdtempSync(join(tmpdir(), 'understudy-bench-backup-'));
  const source = await ProcessCluster.start();
  let restored: ProcessCluster | null = null;
  try {
    const leader = await source.waitForLeader();
    const loadStarted = performance.now();
    await load(source.url(leader), docs, bodyBytes);
    const loadMs = Math.round(performance.now() - loadStarted);
    await source.waitForConvergence(120_000);
    const follower = ['n1', 'n2', 'n3'].find((id) => id !== leader) as string;

    // A serial writer to the leader: its worst latency shows any stall a backup causes; measured
    // without a backup first, for comparison on the same (shared, noisy) machine.
    const url = source.url(leader);
    let sequence = 0;
    const withWriter = async <T>(run: () => Promise<T>): Promise<{ result: T; worstMs: number; p99Ms: number; writes: number }> => {
      let writing = true;
      const latencies: number[] = [];
      const writer = (async () => {
        while (writing) {
          const started = performance.now();
          const result = await http('PUT', `${url}/v1/docs/during/w${sequence++}`, { sequence }, {}, 30_000).catch(() => null);
          if (result !== null && result.status < 300) latencies.push(performance.now() - started);
        }
      })();
      await new Promise((resolve) => setTimeout(resolve, 300));
      const result = await run();
      writing = false;
      await writer;
      latencies.sort((a, b) => a - b);
      return {
        result, worstMs: Math.round(latencies.at(-1) ?? 0), writes: latencies.length,
        p99Ms: Math.round(latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))] ?? 0),
      };
    };
    const termBefore = (await source.status(leader)).term as number;
    const baseline = await withWriter(() => new Promise((resolve) => setTimeout(resolve, 2_000)));
    const fromLeader = await withWriter(async () => {
      const started = performance.now();
      const direct = await request(`${source.url(leader)}/v1/admin/backup`, { headersTimeout: 600_000, bodyTimeout: 600_000 });
      await direct.body.arrayBuffer();
      if (direct.statusCode !== 200) throw new Error(`backup request: ${direct.statusCode}`);
      return Math.round(performance.now() - started);
    });
    const file = join(work, 'bench.backup');
    const fromFollower = await withWriter(() => cli(['backup', '--node', source.url(follower), '--out', file]));
    const backup = fromFollower.result;
    if (backup.code !== 0) throw new Error(`backup failed: ${backup.stderr}`);
    const bytes = statSync(file).size;
    const termAfter = (await source.status(leader))?.term as number | undefined;

    const restoreMs: number[] = [];
    let startMs = 0;
    restored = await ProcessCluster.start({
      beforeStart: async (cluster) => {
        const members = [...cluster.nodes.values()].map((node) => `${node.id}@${node.peer}@${node.clientUrl}`).join(',');
        for (const id of cluster.nodes.keys()) {
          const result = await cli(['restore', '--backup', file, '--data', cluster.dataDir(id), '--id', id, '--members', members]);
          if (result.code !== 0) throw new Error(`restore failed: ${result.stderr}`);
          restoreMs.push(result.ms);
        }
        startMs = performance.now();
      },
    });
    const restoredCluster = restored;
    const last = `d${String(docs - 1).padStart(7, '0')}`;
    await waitFor('every restored node to serve the data', async () => {
      for (const id of ['n1', 'n2', 'n3']) {
        const read = await http('GET', `${restoredCluster.url(id)}/v1/docs/bench/${last}`, undefined, {}, 5_000);
        if (read.status !== 200) return false;
      }
      return true;
    }, 300_000);
    const servingMs = Math.round(performance.now() - startMs);
    const restoreOne = Math.max(...restoreMs);
    return {
      docs, bodyBytes, loadMs, backupBytes: bytes, backupCliMs: backup.ms, backupFromLeaderMs: fromLeader.result,
      writeMsBaseline: `p99 ${baseline.p99Ms} max ${baseline.worstMs}`,
      writeMsDuringLeaderBackup: `p99 ${fromLeader.p99Ms} max ${fromLeader.worstMs}`,
      writeMsDuringFollowerBackup: `p99 ${fromFollower.p99Ms} max ${fromFollower.worstMs}`,
      electionsDuringBackups: termAfter === undefined ? 'leader changed' : termAfter - termBefore,
      restoreCliMsPerNode: restoreMs.join('/'), startToServingMs: servingMs, rtoMs: restoreOne + servingMs,
    };
  } finally {
    source.stopAll();
    restored?.stopAll();
    rmSync(work, { recursive: true, force: true });
  }
}

const sizes = argument('--docs', '10000,100000').split(',').map(Number);
const bodyBytes = Number(argument('--body-bytes', '200'));
for (const docs of sizes) {
  const result = await measure(docs, bodyBytes);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
