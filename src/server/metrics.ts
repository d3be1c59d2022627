/**
 * Prometheus metrics for one node, in a registry of its own (several nodes may share a process
 * in tests; prom-client's global registry would mix them).
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { NodeEvent, UnderstudyNode } from './node.ts';
import { EventJournal, StatsHistory, type NodeGauges, type RequestKind } from './history.ts';

/** Which client requests the per-second history counts (route patterns as Fastify names them). */
function requestKind(method: string, route: string): RequestKind | null {
  if (route === '/v1/docs/:collection/:id') return method === 'GET' ? 'read' : method === 'PUT' || method === 'PATCH' || method === 'DELETE' ? 'write' : null;
  if (route === '/v1/docs/:collection') return method === 'GET' ? 'read' : method === 'POST' ? 'write' : null;
  if (route === '/v1/batch') return method === 'POST' ? 'write' : null;
  return null;
}

export class NodeMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'method' | 'route' | 'status'>;
  readonly requestSeconds: Histogram<'method' | 'route'>;
  readonly fsyncSeconds: Histogram;
  readonly entriesPerFsync: Histogram;
  readonly elections: Counter;
  readonly leaderChanges: Counter;
  readonly failoverSeconds: Histogram;
  readonly snapshots: Counter;
  readonly snapshotSeconds: Histogram;
  readonly eventLoopStalls: Histogram;
  /** Per-second history for the dashboard (GET /v1/stats/history). */
  readonly history: StatsHistory;
  /** Notable events for the dashboard's timeline (GET /v1/events). */
  readonly events: EventJournal;
  private readonly sampler: NodeJS.Timeout;

  constructor(node: () => UnderstudyNode | null) {
    const registry = this.registry;
    // Process metrics an operator expects next to ours: resident memory, heap, GC, event loop lag.
    collectDefaultMetrics({ register: registry });
    this.history = new StatsHistory(() => gaugesOf(node()));
    this.events = new EventJournal(() => node()?.id ?? '?');
    // Closes each second shortly after it ends, so that quiet seconds and lag are sampled too.
    this.sampler = setInterval(() => this.history.tick(), 200);
    this.sampler.unref?.();
    this.requests = new Counter({ name: 'understudy_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['method', 'route', 'status'], registers: [registry] });
    this.requestSeconds = new Histogram({
      name: 'understudy_http_request_seconds', help: 'HTTP request latency', labelNames: ['method', 'route'], registers: [registry],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    });
    this.fsyncSeconds = new Histogram({
      name: 'understudy_log_fsync_seconds', help: 'Time to make one Ready durable (one fsync)', registers: [registry],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
    });
    this.entriesPerFsync = new Histogram({
      name: 'understudy_log_entries_per_fsync', help: 'Log entries made durable per fsync (group commit)', registers: [registry],
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
    });
    this.elections = new Counter({ name: 'understudy_raft_role_changes_total', help: 'Role changes (elections started, leadership won or lost)', registers: [registry] });
    this.leaderChanges = new Counter({ name: 'understudy_raft_leader_changes_total', help: 'Leader changes seen by this node', registers: [registry] });
    this.failoverSeconds = new Histogram({
      name: 'understudy_failover_seconds', help: 'Time from losing the leader to knowing a new one', registers: [registry],
      buckets: [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10],
    });
    this.snapshots = new Counter({ name: 'understudy_snapshots_total', help: 'Snapshots taken or installed', labelNames: ['source'], registers: [registry] });
    this.snapshotSeconds = new Histogram({
      name: 'understudy_snapshot_seconds', help: 'Time to take a snapshot of this node\'s own state, from start to durable (in the background)',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers: [registry],
    });
    this.eventLoopStalls = new Histogram({
      name: 'understudy_event_loop_stall_seconds', help: 'Event loop stalls of this process long enough to risk an election (half the election timeout or more)',
      buckets: [0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5], registers: [registry],
    });
    const gauge = (name: string, help: string, read: (n: UnderstudyNode) => number): void => {
      new Gauge({
        name, help, registers: [registry],
        collect() {
          const current = node();
          if (current !== null && current.isStarted) this.set(read(current));
        },
      });
    };
    gauge('understudy_raft_term', 'Current term', (n) => n.core.term);
    gauge('understudy_raft_commit_index', 'Commit index', (n) => n.core.commitIndex);
    gauge('understudy_raft_applied_index', 'Applied index', (n) => n.replica.appliedIndex);
    gauge('understudy_raft_last_index', 'Last log index', (n) => n.core.lastIndex);
    gauge('understudy_raft_is_leader', '1 on the leader', (n) => (n.core.role === 'leader' ? 1 : 0));
    gauge('understudy_raft_log_entries', 'Entries held after the snapshot', (n) => n.core.lastIndex - n.core.snapshotMeta.index);
    gauge('understudy_raft_snapshot_index', 'Index of the latest snapshot', (n) => n.core.snapshotMeta.index);
    gauge('understudy_log_bytes', 'Bytes used by the Raft log store', (n) => n.storageStats()?.logBytesUsed ?? 0);
    gauge('understudy_snapshot_bytes', 'Size of the latest snapshot', (n) => n.storageStats()?.snapshotBytes ?? 0);
    gauge('understudy_log_fsyncs', 'Fsyncs of the Raft log since start', (n) => n.storageStats()?.fsyncs ?? 0);
    const lag = new Gauge({
      name: 'understudy_replication_lag_entries', help: 'Entries each follower is behind the leader (leader only)', labelNames: ['peer'], registers: [registry],
      collect() {
        this.reset();
        const current = node();
        if (current === null || !current.isStarted || current.core.role !== 'leader') return;
        for (const member of current.status().members) {
          if (member.lagEntries !== null && member.id !== current.id) this.set({ peer: member.id }, member.lagEntries);
        }
      },
    });
    void lag;
  }

  /**
   * One answered HTTP request: Prometheus counters, and the dashboard's history for client reads
   * and writes. A write forwarded here by a follower counts at the follower that the client
   * asked (with the latency the client saw), not again here.
   */
  observeRequest(method: string, route: string, status: number, seconds: number, forwardedIn: boolean): void {
    this.requests.inc({ method, route, status: String(status) });
    this.requestSeconds.observe({ method, route }, seconds);
    const kind = requestKind(method, route);
    // A 4xx (not found, a failed condition, bad input) is an answer; a 5xx (no leader, timeout) is a failure.
    if (kind !== null && !forwardedIn) this.history.record(kind, status < 500, seconds * 1000);
  }

  /** Stops the history sampler (the server calls this when it stops). */
  close(): void {
    clearInterval(this.sampler);
  }

  private journal(event: NodeEvent): void {
    switch (event.type) {
      case 'roleChanged':
        this.events.add({ type: 'role', role: event.role, term: event.term });
        return;
      case 'leaderChanged': {
        if (event.leaderId === null) return;
        const fromContact = event.sinceLeaderContactMs ?? null;
        const failoverMs = fromContact ?? event.failoverMs;
        this.events.add({
          type: 'leader', term: event.term, leaderId: event.leaderId, previousLeaderId: event.previousLeaderId ?? null,
          failoverMs: failoverMs === null ? null : Math.round(failoverMs),
          measuredFrom: fromContact !== null ? 'last-contact' : event.failoverMs !== null ? 'leader-lost' : null,
        });
        return;
      }
      case 'membershipChanged':
        this.events.add({ type: 'membership', voters: [...event.voters], learners: [...event.learners] });
        return;
      case 'snapshot':
        this.events.add({ type: 'snapshot', index: event.index, source: event.source });
        return;
      default:
        return;
    }
  }

  onEvent(event: NodeEvent): void {
    this.journal(event);
    switch (event.type) {
      case 'persisted':
        if (event.synced) {
          this.fsyncSeconds.observe(event.durationMs / 1000);
          if (event.entries > 0) this.entriesPerFsync.observe(event.entries);
        }
        return;
      case 'roleChanged':
        this.elections.inc();
        return;
      case 'leaderChanged':
        this.leaderChanges.inc();
        if (event.failoverMs !== null) this.failoverSeconds.observe(event.failoverMs / 1000);
        return;
      case 'snapshot':
        this.snapshots.inc({ source: event.source });
        if (event.durationMs !== null) this.snapshotSeconds.observe(event.durationMs / 1000);
        return;
      case 'applied':
        return;
    }
  }
}

function gaugesOf(node: UnderstudyNode | null): NodeGauges | null {
  if (node === null || !node.isStarted) return null;
  const status = node.status();
  let lag: Record<string, { entries: number | null; ms: number | null }> | null = null;
  if (status.role === 'leader') {
    lag = {};
    for (const member of status.members) {
      if (member.id !== status.id) lag[member.id] = { entries: member.lagEntries, ms: member.lagMs };
    }
  }
  return { role: status.role, term: status.term, commitIndex: status.commitIndex, appliedIndex: status.appliedIndex, lag };
}
