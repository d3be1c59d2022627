/**
 * Leader-side preparation: turns user requests into row ops (and batches into commands) against
 * the leader's current applied state, validating input and enforcing the configured limits.
 *
 * Not responsible for: proposing, waiting, or retrying (the server), applying (apply.ts), or
 * choosing ids and timestamps: those come in as arguments, so this stays pure and testable.
 *
 * Invariants:
 * - Whatever depends on the current state is pinned by a condition on the row op. A merge patch
 *   is computed from the base version and carries `version: base`; if another write lands first,
 *   apply reports PRECONDITION_FAILED and the server prepares again from the new state.
 * - Every op or command returned here passes validateCommand with the same options, so apply
 *   can only reject it if the caller changed it afterwards.
 * - Input errors are returned as values with codes; nothing here throws on bad input.
 */

import { validateCommand, type BatchCommand, type Condition, type DeleteOp, type PutOp, type RowOp } from './commands.ts';
import { jsonEqual, type JsonObject, type JsonValue } from './json.ts';
import { applyMergePatch } from './merge_patch.ts';
import type { DocumentReader } from './store.ts';
import {
  resolveDocumentOptions,
  validateBody,
  validateCollectionName,
  validateDocumentId,
  validateJsonValue,
  type DocumentError,
  type DocumentOptions,
} from './types.ts';

export type PrepareResult<T> = { ok: true; value: T } | { ok: false; error: DocumentError };

export interface CreateRequest {
  collection: string;
  /** For "create with generated id" the leader generates it and passes it here. */
  id: string;
  body: unknown;
}

export interface ReplaceRequest {
  collection: string;
  id: string;
  body: unknown;
  /** If-Match: the version the client last saw; absent means unconditional (upsert). */
  ifMatch?: number;
}

export interface MergePatchRequest {
  collection: string;
  id: string;
  /** An RFC 7396 merge patch: any JSON value, though only an object can leave a valid body. */
  patch: unknown;
  ifMatch?: number;
}

export interface DeleteRequest {
  collection: string;
  id: string;
  ifMatch?: number;
}

export interface PreparedMergePatch {
  op: PutOp;
  /** The version the patch was applied to; the op's condition pins it. */
  baseVersion: number;
  /** False when the patch leaves the body as it was; the server may answer without proposing. */
  changed: boolean;
}

export interface BatchRequest {
  ops: unknown;
  timestampMs: number;
  idempotencyKey?: string;
  requestId?: string;
}

function fail<T>(error: DocumentError): PrepareResult<T> {
  return { ok: false, error };
}

function validateTarget(collection: unknown, id: unknown): DocumentError | null {
  return validateCollectionName(collection) ?? validateDocumentId(id);
}

function validateIfMatch(ifMatch: unknown): DocumentError | null {
  if (ifMatch === undefined) return null;
  if (typeof ifMatch !== 'number' || !Number.isSafeInteger(ifMatch) || ifMatch < 1) {
    return { code: 'INVALID_CONDITION', message: 'If-Match must be a positive integer version' };
  }
  return null;
}

function versionCondition(ifMatch: number | undefined): { condition?: Condition } {
  return ifMatch === undefined ? {} : { condition: { version: ifMatch } };
}

/** Create-only: fails with ALREADY_EXISTS at apply if the id is taken by then. */
export function prepareCreate(request: CreateRequest, options: Partial<DocumentOptions> = {}): PrepareResult<PutOp> {
  const resolved = resolveDocumentOptions(options);
  const error = validateTarget(request.collection, request.id) ?? validateBody(request.body, resolved);
  if (error !== null) return fail(error);
  return {
    ok: true,
    value: { action: 'put', collection: request.collection, id: request.id, body: request.body as JsonObject, condition: { exists: false } },
  };
}

/** Whole-body replace; creates when absent unless If-Match is given (then the version must match). */
export function prepareReplace(request: ReplaceRequest, options: Partial<DocumentOptions> = {}): PrepareResult<PutOp> {
  const resolved = resolveDocumentOptions(options);
  const error = validateTarget(request.collection, request.id) ?? validateIfMatch(request.ifMatch) ?? validateBody(request.body, resolved);
  if (error !== null) return fail(error);
  return {
    ok: true,
    value: { action: 'put', collection: request.collection, id: request.id, body: request.body as JsonObject, ...versionCondition(request.ifMatch) },
  };
}

/**
 * RFC 7396 merge patch against the current document. Fails now (NOT_FOUND, PRECONDITION_FAILED)
 * when the current state already rules it out; otherwise the op's version condition makes apply
 * fail if the state moves on before the entry commits.
 */
export function prepareMergePatch(
  reader: Pick<DocumentReader, 'get'>,
  request: MergePatchRequest,
  options: Partial<DocumentOptions> = {},
): PrepareResult<PreparedMergePatch> {
  const resolved = resolveDocumentOptions(options);
  const error =
    validateTarget(request.collection, request.id) ??
    validateIfMatch(request.ifMatch) ??
    validateJsonValue(request.patch, resolved, 'INVALID_PATCH', 'merge patch');
  if (error !== null) return fail(error);
  const current = reader.get(request.collection, request.id);
  if (current === null) {
    return fail({ code: 'NOT_FOUND', message: `${request.collection}/${request.id} does not exist`, currentVersion: null });
  }
  if (request.ifMatch !== undefined && request.ifMatch !== current.version) {
    return fail({
      code: 'PRECONDITION_FAILED',
      message: `expected version ${request.ifMatch}, found ${current.version}`,
      currentVersion: current.version,
    });
  }
  const body = applyMergePatch(current.body, request.patch as JsonValue);
  // Per RFC 7396 a non-object patch replaces the whole value, which cannot be a document body.
  const bodyError = validateBody(body, resolved);
  if (bodyError !== null) {
    return fail(bodyError.code === 'INVALID_BODY' ? { code: 'INVALID_PATCH', message: 'the merge patch would leave a body that is not a JSON object' } : bodyError);
  }
  return {
    ok: true,
    value: {
      op: { action: 'put', collection: request.collection, id: request.id, body: body as JsonObject, condition: { version: current.version } },
      baseVersion: current.version,
      changed: !jsonEqual(body, current.body),
    },
  };
}

/** Delete; without If-Match deleting a missing document succeeds as a no-op. */
export function prepareDelete(request: DeleteRequest): PrepareResult<DeleteOp> {
  const error = validateTarget(request.collection, request.id) ?? validateIfMatch(request.ifMatch);
  if (error !== null) return fail(error);
  return { ok: true, value: { action: 'delete', collection: request.collection, id: request.id, ...versionCondition(request.ifMatch) } };
}

/**
 * Wraps ops into a batch command stamped with the leader's time (and optional keys), validated
 * with the configured limits. The ops may come straight from a user batch request.
 */
export function prepareBatch(request: BatchRequest, options: Partial<DocumentOptions> = {}): PrepareResult<BatchCommand> {
  const resolved = resolveDocumentOptions(options);
  const command: Record<string, unknown> = { type: 'batch', ops: request.ops, timestampMs: request.timestampMs };
  if (request.idempotencyKey !== undefined) command['idempotencyKey'] = request.idempotencyKey;
  if (request.requestId !== undefined) command['requestId'] = request.requestId;
  const error = validateCommand(command, resolved);
  if (error !== null) return fail(error);
  return { ok: true, value: command as unknown as BatchCommand };
}

/** Convenience for single-op writes. */
export function prepareSingle(op: RowOp, timestampMs: number, extra: { idempotencyKey?: string; requestId?: string } = {}, options: Partial<DocumentOptions> = {}): PrepareResult<BatchCommand> {
  return prepareBatch({ ops: [op], timestampMs, ...extra }, options);
}
