/**
 * One node as the client sees it: a keep-alive connection pool (undici Pool), a bulkhead that
 * bounds concurrent requests and the queue waiting for them, and a circuit breaker that opens
 * after consecutive transport failures so calls stop waiting on a dead or frozen node.
 *
 * Order: bulkhead (slot) -> breaker (admission) -> HTTP. Only transport failures (connection
 * refused or reset, an attempt timing out) count against the breaker: any HTTP answer, even a
 * 503, proves the node is alive. The breaker closes after a successful trial in half-open state.
 */
import { Pool } from 'undici';
import {
  BulkheadRejectedError as CockatielBulkheadRejected, CircuitState, ConsecutiveBreaker,
  TaskCancelledError, bulkhead, circuitBreaker, handleWhen, type BulkheadPolicy, type CircuitBreakerPolicy,
} from 'cockatiel';
import { BulkheadRejectedError } from './errors.ts';
import type { ResolvedOptions } from './options.ts';

export type BreakerState = 'closed' | 'open' | 'halfOpen' | 'isolated';

/** The public snapshot of a node's state (client.nodeState(id)). */
export interface NodeState {
  readonly id: string | null;
  readonly url: string;
  readonly breaker: BreakerState;
  /** Requests running on this node now (never above bulkhead.maxConcurrent). */
  readonly inFlight: number;
  /** The most requests that ever ran at once on this node. */
  readonly peakInFlight: number;
  /** Requests waiting for a bulkhead slot. */
  readonly queued: number;
  /** False after a transport failure, until the node answers again. */
  readonly up: boolean;
  readonly isLeader: boolean;
  readonly lastError: string | null;
  /** undici pool counters: open sockets, idle sockets, requests running and waiting in the pool. */
  readonly pool: { readonly connected: number; readonly free: number; readonly running: number; readonly pending: number };
}

/**
 * A failure below HTTP: no response. `sent` is false when the request certainly never reached the
 * server (connection refused, connect timeout), true when it may have (reset, timeout).
 * `blamesNode` is false for an attempt that timed out only because its call had almost no time
 * left: that says nothing about the node, so it does not count against its breaker.
 */
export class TransportError extends Error {
  override name = 'TransportError';
  constructor(
    message: string,
    readonly kind: 'connect' | 'reset' | 'timeout',
    readonly sent: boolean,
    readonly endpoint: Endpoint,
    cause?: unknown,
    readonly blamesNode = true,
  ) {
    super(message, cause === undefined ? undefined : { cause });
  }
}

/** A node gets this long (or the whole attempt timeout, if shorter) before a timeout is its fault. */
const FAIR_ATTEMPT_MS = 250;

/** The attempt's time ran out while it waited for a bulkhead slot: it was never sent. */
export class QueueTimeoutError extends Error {
  override name = 'QueueTimeoutError';
  constructor(readonly endpoint: Endpoint, waitedMs: number) {
    super(`waited ${Math.round(waitedMs)} ms for a free slot on ${endpoint.label} and ran out of time; the request was not sent`);
  }
}

/** The caller's signal fired while the request was running. */
export class CallAbortedError extends Error {
  override name = 'CallAbortedError';
  constructor(readonly sent: boolean) {
    super('the call was aborted');
  }
}

export interface HttpRequest {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body?: string;
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  readonly json: unknown;
  readonly endpoint: Endpoint;
}

const CONNECT_CODES = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'EADDRNOTAVAIL']);

function errorCode(error: unknown): string | undefined {
  const direct = (error as { code?: unknown }).code;
  if (typeof direct === 'string') return direct;
  const cause = (error as { cause?: { code?: unknown } }).cause?.code;
  return typeof cause === 'string' ? cause : undefined;
}

export function headerValue(headers: Record<string, string | string[] | undefined>, name: string): string | null {
  const value = headers[name];
  if (Array.isArray(value)) return value[0] ?? null;
  return value ?? null;
}

export interface EndpointHooks {
  /** A transport failure; `becameDown` on the first one after the node was up. */
  onTransportFailure(endpoint: Endpoint, error: TransportError, becameDown: boolean): void;
  /** An HTTP answer; `becameUp` on the first one after the node was down. */
  onAnswer(endpoint: Endpoint, becameUp: boolean): void;
  onBreakerState(endpoint: Endpoint, state: BreakerState): void;
}

export class Endpoint {
  /** The node id, once a /v1/cluster view named it. */
  id: string | null = null;
  up = true;
  downSince: number | null = null;
  lastError: string | null = null;
  inFlight = 0;
  peakInFlight = 0;
  breakerOpenedAt: number | null = null;
  readonly pool: Pool;
  private readonly breakerPolicy: CircuitBreakerPolicy;
  private readonly bulkheadPolicy: BulkheadPolicy;
  private readonly options: ResolvedOptions;

  constructor(readonly url: string, options: ResolvedOptions, private readonly hooks: EndpointHooks) {
    this.options = options;
    this.pool = new Pool(url, {
      // One connection per bulkhead slot, so undici never queues behind the bulkhead's back.
      connections: options.bulkhead.maxConcurrent,
      pipelining: 1,
      keepAliveTimeout: options.keepAliveTimeoutMs,
      connectTimeout: Math.min(options.attemptTimeoutMs, 10_000),
    });
    this.bulkheadPolicy = bulkhead(options.bulkhead.maxConcurrent, options.bulkhead.maxQueue);
    this.breakerPolicy = circuitBreaker(handleWhen((error) => error instanceof TransportError && error.blamesNode), {
      halfOpenAfter: options.breaker.halfOpenAfterMs,
      breaker: new ConsecutiveBreaker(options.breaker.failureThreshold),
    });
    this.breakerPolicy.onStateChange((state) => {
      const name = breakerStateName(state);
      this.breakerOpenedAt = state === CircuitState.Open ? Date.now() : state === CircuitState.Closed ? null : this.breakerOpenedAt;
      this.hooks.onBreakerState(this, name);
    });
  }

  get label(): string {
    return this.id ?? this.url;
  }

  get breakerState(): BreakerState {
    return breakerStateName(this.breakerPolicy.state);
  }

  /**
   * Whether a call should be routed here now: the breaker admits it (closed, or open long enough
   * for a trial) and the node did not just fail (a failed node is retried after a short pause).
   */
  usable(now = Date.now()): boolean {
    const state = this.breakerPolicy.state;
    if (state === CircuitState.HalfOpen || state === CircuitState.Isolated) return false;
    if (state === CircuitState.Open) return this.breakerOpenedAt !== null && now - this.breakerOpenedAt >= this.options.breaker.halfOpenAfterMs;
    if (!this.up && this.downSince !== null) return now - this.downSince >= Math.min(250, this.options.breaker.halfOpenAfterMs);
    return true;
  }

  state(isLeader: boolean): NodeState {
    const stats = this.pool.stats;
    return {
      id: this.id,
      url: this.url,
      breaker: this.breakerState,
      inFlight: this.inFlight,
      peakInFlight: this.peakInFlight,
      queued: this.options.bulkhead.maxQueue - this.bulkheadPolicy.queueSlots,
      up: this.up,
      isLeader,
      lastError: this.lastError,
      pool: { connected: stats.connected, free: stats.free, running: stats.running, pending: stats.pending },
    };
  }

  /**
   * Sends one request: waits for a bulkhead slot, passes the breaker, and reads the whole body,
   * all before `deadline` (a performance.now() time). The request is built once a slot is free,
   * from the time left then, so a wait in the queue is not also granted to the server.
   * Throws TransportError, QueueTimeoutError, CallAbortedError, BrokenCircuitError (cockatiel)
   * or BulkheadRejectedError.
   */
  async send(build: HttpRequest | ((timeLeftMs: number) => HttpRequest), deadline: number, signal: AbortSignal): Promise<HttpResponse> {
    const queuedAt = performance.now();
    const run = (): Promise<HttpResponse> => {
      const timeLeft = deadline - performance.now();
      if (timeLeft < 1) throw new QueueTimeoutError(this, performance.now() - queuedAt);
      return this.exchange(typeof build === 'function' ? build(timeLeft) : build, timeLeft, signal);
    };
    try {
      return await this.bulkheadPolicy.execute(() => this.breakerPolicy.execute(run, signal), signal);
    } catch (error) {
      if (error instanceof CockatielBulkheadRejected) {
        throw new BulkheadRejectedError({
          code: 'BULKHEAD_FULL', retryable: true, node: this.label,
          message: `node ${this.label} has ${this.options.bulkhead.maxConcurrent} requests running and ${this.options.bulkhead.maxQueue} waiting; the call was not sent`,
        });
      }
      if (error instanceof TaskCancelledError) throw new CallAbortedError(false);
      throw error;
    }
  }

  private async exchange(request: HttpRequest, timeoutMs: number, signal: AbortSignal): Promise<HttpResponse> {
    if (signal.aborted) throw new CallAbortedError(false);
    const controller = new AbortController();
    const timedOut = new Error('attempt timeout');
    const timer = setTimeout(() => controller.abort(timedOut), Math.max(1, timeoutMs));
    const onAbort = (): void => controller.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    this.inFlight++;
    if (this.inFlight > this.peakInFlight) this.peakInFlight = this.inFlight;
    try {
      const response = await this.pool.request({
        method: request.method,
        path: request.path,
        headers: request.headers,
        body: request.body ?? null,
        signal: controller.signal,
        // Backstops only: the attempt timer above fires first.
        headersTimeout: timeoutMs + 1_000,
        bodyTimeout: timeoutMs + 1_000,
      });
      const text = await response.body.text();
      let json: unknown = null;
      if (text !== '') {
        try {
          json = JSON.parse(text);
        } catch {
          json = text;
        }
      }
      this.markAnswered();
      return { status: response.statusCode, headers: response.headers, text, json, endpoint: this };
    } catch (error) {
      if (controller.signal.aborted && controller.signal.reason !== timedOut) throw new CallAbortedError(true);
      const failure = this.classify(error, controller.signal.reason === timedOut, timeoutMs);
      if (failure.blamesNode) this.hooks.onTransportFailure(this, failure, this.markDown(failure.message));
      throw failure;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      this.inFlight--;
    }
  }

  private classify(error: unknown, timedOut: boolean, timeoutMs: number): TransportError {
    if (timedOut) {
      const fair = timeoutMs >= Math.min(this.options.attemptTimeoutMs, FAIR_ATTEMPT_MS);
      return new TransportError(`${this.label} did not answer within ${Math.round(timeoutMs)} ms${fair ? '' : " (the call's budget was nearly spent)"}`, 'timeout', true, this, error, fair);
    }
    const code = errorCode(error);
    const message = `${this.label}: ${(error as Error).message ?? String(error)}${code === undefined ? '' : ` (${code})`}`;
    if (code !== undefined && CONNECT_CODES.has(code)) return new TransportError(message, 'connect', false, this, error);
    if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return new TransportError(message, 'timeout', true, this, error);
    return new TransportError(message, 'reset', true, this, error);
  }

  markAnswered(): void {
    const becameUp = !this.up;
    this.up = true;
    this.downSince = null;
    this.hooks.onAnswer(this, becameUp);
  }

  markDown(reason: string): boolean {
    this.lastError = reason;
    if (!this.up) return false;
    this.up = false;
    this.downSince = Date.now();
    return true;
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}

function breakerStateName(state: CircuitState): BreakerState {
  switch (state) {
    case CircuitState.Closed: return 'closed';
    case CircuitState.Open: return 'open';
    case CircuitState.HalfOpen: return 'halfOpen';
    default: return 'isolated';
  }
}
