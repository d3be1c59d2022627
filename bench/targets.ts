/**
 * The goals of issue 7, checked against the figures of a run. Reported, never asserted: each
 * target says met / missed / not measured and by how much.
 */
import { formatRatio, ratio, round } from './stats.ts';
import type { BenchResults, Cell, TargetResult, Workload } from './types.ts';

export interface TargetOptions {
  /** Bound for the peak RSS of any node in the 256-client cells. */
  readonly rssLimitMb: number;
}

type Comparator = TargetResult['comparator'];

/** The cell of this workload at the wanted concurrency, or at the highest one run below it. */
export function cellNear(cells: readonly Cell[], workload: Workload, concurrency: number): Cell | null {
  const candidates = cells.filter((cell) => cell.workload === workload && cell.concurrency <= concurrency);
  if (candidates.length === 0) return null;
  return candidates.reduce((best, cell) => (cell.concurrency > best.concurrency ? cell : best));
}

/** The highest concurrency at most `wanted` that both lists ran for this workload. */
export function commonConcurrency(a: readonly Cell[], b: readonly Cell[], workload: Workload, wanted: number): number | null {
  const levels = a.filter((cell) => cell.workload === workload && cell.concurrency <= wanted).map((cell) => cell.concurrency)
    .filter((level) => b.some((cell) => cell.workload === workload && cell.concurrency === level));
  return levels.length === 0 ? null : Math.max(...levels);
}

export function judge(measured: number | null, comparator: Comparator, threshold: number): { status: TargetResult['status']; margin: string } {
  if (measured === null || !Number.isFinite(measured)) return { status: 'not measured', margin: '-' };
  let met: boolean;
  let relative: number | null;
  switch (comparator) {
    case '>=':
      met = measured >= threshold;
      relative = threshold === 0 ? null : (measured - threshold) / threshold;
      break;
    case '<=':
    case '<':
      met = comparator === '<' ? measured < threshold : measured <= threshold;
      relative = threshold === 0 ? null : (threshold - measured) / threshold;
      break;
    case '==':
      met = measured === threshold;
      relative = null;
      break;
  }
  if (relative === null) {
    const difference = round(measured - threshold, 2);
    return { status: met ? 'met' : 'missed', margin: difference === 0 ? 'exactly' : `${difference > 0 ? '+' : ''}${difference}` };
  }
  const percent = Math.round(relative * 100);
  return { status: met ? 'met' : 'missed', margin: `${percent >= 0 ? '+' : ''}${percent}%` };
}

/**
 * One target. `exact` is false when the figure comes from a stand-in (a lower concurrency than
 * the target names): then the verdict is "not measured" and the note says "indicative".
 */
function target(id: string, description: string, measured: number | null, comparator: Comparator, threshold: number, unit: string, note: string, exact = true): TargetResult {
  const judged = judge(measured, comparator, threshold);
  const status = exact ? judged.status : 'not measured';
  const fullNote = exact || measured === null ? note : `indicative only (would be ${judged.status}): ${note}`;
  return { id, description, measured: measured === null ? null : round(measured, 3), comparator, threshold, unit, status, margin: judged.margin, note: fullNote };
}

export function evaluateTargets(results: Omit<BenchResults, 'targets'>, options: TargetOptions): TargetResult[] {
  const ours = results.workloads ?? [];
  const etcd = results.etcd?.cells ?? [];
  const out: TargetResult[] = [];

  // 1. Writes at 64 clients against etcd: throughput and p99.
  const level = commonConcurrency(ours, etcd, 'write', 64);
  const ourWrite = level === null ? null : cellNear(ours, 'write', level);
  const etcdWrite = level === null ? null : cellNear(etcd, 'write', level);
  const vsNote = level === null
    ? (results.etcd?.skipped ?? 'needs the write workload on both systems')
    : `at ${level} clients: ${Math.round(ourWrite?.opsPerSecond ?? 0)} vs ${Math.round(etcdWrite?.opsPerSecond ?? 0)} ops/s, p99 ${ourWrite?.latencyMs.p99} vs ${etcdWrite?.latencyMs.p99} ms${level === 64 ? '' : ' (64 not run)'}`;
  out.push(target('write-throughput-vs-etcd', 'writes (ack=majority, 64 clients): Understudy / etcd throughput',
    ratio(ourWrite?.opsPerSecond, etcdWrite?.opsPerSecond), '>=', 1.5, 'x', vsNote, level === 64));
  out.push(target('write-p99-vs-etcd', 'writes (64 clients): Understudy / etcd p99 latency (no worse)',
    ratio(ourWrite?.latencyMs.p99, etcdWrite?.latencyMs.p99), '<=', 1, 'x', vsNote, level === 64));

  // 2. Linearizable reads against writes.
  const reads = cellNear(ours, 'read-linearizable', 64);
  const writes = reads === null ? null : ours.find((cell) => cell.workload === 'write' && cell.concurrency === reads.concurrency) ?? null;
  out.push(target('linearizable-reads-vs-writes', 'linearizable reads / writes throughput (64 clients)',
    ratio(reads?.opsPerSecond, writes?.opsPerSecond), '>=', 3, 'x',
    reads === null || writes === null ? 'needs read-linearizable and write cells' : `at ${reads.concurrency} clients: ${Math.round(reads.opsPerSecond)} vs ${Math.round(writes.opsPerSecond)} ops/s`,
    reads?.concurrency === 64));

  // 3. Stale and session reads scale with replicas: spread over k nodes vs one node.
  for (const [spread, one, nodes] of [['read-stale', 'read-stale-one', 3], ['read-session', 'read-session-one', 2]] as const) {
    const wide = cellNear(ours, spread, 64);
    const single = wide === null ? null : ours.find((cell) => cell.workload === one && cell.concurrency === wide.concurrency) ?? null;
    out.push(target(`${spread}-scaling`, `${spread.replace('read-', '')} reads spread over ${nodes} nodes / on 1 node (64 clients)`,
      ratio(wide?.opsPerSecond, single?.opsPerSecond), '>=', 1.5, 'x',
      wide === null || single === null ? `needs ${spread} and ${one} cells` : `at ${wide.concurrency} clients: ${Math.round(wide.opsPerSecond)} vs ${Math.round(single.opsPerSecond)} ops/s; ideal ${nodes}x, needs free cores per node`,
      wide?.concurrency === 64));
  }

  // 4. Failover.
  const failover = results.failover;
  const failoverNote = failover === undefined ? 'failover not run'
    : `${failover.killToFirstWriteMs.count} kills${failover.killToFirstWriteMs.missing > 0 ? `, ${failover.killToFirstWriteMs.missing} without a write within the bound` : ''}`;
  out.push(target('failover-p50', 'failover: kill -9 of the leader to the first acknowledged write, p50', failover?.killToFirstWriteMs.p50 ?? null, '<', 500, 'ms', failoverNote));
  out.push(target('failover-p99', 'failover: kill -9 of the leader to the first acknowledged write, p99', failover?.killToFirstWriteMs.p99 ?? null, '<', 1000, 'ms',
    failover !== undefined && failover.killToFirstWriteMs.count < 100 ? `${failoverNote}; with fewer than 100 kills p99 is the maximum` : failoverNote));

  // 5. Spurious elections.
  const soak = results.soak;
  const spurious = soak === undefined || (soak.error !== null && soak.writes.sent === 0) ? null : Math.max(soak.termChanges, soak.leaderChanges);
  out.push(target('spurious-elections', 'spurious elections (term or leader changes) under steady load, no faults', spurious, '==', 0, '',
    soak === undefined ? 'soak not run' : `${soak.minutes} min at ${soak.ratePerSecond} writes/s: ${soak.termChanges} term changes, ${soak.leaderChanges} leader changes`));

  // 6. Memory at 256 clients.
  const top = ours.length === 0 ? null : Math.max(...ours.map((cell) => cell.concurrency).filter((level) => level <= 256));
  const topCells = top === null ? [] : ours.filter((cell) => cell.concurrency === top);
  const peak = topCells.length === 0 ? null : Math.max(...topCells.flatMap((cell) => Object.values(cell.rssPeakMbPerNode)));
  const anonValues = topCells.flatMap((cell) => Object.values(cell.rssAnonPeakMbPerNode ?? {}));
  const anonNote = anonValues.length === 0 ? '' : `; its anonymous part (heap, buffers, queues) at most ${Math.max(...anonValues)} MB, the rest mapped data files`;
  out.push(target('rss-at-256-clients', `peak RSS of any node at 256 clients (bound ${options.rssLimitMb} MB)`, peak, '<=', options.rssLimitMb, 'MB',
    top === null ? 'workloads not run' : `over ${topCells.length} cells at ${top} clients${top === 256 ? '' : ' (256 not run)'}${anonNote}`, top === 256));
  return out;
}

export function describeTarget(result: TargetResult): string {
  const measured = result.measured === null ? '-' : result.unit === 'x' ? formatRatio(result.measured) : `${result.measured}${result.unit === '' ? '' : ` ${result.unit}`}`;
  const goal = `${result.comparator === '==' ? '=' : result.comparator} ${result.threshold}${result.unit === 'x' ? 'x' : result.unit === '' ? '' : ` ${result.unit}`}`;
  const verdict = result.status === 'not measured' ? 'not measured'
    : result.comparator === '==' ? result.status
    : `${result.status} by ${result.margin.replace(/^[+-]/, '')}`;
  return `${result.description}: ${measured} (target ${goal}): ${verdict}`;
}
