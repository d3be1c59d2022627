/**
 * `understudy dev` as the README runs it, started by a test: one dev process that spawns the
 * nodes and the control server, on loopback ports below the kernel's ephemeral range (as
 * src/chaos/cluster.ts picks them: a killed node is restarted on the same ports, which an
 * outbound connection could otherwise take meanwhile), with data in a temporary directory.
 *
 * `stop()` ends everything by PID, also when the test failed: SIGTERM to the dev process (which
 * stops its nodes), SIGKILL if it does not exit in time, then SIGKILL to every node PID seen
 * that still runs with this cluster's data directory on its command line. Every wait is bounded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { canListen, ephemeralRange } from '../../src/chaos/cluster.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { http, waitFor } from '../cluster/process_cluster.ts';

const BIN = fileURLToPath(new URL('../../bin/understudy.js', import.meta.url));

export { http, waitFor, type HttpResult as HttpAnswer } from '../cluster/process_cluster.ts';

/** A base port whose dev cluster ports (base..base+n-1, base+100.., base+90) are all free. */
async function pickBasePort(nodes: number): Promise<number> {
  const min = 10_000;
  const max = Math.max(min + 1_000, ephemeralRange()[0] - 200);
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = min + Math.floor(Math.random() * (max - min));
    const ports = [base + 90];
    for (let i = 0; i < nodes; i++) ports.push(base + i, base + 100 + i);
    let free = true;
    for (const port of ports) {
      if (!(await canListen(port))) {
        free = false;
        break;
      }
    }
    if (free) return base;
  }
  throw new Error('no free range of ports for a dev cluster');
}

/** The test talks to the nodes without a bearer token: do not pass one down from the environment. */
function withoutToken(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const copy = { ...env };
  delete copy['UNDERSTUDY_TOKEN'];
  return copy;
}

export interface DevNode {
  readonly id: string;
  readonly client: string;
  readonly pid: number | null;
  readonly running: boolean;
  readonly isolated: boolean;
}

export class DevProcess {
  readonly dir = mkdtempSync(join(tmpdir(), 'understudy-ui-'));
  readonly output: string[] = [];
  private readonly nodePids = new Set<number>();
  private child: ChildProcess | null = null;
  basePort = 0;

  get controlUrl(): string {
    return `http://127.0.0.1:${this.basePort + 90}`;
  }

  url(id: string): string {
    return `http://127.0.0.1:${this.basePort + Number(id.slice(1)) - 1}`;
  }

  /** `extraArgs` go to `understudy dev` (for example `--restore <file>`). */
  static async start(nodes = 3, extraArgs: readonly string[] = []): Promise<DevProcess> {
    const dev = new DevProcess();
    try {
      dev.basePort = await pickBasePort(nodes);
      const child = spawn(process.execPath, [
        BIN, 'dev', '--data', join(dev.dir, 'data'), '--base-port', String(dev.basePort), '--nodes', String(nodes),
        '--control-port', String(dev.basePort + 90), ...extraArgs,
      ], { stdio: ['ignore', 'pipe', 'pipe'], env: withoutToken(process.env) });
      dev.child = child;
      const keep = (chunk: Buffer): void => {
        dev.output.push(chunk.toString());
        if (dev.output.length > 2000) dev.output.splice(0, dev.output.length - 2000);
      };
      child.stdout?.on('data', keep);
      child.stderr?.on('data', keep);
      await waitFor('the dev control server', async () => (await dev.nodes()).length === nodes, 30_000);
      await dev.waitForLeader(30_000);
      return dev;
    } catch (error) {
      await dev.stop();
      throw error;
    }
  }

  /** SIGKILL to the dev process alone (nothing of it runs afterwards: its nodes are on their own). */
  killDevProcess(): void {
    const pid = this.child?.pid;
    if (pid !== undefined && this.child?.exitCode === null && this.child.signalCode === null) process.kill(pid, 'SIGKILL');
  }

  /** The control server's view of the nodes; remembers every PID it reports. */
  async nodes(): Promise<DevNode[]> {
    const answer = await http('GET', `${this.controlUrl}/dev/nodes`, undefined, {}, 3_000);
    if (answer.status !== 200) throw new Error(`GET /dev/nodes: ${answer.status}`);
    const nodes = answer.body.nodes as DevNode[];
    for (const node of nodes) if (node.pid !== null) this.nodePids.add(node.pid);
    return nodes;
  }

  /** The leader every running node agrees on. */
  async waitForLeader(timeoutMs: number, exclude: string | null = null): Promise<string> {
    return waitFor('a leader all running nodes agree on', async () => {
      const running = (await this.nodes()).filter((node) => node.running);
      const views = await Promise.all(running.map(async (node) => (await http('GET', `${node.client}/v1/cluster?local=true`, undefined, {}, 2_000)).body));
      const leader = views[0]?.leaderId ?? null;
      if (leader === null || leader === exclude || !views.every((view) => view?.leaderId === leader)) return null;
      return views.find((view) => view.id === leader)?.role === 'leader' ? (leader as string) : null;
    }, timeoutMs);
  }

  logs(): string {
    return this.output.join('').split('\n').slice(-80).join('\n');
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (child !== null && child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      process.kill(child.pid, 'SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const done = await Promise.race([exited.then(() => true), new Promise((resolve) => {
        timer = setTimeout(() => resolve(false), 15_000);
      })]);
      clearTimeout(timer); // or the test file waits out the 15 s before it exits
      if (!done && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
    // Nodes the dev process could not stop (or that outlived a killed dev process).
    for (const pid of this.nodePids) {
      let cmdline = '';
      try {
        cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        continue; // not running
      }
      if (!cmdline.includes(this.dir)) continue; // the PID was reused by something else
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
