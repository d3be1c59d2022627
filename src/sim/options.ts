/**
 * Simulation options, and "swarm testing" (TigerBeetle's VOPR): every parameter of a run is
 * derived from its seed, so a sweep over seeds explores many different fault mixes, and one seed
 * replays one run exactly.
 */
import { Prng } from '../shared/prng.ts';
import type { PlantedBug } from '../consensus/config.ts';
import type { NetworkFaults } from './sim_network.ts';

export const FAULT_KINDS = [
  'crash', 'crashLeader', 'partition', 'isolateLeader', 'oneWay', 'bridge', 'pause', 'slow', 'lossy',
  'membership', 'transfer', 'crashNewLeader',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface SimOptions {
  seed: number;
  voters: number;
  spareNodes: number;
  tickMs: number;
  electionTimeoutTicks: number;
  heartbeatIntervalTicks: number;
  /** Virtual time with faults. */
  faultPhaseMs: number;
  /** Virtual time allowed, after every fault is healed, for the cluster to converge. */
  healPhaseMs: number;
  faults: FaultKind[];
  faultIntervalMsMin: number;
  faultIntervalMsMax: number;
  faultDurationMsMax: number;
  network: NetworkFaults;
  diskLatencyMsMin: number;
  diskLatencyMsMax: number;
  clients: number;
  keys: number;
  clientTimeoutMs: number;
  readFraction: number;
  casFraction: number;
  followerReadFraction: number;
  snapshotEveryEntries: number;
  snapshotChunkBytesMax: number;
  entriesPerMessageMax: number;
  inflightMessagesMax: number;
  leaseReads: boolean;
  /** With the crashNewLeader fault: the chance a new leader is killed within a few ticks. */
  crashNewLeaderProbability: number;
  plantedBug: PlantedBug | null;
}

export function swarmOptions(seed: number, overrides: Partial<SimOptions> = {}): SimOptions {
  const random = new Prng(seed, 'swarm');
  const faults = FAULT_KINDS.filter(() => random.chance(0.6));
  if (faults.length === 0) faults.push(random.pick(FAULT_KINDS));
  const lossy = random.chance(0.5);
  const options: SimOptions = {
    seed,
    voters: random.chance(0.65) ? 3 : 5,
    spareNodes: random.int(0, 1),
    tickMs: 10,
    electionTimeoutTicks: 10,
    heartbeatIntervalTicks: random.pick([1, 2, 3]),
    faultPhaseMs: random.int(4_000, 10_000),
    healPhaseMs: 8_000,
    faults,
    faultIntervalMsMin: 50,
    faultIntervalMsMax: random.int(200, 1_500),
    faultDurationMsMax: random.int(300, 3_000),
    network: {
      lossProbability: lossy ? random.next() * 0.1 : 0,
      duplicateProbability: lossy ? random.next() * 0.05 : 0,
      delayMsMin: 1,
      delayMsMax: random.int(2, 15),
      delaySpikeProbability: lossy ? random.next() * 0.05 : 0,
      delaySpikeMsMax: 200,
    },
    diskLatencyMsMin: 1,
    diskLatencyMsMax: random.int(2, 12),
    clients: random.int(2, 6),
    keys: random.int(1, 4),
    clientTimeoutMs: 1_000,
    readFraction: 0.2 + random.next() * 0.4,
    casFraction: random.next() * 0.4,
    followerReadFraction: random.next() * 0.5,
    snapshotEveryEntries: random.pick([8, 32, 128, 1024]),
    snapshotChunkBytesMax: random.pick([1024, 8192, 65_536]),
    entriesPerMessageMax: random.pick([1, 4, 64]),
    inflightMessagesMax: random.pick([1, 4, 64]),
    leaseReads: false,
    crashNewLeaderProbability: 0.3,
    plantedBug: null,
  };
  return { ...options, ...overrides };
}

/**
 * Fault profiles that make a planted bug's trigger likely, so the checker self-tests need few
 * seeds. Each names the situation the bug needs:
 *   commitEarlierTermByCounting -- Raft Figure 8: an old-term entry reaches a majority without an
 *     entry of the new leader's term, then leaders crash in turn. One entry per message and one
 *     message in flight let the old entry arrive alone; every new leader is cut off and killed
 *     (until the heal), so leaders rotate before their own entries spread (with 0.8, one seed in
 *     about 200 caught it; with 1, about one in six).
 *   ackBeforePersist -- a follower acknowledges, then crashes before its slow fsync: slow disks
 *     and frequent crashes.
 *   readWithoutQuorum -- a deposed leader keeps answering reads: isolate or pause the leader.
 *   voteTwiceInTerm -- split votes: 5 voters and partitions.
 */
export function plantedBugProfile(bug: PlantedBug): Partial<SimOptions> {
  switch (bug) {
    case 'commitEarlierTermByCounting':
      return {
        plantedBug: bug, voters: 5, spareNodes: 0, entriesPerMessageMax: 1, inflightMessagesMax: 1,
        faults: ['crashNewLeader'], crashNewLeaderProbability: 1, faultDurationMsMax: 300,
        diskLatencyMsMax: 3, clients: 6, readFraction: 0.2,
      };
    case 'ackBeforePersist':
      return {
        plantedBug: bug, voters: 3, spareNodes: 0, faults: ['crash', 'crashLeader'], diskLatencyMsMin: 30, electionTimeoutTicks: 20,
        diskLatencyMsMax: 100, faultIntervalMsMin: 20, faultIntervalMsMax: 150, faultDurationMsMax: 300,
        clients: 6, readFraction: 0.1,
      };
    case 'readWithoutQuorum':
      return {
        plantedBug: bug, faults: ['isolateLeader', 'pause', 'partition'], readFraction: 0.6,
        followerReadFraction: 0, clients: 6, keys: 1,
      };
    case 'voteTwiceInTerm':
      return { plantedBug: bug, voters: 5, faults: ['partition', 'crash', 'lossy'] };
  }
}

