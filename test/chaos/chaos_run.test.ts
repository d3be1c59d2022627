// Goal: a short run of the full chaos suite — real `understudy start` processes behind the
// fault-injecting proxies, the register and set workloads, every fault type at least once,
// ack=majority — finds a linearizable history, no acknowledged write lost, no duplicate and no
// node crash, and reports a measurement for every fault.
// Method: runChaos (the code behind `understudy chaos`) with a fixed seed and short holds, then
// assertions on its report. The history and node logs are kept (and their path printed) only
// when the test fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FAULT_TYPES } from '../../src/chaos/faults.ts';
import { runChaos } from '../../src/chaos/runner.ts';

test('chaos: 40 s with every fault type, ack=majority: linearizable, zero lost, no duplicates', { timeout: 180_000 }, async () => {
  const outDir = mkdtempSync(join(tmpdir(), 'chaos-run-test-'));
  const lines: string[] = [];
  let keep = true;
  try {
    const { report, text } = await runChaos({
      durationMs: 40_000,
      faults: [...FAULT_TYPES],
      ack: 'majority',
      workload: 'both',
      seed: 20_260_101,
      holdMs: [1_000, 1_500],
      gapMs: [700, 1_000],
      outDir,
      checkTimeLimitMs: 60_000,
      log: (line) => lines.push(line),
    });
    const context = `${text}\n\nprogress:\n${lines.join('\n')}\n\nhistory, report and node logs in ${outDir}`;
    assert.equal(report.checks.linearizability.verdict, 'pass', context);
    assert.equal(report.checks.linearizability.detail, 'linearizable', context);
    assert.ok(report.checks.linearizability.operations > 500, `a real workload ran (${report.checks.linearizability.operations} register ops)`);
    assert.equal(report.checks.set.verdict, 'pass', context);
    assert.equal(report.checks.set.finalRead, true, context);
    assert.deepEqual(report.checks.set.lost, [], context);
    assert.ok(report.checks.set.acknowledged > 100, `adds were acknowledged (${report.checks.set.acknowledged})`);
    assert.equal(report.checks.duplicates.verdict, 'pass', context);
    assert.deepEqual(report.checks.duplicates.duplicates, [], context);
    assert.equal(report.checks.processes.verdict, 'pass', context);
    assert.equal(report.summary.lostWrites, 0, context);
    assert.equal(report.verdict, 'pass', context);

    const injected = new Set(report.faults.map((fault) => fault.type));
    for (const type of FAULT_TYPES) assert.ok(injected.has(type), `${type} was injected\n${context}`);
    // Every fault the cluster can survive was followed by a successful write inside its window.
    for (const fault of report.faults) {
      assert.ok(fault.rtoMs !== null, `fault #${fault.index} ${fault.type} (${fault.detail}) was followed by a successful write\n${context}`);
    }
    const leaderKills = report.faults.filter((fault) => fault.type === 'kill-leader');
    assert.ok(leaderKills.every((fault) => fault.electMs !== null), `a new leader was seen after every leader kill\n${context}`);
    assert.ok(report.summary.availability.attempted > 1_000);
    keep = false;
  } finally {
    if (keep) console.error(`chaos run test: kept ${outDir}`);
    else rmSync(outDir, { recursive: true, force: true });
  }
});
