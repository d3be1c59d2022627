/**
 * Understudy's TypeScript client (issue 4): a typed, promise-based client that rides out
 * failover. See docs/client.md.
 *
 *   import { connect } from 'understudy/client';
 *   const client = await connect('understudy://127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003');
 *   const { id } = await client.create('todos', { title: 'write docs' });
 *   const doc = await client.get('todos', id!);
 *   await client.close();
 *
 * This module graph is pure JavaScript: undici, cockatiel and node: built-ins. It never loads
 * the server, the storage engine (lmdb) or any native module (test/client/module_graph.test.ts).
 */
export { connect, UnderstudyClient, Session, DocumentList, type ClientEvents } from './client.ts';
export { ChangeFeed } from './changes.ts';
export type { NodeState, BreakerState } from './endpoint.ts';
export type { LeaderChange } from './topology.ts';
export { TypedEmitter, type Listener } from './emitter.ts';
export {
  parseConnectionString, resolveOptions, DEFAULT_OPTIONS,
  type ConnectOptions, type ResolvedOptions, type RetryOptions, type BreakerOptions, type BulkheadOptions,
} from './options.ts';
export {
  UnderstudyError, NotFoundError, PreconditionFailedError, VersionConflictError, AlreadyExistsError,
  BadRequestError, UnauthorizedError, ChangesCompactedError, UnavailableError, TimeoutError,
  IndeterminateError, AbortError, BulkheadRejectedError, ServerError, ClientClosedError, ConfigurationError,
  errorFromResponse, type Outcome, type ErrorInit,
} from './errors.ts';
export type * from './types.ts';
