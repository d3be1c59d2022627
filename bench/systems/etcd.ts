/**
 * etcd under test: a 3-member cluster of real `etcd` processes on loopback, driven through its
 * HTTP/JSON gRPC gateway. Ports are taken below the kernel's ephemeral range (bench/ports.ts),
 * data lives in a temporary folder, and every process is stopped by its PID.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fetchJson, until, type Pools, type Req } from '../http.ts';
import { lowPort } from '../ports.ts';
import { metricSum, parsePrometheus } from '../stats.ts';
import type { Workload } from '../types.ts';
import { HOT_KEYS, liveSystems, VALUE, type BenchSystem, type CellContext, type Counters, type NodeView, scrapeMetrics } from './system.ts';

const b64 = (text: string): string => Buffer.from(text).toString('base64');
const VALUE_B64 = b64(VALUE);

/** The etcd binary: an explicit path, or the name looked up on PATH; null when absent. */
export function findEtcd(bin: string): string | null {
  const candidates = bin.includes('/') ? [bin] : (process.env['PATH'] ?? '').split(delimiter).filter((dir) => dir !== '').map((dir) => join(dir, bin));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  return null;
}

export function etcdVersion(bin: string): string | null {
  try {
    const out = execFileSync(bin, ['--version'], { encoding: 'utf8', timeout: 10_000 });
    return /etcd Version:\s*(\S+)/.exec(out)?.[1] ?? out.split('\n')[0] ?? null;
  } catch {
    return null;
  }
}

interface Member {
  readonly id: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  process: ChildProcess | null;
  output: string[];
}

export class EtcdSystem implements BenchSystem {
  readonly name = 'etcd' as const;
  readonly supports: readonly Workload[] = ['write', 'update-hot', 'read-linearizable', 'read-stale', 'read-stale-one', 'mixed', 'batch'];
  readonly dir = mkdtempSync(join(tmpdir(), 'understudy-bench-etcd-'));
  private readonly members = new Map<string, Member>();
  /** etcd member id (uint64 as text) -> our name. */
  private readonly memberIds = new Map<string, string>();

  private constructor(private readonly bin: string) {}

  static async start(bin: string, size = 3): Promise<EtcdSystem> {
    const system = new EtcdSystem(bin);
    liveSystems.add(system);
    try {
      for (let i = 1; i <= size; i++) {
        const id = `e${i}`;
        system.members.set(id, { id, clientUrl: `http://127.0.0.1:${await lowPort()}`, peerUrl: `http://127.0.0.1:${await lowPort()}`, process: null, output: [] });
      }
      for (const id of system.members.keys()) system.start(id);
      await until('etcd members to answer', async () => {
        for (const id of system.members.keys()) if ((await system.view(id, 1_000)) === null) return false;
        return true;
      }, 30_000, 100);
    } catch (error) {
      system.stop();
      throw new Error(`etcd did not start: ${String(error)}\n${system.logs()}`);
    }
    return system;
  }

  ids(): string[] {
    return [...this.members.keys()];
  }

  url(id: string): string {
    const member = this.members.get(id);
    if (member === undefined) throw new Error(`no etcd member ${id}`);
    return member.clientUrl;
  }

  pid(id: string): number | null {
    return this.members.get(id)?.process?.pid ?? null;
  }

  isRunning(id: string): boolean {
    const child = this.members.get(id)?.process;
    return child !== null && child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  start(id: string): void {
    const member = this.members.get(id);
    if (member === undefined) throw new Error(`no etcd member ${id}`);
    if (this.isRunning(id)) throw new Error(`${id} is running`);
    const cluster = [...this.members.values()].map((m) => `${m.id}=${m.peerUrl}`).join(',');
    // Defaults kept on purpose (heartbeat 100 ms, election 1000 ms); they are spelled out for the record.
    const args = [
      '--name', id, '--data-dir', join(this.dir, id),
      '--listen-client-urls', member.clientUrl, '--advertise-client-urls', member.clientUrl,
      '--listen-peer-urls', member.peerUrl, '--initial-advertise-peer-urls', member.peerUrl,
      '--initial-cluster', cluster, '--initial-cluster-token', `bench-${process.pid}`, '--initial-cluster-state', 'new',
      '--heartbeat-interval', '100', '--election-timeout', '1000',
      '--logger', 'zap', '--log-outputs', 'stderr', '--log-level', 'warn',
    ];
    const child = spawn(this.bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    member.process = child;
    const keep = (chunk: Buffer): void => {
      member.output.push(chunk.toString());
      if (member.output.length > 200) member.output.splice(0, member.output.length - 200);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.on('error', (error) => keep(Buffer.from(`spawn error: ${error.message}\n`)));
  }

  async kill(id: string): Promise<void> {
    const member = this.members.get(id);
    const child = member?.process;
    if (member === undefined || child === null || child === undefined || child.pid === undefined) return;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      process.kill(child.pid, 'SIGKILL');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5_000))]);
    }
    member.process = null;
  }

  stop(): void {
    liveSystems.delete(this);
    for (const member of this.members.values()) {
      const child = member.process;
      if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      member.process = null;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  logs(): string {
    return [...this.members.values()].map((m) => `--- ${m.id}\n${m.output.join('').split('\n').slice(-30).join('\n')}`).join('\n');
  }

  async view(id: string, timeoutMs = 2_000): Promise<NodeView | null> {
    const result = await fetchJson('POST', `${this.url(id)}/v3/maintenance/status`, {}, timeoutMs);
    if (result.status !== 200) return null;
    const b = result.body;
    const self = String(b.header?.member_id ?? '');
    if (self !== '') this.memberIds.set(self, id);
    const leader = String(b.leader ?? '0');
    const leaderId = leader === '0' ? null : this.memberIds.get(leader) ?? `member-${leader}`;
    return {
      id, role: leader === self ? 'leader' : 'follower', term: Number(b.raftTerm ?? 0), leaderId,
      applied: Number(b.raftAppliedIndex ?? 0), commit: Number(b.raftIndex ?? 0), snapshotIndex: null,
    };
  }

  async seed(pools: Pools, leaderUrl: string): Promise<void> {
    for (let i = 0; i < HOT_KEYS; i++) {
      const res = await pools.send({ origin: leaderUrl, method: 'POST', path: '/v3/kv/put', body: JSON.stringify({ key: b64(`hot/h${i}`), value: VALUE_B64 }) });
      if (res.status !== 200) throw new Error(`etcd seeding failed: ${res.status} ${res.text}`);
    }
  }

  async sessionToken(): Promise<string> {
    return '0';
  }

  request(workload: Workload, client: number, n: number, ctx: CellContext): Req {
    const kind = workload === 'mixed' ? (n % 2 === 0 ? 'write' : 'read-linearizable') : workload;
    const hot = b64(`hot/h${n % HOT_KEYS}`);
    const one = ctx.followerUrls[0] ?? ctx.leaderUrl;
    const put = (key: string): string => `{"key":"${b64(key)}","value":"${VALUE_B64}"}`;
    switch (kind) {
      case 'write': return { origin: ctx.leaderUrl, method: 'POST', path: '/v3/kv/put', body: put(`bench/${ctx.prefix}-c${client}-${n}`) };
      case 'update-hot': return { origin: ctx.leaderUrl, method: 'POST', path: '/v3/kv/put', body: `{"key":"${hot}","value":"${VALUE_B64}"}` };
      case 'read-linearizable': return { origin: ctx.leaderUrl, method: 'POST', path: '/v3/kv/range', body: `{"key":"${hot}","serializable":false}` };
      case 'read-stale': return { origin: ctx.allUrls[n % ctx.allUrls.length] ?? ctx.leaderUrl, method: 'POST', path: '/v3/kv/range', body: `{"key":"${hot}","serializable":true}` };
      case 'read-stale-one': return { origin: one, method: 'POST', path: '/v3/kv/range', body: `{"key":"${hot}","serializable":true}` };
      case 'batch': {
        const ops = Array.from({ length: 10 }, (_, i) => `{"request_put":${put(`batch/${ctx.prefix}-c${client}-${n}-${i}`)}}`);
        return { origin: ctx.leaderUrl, method: 'POST', path: '/v3/kv/txn', body: `{"success":[${ops.join(',')}]}` };
      }
    }
    throw new Error(`etcd has no counterpart of the ${kind} workload`);
  }

  metrics(id: string): Promise<string | null> {
    return scrapeMetrics(this.url(id));
  }

  async counters(id: string): Promise<Counters> {
    const text = await this.metrics(id);
    if (text === null) return { fsyncs: null, entries: null, entryFsyncs: null };
    const samples = parsePrometheus(text);
    const fsyncs = metricSum(samples, 'etcd_disk_wal_fsync_duration_seconds_count');
    return { fsyncs, entries: metricSum(samples, 'etcd_server_proposals_committed_total'), entryFsyncs: fsyncs };
  }

  write(origin: string, seq: number): Req {
    return { origin, method: 'POST', path: '/v3/kv/put', body: `{"key":"${b64(`openloop/w${seq}`)}","value":"${VALUE_B64}"}` };
  }

  classify(status: number): 'ok' | 'rediscover' | 'error' {
    // The gateway maps etcd's errors during an election (no leader, leader changed, timeouts)
    // to various statuses; anything but 200 makes the writer look for the leader again.
    return status === 200 ? 'ok' : 'rediscover';
  }
}
