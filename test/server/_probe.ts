import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startServer } from '../../src/server/server.ts';
import { DEFAULTS } from '../../src/server/config.ts';

const dir = mkdtempSync(join(tmpdir(), 'us-probe-'));
const t0 = Date.now();
const server = await startServer({ ...DEFAULTS, id: 'n1', clusterId: 'test', dataDir: dir, clientHost: '127.0.0.1', clientPort: 0, peerHost: '127.0.0.1', peerPort: 0,
  members: [{ id: 'n1', peer: '127.0.0.1:1', client: 'http://127.0.0.1:1' }], bootstrapVoters: ['n1'], secret: 'test-secret-123', authToken: null, tickMs: 10, electionTimeoutTicks: 10, heartbeatIntervalTicks: 2 }, { logger: pino({ level: 'silent' }) });
while (server.node.core.role !== 'leader') await new Promise((r) => setTimeout(r, 5));
console.log('leader after', Date.now() - t0);
const show = async (o: any) => { const r = await server.app.inject(o); console.log(o.method ?? 'GET', o.url, r.statusCode, JSON.stringify(r.headers), r.body.slice(0, 400)); return r; };
const arg = process.argv[2] ?? '[]'; const cases = JSON.parse(arg.startsWith('@') ? (await import('node:fs')).readFileSync(arg.slice(1), 'utf8') : arg);
for (const c of cases) await show(c);
await server.stop();
rmSync(dir, { recursive: true, force: true });
