/**
 * Typed errors of the client. Every error is an UnderstudyError with
 *   code      -- the server's catalogue code (docs/api.md), or a client code (CLIENT_TIMEOUT, ...);
 *   status    -- the HTTP status, or null when no response was received;
 *   retryable -- whether the same call may succeed if tried again later;
 *   outcome   -- 'rejected' (definitely not applied) or 'indeterminate' (a write that may have
 *                applied: retry it with the same idempotency key to find out).
 * Switch on the class (`instanceof NotFoundError`) or on `code`; never on the message.
 */

export type Outcome = 'rejected' | 'indeterminate';

export interface ErrorInit {
  readonly code: string;
  readonly message: string;
  readonly status?: number | null;
  readonly retryable?: boolean;
  readonly outcome?: Outcome;
  /** Extra members of the server's error body (currentVersion, retryAfterMs, opIndex, ...). */
  readonly details?: Record<string, unknown>;
  /** The node that answered or failed (id or URL). */
  readonly node?: string | null;
  readonly cause?: unknown;
}

export class UnderstudyError extends Error {
  override name = 'UnderstudyError';
  readonly code: string;
  readonly status: number | null;
  readonly retryable: boolean;
  readonly outcome: Outcome;
  readonly details: Record<string, unknown>;
  readonly node: string | null;
  /** How many attempts the call made before it gave up (set by the client). */
  attempts = 0;
  /** The Idempotency-Key of the write, to retry it later with the same key. */
  idempotencyKey: string | null = null;

  constructor(init: ErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.code = init.code;
    this.status = init.status ?? null;
    this.retryable = init.retryable ?? false;
    this.outcome = init.outcome ?? 'rejected';
    this.details = init.details ?? {};
    this.node = init.node ?? null;
  }
}

/** 404 NOT_FOUND: the document does not exist. */
export class NotFoundError extends UnderstudyError {
  override name = 'NotFoundError';
}

/** 412: a condition failed. `currentVersion` is the version the write ran into (null: no document). */
export class PreconditionFailedError extends UnderstudyError {
  override name = 'PreconditionFailedError';
  get currentVersion(): number | null {
    const value = this.details['currentVersion'];
    return typeof value === 'number' ? value : null;
  }
}

/** 412 PRECONDITION_FAILED: the document is not at the version given in `ifMatch`. */
export class VersionConflictError extends PreconditionFailedError {
  override name = 'VersionConflictError';
}

/** 412 ALREADY_EXISTS: a create-only write found the document. */
export class AlreadyExistsError extends PreconditionFailedError {
  override name = 'AlreadyExistsError';
}

/** 4xx: the request is invalid (`code` and `message` are the server's). Not retryable. */
export class BadRequestError extends UnderstudyError {
  override name = 'BadRequestError';
}

/** 401 UNAUTHORIZED: the token is missing or wrong. */
export class UnauthorizedError extends UnderstudyError {
  override name = 'UnauthorizedError';
}

/** 410 CHANGES_COMPACTED: the change feed no longer holds that position (`oldestIndex`). */
export class ChangesCompactedError extends UnderstudyError {
  override name = 'ChangesCompactedError';
  get oldestIndex(): number | null {
    const value = this.details['oldestIndex'];
    return typeof value === 'number' ? value : null;
  }
}

/**
 * The cluster could not serve the call: 503 (NO_LEADER, OVERLOADED, ...), no node reachable
 * (NODE_UNREACHABLE), every breaker open (CIRCUIT_OPEN). The request was not applied.
 */
export class UnavailableError extends UnderstudyError {
  override name = 'UnavailableError';
  /** The server's hint (retryAfterMs), if it gave one. */
  get retryAfterMs(): number | null {
    const value = this.details['retryAfterMs'];
    return typeof value === 'number' ? value : null;
  }
}

/**
 * The call did not complete in time: the call's budget ran out (CLIENT_TIMEOUT) or a node did
 * not catch up with a session token (SESSION_TIMEOUT). For reads only; a write that timed out
 * after it may have been sent is an IndeterminateError.
 */
export class TimeoutError extends UnderstudyError {
  override name = 'TimeoutError';
}

/**
 * A write whose outcome is unknown: an attempt may have applied (the connection broke after it
 * was sent, or the server answered TIMEOUT/OUTCOME_UNKNOWN) and the budget ran out before a retry
 * could tell. Retry with `idempotencyKey` to learn the outcome; it will not apply twice.
 */
export class IndeterminateError extends UnderstudyError {
  override name = 'IndeterminateError';
}

/** The call was aborted through its AbortSignal (or by close()). A write may be indeterminate. */
export class AbortError extends UnderstudyError {
  override name = 'AbortError';
}

/** This node's bulkhead is full (maxConcurrent running and maxQueue waiting): shed load. */
export class BulkheadRejectedError extends UnderstudyError {
  override name = 'BulkheadRejectedError';
}

/** 5xx other than 503/504 (507 STORAGE_ERROR, 500 INTERNAL). */
export class ServerError extends UnderstudyError {
  override name = 'ServerError';
}

/** The client was closed. */
export class ClientClosedError extends UnderstudyError {
  override name = 'ClientClosedError';
}

/** Invalid options or connection string. */
export class ConfigurationError extends UnderstudyError {
  override name = 'ConfigurationError';
}

/** Builds the typed error for an HTTP error response (body: `{ code, message, outcome, retryable, ... }`). */
export function errorFromResponse(status: number, body: unknown, node: string | null): UnderstudyError {
  const record = typeof body === 'object' && body !== null && !Array.isArray(body) ? body as Record<string, unknown> : {};
  const code = typeof record['code'] === 'string' ? record['code'] : status === 503 ? 'UNAVAILABLE' : `HTTP_${status}`;
  const message = typeof record['message'] === 'string' ? record['message'] : typeof body === 'string' && body !== '' ? body.slice(0, 300) : `HTTP ${status}`;
  const outcome: Outcome = record['outcome'] === 'indeterminate' ? 'indeterminate' : 'rejected';
  const details: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(record)) {
    if (!['code', 'message', 'outcome', 'retryable'].includes(key)) details[key] = value;
  }
  // A 503 without a catalogue code (Fastify's own answer while a node shuts down) is retryable.
  const retryable = typeof record['retryable'] === 'boolean' ? record['retryable'] : status === 503;
  const init: ErrorInit = { code, message, status, retryable, outcome, details, node };
  if (code === 'NOT_FOUND') return new NotFoundError(init);
  if (code === 'PRECONDITION_FAILED') return new VersionConflictError(init);
  if (code === 'ALREADY_EXISTS') return new AlreadyExistsError(init);
  if (code === 'CHANGES_COMPACTED') return new ChangesCompactedError(init);
  if (code === 'UNAUTHORIZED') return new UnauthorizedError(init);
  if (code === 'SESSION_TIMEOUT') return new TimeoutError(init);
  if (status === 412) return new PreconditionFailedError(init);
  if (status === 503) return new UnavailableError(init);
  if (status === 504) return outcome === 'indeterminate' ? new IndeterminateError(init) : new TimeoutError(init);
  if (status >= 400 && status < 500) return new BadRequestError(init);
  return new ServerError(init);
}
