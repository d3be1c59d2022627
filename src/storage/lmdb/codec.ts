/**
 * Byte formats of the Raft log environment: checksummed record frames, big-endian index keys, and
 * the msgpackr encodings of entries, hard state, snapshot metadata and the staged-snapshot record.
 *
 * Not responsible for: where records live (log_storage.ts) or the snapshot file format
 * (snapshot_file.ts). LMDB itself keeps no checksums of values, so this layer adds them.
 *
 * Frame layout (every value in the log environment):
 *   byte 0      format version (1)
 *   bytes 1..4  CRC-32 (big-endian) over key ‖ version byte ‖ payload
 *   bytes 5..   payload (msgpack, or raw bytes for snapshot chunks)
 * Covering the key means a record copied under the wrong key (e.g. entry 7's value at index 8) is
 * detected too, not only flipped bits.
 *
 * Invariants:
 * - decode* never returns data whose checksum or shape is wrong: it throws StorageCorruptionError
 *   naming the file and the record.
 * - Encodings are plain msgpack maps/arrays (records extension off), so they are readable by any
 *   msgpack decoder and do not depend on structures stored elsewhere in the database.
 */
import zlib from 'node:zlib';
import { Packr } from 'msgpackr';
import type { Entry, EntryKind, HardState, LogIndex, MemberAddresses, Membership, NodeId, SnapshotMeta } from '../../consensus/types.ts';
import { StorageCorruptionError } from '../errors.ts';

// ---------------------------------------------------------------------------------------------
// CRC-32 (IEEE, the same polynomial as zlib/gzip/PNG).

const crcTable = ((): Uint32Array => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n += 1) {
    let c = n;
    for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** Portable CRC-32, used where zlib.crc32 is missing (Node < 20.15); exported for a cross-check test. */
export function crc32Portable(data: Uint8Array, value = 0): number {
  let crc = (value ^ 0xffffffff) >>> 0;
  for (let i = 0; i < data.length; i += 1) crc = (crcTable[(crc ^ (data[i] as number)) & 0xff] as number) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

// zlib.crc32 was added in Node 20.15 / 22.2; package.json promises Node >= 20, so keep a fallback.
const nativeCrc32 = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

/** CRC-32 of `data`, continuing from `value` (the CRC of the bytes before it). */
export function crc32(data: Uint8Array, value = 0): number {
  // Node 20.20's zlib.crc32 returns 0, not `value`, for an empty view of a zero-length
  // ArrayBuffer (e.g. new Uint8Array(0).subarray(0, 0)); the CRC of no bytes is `value`.
  if (data.byteLength === 0) return value >>> 0;
  return nativeCrc32 !== undefined ? nativeCrc32(data, value) : crc32Portable(data, value);
}

export const crc32IsNative = nativeCrc32 !== undefined;

/**
 * CRC-32 of A ‖ B from crc32(A), crc32(B) and B's length (zlib's crc32_combine): lets a file whose
 * header is written last (it holds the body's length) be checksummed header first, as readers do.
 */
export function crc32Combine(crcA: number, crcB: number, lengthB: number): number {
  assertLength(lengthB);
  if (lengthB === 0) return crcA >>> 0;
  const even = new Uint32Array(32); // the operator for 2^k zero bits, squared as we go
  const odd = new Uint32Array(32);
  odd[0] = 0xedb88320; // the CRC-32 polynomial: the operator for one zero bit
  for (let n = 1, row = 1; n < 32; n += 1, row = (row << 1) >>> 0) odd[n] = row;
  gf2MatrixSquare(even, odd); // two zero bits
  gf2MatrixSquare(odd, even); // four zero bits
  let crc = crcA >>> 0;
  let remaining = lengthB;
  for (;;) {
    gf2MatrixSquare(even, odd);
    if (remaining % 2 === 1) crc = gf2MatrixTimes(even, crc);
    remaining = Math.floor(remaining / 2);
    if (remaining === 0) break;
    gf2MatrixSquare(odd, even);
    if (remaining % 2 === 1) crc = gf2MatrixTimes(odd, crc);
    remaining = Math.floor(remaining / 2);
    if (remaining === 0) break;
  }
  return (crc ^ crcB) >>> 0;
}

function assertLength(length: number): void {
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`crc32Combine: bad length ${length}`);
}

function gf2MatrixTimes(matrix: Uint32Array, vector: number): number {
  let sum = 0;
  for (let i = 0, v = vector >>> 0; v !== 0; i += 1, v >>>= 1) if ((v & 1) !== 0) sum ^= matrix[i] as number;
  return sum >>> 0;
}

function gf2MatrixSquare(square: Uint32Array, matrix: Uint32Array): void {
  for (let n = 0; n < 32; n += 1) square[n] = gf2MatrixTimes(matrix, matrix[n] as number);
}

// ---------------------------------------------------------------------------------------------
// Frames.

const frameVersion = 1;
const frameHeaderBytes = 5;
const versionByte = new Uint8Array([frameVersion]);

export function encodeFrame(key: Uint8Array, payload: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(frameHeaderBytes + payload.byteLength);
  frame[0] = frameVersion;
  frame.writeUInt32BE(crc32(payload, crc32(versionByte, crc32(key))), 1);
  frame.set(payload, frameHeaderBytes);
  return frame;
}

/**
 * Checks a frame read under `key` and returns its payload (a view into `frame`).
 * `what` names the record in the error message, e.g. "log entry 42".
 */
export function decodeFrame(file: string, what: string, key: Uint8Array, frame: Uint8Array): Uint8Array {
  if (frame.byteLength < frameHeaderBytes) {
    throw new StorageCorruptionError(file, `${what} is truncated: ${frame.byteLength} bytes, a record needs at least ${frameHeaderBytes}`);
  }
  if (frame[0] !== frameVersion) {
    throw new StorageCorruptionError(file, `${what} has unknown record format ${frame[0]} (expected ${frameVersion})`);
  }
  const stored = ((frame[1] as number) << 24 | (frame[2] as number) << 16 | (frame[3] as number) << 8 | (frame[4] as number)) >>> 0;
  const payload = frame.subarray(frameHeaderBytes);
  const computed = crc32(payload, crc32(versionByte, crc32(key)));
  if (stored !== computed) {
    throw new StorageCorruptionError(file, `${what} failed its checksum: stored crc32 ${hex32(stored)}, computed ${hex32(computed)}`);
  }
  return payload;
}

export function hex32(value: number): string {
  return value.toString(16).padStart(8, '0');
}

// ---------------------------------------------------------------------------------------------
// Keys.

/** 8-byte big-endian key, so LMDB's byte order equals numeric order. */
export function indexKey(index: LogIndex): Buffer {
  if (!Number.isSafeInteger(index) || index < 0) throw new RangeError(`log index must be a non-negative safe integer, got ${index}`);
  const key = Buffer.allocUnsafe(8);
  key.writeUInt32BE(Math.floor(index / 0x1_0000_0000), 0);
  key.writeUInt32BE(index >>> 0, 4);
  return key;
}

export function readIndexKey(file: string, key: Uint8Array): LogIndex {
  if (key.byteLength !== 8) throw new StorageCorruptionError(file, `log key of ${key.byteLength} bytes (expected 8)`);
  const view = Buffer.from(key.buffer, key.byteOffset, key.byteLength);
  const value = view.readUInt32BE(0) * 0x1_0000_0000 + view.readUInt32BE(4);
  if (!Number.isSafeInteger(value)) throw new StorageCorruptionError(file, `log key ${view.toString('hex')} is beyond 2^53`);
  return value;
}

export function stringKey(name: string): Buffer {
  return Buffer.from(name, 'utf8');
}

// ---------------------------------------------------------------------------------------------
// Payloads. Arrays, not maps: smaller, and the field order is the format.

// useRecords: false → standard msgpack maps/arrays, no shared structures to lose or corrupt.
const packr = new Packr({ useRecords: false, moreTypes: false });

const entryKinds: readonly EntryKind[] = ['normal', 'noop', 'membership'];

function bad(file: string, what: string, problem: string): StorageCorruptionError {
  return new StorageCorruptionError(file, `${what} is malformed: ${problem}`);
}

function unpack(file: string, what: string, payload: Uint8Array): unknown {
  try {
    return packr.unpack(payload);
  } catch (error) {
    throw new StorageCorruptionError(file, `${what} is not valid msgpack: ${String(error)}`, { cause: error });
  }
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}

/** A plain Uint8Array copy: msgpackr returns Buffers that may share memory with the read buffer. */
function ownBytes(value: Uint8Array): Uint8Array {
  return new Uint8Array(value);
}

export function encodeEntry(entry: Entry): Uint8Array {
  const kind = entryKinds.indexOf(entry.kind);
  if (kind < 0) throw new TypeError(`unknown entry kind ${String(entry.kind)}`);
  const fields: unknown[] = [entry.index, entry.term, kind, entry.data];
  if (entry.membership !== undefined) fields.push(...membershipFields(entry.membership));
  return packr.pack(fields);
}

export function decodeEntry(file: string, what: string, payload: Uint8Array): Entry {
  const value = unpack(file, what, payload);
  if (!Array.isArray(value) || (value.length !== 4 && value.length !== 6 && value.length !== 7)) throw bad(file, what, 'not a 4-, 6- or 7-field array');
  const [index, term, kindCode, data] = value as unknown[];
  if (!isCount(index) || !isCount(term)) throw bad(file, what, 'index or term is not a non-negative integer');
  const kind = typeof kindCode === 'number' ? entryKinds[kindCode] : undefined;
  if (kind === undefined) throw bad(file, what, `unknown kind code ${String(kindCode)}`);
  if (!(data instanceof Uint8Array)) throw bad(file, what, 'data is not bytes');
  if (value.length === 4) return { index, term, kind, data: ownBytes(data) };
  return { index, term, kind, data: ownBytes(data), membership: membershipFrom(file, what, value.slice(4)) };
}

export function encodeHardState(state: HardState): Uint8Array {
  return packr.pack([state.term, state.vote, state.commit]);
}

export function decodeHardState(file: string, payload: Uint8Array): HardState {
  const what = 'hard state';
  const value = unpack(file, what, payload);
  if (!Array.isArray(value) || value.length !== 3) throw bad(file, what, 'not a 3-field array');
  const [term, vote, commit] = value as unknown[];
  if (!isCount(term) || !isCount(commit)) throw bad(file, what, 'term or commit is not a non-negative integer');
  if (vote !== null && typeof vote !== 'string') throw bad(file, what, 'vote is neither null nor a node id');
  return { term, vote, commit };
}

/**
 * A membership as fields: voters, learners, and (only when the membership names them) the
 * members' addresses as [id, peer, client] triples, so records without addresses keep the shape
 * they had before addresses were stored.
 */
function membershipFields(membership: Membership): unknown[] {
  const fields: unknown[] = [[...membership.voters], [...membership.learners]];
  if (membership.addresses !== undefined) {
    fields.push(Object.entries(membership.addresses).map(([id, address]) => [id, address.peer, address.client]));
  }
  return fields;
}

function membershipFrom(file: string, what: string, fields: readonly unknown[]): Membership {
  const [voters, learners, addresses] = fields;
  if (!isStringArray(voters) || !isStringArray(learners)) throw bad(file, what, 'membership is not two string arrays');
  if (fields.length === 2) return { voters, learners };
  if (!Array.isArray(addresses) || !addresses.every((item) => isStringArray(item) && item.length === 3)) {
    throw bad(file, what, 'member addresses are not [id, peer, client] triples');
  }
  const byId: Record<NodeId, MemberAddresses> = {};
  for (const [id, peer, client] of addresses as [string, string, string][]) byId[id] = { peer, client };
  return { voters, learners, addresses: byId };
}

export function encodeSnapshotMeta(meta: SnapshotMeta): Uint8Array {
  return packr.pack([meta.index, meta.term, ...membershipFields(meta.membership)]);
}

function snapshotMetaFrom(file: string, what: string, fields: readonly unknown[]): SnapshotMeta {
  const [index, term] = fields;
  if (!isCount(index) || !isCount(term)) throw bad(file, what, 'index or term is not a non-negative integer');
  return { index, term, membership: membershipFrom(file, what, fields.slice(2)) };
}

export function decodeSnapshotMeta(file: string, payload: Uint8Array): SnapshotMeta {
  const what = 'snapshot metadata';
  const value = unpack(file, what, payload);
  if (!Array.isArray(value) || (value.length !== 4 && value.length !== 5)) throw bad(file, what, 'not a 4- or 5-field array');
  return snapshotMetaFrom(file, what, value);
}

/** The snapshot being received in chunks: which one, and how many bytes are staged so far. */
export interface StagedSnapshot {
  readonly meta: SnapshotMeta;
  readonly bytes: number;
}

export function encodeStaged(staged: StagedSnapshot): Uint8Array {
  // [index, term, voters, learners, bytes] as before addresses were stored; addresses, if any, last.
  const meta = staged.meta;
  const [voters, learners, addresses] = membershipFields(meta.membership);
  return packr.pack(addresses === undefined ? [meta.index, meta.term, voters, learners, staged.bytes] : [meta.index, meta.term, voters, learners, staged.bytes, addresses]);
}

export function decodeStaged(file: string, payload: Uint8Array): StagedSnapshot {
  const what = 'staged snapshot record';
  const value = unpack(file, what, payload);
  if (!Array.isArray(value) || (value.length !== 5 && value.length !== 6)) throw bad(file, what, 'not a 5- or 6-field array');
  const bytes: unknown = value[4];
  if (!isCount(bytes)) throw bad(file, what, 'byte count is not a non-negative integer');
  return { meta: snapshotMetaFrom(file, what, [...value.slice(0, 4), ...value.slice(5)]), bytes };
}
