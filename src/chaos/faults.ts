/**
 * Fault types, the seeded fault schedule, and injecting/healing one fault on a ChaosCluster.
 *
 * Faults run one at a time: wait a gap, inject, hold, heal, wait (bounded) for a leader, repeat.
 * The seed decides the order of fault types (every requested type once, in a shuffled order,
 * before any repeats), the hold and gap lengths, the victims, the partition mode and the one-way
 * variant. Timing is real, so a seed reproduces the choices, not the interleaving.
 */
import { Prng } from '../shared/prng.ts';
import type { ChaosCluster } from './cluster.ts';
import { sleep } from './cluster.ts';
import type { CutMode } from './proxy.ts';

export const FAULT_TYPES = [
  'kill-leader',
  'kill-random',
  'partition-leader',
  'partition-split',
  'partition-oneway',
  'pause-leader',
  'pause-random',
  'restart-all',
] as const;

export type FaultType = (typeof FAULT_TYPES)[number];

export const FAULT_DESCRIPTIONS: Record<FaultType, string> = {
  'kill-leader': 'kill -9 the leader process, restart it after the hold',
  'kill-random': 'kill -9 a random node, restart it after the hold',
  'partition-leader': 'isolate the leader from every other node (both directions), heal after the hold',
  'partition-split': 'split the nodes into a random minority and majority (both directions), heal after the hold',
  'partition-oneway': 'cut one direction only: the leader\'s outbound links, its inbound links, or one random ordered pair',
  'pause-leader': 'SIGSTOP the leader process, SIGCONT after the hold',
  'pause-random': 'SIGSTOP a random node, SIGCONT after the hold',
  'restart-all': 'kill -9 every node, restart them all after the hold (whole-cluster restart)',
};

export function parseFaultList(value: string): FaultType[] {
  const trimmed = value.trim();
  if (trimmed === 'all') return [...FAULT_TYPES];
  if (trimmed === 'none' || trimmed === '') return [];
  const out: FaultType[] = [];
  for (const part of trimmed.split(',')) {
    const name = part.trim();
    if (name === '') continue;
    if (name === 'all') {
      for (const type of FAULT_TYPES) if (!out.includes(type)) out.push(type);
      continue;
    }
    if (!(FAULT_TYPES as readonly string[]).includes(name)) {
      throw new Error(`unknown fault '${name}' (known: ${FAULT_TYPES.join(', ')}, all, none)`);
    }
    if (!out.includes(name as FaultType)) out.push(name as FaultType);
  }
  return out;
}

export interface PlannedFault {
  readonly type: FaultType;
  /** How long the fault lasts before it is healed (for kills: the downtime). */
  readonly holdMs: number;
  /** Quiet time before the fault is injected. */
  readonly gapMs: number;
  /** A private stream for the fault's own choices (victim, mode, variant). */
  readonly random: Prng;
}

export interface ScheduleOptions {
  readonly types: readonly FaultType[];
  readonly holdMs: readonly [number, number];
  readonly gapMs: readonly [number, number];
}

/** An endless, seeded sequence of faults: every type once (shuffled), then random picks. */
export class FaultSchedule {
  private readonly random: Prng;
  private readonly options: ScheduleOptions;
  private firstRound: FaultType[];

  constructor(random: Prng, options: ScheduleOptions) {
    this.random = random;
    this.options = options;
    this.firstRound = random.shuffle([...options.types]);
  }

  next(): PlannedFault | null {
    if (this.options.types.length === 0) return null;
    const type = this.firstRound.shift() ?? this.random.pick(this.options.types);
    const [holdMin, holdMax] = this.options.holdMs;
    const [gapMin, gapMax] = this.options.gapMs;
    let holdMs = this.random.int(holdMin, holdMax);
    // A whole-cluster restart is all downtime: keep it short.
    if (type === 'restart-all') holdMs = Math.min(holdMs, 1_000);
    return { type, holdMs, gapMs: this.random.int(gapMin, gapMax), random: this.random.fork(`fault-${type}`) };
  }
}

/** What was done, for the report. */
export interface InjectedFault {
  readonly type: FaultType;
  readonly detail: string;
  readonly targets: readonly string[];
  readonly mode: CutMode | null;
  /** Directed raft links cut, "from->to". */
  readonly cutLinks: readonly string[];
  readonly leaderBefore: string | null;
  readonly termBefore: number | null;
  /** Undoes the fault (restart, resume, heal). */
  readonly heal: () => Promise<void>;
}

/**
 * Injects `fault` into the cluster. `leader` is the leader just before (null if none is known:
 * leader-targeted faults then pick a random node and say so).
 */
export async function injectFault(cluster: ChaosCluster, fault: PlannedFault, leader: { id: string; term: number } | null): Promise<InjectedFault> {
  const ids = cluster.ids();
  const random = fault.random;
  const leaderId = leader?.id ?? null;
  const leaderOr = (): { id: string; note: string } => (leaderId !== null ? { id: leaderId, note: ' (leader)' } : { id: random.pick(ids), note: ' (no leader known: random node)' });
  const roleNote = (id: string): string => (id === leaderId ? ' (leader)' : ' (follower)');
  const base = { type: fault.type, leaderBefore: leaderId, termBefore: leader?.term ?? null };
  const mode: CutMode = random.chance(0.5) ? 'refuse' : 'blackhole';
  switch (fault.type) {
    case 'kill-leader':
    case 'kill-random': {
      const target = fault.type === 'kill-leader' ? leaderOr() : { id: random.pick(ids), note: '' };
      const note = fault.type === 'kill-leader' ? target.note : roleNote(target.id);
      const pid = cluster.pid(target.id);
      await cluster.kill(target.id);
      return {
        ...base, detail: `kill -9 ${target.id}${note} pid ${pid ?? '?'}`, targets: [target.id], mode: null, cutLinks: [],
        heal: async () => {
          if (cluster.node(target.id).state === 'killed') cluster.start(target.id);
        },
      };
    }
    case 'partition-leader':
    case 'partition-split': {
      let minority: string[];
      let note = '';
      if (fault.type === 'partition-leader') {
        const target = leaderOr();
        minority = [target.id];
        note = target.note;
      } else {
        const size = random.int(1, Math.max(1, Math.floor((ids.length - 1) / 2)));
        minority = random.shuffle([...ids]).slice(0, size);
        note = minority.includes(leaderId ?? '') ? ' (leader in the minority)' : ' (leader in the majority)';
      }
      const majority = ids.filter((id) => !minority.includes(id));
      cluster.proxies.partition(minority, majority, mode);
      return {
        ...base, detail: `partition {${minority.join(',')}} | {${majority.join(',')}}${note}, ${mode}`, targets: minority, mode,
        cutLinks: cluster.proxies.cutLinks(),
        heal: async () => cluster.proxies.healAll(),
      };
    }
    case 'partition-oneway': {
      const variant = random.pick(['leader-outbound', 'leader-inbound', 'single-link'] as const);
      let detail: string;
      let targets: string[];
      if (variant === 'single-link') {
        const from = random.pick(ids);
        const to = random.pick(ids.filter((id) => id !== from));
        cluster.proxies.cut(from, to, mode);
        detail = `one-way cut ${from}${roleNote(from)} -> ${to}${roleNote(to)}, ${mode}`;
        targets = [from, to];
      } else {
        const target = leaderOr();
        const others = ids.filter((id) => id !== target.id);
        for (const other of others) {
          if (variant === 'leader-outbound') cluster.proxies.cut(target.id, other, mode);
          else cluster.proxies.cut(other, target.id, mode);
        }
        detail = variant === 'leader-outbound'
          ? `one-way cut ${target.id}${target.note} -> {${others.join(',')}}, ${mode}`
          : `one-way cut {${others.join(',')}} -> ${target.id}${target.note}, ${mode}`;
        targets = [target.id];
      }
      return { ...base, detail, targets, mode, cutLinks: cluster.proxies.cutLinks(), heal: async () => cluster.proxies.healAll() };
    }
    case 'pause-leader':
    case 'pause-random': {
      const target = fault.type === 'pause-leader' ? leaderOr() : { id: random.pick(ids), note: '' };
      const note = fault.type === 'pause-leader' ? target.note : roleNote(target.id);
      const pid = cluster.pid(target.id);
      cluster.pause(target.id);
      return {
        ...base, detail: `SIGSTOP ${target.id}${note} pid ${pid ?? '?'}`, targets: [target.id], mode: null, cutLinks: [],
        heal: async () => cluster.resume(target.id),
      };
    }
    case 'restart-all': {
      await Promise.all(ids.map((id) => cluster.kill(id)));
      return {
        ...base, detail: `kill -9 all (${ids.join(',')}), restart all`, targets: [...ids], mode: null, cutLinks: [],
        heal: async () => {
          for (const id of ids) if (cluster.node(id).state === 'killed') cluster.start(id);
        },
      };
    }
  }
}

/** Heals every fault that may be in place: links, paused and killed processes. */
export async function healEverything(cluster: ChaosCluster): Promise<void> {
  cluster.proxies.healAll();
  for (const id of cluster.ids()) {
    const node = cluster.node(id);
    if (node.state === 'paused') cluster.resume(id);
    if (node.state === 'killed') cluster.start(id);
  }
  await sleep(0);
}
