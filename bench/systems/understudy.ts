/**
 * Understudy under test: a 3-node cluster of real processes (test/cluster/process_cluster.ts),
 * on ports below the ephemeral range (bench/ports.ts).
 */
import { ProcessCluster } from '../../test/cluster/process_cluster.ts';
import { fetchJson, type Pools, type Req } from '../http.ts';
import { lowPort } from '../ports.ts';
import { metricSum, parsePrometheus } from '../stats.ts';
import { ALL_WORKLOADS, type Workload } from '../types.ts';
import { HOT_KEYS, liveSystems, VALUE, type BenchSystem, type CellContext, type Counters, type NodeView, scrapeMetrics } from './system.ts';

const JSON_HEADERS = { 'content-type': 'application/json' };

export class UnderstudySystem implements BenchSystem {
  readonly name = 'understudy' as const;
  readonly supports: readonly Workload[] = ALL_WORKLOADS;

  private constructor(readonly cluster: ProcessCluster) {}

  static async start(config: Record<string, unknown> = {}): Promise<UnderstudySystem> {
    const system = new UnderstudySystem(await ProcessCluster.start({ config, port: lowPort }));
    liveSystems.add(system);
    return system;
  }

  ids(): string[] {
    return [...this.cluster.nodes.keys()];
  }

  url(id: string): string {
    return this.cluster.url(id);
  }

  pid(id: string): number | null {
    return this.cluster.nodes.get(id)?.process?.pid ?? null;
  }

  isRunning(id: string): boolean {
    return this.cluster.isRunning(id);
  }

  async view(id: string, timeoutMs = 2_000): Promise<NodeView | null> {
    const result = await fetchJson('GET', `${this.url(id)}/v1/cluster?local=true`, undefined, timeoutMs);
    if (result.status !== 200) return null;
    const b = result.body;
    return { id: b.id, role: b.role, term: b.term, leaderId: b.leaderId ?? null, applied: b.appliedIndex, commit: b.commitIndex, snapshotIndex: b.snapshotIndex ?? null };
  }

  async seed(pools: Pools, leaderUrl: string): Promise<void> {
    for (let i = 0; i < HOT_KEYS; i++) {
      const res = await pools.send({ origin: leaderUrl, method: 'PUT', path: `/v1/docs/hot/h${i}`, body: VALUE });
      if (res.status >= 300) throw new Error(`seeding failed: ${res.status} ${res.text}`);
    }
  }

  async sessionToken(pools: Pools, leaderUrl: string): Promise<string> {
    const res = await pools.send({ origin: leaderUrl, method: 'PUT', path: '/v1/docs/hot/h0', body: VALUE });
    if (res.status >= 300) throw new Error(`write for a session token failed: ${res.status} ${res.text}`);
    return String(JSON.parse(res.text).sessionToken);
  }

  request(workload: Workload, client: number, n: number, ctx: CellContext): Req {
    const kind = workload === 'mixed' ? (n % 2 === 0 ? 'write' : 'read-linearizable') : workload;
    const hot = `/v1/docs/hot/h${n % HOT_KEYS}`;
    const one = ctx.followerUrls[0] ?? ctx.leaderUrl;
    switch (kind) {
      case 'write': return { origin: ctx.leaderUrl, method: 'PUT', path: `/v1/docs/bench/${ctx.prefix}-c${client}-${n}`, body: VALUE, headers: JSON_HEADERS };
      case 'update-hot': return { origin: ctx.leaderUrl, method: 'PUT', path: hot, body: VALUE, headers: JSON_HEADERS };
      case 'read-linearizable': return { origin: ctx.leaderUrl, method: 'GET', path: hot };
      case 'read-session': return { origin: ctx.followerUrls[n % ctx.followerUrls.length] ?? one, method: 'GET', path: `${hot}?consistency=session&token=${ctx.token}` };
      case 'read-session-one': return { origin: one, method: 'GET', path: `${hot}?consistency=session&token=${ctx.token}` };
      case 'read-stale': return { origin: ctx.allUrls[n % ctx.allUrls.length] ?? ctx.leaderUrl, method: 'GET', path: `${hot}?consistency=stale` };
      case 'read-stale-one': return { origin: one, method: 'GET', path: `${hot}?consistency=stale` };
      case 'batch': return { origin: ctx.leaderUrl, method: 'POST', path: '/v1/batch', body: this.batch(`${ctx.prefix}-c${client}-${n}`), headers: JSON_HEADERS };
    }
    throw new Error(`unknown workload ${String(kind)}`);
  }

  private batch(prefix: string): string {
    // Ten puts; built by string concatenation to keep the load generator cheap.
    const ops = Array.from({ length: 10 }, (_, i) => `{"op":"put","collection":"batch","id":"${prefix}-${i}","body":${VALUE}}`);
    return `{"ops":[${ops.join(',')}]}`;
  }

  metrics(id: string): Promise<string | null> {
    return scrapeMetrics(this.url(id));
  }

  async counters(id: string): Promise<Counters> {
    const text = await this.metrics(id);
    if (text === null) return { fsyncs: null, entries: null, entryFsyncs: null };
    const samples = parsePrometheus(text);
    return {
      fsyncs: metricSum(samples, 'understudy_log_fsyncs'),
      entries: metricSum(samples, 'understudy_log_entries_per_fsync_sum'),
      entryFsyncs: metricSum(samples, 'understudy_log_entries_per_fsync_count'),
    };
  }

  write(origin: string, seq: number, timeoutMs: number): Req {
    return { origin, method: 'PUT', path: `/v1/docs/openloop/w${seq}?timeoutMs=${Math.max(1, Math.round(timeoutMs))}`, body: VALUE, headers: JSON_HEADERS };
  }

  classify(status: number): 'ok' | 'rediscover' | 'error' {
    if (status >= 200 && status < 300) return 'ok';
    return status >= 500 ? 'rediscover' : 'error';
  }

  async kill(id: string): Promise<void> {
    await this.cluster.kill(id);
  }

  start(id: string): void {
    this.cluster.startNode(id);
  }

  stop(): void {
    liveSystems.delete(this);
    this.cluster.stopAll();
  }

  logs(): string {
    return this.cluster.logs();
  }
}
