/**
 * The client's view of the cluster: which nodes exist (learned from GET /v1/cluster), which one
 * leads, and at which term. Leadership is fenced by term: a view from a lower term than the
 * highest seen never changes the leader, so a stale node (an old leader that comes back, a
 * follower that has not heard of the election) cannot send the client back to a deposed leader.
 *
 * Refreshes are single-flight: concurrent callers share one round of GET /v1/cluster?local=true
 * to every known node, which ends as soon as a usable leader is known (or every node answered).
 */
import { normaliseSeed } from './options.ts';
import type { Endpoint } from './endpoint.ts';
import type { ClusterView } from './types.ts';

export interface LeaderChange {
  readonly leaderId: string;
  readonly previousLeaderId: string | null;
  readonly term: number;
}

export interface TopologyPorts {
  createEndpoint(url: string): Endpoint;
  fetchView(endpoint: Endpoint): Promise<ClusterView>;
  onLeaderChanged(change: LeaderChange): void;
}

export class Topology {
  /** Every endpoint by normalised URL (seeds and members). */
  private readonly endpoints = new Map<string, Endpoint>();
  /**
   * Node id -> the client URL calls go to: the URL on which the node itself answered (verified),
   * else the one the cluster's member list advertises.
   */
  private readonly canonical = new Map<string, string>();
  private readonly verified = new Set<string>();
  private readonly seeds: readonly string[];
  private refreshing: Promise<void> | null = null;
  private lastLeaderId: string | null = null;
  term = 0;
  leaderId: string | null = null;
  refreshes = 0;

  constructor(seeds: readonly string[], private readonly ports: TopologyPorts) {
    this.seeds = seeds;
    for (const seed of seeds) this.endpoint(seed);
  }

  endpoint(url: string): Endpoint {
    const key = normaliseSeed(url);
    let endpoint = this.endpoints.get(key);
    if (endpoint === undefined) {
      endpoint = this.ports.createEndpoint(key);
      this.endpoints.set(key, endpoint);
    }
    return endpoint;
  }

  all(): Endpoint[] {
    return [...this.endpoints.values()];
  }

  /** Endpoints calls may be routed to: one per known node; before discovery, the seeds. */
  routable(): Endpoint[] {
    if (this.canonical.size === 0) return this.seeds.map((seed) => this.endpoint(seed));
    return [...this.canonical.values()].map((url) => this.endpoint(url));
  }

  /** The endpoint of a node id or client URL. */
  find(node: string): Endpoint | null {
    const url = this.canonical.get(node);
    if (url !== undefined) return this.endpoint(url);
    try {
      return this.endpoints.get(normaliseSeed(node)) ?? null;
    } catch {
      return null;
    }
  }

  leaderEndpoint(): Endpoint | null {
    if (this.leaderId === null) return null;
    const url = this.canonical.get(this.leaderId);
    return url === undefined ? null : this.endpoint(url);
  }

  hasUsableLeader(): boolean {
    return this.leaderEndpoint()?.usable() ?? false;
  }

  /**
   * `self`: the node answered on this URL with its own id, so the URL works (this wins over an
   * advertised one, which may not be reachable from here: NAT, containers). `advertised`: a
   * member list or leader hint names the URL.
   */
  private assign(endpoint: Endpoint, id: string, source: 'self' | 'advertised'): void {
    if (source === 'self') {
      endpoint.id = id;
      this.canonical.set(id, endpoint.url);
      this.verified.add(id);
    } else if (!this.verified.has(id)) {
      endpoint.id ??= id;
      this.canonical.set(id, endpoint.url);
    }
  }

  /** Learns members and (term-fenced) leadership from one node's view. */
  observe(view: ClusterView, from: Endpoint): void {
    if (typeof view.id === 'string') this.assign(from, view.id, 'self');
    for (const member of Array.isArray(view.members) ? view.members : []) {
      if (typeof member.id === 'string' && typeof member.client === 'string' && member.client !== '') {
        this.assign(this.endpoint(member.client), member.id, 'advertised');
      }
    }
    if (typeof view.leaderId === 'string' && typeof view.leaderClientUrl === 'string' && !this.canonical.has(view.leaderId)) {
      this.assign(this.endpoint(view.leaderClientUrl), view.leaderId, 'advertised');
    }
    if (typeof view.term !== 'number') return;
    if (view.term > this.term) {
      this.term = view.term;
      this.setLeader(typeof view.leaderId === 'string' ? view.leaderId : null);
    } else if (view.term === this.term && typeof view.leaderId === 'string' && this.leaderId === null) {
      this.setLeader(view.leaderId);
    }
  }

  /** A hint that `endpoint` is not (or no longer) the leader: forget the leader until a view names one. */
  leaderSuspect(endpoint: Endpoint): void {
    if (endpoint.id !== null && endpoint.id === this.leaderId) this.leaderId = null;
  }

  private setLeader(leaderId: string | null): void {
    if (leaderId === this.leaderId) return;
    this.leaderId = leaderId;
    if (leaderId !== null && leaderId !== this.lastLeaderId) {
      const previousLeaderId = this.lastLeaderId;
      this.lastLeaderId = leaderId;
      this.ports.onLeaderChanged({ leaderId, previousLeaderId, term: this.term });
    }
  }

  /** The refresh in progress, if any. */
  get pending(): Promise<void> | null {
    return this.refreshing;
  }

  refresh(): Promise<void> {
    if (this.refreshing !== null) return this.refreshing;
    this.refreshes++;
    const round = this.refreshRound().finally(() => {
      this.refreshing = null;
    });
    this.refreshing = round;
    return round;
  }

  private refreshRound(): Promise<void> {
    // Every node we route to, plus seeds that are not (yet) known as a member under that URL.
    const targets = [...new Set([...this.routable(), ...this.seeds.map((seed) => this.endpoint(seed))])];
    return new Promise((resolve) => {
      let pending = targets.length;
      if (pending === 0) resolve();
      for (const endpoint of targets) {
        this.ports.fetchView(endpoint)
          .then((view) => {
            this.observe(view, endpoint);
            if (this.hasUsableLeader()) resolve();
          })
          .catch(() => undefined)
          .finally(() => {
            pending--;
            if (pending === 0) resolve();
          });
      }
    });
  }
}
