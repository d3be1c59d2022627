/** The shape of bench/results/latest.json. Every figure of the report is in here. */

export type SystemName = 'understudy' | 'etcd';

export type Workload =
  | 'write' | 'update-hot' | 'read-linearizable' | 'read-session' | 'read-session-one'
  | 'read-stale' | 'read-stale-one' | 'mixed' | 'batch';

export const ALL_WORKLOADS: readonly Workload[] = [
  'write', 'update-hot', 'read-linearizable', 'read-session', 'read-session-one', 'read-stale', 'read-stale-one', 'mixed', 'batch',
];

export const WORKLOAD_DESCRIPTIONS: Readonly<Record<Workload, string>> = {
  'write': 'PUT of a ~100-byte document to a new id, ack=majority, to the leader',
  'update-hot': 'PUT to one of 100 hot ids, ack=majority, to the leader',
  'read-linearizable': 'GET of a hot id, linearizable (ReadIndex), from the leader',
  'read-session': 'GET with a session token, spread over the 2 followers',
  'read-session-one': 'GET with a session token, from 1 follower (baseline for scaling)',
  'read-stale': 'GET consistency=stale, spread over the 3 nodes',
  'read-stale-one': 'GET consistency=stale, from 1 follower (baseline for scaling)',
  'mixed': '50% write, 50% linearizable read',
  'batch': 'atomic batch of 10 puts (one op = one batch), ack=majority',
};

export interface LatencySummary {
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  readonly mean: number;
  readonly count: number;
}

export interface Cell {
  readonly system: SystemName;
  readonly workload: Workload;
  readonly concurrency: number;
  /** Length of the measured window in seconds (after warm-up). */
  readonly seconds: number;
  /** Successful operations started in the measured window. */
  readonly ops: number;
  readonly opsPerSecond: number;
  readonly errors: number;
  readonly errorSamples: readonly string[];
  /** Latency of the successful operations, in ms. */
  readonly latencyMs: LatencySummary;
  readonly leader: string;
  readonly cpuSecondsPerNode: Readonly<Record<string, number>>;
  readonly rssPeakMbPerNode: Readonly<Record<string, number>>;
  /**
   * The largest anonymous part of RSS (RssAnon: heap, buffers, queues) seen in samples every
   * 250 ms of the window; the rest of RSS is mostly mapped data files. Absent in older results.
   */
  readonly rssAnonPeakMbPerNode?: Readonly<Record<string, number>>;
  readonly fsyncsPerSecondPerNode: Readonly<Record<string, number>>;
  readonly leaderFsyncsPerSecond: number;
  /** Log entries made durable per leader fsync (from the server's own metrics), if known. */
  readonly entriesPerFsync: number | null;
}

export interface FailoverKill {
  readonly killed: string;
  readonly newLeader: string | null;
  /** From kill -9 to the first acknowledged write sent after the kill (to another node). */
  readonly killToFirstWriteMs: number | null;
  /** From kill -9 to the writer's leader discovery finding the new leader. */
  readonly killToLeaderKnownMs: number | null;
  readonly writesFailed: number;
  /** From restarting the killed node to it having applied the leader's commit index. */
  readonly restartToCaughtUpMs: number | null;
}

export interface FailoverResult {
  readonly system: SystemName;
  readonly ratePerSecond: number;
  readonly writeTimeoutMs: number;
  readonly kills: readonly FailoverKill[];
  readonly killToFirstWriteMs: { count: number; missing: number; p50: number | null; p99: number | null; max: number | null; mean: number | null };
  readonly killToLeaderKnownMs: { p50: number | null; p99: number | null; max: number | null };
  readonly writes: { sent: number; ok: number; failed: number };
  /** Write latency of the acknowledged writes over the whole run (ms). */
  readonly latencyMs: LatencySummary | null;
  readonly error: string | null;
}

export interface SoakResult {
  readonly minutes: number;
  readonly ratePerSecond: number;
  readonly writes: { sent: number; ok: number; failed: number };
  readonly latencyMs: LatencySummary | null;
  readonly termsBefore: Readonly<Record<string, number>>;
  readonly termsAfter: Readonly<Record<string, number>>;
  /** Highest term after minus highest term before. */
  readonly termChanges: number;
  /** Changes of the leader seen by polling every node (plus metric deltas where higher). */
  readonly leaderChanges: number;
  readonly leaderChangesMetric: number | null;
  readonly roleChangesMetric: number | null;
  readonly leaders: readonly string[];
  readonly timeline: readonly string[];
  readonly error: string | null;
}

export interface GrowthPoint {
  readonly documents: number;
  readonly loadSeconds: number;
  readonly loadDocsPerSecond: number;
  readonly write: { concurrency: number; opsPerSecond: number; errors: number; errorSamples: readonly string[]; latencyMs: LatencySummary };
  readonly snapshot: {
    /** understudy_snapshot_seconds present in /metrics? */
    readonly metricPresent: boolean;
    readonly taken: number | null;
    readonly meanSeconds: number | null;
    readonly maxSecondsAtMost: number | null;
    readonly bytes: number | null;
    readonly leaderSnapshotIndex: number;
  };
  readonly learner: { id: string; catchUpMs: number | null; viaSnapshot: boolean | null; error: string | null };
  readonly restart: { node: string; healthyMs: number | null; caughtUpMs: number | null; error: string | null };
  readonly rssMbPerNode: Readonly<Record<string, number>>;
  readonly rssPeakMbPerNode: Readonly<Record<string, number>>;
  readonly diskMbPerNode: Readonly<Record<string, number>>;
  readonly termChanges: number;
  /** Where the term changes happened: loading, the write phase (with the snapshot top-up), the learner, the restart. */
  readonly termChangesByPhase: { load: number; writes: number; learner: number; restart: number };
}

export interface GrowthResult {
  readonly snapshotEveryEntries: number;
  readonly logEntriesKeptAfterSnapshot: number;
  readonly points: readonly GrowthPoint[];
  readonly notes: readonly string[];
  readonly error: string | null;
}

export interface EtcdResult {
  readonly version: string | null;
  readonly skipped: string | null;
  readonly cells: readonly Cell[];
  readonly failover: FailoverResult | null;
  readonly error: string | null;
}

export interface Machine {
  readonly cpus: number;
  readonly cpuModel: string;
  readonly memoryGb: number;
  readonly node: string;
  readonly os: string;
  readonly loadAverageAtStart: readonly number[];
  /** 1/5/15-minute load averages when the run ended (they include the benchmark's own processes). */
  readonly loadAverageAtEnd?: readonly number[];
}

export interface TargetResult {
  readonly id: string;
  readonly description: string;
  readonly measured: number | null;
  readonly threshold: number;
  readonly comparator: '>=' | '<=' | '<' | '==';
  readonly unit: string;
  readonly status: 'met' | 'missed' | 'not measured';
  /** Headroom (positive) or shortfall (negative) relative to the threshold, e.g. "+8%". */
  readonly margin: string;
  readonly note: string;
}

export interface BenchResults {
  readonly schema: 1;
  readonly date: string;
  readonly durationSeconds: number;
  readonly machine: Machine;
  readonly options: Readonly<Record<string, unknown>>;
  readonly workloads?: readonly Cell[];
  readonly failover?: FailoverResult;
  readonly soak?: SoakResult;
  readonly growth?: GrowthResult;
  readonly etcd?: EtcdResult;
  readonly targets: readonly TargetResult[];
  readonly notes: readonly string[];
}
