/**
 * Prometheus metrics for one node, in a registry of its own (several nodes may share a process
 * in tests; prom-client's global registry would mix them).
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { NodeEvent, UnderstudyNode } from './node.ts';

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

  constructor(node: () => UnderstudyNode | null) {
    const registry = this.registry;
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
    this.snapshots = new Counter({ name: 'understudy_snapshots_total', help: 'Snapshots taken or installed', registers: [registry] });
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

  onEvent(event: NodeEvent): void {
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
        this.snapshots.inc();
        return;
      case 'applied':
        return;
    }
  }
}
