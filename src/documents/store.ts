/**
 * The storage seam of the document state machine: a small synchronous interface (documents by
 * collection and id in id order, plus small system "meta" records by key) and an in-memory
 * implementation for the simulator and tests. An LMDB-backed store will implement the same
 * interface later, which is why everything is synchronous and key-ordered.
 *
 * Not responsible for: validating user input (types.ts), conditions, versions or idempotency
 * (apply.ts). The store writes what it is given; wrong shapes are programmer errors and assert.
 *
 * Invariants:
 * - Reads return frozen values: a caller cannot mutate stored state through a returned object,
 *   and a caller mutating what it passed to put() afterwards does not change the store (put copies).
 * - A transaction is all-or-nothing: writes are staged and become visible to others only when the
 *   callback returns; if it throws, nothing is applied. Reads inside it see its own writes.
 * - An empty collection does not exist (it is removed with its last document), so content that
 *   reads the same also snapshots and digests the same.
 * - snapshot() and digest() depend only on content, never on the history that produced it.
 */

import { assert } from '../shared/assert.ts';
import { canonicalJson, checkJson, cloneJson, deepFreeze, Fnv1a64, isPlainObject, jsonDepthHardMax, type JsonObject, type JsonValue } from './json.ts';
import type { DocumentError, ListPage, ListQuery, StoredDocument } from './types.ts';

export interface MetaEntry {
  key: string;
  value: JsonValue;
}

/** Meta keys in ascending order; same bound semantics as ListQuery. */
export interface MetaListQuery {
  prefix?: string;
  startAfter?: string;
  limit: number;
}

export interface DocumentReader {
  get(collection: string, id: string): StoredDocument | null;
  /** Documents of one collection in ascending id order; see ListQuery for the bounds. */
  list(query: ListQuery): ListPage;
  /** undefined when absent (null is a storable JSON value). */
  getMeta(key: string): JsonValue | undefined;
  listMeta(query: MetaListQuery): MetaEntry[];
  /** The keys listMeta would return, without reading their values (cheap scans of large records). */
  listMetaKeys(query: MetaListQuery): string[];
}

export interface DocumentWriter extends DocumentReader {
  put(doc: StoredDocument): void;
  /** Returns whether a document was there. */
  delete(collection: string, id: string): boolean;
  putMeta(key: string, value: JsonValue): void;
  deleteMeta(key: string): boolean;
}

export interface DocumentStore extends DocumentWriter {
  /**
   * Runs `fn` with a writer whose writes are applied atomically when it returns, or not at all if
   * it throws. Must be synchronous (no promises) and not nested. Writes directly on the store
   * while a transaction is open are a programmer error.
   */
  transaction<T>(fn: (tx: DocumentWriter) => T): T;
}

// ---------------------------------------------------------------------------------------------
// Sorted map: a Map for lookups plus a sorted key array for ordered scans. Inserts are O(n), which
// is fine for a simulator-sized store and keeps the code obviously correct.

function lowerBound(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((keys[mid] as string) < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function upperBound(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((keys[mid] as string) <= key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

class SortedMap<V> {
  private readonly keys: string[] = [];
  private readonly values = new Map<string, V>();

  get size(): number {
    return this.keys.length;
  }

  get(key: string): V | undefined {
    return this.values.get(key);
  }

  has(key: string): boolean {
    return this.values.has(key);
  }

  set(key: string, value: V): void {
    if (!this.values.has(key)) this.keys.splice(lowerBound(this.keys, key), 0, key);
    this.values.set(key, value);
  }

  delete(key: string): boolean {
    if (!this.values.delete(key)) return false;
    const at = lowerBound(this.keys, key);
    assert(this.keys[at] === key, 'sorted map key array out of step with its map');
    this.keys.splice(at, 1);
    return true;
  }

  sortedKeys(): readonly string[] {
    return this.keys;
  }
}

/** Staged deletion marker in a transaction overlay (null and undefined are both meaningful data). */
const removed: unique symbol = Symbol('removed');
type Staged<V> = V | typeof removed;

/** A key range of a list query; shared by every DocumentStore so they filter identically. */
export interface KeyRange {
  prefix?: string | undefined;
  startAfter?: string | undefined;
  start?: string | undefined;
  end?: string | undefined;
}

export function inRange(key: string, range: KeyRange): boolean {
  if (range.start !== undefined && key < range.start) return false;
  if (range.startAfter !== undefined && key <= range.startAfter) return false;
  if (range.end !== undefined && key >= range.end) return false;
  if (range.prefix !== undefined && !key.startsWith(range.prefix)) return false;
  return true;
}

/**
 * Ordered scan over committed entries with an optional overlay of staged writes on top. Returns
 * up to `limit` entries and whether more match (found by reading one extra).
 */
function scan<V>(
  base: SortedMap<V> | undefined,
  overlay: ReadonlyMap<string, Staged<V>> | undefined,
  range: KeyRange,
  limit: number,
): { entries: Array<[string, V]>; more: boolean } {
  assert(Number.isSafeInteger(limit) && limit >= 1, `scan limit must be a positive integer, got ${limit}`);
  const baseKeys = base?.sortedKeys() ?? [];
  let i = 0;
  if (range.start !== undefined) i = Math.max(i, lowerBound(baseKeys, range.start));
  if (range.startAfter !== undefined) i = Math.max(i, upperBound(baseKeys, range.startAfter));
  if (range.prefix !== undefined) i = Math.max(i, lowerBound(baseKeys, range.prefix));
  const staged = overlay === undefined ? [] : [...overlay.keys()].filter((key) => inRange(key, range)).sort();
  let j = 0;
  const entries: Array<[string, V]> = [];
  while (entries.length <= limit) {
    let baseKey = baseKeys[i];
    // Past the lower bound, keys leave the range for good once they leave the prefix or reach end.
    if (baseKey !== undefined && !inRange(baseKey, range)) baseKey = undefined;
    const stagedKey = staged[j];
    if (baseKey === undefined && stagedKey === undefined) break;
    if (stagedKey !== undefined && (baseKey === undefined || stagedKey <= baseKey)) {
      if (stagedKey === baseKey) i += 1; // the staged write shadows the committed entry
      j += 1;
      const value = overlay?.get(stagedKey);
      assert(value !== undefined || overlay?.has(stagedKey) === true, 'staged key without a value');
      if (value !== removed) entries.push([stagedKey, value as V]);
    } else {
      assert(baseKey !== undefined, 'scan merge lost its base key');
      i += 1;
      entries.push([baseKey, base?.get(baseKey) as V]);
    }
  }
  const more = entries.length > limit;
  if (more) entries.length = limit;
  return { entries, more };
}

// ---------------------------------------------------------------------------------------------

function checkStoredDocument(doc: StoredDocument): void {
  assert(typeof doc.collection === 'string' && doc.collection.length > 0 && !doc.collection.includes('/'), 'document collection must be a non-empty string without /');
  assert(typeof doc.id === 'string' && doc.id.length > 0 && !doc.id.includes('/'), 'document id must be a non-empty string without /');
  assert(Number.isSafeInteger(doc.version) && doc.version >= 1, 'document version must be a positive integer');
  assert(Number.isSafeInteger(doc.index) && doc.index >= 0, 'document index must be a non-negative integer');
  assert(Number.isSafeInteger(doc.updatedAtMs) && doc.updatedAtMs >= 0, 'document updatedAtMs must be a non-negative integer');
  assert(isPlainObject(doc.body), 'document body must be a JSON object');
}

/** The store's own immutable copy; also drops any extra fields a caller's object carried. */
function freezeDocument(doc: StoredDocument): StoredDocument {
  checkStoredDocument(doc);
  return Object.freeze({
    collection: doc.collection,
    id: doc.id,
    body: deepFreeze(cloneJson(doc.body)),
    version: doc.version,
    index: doc.index,
    updatedAtMs: doc.updatedAtMs,
  });
}

function freezeMeta(key: string, value: JsonValue): JsonValue {
  assert(typeof key === 'string' && key.length > 0, 'meta key must be a non-empty string');
  assert(checkJson(value, jsonDepthHardMax) === null, `meta value for ${key} must be JSON`);
  return deepFreeze(cloneJson(value));
}

function toPage(entries: Array<[string, StoredDocument]>, more: boolean): ListPage {
  const documents = entries.map(([, doc]) => doc);
  return { documents, nextCursor: more ? (documents[documents.length - 1]?.id ?? null) : null };
}

const snapshotFormat = 'understudy/documents-snapshot';
const snapshotVersion = 1;

export class MemoryDocumentStore implements DocumentStore {
  private collections = new Map<string, SortedMap<StoredDocument>>();
  private meta = new SortedMap<JsonValue>();
  private openTransaction: MemoryTransaction | null = null;

  get(collection: string, id: string): StoredDocument | null {
    return this.collections.get(collection)?.get(id) ?? null;
  }

  list(query: ListQuery): ListPage {
    const { entries, more } = scan(this.collections.get(query.collection), undefined, query, query.limit);
    return toPage(entries, more);
  }

  getMeta(key: string): JsonValue | undefined {
    return this.meta.get(key);
  }

  listMeta(query: MetaListQuery): MetaEntry[] {
    return scan(this.meta, undefined, query, query.limit).entries.map(([key, value]) => ({ key, value }));
  }

  listMetaKeys(query: MetaListQuery): string[] {
    return scan(this.meta, undefined, query, query.limit).entries.map(([key]) => key);
  }

  put(doc: StoredDocument): void {
    this.assertNoTransaction();
    this.commitDocument(doc.collection, doc.id, freezeDocument(doc));
  }

  delete(collection: string, id: string): boolean {
    this.assertNoTransaction();
    return this.commitDocument(collection, id, removed);
  }

  putMeta(key: string, value: JsonValue): void {
    this.assertNoTransaction();
    this.meta.set(key, freezeMeta(key, value));
  }

  deleteMeta(key: string): boolean {
    this.assertNoTransaction();
    return this.meta.delete(key);
  }

  transaction<T>(fn: (tx: DocumentWriter) => T): T {
    assert(this.openTransaction === null, 'transactions do not nest');
    const tx = new MemoryTransaction(this);
    this.openTransaction = tx;
    try {
      const result = fn(tx);
      assert(!(result instanceof Promise), 'transaction callbacks must be synchronous');
      tx.commit();
      return result;
    } finally {
      tx.close();
      this.openTransaction = null;
    }
  }

  /** Collection names that hold at least one document, ascending. */
  collectionNames(): string[] {
    return [...this.collections.keys()].sort();
  }

  documentCount(): number {
    let count = 0;
    for (const documents of this.collections.values()) count += documents.size;
    return count;
  }

  /**
   * Whole content as bytes: documents ordered by (collection, id), then meta by key. Bodies keep
   * their member order so a node restored from a snapshot serves documents exactly as written.
   */
  snapshot(): Uint8Array {
    this.assertNoTransaction();
    const documents: StoredDocument[] = [];
    for (const name of this.collectionNames()) {
      const collection = this.collections.get(name);
      assert(collection !== undefined, 'collection vanished while listing');
      for (const id of collection.sortedKeys()) documents.push(collection.get(id) as StoredDocument);
    }
    const meta = this.meta.sortedKeys().map((key) => [key, this.meta.get(key) as JsonValue]);
    return new TextEncoder().encode(JSON.stringify({ format: snapshotFormat, version: snapshotVersion, documents, meta }));
  }

  /**
   * Replaces the whole content with a snapshot. A malformed snapshot is reported (and the store
   * left untouched) rather than asserted, so a caller can refuse a bad transfer and fetch again.
   */
  restore(bytes: Uint8Array): DocumentError | null {
    this.assertNoTransaction();
    const invalid = (message: string): DocumentError => ({ code: 'INVALID_SNAPSHOT', message });
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
    } catch (error) {
      return invalid(`snapshot is not UTF-8 JSON: ${String(error)}`);
    }
    if (!isPlainObject(parsed) || parsed['format'] !== snapshotFormat || parsed['version'] !== snapshotVersion) {
      return invalid(`snapshot is not a ${snapshotFormat} version ${snapshotVersion}`);
    }
    const documentsIn = parsed['documents'];
    const metaIn = parsed['meta'];
    if (!Array.isArray(documentsIn) || !Array.isArray(metaIn)) return invalid('snapshot lacks documents or meta arrays');

    const collections = new Map<string, SortedMap<StoredDocument>>();
    let previous: { collection: string; id: string } | null = null;
    for (const item of documentsIn) {
      const problem = snapshotDocumentProblem(item);
      if (problem !== null) return invalid(problem);
      const doc = item as StoredDocument;
      if (previous !== null && (doc.collection < previous.collection || (doc.collection === previous.collection && doc.id <= previous.id))) {
        return invalid(`snapshot documents out of order at ${doc.collection}/${doc.id}`);
      }
      previous = doc;
      let collection = collections.get(doc.collection);
      if (collection === undefined) {
        collection = new SortedMap();
        collections.set(doc.collection, collection);
      }
      collection.set(doc.id, freezeDocument(doc));
    }
    const meta = new SortedMap<JsonValue>();
    let previousKey: string | null = null;
    for (const item of metaIn) {
      if (!Array.isArray(item) || item.length !== 2 || typeof item[0] !== 'string' || item[0].length === 0) {
        return invalid('snapshot meta entries must be [key, value] pairs');
      }
      const [key, value] = item as [string, unknown];
      if (previousKey !== null && key <= previousKey) return invalid(`snapshot meta out of order at ${key}`);
      if (checkJson(value, jsonDepthHardMax) !== null) return invalid(`snapshot meta ${key} is not JSON`);
      previousKey = key;
      meta.set(key, freezeMeta(key, value as JsonValue));
    }
    this.collections = collections;
    this.meta = meta;
    return null;
  }

  /**
   * FNV-1a 64 over a canonical encoding (sorted object keys) of all documents and meta, as 16 hex
   * digits. Equal content gives equal digests whatever order members were written in.
   */
  digest(): string {
    this.assertNoTransaction();
    const hash = new Fnv1a64();
    hash.updateString(`${snapshotFormat}/${snapshotVersion}\n`);
    for (const name of this.collectionNames()) {
      const collection = this.collections.get(name);
      assert(collection !== undefined, 'collection vanished while hashing');
      for (const id of collection.sortedKeys()) {
        const doc = collection.get(id) as StoredDocument;
        hash.updateString(canonicalJson(doc as unknown as JsonObject));
        hash.updateString('\n');
      }
    }
    hash.updateString('meta\n');
    for (const key of this.meta.sortedKeys()) {
      hash.updateString(canonicalJson([key, this.meta.get(key) as JsonValue]));
      hash.updateString('\n');
    }
    return hash.hex();
  }

  // --- used by MemoryTransaction -----------------------------------------------------------

  /** @internal */
  collectionMap(collection: string): SortedMap<StoredDocument> | undefined {
    return this.collections.get(collection);
  }

  /** @internal */
  metaMap(): SortedMap<JsonValue> {
    return this.meta;
  }

  /** @internal Writes one already-frozen document (or removal); returns whether one was there. */
  commitDocument(collectionName: string, id: string, doc: Staged<StoredDocument>): boolean {
    let collection = this.collections.get(collectionName);
    if (doc === removed) {
      if (collection === undefined) return false;
      const existed = collection.delete(id);
      if (collection.size === 0) this.collections.delete(collectionName);
      return existed;
    }
    if (collection === undefined) {
      collection = new SortedMap();
      this.collections.set(collectionName, collection);
    }
    const existed = collection.has(id);
    collection.set(id, doc);
    return existed;
  }

  private assertNoTransaction(): void {
    assert(this.openTransaction === null, 'direct store access while a transaction is open');
  }
}

function snapshotDocumentProblem(item: unknown): string | null {
  if (!isPlainObject(item)) return 'snapshot document is not an object';
  const { collection, id, body, version, index, updatedAtMs } = item;
  if (typeof collection !== 'string' || collection.length === 0 || collection.includes('/')) return 'snapshot document has a bad collection';
  if (typeof id !== 'string' || id.length === 0 || id.includes('/')) return `snapshot document in ${collection} has a bad id`;
  const where = `${collection}/${id}`;
  if (!isPlainObject(body) || checkJson(body, jsonDepthHardMax) !== null) return `snapshot document ${where} has a bad body`;
  for (const [name, value, min] of [['version', version, 1], ['index', index, 0], ['updatedAtMs', updatedAtMs, 0]] as const) {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) return `snapshot document ${where} has a bad ${name}`;
  }
  return null;
}

/** Staged writes over a MemoryDocumentStore; see DocumentStore.transaction. */
class MemoryTransaction implements DocumentWriter {
  private readonly documents = new Map<string, Map<string, Staged<StoredDocument>>>();
  private readonly meta = new Map<string, Staged<JsonValue>>();
  private open = true;

  constructor(private readonly store: MemoryDocumentStore) {}

  get(collection: string, id: string): StoredDocument | null {
    this.assertOpen();
    const staged = this.documents.get(collection);
    if (staged?.has(id) === true) {
      const doc = staged.get(id) as Staged<StoredDocument>;
      return doc === removed ? null : doc;
    }
    return this.store.collectionMap(collection)?.get(id) ?? null;
  }

  list(query: ListQuery): ListPage {
    this.assertOpen();
    const { entries, more } = scan(this.store.collectionMap(query.collection), this.documents.get(query.collection), query, query.limit);
    return toPage(entries, more);
  }

  getMeta(key: string): JsonValue | undefined {
    this.assertOpen();
    if (this.meta.has(key)) {
      const value = this.meta.get(key) as Staged<JsonValue>;
      return value === removed ? undefined : value;
    }
    return this.store.metaMap().get(key);
  }

  listMeta(query: MetaListQuery): MetaEntry[] {
    this.assertOpen();
    return scan(this.store.metaMap(), this.meta, query, query.limit).entries.map(([key, value]) => ({ key, value }));
  }

  listMetaKeys(query: MetaListQuery): string[] {
    this.assertOpen();
    return scan(this.store.metaMap(), this.meta, query, query.limit).entries.map(([key]) => key);
  }

  put(doc: StoredDocument): void {
    this.assertOpen();
    this.stagedCollection(doc.collection).set(doc.id, freezeDocument(doc));
  }

  delete(collection: string, id: string): boolean {
    this.assertOpen();
    const existed = this.get(collection, id) !== null;
    this.stagedCollection(collection).set(id, removed);
    return existed;
  }

  putMeta(key: string, value: JsonValue): void {
    this.assertOpen();
    this.meta.set(key, freezeMeta(key, value));
  }

  deleteMeta(key: string): boolean {
    this.assertOpen();
    const existed = this.getMeta(key) !== undefined;
    this.meta.set(key, removed);
    return existed;
  }

  /** Applies every staged write. Nothing here can fail on valid staged data, so it is atomic. */
  commit(): void {
    this.assertOpen();
    for (const [collection, staged] of this.documents) {
      for (const [id, doc] of staged) this.store.commitDocument(collection, id, doc);
    }
    const meta = this.store.metaMap();
    for (const [key, value] of this.meta) {
      if (value === removed) meta.delete(key);
      else meta.set(key, value);
    }
  }

  close(): void {
    this.open = false;
  }

  private stagedCollection(collection: string): Map<string, Staged<StoredDocument>> {
    let staged = this.documents.get(collection);
    if (staged === undefined) {
      staged = new Map();
      this.documents.set(collection, staged);
    }
    return staged;
  }

  private assertOpen(): void {
    assert(this.open, 'transaction used after it ended');
  }
}
