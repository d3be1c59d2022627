/**
 * The staging file of a snapshot being received in chunks (Ready.snapshotChunks):
 * `<dir>/staging-<index>-<term>.bin`, named after the snapshot whose first chunk started it, a
 * sequence of checksummed frames appended as chunks arrive, so a large snapshot is never held in
 * memory while it trickles in. At install the frames are read back into the snapshot's bytes.
 *
 * Not responsible for: writing or syncing (segment_log_storage.ts does both, in the persist of
 * the Ready that carries the chunks), the snapshot file itself (lmdb/snapshot_file.ts).
 *
 * Frame (integers big-endian):
 *   bytes 0..7    offset of the chunk in the snapshot (u64)
 *   bytes 8..11   data length (u32)
 *   bytes 12..15  CRC-32 over bytes 0..11 ‖ data
 *   bytes 16..    data
 * Frames are contiguous: each starts where the previous ended (a chunk that does not continue
 * the staged bytes is never written — SimDisk ignores it too).
 *
 * Staging rules (SimDisk.applyReady, chunk by chunk): a chunk at offset 0, or of a snapshot with
 * another index than the staged one, restarts staging for its snapshot; then a chunk is staged
 * only if its offset equals the bytes staged so far.
 *
 * Invariant: what is staged is never needed for safety — a restarted node's consensus core asks
 * the leader for the snapshot from offset 0 again — so a damaged tail found at open is cut off
 * (like a torn WAL tail) rather than reported; a damaged frame found at install, when it would
 * become the snapshot, is StorageCorruptionError naming the file and chunk.
 */
import fs from 'node:fs';
import type { LogIndex, SnapshotChunk, SnapshotMeta, Term } from '../../consensus/types.ts';
import { StorageCorruptionError } from '../errors.ts';
import { crc32, hex32 } from '../lmdb/codec.ts';

export const stagingFilePattern = /^staging-(\d+)-(\d+)\.bin$/;
const frameHeaderBytes = 16;

export function stagingFileName(index: LogIndex, term: Term): string {
  return `staging-${index}-${term}.bin`;
}

/** A snapshot being staged: which one, how many bytes, and how long its file is. */
export interface Staged {
  readonly index: LogIndex;
  readonly term: Term;
  /** Snapshot bytes staged so far. */
  readonly bytes: number;
  readonly file: string;
  /** Length of the staging file (frames included). */
  readonly fileBytes: number;
}

export interface StagingPlan {
  /** Set when staging (re)starts in this Ready: the snapshot whose file replaces the current one. */
  readonly restart: SnapshotMeta | null;
  /** The chunks to append (after the restart, if any), in order, each continuing the last. */
  readonly chunks: readonly SnapshotChunk[];
  /** Snapshot bytes staged once the chunks are appended. */
  readonly bytes: number;
}

/** Applies SimDisk's staging rules to `chunks` on top of `current`; touches nothing. */
export function planStaging(current: Pick<Staged, 'index' | 'bytes'> | null, chunks: readonly SnapshotChunk[]): StagingPlan {
  let restart: SnapshotMeta | null = null;
  let index = current?.index ?? null;
  let bytes = current?.bytes ?? 0;
  let appended: SnapshotChunk[] = [];
  for (const chunk of chunks) {
    if (chunk.offset === 0 || index !== chunk.snapshot.index) {
      restart = chunk.snapshot;
      index = chunk.snapshot.index;
      bytes = 0;
      appended = [];
    }
    if (bytes !== chunk.offset) continue;
    appended.push(chunk);
    bytes += chunk.data.byteLength;
  }
  return { restart, chunks: appended, bytes };
}

function frameHeader(offset: number, length: number): Buffer {
  const header = Buffer.allocUnsafe(frameHeaderBytes);
  header.writeUInt32BE(Math.floor(offset / 0x1_0000_0000), 0);
  header.writeUInt32BE(offset >>> 0, 4);
  header.writeUInt32BE(length, 8);
  return header;
}

/** The frames of `chunks` as one buffer (chunks of no bytes are left out: they change nothing). */
export function encodeStagingFrames(chunks: readonly SnapshotChunk[]): Buffer {
  const parts: Buffer[] = [];
  for (const chunk of chunks) {
    if (chunk.data.byteLength === 0) continue;
    const header = frameHeader(chunk.offset, chunk.data.byteLength);
    header.writeUInt32BE(crc32(chunk.data, crc32(header.subarray(0, 12))), 12);
    parts.push(header, Buffer.from(chunk.data.buffer, chunk.data.byteOffset, chunk.data.byteLength));
  }
  return Buffer.concat(parts);
}

/** Why the frame at `at` in `data` is not the valid continuation of `staged` bytes, or null. */
function frameProblem(data: Buffer, at: number, staged: number): string | null {
  if (data.byteLength - at < frameHeaderBytes) return `only ${data.byteLength - at} bytes remain, a chunk frame needs ${frameHeaderBytes}`;
  const offset = data.readUInt32BE(at) * 0x1_0000_0000 + data.readUInt32BE(at + 4);
  const length = data.readUInt32BE(at + 8);
  if (length === 0) return 'zero length';
  if (length > data.byteLength - at - frameHeaderBytes) return `length ${length} runs past the end of the file`;
  const stored = data.readUInt32BE(at + 12);
  const computed = crc32(data.subarray(at + frameHeaderBytes, at + frameHeaderBytes + length), crc32(data.subarray(at, at + 12)));
  if (stored !== computed) return `failed its checksum: stored crc32 ${hex32(stored)}, computed ${hex32(computed)}`;
  if (offset !== staged) return `starts at offset ${offset}, not at the ${staged} bytes staged before it`;
  return null;
}

export interface StagingScan {
  /** Snapshot bytes in the valid frames. */
  readonly bytes: number;
  /** File bytes those frames occupy; anything after is a damaged or torn tail. */
  readonly validBytes: number;
  readonly fileBytes: number;
  readonly problem: string | null;
}

/**
 * Reads a staging file frame by frame (one frame in memory at a time) and returns how much of it
 * is valid. Synchronous: used once, at open.
 */
export function scanStagingFile(file: string): StagingScan {
  const fd = fs.openSync(file, 'r');
  try {
    const fileBytes = fs.fstatSync(fd).size;
    let position = 0;
    let bytes = 0;
    let frame = Buffer.allocUnsafe(64 * 1024);
    while (position < fileBytes) {
      const header = Buffer.alloc(frameHeaderBytes);
      const got = fs.readSync(fd, header, 0, frameHeaderBytes, position);
      if (got < frameHeaderBytes) return { bytes, validBytes: position, fileBytes, problem: `chunk frame at byte ${position}: only ${got} bytes remain` };
      const length = header.readUInt32BE(8);
      const available = Math.min(length, fileBytes - position - frameHeaderBytes);
      if (frame.byteLength < frameHeaderBytes + available) frame = Buffer.allocUnsafe(frameHeaderBytes + available);
      header.copy(frame, 0);
      const read = available > 0 ? fs.readSync(fd, frame, frameHeaderBytes, available, position + frameHeaderBytes) : 0;
      const problem = frameProblem(frame.subarray(0, frameHeaderBytes + read), 0, bytes);
      if (problem !== null) return { bytes, validBytes: position, fileBytes, problem: `chunk frame at byte ${position}: ${problem}` };
      bytes += length;
      position += frameHeaderBytes + length;
    }
    return { bytes, validBytes: position, fileBytes, problem: null };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The staged snapshot's bytes, read back from its file (the first `staged.fileBytes` bytes) off
 * the event loop and fully checked: every frame valid and continuing the one before, and exactly
 * `staged.bytes` in all.
 */
export async function readStagedBytes(staged: Staged): Promise<Uint8Array> {
  const data = (await fs.promises.readFile(staged.file)).subarray(0, staged.fileBytes);
  if (data.byteLength < staged.fileBytes) {
    throw new StorageCorruptionError(staged.file, `staging file is truncated: ${data.byteLength} bytes, ${staged.fileBytes} were written`);
  }
  const bytes = new Uint8Array(staged.bytes);
  let position = 0;
  let offset = 0;
  while (position < data.byteLength) {
    const problem = frameProblem(data, position, offset);
    const at = data.byteLength - position >= 8 ? data.readUInt32BE(position) * 0x1_0000_0000 + data.readUInt32BE(position + 4) : offset;
    if (problem !== null) throw new StorageCorruptionError(staged.file, `staged chunk at offset ${at} of snapshot ${staged.index} ${problem}`);
    const length = data.readUInt32BE(position + 8);
    if (offset + length > staged.bytes) {
      throw new StorageCorruptionError(staged.file, `staged chunk at offset ${at} of snapshot ${staged.index} goes past the ${staged.bytes} bytes staged`);
    }
    bytes.set(data.subarray(position + frameHeaderBytes, position + frameHeaderBytes + length), offset);
    offset += length;
    position += frameHeaderBytes + length;
  }
  if (offset !== staged.bytes) {
    throw new StorageCorruptionError(staged.file, `snapshot ${staged.index} has ${offset} staged bytes, ${staged.bytes} were staged`);
  }
  return bytes;
}
