/**
 * Closed-loop workload cells: `concurrency` virtual clients, each with one request in flight,
 * for warm-up plus a measured window. Counts successful requests started in the window; measures
 * CPU, peak RSS and fsyncs of every node over the same window.
 */
import { Latency, Pools } from './http.ts';
import { mb, resetPeakRss, sampleProcess, type ProcessSample } from './proc.ts';
import { agreedLeader, context, running, type BenchSystem, type Counters } from './systems/system.ts';
import type { Cell, Workload } from './types.ts';

export interface CellOptions {
  readonly seconds: number;
  readonly warmupSeconds: number;
  /**
   * Unmeasured 50/50 load on the freshly started system before its first cell (runCells only).
   * A new Node.js process runs its hot paths interpreted until V8 has compiled them: without this
   * the first cell measured start-up (at 1 client, about half the steady-state throughput), not
   * the system. Both systems get the same.
   */
  readonly systemWarmupSeconds?: number;
}

const WRITES_PER_OP: Record<Workload, number> = {
  'write': 1, 'update-hot': 1, 'batch': 1, 'mixed': 0.5,
  'read-linearizable': 0, 'read-session': 0, 'read-session-one': 0, 'read-stale': 0, 'read-stale-one': 0,
};

let cellSerial = 0;

export async function runCell(system: BenchSystem, pools: Pools, workload: Workload, concurrency: number, options: CellOptions): Promise<Cell> {
  const leader = await agreedLeader(system);
  const token = workload.startsWith('read-session') ? await system.sessionToken(pools, system.url(leader)) : '0';
  const ctx = context(system, leader, token, `k${cellSerial++}`);
  const ids = running(system);
  const latency = new Latency();
  let ops = 0;
  let errors = 0;
  const errorSamples: string[] = [];
  let seq = 0;
  const started = performance.now();
  const measureStart = started + options.warmupSeconds * 1000;
  const measureEnd = measureStart + options.seconds * 1000;

  let before = new Map<string, ProcessSample | null>();
  let countersBefore: Promise<Map<string, Counters>> = Promise.resolve(new Map());
  // RssAnon has no high-water mark of its own: sample it through the window.
  const anonPeak = new Map<string, number>();
  const sampleAnon = (): void => {
    for (const id of ids) anonPeak.set(id, Math.max(anonPeak.get(id) ?? 0, sampleProcess(system.pid(id))?.rssAnonBytes ?? 0));
  };
  let anonTimer: ReturnType<typeof setInterval> | null = null;
  const startTimer = setTimeout(() => {
    for (const id of ids) resetPeakRss(system.pid(id));
    before = new Map(ids.map((id) => [id, sampleProcess(system.pid(id))]));
    countersBefore = readCounters(system, ids);
    sampleAnon();
    anonTimer = setInterval(sampleAnon, 250);
  }, Math.max(0, measureStart - performance.now()));

  const client = async (index: number): Promise<void> => {
    for (;;) {
      const t0 = performance.now();
      if (t0 >= measureEnd) return;
      const n = seq++;
      const req = system.request(workload, index, n, ctx);
      let ok = false;
      let problem = '';
      try {
        const res = await pools.send(req, 30_000);
        ok = res.status >= 200 && res.status < 300;
        if (!ok) problem = `${res.status} ${res.text.slice(0, 160)}`;
      } catch (error) {
        problem = String(error).slice(0, 160);
      }
      if (t0 < measureStart) continue;
      if (ok) {
        latency.recordMs(performance.now() - t0);
        ops++;
      } else {
        errors++;
        if (errorSamples.length < 3 && !errorSamples.includes(problem)) errorSamples.push(problem);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, (_, index) => client(index)));
  } finally {
    clearTimeout(startTimer);
    if (anonTimer !== null) clearInterval(anonTimer);
  }
  sampleAnon();
  const after = new Map(ids.map((id) => [id, sampleProcess(system.pid(id))]));
  const [early, late] = [await countersBefore, await readCounters(system, ids)];
  const seconds = options.seconds;
  const perNode = <T>(pick: (id: string) => T): Record<string, T> => Object.fromEntries(ids.map((id) => [id, pick(id)]));
  const delta = (id: string, key: keyof Counters): number | null => {
    const a = early.get(id)?.[key];
    const b = late.get(id)?.[key];
    return a === null || a === undefined || b === null || b === undefined ? null : b - a;
  };
  const leaderFsyncs = delta(leader, 'fsyncs');
  const leaderEntries = delta(leader, 'entries');
  const leaderEntryFsyncs = delta(leader, 'entryFsyncs');
  return {
    system: system.name,
    workload,
    concurrency,
    seconds,
    ops,
    opsPerSecond: Math.round((ops / seconds) * 10) / 10,
    errors,
    errorSamples,
    latencyMs: latency.summary(),
    leader,
    cpuSecondsPerNode: perNode((id) => Math.round(((after.get(id)?.cpuSeconds ?? 0) - (before.get(id)?.cpuSeconds ?? 0)) * 100) / 100),
    rssPeakMbPerNode: perNode((id) => mb(after.get(id)?.rssPeakBytes ?? 0)),
    rssAnonPeakMbPerNode: perNode((id) => mb(anonPeak.get(id) ?? 0)),
    fsyncsPerSecondPerNode: perNode((id) => Math.round(((delta(id, 'fsyncs') ?? 0) / seconds) * 10) / 10),
    leaderFsyncsPerSecond: Math.round(((leaderFsyncs ?? 0) / seconds) * 10) / 10,
    entriesPerFsync: WRITES_PER_OP[workload] === 0 || leaderEntries === null || leaderEntryFsyncs === null || leaderEntryFsyncs <= 0
      ? null : Math.round((leaderEntries / leaderEntryFsyncs) * 10) / 10,
  };
}

async function readCounters(system: BenchSystem, ids: readonly string[]): Promise<Map<string, Counters>> {
  return new Map(await Promise.all(ids.map(async (id) => [id, await system.counters(id)] as const)));
}

/** Every workload the system supports at every concurrency; progress on stderr. */
export async function runCells(
  system: BenchSystem, workloads: readonly Workload[], concurrency: readonly number[], options: CellOptions,
  log: (line: string) => void, problems: string[] = [],
): Promise<Cell[]> {
  const pools = new Pools(Math.max(...concurrency));
  const cells: Cell[] = [];
  try {
    const leader = await agreedLeader(system);
    await system.seed(pools, system.url(leader));
    const warmSeconds = options.systemWarmupSeconds ?? 0;
    if (warmSeconds > 0 && system.supports.includes('mixed')) {
      const warm = await runCell(system, pools, 'mixed', Math.min(16, Math.max(...concurrency)), { seconds: warmSeconds, warmupSeconds: 0 });
      log(`${system.name}: warmed up for ${warmSeconds} s (50/50 mix, ${Math.round(warm.opsPerSecond)} ops/s, not reported)`);
    }
    for (const workload of workloads) {
      if (!system.supports.includes(workload)) {
        log(`${system.name}: ${workload} skipped (no counterpart)`);
        continue;
      }
      for (const level of concurrency) {
        let cell: Cell;
        try {
          cell = await runCell(system, pools, workload, level, options);
        } catch (error) {
          const problem = `${system.name} ${workload} x${level} failed: ${String(error instanceof Error ? error.message : error).slice(0, 500)}`;
          problems.push(problem);
          log(problem);
          continue;
        }
        cells.push(cell);
        log(`${system.name} ${workload} x${level}: ${Math.round(cell.opsPerSecond)} ops/s, p50 ${cell.latencyMs.p50} ms, p99 ${cell.latencyMs.p99} ms, ` +
          `errors ${cell.errors}${cell.errorSamples.length > 0 ? ` (${cell.errorSamples[0]})` : ''}, leader fsyncs/s ${cell.leaderFsyncsPerSecond}, entries/fsync ${cell.entriesPerFsync ?? '-'}`);
      }
    }
  } finally {
    await pools.close();
  }
  return cells;
}
