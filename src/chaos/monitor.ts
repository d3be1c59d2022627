/**
 * Leader monitor: polls every node's own view (`GET /v1/cluster?local=true`) on its own loop, so
 * a paused or dead node never delays the others, and keeps every sample with its time on the
 * history clock (ms since the start of the run). The report derives detection and election times
 * from these samples (report.ts).
 */
import type { ChaosCluster, NodeView } from './cluster.ts';
import { sleep } from './cluster.ts';

export interface MonitorSample {
  /** ms since the start of the run (history clock). */
  readonly t: number;
  readonly node: string;
  /** null: no answer in time (dead, paused, or not serving). */
  readonly view: { readonly role: string; readonly term: number; readonly leaderId: string | null } | null;
}

export class LeaderMonitor {
  readonly samples: MonitorSample[] = [];
  private readonly latest = new Map<string, MonitorSample>();
  private running = false;
  private loops: Promise<void>[] = [];

  constructor(
    private readonly cluster: ChaosCluster,
    private readonly nowMs: () => number,
    private readonly intervalMs = 50,
    private readonly timeoutMs = 400,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loops = this.cluster.ids().map((id) => this.loop(id));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  private async loop(id: string): Promise<void> {
    while (this.running) {
      const started = this.nowMs();
      let view: NodeView | null = null;
      try {
        view = await this.cluster.view(id, this.timeoutMs);
      } catch {
        view = null;
      }
      const sample: MonitorSample = {
        t: this.nowMs(), node: id,
        view: view === null ? null : { role: view.role, term: view.term, leaderId: view.leaderId },
      };
      this.samples.push(sample);
      this.latest.set(id, sample);
      await sleep(this.intervalMs - (this.nowMs() - started));
    }
  }

  /**
   * The current leader as the freshest answers show it: among nodes that answered within the last
   * `freshMs`, the one reporting role leader with the highest term. Null if none.
   */
  leader(freshMs = 1_000): { id: string; term: number } | null {
    const now = this.nowMs();
    let best: { id: string; term: number } | null = null;
    for (const sample of this.latest.values()) {
      if (sample.view === null || now - sample.t > freshMs) continue;
      if (sample.view.role !== 'leader') continue;
      if (best === null || sample.view.term > best.term) best = { id: sample.node, term: sample.view.term };
    }
    return best;
  }

  /** Waits (bounded) for a leader to be visible. */
  async waitForLeader(timeoutMs: number): Promise<{ id: string; term: number } | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const leader = this.leader();
      if (leader !== null || Date.now() >= deadline) return leader;
      await sleep(25);
    }
  }
}
