/**
 * Failover: under a fixed-rate open-loop write load, repeatedly kill -9 the current leader (by
 * PID), measure the time to the first acknowledged write sent after the kill, restart the killed
 * node and wait until it has caught up before the next kill.
 */
import { Pools, sleep, until } from './http.ts';
import { OpenLoopWriter } from './openloop.ts';
import { distribution } from './stats.ts';
import { agreedLeader, caughtUp, type BenchSystem } from './systems/system.ts';
import type { FailoverKill, FailoverResult } from './types.ts';

/** How long a kill waits for an acknowledged write. */
export const FIRST_WRITE_BOUND_MS = 30_000;

export interface FailoverOptions {
  readonly kills: number;
  readonly rate: number;
  readonly writeTimeoutMs: number;
  readonly settleMs: number;
}

/** Starts a stopped node and waits (bounded) until it has caught up; restarts it again if it died on start (at most 3 times). */
export async function restartAndCatchUp(system: BenchSystem, id: string, timeoutMs: number): Promise<number> {
  const started = performance.now();
  let starts = 0;
  system.start(id);
  starts++;
  await until(`${id} to catch up after restart`, async () => {
    if (!system.isRunning(id)) {
      if (starts >= 4) throw new Error(`${id} exited ${starts} times on start:\n${system.logs()}`);
      await sleep(200);
      system.start(id);
      starts++;
      return false;
    }
    return caughtUp(system, id);
  }, timeoutMs, 50);
  return performance.now() - started;
}

export async function runFailover(system: BenchSystem, options: FailoverOptions, log: (line: string) => void): Promise<FailoverResult> {
  const pools = new Pools(128);
  const writer = new OpenLoopWriter(system, pools, { rate: options.rate, timeoutMs: options.writeTimeoutMs });
  const kills: FailoverKill[] = [];
  let error: string | null = null;
  try {
    await agreedLeader(system, 30_000);
    await writer.start();
    await until('writes to flow', () => writer.ok >= Math.min(50, options.rate), 30_000);
    await sleep(options.settleMs);
    for (let round = 1; round <= options.kills; round++) {
      const leader = await agreedLeader(system, 30_000);
      const failedBefore = writer.failed;
      const killedAt = performance.now();
      const firstOk = writer.firstOkAfter(killedAt, leader, FIRST_WRITE_BOUND_MS);
      await system.kill(leader);
      const okAt = await firstOk;
      const known = writer.leaderKnownAfter(killedAt, leader);
      const newLeader = await agreedLeader(system, 30_000, leader).catch(() => known?.id ?? null);
      let restartMs: number | null = null;
      try {
        restartMs = await restartAndCatchUp(system, leader, 120_000);
      } catch (restartError) {
        log(`${system.name}: ${String(restartError).slice(0, 300)}`);
        throw restartError;
      }
      const kill: FailoverKill = {
        killed: leader,
        newLeader,
        killToFirstWriteMs: okAt === null ? null : Math.round(okAt - killedAt),
        killToLeaderKnownMs: known === null ? null : Math.round(known.at - killedAt),
        writesFailed: writer.failed - failedBefore,
        restartToCaughtUpMs: Math.round(restartMs),
      };
      kills.push(kill);
      log(`${system.name} kill ${round}/${options.kills}: ${leader} -> ${newLeader ?? '?'}, first write after ${kill.killToFirstWriteMs ?? 'none'} ms ` +
        `(leader known after ${kill.killToLeaderKnownMs ?? '?'} ms, ${kill.writesFailed} writes failed), restart caught up in ${kill.restartToCaughtUpMs} ms`);
      await sleep(options.settleMs);
    }
  } catch (caught) {
    error = String(caught instanceof Error ? caught.message : caught).slice(0, 2_000);
    log(`${system.name} failover stopped: ${error}`);
  } finally {
    await writer.stop();
    await pools.close();
  }
  // A kill with no acknowledged write within the bound counts as the bound (conservative).
  const times = kills.map((kill) => kill.killToFirstWriteMs ?? FIRST_WRITE_BOUND_MS);
  const d = distribution(times);
  const known = distribution(kills.map((kill) => kill.killToLeaderKnownMs).filter((ms): ms is number => ms !== null));
  return {
    system: system.name,
    ratePerSecond: options.rate,
    writeTimeoutMs: options.writeTimeoutMs,
    kills,
    killToFirstWriteMs: { count: kills.length, missing: kills.filter((kill) => kill.killToFirstWriteMs === null).length, p50: d.p50, p99: d.p99, max: d.max, mean: d.mean },
    killToLeaderKnownMs: { p50: known.p50, p99: known.p99, max: known.max },
    writes: { sent: writer.sent, ok: writer.ok, failed: writer.failed },
    latencyMs: writer.latency.count === 0 ? null : writer.latency.summary(),
    error,
  };
}
