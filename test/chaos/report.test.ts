// Goal: the report's numbers follow their written definitions (docs/chaos.md, "Report fields"):
// detection, election and recovery times per fault, lost writes attributed to fault windows,
// availability and write windows, nearest-rank percentiles, and the overall verdict.
// Method: hand-made histories (with exact nanosecond times) and monitor samples, computed by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChaosEvent } from '../../src/chaos/history.ts';
import { pairChaosOps } from '../../src/chaos/history.ts';
import type { MonitorSample } from '../../src/chaos/monitor.ts';
import {
  buildReport, computeAvailability, computeFaultMetrics, overallVerdict, percentile, renderReport, stats, type ChecksSummary, type FaultRecord,
} from '../../src/chaos/report.ts';

const MS = 1_000_000;

/** An op from invoke to completion, times in ms. */
function op(process: number, f: ChaosEvent['f'], invokeMs: number, completeMs: number | null, type: 'ok' | 'fail' | 'info', extra: { value?: string; error?: string } = {}): ChaosEvent[] {
  const value = extra.value ?? (f === 'read' || f === 'read-all' ? null : `${process}@${invokeMs}`);
  const invoke: ChaosEvent = { process, type: 'invoke', f, key: f === 'add' ? 'set' : 'k', value: f === 'read' ? null : value, ...(f === 'cas' ? { expected: null } : {}), time: invokeMs * MS };
  if (completeMs === null) return [invoke];
  const complete: ChaosEvent = { ...invoke, type, time: completeMs * MS, ...(extra.error === undefined ? {} : { error: extra.error }) };
  return [invoke, complete];
}

/** Events sorted by time, as a recorder would have written them. */
function history(...ops: ChaosEvent[][]): ChaosEvent[] {
  return ops.flat().sort((a, b) => a.time - b.time);
}

function fault(index: number, injectedAtMs: number, extra: Partial<FaultRecord> = {}): FaultRecord {
  return {
    index, type: 'kill-leader', detail: '', targets: ['n1'], mode: null, cutLinks: [], leaderBefore: 'n1', termBefore: 3,
    holdMs: 1000, injectedAtMs, healedAtMs: injectedAtMs + 1000, ...extra,
  };
}

function sample(t: number, node: string, role: string | null, term = 0, leaderId: string | null = null): MonitorSample {
  return { t, node, view: role === null ? null : { role, term, leaderId } };
}

test('report: percentiles are nearest-rank; stats ignore nulls', () => {
  const sorted = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  assert.equal(percentile(sorted, 50), 5);
  assert.equal(percentile(sorted, 99), 10);
  assert.equal(percentile(sorted, 10), 1);
  assert.equal(percentile([], 50), null);
  assert.equal(percentile([42], 99), 42);
  const s = stats([300, null, 100, 200]);
  assert.deepEqual(s, { count: 3, p50: 200, p99: 300, max: 300, mean: 200 });
  assert.deepEqual(stats([null]), { count: 0, p50: null, p99: null, max: null, mean: null });
  const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(stats(hundred).p99, 99);
});

test('report: detection is the earlier of a failed client op and a monitor seeing another leader', () => {
  const events = history(
    op(0, 'write', 900, 950, 'ok'), // before the fault
    op(1, 'read', 990, 1_120, 'fail', { error: 'reset' }), // in flight at the fault, fails 120 ms in
    op(2, 'cas', 1_010, 1_030, 'fail', { error: 'mismatch' }), // a cas that found another value: not a sign
    op(3, 'write', 1_050, 1_400, 'ok'), // invoked after the fault, first successful write: RTO 400
    op(3, 'add', 1_500, 1_520, 'ok'),
  );
  const samples = [
    sample(990, 'n2', 'follower', 3, 'n1'),
    sample(1_090, 'n2', 'follower', 3, null), // the leader is gone: seen at 90 ms
    sample(1_300, 'n3', 'leader', 4, 'n3'), // a new term's leader at 300 ms
    sample(1_350, 'n2', 'leader', 5, 'n2'),
  ];
  const [metrics] = computeFaultMetrics([fault(1, 1_000)], pairChaosOps(events), samples, 5_000, []);
  assert.ok(metrics !== undefined);
  assert.equal(metrics.detectMs, 90);
  assert.equal(metrics.detectedBy, 'monitor');
  assert.equal(metrics.electMs, 300);
  assert.equal(metrics.newLeader, 'n3');
  assert.equal(metrics.rtoMs, 400);
  assert.equal(metrics.ops, 3, 'ops invoked inside the window');
  assert.equal(metrics.okOps, 2);

  // Without the monitor's evidence, the failed read detects it (120 ms); the mismatch cas does not.
  const [clientOnly] = computeFaultMetrics([fault(1, 1_000)], pairChaosOps(events), [], 5_000, []);
  assert.equal(clientOnly?.detectMs, 120);
  assert.equal(clientOnly?.detectedBy, 'client');
  assert.equal(clientOnly?.electMs, null);
});

test('report: measurements stay inside each fault window; a fault without a later write has no RTO', () => {
  const events = history(
    op(0, 'write', 1_100, 1_200, 'fail', { error: '503 NO_LEADER' }),
    op(0, 'read', 1_300, 1_310, 'ok'),
    op(0, 'write', 2_100, 2_150, 'ok'), // in the second window
  );
  const lostAck = [2_500 * MS, 1_500 * MS, 500 * MS];
  const metrics = computeFaultMetrics([fault(2, 2_000), fault(1, 1_000)], pairChaosOps(events), [sample(2_050, 'n1', 'leader', 3, 'n1')], 3_000, lostAck);
  assert.deepEqual(metrics.map((m) => m.index), [1, 2], 'sorted by injection');
  assert.deepEqual(metrics.map((m) => m.windowEndMs), [2_000, 3_000]);
  assert.deepEqual(metrics.map((m) => m.rtoMs), [null, 150]);
  assert.deepEqual(metrics.map((m) => m.detectMs), [200, null]);
  assert.deepEqual(metrics.map((m) => m.electMs), [null, null], 'the same term is no new election');
  assert.deepEqual(metrics.map((m) => m.lostWrites), [1, 1]);
});

test('report: under ack=leader a 202-accepted register write (info in the history) counts as a successful write', () => {
  const accepted = '202 accepted (ack=leader): takes effect later, or never if the leader fails first';
  const events = history(
    op(0, 'write', 1_100, 1_150, 'info', { error: accepted }),
    op(1, 'write', 1_120, 1_200, 'info', { error: 'timeout' }),
  );
  const [metrics] = computeFaultMetrics([fault(1, 1_000)], pairChaosOps(events), [], 2_000, []);
  assert.equal(metrics?.rtoMs, 150);
  assert.equal(metrics?.detectMs, 200, 'the timeout is a sign of the fault, the 202 is not');
  const a = computeAvailability(pairChaosOps(events), 1_000, 2_000);
  assert.deepEqual([a.ok, a.accepted, a.info, a.ratio, a.windowsWithWrite], [0, 1, 2, 0.5, 1]);
});

test('report: a higher term counts as a new election even when the same node wins (whole-cluster restart)', () => {
  const [metrics] = computeFaultMetrics([fault(1, 1_000)], [], [sample(1_000, 'n1', 'leader', 3, 'n1'), sample(3_500, 'n1', 'leader', 4, 'n1')], 9_000, []);
  assert.equal(metrics?.electMs, 2_500);
  assert.equal(metrics?.newLeader, 'n1');
});

test('report: availability counts ops and 1 s windows with a successful write', () => {
  const events = history(
    op(0, 'write', 0, 10, 'ok'), // window 0
    op(0, 'read', 20, 30, 'ok'),
    op(1, 'cas', 1_100, 1_200, 'fail', { error: 'mismatch' }),
    op(1, 'write', 1_300, 1_400, 'info', { error: 'timeout' }), // window 1: no successful write
    op(2, 'add', 2_500, 2_600, 'ok'), // window 2
    op(3, 'read', 2_700, 2_800, 'fail', { error: 'refused' }),
    op(9999, 'read-all', 3_500, 3_600, 'ok', { value: '[]' }), // the final read is not a client op
  );
  const a = computeAvailability(pairChaosOps(events), 0, 3_000);
  assert.equal(a.attempted, 6);
  assert.deepEqual([a.ok, a.fail, a.info], [3, 2, 1]);
  assert.equal(a.ratio, 0.5);
  assert.equal(a.casMismatches, 1);
  assert.equal(a.answeredRatio, 4 / 6);
  assert.deepEqual([a.windows, a.windowsWithWrite], [3, 2]);
  assert.equal(a.windowRatio, 2 / 3);
  assert.deepEqual(a.byFunction['read'], { attempted: 2, ok: 1, fail: 1, info: 0 });
  assert.equal(a.latencyMs['write']?.p50, 10);
});

test('report: the overall verdict is fail if any check fails, unknown if any is unknown, else pass', () => {
  const base = checksWith('pass', 'pass');
  assert.equal(overallVerdict(base), 'pass');
  assert.equal(overallVerdict(checksWith('unknown', 'pass')), 'unknown');
  assert.equal(overallVerdict(checksWith('unknown', 'fail')), 'fail');
});

function checksWith(linearizability: 'pass' | 'fail' | 'unknown', set: 'pass' | 'fail' | 'unknown'): ChecksSummary {
  return {
    linearizability: { verdict: linearizability, detail: 'linearizable', keys: 1, operations: 2, nonLinearizableKeys: [], unknownKeys: [], explanation: '', elapsedMs: 0 },
    set: {
      verdict: set, attempted: 1, acknowledged: 1, failed: 0, indeterminate: 0, finalRead: true, finalSize: set === 'fail' ? 0 : 1,
      lost: set === 'fail' ? ['a'] : [], unexpected: [], rejectedButPresent: [], indeterminatePresent: 0, indeterminateAbsent: 0,
      lostAckTimes: set === 'fail' ? [10 * MS] : [],
    },
    duplicates: { verdict: 'pass', checked: 1, duplicates: [] },
    processes: { verdict: 'pass', unexpectedExits: [] },
  };
}

test('report: buildReport ties it together and renders a readable table', () => {
  const events = history(op(1000, 'add', 5, 10, 'ok', { value: 'a' }), op(0, 'write', 1_050, 1_100, 'ok'));
  const report = buildReport({
    startedAt: '2026-01-01T00:00:00.000Z', options: { ack: 'majority', workload: 'both', nodes: 3, faults: ['kill-leader'] }, seed: 7,
    events, faults: [fault(1, 1_000, { detail: 'kill -9 n1 (leader)' })], samples: [], workloadStartMs: 0, workloadEndMs: 2_000,
    checks: checksWith('pass', 'fail'), originEpochMs: 1_000_000, answers: { 'write 503 NO_LEADER': 3 },
  });
  assert.equal(report.verdict, 'fail');
  assert.equal(report.summary.lostWrites, 1);
  assert.equal(report.summary.lostWritesBeforeFirstFault, 1);
  assert.equal(report.summary.byType['kill-leader']?.count, 1);
  assert.equal(report.summary.rtoMs.p50, 100);
  assert.equal(report.originEpochMs, 1_000_000);
  const text = renderReport(report);
  assert.match(text, /Understudy chaos run: FAIL/);
  assert.match(text, /kill -9 n1 \(leader\)/);
  assert.match(text, /acknowledged writes lost \(RPO\): 1 \(1 before the first fault\)/);
  assert.match(text, /write 503 NO_LEADER ×3/);
});
