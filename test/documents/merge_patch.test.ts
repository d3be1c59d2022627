// Goal: applyMergePatch implements RFC 7396 exactly and is pure.
// Method: every example of RFC 7396 Appendix A plus the section 3 example, checked literally;
// then purity (inputs untouched, no shared structure) and the "__proto__" member edge case.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyMergePatch, type JsonValue } from '../../src/documents/index.ts';

// [original, patch, result] from RFC 7396, Appendix A.
const appendixA: Array<[JsonValue, JsonValue, JsonValue]> = [
  [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
  [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
  [{ a: 'b' }, { a: null }, {}],
  [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
  [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
  [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
  [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
  [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
  [['a', 'b'], ['c', 'd'], ['c', 'd']],
  [{ a: 'b' }, ['c'], ['c']],
  [{ a: 'foo' }, null, null],
  [{ a: 'foo' }, 'bar', 'bar'],
  [{ e: null }, { a: 1 }, { e: null, a: 1 }],
  [[1, 2], { a: 'b', c: null }, { a: 'b' }],
  [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
];

for (const [index, [original, patch, result]] of appendixA.entries()) {
  test(`RFC 7396 appendix A example ${index + 1}: ${JSON.stringify(original)} + ${JSON.stringify(patch)}`, () => {
    assert.deepEqual(applyMergePatch(original, patch), result);
  });
}

test('RFC 7396 section 3 example', () => {
  const original = {
    title: 'Goodbye!',
    author: { givenName: 'John', familyName: 'Doe' },
    tags: ['example', 'sample'],
    content: 'This will be unchanged',
  };
  const patch = { title: 'Hello!', phoneNumber: '+01-123-456-7890', author: { familyName: null }, tags: ['example'] };
  const result = applyMergePatch(original, patch);
  assert.deepEqual(result, {
    title: 'Hello!',
    author: { givenName: 'John' },
    tags: ['example'],
    content: 'This will be unchanged',
    phoneNumber: '+01-123-456-7890',
  });
  // Target members keep their order; new members follow.
  assert.deepEqual(Object.keys(result as object), ['title', 'author', 'tags', 'content', 'phoneNumber']);
});

test('a missing target behaves like a non-object target', () => {
  assert.deepEqual(applyMergePatch(undefined, { a: { b: null, c: 1 } }), { a: { c: 1 } });
  assert.equal(applyMergePatch(undefined, 3), 3);
});

test('pure: neither input is mutated and the result shares nothing with them', () => {
  const target = { a: { b: [1, 2] }, keep: { deep: true } };
  const patch = { a: { c: { d: 1 } }, n: [{ x: 1 }] };
  const targetCopy = structuredClone(target);
  const patchCopy = structuredClone(patch);
  const result = applyMergePatch(target, patch) as { a: { b: number[]; c: { d: number } }; keep: object; n: object[] };
  assert.deepEqual(target, targetCopy);
  assert.deepEqual(patch, patchCopy);
  assert.notEqual(result.keep, target.keep);
  assert.notEqual(result.a.b, target.a.b);
  assert.notEqual(result.a.c, patch.a.c);
  assert.notEqual(result.n, patch.n);
});

test('a member named __proto__ is data, not a prototype', () => {
  const patch = JSON.parse('{"__proto__": {"polluted": true}}') as JsonValue;
  const result = applyMergePatch({}, patch) as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(result), Object.prototype);
  assert.deepEqual(Object.keys(result), ['__proto__']);
  assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  const removed = applyMergePatch(result as JsonValue, JSON.parse('{"__proto__": null}') as JsonValue);
  assert.deepEqual(Object.keys(removed as object), []);
});
