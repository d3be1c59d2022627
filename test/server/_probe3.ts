import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { pino } from 'pino';
import { startServer } from '../../src/server/server.ts';
import { DEFAULTS } from '../../src/server/config.ts';

const dir = mkdtempSync(join(tmpdir(), 'us-probe-'));
const server = await startServer({ ...DEFAULTS, id: 'n1', clusterId: 'test', dataDir: dir, clientHost: '127.0.0.1', clientPort: 0, peerHost: '127.0.0.1', peerPort: 0,
  members: [{ id: 'n1', peer: '127.0.0.1:1', client: 'http://127.0.0.1:1' }], bootstrapVoters: ['n1'], secret: 'test-secret-123', authToken: null, tickMs: 10, electionTimeoutTicks: 10, heartbeatIntervalTicks: 2 }, { logger: pino({ level: 'silent' }) });
while (server.node.core.role !== 'leader') await new Promise((r) => setTimeout(r, 5));
await server.app.inject({ method: 'PUT', url: '/v1/docs/c/a', payload: { n: 1 } });
const fmt = process.argv[2] ?? 'ndjson';
const res = await request(`${server.clientUrl}/v1/changes?after=0&follow=true&format=${fmt}`);
console.log('status', res.statusCode, res.headers['content-type']);
let buf = '';
const t0 = Date.now();
setTimeout(async () => { const r = await server.app.inject({ method: 'PUT', url: '/v1/docs/c/b', payload: { n: 2 } }); console.log('write', r.statusCode, Date.now() - t0); }, 100);
const timer = setTimeout(() => { console.log('TIMEOUT; got:', JSON.stringify(buf)); res.body.destroy(); }, 1500);
try {
  for await (const chunk of res.body) {
    buf += chunk.toString();
    console.log('chunk at', Date.now() - t0, JSON.stringify(chunk.toString()).slice(0, 150));
    if (buf.includes('"id":"b"')) { res.body.destroy(); break; }
  }
} catch (e) { console.log('err', (e as Error).message); }
clearTimeout(timer);
await server.stop();
rmSync(dir, { recursive: true, force: true });
console.log('stopped');
