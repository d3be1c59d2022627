/** The SVG charts of a run, built from the results JSON alone (pure). */
import { cdfPoints, lineChart, PALETTE, type Series } from './svg.ts';
import type { BenchResults, Cell, Workload } from './types.ts';

export interface Chart {
  readonly file: string;
  readonly title: string;
  readonly svg: string;
}

function throughputSeries(cells: readonly Cell[], workloads: readonly Workload[], suffix: string, dashed: boolean): Series[] {
  return workloads.map((workload, i) => ({
    name: `${workload}${suffix}`,
    color: PALETTE[i % PALETTE.length] as string,
    dashed,
    points: cells.filter((cell) => cell.workload === workload).map((cell) => [cell.concurrency, cell.opsPerSecond] as const),
  })).filter((series) => series.points.length > 0);
}

export function buildCharts(results: Omit<BenchResults, 'targets'>): Chart[] {
  const charts: Chart[] = [];
  const ours = results.workloads ?? [];
  const etcd = results.etcd?.cells ?? [];
  if (ours.length > 0 || etcd.length > 0) {
    const workloads = [...new Set([...ours, ...etcd].map((cell) => cell.workload))];
    const series = [...throughputSeries(ours, workloads, '', false), ...throughputSeries(etcd, workloads, ' (etcd)', true)];
    charts.push({
      file: 'throughput.svg',
      title: 'Throughput vs concurrency (Understudy solid, etcd dashed)',
      svg: lineChart({ title: 'Throughput vs concurrency (Understudy solid, etcd dashed)', xLabel: 'clients', yLabel: 'operations / s', xLog: true, series, height: Math.max(420, 90 + series.length * 20) }),
    });
    const p99: Series[] = [
      ...workloads.map((workload, i) => ({ name: `${workload} p99`, color: PALETTE[i % PALETTE.length] as string, points: ours.filter((cell) => cell.workload === workload).map((cell) => [cell.concurrency, cell.latencyMs.p99] as const) })),
      ...workloads.map((workload, i) => ({ name: `${workload} p99 (etcd)`, dashed: true, color: PALETTE[i % PALETTE.length] as string, points: etcd.filter((cell) => cell.workload === workload).map((cell) => [cell.concurrency, cell.latencyMs.p99] as const) })),
    ].filter((series) => series.points.length > 0);
    charts.push({
      file: 'latency-p99.svg',
      title: 'p99 latency vs concurrency (Understudy solid, etcd dashed)',
      svg: lineChart({ title: 'p99 latency vs concurrency (Understudy solid, etcd dashed)', xLabel: 'clients', yLabel: 'p99 latency, ms', xLog: true, yLog: true, series: p99, height: Math.max(420, 90 + p99.length * 20) }),
    });
  }
  const failovers = [results.failover, results.etcd?.failover ?? undefined].filter((result) => result !== undefined && result !== null);
  if (failovers.length > 0) {
    const series: Series[] = failovers.map((result, i) => ({
      name: `${result.system} (${result.kills.length} kills)`,
      color: PALETTE[i] as string,
      points: cdfPoints(result.kills.map((kill) => kill.killToFirstWriteMs).filter((ms): ms is number => ms !== null)),
    }));
    charts.push({
      file: 'failover.svg',
      title: 'Failover: kill -9 of the leader to the first acknowledged write (CDF)',
      svg: lineChart({ title: 'Failover: kill -9 of the leader to the first acknowledged write', xLabel: 'ms after kill', yLabel: 'fraction of kills', yMin: 0, xMin: 0, series }),
    });
  }
  const points = results.growth?.points ?? [];
  if (points.length > 0) {
    const by = (name: string, pick: (point: (typeof points)[number]) => number | null, color: number): Series => ({
      name, color: PALETTE[color] as string,
      points: points.map((point) => [point.documents, pick(point)] as const).filter((pair): pair is readonly [number, number] => pair[1] !== null),
    });
    charts.push({
      file: 'growth-times.svg',
      title: 'Growth: snapshot, learner catch-up and restart recovery times',
      svg: lineChart({
        title: 'Growth: snapshot, transfer and recovery times', xLabel: 'documents', yLabel: 'seconds', xLog: true,
        series: [
          by('snapshot (mean)', (p) => p.snapshot.meanSeconds, 0),
          by('learner catch-up (snapshot transfer)', (p) => p.learner.catchUpMs === null ? null : p.learner.catchUpMs / 1000, 1),
          by('restart to caught up', (p) => p.restart.caughtUpMs === null ? null : p.restart.caughtUpMs / 1000, 2),
        ],
      }),
    });
    charts.push({
      file: 'growth-latency.svg',
      title: 'Growth: single-write latency after loading',
      svg: lineChart({
        title: `Growth: write latency at ${points[0]?.write.concurrency ?? '?'} clients`, xLabel: 'documents', yLabel: 'ms', xLog: true,
        series: [by('p50', (p) => p.write.latencyMs.p50, 0), by('p99', (p) => p.write.latencyMs.p99, 1), by('p99.9', (p) => p.write.latencyMs.p999, 3)],
      }),
    });
    const nodes = [...new Set(points.flatMap((point) => Object.keys(point.rssMbPerNode)))].sort();
    charts.push({
      file: 'growth-memory.svg',
      title: 'Growth: memory (RSS) per node',
      svg: lineChart({
        title: 'Growth: RSS per node', xLabel: 'documents', yLabel: 'MB', xLog: true,
        series: nodes.map((node, i) => by(`${node} RSS`, (p) => p.rssMbPerNode[node] ?? null, i)),
      }),
    });
  }
  return charts;
}
