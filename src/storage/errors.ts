/**
 * The two ways durable storage can fail, as distinct error classes so a caller can tell them apart.
 *
 * - StorageCorruptionError: bytes that were once written correctly no longer read back as written
 *   (checksum mismatch, truncated file, a record under the wrong key, a hole in the log). The data
 *   is never served; the node must stop and be repaired or rebuilt from its peers.
 * - StorageIoError: the disk refused an operation (ENOSPC, EIO, a failed LMDB commit). The write
 *   did not happen (LMDB aborts the whole transaction) and the node must stop: continuing would
 *   acknowledge state that is not durable.
 *
 * Not responsible for deciding what to do about either: callers stop the node.
 *
 * Invariant: every message names the file (and, for a log record, the index) involved, so an
 * operator can find the damage without a debugger.
 */
import os from 'node:os';

export class StorageCorruptionError extends Error {
  override readonly name = 'StorageCorruptionError';
  /** The file (LMDB data file or snapshot file) that holds the bad bytes. */
  readonly file: string;

  constructor(file: string, message: string, options?: { cause?: unknown }) {
    super(`${message} (in ${file})`, options);
    this.file = file;
  }
}

export class StorageIoError extends Error {
  override readonly name = 'StorageIoError';
  /**
   * The errno name when the cause has one (ENOSPC, EIO, ...): node:fs gives names, LMDB gives
   * numbers (a short write during a commit, e.g. on a full disk, is reported by LMDB as EIO).
   */
  readonly code: string | null;

  constructor(message: string, cause: unknown) {
    const code = errorCode(cause);
    const detail = describeCause(cause);
    super(`${message}: ${detail}${code !== null && !detail.includes(code) ? ` (${code})` : ''}`, { cause });
    this.code = code;
  }
}

const errnoNames = new Map<number, string>(Object.entries(os.constants.errno).map(([name, value]) => [value, name]));

function errorCode(cause: unknown): string | null {
  if (typeof cause === 'object' && cause !== null && 'code' in cause) {
    const code = (cause as { code: unknown }).code;
    if (typeof code === 'string') return code;
    if (typeof code === 'number') return errnoNames.get(code) ?? (code < 0 ? `MDB_ERROR_${-code}` : String(code));
  }
  return null;
}

function describeCause(cause: unknown): string {
  if (cause instanceof Error) return cause.message;
  return String(cause);
}
