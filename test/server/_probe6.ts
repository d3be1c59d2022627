import { request } from 'undici';
import { startTestServer } from './helpers.ts';
process.on('uncaughtException', (e) => console.log('UNCAUGHT', Date.now() - t0, e.message));
const t0 = Date.now();
const t = await startTestServer({}, 'p6');
await t.inject({ method: 'PUT', url: '/v1/docs/c/a', payload: { n: 1 } });
await t.inject({ method: 'PUT', url: '/v1/docs/c/b', payload: { n: 1 } });
const listeners = () => (t.server.node as any).changeListeners.size;
const mode = process.argv[2];
if (mode === 'limit') {
  const r = await request(`${t.server.clientUrl}/v1/changes?after=0&follow=true&limit=2`);
  console.log('text', JSON.stringify((await r.body.text()).slice(0, 40)), 'listeners', listeners());
  await new Promise((r) => setTimeout(r, 100));
  console.log('listeners after 100ms', listeners());
  await t.inject({ method: 'PUT', url: '/v1/docs/c/x', payload: { n: 1 } });
  await new Promise((r) => setTimeout(r, 100));
} else {
  const r = await request(`${t.server.clientUrl}/v1/changes?after=0&follow=true`);
  for await (const chunk of r.body) { console.log('chunk', String(chunk).length); break; }
  r.body.destroy();
  await new Promise((r) => setTimeout(r, 100));
  console.log('listeners after destroy', listeners());
}
const s = Date.now();
await t.stop();
console.log('stop took', Date.now() - s);
