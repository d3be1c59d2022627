/**
 * Micro-benchmark of the document state machine's apply path, as a node runs it: decode the
 * command from the entry bytes and apply it to an LMDB document store, 25 entries per batch (one
 * Ready under load). Prints applies per second; run with `node --cpu-prof --import tsx` to profile.
 *   npx tsx bench/micro/apply.ts [entries=40000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyCommand, decodeCommand, encodeCommand, prepareSingle, resolveDocumentOptions } from '../../src/documents/index.ts';
import { LmdbDocumentStore } from '../../src/storage/index.ts';

const total = Number(process.argv[2] ?? 40_000);
const perBatch = 25;
const dir = mkdtempSync(join(tmpdir(), 'understudy-apply-'));
const store = LmdbDocumentStore.open(join(dir, 'documents'));
// Resolved once, as the server does (resolving per apply would be measured otherwise).
const options = resolveDocumentOptions({});
const body = { name: 'x'.repeat(60), n: 1, tags: ['a', 'b'] };
const entries: Uint8Array[] = [];
for (let i = 0; i < total; i += 1) {
  const prepared = prepareSingle({ action: 'put', collection: 'bench', id: `w${i}`, body }, 1_700_000_000_000 + i, { requestId: `r${i}` });
  if (!prepared.ok) throw new Error(JSON.stringify(prepared.error));
  entries.push(encodeCommand(prepared.value));
}
const started = performance.now();
for (let i = 0; i < total; i += perBatch) {
  store.batch(() => {
    for (let j = i; j < Math.min(total, i + perBatch); j += 1) {
      const decoded = decodeCommand(entries[j] as Uint8Array);
      if (!decoded.ok) throw new Error(JSON.stringify(decoded.error));
      const result = applyCommand(store, decoded.command, { index: j + 1, term: 1 }, options);
      if (result.status !== 'applied') throw new Error(JSON.stringify(result));
    }
  });
}
const seconds = (performance.now() - started) / 1000;
console.log(`${total} applies in ${seconds.toFixed(2)} s: ${(total / seconds).toFixed(0)} applies/s`);
await store.close();
rmSync(dir, { recursive: true, force: true });
