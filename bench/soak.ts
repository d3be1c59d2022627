/**
 * Spurious elections: a fresh cluster at default settings under a steady open-loop write load
 * for N minutes, no faults. Every node's term and leader are polled twice a second and the
 * leader-change and role-change counters are read from /metrics before and after. Anything but
 * zero changes is a spurious election.
 */
import { Pools, sleep, until } from './http.ts';
import { OpenLoopWriter } from './openloop.ts';
import { metricSum, parsePrometheus } from './stats.ts';
import { agreedLeader, running, type BenchSystem } from './systems/system.ts';
import type { SoakResult } from './types.ts';

export interface SoakOptions {
  readonly minutes: number;
  readonly rate: number;
  readonly writeTimeoutMs: number;
}

async function metricPerNode(system: BenchSystem, ids: readonly string[], name: string): Promise<Map<string, number | null>> {
  return new Map(await Promise.all(ids.map(async (id) => {
    const text = await system.metrics(id);
    return [id, text === null ? null : metricSum(parsePrometheus(text), name)] as const;
  })));
}

function maxDelta(before: Map<string, number | null>, after: Map<string, number | null>): number | null {
  let best: number | null = null;
  for (const [id, value] of after) {
    const start = before.get(id);
    if (value === null || start === null || start === undefined) continue;
    best = Math.max(best ?? 0, value - start);
  }
  return best;
}

export async function runSoak(system: BenchSystem, options: SoakOptions, log: (line: string) => void): Promise<SoakResult> {
  const pools = new Pools(128);
  const writer = new OpenLoopWriter(system, pools, { rate: options.rate, timeoutMs: options.writeTimeoutMs });
  const ids = running(system);
  const timeline: string[] = [];
  const leaders = new Set<string>();
  const lastTerm = new Map<string, number>();
  const lastLeader = new Map<string, string>();
  const leaderChangesSeen = new Map<string, number>(ids.map((id) => [id, 0]));
  let termsBefore: Record<string, number> = {};
  let termsAfter: Record<string, number> = {};
  let leaderMetricBefore = new Map<string, number | null>();
  let roleMetricBefore = new Map<string, number | null>();
  let leaderMetricAfter = new Map<string, number | null>();
  let roleMetricAfter = new Map<string, number | null>();
  let error: string | null = null;
  const started = performance.now();
  const poll = async (): Promise<void> => {
    const views = await Promise.all(ids.map((id) => system.view(id, 1_000).catch(() => null)));
    const at = ((performance.now() - started) / 1000).toFixed(1);
    for (const view of views) {
      if (view === null) continue;
      const term = lastTerm.get(view.id);
      if (term !== undefined && view.term !== term) timeline.push(`${at} s: ${view.id} term ${term} -> ${view.term} (role ${view.role})`);
      lastTerm.set(view.id, view.term);
      if (view.leaderId !== null) {
        leaders.add(view.leaderId);
        const previous = lastLeader.get(view.id);
        if (previous !== undefined && previous !== view.leaderId) {
          leaderChangesSeen.set(view.id, (leaderChangesSeen.get(view.id) ?? 0) + 1);
          timeline.push(`${at} s: ${view.id} sees leader ${previous} -> ${view.leaderId}`);
        }
        lastLeader.set(view.id, view.leaderId);
      }
    }
  };
  try {
    await agreedLeader(system, 30_000);
    await poll();
    termsBefore = Object.fromEntries(lastTerm);
    leaderMetricBefore = await metricPerNode(system, ids, 'understudy_raft_leader_changes_total');
    roleMetricBefore = await metricPerNode(system, ids, 'understudy_raft_role_changes_total');
    await writer.start();
    await until('writes to flow', () => writer.ok >= 1, 30_000);
    const end = performance.now() + options.minutes * 60_000;
    let nextReport = performance.now() + 60_000;
    while (performance.now() < end) {
      await sleep(Math.min(500, Math.max(0, end - performance.now())));
      await poll();
      if (performance.now() >= nextReport) {
        nextReport += 60_000;
        log(`soak ${((performance.now() - started) / 60_000).toFixed(1)} min: ${writer.ok} writes ok, ${writer.failed} failed, terms ${[...lastTerm.values()].join('/')}, leader changes seen ${Math.max(...leaderChangesSeen.values())}`);
      }
    }
  } catch (caught) {
    error = String(caught instanceof Error ? caught.message : caught).slice(0, 2_000);
    log(`soak stopped: ${error}`);
  } finally {
    await writer.stop();
    await pools.close();
  }
  try {
    await poll();
    leaderMetricAfter = await metricPerNode(system, ids, 'understudy_raft_leader_changes_total');
    roleMetricAfter = await metricPerNode(system, ids, 'understudy_raft_role_changes_total');
  } catch {
    // reported through the counts being null
  }
  termsAfter = Object.fromEntries(lastTerm);
  const maxTerm = (terms: Record<string, number>): number => Math.max(0, ...Object.values(terms));
  const leaderChangesMetric = maxDelta(leaderMetricBefore, leaderMetricAfter);
  const polled = Math.max(0, ...leaderChangesSeen.values());
  return {
    minutes: options.minutes,
    ratePerSecond: options.rate,
    writes: { sent: writer.sent, ok: writer.ok, failed: writer.failed },
    latencyMs: writer.latency.count === 0 ? null : writer.latency.summary(),
    termsBefore,
    termsAfter,
    termChanges: maxTerm(termsAfter) - maxTerm(termsBefore),
    leaderChanges: Math.max(polled, leaderChangesMetric ?? 0),
    leaderChangesMetric,
    roleChangesMetric: maxDelta(roleMetricBefore, roleMetricAfter),
    leaders: [...leaders],
    timeline,
    error,
  };
}
