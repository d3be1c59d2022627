import { Prng } from '../../src/shared/prng.ts';
import { TestCluster } from './harness.ts';

const ids = ['n1', 'n2', 'n3', 'n4', 'n5'];
const seeds = Number(process.argv[2] ?? 200);
const cfgName = process.argv[3] ?? 'default';
const first = Number(process.argv[4] ?? 1);
let failures = 0;
const stats = { commit: 0, term: 0, snaps: 0, reads: 0 };
for (let seed = first; seed < first + seeds; seed++) {
  const r = new Prng(seed, 'fuzz');
  const base = { entriesKeptAfterCompaction: 1, inflightMessagesMax: 3, entriesPerMessageMax: 2, snapshotChunkTimeoutTicks: 5 };
  const config = cfgName === 'paper' ? { ...base, preVote: false, checkQuorum: false }
    : cfgName === 'lease' ? { ...base, leaseReads: true } : base;
  const c = new TestCluster({ voters: ids.slice(0, 3), spares: ids.slice(3), seed, config });
  let op = '';
  const readFloor = new Map<string, number>();
  try {
    for (let round = 0; round < 400; round++) {
      // faults and client actions
      const roll = r.next();
      const id = r.pick(ids);
      const live = c.node(id).core !== null;
      if (roll < 0.03) { op = `crash/restart ${id}`; if (live) c.crash(id); else c.restart(id); }
      else if (roll < 0.06) { op = `isolate ${id}`; c.isolate(id); }
      else if (roll < 0.10) { op = 'heal'; c.heal(); for (const x of ids) if (c.node(x).core === null && r.chance(0.5)) c.restart(x); }
      else if (roll < 0.13) { op = `snap ${id}`; if (live && c.core(id).appliedIndex > c.core(id).snapshotMeta.index) c.snapshot(id); }
      else if (roll < 0.14) { op = `transfer ${id}`; if (live) c.core(id).transferLeadership(r.pick(ids)); }
      else if (roll < 0.17) {
        op = `member ${id}`;
        const leader = c.leader();
        if (leader !== null) c.proposeChange(leader, { type: r.pick(['addLearner', 'promoteLearner', 'removeNode'] as const), node: r.pick(ids) });
      }
      else if (roll < 0.20) { op = `begin ${id}`; if (live && c.node(id).pending === null) c.beginReady(id); }
      if (r.chance(0.5)) { const l = c.leader() ?? r.pick(ids); if (c.node(l).core !== null) c.propose(l, `v${round}`); }
      if (r.chance(0.2)) { op = 'read'; const x = r.pick(ids); if (c.node(x).core !== null) { readFloor.set(`r${round}`, c.checker.maxCommitted); c.read(x, `r${round}`, { lease: r.chance(0.5) }); } }
      // time
      op = 'tick';
      if (cfgName === 'lease') c.tickAll(); else for (const x of c.live()) if (r.chance(0.7)) c.tick(x);
      // network and disks, partially
      for (let k = 0; k < 3; k++) {
        op = 'process';
        for (const x of c.live()) if (r.chance(0.8)) c.process(x);
        op = 'deliver';
        if (r.chance(0.2)) r.shuffle(c.queue);
        if (r.chance(0.1)) c.queue.push(...c.queue.filter(() => r.chance(0.1))); // duplicates
        c.deliver({ drop: () => r.chance(0.05) });
      }
      for (const x of ids) for (const rs of c.node(x).readStates) {
        const floor = readFloor.get(rs.requestId);
        if (floor !== undefined && rs.index < floor) throw new Error(`stale read ${rs.requestId} on ${x}: index ${rs.index} < ${floor} committed before it started`);
      }
      if (!c.checker.ok) throw new Error(`violation ${JSON.stringify(c.checker.violations[0])}`);
    }
    stats.commit += c.checker.maxCommitted; stats.term += Math.max(...c.live().map((x) => c.core(x).term), 0);
    stats.snaps += c.ids().filter((x) => c.node(x).readies.some((rd) => rd.snapshot !== null)).length;
    stats.reads += c.ids().reduce((n, x) => n + c.node(x).readStates.length, 0);
  } catch (error) {
    failures++;
    console.log(`seed ${seed} after op '${op}': ${(error as Error).message}`);
    if (process.env['STACK']) console.log((error as Error).stack);
  }
}
console.log(`${cfgName}: ${failures} failures of ${seeds}`, JSON.stringify(stats));
