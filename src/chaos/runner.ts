/**
 * The chaos run: start a local cluster of real processes behind fault-injecting proxies, run the
 * workloads, inject faults on the seeded schedule, heal, read the final state, stop every
 * process, check the history and build the report.
 *
 * Every wait is bounded; every child process is killed by PID in `finally`, and also on SIGINT,
 * SIGTERM or exit of this process.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { join, resolve } from 'node:path';
import { Prng } from '../shared/prng.ts';
import { checkDuplicates, checkProcesses, checkRegisterHistory, checkSetHistory } from './checks.ts';
import { ChaosCluster, sleep } from './cluster.ts';
import { FAULT_TYPES, FaultSchedule, healEverything, injectFault, type FaultType } from './faults.ts';
import { HistoryRecorder, writeHistory } from './history.ts';
import { HttpClient, describeAnswer, type HttpAnswer } from './http.ts';
import { LeaderMonitor } from './monitor.ts';
import { buildReport, renderReport, type ChaosReport, type FaultRecord } from './report.ts';
import { ProbeWriter, RegisterWorkload, SetWorkload, type AckLevel } from './workloads.ts';

export type WorkloadKind = 'register' | 'set' | 'both';

export interface ChaosOptions {
  readonly durationMs: number;
  readonly faults: readonly FaultType[];
  readonly ack: AckLevel;
  readonly workload: WorkloadKind;
  readonly seed: number;
  /** Where history.jsonl, report.json, report.txt and the node logs go; null: a temporary directory, removed afterwards. */
  readonly outDir: string | null;
  readonly plantedBug: string | null;
  readonly nodes: number;
  /** Register client processes. */
  readonly clients: number;
  /** Set client processes. */
  readonly setClients: number;
  /** Register keys open at a time. */
  readonly keys: number;
  readonly opsPerKey: number;
  readonly readFraction: number;
  readonly writeFraction: number;
  readonly opTimeoutMs: number;
  readonly holdMs: readonly [number, number];
  readonly gapMs: readonly [number, number];
  /** Wall-clock budget for the linearizability check. */
  readonly checkTimeLimitMs: number;
  /** Extra node config (tickMs, electionTimeoutTicks, ...). */
  readonly nodeConfig: Record<string, unknown>;
  /** Progress lines (default: none). */
  readonly log: (line: string) => void;
  /** Log every failed/uncertain client answer (noisy). */
  readonly verbose: boolean;
  /** Run the probe writer (workloads.ts ProbeWriter): a leader-tracking client with a short timeout. */
  readonly probe: boolean;
}

export const DEFAULT_OPTIONS: Omit<ChaosOptions, 'seed' | 'log'> = {
  durationMs: 60_000,
  faults: [...FAULT_TYPES],
  ack: 'majority',
  workload: 'both',
  outDir: null,
  plantedBug: null,
  nodes: 3,
  clients: 5,
  setClients: 3,
  keys: 3,
  opsPerKey: 300,
  readFraction: 0.5,
  writeFraction: 0.25,
  opTimeoutMs: 5_000,
  holdMs: [1_500, 4_000],
  gapMs: [1_500, 3_000],
  checkTimeLimitMs: 120_000,
  nodeConfig: {},
  verbose: false,
  probe: true,
};

export function resolveOptions(partial: Partial<ChaosOptions>): ChaosOptions {
  return {
    ...DEFAULT_OPTIONS,
    seed: Math.floor(Math.random() * 2 ** 31),
    log: () => undefined,
    ...partial,
  };
}

export interface ChaosResult {
  readonly report: ChaosReport;
  readonly text: string;
  /** Null when no output directory was asked for (the temporary one is removed). */
  readonly outDir: string | null;
}

const REGISTER_COLLECTION = 'chaos_register';
const SET_COLLECTION = 'chaos_set';
const FINAL_READ_PROCESS = 9_999;
const PROBE_PROCESS = 500;

export async function runChaos(input: Partial<ChaosOptions>): Promise<ChaosResult> {
  const options = resolveOptions(input);
  const log = options.log;
  if (options.nodes < 1) throw new Error('need at least one node');
  const startedAt = new Date().toISOString();
  const outDir = options.outDir === null ? mkdtempSync(join(tmpdir(), 'understudy-chaos-out-')) : resolve(options.outDir);
  mkdirSync(outDir, { recursive: true });
  const random = new Prng(options.seed, 'chaos');
  const runTag = `${options.seed}-${Date.now().toString(36)}`;

  const recorder = new HistoryRecorder();
  // Wall-clock time of the history clock's zero, to line history times up with node logs.
  const originEpochMs = Date.now() - recorder.nowMs();
  const answers = new Map<string, number>();
  const http = new HttpClient();
  let cluster: ChaosCluster | null = null;
  const killChildren = (): void => cluster?.killAllNow();
  const onSignal = (signal: NodeJS.Signals): void => {
    killChildren();
    if (cluster !== null) rmSync(cluster.dataDir, { recursive: true, force: true });
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.on('exit', killChildren);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  // The proxies run on this process's event loop: if it stalls, every peer link stalls with it and
  // elections follow that are the harness's doing. Record the worst delay of every second.
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  const loopDelayPerSecond: number[] = [];
  const stalls: { t: number; maxMs: number }[] = [];
  const loopSampler = setInterval(() => {
    const maxMs = loopDelay.max / 1e6;
    loopDelayPerSecond.push(maxMs);
    if (maxMs > 100) stalls.push({ t: Math.round(recorder.nowMs()), maxMs: Math.round(maxMs) });
    loopDelay.reset();
  }, 1_000);
  loopSampler.unref();

  const faults: FaultRecord[] = [];
  const notes: string[] = [];
  let monitor: LeaderMonitor | null = null;
  let workloadStartMs = 0;
  let workloadEndMs = 0;
  let versions: Map<string, number> | null = null;
  let register: RegisterWorkload | null = null;
  let set: SetWorkload | null = null;
  let probe: ProbeWriter | null = null;
  try {
    log(`chaos: seed ${options.seed}, ${Math.round(options.durationMs / 1000)} s, ack=${options.ack}, workload=${options.workload}, faults=${options.faults.join(',') || 'none'}${options.plantedBug === null ? '' : `, PLANTED BUG ${options.plantedBug}`}`);
    cluster = await ChaosCluster.create({
      nodes: options.nodes, logDir: join(outDir, 'nodes'), plantedBug: options.plantedBug, config: options.nodeConfig,
      onUnexpectedExit: (id, exit) => log(`chaos: ${id} exited on its own (code ${exit.code}, signal ${exit.signal}):\n${exit.lastLines}`),
    });
    log(`chaos: nodes ${cluster.ids().map((id) => `${id} pid ${cluster?.pid(id)} ${cluster?.node(id).clientUrl}`).join(', ')}; data in ${cluster.dataDir}`);
    if (!(await cluster.waitForAllUp(30_000))) throw new Error('not every node came up within 30 s');
    const first = await cluster.waitForLeader(30_000);
    if (first === null) throw new Error(`no leader within 30 s of starting the cluster\n${cluster.ids().map((id) => `--- ${id}\n${cluster?.tail(id)}`).join('\n')}`);
    log(`chaos: leader ${first}`);

    monitor = new LeaderMonitor(cluster, () => recorder.nowMs());
    monitor.start();
    const context = {
      cluster, recorder, http, ack: options.ack, opTimeoutMs: options.opTimeoutMs,
      onAnswer: (what: string, answer: HttpAnswer): void => {
        const label = `${what.split(' ')[0]} ${describeAnswer(answer)}`;
        answers.set(label, (answers.get(label) ?? 0) + 1);
        if (options.verbose) log(`  ${Math.round(recorder.nowMs())} ms ${what}: ${describeAnswer(answer)}`);
      },
    };
    register = options.workload === 'set' ? null : new RegisterWorkload(context, {
      processes: options.clients, firstProcess: 0, keys: options.keys, opsPerKey: options.opsPerKey,
      collection: REGISTER_COLLECTION, readFraction: options.readFraction, writeFraction: options.writeFraction, thinkMs: 10, backoffMs: [50, 150],
    }, random.fork('register'));
    set = options.workload === 'register' ? null : new SetWorkload(context, {
      processes: options.setClients, firstProcess: 1_000, collection: SET_COLLECTION,
      addBudgetMs: options.opTimeoutMs * 2, thinkMs: 10, backoffMs: [50, 150], runTag,
    }, random.fork('set'));
    const monitorRef = monitor;
    probe = options.probe ? new ProbeWriter(context, {
      firstProcess: PROBE_PROCESS, processes: 4, collection: REGISTER_COLLECTION, opsPerKey: options.opsPerKey, timeoutMs: 1_000, intervalMs: 20,
    }, () => monitorRef.leader()?.id ?? null, random.fork('probe')) : null;
    workloadStartMs = recorder.nowMs();
    register?.start();
    set?.start();
    probe?.start();

    // The nemesis: one fault at a time until the duration is used up.
    const schedule = new FaultSchedule(random.fork('faults'), { types: options.faults, holdMs: options.holdMs, gapMs: options.gapMs });
    const endAt = workloadStartMs + options.durationMs;
    for (;;) {
      const planned = schedule.next();
      if (planned === null) {
        await sleep(endAt - recorder.nowMs());
        break;
      }
      const gap = Math.min(planned.gapMs, endAt - recorder.nowMs());
      await sleep(gap);
      // Leave room for the hold and some recovery inside the duration.
      if (recorder.nowMs() + planned.holdMs + 1_000 > endAt) {
        await sleep(endAt - recorder.nowMs());
        break;
      }
      const leader = await monitor.waitForLeader(3_000);
      const injectedAtMs = recorder.nowMs();
      const injected = await injectFault(cluster, planned, leader);
      log(`chaos: ${Math.round(injectedAtMs / 1000)} s fault #${faults.length + 1} ${planned.type}: ${injected.detail}, hold ${planned.holdMs} ms`);
      await sleep(planned.holdMs);
      await injected.heal();
      const healedAtMs = recorder.nowMs();
      faults.push({
        index: faults.length + 1, type: planned.type, detail: injected.detail, targets: injected.targets, mode: injected.mode,
        cutLinks: injected.cutLinks, leaderBefore: injected.leaderBefore, termBefore: injected.termBefore, holdMs: planned.holdMs,
        injectedAtMs: Math.round(injectedAtMs * 10) / 10, healedAtMs: Math.round(healedAtMs * 10) / 10,
      });
      // Let the cluster settle (bounded) before the next gap starts counting: every node serving
      // again (a restarted process takes a few seconds) and a leader visible, so that each fault
      // hits a whole cluster and its measurements are its own.
      if (!(await cluster.waitForAllUp(15_000))) log('chaos: not every node answered within 15 s after healing');
      const settled = await monitor.waitForLeader(10_000);
      if (settled === null) log('chaos: no leader visible 10 s after healing');
    }

    // Heal everything, stop the clients, let the cluster converge, read the final state.
    await healEverything(cluster);
    log('chaos: healed; stopping the workload');
    await Promise.all([register?.stop(), set?.stop(), probe?.stop()]);
    workloadEndMs = recorder.nowMs();
    const leader = await cluster.waitForLeader(30_000);
    if (leader === null) notes.push('no leader agreed on within 30 s after the end of the workload');
    const converged = await cluster.waitForConvergence(30_000);
    if (!converged) notes.push('the nodes did not converge within 30 s after the end of the workload');
    if (set !== null) {
      versions = await set.readAll(FINAL_READ_PROCESS, 60_000, random.fork('final'));
      if (versions === null) notes.push('the final read of the set did not succeed within 60 s');
    }
    await monitor.stop();
  } catch (error) {
    // Keep what was recorded: a harness failure mid-run should still leave its history behind.
    try {
      writeHistory(join(outDir, 'history.jsonl'), recorder.events);
    } catch {
      // best effort
    }
    if (cluster !== null) {
      const tails = cluster.ids().map((id) => `--- ${id}\n${cluster?.tail(id, 30)}`).join('\n');
      (error as Error).message += `\nnode log tails:\n${tails}`;
    }
    (error as Error).message += `\nhistory and node logs kept in ${outDir}`;
    throw error;
  } finally {
    clearInterval(loopSampler);
    loopDelay.disable();
    await monitor?.stop();
    if (cluster !== null) await cluster.stopAll();
    await http.close();
    process.off('exit', killChildren);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }

  // Checks and report, after every process is gone.
  log(`chaos: checking ${recorder.events.length} events`);
  writeHistory(join(outDir, 'history.jsonl'), recorder.events);
  writeFileSync(join(outDir, 'monitor.jsonl'), (monitor?.samples ?? []).map((sample) => JSON.stringify(sample)).join('\n') + '\n');
  const exits = [...(cluster?.nodes.values() ?? [])].flatMap((node) => node.unexpectedExits.map((exit) => ({ node: node.id, ...exit })));
  const checks = {
    linearizability: checkRegisterHistory(recorder.events, { timeLimitMs: options.checkTimeLimitMs }),
    set: checkSetHistory(recorder.events),
    duplicates: options.workload === 'register' ? { verdict: 'pass' as const, checked: 0, duplicates: [] } : checkDuplicates(versions),
    processes: checkProcesses(exits),
  };
  const report = buildReport({
    startedAt,
    options: {
      durationMs: options.durationMs, faults: options.faults, ack: options.ack, workload: options.workload, seed: options.seed,
      plantedBug: options.plantedBug, nodes: options.nodes, clients: options.clients, setClients: options.setClients,
      keys: options.keys, opsPerKey: options.opsPerKey, opTimeoutMs: options.opTimeoutMs, holdMs: options.holdMs, gapMs: options.gapMs,
      nodeConfig: options.nodeConfig, probe: options.probe,
    },
    seed: options.seed,
    events: recorder.events,
    faults,
    samples: monitor?.samples ?? [],
    workloadStartMs,
    workloadEndMs,
    checks,
    notes,
    originEpochMs,
    harness: { loopDelayPerSecondMs: loopDelayPerSecond, stalls },
    answers: Object.fromEntries([...answers].sort((a, b) => b[1] - a[1])),
  });
  const text = renderReport(report);
  writeFileSync(join(outDir, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(outDir, 'report.txt'), `${text}\n`);
  if (options.outDir === null) rmSync(outDir, { recursive: true, force: true });
  return { report, text, outDir: options.outDir === null ? null : outDir };
}
