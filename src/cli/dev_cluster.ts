/**
 * `understudy dev` / `npm start`: a local cluster of real server processes on loopback, data
 * under ./data/<id>, the web dashboard at /ui of every node, and a loopback control server
 * (dev_control.ts, port base+90 by default) through which the dashboard kills, restarts and
 * partitions nodes. Children are controlled and stopped by PID only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { allowedOrigins } from '../server/cors.ts';
import { ApiError } from '../server/errors.ts';
import { startDevControlServer, type DevControlTarget, type DevNodeInfo } from './dev_control.ts';
import { seedFromBackup } from './backup_commands.ts';

export interface DevClusterOptions {
  readonly data: string;
  readonly basePort: number;
  readonly nodes: number;
  /**
   * Loopback port of the control server. Default basePort + 90; when that port is taken the
   * cluster still starts, without dev actions on the dashboard. A port given explicitly must work.
   */
  readonly controlPort?: number | undefined;
  /** A backup file: seed every node's (empty) data directory from it before starting (backup_commands.ts). */
  readonly restore?: string;
}

interface DevMember {
  readonly id: string;
  readonly peer: string;
  readonly client: string;
}

const BIN = fileURLToPath(new URL('../../bin/understudy.js', import.meta.url));
const STOP_WAIT_MS = 5_000;

export function devMembers(options: DevClusterOptions): DevMember[] {
  return Array.from({ length: options.nodes }, (_, i) => ({
    id: `n${i + 1}`,
    peer: `127.0.0.1:${options.basePort + 100 + i}`,
    client: `http://127.0.0.1:${options.basePort + i}`,
  }));
}

function isRunning(child: ChildProcess | undefined): child is ChildProcess {
  return child !== undefined && child.pid !== undefined && child.exitCode === null && child.signalCode === null;
}

/** Sends `signal` to the child by PID and waits (bounded) for it to exit; true if it did. */
async function signalAndWait(child: ChildProcess, signal: NodeJS.Signals, waitMs: number): Promise<boolean> {
  if (!isRunning(child)) return true;
  const exited = new Promise<boolean>((resolve) => child.once('exit', () => resolve(true)));
  try {
    process.kill(child.pid as number, signal);
  } catch {
    return !isRunning(child);
  }
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), waitMs); });
  const result = await Promise.race([exited, timedOut]);
  clearTimeout(timer);
  return result;
}

export class DevCluster implements DevControlTarget {
  readonly members: readonly DevMember[];
  private readonly children = new Map<string, ChildProcess>();
  private readonly isolated = new Set<string>();
  private readonly starts = new Map<string, number>();
  private readonly intentional = new WeakSet<ChildProcess>();
  private readonly membersFlag: string;
  private readonly secret: string;
  private stopping = false;
  controlUrl: string | null = null;

  constructor(private readonly options: DevClusterOptions, private readonly out: (line: string) => void = (line) => process.stdout.write(line)) {
    this.members = devMembers(options);
    this.membersFlag = this.members.map((m) => `${m.id}@${m.peer}@${m.client}`).join(',');
    this.secret = process.env['UNDERSTUDY_SECRET'] ?? 'understudy-dev-secret';
  }

  private member(id: string): DevMember {
    const member = this.members.find((m) => m.id === id);
    if (member === undefined) throw new ApiError('UNKNOWN_NODE', `the dev cluster has no node '${id}'`);
    return member;
  }

  start(id: string): void {
    const member = this.member(id);
    const args = [
      BIN, 'start', '--id', member.id, '--data', join(this.options.data, member.id),
      '--client', member.client.replace('http://', ''), '--peer', member.peer, '--members', this.membersFlag,
      '--exit-with-parent',
    ];
    if (this.controlUrl !== null) args.push('--dev-control', this.controlUrl);
    const child = spawn(process.execPath, args, { env: { ...process.env, UNDERSTUDY_SECRET: this.secret }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.set(member.id, child);
    this.isolated.delete(member.id);
    this.starts.set(member.id, (this.starts.get(member.id) ?? 0) + 1);
    const prefix = (chunk: Buffer): void => {
      for (const line of chunk.toString().split('\n')) if (line.trim() !== '') this.out(`[${member.id}] ${line}\n`);
    };
    child.stdout?.on('data', prefix);
    child.stderr?.on('data', prefix);
    child.on('exit', (code, signal) => {
      if (!this.stopping) this.out(`[${member.id}] exited (${signal ?? code})${this.intentional.has(child) ? '' : ' unexpectedly'}\n`);
    });
  }

  nodes(): DevNodeInfo[] {
    return this.members.map((member) => {
      const child = this.children.get(member.id);
      const running = isRunning(child);
      return {
        id: member.id, client: member.client, peer: member.peer, pid: running ? child.pid ?? null : null, running,
        isolated: running && this.isolated.has(member.id), starts: this.starts.get(member.id) ?? 0,
      };
    });
  }

  private info(id: string): DevNodeInfo {
    const info = this.nodes().find((node) => node.id === id);
    if (info === undefined) throw new ApiError('UNKNOWN_NODE', `the dev cluster has no node '${id}'`);
    return info;
  }

  /** kill -9 by PID: a crash, no shutdown code runs. */
  async kill(id: string): Promise<DevNodeInfo> {
    this.member(id);
    const child = this.children.get(id);
    if (!isRunning(child)) throw new ApiError('NODE_NOT_RUNNING', `${id} is not running (restart it first)`);
    this.intentional.add(child);
    this.out(`[dev] killing ${id} (pid ${child.pid}) with SIGKILL\n`);
    await signalAndWait(child, 'SIGKILL', STOP_WAIT_MS);
    this.isolated.delete(id);
    return this.info(id);
  }

  /** Stops the node if it runs (SIGTERM, SIGKILL after 5 s) and starts it again on the same data. */
  async restart(id: string): Promise<DevNodeInfo> {
    this.member(id);
    const child = this.children.get(id);
    if (isRunning(child)) {
      this.intentional.add(child);
      this.out(`[dev] restarting ${id} (pid ${child.pid})\n`);
      if (!(await signalAndWait(child, 'SIGTERM', STOP_WAIT_MS))) await signalAndWait(child, 'SIGKILL', STOP_WAIT_MS);
    } else {
      this.out(`[dev] starting ${id} again\n`);
    }
    this.start(id);
    return this.info(id);
  }

  /** Flips the node's dev fault switch: all Raft traffic to and from its peers is dropped. */
  async isolate(id: string, isolated: boolean): Promise<DevNodeInfo> {
    const member = this.member(id);
    if (!isRunning(this.children.get(id))) throw new ApiError('NODE_NOT_RUNNING', `${id} is not running`);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    const token = process.env['UNDERSTUDY_TOKEN'];
    if (token !== undefined && token !== '') headers['authorization'] = `Bearer ${token}`;
    let status: number;
    let text: string;
    try {
      const response = await request(`${member.client}/v1/dev/isolate`, {
        method: 'POST', headers, body: JSON.stringify({ isolated }), headersTimeout: 3_000, bodyTimeout: 3_000,
      });
      status = response.statusCode;
      text = await response.body.text();
    } catch (error) {
      throw new ApiError('UNAVAILABLE', `${id} did not answer: ${(error as Error).message}`, { retryAfterMs: 500 });
    }
    if (status !== 200) throw new ApiError('UNAVAILABLE', `${id} refused to change its isolation (HTTP ${status}: ${text.slice(0, 200)})`);
    if (isolated) this.isolated.add(id);
    else this.isolated.delete(id);
    this.out(`[dev] ${id} ${isolated ? 'isolated from its peers' : 'healed: talks to its peers again'}\n`);
    return this.info(id);
  }

  /** SIGTERM every running node, SIGKILL what has not exited after 5 s. */
  async stopAll(): Promise<void> {
    this.stopping = true;
    const running = [...this.children.values()].filter(isRunning);
    await Promise.all(running.map(async (child) => {
      if (!(await signalAndWait(child, 'SIGTERM', STOP_WAIT_MS))) await signalAndWait(child, 'SIGKILL', STOP_WAIT_MS);
    }));
  }
}

export async function runDevCluster(options: DevClusterOptions): Promise<void> {
  mkdirSync(options.data, { recursive: true });
  const cluster = new DevCluster(options);
  if (options.restore !== undefined) {
    try {
      const backup = await seedFromBackup(options.restore, cluster.members.map((member) => ({ dataDir: join(options.data, member.id) })), cluster.members.map((member) => member.id));
      process.stdout.write(`Restored every node from ${options.restore}: index ${backup.header.appliedIndex}, ${backup.header.documentCount} documents\n`);
    } catch (error) {
      process.stderr.write(`understudy: ${(error as Error).message}\n`);
      process.exit(2);
    }
  }
  const controlPort = options.controlPort ?? options.basePort + 90;
  const control = await startDevControlServer(cluster, {
    port: controlPort,
    origins: () => allowedOrigins(cluster.members.map((member) => member.client)),
  }).catch((error: Error) => {
    const message = `cannot start the dev control server on 127.0.0.1:${controlPort}: ${error.message}`;
    if (options.controlPort !== undefined) {
      process.stderr.write(`understudy: ${message}\n`);
      process.exit(2);
    }
    process.stderr.write(`understudy: warning: ${message}; the dashboard will have no kill/restart/isolate actions (choose a port with --control-port)\n`);
    return null;
  });
  cluster.controlUrl = control?.url ?? null;
  for (const member of cluster.members) cluster.start(member.id);
  const first = cluster.members[0];
  process.stdout.write(`\nUnderstudy dev cluster: ${cluster.members.length} nodes, data under ${options.data}\n`);
  for (const member of cluster.members) process.stdout.write(`  ${member.id}: client ${member.client}  peer ${member.peer}\n`);
  process.stdout.write(`Dashboard: ${first?.client}/ui   (any node serves it${control === null ? '' : `; dev controls via ${control.url}`})\n`);
  process.stdout.write(`Try: curl -X PUT ${first?.client}/v1/docs/todos/1 -H 'content-type: application/json' -d '{"title":"hello"}'\n`);
  process.stdout.write('Press Ctrl-C to stop.\n\n');
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    // Bounded: nodes get SIGTERM, then SIGKILL after 5 s; the whole stop gives up after 12 s.
    setTimeout(() => process.exit(1), 12_000).unref();
    Promise.all([control?.close().catch(() => undefined), cluster.stopAll()])
      .then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  await new Promise(() => undefined);
}
