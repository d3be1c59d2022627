// Goal: show that the register linearizability checker accepts exactly the linearizable histories:
// it must accept every correct execution and reject every impossible one, explaining why.
// Method: (1) hand-written histories for each concurrency case, linearizable and not, with the
// violation's blocked op, kernel and explanation checked; (2) a property test that records random
// executions of a real register with overlapping real-time intervals around each op's
// linearization point (all must be accepted, with a witness that an independent replay confirms),
// then corrupts one read (must be rejected); (3) a property test comparing verdicts with a brute
// force search over all orders on small arbitrary histories, which also guards the checker's
// search reductions; (4) budgets; (5) 5000-op histories, with deterministic step counts asserted
// and times reported; (6) pairOperations' pairing and validation errors.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  checkLinearizability,
  describeOperation,
  HistoryError,
  pairOperations,
  type HistoryEvent,
  type KeyResult,
  type LinearizabilityResult,
  type Operation,
} from '../../src/checkers/index.ts';

// ---------------------------------------------------------------------------------------------
// A tiny recorder: each call appends one event at the next tick, so histories read top to bottom.

class Recorder {
  readonly events: HistoryEvent[] = [];
  private time = 0;
  private readonly open = new Map<number, HistoryEvent>();

  write(process: number, key: string, value: string | null): this {
    return this.invoke({ process, type: 'invoke', f: 'write', key, value, time: 0 });
  }
  read(process: number, key: string): this {
    return this.invoke({ process, type: 'invoke', f: 'read', key, value: null, time: 0 });
  }
  cas(process: number, key: string, expected: string | null, value: string | null): this {
    return this.invoke({ process, type: 'invoke', f: 'cas', key, value, expected, time: 0 });
  }
  /** Completes the open op; `read` gives a read's result. */
  ok(process: number, read?: string | null): this {
    return this.complete(process, 'ok', read);
  }
  fail(process: number): this {
    return this.complete(process, 'fail');
  }
  info(process: number): this {
    return this.complete(process, 'info');
  }

  private invoke(event: HistoryEvent): this {
    const stamped = { ...event, time: ++this.time };
    this.open.set(event.process, stamped);
    this.events.push(stamped);
    return this;
  }
  private complete(process: number, type: 'ok' | 'fail' | 'info', read?: string | null): this {
    const invoked = this.open.get(process);
    assert.ok(invoked, `test bug: nothing open on p${process}`);
    this.open.delete(process);
    const value = invoked.f === 'read' ? (type === 'ok' ? (read ?? null) : null) : invoked.value;
    const event: HistoryEvent = { process, type, f: invoked.f, key: invoked.key, value, time: ++this.time };
    if (invoked.f === 'cas') event.expected = invoked.expected ?? null;
    this.events.push(event);
    return this;
  }
}

function keyResult(result: LinearizabilityResult, key: string): KeyResult {
  const found = result.keys.find((k) => k.key === key);
  assert.ok(found, `no result for key ${key}`);
  return found;
}

function assertLinearizable(events: HistoryEvent[]): LinearizabilityResult {
  const result = checkLinearizability(events);
  assert.equal(result.verdict, 'linearizable', result.explanation);
  assert.equal(result.ok, true);
  assertValidWitnesses(events, result);
  return result;
}

function assertViolation(events: HistoryEvent[], key = 'x'): NonNullable<KeyResult['violation']> {
  const result = checkLinearizability(events);
  assert.equal(result.ok, false);
  assert.equal(result.verdict, 'not-linearizable');
  const forKey = keyResult(result, key);
  assert.equal(forKey.verdict, 'not-linearizable');
  assert.ok(forKey.violation);
  assert.ok(result.explanation.includes(`key "${key}" is not linearizable`), result.explanation);
  assert.ok(result.explanation.includes(describeOperation(forKey.violation.blocked)), result.explanation);
  return forKey.violation;
}

/**
 * Independent check of a witness: it replays as a register, respects real-time order, and includes
 * every op that definitely happened. This is what makes an accepting verdict trustworthy.
 */
function assertValidWitnesses(events: HistoryEvent[], result: LinearizabilityResult): void {
  const ops = pairOperations(events);
  for (const keyResult of result.keys) {
    if (keyResult.verdict !== 'linearizable') continue;
    const witness = keyResult.witness;
    assert.ok(witness, `key ${keyResult.key} is linearizable but has no witness`);
    let value: string | null = null;
    for (const op of witness) {
      assert.equal(op.key, keyResult.key);
      assert.notEqual(op.outcome, 'fail', 'failed ops never take effect');
      if (op.f === 'read') {
        assert.ok(op.output, 'only completed reads are linearized');
        assert.equal(op.output.value, value, `witness read ${describeOperation(op)} sees ${JSON.stringify(value)}`);
      } else if (op.f === 'write') {
        value = op.input.value;
      } else if (op.input.expected === value) {
        value = op.input.value;
      } else {
        assert.notEqual(op.outcome, 'ok', `witness cas ${describeOperation(op)} succeeded against ${JSON.stringify(value)}`);
      }
    }
    // Real time: no op may complete before an op placed ahead of it was even invoked.
    let latestInvoke: Operation | null = null;
    for (const op of witness) {
      if (latestInvoke !== null && op.outcome === 'ok' && op.completeIndex !== null) {
        assert.ok(op.completeIndex > latestInvoke.invokeIndex, `witness puts ${describeOperation(latestInvoke)} before ${describeOperation(op)}, which completed first`);
      }
      if (latestInvoke === null || op.invokeIndex > latestInvoke.invokeIndex) latestInvoke = op;
    }
    const included = new Set(witness.map((op) => op.id));
    for (const op of ops) {
      if (op.key === keyResult.key && op.outcome === 'ok') assert.ok(included.has(op.id), `witness misses ${describeOperation(op)}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------

describe('linearizable histories are accepted', () => {
  test('the empty history', () => {
    const result = assertLinearizable([]);
    assert.deepEqual(result.keys, []);
  });

  test('a read of an absent key returns null, sequential write then read', () => {
    assertLinearizable(new Recorder().read(0, 'x').ok(0, null).write(0, 'x', 'a').ok(0).read(1, 'x').ok(1, 'a').events);
  });

  test('concurrent writes: a later read may see either one', () => {
    for (const seen of ['a', 'b']) {
      const h = new Recorder().write(0, 'x', 'a').write(1, 'x', 'b').ok(1).ok(0).read(2, 'x').ok(2, seen);
      assertLinearizable(h.events);
    }
  });

  test('a read overlapping a write sees the old or the new value', () => {
    for (const seen of [null, 'a']) {
      const h = new Recorder().read(1, 'x').write(0, 'x', 'a').ok(1, seen).ok(0);
      assertLinearizable(h.events);
    }
  });

  test('two reads during a write may see old then new, but both orders of writes are explored', () => {
    const h = new Recorder()
      .write(0, 'x', 'a')
      .write(1, 'x', 'b')
      .read(2, 'x')
      .ok(2, 'b')
      .read(2, 'x')
      .ok(2, 'a')
      .ok(0)
      .ok(1);
    assertLinearizable(h.events);
  });

  test('an info write that took effect is seen later', () => {
    const h = new Recorder().write(0, 'x', 'a').ok(0).write(1, 'x', 'b').info(1).read(2, 'x').ok(2, 'b');
    assertLinearizable(h.events);
  });

  test('an info write that did not take effect is never seen', () => {
    const h = new Recorder().write(0, 'x', 'a').ok(0).write(1, 'x', 'b').info(1).read(2, 'x').ok(2, 'a').read(2, 'x').ok(2, 'a');
    assertLinearizable(h.events);
  });

  test('an info write may take effect long after its timeout', () => {
    const h = new Recorder().write(1, 'x', 'b').info(1).read(2, 'x').ok(2, null).write(0, 'x', 'a').ok(0).read(2, 'x').ok(2, 'b');
    assertLinearizable(h.events);
  });

  test('an invoke that never completes counts as info', () => {
    const h = new Recorder().write(1, 'x', 'b').read(2, 'x').ok(2, null).read(2, 'x').ok(2, 'b');
    assertLinearizable(h.events);
  });

  test('successful and failed cas', () => {
    const h = new Recorder()
      .write(0, 'x', 'a')
      .ok(0)
      .cas(1, 'x', 'a', 'b')
      .ok(1)
      .cas(2, 'x', 'a', 'c')
      .fail(2)
      .read(0, 'x')
      .ok(0, 'b')
      .cas(0, 'x', null, 'z')
      .fail(0)
      .cas(0, 'x', 'b', null)
      .ok(0)
      .read(1, 'x')
      .ok(1, null);
    assertLinearizable(h.events);
  });

  test('concurrent cas from the same value: only one can win, either one may', () => {
    const h = new Recorder().write(0, 'x', 'a').ok(0).cas(1, 'x', 'a', 'b').cas(2, 'x', 'a', 'c').ok(2).fail(1).read(0, 'x').ok(0, 'c');
    assertLinearizable(h.events);
  });

  test('an info cas that applied and one that did not', () => {
    const applied = new Recorder().write(0, 'x', 'a').ok(0).cas(1, 'x', 'a', 'b').info(1).read(0, 'x').ok(0, 'b');
    assertLinearizable(applied.events);
    const notApplied = new Recorder().write(0, 'x', 'a').ok(0).cas(1, 'x', 'a', 'b').info(1).read(0, 'x').ok(0, 'a');
    assertLinearizable(notApplied.events);
  });

  test('a chain of info cas ops may take effect, observed only at its end', () => {
    const h = new Recorder().write(0, 'x', 'a').ok(0).cas(1, 'x', 'a', 'b').info(1).cas(2, 'x', 'b', 'c').info(2).read(0, 'x').ok(0, 'c');
    assertLinearizable(h.events);
  });

  test('failed ops and unfinished reads are ignored, keys are independent', () => {
    const h = new Recorder()
      .write(0, 'x', 'a')
      .ok(0)
      .write(0, 'y', 'q')
      .fail(0)
      .read(1, 'y')
      .info(1)
      .read(1, 'y')
      .ok(1, null)
      .read(2, 'x')
      .ok(2, 'a')
      .read(2, 'y');
    const result = assertLinearizable(h.events);
    assert.deepEqual(result.keys.map((k) => [k.key, k.verdict, k.operations, k.checked]), [
      ['x', 'linearizable', 2, 2],
      ['y', 'linearizable', 4, 1],
    ]);
  });
});

describe('non-linearizable histories are rejected with an explanation', () => {
  test('a stale read after a completed write', () => {
    const h = new Recorder().write(0, 'x', 'a').ok(0).write(1, 'x', 'b').ok(1).read(2, 'x').ok(2, 'a');
    const violation = assertViolation(h.events);
    assert.equal(violation.blocked.f, 'read');
    assert.equal(violation.blocked.process, 2);
    assert.equal(violation.valueAfterPrefix, 'b');
    assert.deepEqual(violation.prefix.map((op) => op.id), [0, 1]);
    assert.ok(violation.kernel);
    assert.deepEqual(violation.kernel.operations.map((op) => op.id), [0, 1, 2]);
    assert.equal(violation.kernel.initialValue, null);
  });

  test('a read of a value never written', () => {
    const h = new Recorder().write(0, 'x', 'a').ok(0).read(1, 'x').ok(1, 'zzz').read(1, 'x').ok(1, 'a');
    const violation = assertViolation(h.events);
    assert.equal(violation.blocked.id, 1);
    assert.deepEqual(violation.kernel?.operations.map((op) => op.id), [1]);
    assert.match(violation.explanation, /"zzz" is never written/);
  });

  test('a read of a value whose write failed', () => {
    const h = new Recorder().write(0, 'x', 'a').fail(0).read(1, 'x').ok(1, 'a');
    const violation = assertViolation(h.events);
    assert.equal(violation.blocked.id, 1);
  });

  test('two readers observe concurrent writes in opposite orders', () => {
    // The reads of each round overlap, so only the combination of all four is contradictory.
    const h = new Recorder()
      .write(0, 'x', 'a')
      .write(1, 'x', 'b')
      .read(2, 'x')
      .read(3, 'x')
      .ok(2, 'a')
      .ok(3, 'b')
      .read(2, 'x')
      .read(3, 'x')
      .ok(2, 'b')
      .ok(3, 'a')
      .ok(0)
      .ok(1);
    const violation = assertViolation(h.events);
    assert.ok(violation.kernel);
    assert.equal(violation.kernel.operations.length, 6, 'every op is needed for this contradiction');
  });

  test('a cas that succeeded against a value that could not be current', () => {
    const h = new Recorder().write(0, 'x', 'a').ok(0).write(0, 'x', 'b').ok(0).cas(1, 'x', 'a', 'c').ok(1);
    const violation = assertViolation(h.events);
    assert.equal(violation.blocked.f, 'cas');
    assert.deepEqual(violation.kernel?.operations.map((op) => op.id), [0, 1, 2]);
  });

  test('a lost acknowledged write', () => {
    const h = new Recorder().write(0, 'x', 'a').ok(0).read(1, 'x').ok(1, 'a').write(0, 'x', 'b').ok(0).read(1, 'x').ok(1, null);
    const violation = assertViolation(h.events);
    assert.equal(violation.blocked.id, 3);
    assert.equal(violation.valueAfterPrefix, 'b');
    // Both acknowledged writes were lost; either one with the null read is already a violation.
    const kernel = violation.kernel?.operations.map((op) => `${op.f} ${op.id}`);
    assert.ok(kernel?.length === 2 && kernel[1] === 'read 3' && /^write [02]$/.test(kernel[0] ?? ''), String(kernel));
  });

  test('an unknown-outcome write cannot be seen twice around another write', () => {
    const h = new Recorder().write(1, 'x', 'b').info(1).read(2, 'x').ok(2, 'b').write(0, 'x', 'c').ok(0).read(2, 'x').ok(2, 'c').read(2, 'x').ok(2, 'b');
    assertViolation(h.events);
  });

  test('a chain of info cas ops cannot run backwards', () => {
    const h = new Recorder().write(0, 'x', 'a').ok(0).cas(1, 'x', 'a', 'b').info(1).cas(2, 'x', 'b', 'c').info(2).read(0, 'x').ok(0, 'c').read(0, 'x').ok(0, 'b');
    assertViolation(h.events);
  });

  test('a value read back after a later write was overwritten: reads must not go back in time', () => {
    const h = new Recorder().write(0, 'x', 'a').write(1, 'x', 'b').read(2, 'x').ok(2, 'b').ok(0).ok(1).read(2, 'x').ok(2, 'a').read(2, 'x').ok(2, 'b');
    assertViolation(h.events);
  });

  test('only the broken key fails; the others still report linearizable', () => {
    const h = new Recorder().write(0, 'y', 'a').ok(0).read(1, 'y').ok(1, 'a').write(0, 'x', 'a').ok(0).read(1, 'x').ok(1, null);
    const result = checkLinearizability(h.events);
    assert.equal(result.ok, false);
    assert.equal(keyResult(result, 'y').verdict, 'linearizable');
    assert.equal(keyResult(result, 'x').verdict, 'not-linearizable');
    assert.ok(!result.explanation.includes('key "y"'), result.explanation);
  });
});

describe('budgets', () => {
  test('an exhausted step budget is unknown, never ok', () => {
    const h = new Recorder().write(0, 'x', 'a').write(1, 'x', 'b').read(2, 'x').ok(2, 'a').ok(0).ok(1);
    const result = checkLinearizability(h.events, { stepLimit: 2 });
    assert.equal(result.ok, false);
    assert.equal(result.verdict, 'unknown');
    assert.equal(keyResult(result, 'x').unknownReason, 'step-limit');
    assert.match(result.explanation, /key "x": unknown, the step limit ran out/);
  });

  test('the time limit uses the injected clock', () => {
    const events = randomRegisterHistory(sampleSpecs(3000, 7), { processes: 10 }).events;
    let clock = 0;
    const result = checkLinearizability(events, { timeLimitMs: 5, now: () => clock++ });
    assert.equal(result.verdict, 'unknown');
    assert.equal(result.keys.find((k) => k.verdict === 'unknown')?.unknownReason, 'time-limit');
  });

  test('bad options are rejected', () => {
    assert.throws(() => checkLinearizability([], { stepLimit: 0 }), RangeError);
    assert.throws(() => checkLinearizability([], { timeLimitMs: -1 }), RangeError);
  });
});

// ---------------------------------------------------------------------------------------------
// Random executions of a true register. Op i takes effect at time 100·(i+1); its invoke is up to
// `callSlack` earlier and its completion just before the same process's next op, so intervals
// overlap heavily while each still contains the op's linearization point.

const KEYS = ['x', 'y'] as const;
const VALUES = ['a', 'b', 'c', 'd'] as const;

interface OpSpec {
  readonly process: number;
  readonly f: 'read' | 'write' | 'cas' | 'lost-write';
  readonly key: number;
  readonly value: number;
  /** Index into [null, ...VALUES]. */
  readonly expected: number;
  readonly callSlack: number;
  readonly retSlack: number;
  /** 'info' reports the outcome as unknown; 'fail' makes reads fail (writes/cas stay truthful). */
  readonly report: 'ok' | 'info' | 'fail';
}

const opSpec = (processes: number): fc.Arbitrary<OpSpec> =>
  fc.record({
    process: fc.nat(processes - 1),
    f: fc.constantFrom('read', 'read', 'write', 'cas', 'lost-write'),
    key: fc.nat(KEYS.length - 1),
    value: fc.nat(VALUES.length - 1),
    expected: fc.nat(VALUES.length),
    callSlack: fc.nat(400),
    retSlack: fc.nat(99),
    report: fc.constantFrom('ok', 'ok', 'ok', 'ok', 'info', 'fail'),
  });

interface Generated {
  readonly events: HistoryEvent[];
  /** Indices into `events` of the ok lines of reads. */
  readonly okReads: number[];
}

interface Shape {
  readonly processes: number;
  /** Each write gets a fresh value (as a chaos suite should do); otherwise values come from VALUES. */
  readonly uniqueValues?: boolean;
  /** Put every op on key "x" instead of spreading them over KEYS. */
  readonly oneKey?: boolean;
  /**
   * 'many' (default) keeps every timeout the specs ask for, about a third of all writes: harsh on
   * the checker. 'few' keeps about 3% of them, closer to a chaos run with occasional partitions.
   */
  readonly unknownOutcomes?: 'many' | 'few';
}

function randomRegisterHistory(specs: readonly OpSpec[], shape: Shape): Generated {
  const { processes, uniqueValues = false, oneKey = false, unknownOutcomes = 'many' } = shape;
  interface Pending {
    readonly lin: number;
    readonly invoke: HistoryEvent;
    readonly completion: Omit<HistoryEvent, 'time'>;
    readonly unknown: boolean;
  }
  const register = new Map<string, string | null>();
  const earlier = new Map<string, string | null>(); // the value before the current one, per key
  const set = (key: string, value: string): void => {
    earlier.set(key, register.get(key) ?? null);
    register.set(key, value);
  };
  const open = new Map<number, Pending>();
  const lastRet = new Array<number>(processes).fill(0);
  const timed: HistoryEvent[] = [];
  const close = (process: number, ret: number): void => {
    const pending = open.get(process);
    if (pending === undefined) return;
    timed.push({ ...pending.completion, time: ret });
    lastRet[process] = ret;
    open.delete(process);
  };

  specs.forEach((original, i) => {
    const calm = unknownOutcomes === 'few' && original.retSlack >= 3;
    const spec: OpSpec = calm
      ? { ...original, f: original.f === 'lost-write' ? 'write' : original.f, report: original.report === 'info' ? 'ok' : original.report }
      : original;
    const lin = 100 * (i + 1);
    const previous = open.get(spec.process);
    if (previous !== undefined) close(spec.process, Math.max(previous.lin, lin - 1 - spec.retSlack));
    const call = Math.max((lastRet[spec.process] ?? 0) + 1, lin - spec.callSlack);
    const key = oneKey ? 'x' : KEYS[spec.key]!;
    const value = uniqueValues ? `${VALUES[spec.value]!}${i}` : VALUES[spec.value]!;
    const current = register.get(key) ?? null;
    const before = earlier.get(key) ?? null;
    const base = { process: spec.process, key };
    let invoke: HistoryEvent;
    let completion: Omit<HistoryEvent, 'time'>;
    switch (spec.f) {
      case 'read': {
        invoke = { ...base, type: 'invoke', f: 'read', value: null, time: call };
        const type = spec.report;
        completion = { ...base, type, f: 'read', value: type === 'ok' ? current : null };
        break;
      }
      case 'write':
        set(key, value);
        invoke = { ...base, type: 'invoke', f: 'write', value, time: call };
        completion = { ...base, type: spec.report === 'info' ? 'info' : 'ok', f: 'write', value };
        break;
      case 'lost-write':
        // Never takes effect; the client only learns that it timed out.
        invoke = { ...base, type: 'invoke', f: 'write', value, time: call };
        completion = { ...base, type: 'info', f: 'write', value };
        break;
      case 'cas': {
        // With unique values a random expected value would never match: expect the current value
        // or the one before it instead.
        const expected = uniqueValues ? (spec.expected % 2 === 0 ? current : before) : spec.expected === 0 ? null : VALUES[spec.expected - 1]!;
        const applies = current === expected;
        if (applies) set(key, value);
        invoke = { ...base, type: 'invoke', f: 'cas', value, expected, time: call };
        const type = spec.report === 'info' ? 'info' : applies ? 'ok' : 'fail';
        completion = { ...base, type, f: 'cas', value, expected };
        break;
      }
    }
    timed.push(invoke);
    open.set(spec.process, { lin, invoke, completion, unknown: completion.type === 'info' });
  });
  const end = 100 * (specs.length + 1);
  for (const [process, pending] of [...open]) {
    // Some ops with unknown outcome are left without any completion line.
    if (pending.unknown && process % 2 === 0) open.delete(process);
    else close(process, Math.min(end, pending.lin + 50));
  }
  // Stable: equal times keep each process's own order. Any tie order between processes is still a
  // faithful recording, because linearization points are distinct.
  const events = [...timed].sort((a, b) => a.time - b.time);
  const okReads = events.flatMap((event, index) => (event.f === 'read' && event.type === 'ok' ? [index] : []));
  return { events, okReads };
}

function sampleSpecs(length: number, seed: number, processes = 10): OpSpec[] {
  const [specs] = fc.sample(fc.array(opSpec(processes), { minLength: length, maxLength: length }), { seed, numRuns: 1 });
  assert.ok(specs);
  return specs;
}

describe('property: recordings of a real register', () => {
  test('are accepted with a valid witness; corrupting one read to an unwritten value is rejected', () => {
    const processes = 5;
    fc.assert(
      fc.property(fc.array(opSpec(processes), { minLength: 1, maxLength: 60 }), fc.nat(), (specs, pick) => {
        const { events, okReads } = randomRegisterHistory(specs, { processes });
        assertLinearizable(events);

        if (okReads.length === 0) return;
        const index = okReads[pick % okReads.length]!;
        const corrupted = events.map((event, i) => (i === index ? { ...event, value: 'never-written' } : event));
        const violation = assertViolation(corrupted, events[index]!.key);
        const readId = pairOperations(corrupted).find((op) => op.completeIndex === index)?.id;
        assert.deepEqual(violation.kernel?.operations.map((op) => op.id), [readId], violation.explanation);
      }),
      { numRuns: 300 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Brute force oracle: try every order (and every choice of which unknown ops happened).

function bruteForceLinearizable(ops: readonly Operation[]): boolean {
  const candidates = ops.filter((op) => op.outcome !== 'fail' && !(op.f === 'read' && op.output === null));
  const placed = candidates.map(() => false);
  const precedes = (a: Operation, b: Operation): boolean => a.outcome === 'ok' && a.completeIndex !== null && a.completeIndex < b.invokeIndex;
  const search = (value: string | null): boolean => {
    if (candidates.every((op, i) => placed[i] || op.outcome !== 'ok')) return true;
    for (let i = 0; i < candidates.length; i++) {
      const op = candidates[i]!;
      if (placed[i] || candidates.some((other, j) => !placed[j] && j !== i && precedes(other, op))) continue;
      let next: string | null;
      if (op.f === 'read') {
        if (op.output?.value !== value) continue;
        next = value;
      } else if (op.f === 'write') {
        next = op.input.value;
      } else if (op.input.expected === value) {
        next = op.input.value;
      } else if (op.outcome === 'ok') {
        continue;
      } else {
        next = value;
      }
      placed[i] = true;
      if (search(next)) return true;
      placed[i] = false;
    }
    return false;
  };
  return search(null);
}

const smallValue = fc.constantFrom<string | null>(null, 'a', 'b');
const smallOp = fc.record({
  process: fc.nat(2),
  f: fc.constantFrom<'read' | 'write' | 'cas'>('read', 'write', 'cas'),
  key: fc.constantFrom('x', 'y'),
  value: smallValue,
  expected: smallValue,
  outcome: fc.constantFrom<'ok' | 'fail' | 'info' | 'unfinished'>('ok', 'ok', 'ok', 'fail', 'info', 'unfinished'),
  gap: fc.nat(3),
  duration: fc.integer({ min: 1, max: 6 }),
});

type SmallOp = typeof smallOp extends fc.Arbitrary<infer T> ? T : never;

function arbitraryHistory(specs: readonly SmallOp[]): HistoryEvent[] {
  const events: HistoryEvent[] = [];
  const clock = new Map<number, number>();
  const finished = new Set<number>();
  for (const spec of specs) {
    if (finished.has(spec.process)) continue;
    const call = (clock.get(spec.process) ?? 0) + spec.gap;
    const ret = call + spec.duration;
    const base = { process: spec.process, f: spec.f, key: spec.key };
    const input = spec.f === 'read' ? null : spec.value;
    const expected = spec.f === 'cas' ? { expected: spec.expected } : {};
    events.push({ ...base, type: 'invoke', value: input, ...expected, time: call });
    if (spec.outcome === 'unfinished') {
      finished.add(spec.process);
      continue;
    }
    const value = spec.f === 'read' ? (spec.outcome === 'ok' ? spec.value : null) : spec.value;
    events.push({ ...base, type: spec.outcome, value, ...expected, time: ret });
    clock.set(spec.process, ret);
  }
  return events.sort((a, b) => a.time - b.time);
}

describe('property: agrees with brute force on small arbitrary histories', () => {
  test('same verdict per key as trying every order', () => {
    const seen = { linearizable: 0, 'not-linearizable': 0 };
    fc.assert(
      fc.property(fc.array(smallOp, { maxLength: 9 }), (specs) => {
        const events = arbitraryHistory(specs);
        const result = checkLinearizability(events);
        const ops = pairOperations(events);
        for (const key of result.keys) {
          const expected = bruteForceLinearizable(ops.filter((op) => op.key === key.key));
          assert.equal(key.verdict, expected ? 'linearizable' : 'not-linearizable', `${key.key}: ${result.explanation}\n${JSON.stringify(events)}`);
          seen[key.verdict === 'linearizable' ? 'linearizable' : 'not-linearizable']++;
        }
        assertValidWitnesses(events, result);
      }),
      { numRuns: 1500 },
    );
    // The oracle comparison only means something if both verdicts actually occurred.
    assert.ok(seen.linearizable > 100 && seen['not-linearizable'] > 100, JSON.stringify(seen));
  });
});

// ---------------------------------------------------------------------------------------------

describe('large histories', () => {
  // Steps are deterministic, unlike time, so they carry the assertions; times are diagnostics.
  // A step is one visit of a list entry, so it also counts scanning past ops that cannot go yet.
  interface Case {
    readonly name: string;
    readonly shape: Shape;
    readonly maxStepsPerOp: number;
    /** null: proving the violation may exhaust the budget (unknown), which must still not be ok. */
    readonly maxFailStepsPerOp: number | null;
  }
  const cases: Case[] = [
    // Like the simulator's workload: every write has a fresh value.
    { name: 'unique values, 10 processes, many timeouts', shape: { processes: 10, uniqueValues: true, oneKey: true }, maxStepsPerOp: 2, maxFailStepsPerOp: 50 },
    { name: 'unique values, 10 processes, few timeouts', shape: { processes: 10, uniqueValues: true, oneKey: true, unknownOutcomes: 'few' }, maxStepsPerOp: 2, maxFailStepsPerOp: 100 },
    // Few distinct values: every timed-out write could take effect until the end of the history,
    // the known worst case of this search (as for Knossos). Proving a violation may run out of budget.
    { name: 'four values, 10 processes, few timeouts', shape: { processes: 10, oneKey: true, unknownOutcomes: 'few' }, maxStepsPerOp: 10, maxFailStepsPerOp: null },
    { name: 'four values, 5 processes, many timeouts', shape: { processes: 5, oneKey: true }, maxStepsPerOp: 1000, maxFailStepsPerOp: null },
  ];
  for (const { name, shape, maxStepsPerOp, maxFailStepsPerOp } of cases) {
    test(`5000 ops on one key, ${name}: accepted, and rejected once a read is corrupted`, (t) => {
      const { events, okReads } = randomRegisterHistory(sampleSpecs(5000, 42, shape.processes), shape);
      const start = performance.now();
      const result = checkLinearizability(events);
      const elapsed = performance.now() - start;
      assert.equal(result.verdict, 'linearizable', result.explanation);
      assertValidWitnesses(events, result);
      const unknown = events.filter((event) => event.type === 'info').length;
      t.diagnostic(`linearizable: ${result.operations} ops (${unknown} timed out), ${result.steps} steps, ${elapsed.toFixed(1)} ms`);
      assert.ok(result.steps <= maxStepsPerOp * result.operations, `${result.steps} steps`);

      const index = okReads[Math.floor(okReads.length * 0.9)]!;
      const corrupted = events.map((event, i) => (i === index ? { ...event, value: 'never-written' } : event));
      const failStart = performance.now();
      // Where unknown is allowed, a smaller budget keeps the suite fast.
      const failed = checkLinearizability(corrupted, maxFailStepsPerOp === null ? { stepLimit: 1_000_000 } : {});
      const failElapsed = performance.now() - failStart;
      t.diagnostic(`corrupted read near the end: ${failed.verdict}, ${failed.steps} steps, ${failElapsed.toFixed(1)} ms`);
      assert.equal(failed.ok, false);
      if (maxFailStepsPerOp !== null) {
        assert.equal(failed.verdict, 'not-linearizable');
        assert.ok(failed.steps <= maxFailStepsPerOp * failed.operations, `${failed.steps} steps`);
        const violation = keyResult(failed, 'x').violation;
        assert.ok(violation?.kernel, failed.explanation);
        assert.deepEqual(violation.kernel.operations.map((op) => op.completeIndex), [index], failed.explanation);
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------

describe('pairOperations', () => {
  test('pairs invokes with completions in invoke order, unknown outcomes end at infinity', () => {
    const h = new Recorder().write(0, 'x', 'a').read(1, 'x').ok(0).info(1).cas(0, 'x', 'a', 'b').fail(0).read(2, 'x');
    const ops = pairOperations(h.events);
    assert.deepEqual(
      ops.map((op) => [op.id, op.process, op.f, op.outcome, op.call, op.ret, op.invokeIndex, op.completeIndex]),
      [
        [0, 0, 'write', 'ok', 1, 3, 0, 2],
        [1, 1, 'read', 'info', 2, Infinity, 1, 3],
        [2, 0, 'cas', 'fail', 5, 6, 4, 5],
        [3, 2, 'read', 'info', 7, Infinity, 6, null],
      ],
    );
    assert.deepEqual(ops[2]?.f === 'cas' && ops[2].input, { expected: 'a', value: 'b' });
    assert.match(describeOperation(ops[3]!), /#3 p2 read "x" info \[t 7→∞, never completed\]/);
  });

  const invoke = (process: number, f: 'read' | 'write' | 'cas', key: string, time: number, value: string | null = null): HistoryEvent =>
    f === 'cas' ? { process, type: 'invoke', f, key, value, expected: null, time } : { process, type: 'invoke', f, key, value, time };
  const done = (process: number, f: 'read' | 'write' | 'cas', key: string, time: number, value: string | null = null): HistoryEvent => ({
    process,
    type: 'ok',
    f,
    key,
    value,
    time,
  });
  const cases: [string, HistoryEvent[], RegExp][] = [
    ['a completion without an invoke', [done(0, 'read', 'x', 1)], /event 0 .*process 0, which has no open operation/],
    ['two open ops on one process', [invoke(0, 'read', 'x', 1), invoke(0, 'read', 'y', 2)], /event 1 .*process 0 already has op #0/],
    ['a completion for another function', [invoke(0, 'read', 'x', 1), done(0, 'write', 'x', 2)], /event 1 .*does not match op #0 \(read "x"\)/],
    ['a completion for another key', [invoke(0, 'read', 'x', 1), done(0, 'read', 'y', 2)], /event 1 .*does not match op #0/],
    ['a write completed with another value', [invoke(0, 'write', 'x', 1, 'a'), done(0, 'write', 'x', 2, 'b')], /differs from the invoked value/],
    ['a cas invoke without expected', [{ process: 0, type: 'invoke', f: 'cas', key: 'x', value: 'a', time: 1 }], /needs an `expected`/],
    ['time going backwards', [invoke(0, 'read', 'x', 5), done(0, 'read', 'x', 4)], /earlier than the previous/],
    ['an unknown event type', [{ ...invoke(0, 'read', 'x', 1), type: 'done' as 'ok' }], /`type` must be/],
    ['a non-integer process', [invoke(0.5, 'read', 'x', 1)], /`process` must be an integer/],
    ['a numeric value', [{ ...invoke(0, 'write', 'x', 1), value: 3 as unknown as string }], /`value` must be a string or null/],
    ['a missing time', [{ ...invoke(0, 'read', 'x', 1), time: Number.NaN }], /`time` must be a finite number/],
  ];
  for (const [name, events, message] of cases) {
    test(`rejects ${name}`, () => {
      assert.throws(() => pairOperations(events), (error: unknown) => {
        assert.ok(error instanceof HistoryError, String(error));
        assert.match(error.message, message);
        return true;
      });
      assert.throws(() => checkLinearizability(events), HistoryError);
    });
  }
});
