/** What the harness needs from a system under test (Understudy or etcd). */
import { fetchText, until, type Pools, type Req } from '../http.ts';
import type { SystemName, Workload } from '../types.ts';

/** A ~100-byte JSON document, the value of every write (the same bytes for both systems). */
export const VALUE = JSON.stringify({ name: 'x'.repeat(67), n: 1, tags: ['a', 'b'] });
export const HOT_KEYS = 100;

export interface NodeView {
  readonly id: string;
  readonly role: string;
  readonly term: number;
  readonly leaderId: string | null;
  readonly applied: number;
  /** The commit index (Understudy) or last log index (etcd, on the leader an upper bound of it). */
  readonly commit: number;
  readonly snapshotIndex: number | null;
}

export interface CellContext {
  readonly leaderUrl: string;
  readonly followerUrls: readonly string[];
  readonly allUrls: readonly string[];
  readonly token: string;
  /** Unique per cell, so that writes of every cell go to new ids. */
  readonly prefix: string;
}

export interface Counters {
  /** Log fsyncs since the process started. */
  readonly fsyncs: number | null;
  /** Log entries made durable (Understudy) or proposals committed (etcd) since start. */
  readonly entries: number | null;
  /** Fsyncs that the entry count is divided by. */
  readonly entryFsyncs: number | null;
}

export interface BenchSystem {
  readonly name: SystemName;
  readonly supports: readonly Workload[];
  /** Every member, running or not. */
  ids(): string[];
  url(id: string): string;
  pid(id: string): number | null;
  isRunning(id: string): boolean;
  view(id: string, timeoutMs?: number): Promise<NodeView | null>;
  seed(pools: Pools, leaderUrl: string): Promise<void>;
  /** A session token that covers the latest write (Understudy only). */
  sessionToken(pools: Pools, leaderUrl: string): Promise<string>;
  request(workload: Workload, client: number, n: number, ctx: CellContext): Req;
  counters(id: string): Promise<Counters>;
  metrics(id: string): Promise<string | null>;
  /** One write of the open-loop writers (failover, soak). */
  write(origin: string, seq: number, timeoutMs: number): Req;
  classify(status: number): 'ok' | 'rediscover' | 'error';
  kill(id: string): Promise<void>;
  start(id: string): void;
  stop(): void;
  logs(): string;
}

/**
 * Every system started and not yet stopped, so that run.ts can stop them all on SIGINT/SIGTERM
 * or on exit. Systems add themselves when started and remove themselves in stop().
 */
export const liveSystems = new Set<BenchSystem>();

export function running(system: BenchSystem): string[] {
  return system.ids().filter((id) => system.isRunning(id));
}

/** The leader every running node agrees on, confirmed by the leader's own view. */
export async function agreedLeader(system: BenchSystem, timeoutMs = 20_000, exclude: string | null = null): Promise<string> {
  return until(`a leader of ${system.name}`, async () => {
    const views = await Promise.all(running(system).map((id) => system.view(id, 1_000).catch(() => null)));
    if (views.length === 0 || views.some((view) => view === null)) return null;
    const leader = views[0]?.leaderId ?? null;
    if (leader === null || leader === exclude || !views.every((view) => view?.leaderId === leader)) return null;
    return views.find((view) => view?.id === leader)?.role === 'leader' ? leader : null;
  }, timeoutMs, 50);
}

/** The node believed to be leader by a single pass over the running nodes (highest term wins). */
export async function discoverLeader(system: BenchSystem, timeoutMs = 300): Promise<{ id: string; url: string; term: number } | null> {
  const views = await Promise.all(running(system).map((id) => system.view(id, timeoutMs).catch(() => null)));
  let best: NodeView | null = null;
  for (const view of views) {
    if (view?.role === 'leader' && (best === null || view.term > best.term)) best = view;
  }
  return best === null ? null : { id: best.id, url: system.url(best.id), term: best.term };
}

/** Whether `id` has applied what the leader had committed when asked (checked in that order). */
export async function caughtUp(system: BenchSystem, id: string): Promise<boolean> {
  const leader = await discoverLeader(system, 1_000);
  if (leader === null) return false;
  const leaderView = await system.view(leader.id, 1_000);
  const view = await system.view(id, 1_000);
  return leaderView !== null && view !== null && view.leaderId === leader.id && view.applied >= leaderView.commit;
}

export function context(system: BenchSystem, leader: string, token = '0', prefix = 'k'): CellContext {
  const ids = running(system);
  return {
    leaderUrl: system.url(leader),
    followerUrls: ids.filter((id) => id !== leader).map((id) => system.url(id)),
    allUrls: ids.map((id) => system.url(id)),
    token,
    prefix,
  };
}

/** A node's Prometheus text from `<url>/metrics`, or null when it does not answer (both systems serve it there). */
export async function scrapeMetrics(url: string): Promise<string | null> {
  try {
    const res = await fetchText('GET', `${url}/metrics`, undefined, 3_000);
    return res.status === 200 ? res.text : null;
  } catch {
    return null;
  }
}
