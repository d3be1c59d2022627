// Goal: the pure parts of the benchmark harness (bench/) compute what the report claims:
// percentiles, ratios, Prometheus parsing, target verdicts, option parsing, Markdown tables and
// well-formed SVG charts with the expected series. No benchmark runs here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildCharts } from '../../bench/charts.ts';
import { ETCD_INSTALL_HINT, cellsTable, renderReport, table } from '../../bench/markdown.ts';
import { DEFAULT_OPTIONS, etcdRuns, parseOptions } from '../../bench/options.ts';
import { distribution, formatRatio, histogramDelta, metricSum, parsePrometheus, percentile, ratio } from '../../bench/stats.ts';
import { cdfPoints, compactNumber, escapeXml, lineChart, niceTicks } from '../../bench/svg.ts';
import { cellNear, evaluateTargets, judge } from '../../bench/targets.ts';
import type { BenchResults, Cell, FailoverResult, SoakResult, SystemName, Workload } from '../../bench/types.ts';

function cell(system: SystemName, workload: Workload, concurrency: number, opsPerSecond: number, p99: number, rss = 200): Cell {
  return {
    system, workload, concurrency, seconds: 5, ops: opsPerSecond * 5, opsPerSecond, errors: 0, errorSamples: [],
    latencyMs: { p50: p99 / 3, p99, p999: p99 * 1.5, max: p99 * 2, mean: p99 / 2, count: opsPerSecond * 5 }, leader: 'n1',
    cpuSecondsPerNode: { n1: 1, n2: 0.5, n3: 0.5 }, rssPeakMbPerNode: { n1: rss, n2: 150, n3: 150 },
    fsyncsPerSecondPerNode: { n1: 100, n2: 100, n3: 100 }, leaderFsyncsPerSecond: 100, entriesPerFsync: workload.startsWith('read') ? null : 10,
  };
}

function failover(system: SystemName, times: number[]): FailoverResult {
  const d = distribution(times);
  return {
    system, ratePerSecond: 200, writeTimeoutMs: 1000,
    kills: times.map((ms, i) => ({ killed: `n${(i % 3) + 1}`, newLeader: `n${((i + 1) % 3) + 1}`, killToFirstWriteMs: ms, killToLeaderKnownMs: ms - 10, writesFailed: 40, restartToCaughtUpMs: 2000 })),
    killToFirstWriteMs: { count: times.length, missing: 0, p50: d.p50, p99: d.p99, max: d.max, mean: d.mean },
    killToLeaderKnownMs: { p50: d.p50, p99: d.p99, max: d.max }, writes: { sent: 1000, ok: 900, failed: 100 }, latencyMs: null, error: null,
  };
}

const soak: SoakResult = {
  minutes: 10, ratePerSecond: 200, writes: { sent: 120_000, ok: 120_000, failed: 0 }, latencyMs: null,
  termsBefore: { n1: 2, n2: 2, n3: 2 }, termsAfter: { n1: 2, n2: 2, n3: 2 }, termChanges: 0, leaderChanges: 0,
  leaderChangesMetric: 0, roleChangesMetric: 0, leaders: ['n1'], timeline: [], error: null,
};

function results(overrides: Partial<BenchResults> = {}): Omit<BenchResults, 'targets'> {
  return {
    schema: 1, date: '2026-11-26T10:00:00.000Z', durationSeconds: 100,
    machine: { cpus: 2, cpuModel: 'Test CPU', memoryGb: 24, node: 'v20.0.0', os: 'Linux', loadAverageAtStart: [0.1, 0.2, 0.3] },
    options: {}, notes: [],
    workloads: [
      cell('understudy', 'write', 64, 3000, 40), cell('understudy', 'read-linearizable', 64, 12_000, 8),
      cell('understudy', 'read-stale', 64, 9000, 10), cell('understudy', 'read-stale-one', 64, 5000, 12),
      cell('understudy', 'read-session', 64, 8000, 10), cell('understudy', 'read-session-one', 64, 4000, 12),
      cell('understudy', 'write', 256, 3500, 120, 600), cell('understudy', 'write', 16, 1500, 20),
    ],
    failover: failover('understudy', [200, 250, 300, 350, 600]),
    soak,
    etcd: { version: '3.4.23', skipped: null, cells: [cell('etcd', 'write', 64, 1500, 50), cell('etcd', 'write', 16, 1200, 20)], failover: failover('etcd', [1100, 1200, 1300]), error: null },
    ...overrides,
  };
}

test('percentile is nearest-rank and ignores input order', () => {
  const values = Array.from({ length: 100 }, (_, i) => 100 - i);
  assert.equal(percentile(values, 50), 50);
  assert.equal(percentile(values, 99), 99);
  assert.equal(percentile(values, 100), 100);
  assert.equal(percentile(values, 0), 1);
  assert.equal(percentile([7], 99), 7);
  assert.equal(percentile([], 50), null);
  assert.equal(percentile([300, 100, 200], 50), 200);
  assert.equal(percentile(Array.from({ length: 20 }, (_, i) => i + 1), 99), 20, 'with 20 samples p99 is the maximum');
  assert.throws(() => percentile([1], 101));
});

test('distribution and ratio', () => {
  assert.deepEqual(distribution([]), { count: 0, min: null, p50: null, p99: null, max: null, mean: null });
  assert.deepEqual(distribution([400, 100, 300, 200]), { count: 4, min: 100, p50: 200, p99: 400, max: 400, mean: 250 });
  assert.equal(ratio(3000, 1500), 2);
  assert.equal(ratio(1, 0), null);
  assert.equal(ratio(null, 2), null);
  assert.equal(ratio(2, undefined), null);
  assert.equal(formatRatio(1.5), '1.50x');
  assert.equal(formatRatio(12.34), '12.3x');
  assert.equal(formatRatio(null), '-');
});

test('Prometheus text: samples, sums over labels, histogram deltas', () => {
  const before = parsePrometheus([
    '# HELP understudy_log_fsyncs Fsyncs', '# TYPE understudy_log_fsyncs gauge', 'understudy_log_fsyncs 10',
    'understudy_snapshot_seconds_bucket{le="0.1"} 1', 'understudy_snapshot_seconds_bucket{le="0.5"} 2', 'understudy_snapshot_seconds_bucket{le="+Inf"} 2',
    'understudy_snapshot_seconds_sum 0.3', 'understudy_snapshot_seconds_count 2',
    'understudy_snapshots_total{source="taken"} 2', 'understudy_snapshots_total{source="installed"} 1',
  ].join('\n'));
  const after = parsePrometheus([
    'understudy_log_fsyncs 25',
    'understudy_snapshot_seconds_bucket{le="0.1"} 1', 'understudy_snapshot_seconds_bucket{le="0.5"} 3', 'understudy_snapshot_seconds_bucket{le="1"} 4', 'understudy_snapshot_seconds_bucket{le="+Inf"} 4',
    'understudy_snapshot_seconds_sum 1.5', 'understudy_snapshot_seconds_count 4',
  ].join('\n'));
  assert.equal(metricSum(before, 'understudy_log_fsyncs'), 10);
  assert.equal(metricSum(before, 'understudy_snapshots_total'), 3);
  assert.equal(metricSum(before, 'absent_metric'), null);
  const delta = histogramDelta(before, after, 'understudy_snapshot_seconds');
  assert.ok(delta !== null);
  assert.equal(delta.count, 2);
  assert.ok(Math.abs(delta.sum - 1.2) < 1e-9);
  assert.ok(Math.abs((delta.mean ?? 0) - 0.6) < 1e-9);
  assert.equal(delta.maxAtMost, 1, 'the new observations fit only from the le=1 bucket on');
  assert.equal(histogramDelta(before, after, 'absent_histogram'), null);
});

test('judge: met / missed with relative margins', () => {
  assert.deepEqual(judge(2, '>=', 1.5), { status: 'met', margin: '+33%' });
  assert.deepEqual(judge(1.2, '>=', 1.5), { status: 'missed', margin: '-20%' });
  assert.deepEqual(judge(300, '<', 500), { status: 'met', margin: '+40%' });
  assert.deepEqual(judge(600, '<', 500), { status: 'missed', margin: '-20%' });
  assert.equal(judge(500, '<', 500).status, 'missed');
  assert.equal(judge(500, '<=', 500).status, 'met');
  assert.deepEqual(judge(0, '==', 0), { status: 'met', margin: 'exactly' });
  assert.deepEqual(judge(3, '==', 0), { status: 'missed', margin: '+3' });
  assert.deepEqual(judge(null, '>=', 1), { status: 'not measured', margin: '-' });
});

test('targets of issue 7 from a complete run', () => {
  const targets = new Map(evaluateTargets(results(), { rssLimitMb: 512 }).map((t) => [t.id, t]));
  assert.equal(targets.get('write-throughput-vs-etcd')?.measured, 2);
  assert.equal(targets.get('write-throughput-vs-etcd')?.status, 'met');
  assert.equal(targets.get('write-p99-vs-etcd')?.measured, 0.8);
  assert.equal(targets.get('write-p99-vs-etcd')?.status, 'met');
  assert.equal(targets.get('linearizable-reads-vs-writes')?.measured, 4);
  assert.equal(targets.get('read-stale-scaling')?.measured, 1.8);
  assert.equal(targets.get('read-stale-scaling')?.status, 'met');
  assert.equal(targets.get('read-session-scaling')?.measured, 2);
  assert.equal(targets.get('failover-p50')?.measured, 300);
  assert.equal(targets.get('failover-p50')?.status, 'met');
  assert.equal(targets.get('failover-p99')?.measured, 600, 'with 5 kills p99 is the maximum');
  assert.equal(targets.get('failover-p99')?.status, 'met');
  assert.equal(targets.get('spurious-elections')?.status, 'met');
  assert.equal(targets.get('rss-at-256-clients')?.measured, 600);
  assert.equal(targets.get('rss-at-256-clients')?.status, 'missed');
  assert.equal(targets.get('rss-at-256-clients')?.margin, '-17%');
});

test('targets: missing sections are not measured; a lower concurrency is only indicative', () => {
  const partial = results({ etcd: { version: null, skipped: "'etcd' was not found", cells: [], failover: null, error: null }, soak: undefined, failover: undefined });
  const targets = new Map(evaluateTargets(partial, { rssLimitMb: 512 }).map((t) => [t.id, t]));
  assert.equal(targets.get('write-throughput-vs-etcd')?.status, 'not measured');
  assert.match(targets.get('write-throughput-vs-etcd')?.note ?? '', /not found/);
  assert.equal(targets.get('failover-p50')?.status, 'not measured');
  assert.equal(targets.get('spurious-elections')?.status, 'not measured');

  const low = results({ workloads: [cell('understudy', 'write', 16, 1500, 20), cell('understudy', 'read-linearizable', 16, 6000, 5)] });
  const lowTargets = new Map(evaluateTargets(low, { rssLimitMb: 512 }).map((t) => [t.id, t]));
  assert.equal(lowTargets.get('linearizable-reads-vs-writes')?.measured, 4);
  assert.equal(lowTargets.get('linearizable-reads-vs-writes')?.status, 'not measured');
  assert.match(lowTargets.get('linearizable-reads-vs-writes')?.note ?? '', /indicative only \(would be met\)/);
  assert.equal(lowTargets.get('write-throughput-vs-etcd')?.measured, 1.25, 'compared at the common concurrency 16');
  assert.equal(cellNear(low.workloads ?? [], 'write', 64)?.concurrency, 16);

  const spurious = new Map(evaluateTargets(results({ soak: { ...soak, termChanges: 2, leaderChanges: 1 } }), { rssLimitMb: 512 }).map((t) => [t.id, t]));
  assert.equal(spurious.get('spurious-elections')?.measured, 2);
  assert.equal(spurious.get('spurious-elections')?.status, 'missed');
});

test('Markdown tables: alignment, escaping, empty cells', () => {
  const text = table(['name', 'value'], [['a|b', 1], [null, undefined]], ['l', 'r']);
  assert.equal(text, ['| name | value |', '| --- | ---: |', '| a\\|b | 1 |', '| - | - |'].join('\n'));
});

test('the report has every section, the targets with verdicts, and the etcd hint when etcd is absent', () => {
  const full = results();
  const report = renderReport({ ...full, targets: evaluateTargets(full, { rssLimitMb: 512 }) }, [{ file: 'throughput.svg', title: 'Throughput' }]);
  for (const heading of ['## Targets (issue 7)', '## Workloads', '## Side by side with etcd', '## Failover', '## Spurious elections', '## Charts']) assert.ok(report.includes(heading), heading);
  assert.match(report, /\| write \| 64 \| 3000 \| 1500 \| 2\.00x \|/);
  assert.match(report, /failover: kill -9 of the leader to the first acknowledged write, p50: 300 ms \(target < 500 ms\): met by 40%/);
  assert.match(report, /!\[Throughput\]\(throughput\.svg\)/);
  const skipped = results({ etcd: { version: null, skipped: "'etcd' was not found", cells: [], failover: null, error: null } });
  const skippedReport = renderReport({ ...skipped, targets: evaluateTargets(skipped, { rssLimitMb: 512 }) });
  assert.ok(skippedReport.includes(ETCD_INSTALL_HINT));
  assert.match(skippedReport, /apt-get install -y etcd-server/);
});

/** A small XML well-formedness check: tags nest, attributes are quoted, text has no raw & or <. */
function assertWellFormed(svg: string): void {
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'), 'starts with the svg element');
  assert.ok(svg.trimEnd().endsWith('</svg>'));
  const stack: string[] = [];
  const tag = /<(\/?)([A-Za-z][\w-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g;
  let last = 0;
  for (const match of svg.matchAll(tag)) {
    const between = svg.slice(last, match.index);
    assert.ok(!/[<>]/.test(between), `stray markup before ${match[0]}: ${between}`);
    assert.ok(!/&(?!amp;|lt;|gt;|quot;|apos;)/.test(between), `raw & in text: ${between}`);
    last = (match.index ?? 0) + match[0].length;
    const [, closing, name, , selfClosing] = match;
    if (closing === '/') assert.equal(stack.pop(), name, `</${name}> closes the open element`);
    else if (selfClosing !== '/') stack.push(name as string);
  }
  assert.equal(svg.slice(last).trim(), '');
  assert.deepEqual(stack, [], 'every element is closed');
  assert.ok(!/NaN|Infinity|undefined/.test(svg), 'no NaN, Infinity or undefined in coordinates');
}

test('SVG line chart: well-formed, one group and path per series, log axes, escaped names', () => {
  const svg = lineChart({
    title: 'Throughput <vs> clients & more', xLabel: 'clients', yLabel: 'ops/s', xLog: true,
    series: [
      { name: 'write', points: [[1, 220], [16, 1158], [64, 2226], [256, 2100]] },
      { name: 'read & stale', dashed: true, points: [[1, 3900], [16, 14_694], [64, 11_356]] },
      { name: 'empty', points: [] },
      { name: 'bad', points: [[0, 1], [Number.NaN, 2]] },
    ],
  });
  assertWellFormed(svg);
  assert.equal((svg.match(/<g class="series"/g) ?? []).length, 4);
  assert.equal((svg.match(/<path /g) ?? []).length, 2, 'series without usable points draw no path');
  assert.ok(svg.includes('data-series="write"'));
  assert.ok(svg.includes('data-series="read &amp; stale"'));
  assert.ok(svg.includes('stroke-dasharray'));
  assert.ok(svg.includes('Throughput &lt;vs&gt; clients &amp; more'));
  for (const label of ['>1<', '>16<', '>64<', '>256<']) assert.ok(svg.includes(label), `x tick ${label}`);
  assert.ok(svg.includes('(log scale)'));
  assert.equal((svg.match(/<path d="M[^"]*"/)?.[0].match(/L/g) ?? []).length, 3, 'the write series joins its 4 points');
  const empty = lineChart({ title: 'Nothing', xLabel: 'x', yLabel: 'y', series: [] });
  assertWellFormed(empty);
  assert.ok(empty.includes('no data'));
});

test('SVG helpers: ticks, numbers, CDF points, escaping', () => {
  assert.deepEqual(niceTicks(0, 10, 5), [0, 2, 4, 6, 8, 10]);
  assert.deepEqual(niceTicks(0, 1, 4), [0, 0.5, 1]);
  assert.deepEqual(niceTicks(1100, 1400, 6), [1100, 1150, 1200, 1250, 1300, 1350, 1400]);
  assert.equal(compactNumber(1_000_000), '1M');
  assert.equal(compactNumber(12_500), '12.5k');
  assert.equal(compactNumber(1050), '1050');
  assert.equal(compactNumber(0.25), '0.25');
  assert.deepEqual(cdfPoints([300, 100, 200, 400]), [[100, 0.25], [200, 0.5], [300, 0.75], [400, 1]]);
  assert.equal(escapeXml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;');
});

test('charts of a run: throughput (both systems), failover CDF, growth curves', () => {
  const growth = {
    snapshotEveryEntries: 5000, logEntriesKeptAfterSnapshot: 1000, notes: [], error: null,
    points: [10_000, 100_000].map((documents, i) => ({
      documents, loadSeconds: 1, loadDocsPerSecond: 5000,
      write: { concurrency: 16, opsPerSecond: 800, errors: 0, errorSamples: [], latencyMs: { p50: 10 + i, p99: 30 + i, p999: 40 + i, max: 50, mean: 12, count: 100 } },
      snapshot: { metricPresent: true, taken: 1, meanSeconds: 0.1 * (i + 1), maxSecondsAtMost: 0.25, bytes: 1e6, leaderSnapshotIndex: 100 },
      learner: { id: `l${i}`, catchUpMs: 500 * (i + 1), viaSnapshot: true, error: null },
      restart: { node: 'n1', healthyMs: 800, caughtUpMs: 900, error: null },
      rssMbPerNode: { n1: 150, n2: 160, n3: 170 }, rssPeakMbPerNode: { n1: 150, n2: 160, n3: 170 }, diskMbPerNode: { n1: 4, n2: 4, n3: 4 }, termChanges: 0, termChangesByPhase: { load: 0, writes: 0, learner: 0, restart: 0 },
    })),
  };
  const charts = buildCharts(results({ growth }));
  assert.deepEqual(charts.map((chart) => chart.file), ['throughput.svg', 'latency-p99.svg', 'failover.svg', 'growth-times.svg', 'growth-latency.svg', 'growth-memory.svg']);
  for (const chart of charts) assertWellFormed(chart.svg);
  const throughput = charts[0]?.svg ?? '';
  assert.ok(throughput.includes('data-series="write"'));
  assert.ok(throughput.includes('data-series="write (etcd)"'));
  const failoverChart = charts[2]?.svg ?? '';
  assert.ok(failoverChart.includes('data-series="understudy (5 kills)"'));
  assert.ok(failoverChart.includes('data-series="etcd (3 kills)"'));
  assert.ok((charts[5]?.svg ?? '').includes('data-series="n3 RSS"'));
  assert.deepEqual(buildCharts(results({ workloads: undefined, failover: undefined, etcd: undefined })), []);
});

test('options: flags beat the environment, which beats --smoke, which beats the defaults', () => {
  assert.deepEqual(parseOptions([], {}).concurrency, [1, 16, 64, 256]);
  assert.equal(parseOptions([], {}).kills, 20);
  assert.equal(parseOptions([], {}).soakMinutes, 10);
  assert.deepEqual(parseOptions([], {}).growthSizes, [10_000, 100_000, 1_000_000]);
  const smoke = parseOptions(['--smoke'], {});
  assert.equal(smoke.seconds, 2);
  assert.equal(smoke.kills, 3);
  assert.deepEqual(smoke.growthSizes, [2000, 5000]);
  assert.equal(parseOptions(['--smoke'], { BENCH_SECONDS: '7' }).seconds, 7);
  assert.equal(parseOptions(['--smoke', '--seconds', '9'], { BENCH_SECONDS: '7' }).seconds, 9);
  assert.equal(parseOptions(['--seconds=3'], {}).seconds, 3);
  assert.deepEqual(parseOptions(['--only', 'failover,etcd'], {}).sections, ['failover', 'etcd']);
  assert.deepEqual(parseOptions([], { BENCH_ONLY: 'soak' }).sections, ['soak']);
  assert.deepEqual(parseOptions([], { BENCH_CONCURRENCY: '1,64' }).etcdConcurrency, [1, 64], 'etcd follows --concurrency by default');
  assert.equal(parseOptions(['--kills', '25'], {}).etcdKills, 25);
  assert.equal(parseOptions(['--kills', '25', '--etcd-kills', '5'], {}).etcdKills, 5);
  assert.throws(() => parseOptions(['--only', 'everything'], {}), /unknown section/);
  assert.throws(() => parseOptions(['--workloads', 'write,nope'], {}), /unknown workload/);
  assert.throws(() => parseOptions(['--concurrency', '0'], {}), /positive integers/);
  assert.throws(() => parseOptions(['--bogus'], {}), /unknown option/);
  assert.throws(() => parseOptions(['--seconds'], {}), /needs a value/);
  assert.equal(DEFAULT_OPTIONS.outDir, 'bench/results');
  assert.equal(etcdRuns({ sections: ['etcd'] }, 'failover'), true);
  assert.equal(etcdRuns({ sections: ['workloads', 'etcd'] }, 'failover'), false);
  assert.equal(etcdRuns({ sections: ['workloads', 'etcd'] }, 'workloads'), true);
  assert.equal(etcdRuns({ sections: ['workloads', 'failover'] }, 'workloads'), false);
});

test('memory at 256 clients: the anonymous part is reported beside the peak RSS, which alone decides the verdict', () => {
  const base = results();
  const withAnon = {
    ...base,
    workloads: (base.workloads ?? []).map((c) => (c.concurrency === 256 ? { ...c, rssAnonPeakMbPerNode: { n1: 340, n2: 120, n3: 110 } } : c)),
  };
  const target = evaluateTargets(withAnon, { rssLimitMb: 512 }).find((t) => t.id === 'rss-at-256-clients');
  assert.equal(target?.measured, 600);
  assert.equal(target?.status, 'missed');
  assert.match(target?.note ?? '', /anonymous part \(heap, buffers, queues\) at most 340 MB/);
  const without = evaluateTargets(base, { rssLimitMb: 512 }).find((t) => t.id === 'rss-at-256-clients');
  assert.doesNotMatch(without?.note ?? '', /anonymous/, 'older results without the figure say nothing of it');
  const table = cellsTable(withAnon.workloads.filter((c) => c.concurrency === 256));
  assert.match(table, /peak RSS MB per node \(anonymous\)/);
  assert.match(table, /n1 600 \(340\), n2 150 \(120\), n3 150 \(110\)/);
});
