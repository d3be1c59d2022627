/**
 * Backups (issue 6): the backup file format, shared by the server (which writes it) and the CLI
 * (which verifies and restores it), and the `GET /v1/admin/backup` route.
 *
 * A backup file is self-describing:
 *
 *   UNDERSTUDY-BACKUP 1\n                       the magic line and the format version
 *   {"format":"understudy-backup",...}\n        the header, one line of JSON (BackupHeader)
 *   HEADER-SHA256 <64 hex digits>\n             sha256 of the two lines above, newlines included
 *   <body>                                      the state-machine snapshot, header.bytes bytes
 *
 * The header carries the body's length and sha256, and its own checksum line covers the magic and
 * the header, so a flipped byte anywhere in the file, a truncation or trailing bytes are refused
 * (parseBackup). The body is exactly what the document store's snapshot() produces (the format
 * Raft snapshots use), so a restore seeds a node the way an installed snapshot does.
 *
 * Consistency of the route: a linearizable read barrier first (ReadIndex, on whichever node is
 * asked: a follower gets the index from the leader and waits until it applied that far), so the
 * backup holds every write acknowledged before the request; then the document store's state is
 * fixed by one LMDB read transaction (snapshotAsync, which does not block the event loop while it
 * copies). The applied index and the document count are read in the same synchronous turn as the
 * snapshot starts, so they describe exactly the state the body holds.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { readAppliedIndex } from '../documents/index.ts';
import { ApiError } from './errors.ts';
import type { NodeDocumentStore, UnderstudyNode } from './node.ts';

export const BACKUP_MAGIC = 'UNDERSTUDY-BACKUP';
export const BACKUP_VERSION = 1;
export const BACKUP_FORMAT = 'understudy-backup';
const HEADER_CHECKSUM_PREFIX = 'HEADER-SHA256 ';
const MAGIC_LINE = `${BACKUP_MAGIC} ${BACKUP_VERSION}\n`;
/** No header line of ours comes close; a longer one is not a header. */
const HEADER_BYTES_MAX = 64 * 1024;

export interface BackupHeader {
  readonly format: typeof BACKUP_FORMAT;
  readonly version: typeof BACKUP_VERSION;
  /** The cluster id of the node the backup was taken from. */
  readonly clusterId: string;
  /** The node that served the backup. */
  readonly takenFrom: string;
  /** The log index of the last entry applied to the state in the body. */
  readonly appliedIndex: number;
  /** The term of that entry. */
  readonly term: number;
  /** When the state was fixed (ISO 8601, the serving node's clock). */
  readonly createdAt: string;
  readonly documentCount: number;
  /** Length of the body in bytes. */
  readonly bytes: number;
  /** sha256 of the body, lowercase hex. */
  readonly sha256: string;
}

export interface ParsedBackup {
  readonly header: BackupHeader;
  readonly body: Uint8Array;
  /** Bytes before the body (magic, header and checksum lines). */
  readonly headerBytes: number;
}

/** A backup file that is not one, or not intact. The message is one line for an operator. */
export class BackupFormatError extends Error {
  override readonly name = 'BackupFormatError';
}

function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** sha256 of a large buffer without holding the event loop for long: 4 MiB per turn. */
export async function sha256HexAsync(data: Uint8Array, sliceBytes = 4 * 1024 * 1024): Promise<string> {
  const hash = createHash('sha256');
  for (let offset = 0; offset < data.byteLength; offset += sliceBytes) {
    hash.update(data.subarray(offset, Math.min(data.byteLength, offset + sliceBytes)));
    if (offset + sliceBytes < data.byteLength) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return hash.digest('hex');
}

/** The bytes before the body: magic line, header line, header checksum line. */
export function encodeBackupPrefix(header: BackupHeader): Buffer {
  const ordered: BackupHeader = {
    format: header.format, version: header.version, clusterId: header.clusterId, takenFrom: header.takenFrom,
    appliedIndex: header.appliedIndex, term: header.term, createdAt: header.createdAt, documentCount: header.documentCount,
    bytes: header.bytes, sha256: header.sha256,
  };
  const problem = headerProblem({ ...ordered });
  if (problem !== null) throw new Error(`invalid backup header: ${problem}`);
  const lines = `${MAGIC_LINE}${JSON.stringify(ordered)}\n`;
  return Buffer.from(`${lines}${HEADER_CHECKSUM_PREFIX}${sha256Hex(lines)}\n`, 'utf8');
}

/** A whole backup file in one buffer (tests, small stores). */
export function encodeBackup(fields: Omit<BackupHeader, 'format' | 'version' | 'bytes' | 'sha256'>, body: Uint8Array): Buffer {
  const header: BackupHeader = { format: BACKUP_FORMAT, version: BACKUP_VERSION, ...fields, bytes: body.byteLength, sha256: sha256Hex(body) };
  return Buffer.concat([encodeBackupPrefix(header), body]);
}

const isCount = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;

function headerProblem(header: Record<string, unknown>): string | null {
  if (header['format'] !== BACKUP_FORMAT) return `format is not "${BACKUP_FORMAT}"`;
  if (header['version'] !== BACKUP_VERSION) return `version ${JSON.stringify(header['version'])} is not ${BACKUP_VERSION}`;
  for (const name of ['clusterId', 'takenFrom'] as const) {
    const value = header[name];
    if (typeof value !== 'string' || value.length === 0 || value.length > 256) return `${name} must be a non-empty string`;
  }
  for (const name of ['appliedIndex', 'term', 'documentCount', 'bytes'] as const) {
    if (!isCount(header[name])) return `${name} must be a non-negative integer`;
  }
  const createdAt = header['createdAt'];
  if (typeof createdAt !== 'string' || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(createdAt) || Number.isNaN(Date.parse(createdAt))) {
    return 'createdAt must be an ISO 8601 UTC time';
  }
  if (typeof header['sha256'] !== 'string' || !/^[0-9a-f]{64}$/.test(header['sha256'])) return 'sha256 must be 64 lowercase hex digits';
  const known = ['format', 'version', 'clusterId', 'takenFrom', 'appliedIndex', 'term', 'createdAt', 'documentCount', 'bytes', 'sha256'];
  const unknown = Object.keys(header).find((key) => !known.includes(key));
  if (unknown !== undefined) return `unknown header member "${unknown}"`;
  return null;
}

/** The line starting at `start` (without its newline) and where the next begins, or null. */
function lineAt(bytes: Uint8Array, start: number, maxBytes: number): { text: string; next: number } | null {
  const end = Math.min(bytes.byteLength, start + maxBytes + 1);
  for (let i = start; i < end; i += 1) {
    if (bytes[i] === 0x0a) return { text: Buffer.from(bytes.buffer, bytes.byteOffset + start, i - start).toString('utf8'), next: i + 1 };
  }
  return null;
}

/**
 * Reads the header of a backup file and checks everything but the body's checksum: magic, version,
 * header checksum, header fields, and that the body has exactly the announced length. Throws
 * BackupFormatError. `what` names the file in messages.
 */
export function parseBackupHeader(bytes: Uint8Array, what = 'the backup'): ParsedBackup {
  if (bytes.byteLength === 0) throw new BackupFormatError(`${what} is empty`);
  const magic = lineAt(bytes, 0, 64);
  if (magic === null || !magic.text.startsWith(`${BACKUP_MAGIC} `)) {
    if (bytes.byteLength < MAGIC_LINE.length && Buffer.from(MAGIC_LINE).subarray(0, bytes.byteLength).equals(Buffer.from(bytes))) {
      throw new BackupFormatError(`${what} is truncated: it ends inside the magic line (${bytes.byteLength} bytes)`);
    }
    throw new BackupFormatError(`${what} is not an Understudy backup (it does not start with "${BACKUP_MAGIC} ${BACKUP_VERSION}")`);
  }
  const version = magic.text.slice(BACKUP_MAGIC.length + 1);
  if (version !== String(BACKUP_VERSION)) {
    throw new BackupFormatError(`${what} is an Understudy backup of format version "${version.slice(0, 20)}"; this understudy reads version ${BACKUP_VERSION}`);
  }
  const headerLine = lineAt(bytes, magic.next, HEADER_BYTES_MAX);
  if (headerLine === null) {
    throw new BackupFormatError(bytes.byteLength - magic.next <= HEADER_BYTES_MAX
      ? `${what} is truncated: it ends inside the header`
      : `${what} has no header line within ${HEADER_BYTES_MAX} bytes: it is corrupt`);
  }
  const checksumLine = lineAt(bytes, headerLine.next, HEADER_CHECKSUM_PREFIX.length + 64);
  if (checksumLine === null) {
    if (bytes.byteLength - headerLine.next <= HEADER_CHECKSUM_PREFIX.length + 64) throw new BackupFormatError(`${what} is truncated: it ends inside the header checksum line`);
    throw new BackupFormatError(`${what} has a corrupt header checksum line`);
  }
  const expected = checksumLine.text.startsWith(HEADER_CHECKSUM_PREFIX) ? checksumLine.text.slice(HEADER_CHECKSUM_PREFIX.length) : null;
  if (expected === null || !/^[0-9a-f]{64}$/.test(expected)) throw new BackupFormatError(`${what} has a corrupt header checksum line`);
  const actual = sha256Hex(bytes.subarray(0, headerLine.next));
  if (actual !== expected) throw new BackupFormatError(`${what} has a corrupt header: its sha256 is ${actual.slice(0, 16)}…, the checksum line says ${expected.slice(0, 16)}…`);
  let header: unknown;
  try {
    header = JSON.parse(headerLine.text);
  } catch (error) {
    throw new BackupFormatError(`${what} has a header that is not JSON: ${(error as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new BackupFormatError(`${what} has a header that is not a JSON object`);
  const problem = headerProblem(header as Record<string, unknown>);
  if (problem !== null) throw new BackupFormatError(`${what} has an invalid header: ${problem}`);
  const parsed = header as BackupHeader;
  const bodyBytes = bytes.byteLength - checksumLine.next;
  if (bodyBytes < parsed.bytes) {
    throw new BackupFormatError(`${what} is truncated: the header announces ${parsed.bytes} body bytes, the file holds ${bodyBytes}`);
  }
  if (bodyBytes > parsed.bytes) {
    throw new BackupFormatError(`${what} has ${bodyBytes - parsed.bytes} unexpected bytes after its ${parsed.bytes}-byte body`);
  }
  return { header: parsed, body: bytes.subarray(checksumLine.next), headerBytes: checksumLine.next };
}

/** parseBackupHeader, then the body's sha256. The one check every reader of a backup runs. */
export function parseBackup(bytes: Uint8Array, what = 'the backup'): ParsedBackup {
  const parsed = parseBackupHeader(bytes, what);
  const actual = sha256Hex(parsed.body);
  if (actual !== parsed.header.sha256) {
    throw new BackupFormatError(`${what} failed its checksum: the body's sha256 is ${actual.slice(0, 16)}…, the header says ${parsed.header.sha256.slice(0, 16)}…`);
  }
  return parsed;
}

// ---------------------------------------------------------------------------------------------
// The route.

export interface BackupRouteOptions {
  readonly node: UnderstudyNode;
  /** Default wait for the read barrier (the node's readTimeoutMs). */
  readonly readTimeoutMs: number;
  /** Validates the query (http.ts's queryOf); returns the allowed parameters. */
  readonly query: (request: import('fastify').FastifyRequest, allowed: readonly string[]) => Record<string, string | undefined>;
}

function documentCountOf(documents: NodeDocumentStore): number | null {
  const counter = (documents as { documentCount?: () => number }).documentCount;
  return typeof counter === 'function' ? counter.call(documents) : null;
}

/** Counts the documents in a snapshot body (when the store cannot say), by parsing it. */
function countInBody(body: Uint8Array): number {
  const parsed = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8')) as { documents?: unknown[] };
  return Array.isArray(parsed.documents) ? parsed.documents.length : 0;
}

/**
 * Takes a consistent backup on `node`: linearizable barrier, then the snapshot. Returns the
 * prefix (magic, header, checksum line) and the body.
 */
export async function takeBackup(node: UnderstudyNode, documents: NodeDocumentStore, timeoutMs: number): Promise<{ header: BackupHeader; prefix: Buffer; body: Uint8Array }> {
  await node.readBarrier({ consistency: 'linearizable', timeoutMs });
  // Same synchronous turn as the snapshot's read transaction begins: no entry is applied between.
  const applied = readAppliedIndex(documents);
  const storeCount = documentCountOf(documents);
  const createdAt = new Date().toISOString();
  const body = documents.snapshotAsync === undefined ? documents.snapshot() : await documents.snapshotAsync();
  const sha256 = await sha256HexAsync(body);
  const header: BackupHeader = {
    format: BACKUP_FORMAT, version: BACKUP_VERSION, clusterId: node.config.clusterId, takenFrom: node.id,
    appliedIndex: applied.index, term: applied.term, createdAt, documentCount: storeCount ?? countInBody(body),
    bytes: body.byteLength, sha256,
  };
  return { header, prefix: encodeBackupPrefix(header), body };
}

export function registerBackupRoute(app: FastifyInstance, options: BackupRouteOptions): void {
  const { node } = options;
  // A backup holds the whole state in memory while it is sent: one at a time per node.
  let inProgress = false;
  app.get('/v1/admin/backup', { exposeHeadRoute: false }, async (request, reply) => {
    const query = options.query(request, ['timeoutMs']);
    let timeoutMs = options.readTimeoutMs;
    const raw = query['timeoutMs'];
    if (raw !== undefined) {
      if (!/^\d{1,6}$/.test(raw) || Number(raw) < 1 || Number(raw) > 120_000) throw new ApiError('INVALID_PARAMETER', "'timeoutMs' must be an integer between 1 and 120000");
      timeoutMs = Number(raw);
    }
    if (inProgress) throw new ApiError('BACKUP_IN_PROGRESS', `a backup is already being taken on ${node.id}; retry when it is done`, { retryAfterMs: 1_000 });
    inProgress = true;
    let backup;
    try {
      backup = await takeBackup(node, node.documentStore, timeoutMs);
    } finally {
      inProgress = false;
    }
    const { header, prefix, body } = backup;
    reply.code(200);
    reply.header('content-type', 'application/octet-stream');
    reply.header('content-length', String(prefix.byteLength + body.byteLength));
    reply.header('content-disposition', `attachment; filename="understudy-${header.clusterId.replace(/[^A-Za-z0-9_-]/g, '_')}-${header.appliedIndex}.backup"`);
    reply.header('x-backup-applied-index', String(header.appliedIndex));
    reply.header('x-backup-sha256', header.sha256);
    reply.header('cache-control', 'no-store');
    const bodyBuffer = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    return reply.send(Readable.from([prefix, bodyBuffer], { objectMode: false }));
  });
}
