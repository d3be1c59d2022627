/**
 * Options of `npm run bench`: command-line flags win over environment variables, which win over
 * the --smoke preset, which wins over the defaults. Pure (argv and env are passed in).
 */
import { ALL_WORKLOADS, type Workload } from './types.ts';

export const SECTIONS = ['workloads', 'failover', 'soak', 'growth', 'etcd'] as const;
export type Section = (typeof SECTIONS)[number];

export interface BenchOptions {
  readonly sections: readonly Section[];
  readonly smoke: boolean;
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly systemWarmupSeconds: number;
  readonly concurrency: readonly number[];
  readonly workloads: readonly Workload[];
  readonly kills: number;
  readonly failoverRate: number;
  readonly failoverWriteTimeoutMs: number;
  readonly failoverSettleMs: number;
  readonly soakMinutes: number;
  readonly soakRate: number;
  readonly growthSizes: readonly number[];
  readonly growthConcurrency: number;
  readonly growthSeconds: number;
  readonly growthSnapshotEvery: number;
  readonly growthKeepAfterSnapshot: number;
  readonly growthLoadConcurrency: number;
  readonly etcdBin: string;
  readonly etcdConcurrency: readonly number[];
  readonly etcdKills: number;
  readonly rssLimitMb: number;
  readonly outDir: string;
  readonly merge: boolean;
  readonly reportOnly: boolean;
  readonly help: boolean;
}

interface Spec {
  readonly flag: string;
  readonly env: string;
  readonly key: keyof BenchOptions;
  readonly kind: 'number' | 'numbers' | 'string' | 'boolean' | 'sections' | 'workloads';
  readonly help: string;
}

export const SPECS: readonly Spec[] = [
  { flag: 'only', env: 'BENCH_ONLY', key: 'sections', kind: 'sections', help: `sections to run, comma-separated: ${SECTIONS.join(',')} (default all)` },
  { flag: 'smoke', env: 'BENCH_SMOKE', key: 'smoke', kind: 'boolean', help: 'short preset for checking the harness (2 s cells, 1/16 clients, 3 kills, 30 s soak, 2k/5k docs), ~3 min' },
  { flag: 'seconds', env: 'BENCH_SECONDS', key: 'seconds', kind: 'number', help: 'measured seconds per workload cell (default 5)' },
  { flag: 'warmup', env: 'BENCH_WARMUP_SECONDS', key: 'warmupSeconds', kind: 'number', help: 'warm-up seconds before each cell (default 1)' },
  { flag: 'system-warmup', env: 'BENCH_SYSTEM_WARMUP_SECONDS', key: 'systemWarmupSeconds', kind: 'number', help: 'seconds of unmeasured 50/50 load on each freshly started system before its first cell (default 8)' },
  { flag: 'concurrency', env: 'BENCH_CONCURRENCY', key: 'concurrency', kind: 'numbers', help: 'client counts (default 1,16,64,256)' },
  { flag: 'workloads', env: 'BENCH_WORKLOADS', key: 'workloads', kind: 'workloads', help: `workloads (default all: ${ALL_WORKLOADS.join(',')})` },
  { flag: 'kills', env: 'BENCH_FAILOVER_KILLS', key: 'kills', kind: 'number', help: 'leader kills in the failover section (default 20)' },
  { flag: 'failover-rate', env: 'BENCH_FAILOVER_RATE', key: 'failoverRate', kind: 'number', help: 'open-loop writes per second during failover (default 200)' },
  { flag: 'failover-timeout-ms', env: 'BENCH_FAILOVER_WRITE_TIMEOUT_MS', key: 'failoverWriteTimeoutMs', kind: 'number', help: 'timeout of each failover/soak write (default 1000)' },
  { flag: 'failover-settle-ms', env: 'BENCH_FAILOVER_SETTLE_MS', key: 'failoverSettleMs', kind: 'number', help: 'steady writing between a caught-up restart and the next kill (default 1000)' },
  { flag: 'soak-minutes', env: 'BENCH_SOAK_MINUTES', key: 'soakMinutes', kind: 'number', help: 'minutes of steady load for spurious elections (default 10)' },
  { flag: 'soak-rate', env: 'BENCH_SOAK_RATE', key: 'soakRate', kind: 'number', help: 'open-loop writes per second during the soak (default 200)' },
  { flag: 'growth-sizes', env: 'BENCH_GROWTH_SIZES', key: 'growthSizes', kind: 'numbers', help: 'data set sizes in documents (default 10000,100000,1000000)' },
  { flag: 'growth-concurrency', env: 'BENCH_GROWTH_CONCURRENCY', key: 'growthConcurrency', kind: 'number', help: 'clients for the write-latency phase at each size (default 16)' },
  { flag: 'growth-seconds', env: 'BENCH_GROWTH_SECONDS', key: 'growthSeconds', kind: 'number', help: 'measured seconds of the write-latency phase (default 5)' },
  { flag: 'growth-snapshot-every', env: 'BENCH_GROWTH_SNAPSHOT_EVERY', key: 'growthSnapshotEvery', kind: 'number', help: 'snapshotEveryEntries of the growth cluster (default 5000)' },
  { flag: 'growth-keep-after-snapshot', env: 'BENCH_GROWTH_KEEP_AFTER_SNAPSHOT', key: 'growthKeepAfterSnapshot', kind: 'number', help: 'logEntriesKeptAfterSnapshot of the growth cluster (default 1000)' },
  { flag: 'growth-load-concurrency', env: 'BENCH_GROWTH_LOAD_CONCURRENCY', key: 'growthLoadConcurrency', kind: 'number', help: 'batches in flight while loading (default 4)' },
  { flag: 'etcd-bin', env: 'BENCH_ETCD_BIN', key: 'etcdBin', kind: 'string', help: 'etcd binary (default: etcd on PATH)' },
  { flag: 'etcd-concurrency', env: 'BENCH_ETCD_CONCURRENCY', key: 'etcdConcurrency', kind: 'numbers', help: 'client counts for etcd (default: same as --concurrency)' },
  { flag: 'etcd-kills', env: 'BENCH_ETCD_KILLS', key: 'etcdKills', kind: 'number', help: 'leader kills for etcd (default: same as --kills)' },
  { flag: 'rss-limit-mb', env: 'BENCH_RSS_LIMIT_MB', key: 'rssLimitMb', kind: 'number', help: 'bound for the peak-RSS target at 256 clients (default 512)' },
  { flag: 'out', env: 'BENCH_OUT', key: 'outDir', kind: 'string', help: 'output folder (default bench/results)' },
  { flag: 'merge', env: 'BENCH_MERGE', key: 'merge', kind: 'boolean', help: 'keep sections of the previous latest.json that this run does not repeat' },
  { flag: 'report-only', env: 'BENCH_REPORT_ONLY', key: 'reportOnly', kind: 'boolean', help: 're-render latest.md and the charts from latest.json, run nothing' },
  { flag: 'help', env: 'BENCH_HELP', key: 'help', kind: 'boolean', help: 'print this help' },
];

export const DEFAULT_OPTIONS: BenchOptions = {
  sections: SECTIONS, smoke: false, seconds: 5, warmupSeconds: 1, systemWarmupSeconds: 8, concurrency: [1, 16, 64, 256], workloads: ALL_WORKLOADS,
  kills: 20, failoverRate: 200, failoverWriteTimeoutMs: 1000, failoverSettleMs: 1000, soakMinutes: 10, soakRate: 200,
  growthSizes: [10_000, 100_000, 1_000_000], growthConcurrency: 16, growthSeconds: 5, growthSnapshotEvery: 5000, growthKeepAfterSnapshot: 1000,
  growthLoadConcurrency: 4, etcdBin: 'etcd', etcdConcurrency: [], etcdKills: -1, rssLimitMb: 512, outDir: 'bench/results',
  merge: false, reportOnly: false, help: false,
};

export const SMOKE_PRESET: Partial<BenchOptions> = {
  seconds: 2, warmupSeconds: 0.5, systemWarmupSeconds: 1, concurrency: [1, 16], kills: 3, soakMinutes: 0.5, growthSizes: [2000, 5000], growthSeconds: 2,
  growthSnapshotEvery: 1000, growthKeepAfterSnapshot: 100, etcdConcurrency: [1, 16],
};

function convert(spec: Spec, raw: string): unknown {
  const list = (): string[] => raw.split(',').map((item) => item.trim()).filter((item) => item !== '');
  switch (spec.kind) {
    case 'boolean':
      if (['', '1', 'true', 'yes'].includes(raw)) return true;
      if (['0', 'false', 'no'].includes(raw)) return false;
      throw new Error(`--${spec.flag}: expected a boolean, got '${raw}'`);
    case 'number': {
      const value = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(value) || value < 0) throw new Error(`--${spec.flag}: expected a non-negative number, got '${raw}'`);
      return value;
    }
    case 'numbers': {
      const values = list().map(Number);
      if (values.length === 0 || values.some((value) => !Number.isInteger(value) || value <= 0)) throw new Error(`--${spec.flag}: expected positive integers separated by commas, got '${raw}'`);
      return values;
    }
    case 'string':
      return raw;
    case 'sections': {
      const values = list();
      const unknown = values.filter((value) => !(SECTIONS as readonly string[]).includes(value));
      if (values.length === 0 || unknown.length > 0) throw new Error(`--${spec.flag}: unknown section '${unknown[0] ?? raw}' (known: ${SECTIONS.join(', ')})`);
      return values;
    }
    case 'workloads': {
      const values = list();
      const unknown = values.filter((value) => !(ALL_WORKLOADS as readonly string[]).includes(value));
      if (values.length === 0 || unknown.length > 0) throw new Error(`--${spec.flag}: unknown workload '${unknown[0] ?? raw}' (known: ${ALL_WORKLOADS.join(', ')})`);
      return values;
    }
  }
}

export function parseOptions(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): BenchOptions {
  const fromEnv: Record<string, unknown> = {};
  const fromFlags: Record<string, unknown> = {};
  for (const spec of SPECS) {
    const value = env[spec.env];
    if (value !== undefined && value !== '') fromEnv[spec.key] = convert(spec, value);
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith('--')) throw new Error(`unexpected argument '${arg}' (see --help)`);
    const [name, inline] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    const spec = SPECS.find((candidate) => candidate.flag === name);
    if (spec === undefined) throw new Error(`unknown option --${name} (see --help)`);
    let raw = inline;
    if (raw === undefined && spec.kind !== 'boolean') {
      raw = argv[i + 1];
      i++;
      if (raw === undefined) throw new Error(`--${name} needs a value`);
    }
    fromFlags[spec.key] = convert(spec, raw ?? '');
  }
  const smoke = (fromFlags['smoke'] ?? fromEnv['smoke'] ?? false) === true;
  const merged = { ...DEFAULT_OPTIONS, ...(smoke ? SMOKE_PRESET : {}), ...fromEnv, ...fromFlags } as BenchOptions;
  return {
    ...merged,
    etcdConcurrency: merged.etcdConcurrency.length === 0 ? merged.concurrency : merged.etcdConcurrency,
    etcdKills: merged.etcdKills < 0 ? merged.kills : merged.etcdKills,
  };
}

export function helpText(): string {
  const lines = ['Usage: npm run bench -- [options]   (each option also has an environment variable)', ''];
  for (const spec of SPECS) lines.push(`  --${spec.flag}${spec.kind === 'boolean' ? '' : ' <value>'}`.padEnd(40) + `${spec.env.padEnd(34)}${spec.help}`);
  lines.push('', 'Example: npm run bench -- --only workloads,etcd --concurrency 1,64');
  return lines.join('\n');
}

/**
 * A rough duration of a run with these options on the 2-core reference machine, in seconds (for
 * planning; growth is the hardest to predict: it assumes ~5,000 loaded documents per second).
 */
export function estimateSeconds(options: BenchOptions, etcdAvailable: boolean): number {
  const has = (section: Section): boolean => options.sections.includes(section);
  const perCell = options.seconds + options.warmupSeconds + 1;
  let total = 0;
  if (has('workloads')) total += 10 + options.systemWarmupSeconds + options.workloads.length * options.concurrency.length * perCell;
  if (has('failover')) total += 10 + options.kills * (4 + options.failoverSettleMs / 1000);
  if (has('soak')) total += 10 + options.soakMinutes * 60;
  if (has('growth')) {
    const largest = Math.max(0, ...options.growthSizes);
    total += 10 + largest / 5000 + options.growthSizes.length * (options.growthSeconds + 1 + 15) + largest / 100_000 * 10;
  }
  if (etcdAvailable && etcdRuns(options, 'workloads')) {
    const etcdWorkloads = options.workloads.filter((workload) => !workload.startsWith('read-session')).length;
    total += 10 + options.systemWarmupSeconds + etcdWorkloads * options.etcdConcurrency.length * perCell;
  }
  if (etcdAvailable && etcdRuns(options, 'failover')) total += 10 + options.etcdKills * (5 + options.failoverSettleMs / 1000);
  return Math.round(total);
}

/**
 * The `etcd` section runs etcd's counterparts of `workloads` and `failover`: both with
 * `--only etcd`, and only those also selected otherwise (`--only workloads,etcd`: the workloads).
 */
export function etcdRuns(options: Pick<BenchOptions, 'sections'>, part: 'workloads' | 'failover'): boolean {
  if (!options.sections.includes('etcd')) return false;
  const counterparts = options.sections.filter((section) => section === 'workloads' || section === 'failover');
  return counterparts.length === 0 || counterparts.includes(part);
}
