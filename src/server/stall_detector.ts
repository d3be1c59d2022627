/**
 * Notices when this process's event loop was held (a long synchronous call, a GC pause, the
 * process being descheduled or SIGSTOPped): a timer that should fire every `intervalMs` measures
 * how late it fired. A stall longer than the election timeout costs the cluster its leader, so
 * operators see each one in the log and in `understudy_event_loop_stall_seconds`.
 *
 * Not here: any reaction. The node's own tick catch-up handles the consequences (node.ts onTimer).
 */
export interface StallDetectorOptions {
  readonly intervalMs: number;
  /** Lateness at or above this is reported as a stall. */
  readonly reportAtMs: number;
  readonly onStall: (stalledMs: number) => void;
  readonly now?: () => number;
}

export class StallDetector {
  private readonly timer: NodeJS.Timeout;
  private last: number;
  private worstMs = 0;

  constructor(options: StallDetectorOptions) {
    const now = options.now ?? (() => performance.now());
    this.last = now();
    this.timer = setInterval(() => {
      const at = now();
      const lateMs = at - this.last - options.intervalMs;
      this.last = at;
      if (lateMs > this.worstMs) this.worstMs = lateMs;
      if (lateMs >= options.reportAtMs) options.onStall(lateMs);
    }, options.intervalMs);
    this.timer.unref();
  }

  /** The worst lateness seen since the previous call (for a per-scrape gauge). */
  takeWorstMs(): number {
    const worst = this.worstMs;
    this.worstMs = 0;
    return Math.max(0, worst);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
