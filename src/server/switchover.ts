/**
 * Planned switchover, shared by the CLI (`understudy switchover`, cli/admin_commands.ts) and the
 * HTTP API (`POST /v1/admin/switchover`, used by the dashboard): which voter to hand leadership
 * to, when to refuse, and how to wait until the new leader is known. The transfer itself is the
 * Raft leadership transfer (`POST /v1/admin/transfer`, `UnderstudyNode.transferLeadership`): the
 * leader stops accepting writes, brings the target up to date and tells it to campaign.
 *
 * Pure decisions plus one bounded polling loop; the callers bring the I/O.
 */

export interface SwitchoverMember {
  readonly id: string;
  readonly voter: boolean;
  readonly connected: boolean | null;
  readonly lagEntries: number | null;
}

/** The leader's view of the cluster (GET /v1/cluster): who leads and every member's progress. */
export interface SwitchoverView {
  readonly leaderId: string | null;
  readonly members: readonly SwitchoverMember[];
}

export interface SwitchoverOptions {
  /** The new leader; default the most caught-up voter whose link from the leader is up. */
  readonly to?: string | undefined;
  /** Refuse when the target is further behind than this many entries. */
  readonly maxLagEntries: number;
}

export const SWITCHOVER_DEFAULTS = { maxLagEntries: 1000, timeoutMs: 10_000 } as const;

/** A switchover that must not start; the message says why, for an operator. */
export class SwitchoverRefused extends Error {
  override readonly name = 'SwitchoverRefused';
  constructor(message: string, readonly noLeader = false) {
    super(message);
  }
}

/** Chooses and checks the target, or throws SwitchoverRefused. */
export function chooseSwitchoverTarget(view: SwitchoverView, options: SwitchoverOptions): SwitchoverMember {
  if (view.leaderId === null) throw new SwitchoverRefused('no leader is known; nothing to switch over (see `understudy status`)', true);
  const candidates = view.members.filter((m) => m.voter && m.id !== view.leaderId);
  const target = options.to === undefined
    ? candidates.filter((m) => m.connected !== false).sort((a, b) => (a.lagEntries ?? Infinity) - (b.lagEntries ?? Infinity))[0]
    : view.members.find((m) => m.id === options.to);
  if (target === undefined) throw new SwitchoverRefused(options.to === undefined ? 'no healthy voter to switch over to' : `unknown node '${options.to}'`);
  if (target.id === view.leaderId) throw new SwitchoverRefused(`${target.id} is already the leader`);
  if (!target.voter) throw new SwitchoverRefused(`${target.id} is not a voter (promote it first)`);
  if (target.connected === false) throw new SwitchoverRefused(`${target.id} is unreachable from the leader; refusing to switch over to it`);
  if (target.lagEntries === null || target.lagEntries > options.maxLagEntries) {
    throw new SwitchoverRefused(`${target.id} is ${target.lagEntries ?? 'an unknown number of'} entries behind (more than ${options.maxLagEntries}); refusing`);
  }
  return target;
}

/**
 * Polls `leaderOf()` until it names `target` (true) or `timeoutMs` passed (false). A failing
 * poll counts as "not yet".
 */
export async function waitForNewLeader(leaderOf: () => Promise<string | null> | string | null, target: string, timeoutMs: number, pollMs = 20): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const leader = await Promise.resolve().then(leaderOf).catch(() => null);
    if (leader === target) return true;
    if (performance.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}
