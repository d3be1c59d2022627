/**
 * LmdbDocumentStore: the DocumentStore of documents/store.ts kept in its own LMDB environment
 * (`<dir>/env`, named databases `docs` and `meta`), with exactly the semantics of
 * MemoryDocumentStore: the same ordering of list/listMeta and cursors, all-or-nothing transactions
 * whose reads see their own writes, frozen return values, and byte-identical snapshot() and
 * digest() for the same content, so replicas can be compared across implementations.
 *
 * Not responsible for: validating user input or applying commands (documents/), or being the
 * durable source of truth. The Raft log plus the latest snapshot (LmdbLogStorage) are; this store
 * is a materialised view of them that can always be rebuilt.
 *
 * Sync mode (option `durability`):
 * - 'rebuildable' (default): the environment is opened with lmdb-js `noSync: true`, so a commit
 *   (`transactionSync`) writes its pages into the OS page cache and never fsyncs (strace shows no
 *   fdatasync; README: noSync "does not explicitly flush data to disk at all"). This is safe only
 *   because the document state can be rebuilt from the durable log plus snapshot, and because:
 *   * A process crash (kill -9) loses nothing committed: the pages are in the kernel's page cache,
 *     and LMDB's copy-on-write commit (data pages, then the meta page) is atomic as seen through
 *     that cache. The applied index is stored by apply.ts in the same transaction as the changes,
 *     so the store knows exactly which log entry to replay from.
 *   * An OS crash or power loss may leave the file torn (LMDB documents that MDB_NOSYNC "can
 *     corrupt the database" then). So open() writes a durable marker saying the store is open and
 *     under which boot id (/proc/sys/kernel/random/boot_id); close() fsyncs the data file and
 *     marks it closed. If open() finds the marker still "open" from another boot (or no boot id
 *     is available), the environment is discarded and recreated empty, and `recovery` says
 *     'crash-discarded': the caller must restore the latest snapshot and replay the log.
 * - 'fsync': default transactionSync flags, "synchronous commits that are flushed to disk before
 *   returning" (lmdb-js index.d.ts): every transaction is durable when it returns, at the cost of
 *   an fdatasync on the main thread per transaction. The marker is still kept, and an unclean
 *   shutdown is always trusted.
 * In both modes the caller's start-up is the same: if the store's applied index is below the
 * snapshot's, restore the snapshot; then apply the committed log entries after the applied index.
 *
 * Key encoding: JavaScript orders strings by UTF-16 code unit, LMDB orders keys by bytes, so keys
 * are UTF-16 big-endian (2 bytes per code unit; byte order then equals code unit order, for any
 * string, lone surrogates included). A document key is collection ‖ terminator ‖ id, with code
 * unit 0x0000 in the collection escaped as 0x0000 0x0001 and the terminator 0x0000 0x0000, which
 * sorts below every escaped or plain unit; so keys order by (collection, id) exactly like
 * MemoryDocumentStore's collectionNames() then ids. Meta keys are UTF-16BE of the key. LMDB
 * limits keys to 1978 bytes (~960 code units of collection + id); writing a longer key asserts,
 * reading one finds nothing (the memory store has no limit; validated names are far shorter).
 *
 * Value encoding: JSON text (UTF-8). Not msgpackr: its decoder renames a "__proto__" member, and
 * JSON.parse keeps it as an own data member like the rest of documents/. Negative zero is written
 * as "-0" (JSON.parse reads it back as -0), so get() returns exactly what put() stored.
 *
 * Invariants:
 * - Everything is synchronous; a transaction is one LMDB write transaction (`transactionSync`),
 *   aborted as a whole if the callback throws.
 * - Reads return frozen values; put copies its input (it is serialised).
 * - An empty collection does not exist: there is no per-collection record, only documents.
 * - While a transaction is open, direct reads on the store see the committed state (through a read
 *   transaction begun for them), like MemoryDocumentStore; direct writes are programmer errors.
 */
import fs from 'node:fs';
import path from 'node:path';
import { open, type Database, type RootDatabase, type Transaction } from 'lmdb';
import { assert } from '../../shared/assert.ts';
import { canonicalJson, checkJson, deepFreeze, Fnv1a64, isPlainObject, jsonDepthHardMax, type JsonObject, type JsonValue } from '../../documents/json.ts';
import { MemoryDocumentStore, inRange, type DocumentStore, type DocumentWriter, type KeyRange, type MetaEntry, type MetaListQuery } from '../../documents/store.ts';
import type { DocumentError, ListPage, ListQuery, StoredDocument } from '../../documents/types.ts';
import { StorageCorruptionError, StorageIoError } from '../errors.ts';
import { fsyncFile, writeFileDurably } from './fs_util.ts';

export type DocumentDurability = 'rebuildable' | 'fsync';

export interface LmdbDocumentStoreOptions {
  readonly durability?: DocumentDurability;
}

/**
 * What open() found: a new directory, a cleanly closed store, a store left open by a crash that is
 * trusted (same boot, or every commit was synced), or one that was discarded after an OS crash.
 */
export type DocumentStoreRecovery = 'fresh' | 'clean' | 'crash-trusted' | 'crash-discarded';

// Must equal store.ts's constants: snapshot() and digest() are compared across implementations.
const snapshotFormat = 'understudy/documents-snapshot';
const snapshotVersion = 1;

const markerName = 'store-state.json';
const bootIdFile = '/proc/sys/kernel/random/boot_id';

type BinaryDb = Database<Buffer, Buffer>;

interface Marker {
  readonly open: boolean;
  readonly bootId: string | null;
  readonly durability: DocumentDurability;
}

// ---------------------------------------------------------------------------------------------
// Keys.

function utf16be(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf16le'); // code units as-is, lone surrogates included
  return bytes.swap16();
}

function fromUtf16be(bytes: Uint8Array): string {
  return Buffer.from(bytes).swap16().toString('utf16le');
}

const terminator = Buffer.from([0, 0, 0, 0]);

/** collection ‖ terminator: the prefix of every key of that collection (see header). */
function collectionPrefix(collection: string): Buffer {
  const units: number[] = [];
  for (let i = 0; i < collection.length; i += 1) {
    const unit = collection.charCodeAt(i);
    units.push(unit);
    if (unit === 0) units.push(1);
  }
  const bytes = Buffer.allocUnsafe(units.length * 2 + terminator.length);
  units.forEach((unit, i) => bytes.writeUInt16BE(unit, i * 2));
  terminator.copy(bytes, units.length * 2);
  return bytes;
}

function documentKey(prefix: Buffer, id: string): Buffer {
  return Buffer.concat([prefix, utf16be(id)]);
}

/** The smallest key above every key of `prefix`'s collection and at most any later collection's. */
function afterCollection(prefix: Buffer): Buffer {
  const next = Buffer.from(prefix);
  next[next.length - 1] = 1; // terminator 0000 0000 → 0000 0001
  return next;
}

/** Splits a document key into (collection, id); null if it is not a well-formed key. */
function splitDocumentKey(key: Uint8Array): { collection: string; id: string; prefixBytes: number } | null {
  const units: number[] = [];
  for (let i = 0; i + 1 < key.length; i += 2) {
    const unit = ((key[i] as number) << 8) | (key[i + 1] as number);
    if (unit !== 0) {
      units.push(unit);
      continue;
    }
    const marker = i + 3 < key.length ? (((key[i + 2] as number) << 8) | (key[i + 3] as number)) : -1;
    if (marker === 1) {
      units.push(0);
      i += 2;
      continue;
    }
    if (marker !== 0 || (key.length - i - 4) % 2 !== 0) return null;
    return { collection: String.fromCharCode(...units), id: fromUtf16be(key.subarray(i + 4)), prefixBytes: i + 4 };
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Values.

function hasNegativeZero(value: JsonValue): boolean {
  if (typeof value === 'number') return Object.is(value, -0);
  if (value === null || typeof value !== 'object') return false;
  if (Array.isArray(value)) return value.some(hasNegativeZero);
  return Object.keys(value).some((key) => hasNegativeZero(value[key] as JsonValue));
}

/** JSON text that JSON.parse turns back into an identical value, -0 included. */
function exactJson(value: JsonValue): string {
  if (!hasNegativeZero(value)) return JSON.stringify(value);
  if (typeof value === 'number') return '-0';
  if (Array.isArray(value)) return `[${value.map(exactJson).join(',')}]`;
  const object = value as JsonObject;
  return `{${Object.keys(object).map((key) => `${JSON.stringify(key)}:${exactJson(object[key] as JsonValue)}`).join(',')}}`;
}

/**
 * A stored document is `[body,version,index,updatedAtMs]`: the offset of the comma before
 * `version` (the three numbers hold no commas), or -1 if the value does not look like that.
 */
function trailingFieldsStart(value: Buffer): number {
  if (value[0] !== 0x5b || value[value.length - 1] !== 0x5d) return -1;
  let commas = 0;
  for (let i = value.length - 2; i > 0; i -= 1) {
    const byte = value[i] as number;
    if (byte === 0x2c) {
      commas += 1;
      if (commas === 3) return i;
    } else if (!((byte >= 0x30 && byte <= 0x39) || byte === 0x2d || byte === 0x2e || byte === 0x65 || byte === 0x45 || byte === 0x2b)) {
      return -1;
    }
  }
  return -1;
}

/** Could this JSON text hold a negative zero (`-0` not followed by `.`, a digit or an exponent)? */
function mayHoldNegativeZero(value: Buffer): boolean {
  for (let at = value.indexOf('-0'); at !== -1; at = value.indexOf('-0', at + 2)) {
    const next = value[at + 2];
    if (next === undefined || !(next === 0x2e || (next >= 0x30 && next <= 0x39) || next === 0x65 || next === 0x45)) return true;
  }
  return false;
}

/** An output buffer that grows by doubling; drain() hands out the bytes written since the last drain and reuses the buffer. */
class ByteWriter {
  private buffer: Buffer;
  private length = 0;

  constructor(initialBytes: number) {
    this.buffer = Buffer.allocUnsafe(initialBytes);
  }

  text(value: string): void {
    this.reserve(Buffer.byteLength(value));
    this.length += this.buffer.write(value, this.length);
  }

  bytes(source: Uint8Array, start: number, end: number): void {
    this.reserve(end - start);
    this.buffer.set(source.subarray(start, end), this.length);
    this.length += end - start;
  }

  get size(): number {
    return this.length;
  }

  /** The bytes written since the last drain, as a view valid until the next write; empties the writer. */
  drain(): Buffer {
    const view = this.buffer.subarray(0, this.length);
    this.length = 0;
    return view;
  }

  private reserve(more: number): void {
    if (this.length + more <= this.buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.length + more));
    this.buffer.copy(grown, 0, 0, this.length);
    this.buffer = grown;
  }
}

function encodeJson(text: string): Buffer {
  return Buffer.from(text, 'utf8');
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

// ---------------------------------------------------------------------------------------------
// Checks shared with MemoryDocumentStore (store.ts keeps its copies private).

function checkStoredDocument(doc: StoredDocument): void {
  assert(typeof doc.collection === 'string' && doc.collection.length > 0 && !doc.collection.includes('/'), 'document collection must be a non-empty string without /');
  assert(typeof doc.id === 'string' && doc.id.length > 0 && !doc.id.includes('/'), 'document id must be a non-empty string without /');
  assert(Number.isSafeInteger(doc.version) && doc.version >= 1, 'document version must be a positive integer');
  assert(Number.isSafeInteger(doc.index) && doc.index >= 0, 'document index must be a non-negative integer');
  assert(Number.isSafeInteger(doc.updatedAtMs) && doc.updatedAtMs >= 0, 'document updatedAtMs must be a non-negative integer');
  assert(isPlainObject(doc.body), 'document body must be a JSON object');
  assert(checkJson(doc.body, jsonDepthHardMax) === null, `document body of ${doc.collection}/${doc.id} must be JSON`);
}

/**
 * LMDB's key limit (lmdb-js builds with MDB_MAXKEYSIZE=0, i.e. derived from the 4 KiB page: 1978
 * bytes). MemoryDocumentStore has none; validated ids (types.ts) are far below it (256 code units
 * → 512 bytes plus the collection), so a longer key is a programmer error, reported clearly. Reads
 * of longer keys simply find nothing, like the memory store.
 */
const keyBytesMax = 1978;

function checkKeySize(key: Buffer, what: string): void {
  assert(key.length <= keyBytesMax, `${what}: key of ${key.length} bytes (UTF-16) exceeds LMDB's ${keyBytesMax}-byte limit`);
}

function checkMeta(key: string, value: JsonValue): void {
  assert(typeof key === 'string' && key.length > 0, 'meta key must be a non-empty string');
  assert(checkJson(value, jsonDepthHardMax) === null, `meta value for ${key} must be JSON`);
}


/** The greatest of the range's lower bounds (as strings; the key encoding preserves their order). */
function lowerBound(range: KeyRange): string {
  let bound = '';
  for (const candidate of [range.start, range.startAfter, range.prefix]) {
    if (candidate !== undefined && candidate > bound) bound = candidate;
  }
  return bound;
}

// ---------------------------------------------------------------------------------------------

/**
 * Reads against one view of the environment: the open write transaction (`readTxn` null while a
 * transaction callback runs: lmdb-js routes reads to the write transaction), the latest commit
 * (`readTxn` null outside transactions), or an explicit read transaction.
 */
class Reader {
  constructor(
    private readonly store: LmdbDocumentStore,
    private readonly readTxn: () => Transaction | null,
  ) {}

  get(collection: string, id: string): StoredDocument | null {
    const key = documentKey(collectionPrefix(collection), id);
    const value = this.point(this.store.docs, key);
    return value === undefined ? null : this.store.decodeDocument(collection, id, value);
  }

  list(query: ListQuery): ListPage {
    assert(Number.isSafeInteger(query.limit) && query.limit >= 1, `scan limit must be a positive integer, got ${query.limit}`);
    const prefix = collectionPrefix(query.collection);
    const documents: StoredDocument[] = [];
    let more = false;
    const low = lowerBound(query);
    for (const { key, value } of this.range(this.store.docs, documentKey(prefix, low))) {
      if (key.length < prefix.length || !key.subarray(0, prefix.length).equals(prefix)) break; // left the collection
      const id = fromUtf16be(key.subarray(prefix.length));
      // Below the lower bound: the cursor itself, or keys before an over-long bound (see range()).
      if (id < low || (query.startAfter !== undefined && id <= query.startAfter)) continue;
      if (!inRange(id, query)) break; // past the prefix or the end: nothing later matches either
      if (documents.length === query.limit) {
        more = true;
        break;
      }
      documents.push(this.store.decodeDocument(query.collection, id, value));
    }
    return { documents, nextCursor: more ? (documents[documents.length - 1]?.id ?? null) : null };
  }

  getMeta(key: string): JsonValue | undefined {
    if (key.length === 0) return undefined; // never stored (putMeta asserts), and LMDB refuses empty keys
    const value = this.point(this.store.meta, utf16be(key));
    return value === undefined ? undefined : this.store.decodeMeta(key, value);
  }

  listMeta(query: MetaListQuery): MetaEntry[] {
    assert(Number.isSafeInteger(query.limit) && query.limit >= 1, `scan limit must be a positive integer, got ${query.limit}`);
    const entries: MetaEntry[] = [];
    const low = lowerBound(query);
    for (const { key: rawKey, value } of this.range(this.store.meta, utf16be(low))) {
      const key = fromUtf16be(rawKey);
      if (key < low || (query.startAfter !== undefined && key <= query.startAfter)) continue;
      if (!inRange(key, query) || entries.length === query.limit) break;
      entries.push({ key, value: this.store.decodeMeta(key, value) });
    }
    return entries;
  }

  listMetaKeys(query: MetaListQuery): string[] {
    assert(Number.isSafeInteger(query.limit) && query.limit >= 1, `scan limit must be a positive integer, got ${query.limit}`);
    const keys: string[] = [];
    const low = lowerBound(query);
    for (const rawKey of this.rangeKeys(this.store.meta, utf16be(low))) {
      const key = fromUtf16be(rawKey);
      if (key < low || (query.startAfter !== undefined && key <= query.startAfter)) continue;
      if (!inRange(key, query) || keys.length === query.limit) break;
      keys.push(key);
    }
    return keys;
  }

  private point(db: BinaryDb, key: Buffer): Buffer | undefined {
    if (key.length > keyBytesMax) return undefined; // cannot have been stored (and lmdb-js would throw)
    const txn = this.readTxn();
    // lmdb-js point reads ignore an explicit transaction while a write transaction is open, ranges
    // honour it: read through a one-key range then.
    if (txn === null) return db.getBinary(key);
    for (const entry of db.getRange({ start: key, limit: 1, transaction: txn })) {
      return entry.key.equals(key) ? entry.value : undefined;
    }
    return undefined;
  }

  /**
   * Keys from `start` on. A start longer than any storable key is cut to the limit: a prefix sorts
   * no later, and callers skip keys below their bound, so the result is the same.
   */
  private range(db: BinaryDb, fullStart: Buffer): Iterable<{ key: Buffer; value: Buffer }> {
    const start = fullStart.length > keyBytesMax ? fullStart.subarray(0, keyBytesMax) : fullStart;
    const txn = this.readTxn();
    return txn === null ? db.getRange({ start }) : db.getRange({ start, transaction: txn });
  }

  private rangeKeys(db: BinaryDb, fullStart: Buffer): Iterable<Buffer> {
    const start = fullStart.length > keyBytesMax ? fullStart.subarray(0, keyBytesMax) : fullStart;
    const txn = this.readTxn();
    return txn === null ? db.getKeys({ start }) : db.getKeys({ start, transaction: txn });
  }
}

export class LmdbDocumentStore implements DocumentStore {
  readonly dir: string;
  readonly dataFile: string;
  readonly durability: DocumentDurability;
  readonly recovery: DocumentStoreRecovery;
  private readonly root: RootDatabase<Buffer, Buffer>;
  /** @internal */
  readonly docs: BinaryDb;
  /** @internal */
  readonly meta: BinaryDb;
  private readonly committed: Reader;
  private openTransaction: LmdbTransaction | null = null;
  private inBatch = false;
  /** A read transaction for direct store reads while a write transaction is open. */
  private sideReadTxn: Transaction | null = null;
  private closed = false;

  private constructor(dir: string, durability: DocumentDurability, recovery: DocumentStoreRecovery) {
    this.dir = dir;
    this.durability = durability;
    this.recovery = recovery;
    const envDir = path.join(dir, 'env');
    this.dataFile = path.join(envDir, 'data.mdb');
    this.root = open<Buffer, Buffer>({
      path: envDir,
      maxDbs: 2,
      // See the header: noSync only in 'rebuildable' mode, where the marker protocol makes it safe.
      noSync: durability === 'rebuildable',
      overlappingSync: false,
      noMetaSync: false,
      useWritemap: false,
      encoding: 'binary',
      keyEncoding: 'binary',
      cache: false,
      compression: false,
    });
    const db = (name: string): BinaryDb => this.root.openDB<Buffer, Buffer>({ name, encoding: 'binary', keyEncoding: 'binary', cache: false, compression: false });
    this.docs = db('docs');
    this.meta = db('meta');
    this.committed = new Reader(this, () => {
      if (this.openTransaction === null) return null;
      this.sideReadTxn ??= this.root.useReadTransaction();
      return this.sideReadTxn;
    });
  }

  /** Opens (creating if needed) the store in `dir`; see the header for `recovery`. */
  static open(dir: string, options: LmdbDocumentStoreOptions = {}): LmdbDocumentStore {
    const durability = options.durability ?? 'rebuildable';
    fs.mkdirSync(dir, { recursive: true });
    const envDir = path.join(dir, 'env');
    const markerFile = path.join(dir, markerName);
    const bootId = currentBootId();
    let recovery: DocumentStoreRecovery;
    if (!fs.existsSync(path.join(envDir, 'data.mdb'))) {
      recovery = 'fresh';
    } else {
      const marker = readMarker(markerFile);
      if (marker !== null && !marker.open) recovery = 'clean';
      else if (marker !== null && (marker.durability === 'fsync' || (bootId !== null && marker.bootId === bootId))) recovery = 'crash-trusted';
      else {
        // Left open across an OS crash (or we cannot tell): unsynced pages may be torn. Rebuild.
        fs.rmSync(envDir, { recursive: true, force: true });
        recovery = 'crash-discarded';
      }
    }
    writeMarker(markerFile, { open: true, bootId, durability });
    return new LmdbDocumentStore(dir, durability, recovery);
  }

  // --- DocumentReader ---------------------------------------------------------------------------

  get(collection: string, id: string): StoredDocument | null {
    this.assertOpen();
    return this.committed.get(collection, id);
  }

  list(query: ListQuery): ListPage {
    this.assertOpen();
    return this.committed.list(query);
  }

  getMeta(key: string): JsonValue | undefined {
    this.assertOpen();
    return this.committed.getMeta(key);
  }

  listMeta(query: MetaListQuery): MetaEntry[] {
    this.assertOpen();
    return this.committed.listMeta(query);
  }

  listMetaKeys(query: MetaListQuery): string[] {
    this.assertOpen();
    return this.committed.listMetaKeys(query);
  }

  // --- DocumentWriter: each direct write is its own transaction -----------------------------------

  put(doc: StoredDocument): void {
    this.assertNoTransaction();
    this.commit('put', () => this.writeDocument(doc));
  }

  delete(collection: string, id: string): boolean {
    this.assertNoTransaction();
    return this.commit('delete', () => this.removeDocument(collection, id));
  }

  putMeta(key: string, value: JsonValue): void {
    this.assertNoTransaction();
    this.commit('putMeta', () => this.writeMeta(key, value));
  }

  deleteMeta(key: string): boolean {
    this.assertNoTransaction();
    return this.commit('deleteMeta', () => this.removeMeta(key));
  }

  transaction<T>(fn: (tx: DocumentWriter) => T): T {
    this.assertOpen();
    assert(this.openTransaction === null, 'transactions do not nest');
    const tx = new LmdbTransaction(this);
    this.openTransaction = tx;
    const run = (): T => {
      const result = fn(tx);
      // Checked inside the LMDB transaction so that throwing aborts it (nothing is applied).
      assert(!(result instanceof Promise), 'transaction callbacks must be synchronous');
      return result;
    };
    try {
      // Inside batch() the LMDB transaction is already open: this one joins it.
      return this.inBatch ? run() : this.commit('transaction', run);
    } finally {
      tx.close();
      this.openTransaction = null;
      this.sideReadTxn?.done();
      this.sideReadTxn = null;
    }
  }

  /**
   * Runs `fn` so that every transaction() it makes shares ONE LMDB write transaction, committed
   * when `fn` returns: the node applies all committed entries of a Ready this way, one commit
   * instead of one per entry (a per-entry commit was a quarter of a node's CPU under write load).
   * Each transaction() still sees the writes of the ones before it. If anything throws, nothing
   * of the batch is written (in rebuildable mode the caller stops, and replays the log on start).
   * Direct reads during the batch see its writes so far.
   */
  batch<T>(fn: () => T): T {
    this.assertNoTransaction();
    assert(!this.inBatch, 'batches do not nest');
    this.inBatch = true;
    try {
      return this.commit('batch', () => {
        const result = fn();
        assert(!(result instanceof Promise), 'batch callbacks must be synchronous');
        return result;
      });
    } finally {
      this.inBatch = false;
    }
  }

  // --- Whole-store operations (same as MemoryDocumentStore) --------------------------------------

  /** Collection names that hold at least one document, ascending. */
  collectionNames(): string[] {
    this.assertOpen();
    const names: string[] = [];
    let start: Buffer | undefined;
    for (;;) {
      let found: ReturnType<typeof splitDocumentKey> = null;
      for (const key of this.docs.getKeys(start === undefined ? { limit: 1 } : { start, limit: 1 })) found = this.splitKey(key);
      if (found === null) return names;
      names.push(found.collection);
      start = afterCollection(collectionPrefix(found.collection));
    }
  }

  documentCount(): number {
    this.assertOpen();
    return (this.docs.getStats() as { entryCount: number }).entryCount;
  }

  /** Byte-identical to MemoryDocumentStore.snapshot() for the same content. */
  snapshot(): Uint8Array {
    this.assertNoTransaction();
    const documents: string[] = [];
    this.forEachDocument((doc) => documents.push(JSON.stringify(doc)));
    const meta: string[] = [];
    this.forEachMeta((key, value) => meta.push(JSON.stringify([key, value])));
    // Exactly JSON.stringify({ format, version, documents, meta }), built without one huge object.
    const text = `{"format":${JSON.stringify(snapshotFormat)},"version":${snapshotVersion},"documents":[${documents.join(',')}],"meta":[${meta.join(',')}]}`;
    return new TextEncoder().encode(text);
  }

  /**
   * snapshot() without holding the event loop: the same bytes (see writeSnapshot), gathered.
   * For callers that need them in memory (backups); a node's own snapshots stream to a file.
   */
  async snapshotAsync(recordsPerSlice = 2_000, bytesPerSlice = 1 << 20): Promise<Uint8Array> {
    const pieces: Buffer[] = [];
    await this.writeSnapshot(async (piece) => {
      pieces.push(Buffer.from(piece));
    }, recordsPerSlice, bytesPerSlice);
    return Buffer.concat(pieces);
  }

  /**
   * snapshot()'s bytes, handed to `write` in pieces of about `bytesPerSlice` (each piece is valid
   * only until the promise `write` returns settles), without holding the event loop: read from
   * one LMDB read transaction (so writes committed after the call do not show, however long it
   * takes) in slices of at most `recordsPerSlice` records and about `bytesPerSlice` bytes of
   * stored values (change records of large batches are 100s of KB each), yielding to the event
   * loop between slices. Memory stays at about one slice whatever the size of the state. The
   * caller learns the state's applied index from the bytes (apply.ts keeps it in a meta record
   * written in the same transaction as the changes).
   *
   * Garbage is what made this slow path stall a node before: stored texts are copied, not parsed
   * and re-serialised, straight into one reused output buffer (no per-record Buffers, whose
   * external memory triggered full GCs that took 100-300 ms on a busy machine).
   */
  async writeSnapshot(write: (piece: Uint8Array) => Promise<void>, recordsPerSlice = 2_000, bytesPerSlice = 1 << 20): Promise<void> {
    this.assertNoTransaction();
    assert(Number.isSafeInteger(recordsPerSlice) && recordsPerSlice >= 1, 'recordsPerSlice >= 1');
    assert(Number.isSafeInteger(bytesPerSlice) && bytesPerSlice >= 1, 'bytesPerSlice >= 1');
    const txn = this.root.useReadTransaction();
    try {
      const out = new ByteWriter(Math.min(bytesPerSlice, 1 << 20) + 64 * 1024);
      out.text(`{"format":${JSON.stringify(snapshotFormat)},"version":${snapshotVersion},"documents":[`);
      const sliceOf = async (db: BinaryDb, add: (key: Buffer, value: Buffer) => void): Promise<void> => {
        let after: Buffer | null = null;
        let first = true;
        for (;;) {
          assert(!this.closed, `document store ${this.dir} closed during a snapshot`);
          let last: Buffer | null = null;
          let records = 0;
          let bytes = 0;
          let full = false;
          // A fresh range per slice, resumed at the last key (skipped) so no cursor is held across
          // awaits; two more than a slice: the skipped key, and one to tell that more remain.
          for (const { key, value } of db.getRange({ transaction: txn, ...(after === null ? {} : { start: after }), limit: recordsPerSlice + 2 })) {
            if (after !== null && key.equals(after)) continue;
            if (records === recordsPerSlice || bytes >= bytesPerSlice) {
              full = true;
              break;
            }
            if (!first) out.text(',');
            first = false;
            add(key, value);
            records += 1;
            bytes += value.length;
            last = key;
          }
          if (last === null || !full) return;
          after = Buffer.from(last);
          // The slice goes out (and the event loop runs) before the next one is read.
          if (out.size >= bytesPerSlice) await write(out.drain());
          else await new Promise<void>((resolve) => setImmediate(resolve));
        }
      };
      await sliceOf(this.docs, (key, value) => {
        const { collection, id } = this.splitKey(key);
        // The stored text is [body,version,index,updatedAtMs] with the body as JSON.stringify
        // wrote it (exactJson), so the body bytes are copied as they are. Only negative zero,
        // which exactJson writes as "-0" and JSON.stringify as "0", takes the slow path, as does
        // anything unexpected.
        const cut = trailingFieldsStart(value);
        if (cut === -1 || mayHoldNegativeZero(value)) {
          out.text(JSON.stringify(this.decodeDocument(collection, id, value)));
          return;
        }
        const [version, index, updatedAtMs] = value.toString('latin1', cut + 1, value.length - 1).split(',');
        out.text(`{"collection":${JSON.stringify(collection)},"id":${JSON.stringify(id)},"body":`);
        out.bytes(value, 1, cut);
        out.text(`,"version":${version},"index":${index},"updatedAtMs":${updatedAtMs}}`);
      });
      out.text('],"meta":[');
      await sliceOf(this.meta, (key, value) => {
        const name = fromUtf16be(key);
        if (mayHoldNegativeZero(value)) {
          out.text(JSON.stringify([name, this.decodeMeta(name, value)]));
          return;
        }
        out.text(`[${JSON.stringify(name)},`);
        out.bytes(value, 0, value.length);
        out.text(']');
      });
      out.text(']}');
      await write(out.drain());
    } finally {
      if (!this.closed) txn.done(); // close() ends every transaction of the environment itself
    }
  }

  /**
   * Replaces the whole content with a snapshot, atomically. Validation is MemoryDocumentStore's
   * own (the bytes are restored into one first), so both accept and refuse exactly the same input.
   */
  restore(bytes: Uint8Array): DocumentError | null {
    this.assertNoTransaction();
    const staging = new MemoryDocumentStore();
    const problem = staging.restore(bytes);
    if (problem !== null) return problem;
    this.commit('restore', () => {
      this.docs.clearSync(); // inside this transaction: an abort keeps the old content
      this.meta.clearSync();
      for (const collection of staging.collectionNames()) {
        for (const doc of staging.list({ collection, limit: Number.MAX_SAFE_INTEGER }).documents) this.writeDocument(doc);
      }
      for (const { key, value } of staging.listMeta({ limit: Number.MAX_SAFE_INTEGER })) this.writeMeta(key, value);
    });
    return null;
  }

  /** Equal to MemoryDocumentStore.digest() for the same content. */
  digest(): string {
    this.assertNoTransaction();
    const hash = new Fnv1a64();
    hash.updateString(`${snapshotFormat}/${snapshotVersion}\n`);
    this.forEachDocument((doc) => {
      hash.updateString(canonicalJson(doc as unknown as JsonObject));
      hash.updateString('\n');
    });
    hash.updateString('meta\n');
    this.forEachMeta((key, value) => {
      hash.updateString(canonicalJson([key, value]));
      hash.updateString('\n');
    });
    return hash.hex();
  }

  /**
   * Closes the environment; in 'rebuildable' mode first makes everything durable (fsync of the
   * data file after LMDB closed it) and only then marks the store cleanly closed.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    assert(this.openTransaction === null, 'close while a transaction is open');
    this.closed = true;
    await this.root.close();
    try {
      if (fs.existsSync(this.dataFile)) fsyncFile(this.dataFile);
      writeMarker(path.join(this.dir, markerName), { open: false, bootId: currentBootId(), durability: this.durability });
    } catch (error) {
      throw new StorageIoError(`closing document store ${this.dir} failed`, error);
    }
  }

  // --- Internals used by Reader and LmdbTransaction ----------------------------------------------

  /** @internal */
  decodeDocument(collection: string, id: string, value: Uint8Array): StoredDocument {
    const parsed = this.parseJson(`document ${collection}/${id}`, value);
    if (!Array.isArray(parsed) || parsed.length !== 4 || !isPlainObject(parsed[0])) {
      throw new StorageCorruptionError(this.dataFile, `document ${collection}/${id} is malformed`);
    }
    const [body, version, index, updatedAtMs] = parsed as [JsonObject, number, number, number];
    // Member order as in store.ts freezeDocument, so JSON.stringify (snapshot) matches byte for byte.
    return Object.freeze({ collection, id, body: deepFreeze(body), version, index, updatedAtMs });
  }

  /** @internal */
  decodeMeta(key: string, value: Uint8Array): JsonValue {
    return deepFreeze(this.parseJson(`meta ${key}`, value) as JsonValue);
  }

  /** @internal */
  writeDocument(doc: StoredDocument): void {
    checkStoredDocument(doc);
    const key = documentKey(collectionPrefix(doc.collection), doc.id);
    checkKeySize(key, `document ${doc.collection}/${doc.id.slice(0, 40)}`);
    const text = `[${exactJson(doc.body)},${doc.version},${doc.index},${doc.updatedAtMs}]`;
    this.docs.putSync(key, encodeJson(text));
  }

  /** @internal */
  removeDocument(collection: string, id: string): boolean {
    const key = documentKey(collectionPrefix(collection), id);
    if (key.length > keyBytesMax) return false; // cannot have been stored
    return this.docs.removeSync(key);
  }

  /** @internal */
  writeMeta(key: string, value: JsonValue): void {
    checkMeta(key, value);
    const rawKey = utf16be(key);
    checkKeySize(rawKey, `meta ${key.slice(0, 40)}`);
    this.meta.putSync(rawKey, encodeJson(exactJson(value)));
  }

  /** @internal */
  removeMeta(key: string): boolean {
    const rawKey = utf16be(key);
    if (rawKey.length === 0 || rawKey.length > keyBytesMax) return false; // cannot have been stored
    return this.meta.removeSync(rawKey);
  }

  private parseJson(what: string, value: Uint8Array): unknown {
    try {
      return JSON.parse(utf8.decode(value));
    } catch (error) {
      throw new StorageCorruptionError(this.dataFile, `${what} is not UTF-8 JSON: ${String(error)}`, { cause: error });
    }
  }

  private splitKey(key: Uint8Array): NonNullable<ReturnType<typeof splitDocumentKey>> {
    const parts = splitDocumentKey(key);
    if (parts === null) throw new StorageCorruptionError(this.dataFile, `malformed document key ${Buffer.from(key).toString('hex')}`);
    return parts;
  }

  private forEachDocument(visit: (doc: StoredDocument) => void): void {
    for (const { key, value } of this.docs.getRange({})) {
      const { collection, id } = this.splitKey(key);
      visit(this.decodeDocument(collection, id, value));
    }
  }

  private forEachMeta(visit: (key: string, value: JsonValue) => void): void {
    for (const { key, value } of this.meta.getRange({})) {
      const name = fromUtf16be(key);
      visit(name, this.decodeMeta(name, value));
    }
  }

  /**
   * One LMDB write transaction (see header for its sync mode). An error thrown by `body` (an
   * assertion, a caller's abort) propagates unchanged, as from MemoryDocumentStore; a failure of
   * the commit itself (ENOSPC, EIO) becomes a StorageIoError.
   */
  private commit<T>(what: string, body: () => T): T {
    let bodyReturned = false;
    try {
      return this.root.transactionSync(() => {
        const result = body();
        bodyReturned = true;
        return result;
      });
    } catch (error) {
      if (!bodyReturned) throw error;
      throw new StorageIoError(`document store ${what}: LMDB commit to ${this.dataFile} failed`, error);
    }
  }

  private assertOpen(): void {
    assert(!this.closed, `document store ${this.dir} is closed`);
  }

  private assertNoTransaction(): void {
    this.assertOpen();
    assert(this.openTransaction === null, 'direct store access while a transaction is open');
  }
}

/** The writer handed to a transaction callback; reads go through the open write transaction. */
class LmdbTransaction implements DocumentWriter {
  private open = true;
  private readonly reader: Reader;

  constructor(private readonly store: LmdbDocumentStore) {
    this.reader = new Reader(store, () => null);
  }

  get(collection: string, id: string): StoredDocument | null {
    this.assertOpen();
    return this.reader.get(collection, id);
  }

  list(query: ListQuery): ListPage {
    this.assertOpen();
    return this.reader.list(query);
  }

  getMeta(key: string): JsonValue | undefined {
    this.assertOpen();
    return this.reader.getMeta(key);
  }

  listMeta(query: MetaListQuery): MetaEntry[] {
    this.assertOpen();
    return this.reader.listMeta(query);
  }

  listMetaKeys(query: MetaListQuery): string[] {
    this.assertOpen();
    return this.reader.listMetaKeys(query);
  }

  put(doc: StoredDocument): void {
    this.assertOpen();
    this.store.writeDocument(doc);
  }

  delete(collection: string, id: string): boolean {
    this.assertOpen();
    return this.store.removeDocument(collection, id);
  }

  putMeta(key: string, value: JsonValue): void {
    this.assertOpen();
    this.store.writeMeta(key, value);
  }

  deleteMeta(key: string): boolean {
    this.assertOpen();
    return this.store.removeMeta(key);
  }

  close(): void {
    this.open = false;
  }

  private assertOpen(): void {
    assert(this.open, 'transaction used after it ended');
  }
}

// ---------------------------------------------------------------------------------------------
// The open/closed marker.

function currentBootId(): string | null {
  try {
    return fs.readFileSync(bootIdFile, 'utf8').trim() || null;
  } catch {
    return null; // not Linux: an unclean 'rebuildable' shutdown is then always rebuilt
  }
}

function readMarker(file: string): Marker | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return null; // missing or unreadable: treated as "left open by an unknown boot"
  }
  if (!isPlainObject(parsed)) return null;
  const { open: isOpen, bootId, durability } = parsed;
  if (typeof isOpen !== 'boolean' || (bootId !== null && typeof bootId !== 'string')) return null;
  if (durability !== 'fsync' && durability !== 'rebuildable') return null;
  return { open: isOpen, bootId, durability };
}

function writeMarker(file: string, marker: Marker): void {
  writeFileDurably(file, [Buffer.from(`${JSON.stringify(marker)}\n`, 'utf8')]);
}
