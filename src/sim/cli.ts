/**
 * `npm run sim -- --seeds 1000` runs many seeds and prints a summary;
 * `npm run sim -- --seed N --trace` replays one run exactly, printing who sent what and why.
 * Exit code 0 only when every seed passed.
 */
import { Command, InvalidArgumentError } from 'commander';
import { Simulation, type SimResult } from './simulation.ts';
import { plantedBugProfile, swarmOptions, type SimOptions } from './options.ts';
import type { PlantedBug } from '../consensus/config.ts';

function positiveInt(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return parsed;
}

const BUGS: readonly PlantedBug[] = ['commitEarlierTermByCounting', 'voteTwiceInTerm', 'readWithoutQuorum', 'ackBeforePersist'];

const program = new Command()
  .name('understudy-sim')
  .description('Deterministic cluster simulator: the real consensus core under seeded faults')
  .option('--seed <n>', 'run one seed', positiveInt)
  .option('--seeds <count>', 'run this many seeds', positiveInt)
  .option('--from <n>', 'first seed of a sweep', positiveInt, 1)
  .option('--trace', 'print a readable trace of the run (with --seed)')
  .option('--planted-bug <name>', `switch on a known bug (${BUGS.join(', ')})`)
  .option('--json', 'print results as JSON lines')
  .showHelpAfterError();

program.parse();
const flags = program.opts<{ seed?: number; seeds?: number; from: number; trace?: boolean; plantedBug?: string; json?: boolean }>();

if (flags.plantedBug !== undefined && !BUGS.includes(flags.plantedBug as PlantedBug)) {
  console.error(`error: unknown planted bug '${flags.plantedBug}' (known: ${BUGS.join(', ')})`);
  process.exit(2);
}
if (flags.seed === undefined && flags.seeds === undefined) {
  console.error('error: give --seed N or --seeds COUNT');
  process.exit(2);
}
if (flags.trace === true && flags.seed === undefined) {
  console.error('error: --trace needs a single --seed');
  process.exit(2);
}

const overrides: Partial<SimOptions> = flags.plantedBug === undefined ? {} : plantedBugProfile(flags.plantedBug as PlantedBug);
const seeds = flags.seed !== undefined ? [flags.seed] : Array.from({ length: flags.seeds ?? 0 }, (_, i) => flags.from + i);

function summarize(result: SimResult): string {
  const s = result.stats;
  return `seed ${result.seed}: ${result.ok ? 'ok' : 'FAILED'} ops=${s.operations} (ok ${s.ok}, fail ${s.failed}, info ${s.indeterminate}) ` +
    `committed=${s.committed} elections=${s.elections} snapshots=${s.snapshotsInstalled} ` +
    `converged=${result.liveness.convergedAfterMs ?? '-'}ms`;
}

const started = Date.now();
const failures: SimResult[] = [];
let operations = 0;
let indeterminate = 0;
const faults: Record<string, number> = {};
for (const seed of seeds) {
  const simulation = new Simulation(swarmOptions(seed, overrides), flags.trace === true ? (line) => console.log(line) : null);
  const result = simulation.run();
  operations += result.stats.operations;
  indeterminate += result.stats.indeterminate;
  for (const [kind, count] of Object.entries(result.stats.faults)) faults[kind] = (faults[kind] ?? 0) + count;
  if (flags.json === true) {
    const { history: _history, ...rest } = result;
    console.log(JSON.stringify(rest));
  } else if (!result.ok || seeds.length === 1) {
    console.log(summarize(result));
  }
  if (!result.ok) {
    failures.push(result);
    for (const violation of result.violations) console.log(`  ${violation.property} at ${violation.timeMs}ms: ${violation.detail}`);
    if (result.linearizable !== 'linearizable') console.log(`  history ${result.linearizable}: ${result.linearizabilityDetail}`);
    if (!result.liveness.ok) console.log(`  liveness: ${result.liveness.detail}`);
    console.log(`  replay: npm run sim -- --seed ${seed} --trace${flags.plantedBug === undefined ? '' : ` --planted-bug ${flags.plantedBug}`}`);
  }
}
const seconds = ((Date.now() - started) / 1000).toFixed(1);
console.log(`${seeds.length} seeds in ${seconds}s: ${seeds.length - failures.length} passed, ${failures.length} failed; ` +
  `${operations} client operations (${indeterminate} indeterminate); faults ${JSON.stringify(faults)}`);
process.exit(failures.length === 0 ? 0 : 1);
