/**
 * The deterministic cluster simulator: real RaftCores driven by the real Replica driver, with a
 * simulated disk, network and clock, under one seed (TigerBeetle's VOPR, FoundationDB's
 * simulation). Two phases:
 *   safety   -- clients read, write and compare-and-set while faults are injected;
 *               the safety checker runs after every event;
 *   liveness -- every fault is healed; within a bounded time a leader must emerge, every pending
 *               proposal must commit or fail definitively, and every member must converge.
 * At the end the client history is checked for linearizability.
 *
 * Everything random comes from one seed; nothing reads the wall clock. Same seed, same run.
 */
import { AssertionError, assert } from '../shared/assert.ts';
import { Prng } from '../shared/prng.ts';
import { RaftCore, bootstrapState } from '../consensus/raft_core.ts';
import { describeMessage, describeReady } from '../consensus/describe.ts';
import type { Membership, Message, NodeId } from '../consensus/types.ts';
import { Replica } from '../replica/replica.ts';
import type { ApplyResult } from '../documents/index.ts';
import type { HistoryEvent } from '../checkers/history.ts';
import { checkLinearizability } from '../checkers/linearizability.ts';
import { EventQueue } from './event_queue.ts';
import { SimDisk } from './sim_disk.ts';
import { CALM_NETWORK, SimNetwork } from './sim_network.ts';
import { SafetyChecker, type Violation } from './safety_checker.ts';
import { RegisterMachine, encodeRegisterWrite, type RegisterWrite } from './register_machine.ts';
import type { FaultKind, SimOptions } from './options.ts';

interface SimNode {
  readonly id: NodeId;
  readonly disk: SimDisk;
  replica: Replica<ApplyResult> | null;
  machine: RegisterMachine;
  pausedUntil: number;
  missedTicks: number;
  slowFactor: number;
  restarts: number;
}

export interface SimResult {
  readonly seed: number;
  readonly ok: boolean;
  readonly violations: readonly Violation[];
  readonly linearizable: 'linearizable' | 'not-linearizable' | 'unknown';
  readonly linearizabilityDetail: string;
  readonly liveness: { readonly ok: boolean; readonly convergedAfterMs: number | null; readonly detail: string };
  readonly stats: {
    readonly operations: number;
    readonly ok: number;
    readonly failed: number;
    readonly indeterminate: number;
    readonly elections: number;
    readonly maxTerm: number;
    readonly committed: number;
    readonly faults: Readonly<Record<string, number>>;
    readonly messages: number;
    readonly snapshotsInstalled: number;
    readonly events: number;
  };
  readonly history: readonly HistoryEvent[];
}

const MS_TO_NS = 1_000_000;

export class Simulation {
  readonly options: SimOptions;
  private readonly queue = new EventQueue();
  private readonly random: Prng;
  private readonly network: SimNetwork;
  private readonly nodes = new Map<NodeId, SimNode>();
  private readonly checker: SafetyChecker;
  private readonly history: HistoryEvent[] = [];
  private readonly trace: ((line: string) => void) | null;
  private readonly faultCounts: Record<string, number> = {};
  private readonly initialVoters: NodeId[];
  private healed = false;
  private clientsStopped = false;
  private openOperations = 0;
  private operationSequence = 0;
  private events = 0;
  private snapshotsInstalled = 0;
  private elections = 0;
  private maxTerm = 0;

  constructor(options: SimOptions, trace: ((line: string) => void) | null = null) {
    this.options = options;
    this.trace = trace;
    this.random = new Prng(options.seed, 'simulation');
    this.checker = new SafetyChecker(() => this.queue.now);
    this.network = new SimNetwork(
      this.random.fork('network'),
      (delay, run) => this.queue.after(delay, run),
      (message) => this.deliver(message),
      options.network,
    );
    const ids = Array.from({ length: options.voters + options.spareNodes }, (_, i) => `n${i + 1}`);
    this.initialVoters = ids.slice(0, options.voters);
    for (const id of ids) this.createNode(id);
  }

  private log(line: string): void {
    if (this.trace !== null) this.trace(`${String(this.queue.now).padStart(7)}ms ${line}`);
  }

  // ---------------------------------------------------------------------------------------------
  // Nodes.

  private createNode(id: NodeId): void {
    const isVoter = this.initialVoters.includes(id);
    const membership: Membership = isVoter ? { voters: this.initialVoters, learners: [] } : { voters: [], learners: [] };
    const machine = new RegisterMachine();
    const disk = new SimDisk(
      bootstrapState(membership),
      machine.snapshot(),
      (delay, run) => this.queue.after(delay, () => this.atNode(id, run)),
      () => this.diskLatency(id),
    );
    const node: SimNode = { id, disk, replica: null, machine, pausedUntil: 0, missedTicks: 0, slowFactor: 1, restarts: 0 };
    this.nodes.set(id, node);
    this.startNode(node);
    // Spread tick phases so nodes do not move in lock-step.
    this.queue.after(this.random.int(0, this.options.tickMs - 1), () => this.tickLoop(id));
  }

  private diskLatency(id: NodeId): number {
    const node = this.nodes.get(id);
    const base = this.random.int(this.options.diskLatencyMsMin, this.options.diskLatencyMsMax);
    return base * (node?.slowFactor ?? 1);
  }

  private startNode(node: SimNode): void {
    const state = node.disk.persistentState();
    const core = new RaftCore({
      id: node.id,
      random: this.random.fork(`core-${node.id}-${node.restarts}`),
      electionTimeoutTicks: this.options.electionTimeoutTicks,
      heartbeatIntervalTicks: this.options.heartbeatIntervalTicks,
      entriesPerMessageMax: this.options.entriesPerMessageMax,
      inflightMessagesMax: this.options.inflightMessagesMax,
      leaseReads: this.options.leaseReads,
      plantedBug: this.options.plantedBug,
      entriesKeptAfterCompaction: 16,
    }, state, this.trace === null ? null : (line) => this.log(line));
    node.machine = new RegisterMachine();
    node.machine.restore(node.disk.image.snapshot.bytes);
    node.replica = new Replica<ApplyResult>({
      core,
      storage: node.disk,
      stateMachine: node.machine,
      transport: { send: (message) => this.send(message) },
      deferCollect: (collect) => this.queue.after(0, () => this.atNode(node.id, collect)),
      snapshotEveryEntries: this.options.snapshotEveryEntries,
      snapshotChunkBytesMax: this.options.snapshotChunkBytesMax,
      observer: {
        onApplied: (entry) => this.checker.onApplied(node.id, entry),
        onSnapshotRestored: (meta) => {
          this.snapshotsInstalled++;
          this.log(`${node.id} restored snapshot ${meta.index}/${meta.term}`);
        },
        onReady: this.trace === null ? undefined : (ready) => this.log(`${node.id} ${describeReady(ready)}`),
      },
    });
    node.replica.pump();
  }

  private crash(node: SimNode): void {
    if (node.replica === null) return;
    this.log(`FAULT crash ${node.id}`);
    node.replica.stop();
    node.replica = null;
    node.disk.crash();
    node.pausedUntil = 0;
    this.checker.forgetNode(node.id);
  }

  private restart(node: SimNode): void {
    if (node.replica !== null) return;
    node.restarts++;
    this.log(`restart ${node.id}`);
    this.startNode(node);
  }

  /** Runs `run` at node `id` unless it is crashed; defers it while the node is paused. */
  private atNode(id: NodeId, run: () => void): void {
    const node = this.nodes.get(id);
    if (node === undefined || node.replica === null) return;
    if (node.pausedUntil > this.queue.now) {
      this.queue.at(node.pausedUntil, () => this.atNode(id, run));
      return;
    }
    run();
  }

  private tickLoop(id: NodeId): void {
    const node = this.nodes.get(id);
    assert(node !== undefined, 'tick for an unknown node');
    if (node.replica !== null) {
      if (node.pausedUntil > this.queue.now) {
        node.missedTicks++;
      } else {
        // A process that was frozen runs its missed timer ticks first when it wakes, as the
        // server's driver does from its monotonic clock.
        const ticks = 1 + node.missedTicks;
        node.missedTicks = 0;
        for (let i = 0; i < ticks && node.replica !== null; i++) node.replica.tick();
      }
    }
    this.queue.after(this.options.tickMs, () => this.tickLoop(id));
  }

  private send(message: Message): void {
    if (this.trace !== null) this.log(`send ${describeMessage(message)}`);
    this.network.send(message);
  }

  private deliver(message: Message): void {
    this.atNode(message.to, () => {
      if (this.trace !== null) this.log(`recv ${describeMessage(message)}`);
      this.nodes.get(message.to)?.replica?.receive(message);
    });
  }

  private running(): SimNode[] {
    return [...this.nodes.values()].filter((node) => node.replica !== null);
  }

  private leader(): SimNode | null {
    let best: SimNode | null = null;
    for (const node of this.running()) {
      const core = node.replica?.core;
      if (core?.role !== 'leader') continue;
      if (best === null || core.term > (best.replica?.core.term ?? 0)) best = node;
    }
    return best;
  }

  // ---------------------------------------------------------------------------------------------
  // Clients. Each process has at most one operation open (the history format requires it).

  private startClient(process: number): void {
    let target: NodeId = this.random.pick(this.initialVoters);
    const next = (): void => {
      if (this.clientsStopped) return;
      this.queue.after(this.random.int(0, 20), () => {
        if (this.clientsStopped) return;
        this.runOperation(process, target, (hint) => {
          if (hint !== null && this.nodes.has(hint)) target = hint;
          else if (hint === null) target = this.random.pick([...this.nodes.keys()]);
          next();
        });
      });
    };
    next();
  }

  private runOperation(process: number, target: NodeId, done: (hint: NodeId | null) => void): void {
    const key = `k${this.random.int(1, this.options.keys)}`;
    const roll = this.random.next();
    const f: HistoryEvent['f'] = roll < this.options.readFraction ? 'read'
      : roll < this.options.readFraction + this.options.casFraction ? 'cas' : 'write';
    const value = f === 'read' ? null : `v${++this.operationSequence}`;
    const expected = f === 'cas' ? (this.random.chance(0.2) ? null : `v${this.random.int(Math.max(1, this.operationSequence - 8), this.operationSequence)}`) : undefined;
    const invoke: HistoryEvent = {
      process, type: 'invoke', f, key, value, time: this.queue.now * MS_TO_NS,
      ...(expected === undefined ? {} : { expected }),
    };
    this.history.push(invoke);
    this.openOperations++;
    let finished = false;
    const finish = (type: 'ok' | 'fail' | 'info', readValue: string | null, hint: NodeId | null): void => {
      if (finished) return;
      finished = true;
      this.openOperations--;
      this.history.push({
        process, type, f, key, value: f === 'read' ? readValue : value, time: this.queue.now * MS_TO_NS,
        ...(expected === undefined ? {} : { expected }),
      });
      done(hint);
    };
    // A request that gets no answer in time: a write's outcome is unknown, a read simply failed.
    this.queue.after(this.options.clientTimeoutMs, () => finish(f === 'read' ? 'fail' : 'info', null, null));
    const reply = (type: 'ok' | 'fail' | 'info', readValue: string | null, hint: NodeId | null): void => {
      this.queue.after(this.random.int(1, 3), () => finish(type, readValue, hint));
    };
    const readTarget = f === 'read' && this.random.chance(this.options.followerReadFraction)
      ? this.random.pick([...this.nodes.keys()]) : target;
    this.queue.after(this.random.int(1, 3), () => {
      const node = this.nodes.get(readTarget);
      if (node === undefined || node.replica === null) {
        reply(f === 'read' ? 'fail' : 'fail', null, null); // connection refused: nothing was sent
        return;
      }
      this.atNode(node.id, () => this.serveOperation(node, { f, key, value, expected }, reply));
    });
  }

  private serveOperation(
    node: SimNode,
    operation: { f: HistoryEvent['f']; key: string; value: string | null; expected: string | null | undefined },
    reply: (type: 'ok' | 'fail' | 'info', readValue: string | null, hint: NodeId | null) => void,
  ): void {
    const replica = node.replica;
    assert(replica !== null, 'serving on a crashed node');
    if (operation.f === 'read') {
      const requestId = `r${++this.operationSequence}`;
      replica.read(requestId, (outcome) => {
        if (!outcome.ok) {
          reply('fail', null, replica.core.leaderId);
          return;
        }
        reply('ok', node.machine.read(operation.key), null);
      }, { lease: this.options.leaseReads });
      return;
    }
    assert(operation.value !== null, 'writes carry a value');
    const write: RegisterWrite = operation.f === 'write'
      ? { f: 'write', key: operation.key, value: operation.value }
      : { f: 'cas', key: operation.key, expected: operation.expected ?? null, value: operation.value };
    const data = encodeRegisterWrite(write, this.queue.now, `w${this.operationSequence}`);
    const result = replica.propose(data, (outcome) => {
      if (outcome.status === 'applied') {
        const applied = outcome.result;
        reply(applied.status === 'applied' ? 'ok' : 'fail', null, null);
      } else if (outcome.status === 'failed') {
        reply('fail', null, null);
      } else {
        reply('info', null, null);
      }
    });
    if (!result.ok) reply('fail', null, result.leaderId);
  }

  // ---------------------------------------------------------------------------------------------
  // Faults (the nemesis).

  private scheduleFaults(): void {
    const next = (): void => {
      const delay = this.random.int(this.options.faultIntervalMsMin, this.options.faultIntervalMsMax);
      this.queue.after(delay, () => {
        if (this.healed) return;
        this.injectFault(this.random.pick(this.options.faults));
        next();
      });
    };
    next();
  }

  private healLater(run: () => void): void {
    this.queue.after(this.random.int(50, this.options.faultDurationMsMax), () => {
      if (!this.healed) run();
    });
  }

  private injectFault(kind: FaultKind): void {
    this.faultCounts[kind] = (this.faultCounts[kind] ?? 0) + 1;
    const ids = [...this.nodes.keys()];
    const leader = this.leader();
    switch (kind) {
      case 'crash':
      case 'crashLeader': {
        const victim = kind === 'crashLeader' && leader !== null ? leader : this.nodes.get(this.random.pick(ids));
        if (victim === undefined) return;
        this.crash(victim);
        this.healLater(() => this.restart(victim));
        return;
      }
      case 'partition': {
        const shuffled = this.random.shuffle([...ids]);
        const cut = this.random.int(1, shuffled.length - 1);
        const groups = [shuffled.slice(0, cut), shuffled.slice(cut)];
        this.log(`FAULT partition ${groups.map((g) => g.join(',')).join(' | ')}`);
        this.network.partition(groups);
        this.healLater(() => this.network.healAll());
        return;
      }
      case 'isolateLeader': {
        if (leader === null) return;
        this.log(`FAULT isolate leader ${leader.id}`);
        this.network.isolate(leader.id, ids);
        this.healLater(() => this.network.healAll());
        return;
      }
      case 'oneWay': {
        const from = leader !== null && this.random.chance(0.5) ? leader.id : this.random.pick(ids);
        const others = ids.filter((id) => id !== from);
        const inbound = this.random.chance(0.5);
        this.log(`FAULT one-way ${inbound ? 'inbound to' : 'outbound from'} ${from}`);
        for (const other of others) {
          if (inbound) this.network.cut(other, from);
          else this.network.cut(from, other);
        }
        this.healLater(() => this.network.healAll());
        return;
      }
      case 'bridge': {
        if (ids.length < 3) return;
        const shuffled = this.random.shuffle([...ids]);
        const bridge = shuffled[0] as NodeId;
        const rest = shuffled.slice(1);
        const half = Math.ceil(rest.length / 2);
        this.log(`FAULT bridge ${bridge} between ${rest.slice(0, half).join(',')} | ${rest.slice(half).join(',')}`);
        this.network.partition([rest.slice(0, half), rest.slice(half)]);
        this.healLater(() => this.network.healAll());
        return;
      }
      case 'pause': {
        const victim = leader !== null && this.random.chance(0.5) ? leader : this.nodes.get(this.random.pick(ids));
        if (victim === undefined || victim.replica === null) return;
        const until = this.queue.now + this.random.int(50, this.options.faultDurationMsMax);
        this.log(`FAULT pause ${victim.id} until ${until}ms`);
        victim.pausedUntil = Math.max(victim.pausedUntil, until);
        return;
      }
      case 'slow': {
        const victim = this.nodes.get(this.random.pick(ids));
        if (victim === undefined) return;
        const extraMs = this.random.int(10, 80);
        this.log(`FAULT slow ${victim.id} +${extraMs}ms`);
        victim.slowFactor = this.random.int(3, 20);
        this.network.slowNodes.set(victim.id, extraMs);
        this.healLater(() => {
          victim.slowFactor = 1;
          this.network.slowNodes.delete(victim.id);
        });
        return;
      }
      case 'lossy': {
        const previous = this.network.faults;
        this.log('FAULT lossy network');
        this.network.faults = {
          ...previous,
          lossProbability: this.random.next() * 0.3,
          duplicateProbability: this.random.next() * 0.2,
          delaySpikeProbability: this.random.next() * 0.2,
          delaySpikeMsMax: 300,
        };
        this.healLater(() => { this.network.faults = this.options.network; });
        return;
      }
      case 'membership':
        this.changeMembership(leader);
        return;
      case 'crashNewLeader':
        return; // injected on election, see maybeCrashNewLeader
      case 'transfer': {
        if (leader?.replica === null || leader === null) return;
        const voters = leader.replica.core.membership.voters.filter((id) => id !== leader.id);
        if (voters.length === 0) return;
        const target = this.random.pick(voters);
        this.log(`ADMIN transfer leadership ${leader.id} -> ${target}`);
        leader.replica.transferLeadership(target);
        return;
      }
    }
  }

  /**
   * Harsher than production on purpose: cut a leader off at the instant of its election (its
   * first appends, already in flight, are lost or only partly delivered), then kill it within a
   * few ticks. Leaders of successive terms then hold entries no one else has: the setting of
   * Raft's Figure 8.
   */
  private maybeCrashNewLeader(node: SimNode): void {
    if (this.healed || !this.options.faults.includes('crashNewLeader')) return;
    if (!this.random.chance(this.options.crashNewLeaderProbability)) return;
    this.faultCounts['crashNewLeader'] = (this.faultCounts['crashNewLeader'] ?? 0) + 1;
    this.log(`FAULT cut off and kill new leader ${node.id}`);
    if (this.random.chance(0.5)) this.network.isolate(node.id, [...this.nodes.keys()]);
    this.queue.after(this.random.int(0, 3 * this.options.tickMs), () => {
      if (this.healed) return;
      this.crash(node);
      this.healLater(() => {
        this.network.healNode(node.id);
        this.restart(node);
      });
    });
  }

  private changeMembership(leader: SimNode | null): void {
    const replica = leader?.replica;
    if (leader === null || replica === null || replica === undefined) return;
    const membership = replica.core.membership;
    const members = new Set([...membership.voters, ...membership.learners]);
    const outsiders = [...this.nodes.keys()].filter((id) => !members.has(id));
    const caughtUp = membership.learners.filter((id) => {
      const progress = replica.core.progressOf(id);
      return progress !== undefined && progress.match + 4 >= replica.core.lastIndex;
    });
    let change: Parameters<Replica<ApplyResult>['proposeMembershipChange']>[0] | null = null;
    if (outsiders.length > 0 && this.random.chance(0.5)) change = { type: 'addLearner', node: this.random.pick(outsiders) };
    else if (caughtUp.length > 0) change = { type: 'promoteLearner', node: this.random.pick(caughtUp) };
    else if (membership.voters.length > this.options.voters || membership.learners.length > 0) {
      const removable = [...membership.voters, ...membership.learners].filter((id) => id !== leader.id);
      if (removable.length > 0 && membership.voters.length > 3) change = { type: 'removeNode', node: this.random.pick(removable) };
      else if (membership.learners.length > 0) change = { type: 'removeNode', node: this.random.pick(membership.learners) };
    }
    if (change === null) return;
    const result = replica.proposeMembershipChange(change, () => undefined);
    this.log(`ADMIN ${change.type} ${change.node}: ${result.ok ? `proposed at ${result.index}` : result.reason}`);
  }

  private healEverything(): void {
    this.healed = true;
    this.log('HEAL: network, pauses, slow nodes; restart crashed nodes');
    this.network.healAll();
    this.network.faults = CALM_NETWORK;
    this.network.slowNodes.clear();
    for (const node of this.nodes.values()) {
      node.slowFactor = 1;
      if (node.replica === null) this.restart(node);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Running and checking.

  private afterEvent(): void {
    this.events++;
    for (const node of this.nodes.values()) {
      const core = node.replica?.core;
      if (core === undefined) continue;
      if (core.role === 'leader' && core.term > this.maxTerm) {
        this.maxTerm = core.term;
        this.elections++;
        this.maybeCrashNewLeader(node);
      }
      core.checkInvariants();
      this.checker.observe(core);
    }
    if (this.events % 64 === 0) this.checkLogMatching();
  }

  private checkLogMatching(): void {
    const cores = this.running().map((node) => node.replica?.core).filter((core): core is RaftCore => core !== undefined);
    this.checker.checkLogMatching(cores);
  }

  private runUntil(time: number, stopWhen: () => boolean = () => false): boolean {
    for (;;) {
      try {
        if (!this.queue.runNext(time)) break;
        this.afterEvent();
      } catch (error) {
        // A failed assertion stops a real node loudly; in the simulator it fails the seed.
        if (!(error instanceof AssertionError)) throw error;
        this.checker.recordAssertion(error);
      }
      if (!this.checker.ok) return false;
      if (stopWhen()) return true;
    }
    this.queue.advanceTo(time);
    return stopWhen();
  }

  /** Whether the healed cluster has converged: one leader, everything applied, nothing pending. */
  private converged(): { ok: boolean; detail: string } {
    const leader = this.leader();
    if (leader?.replica === null || leader === null) return { ok: false, detail: 'no leader' };
    const core = leader.replica.core;
    if (core.termAt(core.commitIndex) !== core.term) return { ok: false, detail: `leader ${leader.id} has not committed in term ${core.term}` };
    const members = [...core.membership.voters, ...core.membership.learners];
    const digest = leader.machine.digest();
    for (const id of members) {
      const node = this.nodes.get(id);
      const replica = node?.replica;
      if (node === undefined || replica === null || replica === undefined) return { ok: false, detail: `${id} is down` };
      if (replica.appliedIndex !== core.commitIndex) {
        return { ok: false, detail: `${id} applied ${replica.appliedIndex} of ${core.commitIndex}` };
      }
      if (node.machine.digest() !== digest) return { ok: false, detail: `${id} state differs from the leader's` };
    }
    // A node removed from the cluster never learns the fate of its old proposals (its callers
    // time out as indeterminate); every member must know them all.
    for (const id of members) {
      const pending = this.nodes.get(id)?.replica?.pendingProposals ?? 0;
      if (pending > 0) return { ok: false, detail: `${id} has ${pending} proposals without an outcome` };
    }
    if (this.openOperations > 0) return { ok: false, detail: `${this.openOperations} client operations open` };
    return { ok: true, detail: 'converged' };
  }

  run(): SimResult {
    const options = this.options;
    this.log(`seed ${options.seed} options ${JSON.stringify(options)}`);
    for (let process = 0; process < options.clients; process++) this.startClient(process);
    this.scheduleFaults();
    this.runUntil(options.faultPhaseMs);

    let liveness: SimResult['liveness'] = { ok: false, convergedAfterMs: null, detail: 'not reached' };
    if (this.checker.ok) {
      this.healEverything();
      const healedAt = this.queue.now;
      // Clients keep going for a while after the heal, then stop so the cluster can go quiet.
      const clientsStopAt = healedAt + Math.floor(options.healPhaseMs / 4);
      this.queue.at(clientsStopAt, () => { this.clientsStopped = true; });
      const deadline = healedAt + options.healPhaseMs;
      const converged = this.runUntil(deadline, () => this.clientsStopped && this.converged().ok);
      const state = this.converged();
      liveness = converged
        ? { ok: true, convergedAfterMs: this.queue.now - healedAt, detail: 'converged' }
        : { ok: false, convergedAfterMs: null, detail: `not converged ${options.healPhaseMs}ms after healing: ${state.detail}` };
      const leader = this.leader()?.replica?.core;
      if (converged && leader !== undefined) {
        this.checkLogMatching();
        for (const id of [...leader.membership.voters, ...leader.membership.learners]) {
          const core = this.nodes.get(id)?.replica?.core;
          if (core !== undefined) this.checker.checkCommittedPresent(core);
        }
      }
    }

    const linearizability = checkLinearizability(this.history, { stepLimit: 5_000_000 });
    const verdict = linearizability.verdict;
    const counts = { ok: 0, fail: 0, info: 0 };
    for (const event of this.history) if (event.type !== 'invoke') counts[event.type]++;
    const ok = this.checker.ok && liveness.ok && verdict === 'linearizable';
    return {
      seed: options.seed,
      ok,
      violations: this.checker.violations,
      linearizable: verdict,
      linearizabilityDetail: linearizability.ok ? '' : linearizability.explanation,
      liveness,
      stats: {
        operations: counts.ok + counts.fail + counts.info,
        ok: counts.ok,
        failed: counts.fail,
        indeterminate: counts.info,
        elections: this.elections,
        maxTerm: this.maxTerm,
        committed: this.checker.maxCommitted,
        faults: this.faultCounts,
        messages: this.network.sent,
        snapshotsInstalled: this.snapshotsInstalled,
        events: this.events,
      },
      history: this.history,
    };
  }
}
