/**
 * The catalogue of errors the HTTP API returns: a stable UPPER_SNAKE code, an HTTP status, and
 * the outcome class a client needs to decide whether to retry:
 *   rejected      -- definitely not applied; fix the request (4xx) or retry elsewhere (5xx)
 *   indeterminate -- may or may not have applied; retry with the same Idempotency-Key
 * docs/api.md lists every code; a test keeps the two in sync.
 */
export type OutcomeClass = 'rejected' | 'indeterminate';

interface ErrorSpec {
  readonly status: number;
  readonly outcome: OutcomeClass;
  readonly retryable: boolean;
  readonly description: string;
}

export const ERROR_CATALOGUE = {
  BAD_REQUEST: { status: 400, outcome: 'rejected', retryable: false, description: 'The request is malformed.' },
  INVALID_JSON: { status: 400, outcome: 'rejected', retryable: false, description: 'The body is not valid JSON.' },
  INVALID_COLLECTION: { status: 400, outcome: 'rejected', retryable: false, description: 'The collection name is invalid.' },
  INVALID_ID: { status: 400, outcome: 'rejected', retryable: false, description: 'The document id is invalid.' },
  INVALID_BODY: { status: 400, outcome: 'rejected', retryable: false, description: 'The document body is not a JSON object.' },
  INVALID_PATCH: { status: 400, outcome: 'rejected', retryable: false, description: 'The merge patch cannot be applied.' },
  INVALID_PARAMETER: { status: 400, outcome: 'rejected', retryable: false, description: 'A query parameter or header has an invalid value.' },
  UNKNOWN_PARAMETER: { status: 400, outcome: 'rejected', retryable: false, description: 'A query parameter is not recognised.' },
  INVALID_IDEMPOTENCY_KEY: { status: 400, outcome: 'rejected', retryable: false, description: 'The Idempotency-Key header is invalid.' },
  INVALID_SESSION_TOKEN: { status: 400, outcome: 'rejected', retryable: false, description: 'The session token is invalid.' },
  BATCH_EMPTY: { status: 400, outcome: 'rejected', retryable: false, description: 'A batch needs at least one operation.' },
  BATCH_TOO_LARGE: { status: 413, outcome: 'rejected', retryable: false, description: 'The batch has too many operations.' },
  DOCUMENT_TOO_LARGE: { status: 413, outcome: 'rejected', retryable: false, description: 'The document exceeds the size limit.' },
  DOCUMENT_TOO_DEEP: { status: 400, outcome: 'rejected', retryable: false, description: 'The document nests too deeply.' },
  BODY_TOO_LARGE: { status: 413, outcome: 'rejected', retryable: false, description: 'The request body exceeds the size limit.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, outcome: 'rejected', retryable: false, description: 'The body must be JSON.' },
  UNAUTHORIZED: { status: 401, outcome: 'rejected', retryable: false, description: 'A valid bearer token is required.' },
  NOT_FOUND: { status: 404, outcome: 'rejected', retryable: false, description: 'The document does not exist.' },
  ROUTE_NOT_FOUND: { status: 404, outcome: 'rejected', retryable: false, description: 'No such endpoint.' },
  METHOD_NOT_ALLOWED: { status: 405, outcome: 'rejected', retryable: false, description: 'The method is not allowed here.' },
  ORIGIN_NOT_ALLOWED: { status: 403, outcome: 'rejected', retryable: false, description: 'Cross-origin requests from this origin are not allowed.' },
  SWITCHOVER_REFUSED: { status: 409, outcome: 'rejected', retryable: false, description: 'The switchover target is unknown, not a voter, already the leader, unreachable or too far behind.' },
  FORCE_FAILOVER_REFUSED: { status: 409, outcome: 'rejected', retryable: false, description: 'A forced failover was refused: a leader is alive or a majority of voters is reachable, so the safe paths apply.' },
  UNKNOWN_NODE: { status: 404, outcome: 'rejected', retryable: false, description: 'The dev cluster has no node with this id.' },
  NODE_NOT_RUNNING: { status: 409, outcome: 'rejected', retryable: false, description: 'The dev cluster node is not running.' },
  BACKUP_IN_PROGRESS: { status: 429, outcome: 'rejected', retryable: true, description: 'A backup is already being taken on this node; retry when it is done.' },
  ALREADY_EXISTS: { status: 412, outcome: 'rejected', retryable: false, description: 'Create-only write, but the document exists.' },
  PRECONDITION_FAILED: { status: 412, outcome: 'rejected', retryable: false, description: 'The document version does not match If-Match.' },
  CHANGES_COMPACTED: { status: 410, outcome: 'rejected', retryable: false, description: 'The change feed no longer holds that index.' },
  NO_LEADER: { status: 503, outcome: 'rejected', retryable: true, description: 'No leader is known right now; retry after the hinted delay.' },
  NOT_LEADER: { status: 503, outcome: 'rejected', retryable: true, description: 'This node could not reach the leader to forward the write.' },
  LEADERSHIP_TRANSFER: { status: 503, outcome: 'rejected', retryable: true, description: 'Leadership is moving; retry shortly.' },
  OVERLOADED: { status: 503, outcome: 'rejected', retryable: true, description: 'Too many writes are waiting; retry with backoff.' },
  NOT_APPLIED: { status: 503, outcome: 'rejected', retryable: true, description: 'A leader change superseded the write; it was not applied.' },
  NOT_ENOUGH_REPLICAS: { status: 503, outcome: 'rejected', retryable: true, description: 'ack=all needs every voter, and one has not been heard from within an election timeout; the write was not attempted.' },
  READ_NOT_CONFIRMED: { status: 503, outcome: 'rejected', retryable: true, description: 'Leadership could not be confirmed for a linearizable read.' },
  SESSION_TIMEOUT: { status: 504, outcome: 'rejected', retryable: true, description: 'This node did not catch up to the session token in time.' },
  TIMEOUT: { status: 504, outcome: 'indeterminate', retryable: true, description: 'The write did not complete in time; it may still apply. Retry with the same Idempotency-Key.' },
  OUTCOME_UNKNOWN: { status: 504, outcome: 'indeterminate', retryable: true, description: 'The node lost track of the write (leader change or shutdown); it may have applied. Retry with the same Idempotency-Key.' },
  SWITCHOVER_TIMEOUT: { status: 504, outcome: 'indeterminate', retryable: true, description: 'Leadership did not move to the target in time; check the cluster view before retrying.' },
  UNAVAILABLE: { status: 503, outcome: 'rejected', retryable: true, description: 'The node is starting, stopping or not serving.' },
  STORAGE_ERROR: { status: 507, outcome: 'indeterminate', retryable: false, description: 'The node could not write to its disk (for example, the disk is full).' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.status = ERROR_CATALOGUE[code].status;
  }

  toJSON(): Record<string, unknown> {
    const spec = ERROR_CATALOGUE[this.code];
    return { code: this.code, message: this.message, outcome: spec.outcome, retryable: spec.retryable, ...this.details };
  }
}
