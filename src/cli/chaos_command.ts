/**
 * `understudy chaos`: the fault-injection suite (src/chaos, docs/chaos.md). Starts a local
 * cluster of real `understudy start` processes, runs the workloads, injects faults, checks the
 * history and prints the report. Exit code 0 when every check passes, 1 when one fails, 3 when
 * one is unknown (e.g. the linearizability search ran out of budget), 2 on a usage or harness error.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { PLANTED_BUGS } from '../server/config.ts';
import { parseFaultList, type FaultType } from '../chaos/faults.ts';
import { runChaos, type ChaosOptions, type WorkloadKind } from '../chaos/runner.ts';
import type { AckLevel } from '../chaos/workloads.ts';

function positiveInt(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1) throw new InvalidArgumentError('expected a positive integer');
  return parsed;
}

function nonNegativeInt(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return parsed;
}

function seconds(value: string): number {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0) throw new InvalidArgumentError('expected a positive number of seconds');
  return parsed;
}

/** `1500-4000` (ms) or a single number. */
function range(value: string): [number, number] {
  const match = /^(\d+)(?:-(\d+))?$/.exec(value.trim());
  if (match === null) throw new InvalidArgumentError('expected MIN-MAX in milliseconds, e.g. 1500-4000');
  const min = Number(match[1]);
  const max = match[2] === undefined ? min : Number(match[2]);
  if (max < min) throw new InvalidArgumentError('MAX must be at least MIN');
  return [min, max];
}

function fraction(value: string): number {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < 0 || parsed > 1) throw new InvalidArgumentError('expected a number between 0 and 1');
  return parsed;
}

function faults(value: string): FaultType[] {
  try {
    return parseFaultList(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

function choice<T extends string>(allowed: readonly T[]): (value: string) => T {
  return (value) => {
    if (!(allowed as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${allowed.join(', ')}`);
    return value as T;
  };
}

interface ChaosFlags {
  duration: number;
  faults: FaultType[];
  ack: AckLevel;
  workload: WorkloadKind;
  seed?: number;
  out?: string;
  plantedBug?: string;
  nodes: number;
  clients: number;
  setClients: number;
  keys: number;
  opsPerKey: number;
  reads: number;
  writes: number;
  opTimeout: number;
  hold: [number, number];
  gap: [number, number];
  checkTime: number;
  tickMs?: number;
  electionTicks?: number;
  json?: boolean;
  probe: boolean;
  verbose?: boolean;
  quiet?: boolean;
}

export function registerChaosCommand(program: Command): Command {
  return program.command('chaos')
    .description('fault-injection suite: run a local cluster of real processes under faults, record a history, check it, report')
    .option('--duration <seconds>', 'how long the workload runs', seconds, 60)
    .addOption(new Option('--faults <list>', `comma-separated fault types, or all / none (${parseFaultList('all').join(', ')})`).argParser(faults).default(parseFaultList('all'), 'all'))
    .option('--ack <level>', 'acknowledgement level of every write: leader, majority, all', choice(['leader', 'majority', 'all'] as const), 'majority')
    .option('--workload <kind>', 'register, set or both', choice(['register', 'set', 'both'] as const), 'both')
    .option('--seed <n>', 'seed of the fault schedule and workload choices (default: random, printed)', nonNegativeInt)
    .option('--out <dir>', 'write history.jsonl, report.json, report.txt and node logs here')
    .option('--planted-bug <name>', `switch on a known bug in every node (test use: ${PLANTED_BUGS.join(', ')})`, choice(PLANTED_BUGS))
    .option('--nodes <n>', 'cluster size', positiveInt, 3)
    .option('--clients <n>', 'register client processes', nonNegativeInt, 5)
    .option('--set-clients <n>', 'set client processes', nonNegativeInt, 3)
    .option('--keys <n>', 'register keys in use at a time', positiveInt, 3)
    .option('--ops-per-key <n>', 'ops on a register key before it is replaced by a fresh one', positiveInt, 300)
    .option('--reads <fraction>', 'fraction of register ops that are reads', fraction, 0.5)
    .option('--writes <fraction>', 'fraction of register ops that are writes (the rest are cas)', fraction, 0.25)
    .option('--op-timeout <ms>', 'client timeout of one op (an add retries for twice this)', positiveInt, 5_000)
    .addOption(new Option('--hold <min-max>', 'how long each fault lasts, ms').argParser(range).default([1_500, 4_000], '1500-4000'))
    .addOption(new Option('--gap <min-max>', 'quiet time before each fault, ms').argParser(range).default([1_500, 3_000], '1500-3000'))
    .option('--check-time <seconds>', 'time budget of the linearizability check', seconds, 120)
    .option('--tick-ms <ms>', 'node tick length (node config tickMs)', positiveInt)
    .option('--election-ticks <n>', 'node election timeout in ticks (node config electionTimeoutTicks)', positiveInt)
    .option('--no-probe', 'do not run the probe writer (a leader-tracking client with a 1 s timeout that makes RTO measure the cluster)')
    .option('--json', 'print the report as JSON instead of the table')
    .option('--verbose', 'log every failed or uncertain client answer')
    .option('--quiet', 'no progress lines')
    .action(async (flags: ChaosFlags) => {
      if (flags.reads + flags.writes > 1) {
        process.stderr.write('understudy chaos: --reads + --writes must be at most 1\n');
        process.exit(2);
      }
      const nodeConfig: Record<string, unknown> = {};
      if (flags.tickMs !== undefined) nodeConfig['tickMs'] = flags.tickMs;
      if (flags.electionTicks !== undefined) nodeConfig['electionTimeoutTicks'] = flags.electionTicks;
      const options: Partial<ChaosOptions> = {
        durationMs: Math.round(flags.duration * 1000),
        faults: flags.faults,
        ack: flags.ack,
        workload: flags.workload,
        outDir: flags.out ?? null,
        plantedBug: flags.plantedBug ?? null,
        nodes: flags.nodes,
        clients: flags.clients,
        setClients: flags.setClients,
        keys: flags.keys,
        opsPerKey: flags.opsPerKey,
        readFraction: flags.reads,
        writeFraction: flags.writes,
        opTimeoutMs: flags.opTimeout,
        holdMs: flags.hold,
        gapMs: flags.gap,
        checkTimeLimitMs: Math.round(flags.checkTime * 1000),
        nodeConfig,
        verbose: flags.verbose === true,
        probe: flags.probe,
        log: flags.quiet === true ? () => undefined : (line) => process.stderr.write(`${line}\n`),
        ...(flags.seed === undefined ? {} : { seed: flags.seed }),
      };
      let result;
      try {
        result = await runChaos(options);
      } catch (error) {
        process.stderr.write(`understudy chaos: ${(error as Error).stack ?? String(error)}\n`);
        process.exit(2);
      }
      process.stdout.write(flags.json === true ? `${JSON.stringify(result.report, null, 2)}\n` : `${result.text}\n`);
      if (result.outDir !== null && flags.quiet !== true) process.stderr.write(`chaos: history and report in ${result.outDir}\n`);
      process.exit(result.report.verdict === 'pass' ? 0 : result.report.verdict === 'fail' ? 1 : 3);
    });
}
