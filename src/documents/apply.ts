/**
 * The document state machine's transition function: applies one committed log entry to a store.
 *
 * Not responsible for: deciding what to propose (prepare.ts), the Raft log, or timing. It reads no
 * clock and draws no randomness: every input is the store, the command and the entry's position.
 *
 * Invariants:
 * - Deterministic: the same store content, command and meta give the same result and the same new
 *   content on every node. Time comes only from command timestamps (stamped by the leader).
 * - Each call is one store transaction: a batch changes every row it names or none of them.
 * - Conditions are checked against the state as it would be after the earlier ops of the same
 *   batch, so a batch can create a document and update it, or move one by delete+put.
 * - A batch with an idempotency key that is recorded and not yet expired is not applied again;
 *   the first result is returned with `duplicate: true`. Only successful batches are recorded: a
 *   conflict changed nothing, so a retry under the same key must be free to succeed (this is what
 *   lets the server re-prepare a merge patch after a conflict and propose it again).
 * - The applied index (and its term) is recorded in the same transaction as the changes, so after
 *   a crash the store says exactly which entries it contains. Indexes must strictly increase.
 * - Expiry runs on the state machine's clock: the highest command timestamp applied so far. A new
 *   leader whose clock is behind cannot make time go backwards, so a record once swept (or once
 *   expired) stays expired for every later command; expiry decisions never contradict each other.
 * - The state-machine options (idempotencyRetentionMs, idempotencyExpiryPerApplyMax) change what
 *   is stored, so they must be the same on every node, like the code version itself.
 */

import { assert } from '../shared/assert.ts';
import { isDecodedCommand, validateCommand, type BatchCommand, type Condition, type Command } from './commands.ts';
import { cloneJson, deepFreeze, getMember, isPlainObject, jsonEqual, type JsonValue } from './json.ts';
import type { DocumentReader, DocumentStore, DocumentWriter } from './store.ts';
import { resolveDocumentOptions, type ConflictCode, type DocumentError, type DocumentOptions, type StoredDocument } from './types.ts';

/** Where the entry sits in the Raft log. */
export interface ApplyMeta {
  index: number;
  term: number;
}

/** What one op did. */
export interface OpResult {
  collection: string;
  id: string;
  /** Put: the new version. Delete: the version removed, or null if there was nothing to delete. */
  version: number | null;
  /** Log index of the entry that did it. */
  index: number;
  deleted: boolean;
}

/** One row change for a change feed: the new document, or null for a deletion. */
export interface RowChange {
  collection: string;
  id: string;
  doc: StoredDocument | null;
}

interface ResultBase {
  /** The entry applied now. */
  index: number;
  term: number;
  /** The command's requestId, so the proposing node can answer its caller. */
  requestId?: string;
}

export interface AppliedResult extends ResultBase {
  status: 'applied';
  /** True when answered from the idempotency record instead of applying again. */
  duplicate: boolean;
  /** The entry whose batch took effect: `index`, or the first one for a duplicate. */
  originalIndex: number;
  /** The timestampMs of that first command. */
  timestampMs: number;
  idempotencyKey?: string;
  /** One per op, in op order. */
  ops: OpResult[];
  /** Row changes in op order (a row can appear more than once; the last wins). Empty for a duplicate, which changed nothing. */
  changes: RowChange[];
}

export interface ConflictResult extends ResultBase {
  status: 'conflict';
  code: ConflictCode;
  message: string;
  /** The first op whose condition failed; nothing in the batch was applied. */
  opIndex: number;
  collection: string;
  id: string;
  /** Version the op saw (after earlier ops of the batch); null when the document did not exist. */
  currentVersion: number | null;
}

/** A malformed command reached the log (a bug upstream). It is skipped identically everywhere. */
export interface RejectedResult extends ResultBase {
  status: 'rejected';
  error: DocumentError;
}

/** noop and expireIdempotency. */
export interface HousekeepingResult extends ResultBase {
  status: 'housekeeping';
  /** Idempotency records dropped. */
  expired: number;
}

export type ApplyResult = AppliedResult | ConflictResult | RejectedResult | HousekeepingResult;

/** What an idempotency key remembers: enough to answer a retry, small enough to keep many. */
export interface IdempotencyRecord {
  key: string;
  /** The first command's timestampMs (what the duplicate result reports). */
  timestampMs: number;
  /** State clock when recorded; expiry counts from here. */
  recordedAtMs: number;
  index: number;
  ops: OpResult[];
}

// Meta keys. Keys sort as strings, so the expiry index pads timestamps to a fixed width
// (Number.MAX_SAFE_INTEGER has 16 digits) to make string order equal time order.
const appliedIndexKey = 'appliedIndex';
const clockKey = 'clockMs';
const recordPrefix = 'idempotency/';
const expiryPrefix = 'idempotency-expiry/';
const timestampWidth = 16;

function recordKey(key: string): string {
  return recordPrefix + key;
}

function expiryKey(timestampMs: number, key: string): string {
  return `${expiryPrefix}${String(timestampMs).padStart(timestampWidth, '0')}/${key}`;
}

/** The last applied entry; {0, 0} for a store that has applied nothing. */
export function readAppliedIndex(reader: DocumentReader): ApplyMeta {
  const value = reader.getMeta(appliedIndexKey);
  if (value === undefined) return { index: 0, term: 0 };
  assert(isPlainObject(value) && Number.isSafeInteger(value['index']) && Number.isSafeInteger(value['term']), 'corrupt appliedIndex meta record');
  return { index: value['index'] as number, term: value['term'] as number };
}

/** The state machine's clock: the highest command timestamp applied so far (0 before any). */
export function readStateClock(reader: DocumentReader): number {
  const value = reader.getMeta(clockKey);
  if (value === undefined) return 0;
  assert(typeof value === 'number' && Number.isSafeInteger(value) && value >= 0, 'corrupt clockMs meta record');
  return value;
}

function advanceClock(tx: DocumentWriter, timestampMs: number): number {
  const previous = readStateClock(tx);
  if (timestampMs <= previous) return previous;
  tx.putMeta(clockKey, timestampMs);
  return timestampMs;
}

/** A record ages out once `retentionMs` of state-clock time has passed since it was recorded. */
function isExpired(recordTimestampMs: number, nowMs: number, retentionMs: number): boolean {
  return nowMs - recordTimestampMs >= retentionMs;
}

function readRecord(reader: DocumentReader, key: string): IdempotencyRecord | null {
  const value = reader.getMeta(recordKey(key));
  if (value === undefined) return null;
  assert(isPlainObject(value), `corrupt idempotency record ${key}`);
  const { timestampMs, recordedAtMs, index, ops } = value;
  assert(
    Number.isSafeInteger(timestampMs) && Number.isSafeInteger(recordedAtMs) && Number.isSafeInteger(index) && Array.isArray(ops),
    `corrupt idempotency record ${key}`,
  );
  return {
    key,
    timestampMs: timestampMs as number,
    recordedAtMs: recordedAtMs as number,
    index: index as number,
    ops: ops.map((op) => {
      assert(isPlainObject(op), `corrupt op in idempotency record ${key}`);
      return {
        collection: op['collection'] as string,
        id: op['id'] as string,
        version: op['version'] as number | null,
        index: op['index'] as number,
        deleted: op['deleted'] as boolean,
      };
    }),
  };
}

/**
 * The live record for `key` as of time `nowMs` (or the state clock, if that is later), or null.
 * The leader may call this before preparing a request, to answer a retry without proposing;
 * apply checks again regardless.
 */
export function lookupIdempotency(
  reader: DocumentReader,
  key: string,
  nowMs: number,
  options: Partial<DocumentOptions> = {},
): IdempotencyRecord | null {
  const record = readRecord(reader, key);
  if (record === null) return null;
  // Expired records may linger until swept; they must already read as absent.
  const effectiveNowMs = Math.max(nowMs, readStateClock(reader));
  return isExpired(record.recordedAtMs, effectiveNowMs, resolveDocumentOptions(options).idempotencyRetentionMs) ? null : record;
}

/**
 * What a sweep knows about the expiry index afterwards: a lower bound on the timestamp of every
 * entry left (Infinity: none left; -Infinity: unknown, the sweep stopped at its budget).
 */
type ExpiryBound = number;

/**
 * Per store: a lower bound on the expiry index's timestamps as of an applied index. The store's
 * content at a log index is the same on every replica and after any restore to that index (it is
 * a function of the committed log prefix), so the bound stays true for as long as the store's
 * applied index is the one it was recorded at; any other index (a snapshot installed, another
 * writer, a fresh process) means "unknown" and the sweep scans. It only ever lets a sweep skip a
 * scan that would have found nothing expired, so results and content are the same as without it.
 */
interface ExpiryHint {
  index: number;
  earliestMs: ExpiryBound;
}

const expiryHints = new WeakMap<DocumentStore, ExpiryHint>();

/**
 * Drops up to `max` expired records, oldest first, through the time-ordered expiry index. An
 * index entry may outlive its record's replacement (a key reused after expiry, before the sweep
 * reached it), so the record goes only if its recordedAtMs is the one the entry was made for.
 * `known` is a lower bound on the index's timestamps (from the hint): when even that is not yet
 * expired, nothing is, and the LMDB range scan (most of the sweep's cost) is skipped.
 */
function sweepExpired(tx: DocumentWriter, nowMs: number, max: number, retentionMs: number, known: ExpiryBound): { expired: number; earliestMs: ExpiryBound } {
  if (!isExpired(known, nowMs, retentionMs)) return { expired: 0, earliestMs: known };
  let expired = 0;
  for (const entry of tx.listMeta({ prefix: expiryPrefix, limit: max + 1 })) {
    const timestampMs = Number(entry.key.slice(expiryPrefix.length, expiryPrefix.length + timestampWidth));
    assert(Number.isSafeInteger(timestampMs) && typeof entry.value === 'string', `corrupt idempotency expiry entry ${entry.key}`);
    if (!isExpired(timestampMs, nowMs, retentionMs)) return { expired, earliestMs: timestampMs };
    if (expired === max) return { expired, earliestMs: -Infinity }; // over budget: the next sweep goes on
    tx.deleteMeta(entry.key);
    const record = readRecord(tx, entry.value);
    if (record !== null && record.recordedAtMs === timestampMs) tx.deleteMeta(recordKey(entry.value));
    expired += 1;
  }
  return { expired, earliestMs: Infinity };
}

function conditionFailure(current: StoredDocument | null, condition: Condition | undefined): { code: ConflictCode; message: string } | null {
  if (condition === undefined) return null;
  if (current === null) {
    if (condition.exists === true || condition.version !== undefined || condition.fields !== undefined) {
      return { code: 'NOT_FOUND', message: 'the document does not exist' };
    }
    return null;
  }
  if (condition.exists === false) return { code: 'ALREADY_EXISTS', message: `the document already exists at version ${current.version}` };
  if (condition.version !== undefined && condition.version !== current.version) {
    return { code: 'PRECONDITION_FAILED', message: `expected version ${condition.version}, found ${current.version}` };
  }
  if (condition.fields !== undefined) {
    for (const name of Object.keys(condition.fields)) {
      const actual = getMember(current.body, name);
      // Present and equal: a missing field does not match even an expected null.
      if (actual === undefined || !jsonEqual(actual, condition.fields[name] as JsonValue)) {
        return { code: 'PRECONDITION_FAILED', message: `field '${name}' does not have the expected value` };
      }
    }
  }
  return null;
}

/**
 * Applies one committed entry. `options` are the state-machine options (see the header); pass the
 * same on every node.
 */
export function applyCommand(store: DocumentStore, command: Command, meta: ApplyMeta, options: Partial<DocumentOptions> = {}): ApplyResult {
  assert(Number.isSafeInteger(meta.index) && meta.index >= 1, `log index must be a positive integer, got ${meta.index}`);
  assert(Number.isSafeInteger(meta.term) && meta.term >= 0, `log term must be a non-negative integer, got ${meta.term}`);
  const resolved = resolveDocumentOptions(options);
  const hint = expiryHints.get(store);
  const expiry = { earliestMs: -Infinity as ExpiryBound };
  const result = store.transaction((tx) => {
    const previous = readAppliedIndex(tx);
    assert(meta.index > previous.index, `entry ${meta.index} applied after entry ${previous.index}`);
    tx.putMeta(appliedIndexKey, { index: meta.index, term: meta.term });
    expiry.earliestMs = hint !== undefined && hint.index === previous.index ? hint.earliestMs : -Infinity;
    const applied = applyInTransaction(tx, command, meta, resolved, expiry);
    if (resolved.changeRetentionEntries > 0) recordChanges(tx, applied, command, meta, resolved.changeRetentionEntries);
    return applied;
  });
  // Only once the transaction has committed: an aborted one leaves the previous index in place.
  expiryHints.set(store, { index: meta.index, earliestMs: expiry.earliestMs });
  return result;
}

function applyInTransaction(tx: DocumentWriter, command: Command, meta: ApplyMeta, resolved: DocumentOptions, expiry: { earliestMs: ExpiryBound }): ApplyResult {
  const requestId = isPlainObject(command) && typeof command['requestId'] === 'string' ? command['requestId'] : undefined;
  const base: ResultBase = requestId === undefined ? { index: meta.index, term: meta.term } : { index: meta.index, term: meta.term, requestId };
  // Structure only: configured size limits were enforced before proposing and must not be
  // re-judged here, where a changed configuration would split replicas.
  const error = validateCommand(command, null);
  if (error !== null) return { ...base, status: 'rejected', error };

  switch (command.type) {
    case 'noop':
      return { ...base, status: 'housekeeping', expired: 0 };
    case 'expireIdempotency': {
      const nowMs = advanceClock(tx, command.timestampMs);
      const swept = sweepExpired(tx, nowMs, command.max, resolved.idempotencyRetentionMs, expiry.earliestMs);
      expiry.earliestMs = swept.earliestMs;
      return { ...base, status: 'housekeeping', expired: swept.expired };
    }
    case 'batch': {
      const nowMs = advanceClock(tx, command.timestampMs);
      expiry.earliestMs = sweepExpired(tx, nowMs, resolved.idempotencyExpiryPerApplyMax, resolved.idempotencyRetentionMs, expiry.earliestMs).earliestMs;
      const result = applyBatch(tx, command, meta, nowMs, base, resolved);
      // A new record's expiry entry is stamped nowMs.
      if (result.status === 'applied' && !result.duplicate && command.idempotencyKey !== undefined) expiry.earliestMs = Math.min(expiry.earliestMs, nowMs);
      return result;
    }
  }
}

const changesPrefix = 'changes/';
const changeIndexWidth = 16;

export function changeRecordKey(index: number): string {
  return `${changesPrefix}${String(index).padStart(changeIndexWidth, '0')}`;
}

/** One entry's row changes, kept in the replicated state for the change feed. */
export interface ChangeRecord {
  index: number;
  term: number;
  timestampMs: number;
  changes: RowChange[];
}

/**
 * Keeps the change feed inside the replicated state: every applied batch that changed rows
 * records them under `changes/<index>` in the same transaction as the rows themselves, so the
 * feed survives restarts and arrives with snapshots, and every replica serves the same feed.
 * Records older than `retention` log positions are dropped as the window moves (and stragglers
 * by a periodic sweep), which is deterministic because it depends only on the index being applied.
 */
function recordChanges(tx: DocumentWriter, result: ApplyResult, command: Command, meta: ApplyMeta, retention: number): void {
  if (result.status === 'applied' && !result.duplicate && result.changes.length > 0 && command.type === 'batch') {
    const record: ChangeRecord = { index: meta.index, term: meta.term, timestampMs: command.timestampMs, changes: result.changes };
    tx.putMeta(changeRecordKey(meta.index), record as unknown as JsonValue);
  }
  // Entries are applied one index at a time, so the record leaving the window now is the one at
  // `index - retention`: a point delete, no scan. Records left behind by a shorter retention
  // setting (or state restored from elsewhere) are swept by a scan every changeSweepEvery entries.
  const oldestKept = meta.index - retention;
  if (oldestKept >= 1) tx.deleteMeta(changeRecordKey(oldestKept));
  if (meta.index % changeSweepEvery !== 0) return;
  // Usually there is no straggler: look at the oldest key alone before listing a page of them.
  const oldest = tx.listMetaKeys({ prefix: changesPrefix, limit: 1 })[0];
  if (oldest === undefined || Number(oldest.slice(changesPrefix.length)) > oldestKept) return;
  for (const key of tx.listMetaKeys({ prefix: changesPrefix, limit: changeSweepEvery })) {
    const index = Number(key.slice(changesPrefix.length));
    if (index > oldestKept) break;
    tx.deleteMeta(key);
  }
}

const changeSweepEvery = 64;

/** Change records with index > after, oldest first, at most limit. */
export function readChanges(reader: DocumentReader, after: number, limit: number): ChangeRecord[] {
  const startAfter = changeRecordKey(after);
  return reader.listMeta({ prefix: changesPrefix, startAfter, limit }).map((entry) => entry.value as unknown as ChangeRecord);
}

/** The oldest change record still held, or null. */
export function oldestChangeIndex(reader: DocumentReader): number | null {
  const first = reader.listMetaKeys({ prefix: changesPrefix, limit: 1 })[0];
  return first === undefined ? null : Number(first.slice(changesPrefix.length));
}

function applyBatch(tx: DocumentWriter, command: BatchCommand, meta: ApplyMeta, nowMs: number, base: ResultBase, options: DocumentOptions): ApplyResult {
  const key = command.idempotencyKey;
  if (key !== undefined) {
    const record = lookupIdempotency(tx, key, nowMs, options);
    if (record !== null) {
      return {
        ...base,
        status: 'applied',
        duplicate: true,
        originalIndex: record.index,
        timestampMs: record.timestampMs,
        idempotencyKey: key,
        ops: record.ops,
        changes: [],
      };
    }
  }

  // Phase 1: decide every op against a private overlay, writing nothing, so a failing op leaves
  // the store untouched without relying on rollback.
  const overlay = new Map<string, StoredDocument | null>();
  const current = (collection: string, id: string): StoredDocument | null => {
    const rowKey = `${collection}/${id}`;
    return overlay.has(rowKey) ? (overlay.get(rowKey) as StoredDocument | null) : tx.get(collection, id);
  };
  const ops: OpResult[] = [];
  const writes: Array<{ collection: string; id: string; doc: StoredDocument | null }> = [];
  for (let opIndex = 0; opIndex < command.ops.length; opIndex += 1) {
    const op = command.ops[opIndex];
    assert(op !== undefined, 'op index out of range');
    const existing = current(op.collection, op.id);
    const failure = conditionFailure(existing, op.condition);
    if (failure !== null) {
      return {
        ...base,
        status: 'conflict',
        ...failure,
        opIndex,
        collection: op.collection,
        id: op.id,
        currentVersion: existing?.version ?? null,
      };
    }
    const rowKey = `${op.collection}/${op.id}`;
    if (op.action === 'put') {
      const version = existing === null ? 1 : existing.version + 1;
      assert(Number.isSafeInteger(version), 'document version overflow');
      const doc: StoredDocument = {
        collection: op.collection,
        id: op.id,
        body: op.body,
        version,
        index: meta.index,
        updatedAtMs: command.timestampMs,
      };
      overlay.set(rowKey, doc);
      writes.push({ collection: op.collection, id: op.id, doc });
      ops.push({ collection: op.collection, id: op.id, version, index: meta.index, deleted: false });
    } else if (existing !== null) {
      overlay.set(rowKey, null);
      writes.push({ collection: op.collection, id: op.id, doc: null });
      ops.push({ collection: op.collection, id: op.id, version: existing.version, index: meta.index, deleted: true });
    } else {
      // Deleting nothing is a successful no-op; it writes nothing and feeds no change.
      ops.push({ collection: op.collection, id: op.id, version: null, index: meta.index, deleted: false });
    }
  }

  // Phase 2: write. Changes carry the store's frozen copies, not the command's objects.
  const changes: RowChange[] = [];
  for (const write of writes) {
    if (write.doc === null) {
      tx.delete(write.collection, write.id);
      changes.push({ collection: write.collection, id: write.id, doc: null });
    } else {
      tx.put(write.doc);
      // The change carries a frozen document equal to the stored one. A command decodeCommand made
      // belongs to this apply alone, so its body is frozen in place; a caller's is copied first.
      const body = isDecodedCommand(command) ? write.doc.body : cloneJson(write.doc.body);
      const doc = write.doc;
      const frozen: StoredDocument = { collection: doc.collection, id: doc.id, body: deepFreeze(body), version: doc.version, index: doc.index, updatedAtMs: doc.updatedAtMs };
      changes.push({ collection: write.collection, id: write.id, doc: Object.freeze(frozen) });
    }
  }

  if (key !== undefined) {
    const record: Omit<IdempotencyRecord, 'key'> = { timestampMs: command.timestampMs, recordedAtMs: nowMs, index: meta.index, ops };
    tx.putMeta(recordKey(key), record as unknown as JsonValue);
    tx.putMeta(expiryKey(nowMs, key), key);
  }

  // Built member by member: object spreads here cost more than the rest of a small batch (profiled).
  const result: AppliedResult = { index: base.index, term: base.term, status: 'applied', duplicate: false, originalIndex: meta.index, timestampMs: command.timestampMs, ops, changes };
  if (base.requestId !== undefined) result.requestId = base.requestId;
  if (key !== undefined) result.idempotencyKey = key;
  return result;
}
