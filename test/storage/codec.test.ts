// Goal: the log environment's byte formats are sound: the CRC-32 used for records equals zlib's
// (and the portable fallback equals both), including the empty-input case Node's zlib.crc32 gets
// wrong; index keys sort numerically as bytes; every entry shape round-trips (member addresses
// included); and a frame refuses
// a wrong key, a flipped bit, an unknown version or a short record.
// Method: worked examples plus fast-check properties over random bytes, indexes and entries.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import fc from 'fast-check';
import type { Entry } from '../../src/consensus/types.ts';
import { StorageCorruptionError } from '../../src/storage/index.ts';
import {
  crc32, crc32IsNative, crc32Portable, decodeEntry, decodeFrame, decodeHardState, decodeSnapshotMeta, decodeStaged,
  encodeEntry, encodeFrame, encodeHardState, encodeSnapshotMeta, encodeStaged, indexKey, readIndexKey,
} from '../../src/storage/lmdb/codec.ts';

test('crc32: matches zlib, the portable fallback agrees, chaining works, empty input keeps the value', () => {
  assert.equal(crc32IsNative, typeof (zlib as { crc32?: unknown }).crc32 === 'function');
  assert.equal(crc32(new TextEncoder().encode('123456789')), 0xcbf43926); // the standard check value
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 50 }), (a, b) => {
    const whole = new Uint8Array([...a, ...b]);
    assert.equal(crc32Portable(whole), crc32(whole));
    assert.equal(crc32(b, crc32(a)), crc32(whole));
    assert.equal(crc32Portable(b, crc32Portable(a)), crc32(whole));
  }));
  // Node's zlib.crc32 returns 0 here instead of the running value; ours must not.
  assert.equal(crc32(new Uint8Array(0).subarray(0, 0), 0x12345678), 0x12345678);
  assert.equal(crc32Portable(new Uint8Array(0), 0x12345678), 0x12345678);
});

test('index keys are 8-byte big-endian and sort like the numbers', () => {
  fc.assert(fc.property(fc.maxSafeNat(), fc.maxSafeNat(), (a, b) => {
    assert.equal(readIndexKey('f', indexKey(a)), a);
    assert.equal(Math.sign(Buffer.compare(indexKey(a), indexKey(b))), Math.sign(a - b));
  }));
  assert.throws(() => indexKey(-1), RangeError);
  assert.throws(() => readIndexKey('f', new Uint8Array(7)), StorageCorruptionError);
});

const entryArb: fc.Arbitrary<Entry> = fc.oneof(
  fc.record({ index: fc.maxSafeNat(), term: fc.maxSafeNat(), kind: fc.constantFrom('normal' as const, 'noop' as const), data: fc.uint8Array({ maxLength: 64 }) }, { noNullPrototype: true }),
  fc.record({
    index: fc.maxSafeNat(), term: fc.maxSafeNat(), kind: fc.constant('membership' as const), data: fc.uint8Array({ maxLength: 8 }),
    membership: fc.record({ voters: fc.array(fc.string()), learners: fc.array(fc.string()) }, { noNullPrototype: true }),
  }, { noNullPrototype: true }),
);

test('entries, hard state, snapshot metadata and the staged record round-trip', () => {
  fc.assert(fc.property(entryArb, (e) => {
    const decoded = decodeEntry('f', 'entry', encodeEntry(e));
    assert.deepEqual({ ...decoded, data: Buffer.from(decoded.data) }, { ...e, data: Buffer.from(e.data) });
    assert.equal(Object.getPrototypeOf(decoded.data), Uint8Array.prototype, 'data is a plain Uint8Array, not a Buffer view');
  }));
  const hs = { term: 2 ** 40, vote: 'n1', commit: 17 };
  assert.deepEqual(decodeHardState('f', encodeHardState(hs)), hs);
  assert.deepEqual(decodeHardState('f', encodeHardState({ ...hs, vote: null })), { ...hs, vote: null });
  const meta = { index: 9, term: 3, membership: { voters: ['a'], learners: ['b', 'c'] } };
  assert.deepEqual(decodeSnapshotMeta('f', encodeSnapshotMeta(meta)), meta);
  assert.deepEqual(decodeStaged('f', encodeStaged({ meta, bytes: 123 })), { meta, bytes: 123 });
});

test("a membership's member addresses (from `member add`) survive the log, snapshot metadata and staged record", () => {
  const membership = {
    voters: ['n1', 'n2', 'n3', 'n4'], learners: [],
    addresses: { n4: { peer: '127.0.0.1:7104', client: 'http://127.0.0.1:7004' } },
  };
  const entry: Entry = { index: 12, term: 2, kind: 'membership', data: new Uint8Array(0), membership };
  assert.deepEqual(decodeEntry('f', 'entry', encodeEntry(entry)).membership, membership);
  const meta = { index: 12, term: 2, membership };
  assert.deepEqual(decodeSnapshotMeta('f', encodeSnapshotMeta(meta)), meta);
  assert.deepEqual(decodeStaged('f', encodeStaged({ meta, bytes: 5 })), { meta, bytes: 5 });
  assert.throws(() => decodeSnapshotMeta('f', encodeSnapshotMeta({ ...meta, membership: { ...membership, addresses: { n4: { peer: 7, client: null } } } } as never)), StorageCorruptionError);
});

test('frames refuse a wrong key, any flipped bit, an unknown version and a short record', () => {
  const key = indexKey(5);
  const frame = encodeFrame(key, encodeEntry({ index: 5, term: 1, kind: 'normal', data: new Uint8Array([1, 2, 3]) }));
  assert.doesNotThrow(() => decodeFrame('f', 'log entry 5', key, frame));
  assert.throws(() => decodeFrame('f', 'log entry 6', indexKey(6), frame), /log entry 6 failed its checksum/);
  for (let bit = 0; bit < frame.length * 8; bit += 1) {
    if (bit < 8) continue; // the version byte has its own check below
    const bad = Buffer.from(frame);
    bad[bit >> 3] = (bad[bit >> 3] as number) ^ (1 << (bit & 7));
    assert.throws(() => decodeFrame('f', 'x', key, bad), StorageCorruptionError);
  }
  const otherVersion = Buffer.from(frame);
  otherVersion[0] = 2;
  assert.throws(() => decodeFrame('f', 'x', key, otherVersion), /unknown record format 2/);
  assert.throws(() => decodeFrame('f', 'x', key, frame.subarray(0, 4)), /truncated: 4 bytes/);
  // A valid frame around bytes that are not an entry is still refused when decoded.
  assert.throws(() => decodeEntry('f', 'log entry 5', new Uint8Array([0xc1])), /not valid msgpack|malformed/);
  assert.throws(() => decodeEntry('f', 'log entry 5', encodeHardState({ term: 1, vote: null, commit: 0 })), /malformed/);
});
