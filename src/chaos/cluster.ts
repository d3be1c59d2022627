/**
 * A local cluster of real `understudy start` processes for the chaos suite, with every peer link
 * (and every node-to-node HTTP link) going through a fault-injecting proxy (proxy.ts).
 *
 * Node j's config file lists the other members with `peer` = the proxy for raft j→i and
 * `client` = the proxy for http j→i, so cutting those proxies cuts j→i only. Clients of the
 * workload talk to each node's real client port (they stand outside the partitions).
 *
 * Process control is by PID only: kill -9 (SIGKILL), pause (SIGSTOP), resume (SIGCONT), restart
 * with the same config and data directory. `stopAll()` kills every child that may still run and
 * closes the proxies; the runner calls it in `finally`, and on SIGINT/SIGTERM/exit.
 *
 * Every wait is bounded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HttpClient } from './http.ts';
import { ProxyMesh, type LinkKind } from './proxy.ts';

const BIN = fileURLToPath(new URL('../../bin/understudy.js', import.meta.url));

export type NodeState = 'running' | 'paused' | 'killed';

export interface ChaosNode {
  readonly id: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly clientUrl: string;
  readonly configFile: string;
  readonly logFile: string;
  child: ChildProcess | null;
  state: NodeState;
  starts: number;
  /** Exits this harness did not cause (a crash is a finding), with the last lines of the node's log. */
  readonly unexpectedExits: { readonly at: string; readonly code: number | null; readonly signal: string | null; readonly lastLines: string }[];
}

export interface NodeView {
  readonly id: string;
  readonly role: string;
  readonly term: number;
  readonly leaderId: string | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
}

export interface ChaosClusterOptions {
  readonly nodes: number;
  /** Node logs go here (one file per node, appended across restarts). */
  readonly logDir: string;
  /** Known planted bug to switch on in every node (test use only). */
  readonly plantedBug?: string | null;
  /** Extra config keys for every node (tickMs, electionTimeoutTicks, ...). */
  readonly config?: Record<string, unknown>;
  /** Called when a node exits without the harness having killed it. */
  readonly onUnexpectedExit?: (id: string, exit: { code: number | null; signal: string | null; lastLines: string }) => void;
}

const reserved = new Set<number>();

/** The kernel's ephemeral port range (outbound connections and port-0 listeners take ports from it). */
export function ephemeralRange(): [number, number] {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (low !== undefined && high !== undefined && Number.isInteger(low) && Number.isInteger(high)) return [low, high];
  } catch {
    // not Linux
  }
  return [32_768, 60_999];
}

export async function canListen(port: number): Promise<boolean> {
  const server = createServer();
  const ok = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => resolve(true));
  });
  if (ok) await new Promise<void>((resolve) => server.close(() => resolve()));
  return ok;
}

/**
 * A free port for a node, outside the ephemeral range. Nodes are killed and restarted on the same
 * ports: a port from the ephemeral range could meanwhile be taken by any outbound connection's
 * source port or by a port-0 listener (our own proxies, other tests) and the restart would fail
 * with EADDRINUSE. Below the ephemeral range only an explicit bind can take it.
 */
export async function freePort(): Promise<number> {
  const [low] = ephemeralRange();
  const min = 10_000;
  const max = Math.max(min + 1_000, low - 1);
  for (let attempt = 0; attempt < 500; attempt++) {
    const port = min + Math.floor(Math.random() * (max - min));
    if (reserved.has(port)) continue;
    if (!(await canListen(port))) continue;
    reserved.add(port);
    return port;
  }
  throw new Error('no free port found');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

export class ChaosCluster {
  readonly nodes = new Map<string, ChaosNode>();
  readonly dataDir: string;
  readonly proxies: ProxyMesh;
  private readonly options: ChaosClusterOptions;
  private readonly http = new HttpClient();
  private stopped = false;
  private readonly expectedExits = new WeakSet<ChildProcess>();

  private constructor(options: ChaosClusterOptions, dataDir: string, proxies: ProxyMesh) {
    this.options = options;
    this.dataDir = dataDir;
    this.proxies = proxies;
  }

  /** Allocates ports, starts the proxies, writes configs and starts every node (no waiting). */
  static async create(options: ChaosClusterOptions): Promise<ChaosCluster> {
    const ids = Array.from({ length: options.nodes }, (_, i) => `n${i + 1}`);
    const ports = new Map<string, { client: number; peer: number }>();
    for (const id of ids) ports.set(id, { client: await freePort(), peer: await freePort() });
    const portOf = (kind: LinkKind, id: string): number => {
      const entry = ports.get(id);
      if (entry === undefined) throw new Error(`no node ${id}`);
      return kind === 'raft' ? entry.peer : entry.client;
    };
    const proxies = await ProxyMesh.start(ids, portOf);
    const dataDir = mkdtempSync(join(tmpdir(), 'understudy-chaos-'));
    mkdirSync(options.logDir, { recursive: true });
    const cluster = new ChaosCluster(options, dataDir, proxies);
    for (const id of ids) {
      const own = ports.get(id)!;
      const members = ids.map((other) => other === id
        ? { id, peer: `127.0.0.1:${own.peer}`, client: `http://127.0.0.1:${own.client}` }
        : { id: other, peer: proxies.link('raft', id, other).address, client: `http://${proxies.link('http', id, other).address}` });
      const configFile = join(dataDir, `${id}.json`);
      writeFileSync(configFile, JSON.stringify({
        id, clusterId: 'chaos', dataDir: join(dataDir, id), clientHost: '127.0.0.1', clientPort: own.client,
        peerHost: '127.0.0.1', peerPort: own.peer, members, bootstrapVoters: ids, secret: 'chaos-cluster-secret',
        ...(options.config ?? {}),
      }, null, 2));
      cluster.nodes.set(id, {
        id, clientPort: own.client, peerPort: own.peer, clientUrl: `http://127.0.0.1:${own.client}`, configFile,
        logFile: join(options.logDir, `${id}.log`), child: null, state: 'killed', starts: 0, unexpectedExits: [],
      });
    }
    for (const id of ids) cluster.start(id);
    return cluster;
  }

  ids(): string[] {
    return [...this.nodes.keys()];
  }

  node(id: string): ChaosNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  /** Nodes whose process exists (running or paused): clients do not know a node is paused. */
  reachable(): ChaosNode[] {
    return [...this.nodes.values()].filter((node) => node.state !== 'killed');
  }

  pid(id: string): number | null {
    return this.node(id).child?.pid ?? null;
  }

  /** Starts (or restarts) node `id` with its config and data directory. */
  start(id: string): void {
    if (this.stopped) return;
    const node = this.node(id);
    if (node.state !== 'killed') throw new Error(`${id} is ${node.state}`);
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env['UNDERSTUDY_PLANTED_BUG'];
    delete env['UNDERSTUDY_ALLOW_PLANTED_BUGS'];
    if (this.options.plantedBug !== undefined && this.options.plantedBug !== null) {
      env['UNDERSTUDY_PLANTED_BUG'] = this.options.plantedBug;
      env['UNDERSTUDY_ALLOW_PLANTED_BUGS'] = '1';
    }
    const fd = openSync(node.logFile, 'a');
    try {
      writeFileSync(fd, `\n=== chaos: start #${node.starts + 1} of ${id} at ${new Date().toISOString()}\n`);
      const child = spawn(process.execPath, [BIN, 'start', '--config', node.configFile], { stdio: ['ignore', fd, fd], env });
      node.child = child;
      node.state = 'running';
      node.starts++;
      // A spawn failure arrives as an event; without a listener it would crash the runner.
      child.on('error', (error) => {
        node.unexpectedExits.push({ at: new Date().toISOString(), code: null, signal: null, lastLines: `spawn failed: ${error.message}` });
      });
      child.once('exit', (code, signal) => {
        if (!this.expectedExits.has(child) && !this.stopped) {
          const exit = { at: new Date().toISOString(), code, signal, lastLines: this.tail(id, 5) };
          node.unexpectedExits.push(exit);
          this.options.onUnexpectedExit?.(id, exit);
        }
        if (node.child === child) {
          node.child = null;
          node.state = 'killed';
        }
      });
    } finally {
      closeSync(fd);
    }
  }

  /** kill -9 by PID, then waits (bounded) for the exit. */
  async kill(id: string): Promise<void> {
    const node = this.node(id);
    const child = node.child;
    if (child === null || child.pid === undefined) {
      node.state = 'killed';
      return;
    }
    this.expectedExits.add(child);
    const exited = child.exitCode !== null || child.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await Promise.race([exited, sleep(5_000)]);
    node.child = null;
    node.state = 'killed';
  }

  /** SIGSTOP by PID: the process freezes (timers, sockets, everything). */
  pause(id: string): void {
    const node = this.node(id);
    const pid = node.child?.pid;
    if (pid === undefined || node.state !== 'running') return;
    process.kill(pid, 'SIGSTOP');
    node.state = 'paused';
  }

  /** SIGCONT by PID. */
  resume(id: string): void {
    const node = this.node(id);
    const pid = node.child?.pid;
    if (pid === undefined || node.state !== 'paused') return;
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // gone
    }
    node.state = 'running';
  }

  /** This node's own view (`/v1/cluster?local=true`), or null if it does not answer in time. */
  async view(id: string, timeoutMs = 500): Promise<NodeView | null> {
    const node = this.node(id);
    if (node.state !== 'running') return null;
    const answer = await this.http.call('GET', `${node.clientUrl}/v1/cluster?local=true`, { timeoutMs });
    if (answer.kind !== 'response' || answer.status !== 200) return null;
    const body = answer.body as Partial<NodeView> | null;
    if (body === null || typeof body !== 'object' || typeof body.role !== 'string') return null;
    return {
      id, role: body.role, term: Number(body.term ?? 0), leaderId: (body.leaderId as string | null) ?? null,
      commitIndex: Number(body.commitIndex ?? 0), appliedIndex: Number(body.appliedIndex ?? 0),
    };
  }

  /** Waits (bounded) until every node answers its status; false on timeout or if one exited. */
  async waitForAllUp(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && !this.stopped) {
      if ([...this.nodes.values()].some((node) => node.state === 'killed')) return false;
      const views = await Promise.all(this.ids().map((id) => this.view(id)));
      if (views.every((view) => view !== null)) return true;
      await sleep(100);
    }
    return false;
  }

  /** The leader every running node agrees on, or null once `timeoutMs` passed. */
  async waitForLeader(timeoutMs: number): Promise<string | null> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && !this.stopped) {
      const running = [...this.nodes.values()].filter((node) => node.state === 'running');
      const views = await Promise.all(running.map((node) => this.view(node.id)));
      const leaders = views.map((view) => view?.leaderId ?? null);
      const first = leaders[0] ?? null;
      if (first !== null && leaders.every((leader) => leader === first)) {
        const leaderView = views.find((view) => view?.id === first);
        if (leaderView?.role === 'leader') return first;
      }
      await sleep(50);
    }
    return null;
  }

  /** Waits (bounded) until every running node applied what the leader committed. */
  async waitForConvergence(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && !this.stopped) {
      const running = [...this.nodes.values()].filter((node) => node.state === 'running');
      const views = await Promise.all(running.map((node) => this.view(node.id)));
      const leader = views.find((view) => view?.role === 'leader');
      if (leader !== undefined && leader !== null && views.every((view) => view !== null && view.leaderId === leader.id && view.appliedIndex >= leader.commitIndex)) return true;
      await sleep(100);
    }
    return false;
  }

  /** The last `lines` lines of a node's log file. */
  tail(id: string, lines = 40): string {
    try {
      return readFileSync(this.node(id).logFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  /** Kills every child by PID (synchronous part first, so it also works from an exit handler). */
  killAllNow(): void {
    for (const node of this.nodes.values()) {
      const pid = node.child?.pid;
      if (pid === undefined || node.child === null) continue;
      this.expectedExits.add(node.child);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  /** Stops everything: kills the children by PID, closes proxies and clients, removes data. */
  async stopAll(options: { keepData?: boolean } = {}): Promise<void> {
    this.stopped = true;
    this.killAllNow();
    await Promise.all([...this.nodes.keys()].map((id) => this.kill(id)));
    await this.proxies.close();
    await this.http.close();
    if (options.keepData !== true) rmSync(this.dataDir, { recursive: true, force: true });
  }
}
