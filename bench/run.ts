/**
 * `npm run bench`: throughput and latency of a real 3-node cluster on loopback, per workload and
 * concurrency, with CPU seconds, peak RSS and fsync counts per node. Figures go to
 * bench/results/latest.json and a Markdown table on stdout.
 *
 * The load generator is lean on purpose (undici pools with keep-alive, one request in flight per
 * virtual client) so the servers keep as much of the machine's CPU as possible.
 * Options (env): BENCH_SECONDS (per cell, default 5), BENCH_WARMUP_SECONDS (default 1),
 * BENCH_CONCURRENCY (default "1,16,64,256"), BENCH_WORKLOADS (default all).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import hdr from 'hdr-histogram-js';
import { Pool } from 'undici';
import { ProcessCluster, http } from '../test/cluster/process_cluster.ts';

type Workload = 'write' | 'update-hot' | 'read-linearizable' | 'read-session' | 'read-stale' | 'mixed' | 'batch';
const ALL: Workload[] = ['write', 'update-hot', 'read-linearizable', 'read-session', 'read-stale', 'mixed', 'batch'];

const seconds = Number(process.env['BENCH_SECONDS'] ?? 5);
const warmupSeconds = Number(process.env['BENCH_WARMUP_SECONDS'] ?? 1);
const concurrencies = (process.env['BENCH_CONCURRENCY'] ?? '1,16,64,256').split(',').map(Number);
const workloads = (process.env['BENCH_WORKLOADS']?.split(',') as Workload[] | undefined) ?? ALL;
const body = JSON.stringify({ name: 'x'.repeat(60), n: 1, tags: ['a', 'b'] }); // ~100 bytes

interface ProcessSample { cpuSeconds: number; rssPeakBytes: number }

function sampleProcess(pid: number): ProcessSample {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  const ticks = Number(stat[11]) + Number(stat[12]);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
  return { cpuSeconds: ticks / 100, rssPeakBytes: hwm };
}

async function fsyncs(url: string): Promise<number> {
  const metrics = String((await http('GET', `${url}/metrics`)).body);
  return Number(/understudy_log_fsyncs (\d+)/.exec(metrics)?.[1] ?? 0);
}

interface Cell {
  workload: Workload;
  concurrency: number;
  opsPerSecond: number;
  errors: number;
  latencyMs: { p50: number; p99: number; p999: number; max: number };
  cpuSecondsPerNode: Record<string, number>;
  rssPeakMbPerNode: Record<string, number>;
  fsyncsPerSecond: number;
  entriesPerFsync: number | null;
}

async function main(): Promise<void> {
  const cluster = await ProcessCluster.start();
  const results: Cell[] = [];
  try {
    const leader = await cluster.waitForLeader();
    const urls = [...cluster.nodes.values()].map((node) => node.clientUrl);
    const leaderUrl = cluster.url(leader);
    const followerUrls = urls.filter((url) => url !== leaderUrl);
    const pools = new Map(urls.map((url) => [url, new Pool(url, { connections: 256, pipelining: 1 })]));
    // Seed documents for reads and hot updates.
    for (let i = 0; i < 100; i++) await http('PUT', `${leaderUrl}/v1/docs/hot/h${i}`, JSON.parse(body));
    let sessionToken = '0';
    for (const workload of workloads) {
      for (const concurrency of concurrencies) {
        const cell = await runCell(cluster, pools, leaderUrl, followerUrls, workload, concurrency, () => sessionToken, (t) => { sessionToken = t; });
        results.push(cell);
        process.stderr.write(`${workload} x${concurrency}: ${cell.opsPerSecond.toFixed(0)} ops/s p50 ${cell.latencyMs.p50} ms p99 ${cell.latencyMs.p99} ms errors ${cell.errors}\n`);
      }
    }
    for (const pool of pools.values()) await pool.close();
  } finally {
    cluster.stopAll();
  }
  const report = {
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? '?', memoryGb: Math.round(totalmem() / 2 ** 30), node: process.version },
    date: new Date().toISOString(),
    secondsPerCell: seconds,
    results,
  };
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL('./results/latest.json', import.meta.url), JSON.stringify(report, null, 2));
  console.log(markdown(results));
}

async function runCell(
  cluster: ProcessCluster, pools: Map<string, Pool>, leaderUrl: string, followerUrls: string[],
  workload: Workload, concurrency: number, token: () => string, setToken: (token: string) => void,
): Promise<Cell> {
  const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  let ops = 0;
  let errors = 0;
  let seq = 0;
  let measuring = false;
  const started = Date.now();
  const warmupEnd = started + warmupSeconds * 1000;
  const end = warmupEnd + seconds * 1000;
  const pids = [...cluster.nodes.values()].map((node) => ({ id: node.id, pid: node.process?.pid ?? 0 }));
  let before: Map<string, ProcessSample> = new Map();
  let fsyncsBefore = 0;
  const one = async (client: number): Promise<void> => {
    const n = seq++;
    let url = leaderUrl;
    let method: 'GET' | 'PUT' | 'POST' = 'GET';
    let path = '';
    let payload: string | undefined;
    const kind = workload === 'mixed' ? (n % 2 === 0 ? 'write' : 'read-linearizable') : workload;
    switch (kind) {
      case 'write': method = 'PUT'; path = `/v1/docs/bench/c${client}-${n}`; payload = body; break;
      case 'update-hot': method = 'PUT'; path = `/v1/docs/hot/h${n % 100}`; payload = body; break;
      case 'read-linearizable': path = `/v1/docs/hot/h${n % 100}`; break;
      case 'read-session': url = followerUrls[n % followerUrls.length] ?? leaderUrl; path = `/v1/docs/hot/h${n % 100}?consistency=session&token=${token()}`; break;
      case 'read-stale': url = [leaderUrl, ...followerUrls][n % 3] ?? leaderUrl; path = `/v1/docs/hot/h${n % 100}?consistency=stale`; break;
      case 'batch':
        method = 'POST'; path = '/v1/batch';
        payload = JSON.stringify({ ops: Array.from({ length: 10 }, (_, i) => ({ op: 'put', collection: 'batch', id: `c${client}-${n}-${i}`, body: JSON.parse(body) })) });
        break;
    }
    const t0 = process.hrtime.bigint();
    try {
      const response = await pools.get(url)!.request({ method, path, headers: payload === undefined ? {} : { 'content-type': 'application/json' }, body: payload ?? null });
      const text = await response.body.text();
      if (response.statusCode >= 300) errors++;
      else if (method !== 'GET' && n % 97 === 0) setToken(String(JSON.parse(text).sessionToken));
    } catch {
      errors++;
    }
    if (measuring) {
      histogram.recordValue(Number((process.hrtime.bigint() - t0) / 1000n));
      ops++;
    }
  };
  const timer = setTimeout(async () => {
    measuring = true;
    before = new Map(pids.map(({ id, pid }) => [id, sampleProcess(pid)]));
    fsyncsBefore = await fsyncs(leaderUrl);
  }, warmupSeconds * 1000);
  await Promise.all(Array.from({ length: concurrency }, async (_, client) => {
    while (Date.now() < end) await one(client);
  }));
  clearTimeout(timer);
  const after = new Map(pids.map(({ id, pid }) => [id, sampleProcess(pid)]));
  const fsyncsAfter = await fsyncs(leaderUrl);
  const elapsed = (Date.now() - warmupEnd) / 1000;
  const writesPerOp = workload === 'batch' ? 1 : workload === 'mixed' ? 0.5 : workload.startsWith('read') ? 0 : 1;
  const fsyncCount = fsyncsAfter - fsyncsBefore;
  const ms = (us: number): number => Math.round(us / 10) / 100;
  return {
    workload, concurrency,
    opsPerSecond: ops / elapsed,
    errors,
    latencyMs: { p50: ms(histogram.getValueAtPercentile(50)), p99: ms(histogram.getValueAtPercentile(99)), p999: ms(histogram.getValueAtPercentile(99.9)), max: ms(histogram.maxValue) },
    cpuSecondsPerNode: Object.fromEntries(pids.map(({ id }) => [id, Math.round(((after.get(id)?.cpuSeconds ?? 0) - (before.get(id)?.cpuSeconds ?? 0)) * 100) / 100])),
    rssPeakMbPerNode: Object.fromEntries(pids.map(({ id }) => [id, Math.round((after.get(id)?.rssPeakBytes ?? 0) / 2 ** 20)])),
    fsyncsPerSecond: fsyncCount / elapsed,
    entriesPerFsync: fsyncCount > 0 && writesPerOp > 0 ? Math.round((ops * writesPerOp / fsyncCount) * 10) / 10 : null,
  };
}

function markdown(results: Cell[]): string {
  const lines = [
    '| workload | clients | ops/s | p50 ms | p99 ms | p99.9 ms | errors | leader fsyncs/s | writes/fsync | CPU s (n1/n2/n3) | peak RSS MB |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |',
  ];
  for (const cell of results) {
    lines.push(`| ${cell.workload} | ${cell.concurrency} | ${cell.opsPerSecond.toFixed(0)} | ${cell.latencyMs.p50} | ${cell.latencyMs.p99} | ${cell.latencyMs.p999} | ${cell.errors} | ${cell.fsyncsPerSecond.toFixed(0)} | ${cell.entriesPerFsync ?? '-'} | ${Object.values(cell.cpuSecondsPerNode).join('/')} | ${Object.values(cell.rssPeakMbPerNode).join('/')} |`);
  }
  return lines.join('\n');
}

await main();
