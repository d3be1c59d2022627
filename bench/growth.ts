/**
 * Growth: one Understudy cluster grows through each data-set size (atomic batches of 100 puts,
 * ack=majority). At each size: single-write latency at a fixed concurrency, snapshot time (from
 * the nodes' understudy_snapshot_seconds histogram, when the server exports it), the time a new
 * learner takes to catch up (it must receive a snapshot: the log is compacted), the restart and
 * recovery time of a follower after kill -9, memory and disk per node.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Pools, fetchJson, sleep, until } from './http.ts';
import { lowPort } from './ports.ts';
import { diskUsage, mb, sampleProcess } from './proc.ts';
import { histogramDelta, metricSum, parsePrometheus, type MetricSample } from './stats.ts';
import { agreedLeader, caughtUp, running, VALUE } from './systems/system.ts';
import { UnderstudySystem } from './systems/understudy.ts';
import type { GrowthPoint, GrowthResult } from './types.ts';
import { runCell } from './workloads.ts';

export interface GrowthOptions {
  readonly sizes: readonly number[];
  readonly concurrency: number;
  readonly seconds: number;
  readonly snapshotEvery: number;
  readonly keepAfterSnapshot: number;
  readonly loadConcurrency: number;
}

const BATCH = 100;

async function scrape(system: UnderstudySystem, ids: readonly string[]): Promise<Map<string, MetricSample[]>> {
  return new Map(await Promise.all(ids.map(async (id) => [id, parsePrometheus((await system.metrics(id)) ?? '')] as const)));
}

async function maxTerm(system: UnderstudySystem): Promise<number> {
  const views = await Promise.all(running(system).map((id) => system.view(id, 1_000).catch(() => null)));
  return Math.max(0, ...views.map((view) => view?.term ?? 0));
}

/** Loads documents [from, to) with atomic batches, `concurrency` in flight, retrying through leader changes. */
async function load(system: UnderstudySystem, pools: Pools, from: number, to: number, concurrency: number): Promise<void> {
  let leaderUrl = system.url(await agreedLeader(system, 60_000));
  let next = from;
  const worker = async (): Promise<void> => {
    for (;;) {
      const start = next;
      if (start >= to) return;
      next = Math.min(to, start + BATCH);
      const ops: string[] = [];
      for (let i = start; i < Math.min(to, start + BATCH); i++) ops.push(`{"op":"put","collection":"growth","id":"d${String(i).padStart(8, '0')}","body":${VALUE}}`);
      const body = `{"ops":[${ops.join(',')}]}`;
      const deadline = performance.now() + 120_000;
      for (;;) {
        let problem: string;
        try {
          const res = await pools.send({ origin: leaderUrl, method: 'POST', path: '/v1/batch', body }, 30_000);
          if (res.status >= 200 && res.status < 300) break;
          problem = `${res.status} ${res.text.slice(0, 200)}`;
          if (res.status < 500) throw new Error(`loading failed: ${problem}`);
        } catch (error) {
          if (String(error).includes('loading failed')) throw error;
          problem = String(error);
        }
        if (performance.now() > deadline) throw new Error(`a batch was not acknowledged within 120 s: ${problem}`);
        await sleep(100);
        leaderUrl = system.url(await agreedLeader(system, 60_000));
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, () => worker()));
}

/** Writes single documents until the leader's snapshot covers `index` (bounded). */
async function snapshotCovering(system: UnderstudySystem, pools: Pools, index: number, timeoutMs: number): Promise<number> {
  let done = false;
  let seq = 0;
  const leader = await agreedLeader(system, 60_000);
  const writers = Array.from({ length: 8 }, async () => {
    while (!done) {
      const res = await pools.send({ origin: system.url(leader), method: 'PUT', path: `/v1/docs/topup/t${seq++}`, body: VALUE }, 30_000).catch(() => null);
      if (res === null || res.status >= 300) await sleep(50);
    }
  });
  try {
    return await until(`a snapshot covering index ${index}`, async () => {
      const view = await system.view(leader, 2_000);
      return view !== null && (view.snapshotIndex ?? 0) >= index ? view.snapshotIndex ?? 0 : null;
    }, timeoutMs, 200);
  } finally {
    done = true;
    await Promise.all(writers);
  }
}

async function learnerCatchUp(system: UnderstudySystem, serial: number): Promise<GrowthPoint['learner']> {
  const cluster = system.cluster;
  const id = `l${serial}`;
  const leader = await agreedLeader(system, 60_000);
  const leaderUrl = system.url(leader);
  cluster.nodes.set(id, { id, clientUrl: `http://127.0.0.1:${await lowPort()}`, peer: `127.0.0.1:${await lowPort()}`, process: null, output: [] });
  cluster.joining.add(id);
  try {
    cluster.startNode(id);
    await until(`${id} to answer`, () => system.view(id, 1_000), 30_000, 100);
    const target = (await system.view(leader, 2_000))?.commit ?? 0;
    const started = performance.now();
    const added = await fetchJson('POST', `${leaderUrl}/v1/admin/members`, { action: 'add', id, peer: cluster.nodes.get(id)?.peer, client: cluster.url(id) }, 60_000);
    if (added.status !== 200) throw new Error(`adding learner ${id} failed: ${added.status} ${JSON.stringify(added.body)}`);
    const goal = Math.max(target, Number(added.body?.index ?? 0));
    const seen = await until(`${id} to catch up`, async () => {
      // A learner that died will never catch up: stop waiting at once.
      if (!cluster.isRunning(id)) return 'exited' as const;
      const current = await system.view(id, 2_000);
      return current !== null && current.applied >= goal ? current : null;
    }, 15 * 60_000, 50);
    if (seen === 'exited') throw new Error(`${id} exited while catching up: ${(cluster.nodes.get(id)?.output ?? []).join('').split('\n').slice(-15).join(' | ')}`);
    const view = seen;
    const catchUpMs = Math.round(performance.now() - started);
    const removed = await fetchJson('POST', `${system.url(await agreedLeader(system, 60_000))}/v1/admin/members`, { action: 'remove', id }, 60_000);
    if (removed.status !== 200) throw new Error(`removing learner ${id} failed: ${removed.status} ${JSON.stringify(removed.body)}`);
    return { id, catchUpMs, viaSnapshot: (view.snapshotIndex ?? 0) > 0, error: null };
  } catch (error) {
    return { id, catchUpMs: null, viaSnapshot: null, error: String(error instanceof Error ? error.message : error).slice(0, 3000) };
  } finally {
    await cluster.kill(id);
    cluster.nodes.delete(id);
    cluster.joining.delete(id);
    rmSync(join(cluster.dir, id), { recursive: true, force: true });
  }
}

async function restartFollower(system: UnderstudySystem): Promise<GrowthPoint['restart']> {
  const leader = await agreedLeader(system, 60_000);
  const victim = ['n1', 'n2', 'n3'].find((id) => id !== leader) as string;
  try {
    const target = (await system.view(leader, 2_000))?.commit ?? 0;
    await system.kill(victim);
    const started = performance.now();
    system.start(victim);
    await until(`${victim} to be healthy`, async () => {
      if (!system.isRunning(victim)) throw new Error(`${victim} exited on start`);
      return (await fetchJson('GET', `${system.url(victim)}/v1/health/replica`, undefined, 1_000)).status === 200;
    }, 10 * 60_000, 25);
    const healthyMs = Math.round(performance.now() - started);
    await until(`${victim} to catch up`, async () => ((await system.view(victim, 1_000))?.applied ?? -1) >= target && caughtUp(system, victim), 10 * 60_000, 25);
    return { node: victim, healthyMs, caughtUpMs: Math.round(performance.now() - started), error: null };
  } catch (error) {
    if (!system.isRunning(victim)) {
      try {
        system.start(victim);
      } catch {
        // reported below
      }
    }
    return { node: victim, healthyMs: null, caughtUpMs: null, error: String(error instanceof Error ? error.message : error).slice(0, 500) };
  }
}

export async function runGrowth(options: GrowthOptions, log: (line: string) => void): Promise<GrowthResult> {
  const notes: string[] = [];
  const points: GrowthPoint[] = [];
  let error: string | null = null;
  const system = await UnderstudySystem.start({ snapshotEveryEntries: options.snapshotEvery, logEntriesKeptAfterSnapshot: options.keepAfterSnapshot });
  const pools = new Pools(Math.max(options.concurrency, options.loadConcurrency, 8) + 2);
  const voters = ['n1', 'n2', 'n3'];
  try {
    let loaded = 0;
    for (const [serial, size] of [...options.sizes].sort((a, b) => a - b).entries()) {
      const termBefore = await maxTerm(system);
      const loadStarted = performance.now();
      await load(system, pools, loaded, size, options.loadConcurrency);
      await system.cluster.waitForConvergence(10 * 60_000);
      const loadSeconds = (performance.now() - loadStarted) / 1000;
      const docsLoaded = size - loaded;
      loaded = size;
      log(`growth ${size}: loaded ${docsLoaded} documents in ${loadSeconds.toFixed(1)} s (${Math.round(docsLoaded / loadSeconds)}/s)`);
      const loadedIndex = (await system.view(await agreedLeader(system, 60_000), 2_000))?.commit ?? 0;
      const termLoaded = await maxTerm(system);

      const metricsBefore = await scrape(system, voters);
      const cell = await runCell(system, pools, 'write', options.concurrency, { seconds: options.seconds, warmupSeconds: 1 });
      log(`growth ${size}: writes x${options.concurrency}: ${Math.round(cell.opsPerSecond)} ops/s, p50 ${cell.latencyMs.p50} ms, p99 ${cell.latencyMs.p99} ms, errors ${cell.errors}${cell.errorSamples.length > 0 ? ` (${cell.errorSamples[0]})` : ''}`);
      const snapshotIndex = await snapshotCovering(system, pools, loadedIndex, 10 * 60_000);
      await system.cluster.waitForConvergence(10 * 60_000);
      const metricsAfter = await scrape(system, voters);
      const deltas = voters.map((id) => histogramDelta(metricsBefore.get(id) ?? [], metricsAfter.get(id) ?? [], 'understudy_snapshot_seconds'));
      const present = deltas.some((delta) => delta !== null);
      const taken = deltas.reduce((sum, delta) => sum + (delta?.count ?? 0), 0);
      const seconds = deltas.reduce((sum, delta) => sum + (delta?.sum ?? 0), 0);
      const maxes = deltas.map((delta) => delta?.maxAtMost ?? null).filter((value): value is number => value !== null);
      const leaderNow = await agreedLeader(system, 60_000);
      const bytes = metricSum(metricsAfter.get(leaderNow) ?? [], 'understudy_snapshot_bytes');
      const memory = new Map(voters.map((id) => [id, sampleProcess(system.pid(id))]));
      const diskMbPerNode = Object.fromEntries(voters.map((id) => [id, mb(diskUsage(join(system.cluster.dir, id)))]));

      const termWritten = await maxTerm(system);
      const learner = await learnerCatchUp(system, serial + 1);
      const termLearner = await maxTerm(system);
      log(`growth ${size}: learner ${learner.id} caught up in ${learner.catchUpMs ?? '-'} ms (via snapshot: ${learner.viaSnapshot ?? '-'})${learner.error === null ? '' : ` error: ${learner.error}`}`);
      const restart = await restartFollower(system);
      log(`growth ${size}: ${restart.node} restarted: healthy after ${restart.healthyMs ?? '-'} ms, caught up after ${restart.caughtUpMs ?? '-'} ms${restart.error === null ? '' : ` error: ${restart.error}`}`);
      const termAfter = await maxTerm(system);
      points.push({
        documents: size,
        loadSeconds: Math.round(loadSeconds * 100) / 100,
        loadDocsPerSecond: Math.round(docsLoaded / loadSeconds),
        write: { concurrency: options.concurrency, opsPerSecond: cell.opsPerSecond, errors: cell.errors, errorSamples: cell.errorSamples, latencyMs: cell.latencyMs },
        snapshot: {
          metricPresent: present,
          taken: present ? taken : null,
          meanSeconds: present && taken > 0 ? Math.round((seconds / taken) * 1000) / 1000 : null,
          maxSecondsAtMost: maxes.length === 0 ? null : Math.max(...maxes),
          bytes,
          leaderSnapshotIndex: snapshotIndex,
        },
        learner,
        restart,
        rssMbPerNode: Object.fromEntries(voters.map((id) => [id, mb(memory.get(id)?.rssBytes ?? 0)])),
        rssPeakMbPerNode: Object.fromEntries(voters.map((id) => [id, mb(memory.get(id)?.rssPeakBytes ?? 0)])),
        diskMbPerNode,
        termChanges: termAfter - termBefore,
        termChangesByPhase: { load: termLoaded - termBefore, writes: termWritten - termLoaded, learner: termLearner - termWritten, restart: termAfter - termLearner },
      });
      if (termAfter > termBefore) log(`growth ${size}: ${termAfter - termBefore} term changes (load ${termLoaded - termBefore}, writes ${termWritten - termLoaded}, learner ${termLearner - termWritten}, restart ${termAfter - termLearner})`);
    }
    if (points.length > 0 && !points.some((point) => point.snapshot.metricPresent)) {
      notes.push('The server exports no understudy_snapshot_seconds histogram, so snapshot time is not measured; snapshot size comes from the understudy_snapshot_bytes gauge.');
    }
  } catch (caught) {
    error = String(caught instanceof Error ? caught.message : caught).slice(0, 2_000);
    log(`growth stopped: ${error}`);
  } finally {
    await pools.close();
    system.stop();
  }
  notes.push('Write latency at each size comes from a closed-loop cell of new single-document PUTs (ack=majority) right after loading; snapshots taken meanwhile show in its p99.');
  notes.push('The learner is a fresh node added with POST /v1/admin/members {"action":"add"}; its catch-up time runs from that request until it has applied the leader\'s commit index, then it is removed.');
  notes.push('Restart: kill -9 of a follower, restart, time until /v1/health/replica answers 200 and until it has applied the leader\'s commit index.');
  return { snapshotEveryEntries: options.snapshotEvery, logEntriesKeptAfterSnapshot: options.keepAfterSnapshot, points, notes, error };
}
