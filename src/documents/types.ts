/**
 * Names, shapes and limits of the document model: what a collection name, a document id and a
 * stored document are, the error codes users see, and the options (limits) with their defaults.
 *
 * Not responsible for: storing anything (store.ts), the replicated command format (commands.ts),
 * or applying changes (apply.ts). Validation here is for input at the edge; it returns errors as
 * values and never throws on bad input.
 *
 * Invariants:
 * - Collection names and ids are ASCII, so JavaScript string order, UTF-8 byte order (LMDB's key
 *   order) and code point order all agree: list order is the same in memory and on disk.
 * - Neither contains '/', so `collection/id` is an unambiguous key.
 * - The fixed length caps keep `collection/id` (321 bytes) and idempotency meta keys (282 bytes)
 *   under LMDB's default 511-byte key limit. They are part of the format, not tunable options.
 */

import { assert } from '../shared/assert.ts';
import { checkJson, isPlainObject, jsonByteLength, jsonDepthHardMax, type JsonObject, type JsonValue } from './json.ts';

export type { JsonObject, JsonPrimitive, JsonValue } from './json.ts';

/** A document as stored and replicated. */
export interface StoredDocument {
  readonly collection: string;
  readonly id: string;
  /** Always a JSON object; frozen once it is in a store. */
  readonly body: JsonObject;
  /** 1 on create, +1 on each change. A delete then re-create starts again at 1. */
  readonly version: number;
  /** Raft log index of the entry that last changed it: unique per change, usable as an ETag. */
  readonly index: number;
  /** The leader's clock when it proposed that entry (never the applying node's clock). */
  readonly updatedAtMs: number;
}

/** Stable error codes; clients may switch on them. */
export type DocumentErrorCode =
  | 'INVALID_COLLECTION'
  | 'INVALID_ID'
  | 'INVALID_BODY'
  | 'DOCUMENT_TOO_LARGE'
  | 'DOCUMENT_TOO_DEEP'
  | 'INVALID_CONDITION'
  | 'INVALID_PATCH'
  | 'INVALID_COMMAND'
  | 'BATCH_EMPTY'
  | 'BATCH_TOO_LARGE'
  | 'INVALID_IDEMPOTENCY_KEY'
  | 'INVALID_REQUEST_ID'
  | 'INVALID_TIMESTAMP'
  | 'INVALID_LIST_QUERY'
  | 'INVALID_ENCODING'
  | 'INVALID_SNAPSHOT'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'PRECONDITION_FAILED';

/** The subset of codes that mean "valid request, but the current state says no". */
export type ConflictCode = 'NOT_FOUND' | 'ALREADY_EXISTS' | 'PRECONDITION_FAILED';

export interface DocumentError {
  code: DocumentErrorCode;
  message: string;
  /** Which op of a batch, when the error is about one op. */
  opIndex?: number;
  /** For conflicts: the version the request ran into (null: the document did not exist). */
  currentVersion?: number | null;
}

export const collectionNameLengthMax = 64;
export const documentIdLengthMax = 256;
export const idempotencyKeyLengthMax = 256;

/** Tunable limits. Options marked "state machine" change replicated state and must be equal on all nodes. */
export interface DocumentOptions {
  /** Body size as compact JSON in UTF-8 bytes. */
  documentBytesMax: number;
  /** Container nesting of a body (a flat object is 1); at most jsonDepthHardMax. */
  documentDepthMax: number;
  /** Ops in one batch command. */
  batchOperationsMax: number;
  /** Whole encoded command, in bytes: bounds one Raft log entry. */
  batchBytesMax: number;
  /** Members in one condition's `fields`. */
  conditionFieldsMax: number;
  requestIdLengthMax: number;
  /** Largest page a list may ask for. */
  listLimitMax: number;
  /** State machine: how long an idempotency record answers retries, measured in command timestamps. */
  idempotencyRetentionMs: number;
  /** State machine: expired idempotency records dropped per applied command, oldest first. */
  idempotencyExpiryPerApplyMax: number;
  /** Largest `max` an expireIdempotency housekeeping command may carry. */
  idempotencyExpiryPerCommandMax: number;
  /** State machine: log positions of row changes kept for the change feed (`changes/<index>`). */
  changeRetentionEntries: number;
}

export const defaultDocumentOptions: Readonly<DocumentOptions> = Object.freeze({
  documentBytesMax: 1024 * 1024,
  documentDepthMax: 32,
  batchOperationsMax: 100,
  batchBytesMax: 4 * 1024 * 1024,
  conditionFieldsMax: 32,
  requestIdLengthMax: 128,
  listLimitMax: 1000,
  idempotencyRetentionMs: 24 * 60 * 60 * 1000,
  idempotencyExpiryPerApplyMax: 16,
  idempotencyExpiryPerCommandMax: 10_000,
  changeRetentionEntries: 10_000,
});

/**
 * Fills defaults and checks the configuration. A bad configuration is a programmer error (it
 * comes from code, not from users), so it fails an assertion.
 */
export function resolveDocumentOptions(options: Partial<DocumentOptions> = {}): DocumentOptions {
  // The apply path resolves the node's (frozen, already resolved) options once per entry.
  if (resolvedOptions.has(options)) return options as DocumentOptions;
  const resolved: DocumentOptions = { ...defaultDocumentOptions, ...options };
  for (const [name, value] of Object.entries(resolved)) {
    assert(Number.isSafeInteger(value) && value > 0, `document option ${name} must be a positive integer, got ${String(value)}`);
  }
  // Stored records nest a body a few levels deep (a change record: changes[i].doc.body; a command:
  // ops[i].body), and every stored value is held to jsonDepthHardMax: leave room for that nesting,
  // or a body at the configured limit would be accepted and then fail to store on every replica.
  const depthMaxAllowed = jsonDepthHardMax - bodyEnvelopeDepthMax;
  assert(resolved.documentDepthMax <= depthMaxAllowed, `documentDepthMax must be at most ${depthMaxAllowed}`);
  Object.freeze(resolved);
  resolvedOptions.add(resolved);
  return resolved;
}

const resolvedOptions = new WeakSet<object>();

/** How deep a stored record may nest a document body (change records: 4; commands: 3), with room to spare. */
const bodyEnvelopeDepthMax = 8;

const collectionPattern = /^[A-Za-z0-9_-]+$/;
const idPattern = /^[A-Za-z0-9_.:@-]+$/;
const idempotencyKeyPattern = /^[\x21-\x7e]+$/;

/** Collection names: 1–64 of [A-Za-z0-9_-]; a leading '_' is reserved for system collections. */
export function validateCollectionName(name: unknown): DocumentError | null {
  if (typeof name !== 'string') return { code: 'INVALID_COLLECTION', message: 'collection name must be a string' };
  if (name.length < 1 || name.length > collectionNameLengthMax) {
    return { code: 'INVALID_COLLECTION', message: `collection name must be 1-${collectionNameLengthMax} characters` };
  }
  if (!collectionPattern.test(name)) {
    return { code: 'INVALID_COLLECTION', message: 'collection name may only contain A-Z a-z 0-9 _ -' };
  }
  if (name.startsWith('_')) {
    return { code: 'INVALID_COLLECTION', message: "collection names starting with '_' are reserved for the system" };
  }
  return null;
}

/** Document ids: 1–256 of [A-Za-z0-9_.:@-], and not '.' or '..' (they would read as URL path steps). */
export function validateDocumentId(id: unknown): DocumentError | null {
  if (typeof id !== 'string') return { code: 'INVALID_ID', message: 'document id must be a string' };
  if (id.length < 1 || id.length > documentIdLengthMax) {
    return { code: 'INVALID_ID', message: `document id must be 1-${documentIdLengthMax} characters` };
  }
  if (!idPattern.test(id)) return { code: 'INVALID_ID', message: 'document id may only contain A-Z a-z 0-9 _ . : @ -' };
  if (id === '.' || id === '..') return { code: 'INVALID_ID', message: "document id may not be '.' or '..'" };
  return null;
}

/** Idempotency keys: 1–256 printable ASCII characters (no spaces), chosen by the client. */
export function validateIdempotencyKey(key: unknown): DocumentError | null {
  if (typeof key !== 'string' || key.length < 1 || key.length > idempotencyKeyLengthMax || !idempotencyKeyPattern.test(key)) {
    return {
      code: 'INVALID_IDEMPOTENCY_KEY',
      message: `idempotency key must be 1-${idempotencyKeyLengthMax} printable ASCII characters without spaces`,
    };
  }
  return null;
}

/** Request ids tag a command so the proposing node can match the applied result to its caller. */
export function validateRequestId(requestId: unknown, options: DocumentOptions = defaultDocumentOptions): DocumentError | null {
  if (typeof requestId !== 'string' || requestId.length < 1 || requestId.length > options.requestIdLengthMax || !idempotencyKeyPattern.test(requestId)) {
    return {
      code: 'INVALID_REQUEST_ID',
      message: `request id must be 1-${options.requestIdLengthMax} printable ASCII characters without spaces`,
    };
  }
  return null;
}

/** A document body: a JSON object (not an array or primitive) within the size and depth limits. */
export function validateBody(body: unknown, options: DocumentOptions = defaultDocumentOptions): DocumentError | null {
  return validateJsonObject(body, options, 'INVALID_BODY', 'document body');
}

/**
 * Shared by bodies and merge patches. Depth is checked during the walk (which also stops cycles);
 * size after, since measuring needs a full serialisation.
 */
export function validateJsonObject(
  value: unknown,
  options: DocumentOptions,
  code: 'INVALID_BODY' | 'INVALID_PATCH',
  what: string,
): DocumentError | null {
  if (!isPlainObject(value)) return { code, message: `${what} must be a JSON object` };
  return validateJsonValue(value, options, code, what);
}

/** Like validateJsonObject but any JSON value is allowed (merge patches may be primitives). */
export function validateJsonValue(
  value: unknown,
  options: DocumentOptions,
  code: 'INVALID_BODY' | 'INVALID_PATCH',
  what: string,
): DocumentError | null {
  const problem = checkJson(value, options.documentDepthMax);
  if (problem !== null) {
    return problem.kind === 'depth'
      ? { code: 'DOCUMENT_TOO_DEEP', message: `${what} is ${problem.message}` }
      : { code, message: `${what} is not valid JSON: ${problem.message}` };
  }
  const bytes = jsonByteLength(value as JsonValue);
  if (bytes > options.documentBytesMax) {
    return { code: 'DOCUMENT_TOO_LARGE', message: `${what} is ${bytes} bytes, more than the limit of ${options.documentBytesMax}` };
  }
  return null;
}

/** Leader-stamped clock reading: a non-negative safe integer of milliseconds. */
export function validateTimestamp(timestampMs: unknown): DocumentError | null {
  if (typeof timestampMs !== 'number' || !Number.isSafeInteger(timestampMs) || timestampMs < 0) {
    return { code: 'INVALID_TIMESTAMP', message: 'timestampMs must be a non-negative integer' };
  }
  return null;
}

/** A page request over one collection, ids ascending. All given bounds apply together. */
export interface ListQuery {
  collection: string;
  /** Only ids starting with this. */
  prefix?: string;
  /** Cursor: only ids strictly after this (the `nextCursor` of the previous page). */
  startAfter?: string;
  /** Only ids >= start. */
  start?: string;
  /** Only ids < end. */
  end?: string;
  limit: number;
}

export interface ListPage {
  documents: StoredDocument[];
  /** The last id returned when more documents match; pass it as `startAfter`. Null at the end. */
  nextCursor: string | null;
}

const boundPattern = /^[A-Za-z0-9_.:@-]*$/;

/** For list queries coming from users; stores assume a valid query. */
export function validateListQuery(query: unknown, options: DocumentOptions = defaultDocumentOptions): DocumentError | null {
  if (typeof query !== 'object' || query === null) return { code: 'INVALID_LIST_QUERY', message: 'list query must be an object' };
  const q = query as Record<string, unknown>;
  // System collections are listed by system code with a trusted query, so users never name them.
  const collectionError = validateCollectionName(q['collection']);
  if (collectionError !== null) return collectionError;
  for (const bound of ['prefix', 'startAfter', 'start', 'end'] as const) {
    const value = q[bound];
    if (value === undefined) continue;
    if (typeof value !== 'string' || value.length > documentIdLengthMax || !boundPattern.test(value)) {
      return { code: 'INVALID_LIST_QUERY', message: `${bound} must be at most ${documentIdLengthMax} id characters` };
    }
  }
  const limit = q['limit'];
  if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1 || limit > options.listLimitMax) {
    return { code: 'INVALID_LIST_QUERY', message: `limit must be an integer from 1 to ${options.listLimitMax}` };
  }
  return null;
}
