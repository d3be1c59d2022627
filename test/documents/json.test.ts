// Goal: the JSON helpers the state machine relies on for determinism are right: FNV-1a 64 matches
// the reference, the canonical encoding ignores member order, equality is structural, UTF-8
// lengths match TextEncoder, and cloning/freezing are deep and prototype-safe.
// Method: published FNV test vectors, a BigInt reference implementation, and fast-check
// properties over arbitrary JSON values and strings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { canonicalJson, checkJson, cloneJson, deepFreeze, Fnv1a64, jsonEqual, utf8Length, type JsonValue } from '../../src/documents/json.ts';

function fnvReference(bytes: Uint8Array): string {
  let hash = 0xcbf29ce484222325n;
  for (const byte of bytes) hash = ((hash ^ BigInt(byte)) * 0x100000001b3n) & 0xffffffffffffffffn;
  return hash.toString(16).padStart(16, '0');
}

test('FNV-1a 64 known vectors', () => {
  for (const [text, expected] of [['', 'cbf29ce484222325'], ['a', 'af63dc4c8601ec8c'], ['foobar', '85944171f73967e8']] as const) {
    const hash = new Fnv1a64();
    hash.updateString(text);
    assert.equal(hash.hex(), expected);
  }
});

test('property: FNV-1a 64 over strings equals the BigInt reference over their UTF-8 bytes', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), (text) => {
      const hash = new Fnv1a64();
      hash.updateString(text);
      const viaBytes = new Fnv1a64();
      viaBytes.updateBytes(new TextEncoder().encode(text));
      assert.equal(hash.hex(), fnvReference(new TextEncoder().encode(text)));
      assert.equal(viaBytes.hex(), hash.hex());
    }),
  );
});

test('property: utf8Length equals TextEncoder length, lone surrogates included', () => {
  fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (text) => utf8Length(text) === new TextEncoder().encode(text).length));
});

test('canonical JSON sorts keys at every level and nothing else', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } }), '{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}');
  assert.equal(canonicalJson('é'), '"é"');
});

test('property: canonical JSON and equality ignore member order; clone is equal but separate', () => {
  const reorder = (value: JsonValue): JsonValue => {
    if (value === null || typeof value !== 'object') return value;
    if (Array.isArray(value)) return value.map(reorder);
    const out: Record<string, JsonValue> = {};
    for (const key of Object.keys(value).reverse()) Object.defineProperty(out, key, { value: reorder(value[key] as JsonValue), enumerable: true, writable: true, configurable: true });
    return out;
  };
  fc.assert(
    fc.property(fc.jsonValue(), (value) => {
      const json = value as JsonValue;
      assert.equal(canonicalJson(reorder(json)), canonicalJson(json));
      assert.ok(jsonEqual(reorder(json), json));
      assert.deepEqual(JSON.parse(canonicalJson(json)), JSON.parse(JSON.stringify(json)));
      const copy = cloneJson(json);
      assert.ok(jsonEqual(copy, json));
      if (json !== null && typeof json === 'object') assert.notEqual(copy, json);
    }),
  );
});

test('jsonEqual distinguishes what JSON distinguishes', () => {
  assert.ok(!jsonEqual({ a: 1 }, { a: 1, b: 2 }));
  assert.ok(!jsonEqual([1, 2], [2, 1]));
  assert.ok(!jsonEqual({ a: null }, {}));
  assert.ok(!jsonEqual([], {}));
  assert.ok(!jsonEqual('1', 1));
  assert.ok(jsonEqual({ a: [{ b: 1 }] }, { a: [{ b: 1 }] }));
});

test('cloneJson and deepFreeze keep __proto__ members as data', () => {
  const value = JSON.parse('{"__proto__":{"x":[1]}}') as JsonValue;
  const copy = deepFreeze(cloneJson(value)) as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(copy), Object.prototype);
  assert.deepEqual(Object.keys(copy), ['__proto__']);
  assert.ok(Object.isFrozen(copy) && Object.isFrozen(Object.getOwnPropertyDescriptor(copy, '__proto__')?.value));
});

test('checkJson reports shape and depth problems with a path', () => {
  assert.equal(checkJson({ a: [1, { b: 'x' }] }, 3), null);
  assert.deepEqual(checkJson({ a: [1, { b: 'x' }] }, 2)?.kind, 'depth');
  assert.equal(checkJson({ a: [0, { 'b/c': NaN }] }, 10)?.path, '/a/1/b~1c');
});
