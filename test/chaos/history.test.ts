// Goal: the chaos history recorder writes exactly the documented JSON Lines format, keeps one open
// op per process and non-decreasing integer nanosecond times, and its register part is accepted
// as-is by the project's linearizability checker.
// Method: a fake nanosecond clock driven by the test; round trips through serialise/parse; the
// checker run on a recorded history.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkLinearizability } from '../../src/checkers/index.ts';
import { HistoryRecorder, pairChaosOps, parseHistory, readHistory, registerEvents, serializeHistory, writeHistory } from '../../src/chaos/history.ts';

function fakeClock(): { clock: () => bigint; advance: (ns: number) => void; set: (ns: number) => void } {
  let now = 1_000_000n;
  return {
    clock: () => now,
    advance: (ns) => {
      now += BigInt(ns);
    },
    set: (ns) => {
      now = 1_000_000n + BigInt(ns);
    },
  };
}

test('history: events carry the documented fields in order, times in integer ns from the start', () => {
  const time = fakeClock();
  const recorder = new HistoryRecorder(time.clock);
  time.advance(1_500);
  const write = recorder.invoke({ process: 0, f: 'write', key: 'r0', value: 'a' });
  time.advance(2_000_000);
  recorder.complete(write, 'ok');
  const read = recorder.invoke({ process: 1, f: 'read', key: 'r0', value: null });
  time.advance(10);
  recorder.complete(read, 'ok', 'a');
  const cas = recorder.invoke({ process: 0, f: 'cas', key: 'r0', value: 'b', expected: 'a' });
  recorder.complete(cas, 'fail', null, 'mismatch');
  const add = recorder.invoke({ process: 1000, f: 'add', key: 'set', value: 'e1-0' });
  recorder.complete(add, 'info', null, 'timeout');
  const readAll = recorder.invoke({ process: 9999, f: 'read-all', key: 'set', value: null });
  recorder.complete(readAll, 'ok', '["e1-0"]');

  const lines = serializeHistory(recorder.events).trimEnd().split('\n');
  assert.equal(lines.length, 10);
  assert.equal(lines[0], '{"process":0,"type":"invoke","f":"write","key":"r0","value":"a","time":1500}');
  assert.equal(lines[1], '{"process":0,"type":"ok","f":"write","key":"r0","value":"a","time":2001500}');
  assert.equal(lines[3], '{"process":1,"type":"ok","f":"read","key":"r0","value":"a","time":2001510}');
  assert.equal(lines[4], '{"process":0,"type":"invoke","f":"cas","key":"r0","value":"b","expected":"a","time":2001510}');
  assert.equal(lines[5], '{"process":0,"type":"fail","f":"cas","key":"r0","value":"b","expected":"a","time":2001510,"error":"mismatch"}');
  assert.equal(lines[7], '{"process":1000,"type":"info","f":"add","key":"set","value":"e1-0","time":2001510,"error":"timeout"}');
  assert.equal(lines[9], '{"process":9999,"type":"ok","f":"read-all","key":"set","value":"[\\"e1-0\\"]","time":2001510}');
  for (const event of recorder.events) assert.ok(Number.isInteger(event.time));
});

test('history: an ok completion never carries an error, and a failed read never carries a value', () => {
  const recorder = new HistoryRecorder(fakeClock().clock);
  const read = recorder.invoke({ process: 0, f: 'read', key: 'k', value: 'ignored' });
  assert.equal(recorder.events[0]?.value, null, 'a read invoke has no value');
  recorder.complete(read, 'fail', 'stale', 'timeout');
  assert.equal(recorder.events[1]?.value, null);
  const write = recorder.invoke({ process: 0, f: 'write', key: 'k', value: 'v' });
  recorder.complete(write, 'ok', null, 'ignored');
  assert.equal(recorder.events[3]?.error, undefined);
});

test('history: one open op per process; completing an op twice or a foreign op throws', () => {
  const recorder = new HistoryRecorder(fakeClock().clock);
  const first = recorder.invoke({ process: 3, f: 'write', key: 'k', value: 'v1' });
  assert.throws(() => recorder.invoke({ process: 3, f: 'read', key: 'k', value: null }), /already has an open op/);
  const other = recorder.invoke({ process: 4, f: 'read', key: 'k', value: null });
  assert.equal(recorder.isOpen(3), true);
  recorder.complete(first, 'ok');
  assert.throws(() => recorder.complete(first, 'ok'), /not open/);
  assert.throws(() => recorder.invoke({ process: 5, f: 'cas', key: 'k', value: 'x' }), /expected/);
  assert.deepEqual(recorder.openOps().map((op) => op.process), [4]);
  recorder.complete(other, 'fail');
  assert.deepEqual(recorder.openOps(), []);
});

test('history: times never go backwards even if the clock does', () => {
  const time = fakeClock();
  const recorder = new HistoryRecorder(time.clock);
  time.set(5_000);
  const a = recorder.invoke({ process: 0, f: 'read', key: 'k', value: null });
  time.set(1_000); // a clock step backwards
  recorder.complete(a, 'ok', null);
  assert.equal(recorder.events[1]?.time, 5_000);
  time.set(7_000);
  assert.equal(recorder.now(), 7_000);
  assert.equal(recorder.nowMs(), 0.007);
});

test('history: JSONL round trip through a file; the register part feeds the checker unchanged', () => {
  const time = fakeClock();
  const recorder = new HistoryRecorder(time.clock);
  const step = (): void => time.advance(1_000);
  const w = recorder.invoke({ process: 0, f: 'write', key: 'x', value: '1' });
  step();
  const add = recorder.invoke({ process: 1000, f: 'add', key: 'set', value: 'e0' });
  step();
  recorder.complete(w, 'ok');
  step();
  recorder.complete(add, 'ok');
  const r = recorder.invoke({ process: 1, f: 'read', key: 'x', value: null });
  step();
  recorder.complete(r, 'ok', '1');
  const c = recorder.invoke({ process: 0, f: 'cas', key: 'x', value: '2', expected: '1' });
  step();
  recorder.complete(c, 'info', null, 'timeout');

  const dir = mkdtempSync(join(tmpdir(), 'chaos-history-'));
  try {
    const file = join(dir, 'history.jsonl');
    writeHistory(file, recorder.events);
    assert.ok(readFileSync(file, 'utf8').endsWith('\n'));
    const back = readHistory(file);
    assert.deepEqual(back, recorder.events);
    const register = registerEvents(back);
    assert.equal(register.length, 6, 'add events are left out');
    assert.ok(register.every((event) => event.f !== ('add' as string)));
    const result = checkLinearizability(register);
    assert.equal(result.verdict, 'linearizable');
    assert.equal(result.operations, 3);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.throws(() => parseHistory('{"process":0}\nnot json\n'), /line 2/);
});

test('history: pairChaosOps pairs per process, keeps invoke order, and leaves unfinished ops info', () => {
  const time = fakeClock();
  const recorder = new HistoryRecorder(time.clock);
  const a = recorder.invoke({ process: 0, f: 'write', key: 'k', value: 'a' });
  time.advance(10);
  const b = recorder.invoke({ process: 1, f: 'read', key: 'k', value: null });
  time.advance(10);
  recorder.complete(b, 'ok', 'a');
  recorder.invoke({ process: 2, f: 'add', key: 'set', value: 'e' });
  time.advance(10);
  recorder.complete(a, 'fail', null, '503 NO_LEADER');
  const ops = pairChaosOps(recorder.events);
  assert.deepEqual(ops.map((op) => [op.process, op.f, op.outcome, op.invokeTime, op.completeTime, op.result, op.error]), [
    [0, 'write', 'fail', 0, 30, 'a', '503 NO_LEADER'],
    [1, 'read', 'ok', 10, 20, 'a', null],
    [2, 'add', 'info', 20, null, null, 'never completed'],
  ]);
});
