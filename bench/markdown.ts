/** The Markdown report of a run, built from the results JSON alone (pure). */
import { formatNumber, formatRatio, ratio } from './stats.ts';
import { describeTarget } from './targets.ts';
import { WORKLOAD_DESCRIPTIONS, type BenchResults, type Cell, type FailoverResult } from './types.ts';

export const ETCD_INSTALL_HINT = 'install etcd (Debian: `apt-get install -y etcd-server`, etcd 3.4) so that `etcd` is on PATH, or set BENCH_ETCD_BIN=/path/to/etcd';

type Align = 'l' | 'r';

function escapeCell(value: string): string {
  return value.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** A GitHub-flavoured Markdown table; null and undefined cells render as "-". */
export function table(headers: readonly string[], rows: readonly (readonly (string | number | null | undefined)[])[], align: readonly Align[] = []): string {
  const cell = (value: string | number | null | undefined): string => (value === null || value === undefined || value === '' ? '-' : escapeCell(String(value)));
  const lines = [
    `| ${headers.map(escapeCell).join(' | ')} |`,
    `| ${headers.map((_, i) => (align[i] === 'r' ? '---:' : '---')).join(' | ')} |`,
    ...rows.map((row) => `| ${headers.map((_, i) => cell(row[i])).join(' | ')} |`),
  ];
  return lines.join('\n');
}

const perNode = (values: Readonly<Record<string, number>>): string => Object.keys(values).length === 0 ? '-' : Object.entries(values).map(([id, value]) => `${id} ${value}`).join(', ');

/** Peak RSS per node, with its anonymous part in parentheses when the run measured it. */
function rssPerNode(c: Cell): string {
  const anon = c.rssAnonPeakMbPerNode;
  if (anon === undefined) return perNode(c.rssPeakMbPerNode);
  return Object.keys(c.rssPeakMbPerNode).length === 0 ? '-'
    : Object.entries(c.rssPeakMbPerNode).map(([id, value]) => `${id} ${value} (${anon[id] ?? '-'})`).join(', ');
}

export function cellsTable(cells: readonly Cell[]): string {
  return table(
    ['workload', 'clients', 'ops/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'errors', 'leader fsyncs/s', 'entries/fsync', 'CPU s per node', 'peak RSS MB per node (anonymous)'],
    cells.map((c) => [c.workload, c.concurrency, formatNumber(c.opsPerSecond), c.latencyMs.p50, c.latencyMs.p99, c.latencyMs.p999, c.latencyMs.max, c.errors,
      formatNumber(c.leaderFsyncsPerSecond), c.entriesPerFsync, perNode(c.cpuSecondsPerNode), rssPerNode(c)]),
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l', 'l'],
  );
}

export function comparisonTable(ours: readonly Cell[], etcd: readonly Cell[]): string {
  const rows: (string | number | null)[][] = [];
  for (const cell of ours) {
    const other = etcd.find((candidate) => candidate.workload === cell.workload && candidate.concurrency === cell.concurrency);
    if (other === undefined) continue;
    rows.push([cell.workload, cell.concurrency, formatNumber(cell.opsPerSecond), formatNumber(other.opsPerSecond), formatRatio(ratio(cell.opsPerSecond, other.opsPerSecond)),
      cell.latencyMs.p99, other.latencyMs.p99, formatRatio(ratio(cell.latencyMs.p99, other.latencyMs.p99))]);
  }
  return table(['workload', 'clients', 'Understudy ops/s', 'etcd ops/s', 'throughput ratio (higher is better)', 'Understudy p99 ms', 'etcd p99 ms', 'p99 ratio (lower is better)'], rows,
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r']);
}

function failoverRow(result: FailoverResult): (string | number | null)[] {
  const d = result.killToFirstWriteMs;
  const catchUp = result.kills.map((kill) => kill.restartToCaughtUpMs).filter((ms): ms is number => ms !== null).sort((a, b) => a - b);
  return [result.system, result.kills.length, d.p50, d.p99, d.max, d.mean, result.killToLeaderKnownMs.p50, result.killToLeaderKnownMs.max, d.missing,
    `${result.writes.failed} / ${result.writes.sent}`, catchUp.length === 0 ? null : catchUp[Math.floor(catchUp.length / 2)] ?? null, result.error];
}

export function failoverTable(results: readonly FailoverResult[]): string {
  return table(['system', 'kills', 'p50 ms', 'p99 ms', 'max ms', 'mean ms', 'leader known p50 ms', 'leader known max ms', 'no write in bound', 'writes failed / sent', 'restart to caught up, median ms', 'error'],
    results.map(failoverRow), ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l']);
}

export function renderReport(results: BenchResults, charts: readonly { file: string; title: string }[] = []): string {
  const m = results.machine;
  const out: string[] = [];
  out.push(`# Understudy benchmark, ${results.date.slice(0, 10)}`);
  out.push('');
  out.push(`Machine: ${m.cpus} cores (${m.cpuModel}), ${m.memoryGb} GiB, Node ${m.node}, ${m.os}; load average at start ${m.loadAverageAtStart.join(' / ')}${m.loadAverageAtEnd === undefined ? '' : `, at end ${m.loadAverageAtEnd.join(' / ')} (with the benchmark's own load)`}. ` +
    `Started ${results.date}, took ${Math.round(results.durationSeconds)} s. Load generator, servers${results.etcd?.cells.length ? ' and etcd' : ''} share the machine.`);
  out.push('');
  out.push(`Options: \`${JSON.stringify(results.options)}\``);
  out.push('');
  out.push('## Targets (issue 7)');
  out.push('');
  out.push(table(['target', 'measured', 'goal', 'verdict', 'margin', 'detail'],
    results.targets.map((t) => [t.description, t.measured === null ? null : t.unit === 'x' ? formatRatio(t.measured) : `${t.measured}${t.unit === '' ? '' : ` ${t.unit}`}`,
      `${t.comparator === '==' ? '=' : t.comparator} ${t.threshold}${t.unit === 'x' ? 'x' : t.unit === '' ? '' : ` ${t.unit}`}`, t.status, t.margin, t.note]),
    ['l', 'r', 'l', 'l', 'r', 'l']));
  out.push('');
  for (const t of results.targets) out.push(`- ${describeTarget(t)}`);
  out.push('');
  if (results.workloads !== undefined) {
    out.push('## Workloads (Understudy, 3 nodes, default settings)');
    out.push('');
    out.push(cellsTable(results.workloads));
    out.push('');
    const used = [...new Set(results.workloads.map((cell) => cell.workload))];
    for (const workload of used) out.push(`- \`${workload}\`: ${WORKLOAD_DESCRIPTIONS[workload]}`);
    out.push('');
    out.push('Latency is measured per request by the load generator (HdrHistogram, successful requests only); ops/s counts successful requests started in the measured window. ' +
      'CPU seconds are user+system time of each server process during the window; peak RSS is VmHWM, reset at the start of each cell. ' +
      'Entries per fsync come from the leader\'s `understudy_log_entries_per_fsync` histogram.');
    out.push('');
  }
  if (results.etcd !== undefined) {
    out.push('## Side by side with etcd');
    out.push('');
    if (results.etcd.skipped !== null) {
      out.push(`Skipped: ${results.etcd.skipped}. To include it, ${ETCD_INSTALL_HINT}.`);
    } else {
      out.push(`etcd ${results.etcd.version ?? '?'}, 3 members on loopback, default heartbeat 100 ms / election 1000 ms, driven through its HTTP/JSON gateway ` +
        '(`/v3/kv/put`, `/v3/kv/range` serializable=false for linearizable and true for stale, `/v3/kv/txn` for batches) with the same value size, concurrency and load generator. ' +
        'etcd has no session reads.');
      out.push('');
      if (results.workloads !== undefined) {
        out.push(comparisonTable(results.workloads, results.etcd.cells));
        out.push('');
      }
      out.push('etcd figures:');
      out.push('');
      out.push(cellsTable(results.etcd.cells));
      out.push('');
      const ours = results.failover;
      const theirs = results.etcd.failover;
      if (ours !== undefined && theirs !== null) {
        out.push(`Failover at default timeouts (Understudy: election timeout 200-400 ms; etcd: 1000 ms): p50 ${formatRatio(ratio(ours.killToFirstWriteMs.p50, theirs.killToFirstWriteMs.p50))}, ` +
          `p99 ${formatRatio(ratio(ours.killToFirstWriteMs.p99, theirs.killToFirstWriteMs.p99))} of etcd's (lower is better).`);
        out.push('');
      }
    }
    if (results.etcd.error !== null) out.push(`etcd run failed: ${results.etcd.error}`, '');
  }
  const failovers = [results.failover, results.etcd?.failover ?? undefined].filter((r): r is FailoverResult => r !== undefined && r !== null);
  if (failovers.length > 0) {
    out.push('## Failover');
    out.push('');
    out.push(`Open-loop writes (${failovers[0]?.ratePerSecond}/s, ack=majority, ${failovers[0]?.writeTimeoutMs} ms timeout) go to the node believed to be leader; a failed write triggers leader discovery. ` +
      'Each round kills the current leader with SIGKILL by PID, measures the time to the first acknowledged write sent after the kill, restarts the killed node and waits until it has caught up.');
    out.push('');
    out.push(failoverTable(failovers));
    out.push('');
    for (const result of failovers) {
      out.push(`<details><summary>${result.system}: every kill</summary>`);
      out.push('');
      out.push(table(['#', 'killed', 'new leader', 'to first write ms', 'leader known ms', 'writes failed', 'restart to caught up ms'],
        result.kills.map((kill, i) => [i + 1, kill.killed, kill.newLeader, kill.killToFirstWriteMs, kill.killToLeaderKnownMs, kill.writesFailed, kill.restartToCaughtUpMs]),
        ['r', 'l', 'l', 'r', 'r', 'r', 'r']));
      out.push('');
      out.push('</details>');
      out.push('');
    }
  }
  if (results.soak !== undefined) {
    const s = results.soak;
    out.push('## Spurious elections (steady load, no faults)');
    out.push('');
    out.push(table(['minutes', 'writes/s', 'writes ok / failed', 'p50 ms', 'p99 ms', 'max ms', 'terms before', 'terms after', 'term changes', 'leader changes', 'leaders', 'error'],
      [[s.minutes, s.ratePerSecond, `${s.writes.ok} / ${s.writes.failed}`, s.latencyMs?.p50, s.latencyMs?.p99, s.latencyMs?.max, perNode(s.termsBefore), perNode(s.termsAfter), s.termChanges, s.leaderChanges, s.leaders.join(', '), s.error]],
      ['r', 'r', 'r', 'r', 'r', 'r', 'l', 'l', 'r', 'r', 'l', 'l']));
    out.push('');
    if (s.timeline.length > 0) {
      out.push('Changes seen:');
      out.push('');
      for (const line of s.timeline.slice(0, 50)) out.push(`- ${line}`);
      out.push('');
    }
  }
  if (results.growth !== undefined) {
    const g = results.growth;
    out.push('## Growth');
    out.push('');
    out.push(`One cluster grows through each size (loaded with atomic batches of 100 puts, ack=majority), with snapshotEveryEntries=${g.snapshotEveryEntries} and ` +
      `logEntriesKeptAfterSnapshot=${g.logEntriesKeptAfterSnapshot} so that a snapshot covers each size and a new learner must receive one.`);
    out.push('');
    out.push(table(['documents', 'load docs/s', 'write ops/s', 'write p50 ms', 'write p99 ms', 'snapshot mean s', 'snapshot max s <=', 'snapshot MB', 'learner catch-up s', 'via snapshot', 'restart: healthy s', 'restart: caught up s', 'RSS MB per node', 'peak RSS MB per node', 'disk MB per node', 'term changes'],
      g.points.map((p) => [p.documents, formatNumber(p.loadDocsPerSecond), formatNumber(p.write.opsPerSecond), p.write.latencyMs.p50, p.write.latencyMs.p99,
        p.snapshot.meanSeconds === null ? (p.snapshot.metricPresent ? '-' : 'no metric') : formatNumber(p.snapshot.meanSeconds, 3), p.snapshot.maxSecondsAtMost,
        p.snapshot.bytes === null ? null : formatNumber(p.snapshot.bytes / 2 ** 20, 1),
        p.learner.catchUpMs === null ? p.learner.error : formatNumber(p.learner.catchUpMs / 1000, 2), p.learner.viaSnapshot === null ? null : p.learner.viaSnapshot ? 'yes' : 'no',
        p.restart.healthyMs === null ? p.restart.error : formatNumber(p.restart.healthyMs / 1000, 2), p.restart.caughtUpMs === null ? null : formatNumber(p.restart.caughtUpMs / 1000, 2),
        perNode(p.rssMbPerNode), perNode(p.rssPeakMbPerNode), perNode(p.diskMbPerNode),
        p.termChanges === 0 || p.termChangesByPhase === undefined ? p.termChanges
          : `${p.termChanges} (load ${p.termChangesByPhase.load}, writes ${p.termChangesByPhase.writes}, learner ${p.termChangesByPhase.learner}, restart ${p.termChangesByPhase.restart})`]),
      ['r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l', 'r', 'r', 'l', 'l', 'l', 'r']));
    out.push('');
    for (const note of g.notes) out.push(`- ${note}`);
    if (g.error !== null) out.push(`- Growth run failed: ${g.error}`);
    out.push('');
  }
  if (charts.length > 0) {
    out.push('## Charts');
    out.push('');
    for (const chart of charts) out.push(`![${chart.title}](${chart.file})`, '');
  }
  if (results.notes.length > 0) {
    out.push('## Notes');
    out.push('');
    for (const note of results.notes) out.push(`- ${note}`);
    out.push('');
  }
  return out.join('\n');
}
