// Goal: importing the client loads no server code and no native module, so it can ship as a
// plain JavaScript dependency (undici, cockatiel, node built-ins); and the package's exports map
// ("." and "./client") resolves to it.
// Method: a fresh `node --import tsx` child imports the module through the package name and
// reports every module the import pulled in: ESM URLs via a registered resolve hook, CommonJS
// files via require.cache, native addons via a wrapped process.dlopen. A positive control
// imports the storage layer the same way and must show lmdb and a native addon, proving the
// detector sees them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURE = fileURLToPath(new URL('./fixtures/load_module.ts', import.meta.url));

interface Graph { target: string; esm: string[]; cjs: string[]; dlopened: string[]; exports: string[] }

function loadGraph(target: string): Graph {
  const child = spawnSync(process.execPath, ['--import', 'tsx', FIXTURE, target], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
  assert.equal(child.status, 0, `child failed: ${child.stderr}`);
  return JSON.parse(child.stdout) as Graph;
}

const FORBIDDEN_SOURCE = /\/src\/(server|storage|consensus|replica|documents|transport|sim|checkers|cli|shared)\//;
const FORBIDDEN_PACKAGE = /\/node_modules\/(lmdb|@lmdb|msgpackr|msgpackr-extract|fastify|@fastify|pino|prom-client|commander)\//;

for (const target of ['understudy/client', 'understudy']) {
  test(`module graph: importing '${target}' loads the client and no server or native module`, { timeout: 40_000 }, () => {
    const graph = loadGraph(target);
    assert.ok(graph.esm.some((url) => url.endsWith('/src/client/index.ts')), `the exports map resolves ${target} to src/client/index.ts`);
    assert.ok(graph.exports.includes('connect') && graph.exports.includes('UnderstudyClient') && graph.exports.includes('IndeterminateError'));
    const all = [...graph.esm, ...graph.cjs];
    assert.deepEqual(all.filter((file) => FORBIDDEN_SOURCE.test(file)), [], 'no server-side source module');
    assert.deepEqual(all.filter((file) => FORBIDDEN_PACKAGE.test(file)), [], 'no server-side package');
    assert.deepEqual(all.filter((file) => file.endsWith('.node')), [], 'no native addon file');
    assert.deepEqual(graph.dlopened, [], 'process.dlopen was never called');
    const clientSources = graph.esm.filter((url) => url.includes('/src/')).map((url) => url.replace(/^.*\/src\//, 'src/'));
    assert.ok(clientSources.every((file) => file.startsWith('src/client/')), `only client sources: ${clientSources.join(', ')}`);
    const packages = new Set(graph.cjs.concat(graph.esm).map((file) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(file)?.[1]).filter((name) => name !== undefined));
    for (const name of packages) assert.ok(['undici', 'cockatiel', 'tsx', 'esbuild', 'get-tsconfig', 'resolve-pkg-maps'].includes(name!), `unexpected package ${name}`);
    assert.ok(packages.has('undici') && packages.has('cockatiel'));
  });
}

test('module graph: the detector sees native modules (positive control: the storage layer loads lmdb)', { timeout: 40_000 }, () => {
  const graph = loadGraph(pathToFileURL(`${ROOT}src/storage/index.ts`).href);
  const all = [...graph.esm, ...graph.cjs, ...graph.dlopened];
  assert.ok(all.some((file) => /lmdb/.test(file)), 'lmdb appears in the graph');
  assert.ok(graph.dlopened.length > 0 || all.some((file) => file.endsWith('.node')), 'a native addon was loaded');
});
