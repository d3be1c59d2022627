/**
 * Shared helpers for the client tests: the connection string of a ProcessCluster, a client
 * connected to it, SIGSTOP/SIGCONT of one node (a frozen node accepts connections and never
 * answers, unlike a killed one), and bounded polling.
 */
import { ProcessCluster, waitFor } from '../cluster/process_cluster.ts';
import { connect, type ConnectOptions, type UnderstudyClient } from '../../src/client/index.ts';

export { ProcessCluster, waitFor };

export function seedsOf(cluster: ProcessCluster): string[] {
  return [...cluster.nodes.values()].map((node) => node.clientUrl);
}

export function connectionString(cluster: ProcessCluster, query = ''): string {
  const hosts = seedsOf(cluster).map((url) => url.replace(/^http:\/\//, ''));
  return `understudy://${hosts.join(',')}${query === '' ? '' : `?${query}`}`;
}

export async function connectTo(cluster: ProcessCluster, options: Omit<ConnectOptions, 'seeds'> = {}): Promise<UnderstudyClient> {
  return connect({ seeds: seedsOf(cluster), ...options });
}

/** SIGSTOP (freeze) or SIGCONT (resume) one node's process, by PID. */
export function signalNode(cluster: ProcessCluster, id: string, signal: 'SIGSTOP' | 'SIGCONT'): void {
  const pid = cluster.nodes.get(id)?.process?.pid;
  if (pid === undefined) throw new Error(`${id} has no running process`);
  process.kill(pid, signal);
}

/** Resumes every node (a frozen process still dies from SIGKILL, but be tidy) and stops the cluster. */
export function stopCluster(cluster: ProcessCluster): void {
  for (const node of cluster.nodes.values()) {
    const pid = node.process?.pid;
    if (pid !== undefined && cluster.isRunning(node.id)) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // gone
      }
    }
  }
  cluster.stopAll();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function settle<T>(promise: Promise<T>): Promise<{ ok: true; value: T; ms: number } | { ok: false; error: unknown; ms: number }> {
  const started = performance.now();
  try {
    const value = await promise;
    return { ok: true, value, ms: performance.now() - started };
  } catch (error) {
    return { ok: false, error, ms: performance.now() - started };
  }
}
