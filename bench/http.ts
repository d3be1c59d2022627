/** HTTP plumbing of the load generator: keep-alive pools per origin, one-off requests, latency histograms. */
import hdr from 'hdr-histogram-js';
import { Pool, request } from 'undici';
import type { LatencySummary } from './types.ts';

export interface Req {
  readonly origin: string;
  readonly method: 'GET' | 'PUT' | 'POST';
  readonly path: string;
  readonly body?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface Res {
  readonly status: number;
  readonly text: string;
}

/** undici pools, one per origin, with as many keep-alive connections as clients (one request in flight each). */
export class Pools {
  private readonly pools = new Map<string, Pool>();

  constructor(private readonly connections: number) {}

  get(origin: string): Pool {
    let pool = this.pools.get(origin);
    if (pool === undefined) {
      pool = new Pool(origin, { connections: this.connections, pipelining: 1, connectTimeout: 2_000 });
      this.pools.set(origin, pool);
    }
    return pool;
  }

  async send(req: Req, timeoutMs = 30_000): Promise<Res> {
    const response = await this.get(req.origin).request({
      method: req.method,
      path: req.path,
      headers: req.body === undefined ? { ...req.headers } : { 'content-type': 'application/json', ...req.headers },
      body: req.body ?? null,
      // Bounded by the connect, headers and body timeouts (no AbortSignal: a timer per request
      // would cost the load generator CPU that the servers need).
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    return { status: response.statusCode, text: await response.body.text() };
  }

  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((pool) => pool.destroy().catch(() => undefined)));
  }
}

/** A one-off request with bounded time; throws on network errors and timeouts. */
export async function fetchText(method: 'GET' | 'POST' | 'PUT', url: string, body?: unknown, timeoutMs = 2_000): Promise<Res> {
  const response = await request(url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? null : JSON.stringify(body),
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    signal: AbortSignal.timeout(timeoutMs + 50),
  });
  return { status: response.statusCode, text: await response.body.text() };
}

export async function fetchJson(method: 'GET' | 'POST' | 'PUT', url: string, body?: unknown, timeoutMs = 2_000): Promise<{ status: number; body: any }> {
  const res = await fetchText(method, url, body, timeoutMs);
  let parsed: unknown = null;
  try {
    parsed = res.text === '' ? null : JSON.parse(res.text);
  } catch {
    parsed = res.text;
  }
  return { status: res.status, body: parsed };
}

/** A latency recorder in microseconds (HdrHistogram, 3 significant digits, up to 10 minutes). */
export class Latency {
  private readonly histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 });
  private maxUs = 0;

  recordMs(ms: number): void {
    const us = Math.max(1, Math.round(ms * 1000));
    this.maxUs = Math.max(this.maxUs, us);
    this.histogram.recordValue(Math.min(us, 600_000_000));
  }

  get count(): number {
    return this.histogram.totalCount;
  }

  summary(): LatencySummary {
    const ms = (us: number): number => Math.round(Math.min(us, this.maxUs) / 10) / 100;
    if (this.histogram.totalCount === 0) return { p50: 0, p99: 0, p999: 0, max: 0, mean: 0, count: 0 };
    return {
      p50: ms(this.histogram.getValueAtPercentile(50)),
      p99: ms(this.histogram.getValueAtPercentile(99)),
      p999: ms(this.histogram.getValueAtPercentile(99.9)),
      max: ms(this.maxUs),
      mean: Math.round(this.histogram.mean / 10) / 100,
      count: this.histogram.totalCount,
    };
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` every `everyMs` until it returns a value other than null/false, or throws after `timeoutMs`. */
export async function until<T>(what: string, check: () => Promise<T | null | false> | T | null | false, timeoutMs: number, everyMs = 25): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown = null;
  for (;;) {
    try {
      const value = await check();
      if (value !== null && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError === null ? '' : `: ${String(lastError)}`}`);
    await sleep(everyMs);
  }
}
