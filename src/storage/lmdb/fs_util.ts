/**
 * Small synchronous file helpers for durable writes outside LMDB: write-all, fsync of a directory,
 * and write-temp-fsync-rename-fsync-directory for whole files.
 *
 * Not responsible for: file formats or error wrapping (callers name the file in their errors).
 *
 * Why synchronous: callers need the file durable before their next step (an LMDB commit that
 * names it, or opening a store that a marker describes); a sequence of sync calls makes the order
 * on disk the order in the code.
 *
 * Invariant: writeFileDurably leaves either the old file or the complete new one under `file`,
 * never a partial one, and once it returns the new one survives a power failure (the directory is
 * fsynced too, or the rename itself could be lost).
 */
import fs from 'node:fs';
import path from 'node:path';

export function writeAll(fd: number, bytes: Uint8Array): void {
  let offset = 0;
  // writeSync may write fewer bytes than asked; loop until all are out.
  while (offset < bytes.byteLength) offset += fs.writeSync(fd, bytes, offset, bytes.byteLength - offset);
}

/** fsync a directory so that a create, rename or unlink inside it survives a power failure. */
export function fsyncDirectory(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** fsync an existing file by path (flushes every dirty page of the file, whoever wrote it). */
export function fsyncFile(file: string): void {
  const fd = fs.openSync(file, 'r+');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Writes `parts` to `<file>.tmp`, fsyncs it, renames it over `file`, fsyncs the directory. On
 * failure the temp file is removed (best effort) and the error rethrown unchanged.
 */
export function writeFileDurably(file: string, parts: readonly Uint8Array[]): void {
  const temp = `${file}.tmp`;
  try {
    const fd = fs.openSync(temp, 'w');
    try {
      for (const part of parts) writeAll(fd, part);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temp, file);
    fsyncDirectory(path.dirname(file));
  } catch (error) {
    try {
      fs.rmSync(temp, { force: true });
    } catch {
      // The original error is the one to report; a stray .tmp is removed by its owner later.
    }
    throw error;
  }
}

/**
 * writeFileDurably without blocking the event loop: the same temp-fsync-rename-fsync-directory
 * protocol, each step on libuv's thread pool. Used for snapshot files, which can be tens of MB:
 * written synchronously they held a leader's event loop past its election timeout. The caller
 * must not name `file` anywhere durable until the returned promise resolves.
 */
export async function writeFileDurablyAsync(file: string, parts: readonly Uint8Array[]): Promise<void> {
  await writeFileDurablyWith(file, async (handle) => {
    for (const part of parts) await writeAllAt(handle, part, null);
  });
}

/**
 * writeFileDurablyAsync for content produced piece by piece: `body` writes into the open temp file
 * (writeAllAt; it may also write at earlier positions, e.g. a header known only at the end), then
 * the file is synced, renamed into place and the directory synced. If `body` throws, the temp
 * file is removed and its error is thrown as it is.
 */
export async function writeFileDurablyWith(file: string, body: (handle: fs.promises.FileHandle) => Promise<void>): Promise<void> {
  const temp = `${file}.tmp`;
  try {
    const handle = await fs.promises.open(temp, 'w');
    try {
      await body(handle);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.promises.rename(temp, file);
    const dir = await fs.promises.open(path.dirname(file), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } catch (error) {
    await fs.promises.rm(temp, { force: true }).catch(() => undefined);
    throw error;
  }
}

/** Writes all of `bytes` at `position` (null: at the file's current position), looping over short writes. */
export async function writeAllAt(handle: fs.promises.FileHandle, bytes: Uint8Array, position: number | null): Promise<void> {
  let offset = 0;
  while (offset < bytes.byteLength) {
    const at = position === null ? null : position + offset;
    offset += (await handle.write(bytes, offset, bytes.byteLength - offset, at)).bytesWritten;
  }
}
