// Goal: the state machine is deterministic and snapshot-transparent, and its observable behaviour
// matches a deliberately naive model.
// Method: fast-check generates sequences of commands over a tiny key space (so conditions, key
// reuse, idempotency hits and expiries are frequent, including clocks that step back and malformed
// commands). Properties:
//   1. two stores fed the same sequence (one through encodeCommand/decodeCommand, as from the log)
//      return equal results and have equal digests after every entry;
//   2. a store restored from a snapshot taken mid-sequence, then fed the rest, ends with the same
//      digest and returns the same results as the store that saw everything;
//   3. statuses, versions and bodies agree with a model that keeps documents in a Map and
//      idempotency keys with their times and a high-water clock, and knows nothing about sweeps
//      or meta layout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  applyCommand,
  canonicalJson,
  decodeCommand,
  encodeCommand,
  jsonEqual,
  MemoryDocumentStore,
  type ApplyResult,
  type Command,
  type Condition,
  type DocumentOptions,
  type JsonObject,
  type RowOp,
} from '../../src/documents/index.ts';

const options: Partial<DocumentOptions> = { idempotencyRetentionMs: 1000, idempotencyExpiryPerApplyMax: 2 };
const retentionMs = 1000;

const collectionArb = fc.constantFrom('a', 'b');
const idArb = fc.constantFrom('x', 'y', 'z');
const bodyArb: fc.Arbitrary<JsonObject> = fc.oneof(
  fc.record({ n: fc.integer({ min: 0, max: 2 }) }),
  fc.record({ n: fc.integer({ min: 0, max: 2 }), tags: fc.array(fc.constantFrom('p', 'q'), { maxLength: 2 }) }),
  fc.constant({}),
);
const conditionArb: fc.Arbitrary<Condition | undefined> = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: fc.record({ exists: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ version: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ fields: fc.record({ n: fc.integer({ min: 0, max: 2 }) }) }) },
);
const opArb: fc.Arbitrary<RowOp> = fc
  .tuple(fc.boolean(), collectionArb, idArb, bodyArb, conditionArb)
  .map(([isPut, collection, id, body, condition]) => {
    const op: RowOp = isPut ? { action: 'put', collection, id, body } : { action: 'delete', collection, id };
    return condition === undefined ? op : { ...op, condition };
  });

/** Commands with a clock delta each (applied cumulatively; negative steps model a leader whose clock is behind). */
const stepArb: fc.Arbitrary<{ delta: number; make: (timestampMs: number) => Command }> = fc.record({
  delta: fc.integer({ min: -200, max: 700 }),
  make: fc.oneof(
    {
      weight: 12,
      arbitrary: fc
        .tuple(fc.array(opArb, { minLength: 1, maxLength: 4 }), fc.option(fc.constantFrom('k1', 'k2', 'k3'), { nil: undefined }), fc.nat(99))
        .map(([ops, idempotencyKey, request]) => (timestampMs: number): Command => ({
          type: 'batch',
          ops,
          timestampMs,
          requestId: `r${request}`,
          ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
        })),
    },
    { weight: 1, arbitrary: fc.constant((): Command => ({ type: 'noop' })) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 3 }).map((max) => (timestampMs: number): Command => ({ type: 'expireIdempotency', timestampMs, max })) },
    {
      weight: 1,
      arbitrary: fc.constant((timestampMs: number) => ({ type: 'batch', ops: [{ action: 'put', collection: '_sys', id: 'x', body: {} }], timestampMs }) as unknown as Command),
    },
  ),
});

const sequenceArb = fc.array(stepArb, { minLength: 1, maxLength: 40 }).map((steps) => {
  let clock = 10_000;
  return steps.map(({ delta, make }) => {
    clock = Math.max(0, clock + delta);
    return make(clock);
  });
});

function applyAll(store: MemoryDocumentStore, commands: readonly Command[], firstIndex: number): ApplyResult[] {
  return commands.map((command, i) => applyCommand(store, command, { index: firstIndex + i, term: 1 + Math.floor((firstIndex + i) / 7) }, options));
}

test('property: same commands, same results and digests (in memory and through the log encoding)', () => {
  fc.assert(
    fc.property(sequenceArb, (commands) => {
      const a = new MemoryDocumentStore();
      const b = new MemoryDocumentStore();
      for (const [i, command] of commands.entries()) {
        const meta = { index: i + 1, term: 1 };
        const decoded = decodeCommand(encodeCommand(command));
        const fromLog: Command = decoded.ok ? decoded.command : (JSON.parse(JSON.stringify(command)) as Command);
        const resultA = applyCommand(a, command, meta, options);
        const resultB = applyCommand(b, fromLog, meta, options);
        assert.deepEqual(resultB, resultA);
        assert.equal(b.digest(), a.digest());
      }
      assert.deepEqual(b.snapshot(), a.snapshot());
    }),
    { numRuns: 200 },
  );
});

test('property: snapshot mid-sequence, restore, apply the rest: same digest as applying everything', () => {
  fc.assert(
    fc.property(sequenceArb, fc.nat(), (commands, cut) => {
      const at = cut % (commands.length + 1);
      const full = new MemoryDocumentStore();
      const fullResults = applyAll(full, commands, 1);

      const source = new MemoryDocumentStore();
      applyAll(source, commands.slice(0, at), 1);
      const restored = new MemoryDocumentStore();
      assert.equal(restored.restore(source.snapshot()), null);
      assert.equal(restored.digest(), source.digest());
      const restResults = applyAll(restored, commands.slice(at), at + 1);

      assert.equal(restored.digest(), full.digest());
      assert.deepEqual(restResults, fullResults.slice(at));
    }),
    { numRuns: 200 },
  );
});

interface ModelDoc {
  body: JsonObject;
  version: number;
}

interface Model {
  docs: Map<string, ModelDoc>;
  /** Idempotency key → when recorded (state clock) and what it answered. */
  keys: Map<string, { recordedAtMs: number; versions: Array<number | null> }>;
  /** The state clock: highest valid command timestamp so far. */
  clockMs: number;
}

/** The documented semantics, written as plainly as possible. */
function modelApply(model: Model, command: Command): { status: string; versions?: Array<number | null> } {
  if (command.type === 'noop') return { status: 'housekeeping' };
  if (command.type === 'batch' && command.ops.some((op) => op.collection.startsWith('_'))) return { status: 'rejected' };
  model.clockMs = Math.max(model.clockMs, command.timestampMs);
  if (command.type === 'expireIdempotency') return { status: 'housekeeping' };
  const { docs, keys } = model;
  const key = command.idempotencyKey;
  const record = key === undefined ? undefined : keys.get(key);
  if (record !== undefined && model.clockMs - record.recordedAtMs < retentionMs) return { status: 'applied', versions: record.versions };
  const next = new Map(docs);
  const versions: Array<number | null> = [];
  for (const op of command.ops) {
    const rowKey = `${op.collection}/${op.id}`;
    const current = next.get(rowKey);
    const c = op.condition;
    if (c !== undefined) {
      if (current === undefined && (c.exists === true || c.version !== undefined || c.fields !== undefined)) return { status: 'conflict' };
      if (current !== undefined && c.exists === false) return { status: 'conflict' };
      if (current !== undefined && c.version !== undefined && c.version !== current.version) return { status: 'conflict' };
      if (current !== undefined && c.fields !== undefined) {
        for (const [name, value] of Object.entries(c.fields)) {
          const actual = current.body[name];
          if (actual === undefined || !jsonEqual(actual, value)) return { status: 'conflict' };
        }
      }
    }
    if (op.action === 'put') {
      const version = (current?.version ?? 0) + 1;
      next.set(rowKey, { body: op.body, version });
      versions.push(version);
    } else {
      next.delete(rowKey);
      versions.push(current?.version ?? null);
    }
  }
  docs.clear();
  for (const [rowKey, doc] of next) docs.set(rowKey, doc);
  if (key !== undefined) keys.set(key, { recordedAtMs: model.clockMs, versions });
  return { status: 'applied', versions };
}

test('property: results and content agree with a naive model', () => {
  fc.assert(
    fc.property(sequenceArb, (commands) => {
      const store = new MemoryDocumentStore();
      const model: Model = { docs: new Map(), keys: new Map(), clockMs: 0 };
      const docs = model.docs;
      for (const [i, command] of commands.entries()) {
        const actual = applyCommand(store, command, { index: i + 1, term: 1 }, options);
        const expected = modelApply(model, command);
        assert.equal(actual.status, expected.status);
        if (actual.status === 'applied') assert.deepEqual(actual.ops.map((op) => op.version), expected.versions);
        // Bodies compare as canonical JSON: fast-check's records may have a null prototype, which
        // the store (rightly) normalises away when it copies.
        const stored = store.collectionNames().flatMap((collection) => store.list({ collection, limit: 100 }).documents);
        assert.deepEqual(
          stored.map((doc) => [`${doc.collection}/${doc.id}`, canonicalJson(doc.body), doc.version]),
          [...docs.entries()].sort(([x], [y]) => (x < y ? -1 : 1)).map(([rowKey, doc]) => [rowKey, canonicalJson(doc.body), doc.version]),
        );
      }
    }),
    { numRuns: 200 },
  );
});
