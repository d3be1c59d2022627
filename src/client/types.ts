/**
 * The client's own description of the Understudy HTTP API (docs/api.md): documents, write and
 * read results, batch operations, change records and the cluster view. These mirror the server's
 * JSON on purpose instead of importing server types, so the client depends on nothing under
 * src/server, src/storage or src/consensus, not even at type level.
 */

export type JsonPrimitive = string | number | boolean | null;
export type JsonValue = JsonPrimitive | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** The write acknowledgement level (`?ack=`): see docs/api.md "Ack levels". */
export type AckLevel = 'leader' | 'majority' | 'all';
/** The read consistency level (`?consistency=`): see docs/api.md "Read consistency levels". */
export type ReadConsistency = 'linearizable' | 'session' | 'stale';

/** A stored document as the server returns it. `T` is the body's shape (a JSON object). */
export interface Document<T = JsonObject> {
  readonly collection: string;
  readonly id: string;
  /** 1 when created, +1 on every successful PUT or PATCH. Use it with `ifMatch`. */
  readonly version: number;
  /** The log index of the entry that last changed the document. */
  readonly index: number;
  readonly updatedAtMs: number;
  readonly body: T;
}

/** Where and how a read was served (from the X-Served-By, X-Consistency, X-Applied-Index headers). */
export interface ReadInfo {
  /** The node that answered (X-Served-By). */
  readonly servedBy: string | null;
  readonly consistency: ReadConsistency | null;
  readonly appliedIndex: number | null;
  /** For stale reads: committed entries the node had not applied yet, as far as it knew. */
  readonly lagEntries: number | null;
  /** How many attempts the call took (1 = no retry). */
  readonly attempts: number;
}

/** A document read with `get`: the document plus `meta`, which says where it was served. */
export type DocumentRead<T = JsonObject> = Document<T> & { readonly meta: ReadInfo };

/** One op's outcome in a write result. */
export interface OpResult {
  readonly collection: string;
  readonly id: string;
  /** The new version; for a delete the version removed, or null when there was nothing to delete. */
  readonly version: number | null;
  readonly index: number;
  readonly deleted: boolean;
}

/** The answer to any write (create, put, patch, delete, batch). */
export interface WriteResult {
  /** `applied`, or `accepted` for ack=leader (durable on the leader, not yet applied). */
  readonly status: 'applied' | 'accepted';
  readonly ack: AckLevel;
  readonly index: number;
  readonly term: number;
  /**
   * True when the server answered from the record of an earlier request with the same
   * Idempotency-Key instead of applying again: an earlier attempt of this same call (when
   * `attempts > 1`, typically the attempt in flight at a failover, which did apply) or, with a
   * key you passed, an earlier call. Either way the write applied exactly once.
   */
  readonly duplicate: boolean;
  /** Pass to a session read (or use `client.session()`) to read this write from any node. */
  readonly sessionToken: string;
  readonly results: readonly OpResult[];
  /** The first result's fields, for single-document writes. */
  readonly collection?: string;
  readonly id?: string;
  readonly version?: number | null;
  readonly deleted?: boolean;
  /** The Idempotency-Key the client sent (generated unless you passed one). */
  readonly idempotencyKey: string;
  /** How many attempts the write took (1 = no retry). */
  readonly attempts: number;
}

/** An operation of `batch()`; all ops of a batch apply atomically or none does. */
export type BatchOp =
  | { readonly op: 'create'; readonly collection: string; readonly id?: string; readonly body: JsonObject }
  | { readonly op: 'put'; readonly collection: string; readonly id: string; readonly body: JsonObject; readonly ifMatch?: number; readonly ifNoneMatch?: boolean }
  | { readonly op: 'patch'; readonly collection: string; readonly id: string; readonly patch: JsonObject; readonly ifMatch?: number }
  | { readonly op: 'delete'; readonly collection: string; readonly id: string; readonly ifMatch?: number };

/** One row change of a change record: the document after the change, or null for a delete. */
export interface RowChange<T = JsonObject> {
  readonly collection: string;
  readonly id: string;
  readonly doc: Document<T> | null;
}

/** One applied write in the change feed, in log order. */
export interface ChangeRecord<T = JsonObject> {
  readonly index: number;
  readonly term: number;
  readonly timestampMs: number;
  readonly changes: readonly RowChange<T>[];
}

export interface MemberView {
  readonly id: string;
  readonly role: string;
  readonly voter: boolean;
  /** The member's client URL (http://host:port), or null if the node does not know it. */
  readonly client: string | null;
  readonly matchIndex?: number | null;
  readonly lagEntries?: number | null;
  readonly lagMs?: number | null;
  readonly connected?: boolean | null;
}

/** GET /v1/cluster: one node's view of the cluster. */
export interface ClusterView {
  readonly id: string;
  readonly role: string;
  readonly term: number;
  readonly leaderId: string | null;
  readonly leaderClientUrl: string | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly members: readonly MemberView[];
  readonly [key: string]: unknown;
}

/** Options every call accepts. */
export interface CallOptions {
  /**
   * The call's whole time budget in milliseconds, retries and backoff included (default: the
   * client's `timeoutMs`, 10 s). When it runs out the call rejects with TimeoutError, or with
   * IndeterminateError for a write that may have applied.
   */
  readonly timeoutMs?: number;
  /** Aborts the call: it rejects at once with AbortError. */
  readonly signal?: AbortSignal;
  /** At most this many attempts for this call (default: the client's `retry.maxAttempts`). */
  readonly maxAttempts?: number;
}

export interface WriteOptions extends CallOptions {
  /** The acknowledgement level (default: the client's `ack`, else the server's `majority`). */
  readonly ack?: AckLevel;
  /** Your own Idempotency-Key (default: a random UUID, reused across the call's retries). */
  readonly idempotencyKey?: string;
}

export interface ConditionalWriteOptions extends WriteOptions {
  /** Apply only if the document is at this version (If-Match); else VersionConflictError. */
  readonly ifMatch?: number;
}

export interface PutOptions extends ConditionalWriteOptions {
  /** Create only (If-None-Match: *): AlreadyExistsError if the document exists. */
  readonly ifNoneMatch?: boolean;
}

export interface CreateOptions extends WriteOptions {
  /** Create with this id (a create-only PUT) instead of a server-generated UUID. */
  readonly id?: string;
}

export interface ReadOptions extends CallOptions {
  /** The read consistency (default: the client's `consistency`, else `linearizable`). */
  readonly consistency?: ReadConsistency;
  /** A session token (for consistency=session): the read sees at least that write. */
  readonly sessionToken?: string;
  /** Pin the read to this node (id or client URL), for debugging and tests. */
  readonly node?: string;
}

export interface ListQuery extends ReadOptions {
  /** Only ids starting with this. */
  readonly prefix?: string;
  /** Only ids >= start. */
  readonly start?: string;
  /** Only ids < end. */
  readonly end?: string;
  /** Page size, 1-1000 (default 100). */
  readonly limit?: number;
  /** Resume after this id: a page's `nextCursor`. */
  readonly cursor?: string;
}

/** One page of a listing. Pass `nextCursor` as `cursor` to resume. */
export interface Page<T = JsonObject> {
  readonly documents: readonly Document<T>[];
  readonly nextCursor: string | null;
  readonly meta: ReadInfo;
}

export interface ChangesOptions {
  /** Deliver records with index > after (default 0: from the oldest retained). */
  readonly after?: number;
  /** Ends the iteration (the loop ends without an error). */
  readonly signal?: AbortSignal;
  /**
   * How long the feed may stay disconnected (reconnecting with backoff) before the iterator
   * throws UnavailableError (default 30 s).
   */
  readonly reconnectBudgetMs?: number;
  /**
   * A connection that sends nothing (no record and no keep-alive) for this long is considered
   * dead and replaced (default 45 s; the server sends a keep-alive every 15 s).
   */
  readonly idleTimeoutMs?: number;
  /** Follow this node (id or URL) instead of the leader. */
  readonly node?: string;
}
