/**
 * The simulated network between nodes: per-link loss, delay (and so reordering), duplication,
 * symmetric and one-way partitions. Decisions come from the simulator's seeded generator, so a
 * seed replays the same deliveries.
 *
 * A link is directional: cut(a, b) stops messages from a to b only. A message is checked when it
 * is sent and again when it would be delivered (a partition that starts while it is in flight
 * drops it).
 */
import type { Prng } from '../shared/prng.ts';
import type { Message, NodeId } from '../consensus/types.ts';

export interface NetworkFaults {
  lossProbability: number;
  duplicateProbability: number;
  delayMsMin: number;
  delayMsMax: number;
  /** Occasional long delays produce heavy reordering. */
  delaySpikeProbability: number;
  delaySpikeMsMax: number;
}

export const CALM_NETWORK: NetworkFaults = {
  lossProbability: 0,
  duplicateProbability: 0,
  delayMsMin: 1,
  delayMsMax: 3,
  delaySpikeProbability: 0,
  delaySpikeMsMax: 0,
};

export class SimNetwork {
  faults: NetworkFaults;
  private readonly cutLinks = new Set<string>();
  /** Extra delay for messages from or to a slow node. */
  readonly slowNodes = new Map<NodeId, number>();
  sent = 0;
  delivered = 0;
  dropped = 0;

  constructor(
    private readonly random: Prng,
    private readonly schedule: (delay: number, run: () => void) => void,
    private readonly deliver: (message: Message) => void,
    faults: NetworkFaults,
  ) {
    this.faults = faults;
  }

  cut(from: NodeId, to: NodeId): void {
    this.cutLinks.add(`${from}>${to}`);
  }

  isolate(node: NodeId, others: readonly NodeId[]): void {
    for (const other of others) {
      if (other === node) continue;
      this.cut(node, other);
      this.cut(other, node);
    }
  }

  /** Splits the nodes into groups that cannot talk to each other. */
  partition(groups: readonly (readonly NodeId[])[]): void {
    for (const group of groups) {
      for (const other of groups) {
        if (other === group) continue;
        for (const a of group) for (const b of other) this.cut(a, b);
      }
    }
  }

  /** Restores every link from and to `node`. */
  healNode(node: NodeId): void {
    for (const link of [...this.cutLinks]) {
      const [from, to] = link.split('>');
      if (from === node || to === node) this.cutLinks.delete(link);
    }
  }

  healAll(): void {
    this.cutLinks.clear();
  }

  isCut(from: NodeId, to: NodeId): boolean {
    return this.cutLinks.has(`${from}>${to}`);
  }

  describeCuts(): string {
    return [...this.cutLinks].sort().join(' ');
  }

  send(message: Message): void {
    this.sent++;
    if (this.isCut(message.from, message.to) || this.random.chance(this.faults.lossProbability)) {
      this.dropped++;
      return;
    }
    const copies = this.random.chance(this.faults.duplicateProbability) ? 2 : 1;
    for (let copy = 0; copy < copies; copy++) {
      this.schedule(this.delayFor(message), () => {
        if (this.isCut(message.from, message.to)) {
          this.dropped++;
          return;
        }
        this.delivered++;
        this.deliver(message);
      });
    }
  }

  private delayFor(message: Message): number {
    const faults = this.faults;
    let delay = this.random.int(faults.delayMsMin, faults.delayMsMax);
    if (this.random.chance(faults.delaySpikeProbability)) delay += this.random.int(0, faults.delaySpikeMsMax);
    delay += (this.slowNodes.get(message.from) ?? 0) + (this.slowNodes.get(message.to) ?? 0);
    return delay;
  }
}
