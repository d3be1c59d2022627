/**
 * An open-loop writer: one write every 1/rate seconds whether or not earlier ones answered, each
 * sent to the node believed to be leader with a short timeout. A failure (connection error,
 * timeout, 5xx such as NO_LEADER / NOT_LEADER) starts leader discovery, one at a time, polling
 * every running node until one says it leads.
 */
import { Latency, sleep, type Pools } from './http.ts';
import { discoverLeader, type BenchSystem } from './systems/system.ts';

interface OkWaiter {
  readonly after: number;
  readonly notNode: string;
  readonly resolve: (at: number | null) => void;
}

export class OpenLoopWriter {
  sent = 0;
  ok = 0;
  failed = 0;
  readonly latency = new Latency();
  /** When discovery found which leader (performance.now() ms). */
  readonly leaderHistory: { at: number; id: string }[] = [];
  private leader: { id: string; url: string } | null = null;
  private discovering: Promise<void> | null = null;
  private stopped = false;
  private inflight = 0;
  private loop: Promise<void> | null = null;
  private waiters: OkWaiter[] = [];
  private seq = 0;

  constructor(
    private readonly system: BenchSystem,
    private readonly pools: Pools,
    private readonly options: { rate: number; timeoutMs: number },
  ) {}

  get currentLeader(): string | null {
    return this.leader?.id ?? null;
  }

  async start(): Promise<void> {
    await this.rediscover(null);
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    const period = 1000 / this.options.rate;
    let next = performance.now();
    while (!this.stopped) {
      const now = performance.now();
      if (next > now) await sleep(next - now);
      if (this.stopped) return;
      // Behind schedule (the generator itself was paused): send what is due, but never more
      // than one second's worth at once.
      const due = Math.min(Math.floor((performance.now() - next) / period) + 1, Math.max(1, this.options.rate));
      for (let i = 0; i < due; i++) this.fire();
      next += due * period;
      if (performance.now() - next > 1000) next = performance.now();
    }
  }

  private fire(): void {
    const seq = this.seq++;
    this.sent++;
    const target = this.leader;
    if (target === null) {
      this.failed++;
      void this.rediscover(null);
      return;
    }
    this.inflight++;
    const t0 = performance.now();
    this.pools.send(this.system.write(target.url, seq, this.options.timeoutMs), this.options.timeoutMs).then(
      (res) => {
        const verdict = this.system.classify(res.status);
        if (verdict === 'ok') this.succeeded(t0, target.id);
        else {
          this.failed++;
          if (verdict === 'rediscover') void this.rediscover(target.id);
        }
      },
      () => {
        this.failed++;
        void this.rediscover(target.id);
      },
    ).finally(() => {
      this.inflight--;
    });
  }

  private succeeded(sentAt: number, node: string): void {
    const at = performance.now();
    this.ok++;
    this.latency.recordMs(at - sentAt);
    if (this.waiters.length === 0) return;
    const still: OkWaiter[] = [];
    for (const waiter of this.waiters) {
      if (sentAt >= waiter.after && node !== waiter.notNode) waiter.resolve(at);
      else still.push(waiter);
    }
    this.waiters = still;
  }

  /** Resolves with the time of the first acknowledged write sent at or after `after` to a node other than `notNode`. */
  firstOkAfter(after: number, notNode: string, timeoutMs: number): Promise<number | null> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((waiter) => waiter.resolve !== done);
        resolve(null);
      }, timeoutMs);
      const done = (at: number | null): void => {
        clearTimeout(timer);
        resolve(at);
      };
      this.waiters.push({ after, notNode, resolve: done });
    });
  }

  /** When discovery first found a leader other than `notNode` after `after`, or null. */
  leaderKnownAfter(after: number, notNode: string): { at: number; id: string } | null {
    return this.leaderHistory.find((entry) => entry.at >= after && entry.id !== notNode) ?? null;
  }

  private rediscover(failed: string | null): Promise<void> {
    if (this.discovering !== null) return this.discovering;
    // Another write already moved on from the node that failed.
    if (failed !== null && this.leader !== null && this.leader.id !== failed) return Promise.resolve();
    this.discovering = (async () => {
      const deadline = performance.now() + 60_000;
      while (!this.stopped && performance.now() < deadline) {
        const found = await discoverLeader(this.system, 300).catch(() => null);
        // A node that was just killed may still look like the leader in no view (it does not
        // answer), so any answer is from a live node.
        if (found !== null) {
          if (this.leader?.id !== found.id) this.leaderHistory.push({ at: performance.now(), id: found.id });
          this.leader = { id: found.id, url: found.url };
          return;
        }
        await sleep(20);
      }
    })().finally(() => {
      this.discovering = null;
    });
    return this.discovering;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    const deadline = performance.now() + this.options.timeoutMs + 2_000;
    while (this.inflight > 0 && performance.now() < deadline) await sleep(20);
    for (const waiter of this.waiters) waiter.resolve(null);
    this.waiters = [];
  }
}
