/**
 * Client options, their defaults, and the connection string form
 *   understudy://host1:7001,host2:7002,host3:7003?token=secret&ack=majority&timeoutMs=5000
 * (`understudys://` for https). Every option of ConnectOptions that is a number or a level can be
 * given as a query parameter (see OPTION_PARAMS); anything unknown is a ConfigurationError.
 */
import { ConfigurationError } from './errors.ts';
import type { AckLevel, ReadConsistency } from './types.ts';

export interface RetryOptions {
  /** Attempts per call, the first included (default 10). */
  readonly maxAttempts?: number;
  /** Backoff: full jitter, the n-th retry waits a random time in [0, min(maxDelayMs, initialDelayMs * 2^n)). */
  readonly initialDelayMs?: number;
  readonly maxDelayMs?: number;
}

export interface BreakerOptions {
  /** Consecutive transport failures (connection refused/reset, attempt timeout) that open a node's breaker (default 3). */
  readonly failureThreshold?: number;
  /** How long an open breaker waits before letting one trial request through (half-open; default 2000). */
  readonly halfOpenAfterMs?: number;
}

export interface BulkheadOptions {
  /** Requests running at once per node (default 32). */
  readonly maxConcurrent?: number;
  /** Requests waiting for a slot per node; more are rejected with BulkheadRejectedError (default 256). */
  readonly maxQueue?: number;
}

export interface ConnectOptions {
  /** Seed nodes: `host:port` or `http(s)://host:port`. The client learns the rest from GET /v1/cluster. */
  readonly seeds: readonly string[];
  /** Bearer token for clusters started with one. */
  readonly token?: string;
  /** Default ack level for writes (default: not sent, so the server's `majority`). */
  readonly ack?: AckLevel;
  /** Default read consistency (default `linearizable`). */
  readonly consistency?: ReadConsistency;
  /** Default time budget of one call, retries included (default 10 000 ms). */
  readonly timeoutMs?: number;
  /** Longest single attempt (default 5000 ms); also sent to the server as `timeoutMs`. */
  readonly attemptTimeoutMs?: number;
  /** How long connect() tries to reach a seed (default 10 000 ms). */
  readonly connectTimeoutMs?: number;
  /** Timeout of one GET /v1/cluster during discovery and probes (default 1000 ms). */
  readonly discoveryTimeoutMs?: number;
  /** How often nodes that are down or have a non-closed breaker are probed (default 500 ms; 0 disables). */
  readonly probeIntervalMs?: number;
  readonly retry?: RetryOptions;
  readonly breaker?: BreakerOptions;
  readonly bulkhead?: BulkheadOptions;
  /** Keep-alive of idle pooled connections (default 30 000 ms). */
  readonly keepAliveTimeoutMs?: number;
}

export interface ResolvedOptions {
  readonly seeds: readonly string[];
  readonly token: string | null;
  readonly ack: AckLevel | null;
  readonly consistency: ReadConsistency;
  readonly timeoutMs: number;
  readonly attemptTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly discoveryTimeoutMs: number;
  readonly probeIntervalMs: number;
  readonly retry: Required<RetryOptions>;
  readonly breaker: Required<BreakerOptions>;
  readonly bulkhead: Required<BulkheadOptions>;
  readonly keepAliveTimeoutMs: number;
}

export const DEFAULT_OPTIONS = {
  consistency: 'linearizable',
  timeoutMs: 10_000,
  attemptTimeoutMs: 5_000,
  connectTimeoutMs: 10_000,
  discoveryTimeoutMs: 1_000,
  probeIntervalMs: 500,
  retry: { maxAttempts: 10, initialDelayMs: 50, maxDelayMs: 1_000 },
  breaker: { failureThreshold: 3, halfOpenAfterMs: 2_000 },
  bulkhead: { maxConcurrent: 32, maxQueue: 256 },
  keepAliveTimeoutMs: 30_000,
} as const;

const ACKS: readonly AckLevel[] = ['leader', 'majority', 'all'];
const CONSISTENCIES: readonly ReadConsistency[] = ['linearizable', 'session', 'stale'];

/** Query parameters of a connection string and the option each sets. */
const OPTION_PARAMS: Record<string, (options: Mutable, value: string) => void> = {
  token: (o, v) => { o.token = v; },
  ack: (o, v) => { o.ack = oneOf(v, ACKS, 'ack'); },
  consistency: (o, v) => { o.consistency = oneOf(v, CONSISTENCIES, 'consistency'); },
  timeoutMs: (o, v) => { o.timeoutMs = int(v, 'timeoutMs'); },
  attemptTimeoutMs: (o, v) => { o.attemptTimeoutMs = int(v, 'attemptTimeoutMs'); },
  connectTimeoutMs: (o, v) => { o.connectTimeoutMs = int(v, 'connectTimeoutMs'); },
  discoveryTimeoutMs: (o, v) => { o.discoveryTimeoutMs = int(v, 'discoveryTimeoutMs'); },
  probeIntervalMs: (o, v) => { o.probeIntervalMs = int(v, 'probeIntervalMs', 0); },
  keepAliveTimeoutMs: (o, v) => { o.keepAliveTimeoutMs = int(v, 'keepAliveTimeoutMs'); },
  maxAttempts: (o, v) => { o.retry = { ...o.retry, maxAttempts: int(v, 'maxAttempts') }; },
  retryInitialDelayMs: (o, v) => { o.retry = { ...o.retry, initialDelayMs: int(v, 'retryInitialDelayMs') }; },
  retryMaxDelayMs: (o, v) => { o.retry = { ...o.retry, maxDelayMs: int(v, 'retryMaxDelayMs') }; },
  breakerThreshold: (o, v) => { o.breaker = { ...o.breaker, failureThreshold: int(v, 'breakerThreshold') }; },
  breakerHalfOpenAfterMs: (o, v) => { o.breaker = { ...o.breaker, halfOpenAfterMs: int(v, 'breakerHalfOpenAfterMs') }; },
  maxConcurrent: (o, v) => { o.bulkhead = { ...o.bulkhead, maxConcurrent: int(v, 'maxConcurrent') }; },
  maxQueue: (o, v) => { o.bulkhead = { ...o.bulkhead, maxQueue: int(v, 'maxQueue', 0) }; },
};

type Mutable = { -readonly [K in keyof ConnectOptions]: ConnectOptions[K] };

function invalid(message: string): ConfigurationError {
  return new ConfigurationError({ code: 'INVALID_CONFIG', message });
}

function oneOf<T extends string>(value: string, allowed: readonly T[], name: string): T {
  if (!(allowed as readonly string[]).includes(value)) throw invalid(`${name} must be one of ${allowed.join(', ')} (got '${value}')`);
  return value as T;
}

function int(value: string, name: string, min = 1): number {
  if (!/^\d{1,9}$/.test(value) || Number(value) < min) throw invalid(`${name} must be an integer >= ${min} (got '${value}')`);
  return Number(value);
}

/** `host:port`, `http://host:port` or `https://host:port` to a normalised base URL. */
export function normaliseSeed(seed: string, defaultScheme: 'http' | 'https' = 'http'): string {
  const trimmed = seed.trim().replace(/\/+$/, '');
  const withScheme = /^https?:\/\//i.test(trimmed) ? trimmed : `${defaultScheme}://${trimmed}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw invalid(`seed '${seed}' is not host:port or http(s)://host:port`);
  }
  // WHATWG URL drops a default port (:80, :443); an explicit port is required, so keep it.
  const explicitPort = /:(\d{1,5})$/.exec(withScheme.replace(/^https?:\/\//i, ''))?.[1];
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.username !== '' || explicitPort === undefined) {
    throw invalid(`seed '${seed}' must be host:port (with an explicit port) and nothing else`);
  }
  return `${url.protocol}//${url.hostname}:${Number(explicitPort)}`;
}

/** Parses `understudy://h1:p1,h2:p2?token=...&ack=...` (or `understudys://` for https). */
export function parseConnectionString(text: string): ConnectOptions {
  const match = /^(understudys?):\/\/([^/?#]+)\/?(?:\?([^#]*))?$/.exec(text.trim());
  if (match === null) throw invalid(`a connection string looks like understudy://host1:7001,host2:7002?token=...; got '${text}'`);
  const scheme = match[1] === 'understudys' ? 'https' : 'http';
  const hosts = (match[2] ?? '').split(',').filter((host) => host !== '');
  if (hosts.length === 0) throw invalid('the connection string names no host');
  const options: Mutable = { seeds: hosts.map((host) => normaliseSeed(host, scheme)) };
  for (const [key, value] of new URLSearchParams(match[3] ?? '')) {
    const apply = OPTION_PARAMS[key];
    if (apply === undefined) throw invalid(`unknown connection string parameter '${key}' (known: ${Object.keys(OPTION_PARAMS).join(', ')})`);
    apply(options, value);
  }
  return options;
}

export function resolveOptions(input: ConnectOptions | string): ResolvedOptions {
  const options = typeof input === 'string' ? parseConnectionString(input) : input;
  if (!Array.isArray(options.seeds) || options.seeds.length === 0) throw invalid('at least one seed is required');
  const seeds = [...new Set(options.seeds.map((seed) => normaliseSeed(seed)))];
  const positive = (value: number | undefined, name: string, fallback: number, min = 1): number => {
    if (value === undefined) return fallback;
    if (!Number.isFinite(value) || value < min) throw invalid(`${name} must be a number >= ${min}`);
    return value;
  };
  if (options.ack !== undefined) oneOf(options.ack, ACKS, 'ack');
  if (options.consistency !== undefined) oneOf(options.consistency, CONSISTENCIES, 'consistency');
  const d = DEFAULT_OPTIONS;
  return {
    seeds,
    token: options.token ?? null,
    ack: options.ack ?? null,
    consistency: options.consistency ?? d.consistency,
    timeoutMs: positive(options.timeoutMs, 'timeoutMs', d.timeoutMs),
    attemptTimeoutMs: positive(options.attemptTimeoutMs, 'attemptTimeoutMs', d.attemptTimeoutMs),
    connectTimeoutMs: positive(options.connectTimeoutMs, 'connectTimeoutMs', d.connectTimeoutMs),
    discoveryTimeoutMs: positive(options.discoveryTimeoutMs, 'discoveryTimeoutMs', d.discoveryTimeoutMs),
    probeIntervalMs: positive(options.probeIntervalMs, 'probeIntervalMs', d.probeIntervalMs, 0),
    keepAliveTimeoutMs: positive(options.keepAliveTimeoutMs, 'keepAliveTimeoutMs', d.keepAliveTimeoutMs),
    retry: {
      maxAttempts: positive(options.retry?.maxAttempts, 'retry.maxAttempts', d.retry.maxAttempts),
      initialDelayMs: positive(options.retry?.initialDelayMs, 'retry.initialDelayMs', d.retry.initialDelayMs),
      maxDelayMs: positive(options.retry?.maxDelayMs, 'retry.maxDelayMs', d.retry.maxDelayMs),
    },
    breaker: {
      failureThreshold: positive(options.breaker?.failureThreshold, 'breaker.failureThreshold', d.breaker.failureThreshold),
      halfOpenAfterMs: positive(options.breaker?.halfOpenAfterMs, 'breaker.halfOpenAfterMs', d.breaker.halfOpenAfterMs),
    },
    bulkhead: {
      maxConcurrent: positive(options.bulkhead?.maxConcurrent, 'bulkhead.maxConcurrent', d.bulkhead.maxConcurrent),
      maxQueue: positive(options.bulkhead?.maxQueue, 'bulkhead.maxQueue', d.bulkhead.maxQueue, 0),
    },
  };
}
