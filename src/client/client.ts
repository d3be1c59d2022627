/**
 * UnderstudyClient: a promise-based client for an Understudy cluster that rides out failover.
 *
 * Each call runs under a time budget (`timeoutMs`) and is retried, with exponential backoff and
 * full jitter (cockatiel `retry`), only when a retry is safe:
 *   - connection refused or reset, an attempt that timed out, a node whose breaker is open;
 *   - 503 with `retryable: true` (NO_LEADER, NOT_APPLIED, OVERLOADED, ...: not applied);
 *   - 504 SESSION_TIMEOUT for reads (tried on another node);
 *   - 504 TIMEOUT / OUTCOME_UNKNOWN for writes, because every write carries an Idempotency-Key
 *     (generated once per call, reused by its retries), so a retried write applies at most once.
 * A write whose last attempts left its outcome unknown when the budget ran out rejects with
 * IndeterminateError (carrying the key, to retry later); anything else with its typed error.
 *
 * Routing: writes and linearizable reads go to the leader the client tracks (term-fenced, see
 * topology.ts); session and stale reads are spread round-robin over healthy nodes. The view is
 * refreshed when a node fails at the transport level, answers NO_LEADER/NOT_LEADER, forwards a
 * write (X-Forwarded-To: the node we took for the leader is not), or reports a newer term.
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { BrokenCircuitError, handleWhen, retry } from 'cockatiel';
import { BudgetedBackoff, DeferredBackoff, fullJitterBackoff, fullJitterDelay, sleep } from './backoff.ts';
import { ChangeFeed, type FeedHost } from './changes.ts';
import { TypedEmitter } from './emitter.ts';
import { CallAbortedError, Endpoint, QueueTimeoutError, TransportError, headerValue, type BreakerState, type HttpRequest, type HttpResponse, type NodeState } from './endpoint.ts';
import {
  AbortError, ClientClosedError, ConfigurationError, IndeterminateError, TimeoutError, UnauthorizedError,
  UnavailableError, UnderstudyError, errorFromResponse, type Outcome,
} from './errors.ts';
import { resolveOptions, type ConnectOptions, type ResolvedOptions } from './options.ts';
import { Topology, type LeaderChange } from './topology.ts';
import type {
  BatchOp, CallOptions, ChangesOptions, ClusterView, ConditionalWriteOptions, CreateOptions, Document,
  DocumentRead, JsonObject, ListQuery, Page, PutOptions, ReadConsistency, ReadInfo, ReadOptions,
  WriteOptions, WriteResult,
} from './types.ts';

export interface ClientEvents {
  /** The client adopted a new leader (learned from a view at the highest term seen). */
  leaderChanged: LeaderChange;
  /** A node failed at the transport level (first failure after it was up). */
  nodeDown: { readonly id: string | null; readonly url: string; readonly reason: string };
  /** A node that was down answered again. */
  nodeUp: { readonly id: string | null; readonly url: string };
  breakerStateChanged: { readonly id: string | null; readonly url: string; readonly state: BreakerState };
  /** A call is about to be retried after `delayMs`. */
  retry: { readonly method: string; readonly path: string; readonly attempt: number; readonly delayMs: number; readonly error: string };
  /** Every HTTP answer (a debug hook): which node answered, and who served a read. */
  response: {
    readonly method: string; readonly path: string; readonly status: number; readonly node: string;
    readonly servedBy: string | null; readonly durationMs: number; readonly attempt: number;
  };
}

type CallKind = 'write' | 'read' | 'meta';

interface CallSpec {
  readonly kind: CallKind;
  /** Where to send: the leader (writes, linearizable reads) or any healthy node. */
  readonly target: 'leader' | 'any';
  readonly method: HttpRequest['method'];
  readonly path: string;
  readonly query: Record<string, string>;
  readonly headers?: Record<string, string>;
  readonly body?: unknown;
  readonly contentType?: string;
  /** Send `timeoutMs` (the attempt's time left) to the server. */
  readonly serverTimeout: boolean;
  readonly pin?: string;
  readonly idempotencyKey?: string;
}

/** A server's retryAfterMs above this is treated as this (a bad hint must not stall a client). */
const RETRY_AFTER_MS_MAX = 5_000;

interface CallState {
  attempts: number;
  /** A write attempt may have applied, and no later answer settled it. */
  maybeApplied: boolean;
  /** Nodes that failed during this call: tried last. */
  readonly avoid: Set<Endpoint>;
  /** The backoff before the next attempt (chosen by cockatiel, slept by the attempt itself). */
  delayMs: number;
  /** The last answer's retryAfterMs: the next attempt waits at least this long (within the budget). */
  retryAfterMs: number;
  /** An attempt is waiting for or exchanging a request (an abort now may hit a sent write). */
  sending: boolean;
}

/** The budget ran out before an attempt could start. */
class BudgetExhausted extends Error {
  override name = 'BudgetExhausted';
}

/** How long after its budget a call is cut off if its own timeouts have not ended it. */
const BUDGET_GRACE_MS = 25;

const LEADER_HINT_CODES = new Set(['NO_LEADER', 'NOT_LEADER', 'LEADERSHIP_TRANSFER', 'READ_NOT_CONFIRMED']);
const AVOID_CODES = new Set(['SESSION_TIMEOUT', 'READ_NOT_CONFIRMED', 'UNAVAILABLE']);

function encode(segment: string): string {
  return encodeURIComponent(segment);
}

function queryString(query: Record<string, string>): string {
  const entries = Object.entries(query);
  return entries.length === 0 ? '' : `?${new URLSearchParams(entries).toString()}`;
}

function readInfo(response: HttpResponse, attempts: number): ReadInfo {
  const consistency = headerValue(response.headers, 'x-consistency');
  const applied = headerValue(response.headers, 'x-applied-index');
  const lag = headerValue(response.headers, 'x-lag-entries');
  return {
    servedBy: headerValue(response.headers, 'x-served-by'),
    consistency: consistency === 'linearizable' || consistency === 'session' || consistency === 'stale' ? consistency : null,
    appliedIndex: applied === null ? null : Number(applied),
    lagEntries: lag === null ? null : Number(lag),
    attempts,
  };
}

/**
 * A listing: iterate documents with `for await (const doc of list)`, or pages with
 * `list.pages()`. Each page is one retried read, so a failover mid-listing just continues from
 * the cursor. `position` is the id of the last document delivered: pass it as `cursor` to resume.
 */
export class DocumentList<T = JsonObject> implements AsyncIterable<Document<T>> {
  position: string | null;

  constructor(private readonly fetchPage: (cursor: string | null) => Promise<Page<T>>, cursor: string | null) {
    this.position = cursor;
  }

  async *pages(): AsyncGenerator<Page<T>, void, undefined> {
    let cursor = this.position;
    for (;;) {
      const page = await this.fetchPage(cursor);
      yield page;
      if (page.nextCursor === null) return;
      cursor = page.nextCursor;
      this.position = cursor;
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Document<T>, void, undefined> {
    let cursor = this.position;
    for (;;) {
      const page = await this.fetchPage(cursor);
      for (const doc of page.documents) {
        this.position = doc.id;
        yield doc;
      }
      if (page.nextCursor === null) return;
      cursor = page.nextCursor;
    }
  }

  async toArray(): Promise<Document<T>[]> {
    const out: Document<T>[] = [];
    for await (const doc of this) out.push(doc);
    return out;
  }
}

/**
 * Read-your-writes: remembers the highest session token of its writes and sends it with its
 * reads at consistency=session, so reads may be served by followers and still see the writes.
 */
export class Session {
  private tokenValue: string | null;

  constructor(private readonly client: UnderstudyClient, token: string | null = null) {
    this.tokenValue = token;
  }

  /** The highest session token seen (null before the first write). */
  get token(): string | null {
    return this.tokenValue;
  }

  /** Adopts a token from elsewhere (for example another session), if it is newer. */
  observe(token: string | null | undefined): void {
    if (token === null || token === undefined || !/^\d{1,15}$/.test(token)) return;
    if (this.tokenValue === null || Number(token) > Number(this.tokenValue)) this.tokenValue = token;
  }

  private readOptions<O extends ReadOptions>(options: O): O {
    const token = options.sessionToken ?? this.tokenValue ?? undefined;
    return { consistency: 'session' as ReadConsistency, ...options, ...(token === undefined ? {} : { sessionToken: token }) };
  }

  private async track(result: Promise<WriteResult>): Promise<WriteResult> {
    const value = await result;
    this.observe(value.sessionToken);
    return value;
  }

  get<T = JsonObject>(collection: string, id: string, options: ReadOptions = {}): Promise<DocumentRead<T>> {
    return this.client.get<T>(collection, id, this.readOptions(options));
  }

  list<T = JsonObject>(collection: string, query: ListQuery = {}): DocumentList<T> {
    return this.client.list<T>(collection, this.readOptions(query));
  }

  create(collection: string, body: JsonObject, options: CreateOptions = {}): Promise<WriteResult> {
    return this.track(this.client.create(collection, body, options));
  }

  put(collection: string, id: string, body: JsonObject, options: PutOptions = {}): Promise<WriteResult> {
    return this.track(this.client.put(collection, id, body, options));
  }

  patch(collection: string, id: string, patch: JsonObject, options: ConditionalWriteOptions = {}): Promise<WriteResult> {
    return this.track(this.client.patch(collection, id, patch, options));
  }

  delete(collection: string, id: string, options: ConditionalWriteOptions = {}): Promise<WriteResult> {
    return this.track(this.client.delete(collection, id, options));
  }

  batch(ops: readonly BatchOp[], options: WriteOptions = {}): Promise<WriteResult> {
    return this.track(this.client.batch(ops, options));
  }
}

export class UnderstudyClient extends TypedEmitter<ClientEvents> {
  readonly options: ResolvedOptions;
  private readonly topology: Topology;
  private readonly shutdown = new AbortController();
  private readonly feeds = new Set<ChangeFeed<unknown>>();
  private readonly probing = new Set<Endpoint>();
  private probeTimer: NodeJS.Timeout | null = null;
  private roundRobin = 0;
  private closing: Promise<void> | null = null;
  /** The node that answered the last successful call (a debug aid). */
  lastServedBy: string | null = null;

  /** Prefer `connect()`, which also waits for discovery; a client made here discovers on first use. */
  constructor(options: ConnectOptions | string) {
    super();
    this.options = resolveOptions(options);
    setMaxListeners(0, this.shutdown.signal); // one listener per call in flight
    this.topology = new Topology(this.options.seeds, {
      createEndpoint: (url) => new Endpoint(url, this.options, {
        onTransportFailure: (endpoint, error, becameDown) => this.onTransportFailure(endpoint, error, becameDown),
        onAnswer: (endpoint, becameUp) => {
          if (becameUp) this.emit('nodeUp', { id: endpoint.id, url: endpoint.url });
        },
        onBreakerState: (endpoint, state) => {
          this.emit('breakerStateChanged', { id: endpoint.id, url: endpoint.url, state });
          if (state === 'open' && endpoint.markDown(`breaker opened after ${this.options.breaker.failureThreshold} consecutive failures`)) {
            this.emit('nodeDown', { id: endpoint.id, url: endpoint.url, reason: endpoint.lastError ?? 'breaker opened' });
          }
        },
      }),
      fetchView: (endpoint) => this.fetchView(endpoint),
      onLeaderChanged: (change) => this.emit('leaderChanged', change),
    });
    if (this.options.probeIntervalMs > 0) {
      this.probeTimer = setInterval(() => this.probe(), this.options.probeIntervalMs);
      this.probeTimer.unref();
    }
  }

  /** Discovers the cluster from the seeds; resolves once a node answered GET /v1/cluster. */
  async ready(): Promise<this> {
    const deadline = performance.now() + this.options.connectTimeoutMs;
    let lastError: unknown = null;
    for (let attempt = 0; ; attempt++) {
      this.assertOpen();
      const results = await Promise.allSettled(this.topology.routable().map(async (endpoint) => {
        const view = await this.fetchView(endpoint);
        this.topology.observe(view, endpoint);
      }));
      if (results.some((result) => result.status === 'fulfilled')) return this;
      for (const result of results) {
        if (result.status === 'rejected') {
          lastError = result.reason;
          if (result.reason instanceof UnauthorizedError) throw result.reason;
        }
      }
      const remaining = deadline - performance.now();
      if (remaining <= 0) {
        throw new UnavailableError({
          code: 'NODE_UNREACHABLE', retryable: true, cause: lastError,
          message: `no seed of ${this.options.seeds.join(', ')} answered within ${this.options.connectTimeoutMs} ms: ${(lastError as Error | null)?.message ?? 'no answer'}`,
        });
      }
      await sleep(Math.min(remaining, fullJitterDelay(attempt, 100, 1_000)), this.shutdown.signal);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Documents.

  /** Creates a document: with a server-generated id, or with `options.id` (create-only PUT). */
  create(collection: string, body: JsonObject, options: CreateOptions = {}): Promise<WriteResult> {
    if (options.id !== undefined) {
      const { id, ...rest } = options;
      return this.put(collection, id, body, { ...rest, ifNoneMatch: true });
    }
    return this.write({ method: 'POST', path: `/v1/docs/${encode(collection)}`, body }, options);
  }

  /** Creates or replaces a document; `ifMatch` (a version) and `ifNoneMatch` (create only) make it conditional. */
  put(collection: string, id: string, body: JsonObject, options: PutOptions = {}): Promise<WriteResult> {
    const headers: Record<string, string> = {};
    if (options.ifMatch !== undefined) headers['if-match'] = `"${options.ifMatch}"`;
    if (options.ifNoneMatch === true) headers['if-none-match'] = '*';
    return this.write({ method: 'PUT', path: `/v1/docs/${encode(collection)}/${encode(id)}`, body, headers }, options);
  }

  /** Applies a JSON Merge Patch (RFC 7396): members merge, `null` removes a member. */
  patch(collection: string, id: string, patch: JsonObject, options: ConditionalWriteOptions = {}): Promise<WriteResult> {
    const headers: Record<string, string> = {};
    if (options.ifMatch !== undefined) headers['if-match'] = `"${options.ifMatch}"`;
    return this.write({ method: 'PATCH', path: `/v1/docs/${encode(collection)}/${encode(id)}`, body: patch, headers, contentType: 'application/merge-patch+json' }, options);
  }

  /** Deletes a document (a no-op success if it does not exist, unless `ifMatch` is given). */
  delete(collection: string, id: string, options: ConditionalWriteOptions = {}): Promise<WriteResult> {
    const headers: Record<string, string> = {};
    if (options.ifMatch !== undefined) headers['if-match'] = `"${options.ifMatch}"`;
    return this.write({ method: 'DELETE', path: `/v1/docs/${encode(collection)}/${encode(id)}`, headers }, options);
  }

  /** Applies up to 100 operations atomically, in one log entry. */
  batch(ops: readonly BatchOp[], options: WriteOptions = {}): Promise<WriteResult> {
    return this.write({ method: 'POST', path: '/v1/batch', body: { ops } }, options);
  }

  /** Reads one document; NotFoundError if it does not exist. `meta.servedBy` says which node answered. */
  async get<T = JsonObject>(collection: string, id: string, options: ReadOptions = {}): Promise<DocumentRead<T>> {
    const { response, attempts } = await this.read(`/v1/docs/${encode(collection)}/${encode(id)}`, {}, options);
    return { ...(response.json as Document<T>), meta: readInfo(response, attempts) };
  }

  /** Lists a collection in id order, page by page (see DocumentList). */
  list<T = JsonObject>(collection: string, query: ListQuery = {}): DocumentList<T> {
    const filters: Record<string, string> = {};
    if (query.prefix !== undefined) filters['prefix'] = query.prefix;
    if (query.start !== undefined) filters['start'] = query.start;
    if (query.end !== undefined) filters['end'] = query.end;
    if (query.limit !== undefined) filters['limit'] = String(query.limit);
    return new DocumentList<T>(async (cursor) => {
      const { response, attempts } = await this.read(`/v1/docs/${encode(collection)}`, cursor === null ? filters : { ...filters, cursor }, query);
      const body = response.json as { documents: Document<T>[]; nextCursor: string | null };
      return { documents: body.documents, nextCursor: body.nextCursor, meta: readInfo(response, attempts) };
    }, query.cursor ?? null);
  }

  /** A read-your-writes session (see Session). */
  session(token: string | null = null): Session {
    return new Session(this, token);
  }

  /**
   * Follows the change feed from `after`: an async iterator of change records in log order that
   * reconnects (to the new leader, or any node) after a failure and resumes after the last index
   * it delivered, so it neither skips nor repeats records.
   */
  changes<T = JsonObject>(options: ChangesOptions = {}): ChangeFeed<T> {
    this.assertOpen();
    const feed = new ChangeFeed<T>(this.feedHost(), options);
    this.feeds.add(feed as ChangeFeed<unknown>);
    feed.onClose(() => this.feeds.delete(feed as ChangeFeed<unknown>));
    return feed;
  }

  /** The cluster as the leader sees it (with replication lag), or as any node sees it. */
  async cluster(options: CallOptions = {}): Promise<ClusterView> {
    const { response } = await this.execute({ kind: 'meta', target: 'leader', method: 'GET', path: '/v1/cluster', query: {}, serverTimeout: false }, options);
    const view = response.json as ClusterView;
    // A follower relays the leader's view (servedBy); credit it to the node it describes.
    const described = typeof view.id === 'string' ? this.topology.find(view.id) : null;
    this.topology.observe(view, described ?? response.endpoint);
    return view;
  }

  /** The leader the client currently routes writes to. */
  get leader(): { readonly id: string; readonly url: string | null; readonly term: number } | null {
    const id = this.topology.leaderId;
    return id === null ? null : { id, url: this.topology.leaderEndpoint()?.url ?? null, term: this.topology.term };
  }

  /** Breaker state, in-flight count and pool counters of one node (by id or URL). */
  nodeState(node: string): NodeState | null {
    const endpoint = this.topology.find(node);
    return endpoint === null ? null : endpoint.state(endpoint.id !== null && endpoint.id === this.topology.leaderId);
  }

  /** Every known node's state. */
  nodes(): NodeState[] {
    return this.topology.routable().map((endpoint) => endpoint.state(endpoint.id !== null && endpoint.id === this.topology.leaderId));
  }

  /** Refreshes the cluster view now (normally done on demand). */
  refresh(): Promise<void> {
    return this.topology.refresh();
  }

  /**
   * Closes the client: calls still running reject with ClientClosedError (a write among them
   * may be indeterminate), change feeds end, and every pooled connection is closed, so the
   * process can exit. Idempotent.
   */
  close(): Promise<void> {
    if (this.closing !== null) return this.closing;
    this.closing = (async () => {
      if (this.probeTimer !== null) clearInterval(this.probeTimer);
      this.probeTimer = null;
      this.shutdown.abort(new Error('client closed'));
      for (const feed of this.feeds) feed.close();
      await Promise.all(this.topology.all().map((endpoint) => endpoint.close().catch(() => undefined)));
    })();
    return this.closing;
  }

  get closed(): boolean {
    return this.closing !== null;
  }

  // ---------------------------------------------------------------------------------------------
  // Internals.

  private assertOpen(): void {
    if (this.closing !== null) throw new ClientClosedError({ code: 'CLIENT_CLOSED', message: 'the client is closed' });
  }

  private baseHeaders(): Record<string, string> {
    return this.options.token === null ? {} : { authorization: `Bearer ${this.options.token}` };
  }

  private async write(
    request: { method: HttpRequest['method']; path: string; body?: unknown; headers?: Record<string, string>; contentType?: string },
    options: WriteOptions,
  ): Promise<WriteResult> {
    const key = options.idempotencyKey ?? randomUUID();
    const ack = options.ack ?? this.options.ack;
    const spec: CallSpec = {
      kind: 'write', target: 'leader', method: request.method, path: request.path,
      query: ack === null ? {} : { ack },
      headers: { ...request.headers, 'idempotency-key': key },
      ...(request.body === undefined ? {} : { body: request.body }),
      ...(request.contentType === undefined ? {} : { contentType: request.contentType }),
      serverTimeout: true,
      idempotencyKey: key,
    };
    const { response, attempts } = await this.execute(spec, options);
    const body = (typeof response.json === 'object' && response.json !== null ? response.json : {}) as Record<string, unknown>;
    const sessionToken = typeof body['sessionToken'] === 'string' ? body['sessionToken'] : headerValue(response.headers, 'x-session-token') ?? '0';
    return { ...body, sessionToken, idempotencyKey: key, attempts } as unknown as WriteResult;
  }

  private read(path: string, query: Record<string, string>, options: ReadOptions): Promise<{ response: HttpResponse; attempts: number }> {
    const consistency = options.consistency ?? this.options.consistency;
    const fullQuery: Record<string, string> = { ...query, consistency };
    if (options.sessionToken !== undefined) fullQuery['token'] = options.sessionToken;
    return this.execute({
      kind: 'read', target: consistency === 'linearizable' ? 'leader' : 'any', method: 'GET', path, query: fullQuery,
      serverTimeout: true, ...(options.node === undefined ? {} : { pin: options.node }),
    }, options);
  }

  /** Runs one call: routing, attempts, retries with backoff within the budget, typed errors. */
  private async execute(spec: CallSpec, options: CallOptions): Promise<{ response: HttpResponse; attempts: number }> {
    this.assertOpen();
    const budget = options.timeoutMs ?? this.options.timeoutMs;
    const deadline = performance.now() + budget;
    const maxAttempts = Math.max(1, options.maxAttempts ?? this.options.retry.maxAttempts);
    const state: CallState = { attempts: 0, maybeApplied: false, avoid: new Set(), delayMs: 0, retryAfterMs: 0, sending: false };
    const controller = new AbortController();
    const userSignal = options.signal;
    if (userSignal?.aborted === true) throw this.abortError(spec, state, false);
    const onUserAbort = (): void => controller.abort('user');
    const onShutdown = (): void => controller.abort('shutdown');
    userSignal?.addEventListener('abort', onUserAbort, { once: true });
    this.shutdown.signal.addEventListener('abort', onShutdown, { once: true });

    const backoff = new BudgetedBackoff(fullJitterBackoff(this.options.retry.initialDelayMs, this.options.retry.maxDelayMs), deadline);
    const policy = retry(handleWhen((error) => this.shouldRetry(error, spec, deadline, controller.signal)), {
      maxAttempts: maxAttempts - 1,
      backoff: new DeferredBackoff(backoff, (delayMs) => { state.delayMs = delayMs; }),
    });
    const retryListener = policy.onRetry((event) => {
      const error = 'error' in event ? event.error : null;
      this.emit('retry', { method: spec.method, path: spec.path, attempt: event.attempt, delayMs: state.delayMs, error: error?.message ?? 'unknown' });
    });
    const running = policy.execute(() => this.attempt(spec, state, deadline, controller.signal), controller.signal);
    // An abort rejects the call at once, whatever the attempt is doing.
    let rejectAbort: (error: unknown) => void = () => undefined;
    const aborted = new Promise<never>((_, reject) => {
      rejectAbort = reject;
    });
    const onAbort = (): void => rejectAbort(new CallAbortedError(state.sending));
    controller.signal.addEventListener('abort', onAbort, { once: true });
    // Backstop: whatever the call waits on (a bulkhead queue, a refresh), it ends with its budget.
    const budgetTimer = setTimeout(() => controller.abort('budget'), budget + BUDGET_GRACE_MS);
    try {
      const response = await Promise.race([running, aborted]);
      if (response.endpoint.id !== null) this.lastServedBy = headerValue(response.headers, 'x-served-by') ?? response.endpoint.id;
      return { response, attempts: state.attempts };
    } catch (error) {
      throw this.finalError(error, spec, state, budget, controller.signal);
    } finally {
      clearTimeout(budgetTimer);
      running.catch(() => undefined);
      aborted.catch(() => undefined);
      retryListener.dispose();
      controller.signal.removeEventListener('abort', onAbort);
      userSignal?.removeEventListener('abort', onUserAbort);
      this.shutdown.signal.removeEventListener('abort', onShutdown);
    }
  }

  private async attempt(spec: CallSpec, state: CallState, deadline: number, signal: AbortSignal): Promise<HttpResponse> {
    // The server's retryAfterMs is a floor under the jittered backoff (an overloaded leader asked
    // for room), never a reason to wait past the call's budget.
    const delayMs = Math.min(Math.max(state.delayMs, state.retryAfterMs), Math.max(0, deadline - performance.now() - 1));
    state.delayMs = 0;
    state.retryAfterMs = 0;
    if (state.attempts > 0 && delayMs > 0) await sleep(delayMs, signal);
    state.attempts++;
    if (signal.aborted) throw new CallAbortedError(false);
    const endpoint = await this.route(spec, state, deadline, signal);
    const remaining = deadline - performance.now();
    if (remaining < 1) throw new BudgetExhausted(`the call's budget ran out after ${state.attempts - 1} attempt(s)`);
    const attemptDeadline = performance.now() + Math.min(this.options.attemptTimeoutMs, remaining);
    const headers: Record<string, string> = { ...this.baseHeaders(), ...spec.headers };
    let body: string | undefined;
    if (spec.body !== undefined) {
      body = JSON.stringify(spec.body);
      headers['content-type'] = spec.contentType ?? 'application/json';
    }
    // Built when the request leaves the bulkhead queue, from the attempt's time left then.
    const build = (timeLeftMs: number): HttpRequest => {
      state.sending = true; // out of the queue: from here on the request may reach the node
      const query = { ...spec.query };
      // The server gives up a little before we do, so it answers with a typed error instead of us cutting the socket.
      if (spec.serverTimeout) query['timeoutMs'] = String(Math.max(1, Math.floor(timeLeftMs - Math.min(100, timeLeftMs / 4))));
      return { method: spec.method, path: spec.path + queryString(query), headers, ...(body === undefined ? {} : { body }) };
    };
    const started = performance.now();
    let response: HttpResponse;
    try {
      response = await endpoint.send(build, attemptDeadline, signal);
    } catch (error) {
      if (error instanceof TransportError) {
        state.avoid.add(endpoint);
        if (spec.kind === 'write' && error.sent) state.maybeApplied = true;
      } else if (error instanceof CallAbortedError) {
        if (spec.kind === 'write' && error.sent) state.maybeApplied = true;
      } else if (error instanceof BrokenCircuitError) {
        state.avoid.add(endpoint);
      }
      throw error;
    } finally {
      state.sending = false;
    }
    const servedBy = headerValue(response.headers, 'x-served-by');
    this.emit('response', {
      method: spec.method, path: spec.path, status: response.status, node: endpoint.label, servedBy,
      durationMs: performance.now() - started, attempt: state.attempts,
    });
    this.noteHints(spec, response);
    if (response.status >= 200 && response.status < 300) return response;
    const error = errorFromResponse(response.status, response.json, endpoint.label);
    const retryAfterMs = error.details['retryAfterMs'];
    if (typeof retryAfterMs === 'number' && Number.isFinite(retryAfterMs) && retryAfterMs > 0) state.retryAfterMs = Math.min(retryAfterMs, RETRY_AFTER_MS_MAX);
    if (spec.kind === 'write') {
      if (error.outcome === 'indeterminate') state.maybeApplied = true;
      else if (!error.retryable) state.maybeApplied = false; // a definitive answer for this key
    }
    if (LEADER_HINT_CODES.has(error.code)) {
      this.topology.leaderSuspect(endpoint);
      void this.topology.refresh();
    }
    // A read the node could not serve is tried elsewhere. A leader's 503 (OVERLOADED,
    // NOT_ENOUGH_REPLICAS, ...) is the leader's condition: a follower would only forward to it.
    if (spec.target === 'any' ? AVOID_CODES.has(error.code) || response.status === 503 : error.code === 'UNAVAILABLE') state.avoid.add(endpoint);
    throw error;
  }

  /** Learns from a successful answer: a forwarded write or a newer term means our leader is stale. */
  private noteHints(spec: CallSpec, response: HttpResponse): void {
    if (spec.kind !== 'write') return;
    const forwardedTo = headerValue(response.headers, 'x-forwarded-to');
    const term = (response.json as { term?: unknown } | null)?.term;
    if (forwardedTo !== null || (typeof term === 'number' && term > this.topology.term)) void this.topology.refresh();
  }

  private async route(spec: CallSpec, state: CallState, deadline: number, signal: AbortSignal): Promise<Endpoint> {
    if (spec.pin !== undefined) {
      const pinned = this.topology.find(spec.pin);
      if (pinned === null) throw new ConfigurationError({ code: 'UNKNOWN_NODE', message: `no known node '${spec.pin}' (known: ${this.topology.routable().map((e) => e.label).join(', ')})` });
      return pinned;
    }
    if (this.topology.pending !== null) await this.waitForRefresh(deadline, signal);
    if (spec.target === 'leader') {
      const good = (endpoint: Endpoint | null): endpoint is Endpoint => endpoint !== null && endpoint.usable() && !state.avoid.has(endpoint);
      let leader = this.topology.leaderEndpoint();
      if (!good(leader)) {
        void this.topology.refresh();
        await this.waitForRefresh(deadline, signal);
        leader = this.topology.leaderEndpoint();
      }
      if (good(leader)) return leader;
      // No usable leader known: any node will forward a write or answer NO_LEADER (then we retry).
    }
    return this.pickAny(state);
  }

  private pickAny(state: CallState): Endpoint {
    const candidates = this.topology.routable();
    const usable = candidates.filter((endpoint) => endpoint.usable());
    const fresh = usable.filter((endpoint) => !state.avoid.has(endpoint));
    const pool = fresh.length > 0 ? fresh : usable.length > 0 ? usable : candidates;
    const chosen = pool[this.roundRobin++ % pool.length];
    if (chosen === undefined) throw new UnavailableError({ code: 'NODE_UNREACHABLE', retryable: true, message: 'no node is known' });
    return chosen;
  }

  private async waitForRefresh(deadline: number, signal: AbortSignal): Promise<void> {
    const pending = this.topology.pending;
    if (pending === null) return;
    const waitMs = Math.min(deadline - performance.now(), this.options.discoveryTimeoutMs);
    const stop = new AbortController();
    const onAbort = (): void => stop.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await Promise.race([pending, sleep(waitMs, stop.signal)]);
    } finally {
      stop.abort();
      signal.removeEventListener('abort', onAbort);
    }
  }

  private shouldRetry(error: Error, spec: CallSpec, deadline: number, signal: AbortSignal): boolean {
    if (signal.aborted || this.closing !== null) return false;
    if (deadline - performance.now() < 2) return false;
    if (error instanceof TransportError || error instanceof BrokenCircuitError || error instanceof QueueTimeoutError) return true;
    if (error instanceof UnderstudyError && error.status !== null) {
      if (error.status === 503) return error.retryable;
      if (error.code === 'SESSION_TIMEOUT') return spec.kind !== 'write';
      if (error.code === 'TIMEOUT' || error.code === 'OUTCOME_UNKNOWN') return spec.kind === 'write' && spec.idempotencyKey !== undefined;
    }
    return false;
  }

  private abortError(spec: CallSpec, state: CallState, sent: boolean): UnderstudyError {
    const indeterminate = spec.kind === 'write' && (state.maybeApplied || sent);
    const closed = this.closing !== null;
    const init = {
      code: closed ? 'CLIENT_CLOSED' : 'ABORTED',
      outcome: (indeterminate ? 'indeterminate' : 'rejected') as Outcome,
      retryable: indeterminate,
      message: `${closed ? 'the client was closed' : 'the call was aborted'}${indeterminate ? '; the write may have applied: retry with the same idempotency key to find out' : ''}`,
    };
    const error = closed ? new ClientClosedError(init) : new AbortError(init);
    error.attempts = state.attempts;
    error.idempotencyKey = spec.idempotencyKey ?? null;
    return error;
  }

  /** The typed error a call ends with. */
  private finalError(error: unknown, spec: CallSpec, state: CallState, budget: number, signal: AbortSignal): UnderstudyError {
    const overBudget = signal.aborted && signal.reason === 'budget';
    if (!overBudget && (signal.aborted || error instanceof CallAbortedError)) {
      return this.abortError(spec, state, error instanceof CallAbortedError && error.sent);
    }
    if (overBudget && error instanceof CallAbortedError && error.sent && spec.kind === 'write') state.maybeApplied = true;
    let result: UnderstudyError;
    if (overBudget && !(error instanceof UnderstudyError)) {
      result = new TimeoutError({ code: 'CLIENT_TIMEOUT', retryable: true, cause: error, message: `the call did not complete within its ${budget} ms budget (${state.attempts} attempt(s))` });
    } else if (error instanceof QueueTimeoutError) {
      result = new TimeoutError({ code: 'CLIENT_TIMEOUT', retryable: true, node: error.endpoint.label, cause: error, message: error.message });
    } else if (error instanceof UnderstudyError) {
      result = error;
    } else if (error instanceof TransportError) {
      result = error.kind === 'timeout'
        ? new TimeoutError({ code: 'CLIENT_TIMEOUT', retryable: true, node: error.endpoint.label, cause: error, message: `${error.message} (budget ${budget} ms, ${state.attempts} attempt(s))` })
        : new UnavailableError({ code: 'NODE_UNREACHABLE', retryable: true, node: error.endpoint.label, cause: error, message: `${error.message} (after ${state.attempts} attempt(s))` });
    } else if (error instanceof BrokenCircuitError) {
      result = new UnavailableError({ code: 'CIRCUIT_OPEN', retryable: true, cause: error, message: `every node the call could use has an open circuit breaker (after ${state.attempts} attempt(s))` });
    } else if (error instanceof BudgetExhausted) {
      result = new TimeoutError({ code: 'CLIENT_TIMEOUT', retryable: true, cause: error, message: `the call did not complete within its ${budget} ms budget (${state.attempts} attempt(s))` });
    } else {
      result = new UnderstudyError({ code: 'CLIENT_ERROR', message: (error as Error)?.message ?? String(error), cause: error });
    }
    if (spec.kind === 'write' && state.maybeApplied && !(result instanceof IndeterminateError)) {
      result = new IndeterminateError({
        code: 'INDETERMINATE', status: result.status, retryable: true, outcome: 'indeterminate', node: result.node, cause: result,
        details: result.details,
        message: `the write may or may not have applied (${result.code}: ${result.message}); retry with idempotency key ${spec.idempotencyKey} to find out`,
      });
    }
    result.attempts = state.attempts;
    result.idempotencyKey = spec.idempotencyKey ?? null;
    return result;
  }

  private onTransportFailure(endpoint: Endpoint, error: TransportError, becameDown: boolean): void {
    if (becameDown) this.emit('nodeDown', { id: endpoint.id, url: endpoint.url, reason: error.message });
    if (endpoint.id !== null && endpoint.id === this.topology.leaderId) void this.topology.refresh();
  }

  private async fetchView(endpoint: Endpoint): Promise<ClusterView> {
    const response = await endpoint.send({ method: 'GET', path: '/v1/cluster?local=true', headers: this.baseHeaders() }, performance.now() + this.options.discoveryTimeoutMs, this.shutdown.signal);
    if (response.status !== 200) throw errorFromResponse(response.status, response.json, endpoint.label);
    return response.json as ClusterView;
  }

  /** Probes nodes that are down or whose breaker is not closed, so they come back without user traffic. */
  private probe(): void {
    if (this.closing !== null) return;
    for (const endpoint of this.topology.routable()) {
      if ((endpoint.up && endpoint.breakerState === 'closed') || !endpoint.usable() || this.probing.has(endpoint)) continue;
      this.probing.add(endpoint);
      this.fetchView(endpoint)
        .then((view) => this.topology.observe(view, endpoint))
        .catch(() => undefined)
        .finally(() => this.probing.delete(endpoint));
    }
    if (!this.topology.hasUsableLeader()) void this.topology.refresh();
  }

  private feedHost(): FeedHost {
    return {
      options: this.options,
      shutdown: this.shutdown.signal,
      headers: () => this.baseHeaders(),
      pick: (pin) => {
        if (pin !== undefined) {
          const pinned = this.topology.find(pin);
          if (pinned === null) throw new ConfigurationError({ code: 'UNKNOWN_NODE', message: `no known node '${pin}'` });
          return pinned;
        }
        const leader = this.topology.leaderEndpoint();
        if (leader !== null && leader.usable()) return leader;
        return this.pickAny({ attempts: 0, maybeApplied: false, avoid: new Set(), delayMs: 0, retryAfterMs: 0, sending: false });
      },
      refresh: async (signal) => {
        void this.topology.refresh();
        await this.waitForRefresh(performance.now() + this.options.discoveryTimeoutMs, signal);
      },
      reportFailure: (endpoint, reason) => {
        if (endpoint.markDown(reason)) this.emit('nodeDown', { id: endpoint.id, url: endpoint.url, reason });
        this.topology.leaderSuspect(endpoint);
      },
    };
  }
}

/**
 * Connects to a cluster: `connect('understudy://h1:7001,h2:7002?token=...')` or
 * `connect({ seeds: [...], ... })`. Resolves once a seed answered; rejects with UnavailableError
 * if none did within `connectTimeoutMs`, or UnauthorizedError for a wrong token.
 */
export async function connect(options: ConnectOptions | string): Promise<UnderstudyClient> {
  const client = new UnderstudyClient(options);
  try {
    return await client.ready();
  } catch (error) {
    await client.close();
    throw error;
  }
}
