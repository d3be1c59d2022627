/**
 * A small HTTP client for the chaos workloads and monitors (undici, loopback only), and the
 * classification of answers into history outcomes.
 *
 * Every call is bounded by a timeout that covers connecting, the headers and the body. A call
 * answers either a response (any status) or a transport failure classified by whether the
 * request may have reached the server:
 * - `refused`: the connection could not be opened (ECONNREFUSED, connect timeout): the request
 *   was never sent, so it definitely had no effect;
 * - `timeout`: no complete answer in time: it may or may not have had an effect;
 * - `reset`: the connection broke after the request may have been sent: may or may not.
 */
import { Agent, request } from 'undici';

export type TransportFailure = 'refused' | 'timeout' | 'reset';

export type HttpAnswer =
  | { readonly kind: 'response'; readonly status: number; readonly headers: Record<string, string | string[] | undefined>; readonly body: unknown }
  | { readonly kind: 'failure'; readonly failure: TransportFailure; readonly message: string };

export interface CallOptions {
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
  readonly timeoutMs: number;
}

function errorCodes(error: unknown): string[] {
  const codes: string[] = [];
  for (let current: unknown = error, depth = 0; current !== null && current !== undefined && depth < 5; depth++) {
    const record = current as { code?: unknown; name?: unknown; errors?: unknown };
    if (typeof record.code === 'string') codes.push(record.code);
    if (typeof record.name === 'string') codes.push(record.name);
    if (Array.isArray(record.errors)) for (const inner of record.errors) codes.push(...errorCodes(inner));
    current = (current as { cause?: unknown }).cause;
  }
  return codes;
}

/** How a thrown undici/network error relates to the request's effect (see the module comment). */
export function classifyTransportError(error: unknown): TransportFailure {
  const codes = errorCodes(error);
  if (codes.some((code) => code === 'ECONNREFUSED' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'EADDRNOTAVAIL')) return 'refused';
  if (codes.some((code) => code === 'TimeoutError' || code === 'AbortError' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'ABORT_ERR')) return 'timeout';
  return 'reset';
}

export class HttpClient {
  private readonly agent: Agent;

  constructor(options: { connections?: number } = {}) {
    this.agent = new Agent({
      connections: options.connections ?? null,
      pipelining: 1,
      keepAliveTimeout: 4_000,
      keepAliveMaxTimeout: 10_000,
      connect: { timeout: 2_000 },
    });
  }

  async call(method: string, url: string, options: CallOptions): Promise<HttpAnswer> {
    const signal = AbortSignal.timeout(options.timeoutMs);
    try {
      const headers: Record<string, string> = { ...(options.headers ?? {}) };
      if (options.body !== undefined) headers['content-type'] = 'application/json';
      const response = await request(url, {
        method: method as 'GET',
        headers,
        body: options.body === undefined ? null : JSON.stringify(options.body),
        dispatcher: this.agent,
        signal,
        headersTimeout: options.timeoutMs,
        bodyTimeout: options.timeoutMs,
      });
      const text = await response.body.text();
      let body: unknown = text;
      try {
        body = text === '' ? null : JSON.parse(text);
      } catch {
        // not JSON: keep the text
      }
      return { kind: 'response', status: response.statusCode, headers: response.headers, body };
    } catch (error) {
      return { kind: 'failure', failure: classifyTransportError(error), message: (error as Error)?.message ?? String(error) };
    }
  }

  async close(): Promise<void> {
    await this.agent.destroy().catch(() => undefined);
  }
}

/** The effect of a write as far as the client can tell. */
export type WriteVerdict = 'ok' | 'fail' | 'info';

/**
 * Classifies the answer to a write (PUT/POST/PATCH/DELETE):
 * - a 2xx is `ok` (for ack=leader a 202 means only that the leader stored it; callers decide
 *   whether that settles the op, see workloads.ts);
 * - a definite rejection is `fail`: a 4xx (validation, precondition, not found), or a
 *   5xx whose body says `"outcome": "rejected"` (NO_LEADER, NOT_APPLIED, ...), or a connection
 *   that was never opened;
 * - anything else is `info`: a timeout, a reset connection, a 504, `"outcome": "indeterminate"`,
 *   a 5xx without a catalogue body (Fastify's shutdown 503, a 500).
 */
export function classifyWrite(answer: HttpAnswer): WriteVerdict {
  if (answer.kind === 'failure') return answer.failure === 'refused' ? 'fail' : 'info';
  if (answer.status >= 200 && answer.status < 300) return 'ok';
  const body = answer.body as { code?: unknown; outcome?: unknown } | null;
  const outcome = typeof body === 'object' && body !== null ? body.outcome : undefined;
  if (outcome === 'indeterminate') return 'info';
  if (answer.status >= 400 && answer.status < 500) return 'fail';
  if (outcome === 'rejected') return 'fail';
  return 'info';
}

/** A short description of an answer for logs and reports, e.g. `503 NO_LEADER` or `timeout`. */
export function describeAnswer(answer: HttpAnswer): string {
  if (answer.kind === 'failure') return answer.failure;
  const body = answer.body as { code?: unknown } | null;
  const code = typeof body === 'object' && body !== null && typeof body.code === 'string' ? ` ${body.code}` : '';
  return `${answer.status}${code}`;
}
