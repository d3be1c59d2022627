/**
 * Snapshot files: the bytes of one state-machine snapshot in `snapshot-<index>.bin`, framed by a
 * header and a checksummed trailer, written atomically and durably.
 *
 * Not responsible for: deciding which snapshot is current (the LMDB record in log_storage.ts is
 * the single source of truth; a file it does not name is garbage), or the snapshot's content.
 *
 * File layout (all integers big-endian):
 *   header  (32 bytes): magic "USNAP001" | index u64 | term u64 | body length u64
 *   body    (length bytes)
 *   trailer (12 bytes): CRC-32 over header ‖ body | magic "USNAPEND"
 * A short file is reported as truncated (the header's length says how long it must be); any flipped
 * bit fails the CRC; a file whose header names another index/term than the record is reported as
 * the wrong file. Nothing is ever returned from a file that fails these checks.
 *
 * Why synchronous node:fs calls: the write must be durable, and named by its final name, before the
 * LMDB transaction that points at it commits. The LMDB transaction callback runs synchronously
 * (lmdb-js executes it on the main thread inside the write transaction; an async callback would
 * hold the transaction open while other writes could join it), and ReplicaStorage.saveSnapshot is
 * a synchronous port, so the whole sequence is a plain sequence of sync calls whose order is
 * exactly the order on disk. That holds for bootstrap and installs. A node's own snapshots use
 * writeSnapshotFileAsync instead: the file is written before anything names it, so its steps need
 * no ordering against LMDB, and a large one written synchronously stalled a leader past its
 * election timeout.
 *
 * Durable write protocol (fs_util.ts writeFileDurably): write `<name>.tmp`, fsync it, rename over
 * `<name>`, fsync the directory (without the directory fsync the rename itself may be lost in a
 * power failure, leaving the LMDB record pointing at a file that is not there).
 */
import fs from 'node:fs';
import path from 'node:path';
import { StorageCorruptionError, StorageIoError } from '../errors.ts';
import { assert } from '../../shared/assert.ts';
import { crc32, crc32Combine, hex32 } from './codec.ts';
import { writeAllAt, writeFileDurably, writeFileDurablyAsync, writeFileDurablyWith } from './fs_util.ts';

const headerMagic = Buffer.from('USNAP001', 'ascii');
const trailerMagic = Buffer.from('USNAPEND', 'ascii');
const headerBytes = 32;
const trailerBytes = 12;

export const snapshotFilePattern = /^snapshot-(\d+)\.bin(\.tmp)?$/;

export function snapshotFileName(index: number): string {
  return `snapshot-${index}.bin`;
}

function writeU64(buffer: Buffer, value: number, offset: number): void {
  buffer.writeUInt32BE(Math.floor(value / 0x1_0000_0000), offset);
  buffer.writeUInt32BE(value >>> 0, offset + 4);
}

function readU64(buffer: Uint8Array, offset: number): number {
  const view = Buffer.from(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  return view.readUInt32BE(offset) * 0x1_0000_0000 + view.readUInt32BE(offset + 4);
}

/**
 * Durably writes `bytes` as the snapshot at (index, term) in `dir`; returns the file path. Throws
 * StorageIoError (with the errno code, e.g. ENOSPC) if any step fails; a leftover `.tmp` file is
 * removed on failure and ignored by readers in any case.
 */
export function writeSnapshotFile(dir: string, index: number, term: number, bytes: Uint8Array): string {
  const file = path.join(dir, snapshotFileName(index));
  try {
    writeFileDurably(file, framed(index, term, bytes));
  } catch (error) {
    throw new StorageIoError(`writing snapshot file ${file} failed`, error);
  }
  return file;
}

/**
 * writeSnapshotFile off the event loop (same file, same durability once it resolves). Used for
 * the snapshots a node takes of its own state, which can be large; the small synchronous version
 * stays for bootstrap and for installs, which happen inside an LMDB transaction callback.
 */
export async function writeSnapshotFileAsync(dir: string, index: number, term: number, bytes: Uint8Array): Promise<string> {
  const file = path.join(dir, snapshotFileName(index));
  try {
    await writeFileDurablyAsync(file, framed(index, term, bytes));
  } catch (error) {
    throw new StorageIoError(`writing snapshot file ${file} failed`, error);
  }
  return file;
}

/**
 * writeSnapshotFileAsync for a body produced piece by piece (a node's own snapshot, streamed from
 * its store so that no copy of the whole state is ever in memory). `produce` is called at once,
 * synchronously, before anything is awaited, so a producer that fixes its state when called (an
 * LMDB read transaction) describes the state at this call, not at some later moment when the file
 * happens to be open; its `write` calls wait for the file. It calls `write` for each piece in
 * order and may not call it after it settles. The header, which holds the body's length, is
 * written last, and the checksum is still over header ‖ body (crc32Combine). Resolves to the
 * body's length once the file is durable under its final name. An error thrown by `produce` is
 * rethrown as it is (and no file is left); a file system error is a StorageIoError.
 */
export async function writeSnapshotFileFrom(
  dir: string, index: number, term: number,
  produce: (write: (piece: Uint8Array) => Promise<void>) => Promise<void>,
): Promise<number> {
  const file = path.join(dir, snapshotFileName(index));
  let bodyBytes = 0;
  let bodyCrc = 0;
  let settled = false;
  let ioFailure: unknown = null;
  let openFile!: (handle: fs.promises.FileHandle) => void;
  let failOpen!: (error: unknown) => void;
  const opened = new Promise<fs.promises.FileHandle>((resolve, reject) => {
    openFile = resolve;
    failOpen = reject;
  });
  opened.catch(() => undefined); // awaited by write(); a failed open must not be an unhandled rejection
  const produced = produce(async (piece) => {
    assert(!settled, 'a snapshot piece written after its producer settled');
    const handle = await opened;
    const at = headerBytes + bodyBytes;
    bodyCrc = crc32(piece, bodyCrc);
    bodyBytes += piece.byteLength;
    try {
      await writeAllAt(handle, piece, at);
    } catch (error) {
      ioFailure = error;
      throw error;
    }
  });
  // Noted as soon as it fails (it may fail before the file is open: this also keeps that from
  // being an unhandled rejection), to tell its own errors from the file system's below.
  let producerFailure: { readonly error: unknown } | null = null;
  produced.catch((error: unknown) => {
    producerFailure = { error };
  });
  try {
    await writeFileDurablyWith(file, async (handle) => {
      await writeAllAt(handle, Buffer.alloc(headerBytes), 0); // rewritten once the length is known
      openFile(handle);
      await produced;
      settled = true;
      const header = headerFor(index, term, bodyBytes);
      await writeAllAt(handle, header, 0);
      await writeAllAt(handle, trailerFor(crc32Combine(crc32(header), bodyCrc, bodyBytes)), headerBytes + bodyBytes);
    });
  } catch (error) {
    const failure = producerFailure as { readonly error: unknown } | null;
    const fromProducer = failure !== null && failure.error === error && error !== ioFailure;
    failOpen(error);
    // The producer stops at its next write (or has already failed): wait for it, so that it holds
    // nothing (an LMDB read transaction) once this call has settled.
    await produced.catch(() => undefined);
    if (fromProducer) throw error;
    throw new StorageIoError(`writing snapshot file ${file} failed`, error);
  }
  return bodyBytes;
}

function headerFor(index: number, term: number, bodyBytes: number): Buffer {
  const header = Buffer.alloc(headerBytes);
  headerMagic.copy(header, 0);
  writeU64(header, index, 8);
  writeU64(header, term, 16);
  writeU64(header, bodyBytes, 24);
  return header;
}

function trailerFor(crc: number): Buffer {
  const trailer = Buffer.alloc(trailerBytes);
  trailer.writeUInt32BE(crc, 0);
  trailerMagic.copy(trailer, 4);
  return trailer;
}

function framed(index: number, term: number, bytes: Uint8Array): Uint8Array[] {
  const header = headerFor(index, term, bytes.byteLength);
  return [header, bytes, trailerFor(crc32(bytes, crc32(header)))];
}

/**
 * Reads and fully verifies the snapshot file for (index, term) in `dir`. A missing file is also
 * corruption here: the caller only asks for the file its durable record names.
 */
export function readSnapshotFile(dir: string, index: number, term: number): Uint8Array {
  const file = path.join(dir, snapshotFileName(index));
  const length = verifySnapshotFile(dir, index, term);
  return readSnapshotBody(dir, index, 0, length, file);
}

/**
 * Verifies the snapshot file for (index, term) like readSnapshotFile and returns the length of its
 * body, reading it in slices of `sliceBytes`: memory stays bounded however large the snapshot.
 */
export function verifySnapshotFile(dir: string, index: number, term: number, sliceBytes = 1 << 20): number {
  const file = path.join(dir, snapshotFileName(index));
  const fd = openForReading(file, index);
  try {
    const size = fs.fstatSync(fd).size;
    if (size < headerBytes) {
      throw new StorageCorruptionError(file, `snapshot file is truncated: ${size} bytes, shorter than its ${headerBytes}-byte header`);
    }
    const header = Buffer.alloc(headerBytes);
    readFully(fd, header, 0, file);
    if (!header.subarray(0, 8).equals(headerMagic)) {
      throw new StorageCorruptionError(file, 'snapshot file has a bad header magic');
    }
    const length = readU64(header, 24);
    const expected = headerBytes + length + trailerBytes;
    if (size < expected) {
      throw new StorageCorruptionError(file, `snapshot file is truncated: ${size} bytes, its header promises ${expected}`);
    }
    if (size > expected) {
      throw new StorageCorruptionError(file, `snapshot file has ${size - expected} unexpected bytes after its trailer`);
    }
    let computed = crc32(header);
    const slice = Buffer.allocUnsafe(Math.max(1, Math.min(sliceBytes, length)));
    for (let done = 0; done < length;) {
      const view = slice.subarray(0, Math.min(slice.length, length - done));
      readFully(fd, view, headerBytes + done, file);
      computed = crc32(view, computed);
      done += view.length;
    }
    const trailer = Buffer.alloc(trailerBytes);
    readFully(fd, trailer, headerBytes + length, file);
    if (!trailer.subarray(4).equals(trailerMagic)) {
      throw new StorageCorruptionError(file, 'snapshot file has a bad trailer magic');
    }
    const stored = trailer.readUInt32BE(0);
    if (stored !== computed) {
      throw new StorageCorruptionError(file, `snapshot file failed its checksum: stored crc32 ${hex32(stored)}, computed ${hex32(computed)}`);
    }
    const fileIndex = readU64(header, 8);
    const fileTerm = readU64(header, 16);
    if (fileIndex !== index || fileTerm !== term) {
      throw new StorageCorruptionError(file, `snapshot file holds index ${fileIndex} term ${fileTerm}, the log records index ${index} term ${term}`);
    }
    return length;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * `length` bytes of the body of snapshot file `index`, from `offset` (a copy that owns its memory).
 * The caller has verified the file (verifySnapshotFile) and keeps offset + length within its body.
 */
export function readSnapshotBody(dir: string, index: number, offset: number, length: number, file = path.join(dir, snapshotFileName(index))): Uint8Array {
  const fd = openForReading(file, index);
  try {
    const body = new Uint8Array(length);
    readFully(fd, body, headerBytes + offset, file);
    return body;
  } finally {
    fs.closeSync(fd);
  }
}

/** Opens a snapshot file the log names: missing is corruption, any other failure an I/O error. */
function openForReading(file: string, index: number): number {
  try {
    return fs.openSync(file, 'r');
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') {
      throw new StorageCorruptionError(file, `snapshot file for index ${index} is missing`, { cause: error });
    }
    throw new StorageIoError(`reading snapshot file ${file} failed`, error);
  }
}

function readFully(fd: number, into: Uint8Array, position: number, file: string): void {
  for (let done = 0; done < into.byteLength;) {
    let read: number;
    try {
      read = fs.readSync(fd, into, done, into.byteLength - done, position + done);
    } catch (error) {
      throw new StorageIoError(`reading snapshot file ${file} failed`, error);
    }
    if (read === 0) throw new StorageCorruptionError(file, `snapshot file ended early at byte ${position + done}`);
    done += read;
  }
}
