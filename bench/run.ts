/**
 * `npm run bench`: the benchmark harness of issue 7. Sections (all by default; pick with
 * `--only`): workloads (throughput and latency per workload and concurrency), failover (20+
 * leader kills under a fixed-rate write load), soak (spurious elections under steady load),
 * growth (10k-1M documents: write latency, snapshot, learner catch-up, restart, memory) and etcd
 * (the same workloads and failover against a 3-member etcd, when `etcd` is installed).
 *
 * Writes bench/results/latest.json (every figure; also run-<timestamp>.json), latest.md (tables
 * and the targets, met or missed) and SVG charts beside them. `--help` lists the options;
 * docs/benchmarks.md explains them and how to read the output.
 *
 * Real processes on loopback only, started and killed by PID; every wait is bounded; clusters
 * are stopped in `finally` blocks and on SIGINT/SIGTERM.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildCharts } from './charts.ts';
import { runFailover } from './failover.ts';
import { runGrowth } from './growth.ts';
import { ETCD_INSTALL_HINT, renderReport } from './markdown.ts';
import { estimateSeconds, etcdRuns, helpText, parseOptions, type BenchOptions } from './options.ts';
import { describeMachine } from './proc.ts';
import { runSoak } from './soak.ts';
import { describeTarget, evaluateTargets } from './targets.ts';
import { EtcdSystem, etcdVersion, findEtcd } from './systems/etcd.ts';
import { liveSystems, type BenchSystem } from './systems/system.ts';
import { UnderstudySystem } from './systems/understudy.ts';
import type { BenchResults, EtcdResult } from './types.ts';
import { runCells } from './workloads.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function log(line: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

function stopEverything(): void {
  for (const system of [...liveSystems]) {
    try {
      system.stop();
    } catch {
      // best effort on the way out
    }
  }
}

async function withSystem<T>(start: () => Promise<BenchSystem>, use: (system: BenchSystem) => Promise<T>): Promise<T> {
  const system = await start();
  try {
    return await use(system);
  } finally {
    system.stop();
  }
}

function message(error: unknown): string {
  return String(error instanceof Error ? error.message : error).slice(0, 2_000);
}

function outDir(options: BenchOptions): string {
  return isAbsolute(options.outDir) ? options.outDir : resolve(ROOT, options.outDir);
}

/** Writes latest.json (and a timestamped copy), latest.md and the charts; returns the Markdown. */
export function writeOutputs(results: BenchResults, dir: string, stamped: boolean): string {
  mkdirSync(dir, { recursive: true });
  const json = JSON.stringify(results, null, 2);
  if (stamped) writeFileSync(join(dir, `run-${results.date.replace(/[:.]/g, '-')}.json`), json);
  writeFileSync(join(dir, 'latest.json'), json);
  const charts = buildCharts(results);
  for (const chart of charts) writeFileSync(join(dir, chart.file), chart.svg);
  const markdown = renderReport(results, charts);
  writeFileSync(join(dir, 'latest.md'), markdown);
  return markdown;
}

async function main(): Promise<void> {
  let options: BenchOptions;
  try {
    options = parseOptions(process.argv.slice(2), process.env);
  } catch (error) {
    console.error(`${message(error)}\n\n${helpText()}`);
    process.exitCode = 2;
    return;
  }
  if (options.help) {
    console.log(helpText());
    return;
  }
  const dir = outDir(options);
  if (options.reportOnly) {
    const file = join(dir, 'latest.json');
    if (!existsSync(file)) throw new Error(`${file} does not exist: run the benchmark first`);
    const previous = JSON.parse(readFileSync(file, 'utf8')) as BenchResults;
    const results: BenchResults = { ...previous, targets: evaluateTargets(previous, { rssLimitMb: options.rssLimitMb }) };
    console.log(writeOutputs(results, dir, false));
    log(`re-rendered ${join(dir, 'latest.md')}`);
    return;
  }

  const etcdBin = findEtcd(options.etcdBin);
  const has = (section: string): boolean => (options.sections as readonly string[]).includes(section);
  const estimate = estimateSeconds(options, etcdBin !== null);
  log(`sections: ${options.sections.join(', ')}; estimated duration ~${Math.ceil(estimate / 60)} min on a 2-core machine; results in ${dir}`);
  const machine = describeMachine();
  const started = Date.now();
  const notes: string[] = [];
  let previous: Partial<BenchResults> = {};
  if (options.merge && existsSync(join(dir, 'latest.json'))) {
    previous = JSON.parse(readFileSync(join(dir, 'latest.json'), 'utf8')) as BenchResults;
    notes.push(`Merged with the previous latest.json of ${previous.date ?? '?'}: sections not run now come from it.`);
  }
  const results: { -readonly [K in keyof BenchResults]?: BenchResults[K] } = {};

  if (has('workloads')) {
    log('workloads: starting a 3-node Understudy cluster');
    try {
      results.workloads = await withSystem(() => UnderstudySystem.start(), (system) => runCells(system, options.workloads, options.concurrency, options, log, notes));
    } catch (error) {
      notes.push(`workloads failed: ${message(error)}`);
      log(`workloads failed: ${message(error)}`);
    }
  }
  if (has('failover')) {
    log(`failover: ${options.kills} leader kills at ${options.failoverRate} writes/s`);
    try {
      results.failover = await withSystem(() => UnderstudySystem.start(), (system) => runFailover(system, {
        kills: options.kills, rate: options.failoverRate, writeTimeoutMs: options.failoverWriteTimeoutMs, settleMs: options.failoverSettleMs,
      }, log));
    } catch (error) {
      notes.push(`failover failed: ${message(error)}`);
      log(`failover failed: ${message(error)}`);
    }
  }
  if (has('soak')) {
    log(`soak: ${options.soakMinutes} min at ${options.soakRate} writes/s, default settings, no faults`);
    try {
      results.soak = await withSystem(() => UnderstudySystem.start(), (system) => runSoak(system, {
        minutes: options.soakMinutes, rate: options.soakRate, writeTimeoutMs: options.failoverWriteTimeoutMs,
      }, log));
    } catch (error) {
      notes.push(`soak failed: ${message(error)}`);
      log(`soak failed: ${message(error)}`);
    }
  }
  if (has('growth')) {
    log(`growth: ${options.growthSizes.join(', ')} documents`);
    try {
      results.growth = await runGrowth({
        sizes: options.growthSizes, concurrency: options.growthConcurrency, seconds: options.growthSeconds,
        snapshotEvery: options.growthSnapshotEvery, keepAfterSnapshot: options.growthKeepAfterSnapshot, loadConcurrency: options.growthLoadConcurrency,
      }, log);
    } catch (error) {
      notes.push(`growth failed: ${message(error)}`);
      log(`growth failed: ${message(error)}`);
    }
  }
  if (has('etcd')) {
    const etcd: { -readonly [K in keyof EtcdResult]: EtcdResult[K] } = { version: null, skipped: null, cells: [], failover: null, error: null };
    if (etcdBin === null) {
      etcd.skipped = `'${options.etcdBin}' was not found`;
      log(`etcd: skipped, ${ETCD_INSTALL_HINT}`);
    } else {
      etcd.version = etcdVersion(etcdBin);
      try {
        if (etcdRuns(options, 'workloads')) {
          log(`etcd ${etcd.version}: workloads at ${options.etcdConcurrency.join(', ')} clients`);
          etcd.cells = await withSystem(() => EtcdSystem.start(etcdBin), (system) => runCells(system, options.workloads, options.etcdConcurrency, options, log, notes));
        }
        if (etcdRuns(options, 'failover')) {
          log(`etcd: failover, ${options.etcdKills} leader kills at ${options.failoverRate} writes/s`);
          etcd.failover = await withSystem(() => EtcdSystem.start(etcdBin), (system) => runFailover(system, {
            kills: options.etcdKills, rate: options.failoverRate, writeTimeoutMs: options.failoverWriteTimeoutMs, settleMs: options.failoverSettleMs,
          }, log));
        }
      } catch (error) {
        etcd.error = message(error);
        log(`etcd failed: ${etcd.error}`);
      }
    }
    // Merging: the parts of etcd's section this run skipped come from the previous run too.
    const before = previous.etcd;
    if (options.merge && before !== undefined && before !== null) {
      if (!etcdRuns(options, 'workloads') && etcd.cells.length === 0) etcd.cells = before.cells;
      if (!etcdRuns(options, 'failover') && etcd.failover === null) etcd.failover = before.failover;
    }
    results.etcd = etcd;
  }

  // Only the load before the run says something about other processes: at the end it includes
  // the benchmark's own servers and load generator.
  const startLoad = machine.loadAverageAtStart[0] ?? 0;
  if (startLoad > machine.cpus / 2) {
    notes.push(`The machine was not idle when the run started (1-minute load average ${startLoad.toFixed(1)} on ${machine.cpus} cores): ` +
      'other processes probably competed with the servers and the load generator, so throughput may be understated and latency, failover times and elections overstated.');
  }
  const base = {
    workloads: results.workloads ?? previous.workloads,
    failover: results.failover ?? previous.failover,
    soak: results.soak ?? previous.soak,
    growth: results.growth ?? previous.growth,
    etcd: results.etcd ?? previous.etcd,
  };
  const { help: _help, reportOnly: _reportOnly, merge: _merge, ...recorded } = options;
  void _help; void _reportOnly; void _merge;
  const partial: Omit<BenchResults, 'targets'> = {
    schema: 1,
    date: new Date(started).toISOString(),
    durationSeconds: Math.round((Date.now() - started) / 1000),
    machine: { ...machine, loadAverageAtEnd: loadavg().map((value) => Math.round(value * 100) / 100) },
    options: { ...recorded, etcdBin: etcdBin ?? options.etcdBin },
    ...Object.fromEntries(Object.entries(base).filter(([, value]) => value !== undefined)),
    notes,
  };
  const final: BenchResults = { ...partial, targets: evaluateTargets(partial, { rssLimitMb: options.rssLimitMb }) };
  const markdown = writeOutputs(final, dir, true);
  console.log(markdown);
  log(`took ${final.durationSeconds} s; wrote ${join(dir, 'latest.json')}, ${join(dir, 'latest.md')} and charts`);
  for (const target of final.targets) log(describeTarget(target));
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping every cluster`);
    stopEverything();
    process.exit(130);
  });
}
process.once('exit', stopEverything);

try {
  await main();
} finally {
  stopEverything();
}
