import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startServer } from '../../src/server/server.ts';
import { DEFAULTS } from '../../src/server/config.ts';

const dir = mkdtempSync(join(tmpdir(), 'us-probe-'));
const server = await startServer({ ...DEFAULTS, id: 'n1', clusterId: 'test', dataDir: dir, clientHost: '127.0.0.1', clientPort: 0, peerHost: '127.0.0.1', peerPort: 0,
  members: [{ id: 'n1', peer: '127.0.0.1:1', client: 'http://127.0.0.1:1' }, { id: 'n2', peer: '127.0.0.1:9', client: 'http://127.0.0.1:9' }], bootstrapVoters: ['n1', 'n2'], secret: 'test-secret-123', authToken: null, tickMs: 10, electionTimeoutTicks: 10, heartbeatIntervalTicks: 2 }, { logger: pino({ level: 'silent' }) });
await new Promise((r) => setTimeout(r, 400));
for (const o of [
  { method: 'PUT', url: '/v1/docs/c/a', payload: { a: 1 } },
  { method: 'POST', url: '/v1/batch', payload: { ops: [] } },
  { method: 'PUT', url: '/v1/docs/_c/a', payload: { a: 1 } },
  { url: '/v1/docs/c/a?timeoutMs=200' },
  { url: '/v1/docs/c/a?consistency=stale' },
  { url: '/v1/docs/c?consistency=session' },
  { url: '/v1/health/leader' }, { url: '/v1/health/replica' }, { url: '/v1/health/ready' }, { url: '/v1/cluster' }, { url: '/v1/changes' },
] as any[]) { const t = Date.now(); const r = await server.app.inject(o); console.log(o.method ?? 'GET', o.url, r.statusCode, Date.now() - t, JSON.stringify(r.headers['retry-after']), r.body.slice(0, 300)); }
await server.stop();
rmSync(dir, { recursive: true, force: true });
