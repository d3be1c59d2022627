/**
 * The change feed as an async iterator: GET /v1/changes?after=N&follow=true (NDJSON) on the
 * leader (or a pinned node), yielding each record once, in log order. When the stream breaks
 * (the node died, a failover, an idle connection) it reconnects with full-jitter backoff to the
 * current leader or any healthy node and resumes with after = the last index it delivered. Every
 * node applies the same log, so the new stream continues exactly where the old one stopped:
 * no gap, and a record at or below the last delivered index is never yielded again.
 *
 * Server quirks handled here (docs/api.md, known deviations): a caught-up feed sends its
 * response headers only with the first record or the 15 s keep-alive, so the headers timeout is
 * the idle timeout; keep-alives are blank lines; `limit` is never sent (it can crash a node).
 */
import { Client } from 'undici';
import { fullJitterDelay, sleep } from './backoff.ts';
import type { Endpoint } from './endpoint.ts';
import { UnavailableError, UnderstudyError, errorFromResponse } from './errors.ts';
import type { ResolvedOptions } from './options.ts';
import type { ChangeRecord, ChangesOptions, JsonObject } from './types.ts';

/** What a feed needs from its client. */
export interface FeedHost {
  readonly options: ResolvedOptions;
  readonly shutdown: AbortSignal;
  headers(): Record<string, string>;
  /** The node to follow: the pinned one, the leader, or any healthy node. */
  pick(pin: string | undefined): Endpoint;
  /** Refreshes the cluster view (bounded wait). */
  refresh(signal: AbortSignal): Promise<void>;
  reportFailure(endpoint: Endpoint, reason: string): void;
}

const DEFAULT_RECONNECT_BUDGET_MS = 30_000;
const DEFAULT_IDLE_TIMEOUT_MS = 45_000;

export class ChangeFeed<T = JsonObject> implements AsyncIterable<ChangeRecord<T>> {
  /** The index of the last record delivered (resume point). */
  lastIndex: number;
  /** How many times the feed reconnected after its first connection. */
  reconnects = 0;
  /** The node currently (or last) followed. */
  servedBy: string | null = null;
  /** The last error that made the feed reconnect. */
  lastError: string | null = null;
  private readonly controller = new AbortController();
  private readonly closeListeners: (() => void)[] = [];
  private started = false;
  private readonly reconnectBudgetMs: number;
  private readonly idleTimeoutMs: number;

  constructor(private readonly host: FeedHost, private readonly options: ChangesOptions) {
    this.lastIndex = options.after ?? 0;
    this.reconnectBudgetMs = options.reconnectBudgetMs ?? DEFAULT_RECONNECT_BUDGET_MS;
    this.idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    const stop = (): void => this.close();
    if (options.signal?.aborted === true) this.controller.abort();
    options.signal?.addEventListener('abort', stop, { once: true });
    host.shutdown.addEventListener('abort', stop, { once: true });
    this.closeListeners.push(() => {
      options.signal?.removeEventListener('abort', stop);
      host.shutdown.removeEventListener('abort', stop);
    });
  }

  /** Ends the feed: a pending `next()` resolves `done`, the connection is closed. */
  close(): void {
    if (!this.controller.signal.aborted) this.controller.abort();
    for (const listener of this.closeListeners.splice(0)) listener();
  }

  onClose(listener: () => void): void {
    if (this.controller.signal.aborted) listener();
    else this.closeListeners.push(listener);
  }

  get closed(): boolean {
    return this.controller.signal.aborted;
  }

  [Symbol.asyncIterator](): AsyncGenerator<ChangeRecord<T>, void, undefined> {
    if (this.started) throw new TypeError('a change feed can be iterated once; call client.changes() again');
    this.started = true;
    return this.run();
  }

  private async *run(): AsyncGenerator<ChangeRecord<T>, void, undefined> {
    const signal = this.controller.signal;
    let failingSince: number | null = null;
    let retry = 0;
    let connections = 0;
    try {
      while (!signal.aborted) {
        let endpoint: Endpoint | null = null;
        let dispatcher: Client | null = null;
        try {
          endpoint = this.host.pick(this.options.node);
          dispatcher = new Client(endpoint.url, { headersTimeout: this.idleTimeoutMs, bodyTimeout: this.idleTimeoutMs, connectTimeout: this.host.options.attemptTimeoutMs });
          if (connections++ > 0) this.reconnects++;
          const response = await dispatcher.request({
            method: 'GET',
            path: `/v1/changes?after=${this.lastIndex}&follow=true`,
            headers: { ...this.host.headers(), accept: 'application/x-ndjson' },
            signal,
          });
          if (response.statusCode !== 200) {
            const text = await response.body.text();
            let json: unknown = text;
            try {
              json = JSON.parse(text);
            } catch {
              // not JSON
            }
            throw errorFromResponse(response.statusCode, json, endpoint.label);
          }
          endpoint.markAnswered();
          this.servedBy = endpoint.label;
          failingSince = null;
          retry = 0;
          const decoder = new TextDecoder();
          let buffer = '';
          for await (const chunk of response.body) {
            buffer += decoder.decode(chunk as Uint8Array, { stream: true });
            let newline = buffer.indexOf('\n');
            while (newline >= 0) {
              const line = buffer.slice(0, newline).trim();
              buffer = buffer.slice(newline + 1);
              newline = buffer.indexOf('\n');
              if (line === '') continue; // keep-alive
              const record = JSON.parse(line) as ChangeRecord<T>;
              if (typeof record.index !== 'number' || record.index <= this.lastIndex) continue;
              this.lastIndex = record.index;
              yield record;
              if (signal.aborted) return;
            }
          }
          this.lastError = `${endpoint.label} ended the stream`;
        } catch (error) {
          if (signal.aborted) return;
          if (error instanceof UnderstudyError && !error.retryable) throw error; // CHANGES_COMPACTED, UNAUTHORIZED, ...
          this.lastError = (error as Error).message ?? String(error);
          if (endpoint !== null && !(error instanceof UnderstudyError)) this.host.reportFailure(endpoint, this.lastError);
        } finally {
          if (dispatcher !== null) void dispatcher.destroy().catch(() => undefined);
        }
        if (signal.aborted) return;
        failingSince ??= performance.now();
        if (performance.now() - failingSince > this.reconnectBudgetMs) {
          throw new UnavailableError({
            code: 'NODE_UNREACHABLE', retryable: true,
            message: `the change feed could not reconnect within ${this.reconnectBudgetMs} ms (last error: ${this.lastError}); resume later with after=${this.lastIndex}`,
            details: { lastIndex: this.lastIndex },
          });
        }
        await sleep(fullJitterDelay(retry++, this.host.options.retry.initialDelayMs, this.host.options.retry.maxDelayMs), signal);
        await this.host.refresh(signal);
      }
    } finally {
      this.close();
    }
  }
}
