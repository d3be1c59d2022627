// Goal: the chaos checks flag what they claim to flag, and only that (a checker self-test): a lost
// acknowledged add, an element never attempted, a rejected add that applied, a duplicate
// (version > 1), a stale read in the register history, a node that exited on its own; and they
// answer "unknown" rather than "pass" when they cannot tell (no final read).
// Method: hand-made histories through the real recorder, with a fake clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkDuplicates, checkProcesses, checkRegisterHistory, checkSetHistory } from '../../src/chaos/checks.ts';
import { HistoryRecorder, type ChaosEvent } from '../../src/chaos/history.ts';

/** A recorder whose clock advances 1 µs per event, so histories read top to bottom. */
function recorder(): HistoryRecorder {
  let now = 0n;
  return new HistoryRecorder(() => (now += 1_000n));
}

function addAll(h: HistoryRecorder, adds: readonly [process: number, element: string, outcome: 'ok' | 'fail' | 'info'][]): void {
  for (const [process, element, outcome] of adds) {
    const op = h.invoke({ process, f: 'add', key: 'set', value: element });
    h.complete(op, outcome, null, outcome === 'ok' ? undefined : 'timeout');
  }
}

function finalRead(h: HistoryRecorder, elements: readonly string[]): ChaosEvent[] {
  const op = h.invoke({ process: 9999, f: 'read-all', key: 'set', value: null });
  h.complete(op, 'ok', JSON.stringify(elements));
  return h.events;
}

test('checks self-test: a lost acknowledged add is flagged, with its acknowledgement time', () => {
  const h = recorder();
  addAll(h, [[1000, 'a', 'ok'], [1001, 'b', 'ok'], [1000, 'c', 'ok']]);
  const ackOfB = h.events[3]!.time;
  const result = checkSetHistory(finalRead(h, ['a', 'c']));
  assert.equal(result.verdict, 'fail');
  assert.deepEqual(result.lost, ['b']);
  assert.deepEqual(result.lostAckTimes, [ackOfB]);
  assert.equal(result.acknowledged, 3);
  assert.equal(result.finalSize, 2);
});

test('checks: a complete, correct set history passes; indeterminate adds may go either way', () => {
  const h = recorder();
  addAll(h, [[1000, 'a', 'ok'], [1001, 'b', 'info'], [1000, 'c', 'info'], [1001, 'd', 'fail']]);
  const result = checkSetHistory(finalRead(h, ['a', 'b']));
  assert.equal(result.verdict, 'pass');
  assert.deepEqual([result.lost, result.unexpected, result.rejectedButPresent], [[], [], []]);
  assert.deepEqual([result.indeterminate, result.indeterminatePresent, result.indeterminateAbsent, result.failed], [2, 1, 1, 1]);
});

test('checks: an element nobody attempted, and a definitely rejected add that applied, are flagged', () => {
  const h = recorder();
  addAll(h, [[1000, 'a', 'ok'], [1001, 'r', 'fail']]);
  const result = checkSetHistory(finalRead(h, ['a', 'ghost', 'r']));
  assert.equal(result.verdict, 'fail');
  assert.deepEqual(result.unexpected, ['ghost']);
  assert.deepEqual(result.rejectedButPresent, ['r']);
  assert.deepEqual(result.lost, []);
});

test('checks: without a successful final read the set verdict is unknown, never pass', () => {
  const h = recorder();
  addAll(h, [[1000, 'a', 'ok']]);
  const failed = h.invoke({ process: 9999, f: 'read-all', key: 'set', value: null });
  h.complete(failed, 'fail', null, 'list failed');
  const result = checkSetHistory(h.events);
  assert.equal(result.verdict, 'unknown');
  assert.equal(result.finalRead, false);
  assert.equal(checkSetHistory([]).verdict, 'pass', 'no set workload at all is vacuously fine');
});

test('checks: the last successful read-all is the final one', () => {
  const h = recorder();
  addAll(h, [[1000, 'a', 'ok']]);
  finalRead(h, []);
  const result = checkSetHistory(finalRead(h, ['a']));
  assert.equal(result.verdict, 'pass');
});

test('checks: duplicates are elements with a version above 1', () => {
  assert.equal(checkDuplicates(null).verdict, 'unknown');
  const ok = checkDuplicates(new Map([['a', 1], ['b', 1]]));
  assert.deepEqual([ok.verdict, ok.checked, ok.duplicates], ['pass', 2, []]);
  const dup = checkDuplicates(new Map([['a', 1], ['c', 3], ['b', 2]]));
  assert.equal(dup.verdict, 'fail');
  assert.deepEqual(dup.duplicates, [{ id: 'b', version: 2 }, { id: 'c', version: 3 }]);
});

test('checks self-test: a stale read (an acknowledged write not seen by a later read) is not linearizable', () => {
  const h = recorder();
  const w1 = h.invoke({ process: 0, f: 'write', key: 'r0', value: '0-0' });
  h.complete(w1, 'ok');
  const w2 = h.invoke({ process: 0, f: 'write', key: 'r0', value: '0-1' });
  h.complete(w2, 'ok');
  const read = h.invoke({ process: 1, f: 'read', key: 'r0', value: null });
  h.complete(read, 'ok', '0-0');
  // Another key stays fine and set ops are ignored by this check.
  const other = h.invoke({ process: 2, f: 'write', key: 'r1', value: 'x' });
  h.complete(other, 'info', null, 'timeout');
  addAll(h, [[1000, 'a', 'ok']]);
  const result = checkRegisterHistory(h.events);
  assert.equal(result.verdict, 'fail');
  assert.equal(result.detail, 'not-linearizable');
  assert.deepEqual(result.nonLinearizableKeys, ['r0']);
  assert.match(result.explanation, /r0/);
  assert.equal(result.keys, 2);
});

test('checks: failed and indeterminate ops are handled as the checker defines them', () => {
  const h = recorder();
  const w = h.invoke({ process: 0, f: 'write', key: 'k', value: 'a' });
  h.complete(w, 'info', null, 'timeout');
  const r = h.invoke({ process: 1, f: 'read', key: 'k', value: null });
  h.complete(r, 'ok', 'a'); // an unknown-outcome write may have applied
  const failed = h.invoke({ process: 2, f: 'write', key: 'k', value: 'never' });
  h.complete(failed, 'fail', null, '503 NO_LEADER');
  const r2 = h.invoke({ process: 1, f: 'read', key: 'k', value: null });
  h.complete(r2, 'ok', 'a');
  assert.equal(checkRegisterHistory(h.events).verdict, 'pass');

  // ... but a failed write that is read afterwards means the "definite rejection" was a lie.
  const r3 = h.invoke({ process: 1, f: 'read', key: 'k', value: null });
  h.complete(r3, 'ok', 'never');
  assert.equal(checkRegisterHistory(h.events).verdict, 'fail');
});

test('checks: a malformed register history is reported as unknown with the reason', () => {
  const events: ChaosEvent[] = [{ process: 0, type: 'ok', f: 'read', key: 'k', value: null, time: 1 }];
  const result = checkRegisterHistory(events);
  assert.equal(result.verdict, 'unknown');
  assert.equal(result.detail, 'malformed-history');
  assert.equal(checkRegisterHistory([]).detail, 'skipped');
});

test('checks: a node that exited on its own fails the process check', () => {
  assert.equal(checkProcesses([]).verdict, 'pass');
  const crashed = checkProcesses([{ node: 'n2', at: '2026-01-01T00:00:00.000Z', code: 1, signal: null }]);
  assert.equal(crashed.verdict, 'fail');
  assert.equal(crashed.unexpectedExits[0]?.node, 'n2');
});
