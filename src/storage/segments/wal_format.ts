/**
 * Byte format of the write-ahead log segments of SegmentLogStorage (segment_log_storage.ts):
 * segment file names, the checksummed record frame, the four record payloads, a reusable encoder
 * that puts all the records of one Ready into one buffer, and a scanner that reads them back.
 *
 * Not responsible for: what the records mean for the log (replay.ts), files and syncing
 * (segment_log_storage.ts). Entry, hard state and snapshot metadata payloads are the msgpack
 * encodings of lmdb/codec.ts, so both storages share one definition of those values.
 *
 * Segment file: `<dir>/wal/<sequence, 20 decimal digits>.wal`, a sequence of records; the first
 * record of every segment is a CHECKPOINT.
 *
 * Record (integers big-endian, like the rest of the storage formats):
 *   bytes 0..3   length: bytes after this 8-byte header, i.e. 1 (type) + payload length; never 0
 *   bytes 4..7   CRC-32 (IEEE) over type byte ‖ payload
 *   byte  8      type (low 7 bits) | 0x80 on the last record of a write ("end of write")
 *   bytes 9..    payload
 *
 * Writes are atomic on replay: the records of one write (one Ready, one snapshot commit, a
 * bootstrap) count only once its end-of-write record is read. A crash in the middle of a write
 * can leave its first records whole on disk; without the mark they would be replayed, e.g. the
 * entries of a new term without the hard state of that term, or a hard state whose commit index
 * points at entries that did not make it. LMDB's transaction never exposed half a Ready; neither
 * does this.
 *
 * Types and payloads:
 *   1 CHECKPOINT  u32 n | hard state (msgpack, n bytes) | snapshot metadata (msgpack)
 *                 The state as of the start of the segment, so replay can begin at any segment.
 *   2 ENTRY       one log entry (msgpack). Replay: appending index i drops every entry >= i first.
 *   3 HARD_STATE  hard state (msgpack).
 *   4 SNAPSHOT    u8 action | u64 cutoff | snapshot metadata (msgpack). Replay makes the metadata
 *                 current, then: action 1 (install, the log agreed at the snapshot index) drops
 *                 entries <= cutoff (= the snapshot index); action 2 (install, the log disagreed)
 *                 drops every entry; action 3 (a snapshot this node took) drops entries <= cutoff
 *                 (= index - compactionTailEntries, as configured when it was written). What
 *                 happened is recorded, not recomputed, so replay does not depend on the term
 *                 lookup or on today's configuration.
 *
 * Invariants:
 * - A record is valid only if its length is non-zero, it fits in the file and its CRC matches; the
 *   scanner stops at the first invalid record and says where and why. The caller decides whether
 *   that is a torn tail (last segment) or corruption (anywhere else).
 * - Decoding a payload never returns a value whose shape is wrong: it throws
 *   StorageCorruptionError naming the file, the record number and its byte offset.
 */
import type { Entry, HardState, SnapshotMeta } from '../../consensus/types.ts';
import { StorageCorruptionError } from '../errors.ts';
import {
  crc32, decodeEntry, decodeHardState, decodeSnapshotMeta, encodeEntry, encodeHardState, encodeSnapshotMeta, hex32,
} from '../lmdb/codec.ts';

export const RecordType = {
  checkpoint: 1,
  entry: 2,
  hardState: 3,
  snapshot: 4,
} as const;
export type RecordTypeCode = (typeof RecordType)[keyof typeof RecordType];

const recordTypeNames: Record<number, string> = { 1: 'checkpoint', 2: 'entry', 3: 'hard state', 4: 'snapshot' };

export function recordTypeName(type: number): string {
  return recordTypeNames[type & recordTypeMask] ?? `unknown type ${type & recordTypeMask}`;
}

/** Set in the type byte of the last record of a write. */
export const endOfWriteFlag = 0x80;
export const recordTypeMask = 0x7f;

export const SnapshotAction = {
  /** An installed snapshot; the entry at its index had its term: entries <= index are dropped. */
  installKeep: 1,
  /** An installed snapshot the log disagreed with: the whole log is dropped. */
  installDrop: 2,
  /** A snapshot this node took: entries <= cutoff (index - tail) are dropped. */
  compact: 3,
} as const;
export type SnapshotActionCode = (typeof SnapshotAction)[keyof typeof SnapshotAction];

/** length u32 + crc u32. The type byte follows and is counted in `length`. */
export const recordHeaderBytes = 8;

// ---------------------------------------------------------------------------------------------
// Segment files.

export const segmentFilePattern = /^(\d{20})\.wal$/;
export const segmentTempFilePattern = /^\d{20}\.wal\.tmp$/;

export function segmentFileName(sequence: number): string {
  return `${String(sequence).padStart(20, '0')}.wal`;
}

// ---------------------------------------------------------------------------------------------
// Encoding.

function writeU64(buffer: Buffer, value: number, offset: number): void {
  buffer.writeUInt32BE(Math.floor(value / 0x1_0000_0000), offset);
  buffer.writeUInt32BE(value >>> 0, offset + 4);
}

function readU64(buffer: Buffer, offset: number): number {
  return buffer.readUInt32BE(offset) * 0x1_0000_0000 + buffer.readUInt32BE(offset + 4);
}

/**
 * Accumulates records in one reusable buffer: after the first few Readies, encoding a Ready
 * allocates nothing here beyond what msgpack allocates per payload. The bytes are valid until the
 * next reset(); the storage writes them (one write) before encoding the next Ready.
 */
export class RecordEncoder {
  private buffer: Buffer;
  private used = 0;
  /** Where the record encoded last starts. */
  private recordStart = 0;
  /** Keeps an occasional huge Ready from pinning its buffer forever. */
  private readonly retainBytes: number;

  constructor(initialBytes = 64 * 1024, retainBytes = 8 * 1024 * 1024) {
    this.buffer = Buffer.allocUnsafe(initialBytes);
    this.retainBytes = retainBytes;
  }

  get length(): number {
    return this.used;
  }

  /** The records encoded since the last reset (a view, not a copy). */
  get bytes(): Buffer {
    return this.buffer.subarray(0, this.used);
  }

  /**
   * Marks the last record encoded as the end of its write (see the header); call once, after the
   * last record of a write and before writing the bytes.
   */
  seal(): void {
    if (this.used === 0) return;
    const start = this.recordStart;
    this.buffer[start + recordHeaderBytes] = (this.buffer[start + recordHeaderBytes] as number) | endOfWriteFlag;
    this.end();
  }

  reset(): void {
    this.used = 0;
    this.recordStart = 0;
    if (this.buffer.byteLength > this.retainBytes) this.buffer = Buffer.allocUnsafe(64 * 1024);
  }

  checkpoint(hardState: HardState, snapshot: SnapshotMeta): void {
    const state = encodeHardState(hardState);
    const meta = encodeSnapshotMeta(snapshot);
    const at = this.begin(RecordType.checkpoint, 4 + state.byteLength + meta.byteLength);
    this.buffer.writeUInt32BE(state.byteLength, at);
    this.buffer.set(state, at + 4);
    this.buffer.set(meta, at + 4 + state.byteLength);
    this.end();
  }

  entry(entry: Entry): void {
    this.simple(RecordType.entry, encodeEntry(entry));
  }

  hardState(state: HardState): void {
    this.simple(RecordType.hardState, encodeHardState(state));
  }

  snapshot(action: SnapshotActionCode, cutoff: number, meta: SnapshotMeta): void {
    const encoded = encodeSnapshotMeta(meta);
    const at = this.begin(RecordType.snapshot, 9 + encoded.byteLength);
    this.buffer[at] = action;
    writeU64(this.buffer, Math.max(0, cutoff), at + 1);
    this.buffer.set(encoded, at + 9);
    this.end();
  }

  private simple(type: RecordTypeCode, payload: Uint8Array): void {
    const at = this.begin(type, payload.byteLength);
    this.buffer.set(payload, at);
    this.end();
  }

  /** Reserves a record with a `payloadBytes` payload; returns where the payload goes. */
  private begin(type: RecordTypeCode, payloadBytes: number): number {
    const total = recordHeaderBytes + 1 + payloadBytes;
    if (this.used + total > this.buffer.byteLength) {
      const grown = Buffer.allocUnsafe(Math.max(this.buffer.byteLength * 2, this.used + total));
      this.buffer.copy(grown, 0, 0, this.used);
      this.buffer = grown;
    }
    this.recordStart = this.used;
    this.buffer.writeUInt32BE(1 + payloadBytes, this.used);
    this.buffer[this.used + recordHeaderBytes] = type;
    this.used += total;
    return this.recordStart + recordHeaderBytes + 1;
  }

  /** Fills in the CRC of the record begun last. */
  private end(): void {
    const start = this.recordStart;
    this.buffer.writeUInt32BE(crc32(this.buffer.subarray(start + recordHeaderBytes, this.used)), start + 4);
  }
}

// ---------------------------------------------------------------------------------------------
// Scanning.

export interface InvalidRecord {
  /** Byte offset of the first invalid record; everything from here on is unusable. */
  readonly offset: number;
  /** 1-based number of the record in its segment. */
  readonly ordinal: number;
  readonly reason: string;
}

export interface ScanResult {
  /** Offset just past the last valid record. */
  readonly validBytes: number;
  readonly records: number;
  readonly invalid: InvalidRecord | null;
}

/**
 * Calls `visit` for each valid record of `data`, in order, until the end or the first invalid
 * record. `visit` may throw (a CRC-valid record whose payload is malformed is corruption whatever
 * the segment). The payload handed to `visit` is a view into `data`; `type` is the whole type
 * byte, end-of-write flag included; `next` is the offset just past the record.
 */
export function scanRecords(
  data: Buffer,
  visit: (type: number, payload: Buffer, offset: number, ordinal: number, next: number) => void,
): ScanResult {
  let offset = 0;
  let ordinal = 0;
  const size = data.byteLength;
  while (offset < size) {
    ordinal += 1;
    const invalid = (reason: string): ScanResult => ({ validBytes: offset, records: ordinal - 1, invalid: { offset, ordinal, reason } });
    if (size - offset < recordHeaderBytes + 1) return invalid(`only ${size - offset} bytes remain, a record needs at least ${recordHeaderBytes + 1}`);
    const length = data.readUInt32BE(offset);
    if (length === 0) return invalid('zero length');
    if (length > size - offset - recordHeaderBytes) return invalid(`length ${length} runs past the end of the file (${size - offset - recordHeaderBytes} bytes remain)`);
    const body = data.subarray(offset + recordHeaderBytes, offset + recordHeaderBytes + length);
    const stored = data.readUInt32BE(offset + 4);
    const computed = crc32(body);
    if (stored !== computed) return invalid(`checksum mismatch: stored crc32 ${hex32(stored)}, computed ${hex32(computed)}`);
    visit(body[0] as number, body.subarray(1), offset, ordinal, offset + recordHeaderBytes + length);
    offset += recordHeaderBytes + length;
  }
  return { validBytes: offset, records: ordinal, invalid: null };
}

// ---------------------------------------------------------------------------------------------
// Decoding payloads.

/** Names a record in error messages: "record 7 (entry) at byte 1234". */
export function describeRecord(ordinal: number, type: number, offset: number): string {
  return `record ${ordinal} (${recordTypeName(type)}) at byte ${offset}`;
}

/** Runs a lmdb/codec.ts decoder, re-labelling its corruption error with the WAL record. */
function labelled<T>(file: string, what: string, decode: () => T): T {
  try {
    return decode();
  } catch (error) {
    if (!(error instanceof StorageCorruptionError)) throw error;
    const suffix = ` (in ${error.file})`;
    const detail = error.message.endsWith(suffix) ? error.message.slice(0, -suffix.length) : error.message;
    throw new StorageCorruptionError(file, `${what}: ${detail}`, { cause: error });
  }
}

export function decodeEntryRecord(file: string, what: string, payload: Uint8Array): Entry {
  return labelled(file, what, () => decodeEntry(file, 'log entry', payload));
}

export function decodeHardStateRecord(file: string, what: string, payload: Uint8Array): HardState {
  return labelled(file, what, () => decodeHardState(file, payload));
}

export interface Checkpoint {
  readonly hardState: HardState;
  readonly snapshot: SnapshotMeta;
}

export function decodeCheckpointRecord(file: string, what: string, payload: Buffer): Checkpoint {
  if (payload.byteLength < 4) throw new StorageCorruptionError(file, `${what} is malformed: ${payload.byteLength} bytes`);
  const split = payload.readUInt32BE(0);
  if (split > payload.byteLength - 4) throw new StorageCorruptionError(file, `${what} is malformed: hard state of ${split} bytes in a ${payload.byteLength}-byte payload`);
  const hardState = labelled(file, what, () => decodeHardState(file, payload.subarray(4, 4 + split)));
  const snapshot = labelled(file, what, () => decodeSnapshotMeta(file, payload.subarray(4 + split)));
  return { hardState, snapshot };
}

export interface SnapshotRecord {
  readonly action: SnapshotActionCode;
  readonly cutoff: number;
  readonly meta: SnapshotMeta;
}

export function decodeSnapshotRecord(file: string, what: string, payload: Buffer): SnapshotRecord {
  if (payload.byteLength < 9) throw new StorageCorruptionError(file, `${what} is malformed: ${payload.byteLength} bytes`);
  const action = payload[0];
  if (action !== SnapshotAction.installKeep && action !== SnapshotAction.installDrop && action !== SnapshotAction.compact) {
    throw new StorageCorruptionError(file, `${what} is malformed: unknown action ${String(action)}`);
  }
  const cutoff = readU64(payload, 1);
  if (!Number.isSafeInteger(cutoff)) throw new StorageCorruptionError(file, `${what} is malformed: cutoff beyond 2^53`);
  const meta = labelled(file, what, () => decodeSnapshotMeta(file, payload.subarray(9)));
  return { action, cutoff, meta };
}
