/**
 * `npm run bench:profile`: where a node's CPU goes on the write path. Starts a 3-node cluster of
 * real processes on loopback with `node --cpu-prof`, drives the leader with closed-loop writers
 * (ack=majority, ~100-byte documents to new ids) for a fixed time, stops the nodes (SIGTERM, so
 * V8 writes the profiles), and prints per node the CPU used per write and the functions with the
 * most time, self and inclusive. The .cpuprofile files stay in the output folder for a flame
 * graph (Chrome DevTools > Performance, or speedscope).
 *
 *   npm run bench:profile -- [--seconds 12] [--clients 64] [--reads] [--out bench/results/profile]
 *
 * `--reads` profiles linearizable reads of 1 000 documents written first (not profiled apart:
 * the writes take well under a second) instead of writes.
 *
 * Run it on an idle machine: the profile is of the whole machine's contention as well.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Pool } from 'undici';
import { freePort, sleep } from '../src/chaos/cluster.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount: number;
  children?: number[];
}

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  const value = at >= 0 ? process.argv[at + 1] : undefined;
  return value ?? fallback;
}

function positive(name: string, fallback: number): number {
  const value = Number(option(name, String(fallback)));
  if (!Number.isFinite(value) || value <= 0) {
    console.error(`--${name} must be a positive number`);
    process.exit(2);
  }
  return value;
}

const seconds = positive('seconds', 12);
const clients = Math.round(positive('clients', 64));
const outDir = resolve(option('out', 'bench/results/profile'));
const reads = process.argv.includes('--reads');
const seededDocuments = 1000;
const repo = resolve(import.meta.dirname, '..');

/** CPU time of a process so far, in ms (utime + stime from /proc; 10 ms clock ticks). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function label(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const where = url.replace(/^.*\/node_modules\//, 'npm:').replace(`file://${repo}/`, '').replace(`${repo}/`, '');
  return `${functionName || '(anonymous)'} ${where}${where === '' ? '' : `:${lineNumber + 1}`}`;
}

/** Self and inclusive sample shares per function (each function counted once per stack). */
function summarise(file: string, top: number): string[] {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; samples: number[] };
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const total = profile.samples.length;
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const node of profile.nodes) {
    const name = label(node);
    self.set(name, (self.get(name) ?? 0) + node.hitCount);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const ancestor = byId.get(id);
      if (ancestor === undefined) break;
      const key = label(ancestor);
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + node.hitCount);
    }
  }
  const rows = (map: Map<string, number>): string[] => [...map.entries()]
    .filter(([name]) => !name.startsWith('(root)'))
    .sort((a, b) => b[1] - a[1]).slice(0, top)
    .map(([name, hits]) => `  ${((100 * hits) / total).toFixed(1).padStart(5)}%  ${name}`);
  return [`${total} samples`, ' self:', ...rows(self), ' inclusive:', ...rows(inclusive)];
}

async function main(): Promise<void> {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const data = mkdtempSync(join(tmpdir(), 'understudy-profile-'));
  const ids = ['n1', 'n2', 'n3'];
  const ports = new Map<string, { client: number; peer: number }>();
  for (const id of ids) ports.set(id, { client: await freePort(), peer: await freePort() });
  const members = ids.map((id) => `${id}@127.0.0.1:${ports.get(id)?.peer}@http://127.0.0.1:${ports.get(id)?.client}`).join(',');
  const children = new Map<string, ChildProcess>();
  try {
    for (const id of ids) {
      const port = ports.get(id) as { client: number; peer: number };
      children.set(id, spawn(process.execPath, [
        '--cpu-prof', `--cpu-prof-dir=${join(outDir, id)}`, join(repo, 'bin/understudy.js'), 'start', '--id', id,
        '--data', join(data, id), '--client', `127.0.0.1:${port.client}`, '--peer', `127.0.0.1:${port.peer}`, '--members', members,
        '--exit-with-parent',
      ], { stdio: 'ignore', env: { ...process.env, UNDERSTUDY_SECRET: 'profile-secret-0123456789' } }));
    }
    let leader: string | null = null;
    const waitUntil = Date.now() + 20_000;
    while (leader === null && Date.now() < waitUntil) {
      await sleep(200);
      try {
        const view = await (await fetch(`http://127.0.0.1:${ports.get('n1')?.client}/v1/cluster`)).json() as { leaderId?: string | null };
        if (typeof view.leaderId === 'string') leader = view.leaderId;
      } catch {
        // not up yet
      }
    }
    if (leader === null) throw new Error('no leader within 20 s');
    const pool = new Pool(`http://127.0.0.1:${ports.get(leader)?.client}`, { connections: clients });
    const body = JSON.stringify({ name: 'x'.repeat(60), n: 1, tags: ['a', 'b'] });
    if (reads) {
      for (let i = 0; i < seededDocuments; i++) {
        const response = await pool.request({ method: 'PUT', path: `/v1/docs/profile/r${i}`, headers: { 'content-type': 'application/json' }, body });
        await response.body.dump();
        if (response.statusCode >= 300) throw new Error(`seeding r${i}: HTTP ${response.statusCode}`);
      }
    }
    const before = new Map(ids.map((id) => [id, cpuMs(children.get(id)?.pid as number)]));
    let done = 0;
    let failures = 0;
    let next = 0;
    const end = Date.now() + seconds * 1000;
    await Promise.all(Array.from({ length: clients }, async () => {
      while (Date.now() < end) {
        const response = reads
          ? await pool.request({ method: 'GET', path: `/v1/docs/profile/r${next++ % seededDocuments}?consistency=linearizable` })
          : await pool.request({ method: 'PUT', path: `/v1/docs/profile/w${next++}`, headers: { 'content-type': 'application/json' }, body });
        await response.body.dump();
        if (response.statusCode < 300) done++;
        else failures++;
      }
    }));
    await pool.close();
    const used = new Map(ids.map((id) => [id, cpuMs(children.get(id)?.pid as number) - (before.get(id) ?? 0)]));
    const what = reads ? 'read' : 'write';
    console.log(`leader ${leader}; ${clients} ${reads ? 'readers' : 'writers'} for ${seconds} s: ${(done / seconds).toFixed(0)} ${what}s/s, ${failures} failures`);
    for (const id of ids) console.log(`${id}${id === leader ? ' (leader)' : ''}: ${((used.get(id) ?? 0) / Math.max(1, done)).toFixed(3)} CPU ms per ${what}`);
  } finally {
    for (const child of children.values()) child.kill('SIGTERM');
    const exitBy = Date.now() + 10_000;
    while ([...children.values()].some((child) => child.exitCode === null && child.signalCode === null) && Date.now() < exitBy) await sleep(100);
    for (const child of children.values()) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(data, { recursive: true, force: true });
  }
  for (const id of ids) {
    const dir = join(outDir, id);
    const main = readdirSync(dir).filter((name) => name.endsWith('.cpuprofile')).map((name) => join(dir, name)).sort()[0];
    if (main === undefined) continue;
    console.log(`\n${id}: ${main}`);
    for (const line of summarise(main, 20)) console.log(line);
  }
}

await main();
