/**
 * Public API of the document state machine (named exports only).
 *
 * Not responsible for anything itself: it re-exports types.ts (names, limits, validation),
 * json.ts (JSON types and helpers), store.ts (storage seam + in-memory store), commands.ts (the
 * replicated command and its encoding), apply.ts (the transition function), prepare.ts (leader-side
 * request preparation) and merge_patch.ts (RFC 7396).
 */

export {
  collectionNameLengthMax,
  defaultDocumentOptions,
  documentIdLengthMax,
  idempotencyKeyLengthMax,
  resolveDocumentOptions,
  validateBody,
  validateCollectionName,
  validateDocumentId,
  validateIdempotencyKey,
  validateListQuery,
  validateRequestId,
  validateTimestamp,
} from './types.ts';
export type { ConflictCode, DocumentError, DocumentErrorCode, DocumentOptions, ListPage, ListQuery, StoredDocument } from './types.ts';

export { canonicalJson, cloneJson, jsonByteLength, jsonDepthHardMax, jsonEqual } from './json.ts';
export type { JsonObject, JsonPrimitive, JsonValue } from './json.ts';

export { MemoryDocumentStore } from './store.ts';
export type { DocumentReader, DocumentStore, DocumentWriter, MetaEntry, MetaListQuery } from './store.ts';

export { decodeCommand, encodeCommand, validateCommand, validateCondition, validateRowOp } from './commands.ts';
export type { BatchCommand, Command, Condition, DecodeResult, DeleteOp, ExpireIdempotencyCommand, NoopCommand, PutOp, RowOp } from './commands.ts';

export { applyCommand, changeRecordKey, lookupIdempotency, oldestChangeIndex, readAppliedIndex, readChanges, readStateClock } from './apply.ts';
export type {
  AppliedResult,
  ApplyMeta,
  ChangeRecord,
  ApplyResult,
  ConflictResult,
  HousekeepingResult,
  IdempotencyRecord,
  OpResult,
  RejectedResult,
  RowChange,
} from './apply.ts';

export { prepareBatch, prepareCreate, prepareDelete, prepareMergePatch, prepareReplace, prepareSingle } from './prepare.ts';
export type {
  BatchRequest,
  CreateRequest,
  DeleteRequest,
  MergePatchRequest,
  PreparedMergePatch,
  PrepareResult,
  ReplaceRequest,
} from './prepare.ts';

export { applyMergePatch } from './merge_patch.ts';
