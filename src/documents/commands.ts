/**
 * The replicated command: what one Raft log entry carries for the document state machine, its
 * validation, and its byte encoding.
 *
 * Commands carry row-level results (the document to store, or its deletion) plus conditions,
 * never statements: anything that depends on current state or on the clock (merge patches,
 * generated ids, timestamps) was resolved by the leader before proposing (prepare.ts), so applying
 * an entry needs nothing but the entry and the state.
 *
 * Not responsible for: turning requests into commands (prepare.ts) or applying them (apply.ts).
 *
 * Invariants:
 * - Validation is strict (unknown members are refused), so a command means exactly one thing.
 * - Structural validation (validateCommand with `null` limits) depends on the command alone; the
 *   apply path uses only that, so changing configured limits can never make replicas disagree
 *   about whether an already-committed entry is valid.
 * - encodeCommand/decodeCommand are the only places that know the byte format.
 */

import { isPlainObject, jsonByteLength, type JsonValue } from './json.ts';
import {
  defaultDocumentOptions,
  validateBody,
  validateCollectionName,
  validateDocumentId,
  validateIdempotencyKey,
  validateJsonValue,
  validateRequestId,
  validateTimestamp,
  type DocumentError,
  type DocumentOptions,
  type JsonObject,
} from './types.ts';

/** Compare-and-set guard on one row; every given member must hold. */
export interface Condition {
  /** The document must exist with exactly this version. */
  version?: number;
  /** true: must exist; false: must not exist (create-only). */
  exists?: boolean;
  /** Each named top-level field must be present and deep-equal the given value. */
  fields?: Record<string, JsonValue>;
}

export interface PutOp {
  action: 'put';
  collection: string;
  id: string;
  /** The complete resulting body (not a patch). */
  body: JsonObject;
  condition?: Condition;
}

export interface DeleteOp {
  action: 'delete';
  collection: string;
  id: string;
  condition?: Condition;
}

export type RowOp = PutOp | DeleteOp;

export interface BatchCommand {
  type: 'batch';
  /** Applied in order, all or nothing; later ops see earlier ops' effects. */
  ops: RowOp[];
  /** A client-chosen key: a batch with a recorded key is answered from the record, not reapplied. */
  idempotencyKey?: string;
  /** The leader's clock at proposal: becomes updatedAtMs and drives idempotency expiry. */
  timestampMs: number;
  /** Echoed in the apply result so the proposing node can find the waiting caller. */
  requestId?: string;
}

/** Does nothing but advance the applied index (e.g. an entry a new leader proposes). */
export interface NoopCommand {
  type: 'noop';
}

/** Housekeeping: drop up to `max` idempotency records expired as of `timestampMs`. */
export interface ExpireIdempotencyCommand {
  type: 'expireIdempotency';
  timestampMs: number;
  max: number;
}

export type Command = BatchCommand | NoopCommand | ExpireIdempotencyCommand;

/** Limits used for structural validation: only the format rules, no configured size limits. */
type Limits = DocumentOptions | null;

function invalid(message: string, opIndex?: number): DocumentError {
  return opIndex === undefined ? { code: 'INVALID_COMMAND', message } : { code: 'INVALID_COMMAND', message, opIndex };
}

function unknownMember(value: Record<string, unknown>, allowed: readonly string[]): string | null {
  for (const key of Object.keys(value)) if (!allowed.includes(key)) return key;
  return null;
}

const structuralBodyOptions: DocumentOptions = {
  ...defaultDocumentOptions,
  documentBytesMax: Number.MAX_SAFE_INTEGER,
  documentDepthMax: Number.MAX_SAFE_INTEGER, // checkJson still applies jsonDepthHardMax
  conditionFieldsMax: Number.MAX_SAFE_INTEGER,
  requestIdLengthMax: Number.MAX_SAFE_INTEGER,
};

export function validateCondition(condition: unknown, limits: Limits = defaultDocumentOptions): DocumentError | null {
  const bad = (message: string): DocumentError => ({ code: 'INVALID_CONDITION', message });
  if (!isPlainObject(condition)) return bad('condition must be an object');
  const extra = unknownMember(condition, ['version', 'exists', 'fields']);
  if (extra !== null) return bad(`unknown condition member '${extra}'`);
  const { version, exists, fields } = condition;
  if (version !== undefined && (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1)) {
    return bad('condition.version must be a positive integer');
  }
  if (exists !== undefined && typeof exists !== 'boolean') return bad('condition.exists must be a boolean');
  if (fields !== undefined) {
    if (!isPlainObject(fields)) return bad('condition.fields must be an object');
    const count = Object.keys(fields).length;
    const fieldsMax = limits?.conditionFieldsMax ?? Number.MAX_SAFE_INTEGER;
    if (count > fieldsMax) return bad(`condition.fields has ${count} members, more than ${fieldsMax}`);
    const valueError = validateJsonValue(fields, limits ?? structuralBodyOptions, 'INVALID_BODY', 'condition.fields');
    if (valueError !== null) return bad(valueError.message);
  }
  // A missing document has no version or fields to compare: such a condition can never hold.
  if (exists === false && (version !== undefined || fields !== undefined)) {
    return bad('condition.exists: false cannot be combined with version or fields');
  }
  return null;
}

export function validateRowOp(op: unknown, limits: Limits = defaultDocumentOptions, opIndex?: number): DocumentError | null {
  const withIndex = (error: DocumentError | null): DocumentError | null =>
    error === null || opIndex === undefined ? error : { ...error, opIndex };
  if (!isPlainObject(op)) return invalid('op must be an object', opIndex);
  const action = op['action'];
  if (action !== 'put' && action !== 'delete') return invalid("op.action must be 'put' or 'delete'", opIndex);
  const extra = unknownMember(op, action === 'put' ? ['action', 'collection', 'id', 'body', 'condition'] : ['action', 'collection', 'id', 'condition']);
  if (extra !== null) return invalid(`unknown op member '${extra}'`, opIndex);
  const collectionError = validateCollectionName(op['collection']);
  if (collectionError !== null) return withIndex(collectionError);
  const idError = validateDocumentId(op['id']);
  if (idError !== null) return withIndex(idError);
  if (action === 'put') {
    const bodyError = validateBody(op['body'], limits ?? structuralBodyOptions);
    if (bodyError !== null) return withIndex(bodyError);
  }
  if (op['condition'] !== undefined) return withIndex(validateCondition(op['condition'], limits));
  return null;
}

/**
 * Full validation of a command that came from anywhere. With `limits` (the default) it also
 * enforces the configured sizes: use that at the edge, before proposing. With `null` it checks
 * only structure and format rules: the apply path uses that (see the header for why).
 */
export function validateCommand(command: unknown, limits: Limits = defaultDocumentOptions): DocumentError | null {
  if (limits === null && typeof command === 'object' && command !== null && decodedAndValid.has(command)) return null;
  if (!isPlainObject(command)) return invalid('command must be an object');
  switch (command['type']) {
    case 'noop': {
      const extra = unknownMember(command, ['type']);
      return extra === null ? null : invalid(`unknown noop member '${extra}'`);
    }
    case 'expireIdempotency': {
      const extra = unknownMember(command, ['type', 'timestampMs', 'max']);
      if (extra !== null) return invalid(`unknown expireIdempotency member '${extra}'`);
      const timestampError = validateTimestamp(command['timestampMs']);
      if (timestampError !== null) return timestampError;
      const max = command['max'];
      const maxMax = limits?.idempotencyExpiryPerCommandMax ?? Number.MAX_SAFE_INTEGER;
      if (typeof max !== 'number' || !Number.isSafeInteger(max) || max < 1 || max > maxMax) {
        return invalid(`expireIdempotency.max must be an integer from 1 to ${maxMax}`);
      }
      return null;
    }
    case 'batch':
      return validateBatch(command, limits);
    default:
      return invalid("command.type must be 'batch', 'noop' or 'expireIdempotency'");
  }
}

function validateBatch(command: Record<string, unknown>, limits: Limits): DocumentError | null {
  const extra = unknownMember(command, ['type', 'ops', 'idempotencyKey', 'timestampMs', 'requestId']);
  if (extra !== null) return invalid(`unknown batch member '${extra}'`);
  const timestampError = validateTimestamp(command['timestampMs']);
  if (timestampError !== null) return timestampError;
  if (command['idempotencyKey'] !== undefined) {
    const keyError = validateIdempotencyKey(command['idempotencyKey']);
    if (keyError !== null) return keyError;
  }
  if (command['requestId'] !== undefined) {
    const requestIdError = validateRequestId(command['requestId'], limits ?? structuralBodyOptions);
    if (requestIdError !== null) return requestIdError;
  }
  const ops = command['ops'];
  if (!Array.isArray(ops)) return invalid('batch.ops must be an array');
  if (ops.length === 0) return { code: 'BATCH_EMPTY', message: 'a batch needs at least one op' };
  if (limits !== null && ops.length > limits.batchOperationsMax) {
    return { code: 'BATCH_TOO_LARGE', message: `a batch may hold at most ${limits.batchOperationsMax} ops, got ${ops.length}` };
  }
  for (let i = 0; i < ops.length; i += 1) {
    const opError = validateRowOp(ops[i], limits, i);
    if (opError !== null) return opError;
  }
  if (limits !== null) {
    // Valid JSON by now, so measuring it is safe.
    const bytes = jsonByteLength(command as JsonObject);
    if (bytes > limits.batchBytesMax) {
      return { code: 'BATCH_TOO_LARGE', message: `the batch is ${bytes} bytes, more than the limit of ${limits.batchBytesMax}` };
    }
  }
  return null;
}

/** Bytes for the log. The command must be valid; encoding is compact JSON in UTF-8. */
export function encodeCommand(command: Command): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(command));
}

export type DecodeResult = { ok: true; command: Command } | { ok: false; error: DocumentError };

/**
 * Bytes from the log back to a command, structurally validated. A failure here means a bug or
 * corruption upstream; it is returned (not thrown) so the caller decides how loudly to stop.
 */
export function decodeCommand(bytes: Uint8Array): DecodeResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    return { ok: false, error: { code: 'INVALID_ENCODING', message: `command is not UTF-8 JSON: ${String(error)}` } };
  }
  const error = validateCommand(parsed, null);
  if (error !== null) return { ok: false, error };
  decodedAndValid.add(parsed as Command);
  return { ok: true, command: parsed as Command };
}

/**
 * Commands decodeCommand parsed from log bytes and found structurally valid. The apply path
 * validates structure again (it must, for commands given to it directly); for these fresh objects,
 * which nothing else holds, that second walk over every document body would repeat the first.
 */
const decodedAndValid = new WeakSet<object>();

/** Whether `command` is an object decodeCommand made (and so owned by nobody but the apply path). */
export function isDecodedCommand(command: object): boolean {
  return decodedAndValid.has(command);
}
