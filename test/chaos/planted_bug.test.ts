// Goal: the chaos suite can fail. With a known bug switched on in every node
// (UNDERSTUDY_PLANTED_BUG=readWithoutQuorum with UNDERSTUDY_ALLOW_PLANTED_BUGS=1: a leader answers
// linearizable reads from its own state without confirming it is still the leader), isolating
// the leader must produce a history the checker rejects.
// Method: runChaos with the planted bug, the fault that exposes it (leader partitions: the old
// leader keeps serving reads for up to two election timeouts after a new leader has taken writes)
// and a read-heavy register workload on one key at a time; then assertions that the nodes really
// ran with the bug and that the report says "not linearizable" with a concrete violation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runChaos } from '../../src/chaos/runner.ts';

test('chaos: a planted readWithoutQuorum bug is reported as a linearizability violation', { timeout: 180_000 }, async () => {
  const outDir = mkdtempSync(join(tmpdir(), 'chaos-planted-test-'));
  let keep = true;
  try {
    const { report, text } = await runChaos({
      durationMs: 30_000,
      faults: ['partition-leader'],
      plantedBug: 'readWithoutQuorum',
      ack: 'majority',
      workload: 'register',
      keys: 1,
      clients: 10,
      readFraction: 0.6,
      writeFraction: 0.25,
      seed: 11,
      holdMs: [1_000, 1_500],
      gapMs: [500, 1_000],
      outDir,
      checkTimeLimitMs: 60_000,
    });
    // The nodes really ran with the bug (the server prints this when the env flag is honoured).
    const logs = readdirSync(join(outDir, 'nodes')).map((name) => readFileSync(join(outDir, 'nodes', name), 'utf8'));
    assert.equal(logs.length, 3);
    for (const log of logs) assert.match(log, /planted bug 'readWithoutQuorum' is ON/);

    const context = `${text}\n\nhistory and node logs in ${outDir}`;
    assert.equal(report.verdict, 'fail', context);
    assert.equal(report.checks.linearizability.verdict, 'fail', context);
    assert.equal(report.checks.linearizability.detail, 'not-linearizable', context);
    assert.ok(report.checks.linearizability.nonLinearizableKeys.length > 0, context);
    assert.match(report.checks.linearizability.explanation, /is not linearizable/);
    assert.match(text, /linearizable \(register, per key\)\s+FAIL/);
    keep = false;
  } finally {
    if (keep) console.error(`planted bug test: kept ${outDir}`);
    else rmSync(outDir, { recursive: true, force: true });
  }
});
