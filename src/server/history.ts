/**
 * In-memory observability history of one node, for the dashboard (src/dashboard) and anyone who
 * wants a short look back without a Prometheus server:
 *
 *   - StatsHistory: one sample per wall-clock second (bounded ring, 300 s by default) of client
 *     writes and reads answered by this node, their failures (5xx), latency percentiles, and the node's
 *     role, term, commit and applied index; on the leader also every follower's replication lag.
 *     Latencies are kept as sparse log-scale histograms so that a reader can merge the samples of
 *     several nodes into cluster-wide percentiles (GET /v1/stats/history).
 *   - EventJournal: a bounded ring of notable events with a sequence number (GET /v1/events):
 *     role and term changes, a new leader with its measured failover time, membership changes,
 *     snapshots taken or installed, start, dev isolation.
 *
 * Both are fed by NodeMetrics (metrics.ts), which sees every request and node event already.
 * Not here: HTTP parsing (http.ts), measuring (the node and the HTTP hooks measure).
 */
import { randomUUID } from 'node:crypto';

/** Histogram bucket i holds latencies in (BUCKET_MIN_MS * BASE^(i-1), BUCKET_MIN_MS * BASE^i]. */
export const LATENCY_BUCKET_BASE = 1.1;
export const LATENCY_BUCKET_MIN_MS = 0.01;
const LATENCY_BUCKETS_MAX = 200; // 0.01 ms * 1.1^200 ≈ 1.9e6 ms: everything longer lands in the last bucket

export function latencyBucket(ms: number): number {
  if (!(ms > LATENCY_BUCKET_MIN_MS)) return 0;
  return Math.min(LATENCY_BUCKETS_MAX, Math.ceil(Math.log(ms / LATENCY_BUCKET_MIN_MS) / Math.log(LATENCY_BUCKET_BASE)));
}

export function bucketUpperMs(bucket: number): number {
  return LATENCY_BUCKET_MIN_MS * LATENCY_BUCKET_BASE ** bucket;
}

/** The q-quantile (0..1) of a sparse histogram, as its bucket's upper bound capped at `maxMs`. */
export function histogramQuantile(histogram: Readonly<Record<string, number>>, q: number, maxMs = Infinity): number | null {
  const buckets = Object.entries(histogram).map(([bucket, count]) => [Number(bucket), count] as const).sort((a, b) => a[0] - b[0]);
  const total = buckets.reduce((sum, [, count]) => sum + count, 0);
  if (total === 0) return null;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (const [bucket, count] of buckets) {
    seen += count;
    if (seen >= rank) return round2(Math.min(bucketUpperMs(bucket), maxMs));
  }
  return round2(maxMs);
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}

export interface FollowerLag {
  readonly entries: number | null;
  readonly ms: number | null;
}

/** What the node looks like at the end of a second (read by the sampler). */
export interface NodeGauges {
  readonly role: string;
  readonly term: number;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  /** Per follower, on the leader only (null elsewhere). */
  readonly lag: Readonly<Record<string, FollowerLag>> | null;
}

export interface StatsSample {
  /** Wall-clock ms at the start of the second this sample covers. */
  readonly t: number;
  readonly writes: number;
  readonly writeErrors: number;
  readonly reads: number;
  readonly readErrors: number;
  readonly writeP50Ms: number | null;
  readonly writeP99Ms: number | null;
  readonly readP50Ms: number | null;
  readonly readP99Ms: number | null;
  /** Sparse latency histograms of the requests that did not fail (bucket index -> count). */
  readonly writeHist: Readonly<Record<string, number>>;
  readonly readHist: Readonly<Record<string, number>>;
  readonly role: string | null;
  readonly term: number | null;
  readonly commitIndex: number | null;
  readonly appliedIndex: number | null;
  readonly lag: Readonly<Record<string, FollowerLag>> | null;
}

interface OpenSecond {
  t: number;
  writes: number;
  writeErrors: number;
  reads: number;
  readErrors: number;
  writeHist: Record<string, number>;
  readHist: Record<string, number>;
  writeMaxMs: number;
  readMaxMs: number;
}

export type RequestKind = 'write' | 'read';

export class StatsHistory {
  readonly capacity: number;
  readonly intervalMs = 1000;
  private readonly samples: StatsSample[] = [];
  private open: OpenSecond | null = null;

  constructor(
    private readonly gauges: () => NodeGauges | null,
    private readonly wallMs: () => number = () => Date.now(),
    capacity = 300,
  ) {
    this.capacity = Math.max(1, Math.floor(capacity));
  }

  /** Counts one answered client request and its latency; `ok` false counts it as an error instead. */
  record(kind: RequestKind, ok: boolean, latencyMs: number): void {
    const second = this.currentSecond();
    if (kind === 'write') {
      if (!ok) second.writeErrors++;
      else {
        second.writes++;
        bump(second.writeHist, latencyBucket(latencyMs));
        second.writeMaxMs = Math.max(second.writeMaxMs, latencyMs);
      }
    } else if (!ok) {
      second.readErrors++;
    } else {
      second.reads++;
      bump(second.readHist, latencyBucket(latencyMs));
      second.readMaxMs = Math.max(second.readMaxMs, latencyMs);
    }
  }

  /** Closes every second that has ended (the sampler calls this several times a second). */
  tick(): void {
    this.currentSecond();
  }

  /** Completed samples with `t > afterMs`, oldest first. */
  since(afterMs: number): StatsSample[] {
    this.tick();
    return this.samples.filter((sample) => sample.t > afterMs);
  }

  get size(): number {
    return this.samples.length;
  }

  private currentSecond(): OpenSecond {
    const t = Math.floor(this.wallMs() / 1000) * 1000;
    const open = this.open;
    if (open === null) return (this.open = emptySecond(t));
    // A wall clock that steps back keeps counting into the open second.
    if (t <= open.t) return open;
    this.close(open);
    // Seconds in which nothing happened (or the event loop was stalled) still get a sample, at
    // most a ring's worth.
    const gap = Math.min(this.capacity, (t - open.t) / 1000 - 1);
    for (let i = gap; i >= 1; i--) this.close(emptySecond(t - i * 1000));
    return (this.open = emptySecond(t));
  }

  private close(second: OpenSecond): void {
    const gauges = this.gauges();
    this.samples.push({
      t: second.t,
      writes: second.writes,
      writeErrors: second.writeErrors,
      reads: second.reads,
      readErrors: second.readErrors,
      writeP50Ms: histogramQuantile(second.writeHist, 0.5, second.writeMaxMs),
      writeP99Ms: histogramQuantile(second.writeHist, 0.99, second.writeMaxMs),
      readP50Ms: histogramQuantile(second.readHist, 0.5, second.readMaxMs),
      readP99Ms: histogramQuantile(second.readHist, 0.99, second.readMaxMs),
      writeHist: second.writeHist,
      readHist: second.readHist,
      role: gauges?.role ?? null,
      term: gauges?.term ?? null,
      commitIndex: gauges?.commitIndex ?? null,
      appliedIndex: gauges?.appliedIndex ?? null,
      lag: gauges?.lag ?? null,
    });
    if (this.samples.length > this.capacity) this.samples.splice(0, this.samples.length - this.capacity);
  }
}

function emptySecond(t: number): OpenSecond {
  return { t, writes: 0, writeErrors: 0, reads: 0, readErrors: 0, writeHist: {}, readHist: {}, writeMaxMs: 0, readMaxMs: 0 };
}

function bump(histogram: Record<string, number>, bucket: number): void {
  histogram[bucket] = (histogram[bucket] ?? 0) + 1;
}

export type JournalEventBody =
  | { readonly type: 'started' }
  | { readonly type: 'role'; readonly role: string; readonly term: number }
  | {
    readonly type: 'leader';
    readonly term: number;
    readonly leaderId: string;
    readonly previousLeaderId: string | null;
    /**
     * The failover time this node measured: from its last contact with the previous leader (or,
     * when that is unknown, from when it noticed the leader was gone) to when it knew the new
     * leader. Null for the first leader after this node started.
     */
    readonly failoverMs: number | null;
    readonly measuredFrom: 'last-contact' | 'leader-lost' | null;
  }
  | { readonly type: 'membership'; readonly voters: readonly string[]; readonly learners: readonly string[] }
  | { readonly type: 'snapshot'; readonly index: number; readonly source: 'taken' | 'installed' }
  | { readonly type: 'isolation'; readonly isolated: boolean };

export type JournalEvent = JournalEventBody & {
  readonly seq: number;
  /** Wall-clock ms. */
  readonly atMs: number;
  readonly node: string;
};

export class EventJournal {
  /** Changes on every process start: a reader holding a sequence number from before resets. */
  readonly bootId = randomUUID();
  readonly capacity: number;
  private readonly events: JournalEvent[] = [];
  private seq = 0;

  constructor(
    private readonly nodeId: () => string,
    private readonly wallMs: () => number = () => Date.now(),
    capacity = 1000,
  ) {
    this.capacity = Math.max(1, Math.floor(capacity));
  }

  add(body: JournalEventBody): JournalEvent {
    const event = { ...body, seq: ++this.seq, atMs: this.wallMs(), node: this.nodeId() } as JournalEvent;
    this.events.push(event);
    if (this.events.length > this.capacity) this.events.splice(0, this.events.length - this.capacity);
    return event;
  }

  /** Events with `seq > after`, oldest first, at most `limit`. */
  after(after: number, limit: number): JournalEvent[] {
    const out: JournalEvent[] = [];
    for (const event of this.events) {
      if (event.seq <= after) continue;
      out.push(event);
      if (out.length >= limit) break;
    }
    return out;
  }

  get lastSeq(): number {
    return this.seq;
  }

  /** The oldest sequence number still held (lastSeq + 1 when empty). */
  get oldestSeq(): number {
    return this.events[0]?.seq ?? this.seq + 1;
  }
}
