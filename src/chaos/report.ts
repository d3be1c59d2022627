/**
 * Report computations for a chaos run (definitions in docs/chaos.md, "Report fields"):
 * per-fault detection, election and recovery times, acknowledged writes lost, availability, and
 * the verdicts of the checks; plus a readable table.
 *
 * All times are milliseconds on the history clock (0 = start of the run). A fault's window runs
 * from its injection to the next fault's injection (or the end of the workload); per-fault
 * measurements only look inside the fault's window. Pure functions: no I/O, no clock.
 */
import type { CheckVerdict, DuplicatesCheck, LinearizabilityCheck, ProcessCheck, SetCheck } from './checks.ts';
import { pairChaosOps, type ChaosEvent, type PairedOp } from './history.ts';
import type { MonitorSample } from './monitor.ts';

export interface FaultRecord {
  readonly index: number;
  readonly type: string;
  readonly detail: string;
  readonly targets: readonly string[];
  readonly mode: string | null;
  readonly cutLinks: readonly string[];
  readonly leaderBefore: string | null;
  readonly termBefore: number | null;
  readonly holdMs: number;
  /** ms, history clock */
  readonly injectedAtMs: number;
  readonly healedAtMs: number | null;
}

export interface FaultMetrics extends FaultRecord {
  /** End of this fault's window (next injection or end of workload), ms. */
  readonly windowEndMs: number;
  /**
   * Injection → first sign of the fault: a client op completing fail/info (a cas that merely found
   * another value does not count), or a node reporting another leader (or none).
   */
  readonly detectMs: number | null;
  readonly detectedBy: 'client' | 'monitor' | null;
  /** Injection → first poll showing a leader in a term above the pre-fault leader's term. */
  readonly electMs: number | null;
  readonly newLeader: string | null;
  /** Injection → completion of the first successful write (write, cas, add) invoked after the injection. */
  readonly rtoMs: number | null;
  /** Acknowledged adds lost whose acknowledgement came inside this window. */
  readonly lostWrites: number;
  readonly ops: number;
  readonly okOps: number;
}

export interface Stats {
  readonly count: number;
  readonly p50: number | null;
  readonly p99: number | null;
  readonly max: number | null;
  readonly mean: number | null;
}

export interface Availability {
  /** Client ops attempted (every invoke except the final read-all). */
  readonly attempted: number;
  readonly ok: number;
  readonly fail: number;
  readonly info: number;
  /** Register writes and cas answered 202 under ack=leader (info in the history, see workloads.ts ACCEPTED). */
  readonly accepted: number;
  /** (ok + accepted) / attempted: the fraction of ops that got a success answer. */
  readonly ratio: number | null;
  /** Cas ops that read another value than expected and so did not write: a correct answer, not an outage. */
  readonly casMismatches: number;
  /** (ok + casMismatches) / attempted: the fraction of ops the system answered definitely and correctly. */
  readonly answeredRatio: number | null;
  readonly byFunction: Record<string, { attempted: number; ok: number; fail: number; info: number }>;
  readonly windowMs: number;
  readonly windows: number;
  /** Windows (of windowMs, from the first invoke to the end of the workload) in which a write completed ok. */
  readonly windowsWithWrite: number;
  readonly windowRatio: number | null;
  /** Latency of ok ops per function, ms. */
  readonly latencyMs: Record<string, Stats>;
}

export interface ChecksSummary {
  readonly linearizability: LinearizabilityCheck;
  readonly set: SetCheck;
  readonly duplicates: DuplicatesCheck;
  readonly processes: ProcessCheck;
}

export interface ChaosReport {
  readonly version: 1;
  readonly verdict: CheckVerdict;
  readonly startedAt: string;
  /** Wall-clock ms (epoch) of history time 0: node logs (pino "time") minus this = history ms. */
  readonly originEpochMs: number | null;
  readonly options: Record<string, unknown>;
  readonly seed: number;
  readonly workloadMs: number;
  readonly checks: ChecksSummary;
  readonly faults: readonly FaultMetrics[];
  readonly summary: {
    readonly faults: number;
    readonly byType: Record<string, { count: number; detectMs: Stats; electMs: Stats; rtoMs: Stats; lostWrites: number; notRecovered: number }>;
    readonly detectMs: Stats;
    readonly electMs: Stats;
    readonly rtoMs: Stats;
    /** Faults after which no write succeeded inside the window. */
    readonly notRecovered: number;
    /** Acknowledged writes lost (set workload): RPO in writes. */
    readonly lostWrites: number;
    readonly lostWritesBeforeFirstFault: number;
    readonly availability: Availability;
    /** Count of each kind of unsuccessful answer a client got ("<f> <status> <code>" or "<f> timeout|reset|refused"). */
    readonly unsuccessfulAnswers: Record<string, number>;
  };
  /**
   * The chaos process's own event-loop delay (the proxies run on it: a stall there delays every
   * peer link). `perSecondMaxMs`: stats of the worst delay of each second; `stalls`: the seconds
   * (history ms) whose worst delay exceeded 100 ms.
   */
  readonly harness: { readonly perSecondMaxMs: Stats; readonly stalls: readonly { t: number; maxMs: number }[] } | null;
  readonly notes: readonly string[];
}

/** Nearest-rank percentile of an ascending list: the smallest value with at least p% at or below it. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1] ?? null;
}

export function stats(values: readonly (number | null)[]): Stats {
  const sorted = values.filter((value): value is number => value !== null && Number.isFinite(value)).sort((a, b) => a - b);
  if (sorted.length === 0) return { count: 0, p50: null, p99: null, max: null, mean: null };
  const mean = sorted.reduce((sum, value) => sum + value, 0) / sorted.length;
  return { count: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted[sorted.length - 1] ?? null, mean: round(mean) };
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

const WRITE_FUNCTIONS = new Set(['write', 'cas', 'add']);
const NS_PER_MS = 1e6;

/** Per-fault metrics (see FaultMetrics for the definitions). */
export function computeFaultMetrics(
  faults: readonly FaultRecord[],
  ops: readonly PairedOp[],
  samples: readonly MonitorSample[],
  workloadEndMs: number,
  lostAckTimesNs: readonly number[],
): FaultMetrics[] {
  const sortedFaults = [...faults].sort((a, b) => a.injectedAtMs - b.injectedAtMs);
  const clientOps = ops.filter((op) => op.f !== 'read-all');
  return sortedFaults.map((fault, i) => {
    const start = fault.injectedAtMs;
    const end = Math.max(start, sortedFaults[i + 1]?.injectedAtMs ?? workloadEndMs);
    const inWindow = (ms: number): boolean => ms >= start && ms < end;

    let clientDetect: number | null = null;
    for (const op of clientOps) {
      if (isSuccess(op) || op.completeTime === null || isMismatch(op)) continue;
      const t = op.completeTime / NS_PER_MS;
      if (inWindow(t) && (clientDetect === null || t < clientDetect)) clientDetect = t;
    }
    let monitorDetect: number | null = null;
    let elect: { t: number; node: string } | null = null;
    for (const sample of samples) {
      if (!inWindow(sample.t) || sample.view === null) continue;
      if (monitorDetect === null && sample.view.leaderId !== fault.leaderBefore) monitorDetect = sample.t;
      if (elect === null && sample.view.role === 'leader' && sample.view.term > (fault.termBefore ?? -1)) elect = { t: sample.t, node: sample.node };
    }
    let detectedBy: FaultMetrics['detectedBy'] = null;
    let detectAt: number | null = null;
    if (clientDetect !== null && (monitorDetect === null || clientDetect <= monitorDetect)) {
      detectedBy = 'client';
      detectAt = clientDetect;
    } else if (monitorDetect !== null) {
      detectedBy = 'monitor';
      detectAt = monitorDetect;
    }

    let rto: number | null = null;
    let count = 0;
    let okCount = 0;
    for (const op of clientOps) {
      const invoked = op.invokeTime / NS_PER_MS;
      if (!inWindow(invoked)) continue;
      count++;
      if (isSuccess(op)) okCount++;
      if (!isSuccess(op) || !WRITE_FUNCTIONS.has(op.f) || op.completeTime === null) continue;
      const done = op.completeTime / NS_PER_MS;
      if (done < end && (rto === null || done - start < rto)) rto = done - start;
    }
    const lost = lostAckTimesNs.filter((ns) => inWindow(ns / NS_PER_MS)).length;
    return {
      ...fault,
      windowEndMs: round(end),
      detectMs: detectAt === null ? null : round(detectAt - start),
      detectedBy,
      electMs: elect === null ? null : round(elect.t - start),
      newLeader: elect?.node ?? null,
      rtoMs: rto === null ? null : round(rto),
      lostWrites: lost,
      ops: count,
      okOps: okCount,
    };
  });
}

/** A completion that is a correct negative answer, not a sign of trouble (a cas that found another value). */
export function isMismatch(op: PairedOp): boolean {
  return op.f === 'cas' && op.outcome === 'fail' && (op.error ?? '').startsWith('mismatch');
}

/** A register write or cas answered 202 under ack=leader: info in the history, but acknowledged. */
export function isAccepted(op: PairedOp): boolean {
  return op.outcome === 'info' && (op.error ?? '').startsWith('202 accepted');
}

/** The client got a success answer: ok, or accepted (202 under ack=leader). */
export function isSuccess(op: PairedOp): boolean {
  return op.outcome === 'ok' || isAccepted(op);
}

export function computeAvailability(ops: readonly PairedOp[], workloadStartMs: number, workloadEndMs: number, windowMs = 1_000): Availability {
  const clientOps = ops.filter((op) => op.f !== 'read-all');
  const casMismatches = clientOps.filter(isMismatch).length;
  const byFunction: Availability['byFunction'] = {};
  const latencies = new Map<string, number[]>();
  let ok = 0;
  let fail = 0;
  let info = 0;
  const windows = Math.max(1, Math.ceil((workloadEndMs - workloadStartMs) / windowMs));
  const withWrite = new Set<number>();
  let accepted = 0;
  for (const op of clientOps) {
    const entry = (byFunction[op.f] ??= { attempted: 0, ok: 0, fail: 0, info: 0 });
    entry.attempted++;
    entry[op.outcome]++;
    if (op.outcome === 'ok') ok++;
    else if (op.outcome === 'fail') fail++;
    else info++;
    if (isAccepted(op)) accepted++;
    if (isSuccess(op) && op.completeTime !== null) {
      let list = latencies.get(op.f);
      if (list === undefined) latencies.set(op.f, (list = []));
      list.push((op.completeTime - op.invokeTime) / NS_PER_MS);
      if (WRITE_FUNCTIONS.has(op.f)) {
        const w = Math.floor((op.completeTime / NS_PER_MS - workloadStartMs) / windowMs);
        if (w >= 0 && w < windows) withWrite.add(w);
      }
    }
  }
  const latencyMs: Record<string, Stats> = {};
  for (const [f, list] of latencies) {
    const s = stats(list);
    latencyMs[f] = { ...s, p50: s.p50 === null ? null : round(s.p50), p99: s.p99 === null ? null : round(s.p99), max: s.max === null ? null : round(s.max) };
  }
  const attempted = clientOps.length;
  return {
    attempted, ok, fail, info, accepted,
    ratio: attempted === 0 ? null : (ok + accepted) / attempted,
    casMismatches,
    answeredRatio: attempted === 0 ? null : (ok + accepted + casMismatches) / attempted,
    byFunction, windowMs, windows, windowsWithWrite: withWrite.size,
    windowRatio: withWrite.size / windows,
    latencyMs,
  };
}

export function overallVerdict(checks: ChecksSummary): CheckVerdict {
  const verdicts = [checks.linearizability.verdict, checks.set.verdict, checks.duplicates.verdict, checks.processes.verdict];
  if (verdicts.includes('fail')) return 'fail';
  if (verdicts.includes('unknown')) return 'unknown';
  return 'pass';
}

export interface ReportInput {
  readonly startedAt: string;
  readonly options: Record<string, unknown>;
  readonly seed: number;
  readonly events: readonly ChaosEvent[];
  readonly faults: readonly FaultRecord[];
  readonly samples: readonly MonitorSample[];
  readonly workloadStartMs: number;
  readonly workloadEndMs: number;
  readonly checks: ChecksSummary;
  readonly notes?: readonly string[];
  /** Wall-clock ms (epoch) of history time 0. */
  readonly originEpochMs?: number;
  /** Count of each kind of unsuccessful answer, e.g. "write 503 NO_LEADER". */
  readonly answers?: Record<string, number>;
  /** The runner's own event-loop delay: the worst of every second, and the seconds above 100 ms. */
  readonly harness?: { readonly loopDelayPerSecondMs: readonly number[]; readonly stalls: readonly { t: number; maxMs: number }[] };
}

export function buildReport(input: ReportInput): ChaosReport {
  const ops = pairChaosOps(input.events);
  const faults = computeFaultMetrics(input.faults, ops, input.samples, input.workloadEndMs, input.checks.set.lostAckTimes);
  const byType: ChaosReport['summary']['byType'] = {};
  const types = [...new Set(faults.map((fault) => fault.type))].sort();
  for (const type of types) {
    const of = faults.filter((fault) => fault.type === type);
    byType[type] = {
      count: of.length,
      detectMs: stats(of.map((fault) => fault.detectMs)),
      electMs: stats(of.map((fault) => fault.electMs)),
      rtoMs: stats(of.map((fault) => fault.rtoMs)),
      lostWrites: of.reduce((sum, fault) => sum + fault.lostWrites, 0),
      notRecovered: of.filter((fault) => fault.rtoMs === null).length,
    };
  }
  const firstFault = faults[0]?.injectedAtMs ?? Infinity;
  const lostBefore = input.checks.set.lostAckTimes.filter((ns) => ns / NS_PER_MS < firstFault).length;
  return {
    version: 1,
    verdict: overallVerdict(input.checks),
    startedAt: input.startedAt,
    originEpochMs: input.originEpochMs === undefined ? null : Math.round(input.originEpochMs),
    options: input.options,
    seed: input.seed,
    workloadMs: Math.round(input.workloadEndMs - input.workloadStartMs),
    checks: input.checks,
    faults,
    summary: {
      faults: faults.length,
      byType,
      detectMs: stats(faults.map((fault) => fault.detectMs)),
      electMs: stats(faults.map((fault) => fault.electMs)),
      rtoMs: stats(faults.map((fault) => fault.rtoMs)),
      notRecovered: faults.filter((fault) => fault.rtoMs === null).length,
      lostWrites: input.checks.set.lost.length,
      lostWritesBeforeFirstFault: lostBefore,
      availability: computeAvailability(ops, input.workloadStartMs, input.workloadEndMs),
      unsuccessfulAnswers: input.answers ?? {},
    },
    harness: input.harness === undefined ? null : {
      perSecondMaxMs: roundStats(stats(input.harness.loopDelayPerSecondMs)),
      stalls: input.harness.stalls,
    },
    notes: input.notes ?? [],
  };
}

function roundStats(s: Stats): Stats {
  const r = (value: number | null): number | null => (value === null ? null : round(value));
  return { count: s.count, p50: r(s.p50), p99: r(s.p99), max: r(s.max), mean: r(s.mean) };
}

// ---------------------------------------------------------------------------------------------
// Rendering.

function ms(value: number | null): string {
  return value === null ? '-' : `${Math.round(value)}`;
}

function pct(value: number | null): string {
  return value === null ? '-' : `${(value * 100).toFixed(2)}%`;
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((cell, i) => Math.max(cell.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (row: readonly string[]): string => row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

function verdictLabel(verdict: CheckVerdict): string {
  return verdict === 'pass' ? 'PASS' : verdict === 'fail' ? 'FAIL' : 'UNKNOWN';
}

export function renderReport(report: ChaosReport, options: { faultRowsMax?: number } = {}): string {
  const o = report.options;
  const c = report.checks;
  const s = report.summary;
  const lines: string[] = [];
  lines.push(`Understudy chaos run: ${verdictLabel(report.verdict)}`);
  lines.push(`  seed ${report.seed}, workload ${Math.round(report.workloadMs / 1000)} s, ack=${String(o['ack'])}, workload=${String(o['workload'])}, nodes ${String(o['nodes'])}, planted bug: ${String(o['plantedBug'] ?? 'none')}`);
  lines.push(`  faults: ${String((o['faults'] as string[] | undefined)?.join(',') ?? '')}`);
  lines.push('');
  lines.push('Checks');
  const lin = c.linearizability;
  const set = c.set;
  lines.push(table(['check', 'verdict', 'detail'], [
    ['linearizable (register, per key)', verdictLabel(lin.verdict), `${lin.detail}: ${lin.operations} ops on ${lin.keys} keys, checked in ${lin.elapsedMs} ms${lin.nonLinearizableKeys.length > 0 ? `; violations on ${lin.nonLinearizableKeys.join(', ')}` : ''}${lin.unknownKeys.length > 0 ? `; unknown: ${lin.unknownKeys.join(', ')}` : ''}`],
    ['set: acknowledged adds present', verdictLabel(set.lost.length > 0 ? 'fail' : set.finalRead || set.attempted === 0 ? 'pass' : 'unknown'), `${set.lost.length} of ${set.acknowledged} acknowledged adds lost${set.lost.length > 0 ? ` (${set.lost.slice(0, 10).join(', ')}${set.lost.length > 10 ? ', ...' : ''})` : ''}`],
    ['set: nothing never attempted', verdictLabel(set.unexpected.length > 0 ? 'fail' : set.finalRead || set.attempted === 0 ? 'pass' : 'unknown'), `${set.unexpected.length} unexpected of ${set.finalSize} read`],
    ['set: rejected adds absent', verdictLabel(set.rejectedButPresent.length > 0 ? 'fail' : set.finalRead || set.attempted === 0 ? 'pass' : 'unknown'), `${set.rejectedButPresent.length} of ${set.failed} rejected adds present; indeterminate: ${set.indeterminatePresent} applied, ${set.indeterminateAbsent} not`],
    ['no duplicates (version > 1)', verdictLabel(c.duplicates.verdict), `${c.duplicates.duplicates.length} of ${c.duplicates.checked} elements written twice`],
    ['no node crashed on its own', verdictLabel(c.processes.verdict), c.processes.unexpectedExits.map((exit) => `${exit.node} exit ${exit.code ?? exit.signal}`).join(', ') || 'none'],
  ]));
  lines.push('');
  const rowsMax = options.faultRowsMax ?? 200;
  lines.push(`Faults (${report.faults.length}; times in ms from injection)`);
  const faultRows = report.faults.slice(0, rowsMax).map((fault) => [
    String(fault.index), fault.type, fault.detail, `${Math.round(fault.injectedAtMs / 1000)}s`, ms(fault.holdMs),
    `${ms(fault.detectMs)}${fault.detectedBy === null ? '' : fault.detectedBy === 'client' ? 'c' : 'm'}`,
    ms(fault.electMs), ms(fault.rtoMs), String(fault.lostWrites),
  ]);
  lines.push(table(['#', 'type', 'what', 'at', 'hold', 'detect', 'elect', 'RTO', 'lost'], faultRows));
  if (report.faults.length > rowsMax) lines.push(`... ${report.faults.length - rowsMax} more in report.json`);
  lines.push('  detect: c = a client op failed or timed out first, m = the monitor saw another leader first');
  lines.push('');
  lines.push('By fault type (ms: p50 / p99 / max)');
  const typeRows = Object.entries(s.byType).map(([type, entry]) => [
    type, String(entry.count),
    `${ms(entry.detectMs.p50)} / ${ms(entry.detectMs.p99)} / ${ms(entry.detectMs.max)}`,
    `${ms(entry.electMs.p50)} / ${ms(entry.electMs.p99)} / ${ms(entry.electMs.max)} (${entry.electMs.count})`,
    `${ms(entry.rtoMs.p50)} / ${ms(entry.rtoMs.p99)} / ${ms(entry.rtoMs.max)}`,
    String(entry.notRecovered), String(entry.lostWrites),
  ]);
  typeRows.push([
    'all', String(s.faults),
    `${ms(s.detectMs.p50)} / ${ms(s.detectMs.p99)} / ${ms(s.detectMs.max)}`,
    `${ms(s.electMs.p50)} / ${ms(s.electMs.p99)} / ${ms(s.electMs.max)} (${s.electMs.count})`,
    `${ms(s.rtoMs.p50)} / ${ms(s.rtoMs.p99)} / ${ms(s.rtoMs.max)}`,
    String(s.notRecovered), String(s.lostWrites - s.lostWritesBeforeFirstFault),
  ]);
  lines.push(table(['type', 'count', 'detect', 'elect (n)', 'RTO', 'no write in window', 'lost'], typeRows));
  lines.push('');
  const a = s.availability;
  lines.push('Availability');
  lines.push(`  ops successful / attempted: ${a.ok + a.accepted} / ${a.attempted} = ${pct(a.ratio)} (ok ${a.ok}${a.accepted > 0 ? `, accepted 202 ${a.accepted}` : ''}, fail ${a.fail}, info ${a.info}${a.accepted > 0 ? ' including the accepted' : ''})`);
  lines.push(`  answered (success, or a cas that found another value: ${a.casMismatches}) / attempted: ${pct(a.answeredRatio)}`);
  for (const [f, entry] of Object.entries(a.byFunction)) {
    const latency = a.latencyMs[f];
    lines.push(`    ${f.padEnd(6)} ${entry.ok} / ${entry.attempted} ok (fail ${entry.fail}, info ${entry.info}); success latency p50 ${ms(latency?.p50 ?? null)} ms, p99 ${ms(latency?.p99 ?? null)} ms`);
  }
  lines.push(`  ${a.windowMs} ms windows with a successful write: ${a.windowsWithWrite} / ${a.windows} = ${pct(a.windowRatio)}`);
  lines.push(`  acknowledged writes lost (RPO): ${s.lostWrites}${s.lostWritesBeforeFirstFault > 0 ? ` (${s.lostWritesBeforeFirstFault} before the first fault)` : ''}`);
  const top = Object.entries(s.unsuccessfulAnswers).slice(0, 8).map(([what, count]) => `${what} ×${count}`);
  if (top.length > 0) lines.push(`  most frequent unsuccessful answers: ${top.join(', ')}`);
  if (report.harness !== null) {
    const h = report.harness;
    lines.push(`  harness event loop (carries the proxies): worst delay per second p50 ${ms(h.perSecondMaxMs.p50)} ms, p99 ${ms(h.perSecondMaxMs.p99)} ms, max ${ms(h.perSecondMaxMs.max)} ms; ${h.stalls.length} seconds above 100 ms${h.stalls.length > 0 ? ` (at ${h.stalls.slice(0, 10).map((stall) => `${Math.round(stall.t / 1000)}s: ${stall.maxMs} ms`).join(', ')}${h.stalls.length > 10 ? ', ...' : ''})` : ''}`);
  }
  if (lin.verdict !== 'pass' && lin.explanation !== '') {
    lines.push('');
    lines.push('Linearizability');
    lines.push(lin.explanation.split('\n').slice(0, 60).join('\n'));
  }
  if (c.processes.unexpectedExits.length > 0) {
    lines.push('');
    lines.push('Nodes that exited on their own');
    for (const exit of c.processes.unexpectedExits.slice(0, 5)) {
      lines.push(`  ${exit.node} at ${exit.at}: code ${exit.code ?? '-'}, signal ${exit.signal ?? '-'}`);
      if (exit.lastLines !== undefined && exit.lastLines !== '') lines.push(exit.lastLines.split('\n').map((line) => `    | ${line}`).join('\n'));
    }
  }
  for (const note of report.notes) lines.push(`note: ${note}`);
  return lines.join('\n');
}
