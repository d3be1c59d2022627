import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request as httpRequest } from 'node:http';
import { pino } from 'pino';
import { startServer } from '../../src/server/server.ts';
import { DEFAULTS } from '../../src/server/config.ts';

const dir = mkdtempSync(join(tmpdir(), 'us-probe-'));
const server = await startServer({ ...DEFAULTS, id: 'n1', clusterId: 'test', dataDir: dir, clientHost: '127.0.0.1', clientPort: 0, peerHost: '127.0.0.1', peerPort: 0,
  members: [{ id: 'n1', peer: '127.0.0.1:1', client: 'http://127.0.0.1:1' }], bootstrapVoters: ['n1'], secret: 'test-secret-123', authToken: 'tok', tickMs: 10, electionTimeoutTicks: 10, heartbeatIntervalTicks: 2, bodyBytesMax: 1024 }, { logger: pino({ level: 'silent' }) });
while (server.node.core.role !== 'leader') await new Promise((r) => setTimeout(r, 5));
const port = new URL(server.clientUrl).port;
function raw(method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<void> {
  return new Promise((resolve) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let data = ''; res.on('data', (c) => data += c); res.on('end', () => { console.log(method, path, res.statusCode, data.slice(0, 300)); resolve(); });
    });
    req.on('error', (e) => { console.log(method, path, 'ERR', e.message); resolve(); });
    if (body !== undefined) req.write(body);
    req.end();
  });
}
const A = { authorization: 'Bearer tok' };
const J = { ...A, 'content-type': 'application/json' };
await raw('GET', '/v1/health/../docs/users/a');
await raw('GET', '/v1/health/%2E%2E/docs/users/a');
await raw('GET', '/v1/health/..%2Fdocs/users/a');
await raw('PUT', '/v1/health/../../v1/docs/users/a', { 'content-type': 'application/json' }, '{"a":1}');
await raw('GET', '/v1/docs/users/a');
await raw('GET', '/metrics');
await raw('GET', '/v1/health/ready');
await raw('PUT', '/v1/docs/users/..', J, '{"a":1}');
await raw('PUT', '/v1/docs/users/%2E%2E', J, '{"a":1}');
await raw('PUT', '/v1/docs/users/.', J, '{"a":1}');
await raw('PUT', '/v1/docs/users/x', J, JSON.stringify({ a: 'x'.repeat(2000) }));
await raw('PUT', '/v1/docs/users/x', J, JSON.stringify({ a: 'x'.repeat(900) }));
await raw('PATCH', '/v1/docs/users/x', J, JSON.stringify({ b: 'x'.repeat(900) }));
let deep = '1'; for (let i = 0; i < 33; i++) deep = `{"a":${deep}}`;
await raw('PUT', '/v1/docs/users/d', J, deep);
let deep2 = '1'; for (let i = 0; i < 32; i++) deep2 = `{"a":${deep2}}`;
await raw('PUT', '/v1/docs/users/d', J, deep2);
await raw('PUT', '/v1/docs/users/d', J, '['.repeat(1000) + ']'.repeat(1000));
await raw('PUT', '/v1/docs/users/d', { ...J, 'content-length': '5' }, '{"a":1}xx');
await raw('PUT', '/v1/docs/users/d', { ...J, 'transfer-encoding': 'chunked' }, '{"a":1}');
await server.stop();
// bigger server for very deep
rmSync(dir, { recursive: true, force: true });
