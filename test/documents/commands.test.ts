// Goal: commands are validated strictly (structure always, configured limits only when asked) and
// survive encode → decode unchanged; garbage bytes decode to an error value, never a throw.
// Method: examples of each command type and each rule, plus a fast-check round trip over
// generated valid batch commands.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  decodeCommand,
  encodeCommand,
  resolveDocumentOptions,
  validateCommand,
  validateCondition,
  type BatchCommand,
  type Command,
  type JsonObject,
} from '../../src/documents/index.ts';

const put = (id: string, body: JsonObject = { n: 1 }) => ({ action: 'put' as const, collection: 'c', id, body });

test('valid commands pass', () => {
  const commands: Command[] = [
    { type: 'noop' },
    { type: 'expireIdempotency', timestampMs: 5, max: 10 },
    { type: 'batch', ops: [put('a')], timestampMs: 0 },
    {
      type: 'batch',
      ops: [
        { ...put('a'), condition: { exists: false } },
        { action: 'delete', collection: 'c', id: 'b', condition: { version: 3, fields: { n: [1, { x: null }] } } },
      ],
      timestampMs: 1_700_000_000_000,
      idempotencyKey: 'key-1',
      requestId: 'req-1',
    },
  ];
  for (const command of commands) {
    assert.equal(validateCommand(command), null, JSON.stringify(command));
    assert.equal(validateCommand(command, null), null, JSON.stringify(command));
  }
});

test('structural errors carry codes and the failing op', () => {
  const cases: Array<[unknown, string, number?]> = [
    [null, 'INVALID_COMMAND'],
    [{ type: 'upsert' }, 'INVALID_COMMAND'],
    [{ type: 'noop', extra: 1 }, 'INVALID_COMMAND'],
    [{ type: 'expireIdempotency', timestampMs: 1, max: 0 }, 'INVALID_COMMAND'],
    [{ type: 'batch', ops: [], timestampMs: 0 }, 'BATCH_EMPTY'],
    [{ type: 'batch', ops: [put('a')] }, 'INVALID_TIMESTAMP'],
    [{ type: 'batch', ops: [put('a')], timestampMs: 0, idempotencyKey: '' }, 'INVALID_IDEMPOTENCY_KEY'],
    [{ type: 'batch', ops: [put('a')], timestampMs: 0, requestId: 'a b' }, 'INVALID_REQUEST_ID'],
    [{ type: 'batch', ops: [put('a')], timestampMs: 0, statement: 'x' }, 'INVALID_COMMAND'],
    [{ type: 'batch', ops: [put('a'), { action: 'merge', collection: 'c', id: 'b' }], timestampMs: 0 }, 'INVALID_COMMAND', 1],
    [{ type: 'batch', ops: [put('a'), { ...put('b'), collection: '_sys' }], timestampMs: 0 }, 'INVALID_COLLECTION', 1],
    [{ type: 'batch', ops: [{ ...put('a'), id: '..' }], timestampMs: 0 }, 'INVALID_ID', 0],
    [{ type: 'batch', ops: [{ action: 'put', collection: 'c', id: 'a', body: [1] }], timestampMs: 0 }, 'INVALID_BODY', 0],
    [{ type: 'batch', ops: [{ action: 'delete', collection: 'c', id: 'a', body: {} }], timestampMs: 0 }, 'INVALID_COMMAND', 0],
    [{ type: 'batch', ops: [{ ...put('a'), condition: { version: 0 } }], timestampMs: 0 }, 'INVALID_CONDITION', 0],
  ];
  for (const [command, code, opIndex] of cases) {
    const error = validateCommand(command, null);
    assert.equal(error?.code, code, JSON.stringify(command));
    assert.equal(error?.opIndex, opIndex, JSON.stringify(command));
  }
});

test('conditions: shapes and contradictions', () => {
  assert.equal(validateCondition({}), null);
  assert.equal(validateCondition({ exists: true, version: 2, fields: { a: 1 } }), null);
  for (const condition of [null, [], { exists: 'yes' }, { version: 1.5 }, { fields: [] }, { fields: { a: undefined } }, { exists: false, version: 1 }, { exists: false, fields: {} }, { ifMatch: 1 }]) {
    assert.equal(validateCondition(condition)?.code, 'INVALID_CONDITION', JSON.stringify(condition));
  }
  const many = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`f${i}`, i]));
  assert.equal(validateCondition({ fields: many })?.code, 'INVALID_CONDITION');
  assert.equal(validateCondition({ fields: many }, null), null);
});

test('configured limits apply only when asked for', () => {
  const options = resolveDocumentOptions({ batchOperationsMax: 2, documentBytesMax: 32, batchBytesMax: 200 });
  const three: BatchCommand = { type: 'batch', ops: [put('a'), put('b'), put('c')], timestampMs: 0 };
  assert.equal(validateCommand(three, options)?.code, 'BATCH_TOO_LARGE');
  assert.equal(validateCommand(three, null), null);
  const big: BatchCommand = { type: 'batch', ops: [put('a', { s: 'x'.repeat(40) })], timestampMs: 0 };
  assert.equal(validateCommand(big, options)?.code, 'DOCUMENT_TOO_LARGE');
  assert.equal(validateCommand(big, null), null);
  const wide: BatchCommand = { type: 'batch', ops: [put('a', { s: 'x'.repeat(20) }), put('b', { s: 'y'.repeat(20) })], timestampMs: 0, requestId: 'r'.repeat(100) };
  assert.equal(validateCommand(wide, options)?.code, 'BATCH_TOO_LARGE');
  // The default limit is 100 ops.
  const hundredOne: BatchCommand = { type: 'batch', ops: Array.from({ length: 101 }, (_, i) => put(`d${i}`)), timestampMs: 0 };
  assert.equal(validateCommand(hundredOne)?.code, 'BATCH_TOO_LARGE');
  assert.equal(validateCommand({ ...hundredOne, ops: hundredOne.ops.slice(1) }), null);
});

test('decode: bad bytes and invalid commands come back as error values', () => {
  assert.equal(decodeCommand(new Uint8Array([0xc3, 0x28])).ok, false);
  const notJson = decodeCommand(new TextEncoder().encode('{"type":'));
  assert.ok(!notJson.ok && notJson.error.code === 'INVALID_ENCODING');
  const invalid = decodeCommand(new TextEncoder().encode('{"type":"batch","ops":[],"timestampMs":1}'));
  assert.ok(!invalid.ok && invalid.error.code === 'BATCH_EMPTY');
});

test('encode → decode round trip, including awkward strings and a __proto__ member', () => {
  const command: BatchCommand = {
    type: 'batch',
    ops: [{ action: 'put', collection: 'c', id: 'a', body: JSON.parse('{"__proto__":{"x":1},"s":"é😀\\u0000\\"","n":-1.5e-7}') as JsonObject }],
    timestampMs: 42,
    idempotencyKey: 'k',
  };
  const decoded = decodeCommand(encodeCommand(command));
  assert.ok(decoded.ok);
  assert.deepEqual(decoded.command, command);
  const op = (decoded.command as BatchCommand).ops[0];
  assert.ok(op?.action === 'put');
  assert.deepEqual(Object.keys(op.body), ['__proto__', 's', 'n']);
  assert.equal(Object.getPrototypeOf(op.body), Object.prototype);
});

test('property: every valid generated batch round trips exactly', () => {
  const idArb = fc.stringMatching(/^[A-Za-z0-9_.:@-]{1,12}$/).filter((id) => id !== '.' && id !== '..');
  const collectionArb = fc.stringMatching(/^[A-Za-z0-9-][A-Za-z0-9_-]{0,10}$/);
  const bodyArb = fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 }) as fc.Arbitrary<JsonObject>;
  const conditionArb = fc.option(
    fc.oneof(fc.constant({ exists: false }), fc.record({ version: fc.integer({ min: 1, max: 1000 }) }), fc.record({ exists: fc.constant(true), fields: bodyArb })),
    { nil: undefined },
  );
  const opArb = fc.oneof(
    fc.record({ action: fc.constant('put' as const), collection: collectionArb, id: idArb, body: bodyArb, condition: conditionArb }, { requiredKeys: ['action', 'collection', 'id', 'body'] }),
    fc.record({ action: fc.constant('delete' as const), collection: collectionArb, id: idArb, condition: conditionArb }, { requiredKeys: ['action', 'collection', 'id'] }),
  );
  const commandArb = fc.record(
    {
      type: fc.constant('batch' as const),
      ops: fc.array(opArb, { minLength: 1, maxLength: 5 }),
      timestampMs: fc.integer({ min: 0, max: 2 ** 45 }),
      idempotencyKey: fc.stringMatching(/^[\x21-\x7e]{1,20}$/),
      requestId: fc.stringMatching(/^[\x21-\x7e]{1,20}$/),
    },
    { requiredKeys: ['type', 'ops', 'timestampMs'] },
  );
  fc.assert(
    fc.property(commandArb, (generated) => {
      // fast-check may produce -0 and keys with a lone surrogate; the validator has the last word.
      const command = generated as BatchCommand;
      fc.pre(validateCommand(command) === null);
      const decoded = decodeCommand(encodeCommand(command));
      assert.ok(decoded.ok, decoded.ok ? '' : decoded.error.message);
      assert.deepEqual(JSON.stringify(decoded.command), JSON.stringify(command));
    }),
    { numRuns: 300 },
  );
});
