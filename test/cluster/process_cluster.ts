/**
 * A cluster of real `understudy start` processes on loopback for end-to-end tests.
 * Ports are taken fresh from the OS, data lives in a temporary directory, every wait is bounded,
 * and every process is stopped by its PID in `stopAll()` (call it in `finally`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';

const BIN = fileURLToPath(new URL('../../bin/understudy.js', import.meta.url));

// Ports below the kernel's ephemeral range (the chaos harness's picker): nodes are restarted on
// their ports, and a port-0 port could meanwhile be taken by any outbound connection (EADDRINUSE).
export { freePort } from '../../src/chaos/cluster.ts';
import { freePort } from '../../src/chaos/cluster.ts';

export async function waitFor<T>(what: string, check: () => Promise<T | null | undefined | false> | T | null | undefined | false, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown = null;
  for (;;) {
    try {
      const value = await check();
      if (value !== null && value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError === null ? '' : `: ${String(lastError)}`}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

export interface HttpResult {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: any;
}

export async function http(method: string, url: string, body?: unknown, headers: Record<string, string> = {}, timeoutMs = 5_000): Promise<HttpResult> {
  const response = await request(url, {
    method: method as 'GET',
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? null : typeof body === 'string' ? body : JSON.stringify(body),
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  const text = await response.body.text();
  let parsed: unknown = text;
  try {
    parsed = text === '' ? null : JSON.parse(text);
  } catch {
    // not JSON (metrics, NDJSON)
  }
  return { status: response.statusCode, headers: response.headers, body: parsed };
}

export interface NodeHandle {
  readonly id: string;
  readonly clientUrl: string;
  readonly peer: string;
  process: ChildProcess | null;
  output: string[];
}

export interface ProcessClusterOptions {
  readonly nodes?: number;
  readonly config?: Record<string, unknown>;
  /** Where the nodes' ports come from (default: freePort). */
  readonly port?: () => Promise<number>;
  /** Runs once ports and data directories are chosen, before any node starts (to seed data). */
  readonly beforeStart?: (cluster: ProcessCluster) => Promise<void>;
}

export class ProcessCluster {
  readonly dir = mkdtempSync(join(tmpdir(), 'understudy-cluster-'));
  readonly nodes = new Map<string, NodeHandle>();
  /** Nodes started with --join (no bootstrap voters): they wait to be added. */
  readonly joining = new Set<string>();
  private readonly config: Record<string, unknown>;

  private constructor(config: Record<string, unknown>) {
    this.config = config;
  }

  static async start(options: ProcessClusterOptions = {}): Promise<ProcessCluster> {
    const cluster = new ProcessCluster(options.config ?? {});
    const count = options.nodes ?? 3;
    const port = options.port ?? freePort;
    for (let i = 1; i <= count; i++) {
      const id = `n${i}`;
      cluster.nodes.set(id, { id, clientUrl: `http://127.0.0.1:${await port()}`, peer: `127.0.0.1:${await port()}`, process: null, output: [] });
    }
    try {
      await options.beforeStart?.(cluster);
    } catch (error) {
      cluster.stopAll();
      throw error;
    }
    for (const id of cluster.nodes.keys()) cluster.startNode(id);
    try {
      await cluster.waitForLeader();
    } catch (error) {
      cluster.stopAll();
      throw error;
    }
    return cluster;
  }

  /** The node's data directory (what its config file names). */
  dataDir(id: string): string {
    return join(this.dir, id);
  }

  private configFor(node: NodeHandle): string {
    const members = [...this.nodes.values()].map((member) => ({ id: member.id, peer: member.peer, client: member.clientUrl }));
    const [clientHost, clientPort] = node.clientUrl.replace('http://', '').split(':');
    const [peerHost, peerPort] = node.peer.split(':');
    const file = join(this.dir, `${node.id}.json`);
    writeFileSync(file, JSON.stringify({
      id: node.id, clusterId: 'test', dataDir: join(this.dir, node.id), clientHost, clientPort: Number(clientPort),
      peerHost, peerPort: Number(peerPort), members, secret: 'cluster-test-secret', ...this.config,
      ...(this.joining.has(node.id) ? { bootstrapVoters: [] } : { bootstrapVoters: [...this.nodes.keys()].filter((id) => !this.joining.has(id)) }),
    }));
    return file;
  }

  startNode(id: string): void {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no node ${id}`);
    if (node.process !== null && node.process.exitCode === null && node.process.signalCode === null) throw new Error(`${id} is running`);
    const child = spawn(process.execPath, [BIN, 'start', '--config', this.configFor(node)], { stdio: ['ignore', 'pipe', 'pipe'] });
    node.process = child;
    const keep = (chunk: Buffer): void => {
      node.output.push(chunk.toString());
      if (node.output.length > 400) node.output.splice(0, node.output.length - 400);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
  }

  /** kill -9 by PID: no shutdown code runs; unsynced writes are lost as in a power cut. */
  async kill(id: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.nodes.get(id)?.process;
    if (child === null || child === undefined || child.pid === undefined) return;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      process.kill(child.pid, signal);
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5_000))]);
    }
    const node = this.nodes.get(id);
    if (node !== undefined) node.process = null;
  }

  isRunning(id: string): boolean {
    const child = this.nodes.get(id)?.process;
    return child !== null && child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  running(): NodeHandle[] {
    return [...this.nodes.values()].filter((node) => this.isRunning(node.id));
  }

  url(id: string): string {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node.clientUrl;
  }

  async status(id: string): Promise<any> {
    const result = await http('GET', `${this.url(id)}/v1/cluster?local=true`, undefined, {}, 2_000);
    return result.status === 200 ? result.body : null;
  }

  /** The leader every running node agrees on (a single view is not enough during elections). */
  async waitForLeader(timeoutMs = 15_000, exclude: string | null = null): Promise<string> {
    return waitFor('a leader', async () => {
      const views = await Promise.all(this.running().map(async (node) => (await this.status(node.id).catch(() => null))));
      const leaders = views.map((view) => view?.leaderId ?? null);
      const first = leaders[0];
      if (first === null || first === undefined || first === exclude) return null;
      if (!leaders.every((leader) => leader === first)) return null;
      const leaderView = views.find((view) => view?.id === first);
      return leaderView?.role === 'leader' ? (first as string) : null;
    }, timeoutMs);
  }

  /** Waits until every running node applied everything the leader committed. */
  async waitForConvergence(timeoutMs = 20_000): Promise<void> {
    await waitFor('convergence', async () => {
      const views = await Promise.all(this.running().map((node) => this.status(node.id).catch(() => null)));
      if (views.some((view) => view === null)) return false;
      const leader = views.find((view) => view.role === 'leader');
      if (leader === undefined) return false;
      return views.every((view) => view.appliedIndex >= leader.commitIndex && view.leaderId === leader.id);
    }, timeoutMs);
  }

  logs(): string {
    return [...this.nodes.values()].map((node) => `--- ${node.id}\n${node.output.join('').split('\n').slice(-40).join('\n')}`).join('\n');
  }

  stopAll(): void {
    for (const node of this.nodes.values()) {
      const child = node.process;
      if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      node.process = null;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
