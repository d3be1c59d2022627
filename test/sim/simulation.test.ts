// Goal: the deterministic simulator finds no safety or liveness violation and no
// non-linearizable history over a sweep of seeds, replays a seed exactly, and catches every
// planted bug within a bounded number of seeds.
// Method: run real RaftCores through the Replica driver under swarm-chosen faults
// (src/sim/options.ts); each failure names its seed and how to replay it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Simulation, type SimResult } from '../../src/sim/simulation.ts';
import { plantedBugProfile, swarmOptions } from '../../src/sim/options.ts';
import type { PlantedBug } from '../../src/consensus/config.ts';

const SEEDS = Number(process.env['SIM_SEEDS'] ?? 300);

function describeFailure(result: SimResult): string {
  return [
    `seed ${result.seed} failed (replay: npm run sim -- --seed ${result.seed} --trace)`,
    ...result.violations.map((violation) => `  ${violation.property}: ${violation.detail}`),
    result.linearizable === 'linearizable' ? '' : `  history: ${result.linearizable} ${result.linearizabilityDetail}`,
    result.liveness.ok ? '' : `  liveness: ${result.liveness.detail}`,
  ].filter((line) => line !== '').join('\n');
}

test(`simulation: seeds 1..${SEEDS} keep every safety property, converge and stay linearizable`, () => {
  const failures: string[] = [];
  let operations = 0;
  let snapshots = 0;
  const faults = new Set<string>();
  for (let seed = 1; seed <= SEEDS; seed++) {
    const result = new Simulation(swarmOptions(seed)).run();
    operations += result.stats.operations;
    snapshots += result.stats.snapshotsInstalled;
    for (const kind of Object.keys(result.stats.faults)) faults.add(kind);
    if (!result.ok) failures.push(describeFailure(result));
  }
  assert.deepEqual(failures, []);
  // The sweep must actually exercise the system, or passing means nothing.
  assert.ok(operations > SEEDS * 100, `only ${operations} client operations`);
  assert.ok(snapshots > 0, 'no snapshot was ever installed');
  if (SEEDS >= 100) assert.ok(faults.size >= 12, `fault kinds exercised: ${[...faults].join(', ')}`);
});

test('simulation: the same seed replays exactly', () => {
  const first = new Simulation(swarmOptions(7)).run();
  const second = new Simulation(swarmOptions(7)).run();
  assert.deepEqual(second.stats, first.stats);
  assert.deepEqual(second.history, first.history);
  const other = new Simulation(swarmOptions(8)).run();
  assert.notDeepEqual(other.history, first.history);
});

const BUG_SEED_BOUND: Record<PlantedBug, number> = {
  voteTwiceInTerm: 30,
  readWithoutQuorum: 30,
  ackBeforePersist: 60,
  commitEarlierTermByCounting: 40,
};

for (const bug of Object.keys(BUG_SEED_BOUND) as PlantedBug[]) {
  test(`simulation: planted bug '${bug}' is caught within ${BUG_SEED_BOUND[bug]} seeds`, () => {
    let caught: SimResult | null = null;
    for (let seed = 1; seed <= BUG_SEED_BOUND[bug] && caught === null; seed++) {
      const result = new Simulation(swarmOptions(seed, plantedBugProfile(bug))).run();
      if (!result.ok) caught = result;
    }
    assert.ok(caught !== null, `${bug} was not caught`);
    // The same fault profile without the bug is clean: the checkers fail for the bug, not the profile.
    const clean = new Simulation(swarmOptions(caught.seed, { ...plantedBugProfile(bug), plantedBug: null })).run();
    assert.ok(clean.ok, describeFailure(clean));
  });
}
