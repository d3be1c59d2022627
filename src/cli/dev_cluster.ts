/**
 * `understudy dev` / `npm start`: a local cluster of real server processes on loopback, data
 * under ./data/<id>. Children are stopped by PID when this process exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

export interface DevClusterOptions {
  readonly data: string;
  readonly basePort: number;
  readonly nodes: number;
}

const BIN = fileURLToPath(new URL('../../bin/understudy.js', import.meta.url));

export function devMembers(options: DevClusterOptions): { id: string; peer: string; client: string }[] {
  return Array.from({ length: options.nodes }, (_, i) => ({
    id: `n${i + 1}`,
    peer: `127.0.0.1:${options.basePort + 100 + i}`,
    client: `http://127.0.0.1:${options.basePort + i}`,
  }));
}

export async function runDevCluster(options: DevClusterOptions): Promise<void> {
  const members = devMembers(options);
  const membersFlag = members.map((m) => `${m.id}@${m.peer}@${m.client}`).join(',');
  const secret = process.env['UNDERSTUDY_SECRET'] ?? 'understudy-dev-secret';
  mkdirSync(options.data, { recursive: true });
  const children = new Map<string, ChildProcess>();
  let stopping = false;
  const startChild = (member: { id: string; peer: string; client: string }): void => {
    const child = spawn(process.execPath, [
      BIN, 'start', '--id', member.id, '--data', join(options.data, member.id),
      '--client', member.client.replace('http://', ''), '--peer', member.peer, '--members', membersFlag,
    ], { env: { ...process.env, UNDERSTUDY_SECRET: secret }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.set(member.id, child);
    const prefix = (chunk: Buffer): void => {
      for (const line of chunk.toString().split('\n')) if (line.trim() !== '') process.stdout.write(`[${member.id}] ${line}\n`);
    };
    child.stdout?.on('data', prefix);
    child.stderr?.on('data', prefix);
    child.on('exit', (code, signal) => {
      if (!stopping) process.stdout.write(`[${member.id}] exited (${signal ?? code})\n`);
    });
  };
  for (const member of members) startChild(member);
  process.stdout.write(`\nUnderstudy dev cluster: ${members.length} nodes, data under ${options.data}\n`);
  for (const member of members) process.stdout.write(`  ${member.id}: client ${member.client}  peer ${member.peer}\n`);
  process.stdout.write(`Try: curl -X PUT ${members[0]?.client}/v1/docs/todos/1 -H 'content-type: application/json' -d '{"title":"hello"}'\n`);
  process.stdout.write('Press Ctrl-C to stop.\n\n');
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    for (const child of children.values()) if (child.pid !== undefined && child.exitCode === null) child.kill('SIGTERM');
    setTimeout(() => process.exit(0), 2_000).unref();
    Promise.all([...children.values()].map((child) => new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)))))
      .then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  await new Promise(() => undefined);
}
