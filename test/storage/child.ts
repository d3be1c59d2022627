/**
 * A child process of a storage test, watched line by line: every wait is bounded and reports the
 * child's output when it times out; kill() is SIGKILL by PID. Shared by the durability tests.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import { repoRoot } from './helpers.ts';

export interface Child {
  readonly process: ChildProcess;
  readonly lines: string[];
  /** Resolves with the first line (seen so far or later) matching `pattern`; rejects after `ms`. */
  waitFor(pattern: RegExp, ms: number): Promise<string>;
  /** Resolves when the process has exited; rejects after `ms`. */
  exit(ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL by PID if still running. */
  kill(): void;
}

export function startChild(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Child {
  const child = spawn(command, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const lines: string[] = [];
  const waiters: Array<{ pattern: RegExp; resolve: (line: string) => void }> = [];
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  readline.createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    lines.push(line);
    for (const waiter of [...waiters]) {
      if (waiter.pattern.test(line)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  });
  let exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  const exitWaiters: Array<() => void> = [];
  child.on('exit', (code, signal) => {
    exited = { code, signal };
    for (const resolve of exitWaiters) resolve();
  });
  const bounded = <T>(what: string, ms: number, body: (resolve: (value: T) => void) => void): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}; stdout: ${lines.join(' | ')}; stderr: ${stderr.slice(-2000)}`)), ms);
      body((value) => {
        clearTimeout(timer);
        resolve(value);
      });
    });
  return {
    process: child,
    lines,
    waitFor: (pattern, ms) => bounded(String(pattern), ms, (resolve) => {
      const seen = lines.find((line) => pattern.test(line));
      if (seen !== undefined) resolve(seen);
      else waiters.push({ pattern, resolve });
    }),
    exit: (ms) => bounded('exit', ms, (resolve) => {
      const done = (): void => resolve(exited as { code: number | null; signal: NodeJS.Signals | null });
      if (exited !== null) done();
      else exitWaiters.push(done);
    }),
    kill: () => {
      if (exited === null && child.pid !== undefined) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    },
  };
}

/** Null when strace can trace here (with `probeArgs`, e.g. fault injection), else why not. */
export function straceWorks(probeArgs: readonly string[] = []): string | null {
  const probe = spawnSync('strace', ['-f', '-qq', '-e', 'trace=write', ...probeArgs, '-o', '/dev/null', 'true'], { timeout: 10_000 });
  if (probe.error !== undefined) return `strace is not available (${probe.error.message})`;
  if (probe.status !== 0) return `strace cannot trace here: ${probe.stderr.toString().trim()}`;
  return null;
}

/** Null when a private mount namespace can mount a small tmpfs (the full-disk tests), else why not. */
export function mountNamespacesWork(): string | null {
  const probe = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', 'd=$(mktemp -d) && mount -t tmpfs -o size=1m tmpfs "$d" && umount "$d" && rmdir "$d"'], { timeout: 10_000 });
  if (probe.error !== undefined) return `unshare is not available (${probe.error.message})`;
  if (probe.status !== 0) return `cannot mount a small tmpfs in a private mount namespace: ${probe.stderr.toString().trim()}`;
  return null;
}
