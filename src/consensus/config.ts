/**
 * Configuration of one consensus core, with every limit named and validated up front
 * (cross-field rules live here, not scattered through the code).
 *
 * Time is counted in ticks: the driver decides how long a tick is (the server uses
 * `tickIntervalMs`, the simulator a virtual clock).
 */
import type { Random } from '../shared/prng.ts';
import type { NodeId } from './types.ts';

/**
 * Known bugs that can be switched on in the simulator to prove that its checkers catch them.
 * Never set outside tests: the server refuses to start with one.
 */
export type PlantedBug =
  | 'commitEarlierTermByCounting'
  | 'voteTwiceInTerm'
  | 'readWithoutQuorum'
  | 'ackBeforePersist';

export interface RaftConfig {
  readonly id: NodeId;
  readonly random: Random;
  /** Base election timeout; each node waits a random time in [base, 2*base). */
  readonly electionTimeoutTicks: number;
  readonly heartbeatIntervalTicks: number;
  /** Thesis §9.6: a node asks whether it could win before disrupting the cluster with a new term. */
  readonly preVote: boolean;
  /** Thesis §6.2: a leader that has not heard from a majority for an election timeout steps down. */
  readonly checkQuorum: boolean;
  /**
   * Lease reads (thesis §6.4.1): serve linearizable reads without a heartbeat round while a
   * majority acknowledged the leader within (electionTimeoutTicks - leaseSafetyTicks). Safe only
   * if no node's clock runs faster than the others by more than the safety margin.
   */
  readonly leaseReads: boolean;
  readonly leaseSafetyTicks: number;
  readonly inflightMessagesMax: number;
  readonly entriesPerMessageMax: number;
  readonly bytesPerMessageMax: number;
  readonly uncommittedEntriesMax: number;
  /**
   * A leader refuses proposals (TOO_MANY_UNCOMMITTED) once the entries it appended in its term and
   * has not yet committed hold this many bytes of data (so it may pass it by one entry).
   */
  readonly uncommittedBytesMax: number;
  readonly entryBytesMax: number;
  readonly committedEntriesPerReadyMax: number;
  /**
   * And at most this many bytes of entry data (beyond the first entry): applying a Ready holds the
   * driver's event loop, so a burst of large entries must not hold it past a heartbeat.
   */
  readonly committedBytesPerReadyMax: number;
  readonly pendingReadsMax: number;
  readonly transferTimeoutTicks: number;
  /** Ticks a leader waits for a snapshot chunk acknowledgement before sending it again. */
  readonly snapshotChunkTimeoutTicks: number;
  /** Entries kept before the snapshot point at compaction, so slightly lagging peers avoid a snapshot. */
  readonly entriesKeptAfterCompaction: number;
  /** And at most this many bytes of entry data (the tail is what the leader holds in memory). */
  readonly bytesKeptAfterCompaction: number;
  readonly plantedBug: PlantedBug | null;
}

export type RaftConfigInput = Pick<RaftConfig, 'id' | 'random'> & Partial<RaftConfig>;

export function defaultRaftConfig(input: RaftConfigInput): RaftConfig {
  const electionTimeoutTicks = input.electionTimeoutTicks ?? 10;
  return {
    electionTimeoutTicks,
    heartbeatIntervalTicks: 1,
    preVote: true,
    checkQuorum: true,
    leaseReads: false,
    leaseSafetyTicks: 2,
    inflightMessagesMax: 64,
    entriesPerMessageMax: 512,
    bytesPerMessageMax: 1024 * 1024,
    uncommittedEntriesMax: 8192,
    uncommittedBytesMax: 64 * 1024 * 1024,
    entryBytesMax: 4 * 1024 * 1024,
    committedEntriesPerReadyMax: 1024,
    committedBytesPerReadyMax: 256 * 1024,
    pendingReadsMax: 8192,
    transferTimeoutTicks: electionTimeoutTicks * 2,
    snapshotChunkTimeoutTicks: electionTimeoutTicks,
    entriesKeptAfterCompaction: 64,
    bytesKeptAfterCompaction: Number.POSITIVE_INFINITY,
    plantedBug: null,
    ...input,
  };
}

/** Returns the list of problems with a configuration; empty when it is valid. */
export function validateRaftConfig(config: RaftConfig): string[] {
  const problems: string[] = [];
  const positive: (keyof RaftConfig)[] = [
    'electionTimeoutTicks', 'heartbeatIntervalTicks', 'inflightMessagesMax', 'entriesPerMessageMax',
    'bytesPerMessageMax', 'uncommittedEntriesMax', 'uncommittedBytesMax', 'entryBytesMax', 'committedEntriesPerReadyMax', 'committedBytesPerReadyMax',
    'pendingReadsMax', 'transferTimeoutTicks', 'snapshotChunkTimeoutTicks',
  ];
  for (const key of positive) {
    const value = config[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
      problems.push(`${key} must be a positive integer`);
    }
  }
  if (config.id === '') problems.push('id must not be empty');
  if (config.electionTimeoutTicks <= 2 * config.heartbeatIntervalTicks) {
    problems.push('electionTimeoutTicks must be greater than 2 * heartbeatIntervalTicks');
  }
  if (config.leaseReads && !config.checkQuorum) {
    problems.push('leaseReads requires checkQuorum');
  }
  if (config.leaseReads && config.leaseSafetyTicks >= config.electionTimeoutTicks) {
    problems.push('leaseSafetyTicks must be smaller than electionTimeoutTicks');
  }
  if (config.entriesKeptAfterCompaction < 0) problems.push('entriesKeptAfterCompaction must be >= 0');
  if (!(config.bytesKeptAfterCompaction >= 0)) problems.push('bytesKeptAfterCompaction must be >= 0');
  return problems;
}
