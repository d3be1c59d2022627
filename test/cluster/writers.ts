/**
 * Concurrent writers for cluster tests: each writes unique documents through a random running
 * node (followers forward to the leader) and retries a failed write with the same
 * Idempotency-Key until it is acknowledged or its time budget runs out. A write counts as
 * acknowledged only on a 2xx answer.
 */
import { randomUUID } from 'node:crypto';
import { http, type ProcessCluster } from './process_cluster.ts';

export interface WriteLoad {
  /** id -> the acknowledgement the write got */
  readonly acked: Map<string, { ack: string; at: number; index: number }>;
  readonly failures: string[];
  attempts: number;
  stop(): Promise<void>;
}

export function startWriters(cluster: ProcessCluster, options: {
  writers: number;
  collection: string;
  /** The acknowledgement level of writer i (default: majority). */
  ackOf?: (writer: number) => 'majority' | 'all' | 'leader';
  retryBudgetMs?: number;
}): WriteLoad {
  let running = true;
  const load: WriteLoad = {
    acked: new Map(),
    failures: [],
    attempts: 0,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
  const budget = options.retryBudgetMs ?? 15_000;
  const loop = async (writer: number): Promise<void> => {
    for (let seq = 0; running; seq++) {
      const id = `w${writer}-${seq}`;
      const key = randomUUID();
      const ack = options.ackOf?.(writer) ?? 'majority';
      const deadline = Date.now() + budget;
      for (;;) {
        const targets = cluster.running();
        const target = targets[Math.floor(Math.random() * targets.length)];
        load.attempts++;
        try {
          if (target === undefined) throw new Error('no running node');
          const result = await http('PUT', `${target.clientUrl}/v1/docs/${options.collection}/${id}?ack=${ack}`, { writer, seq }, { 'idempotency-key': key }, 12_000);
          if (result.status >= 200 && result.status < 300) {
            load.acked.set(id, { ack, at: Date.now(), index: result.body.index });
            break;
          }
          if (result.status < 500) {
            load.failures.push(`${id}: ${result.status} ${JSON.stringify(result.body)}`);
            break;
          }
        } catch {
          // connection refused or reset: the node died; retry elsewhere with the same key
        }
        if (Date.now() > deadline) {
          load.failures.push(`${id}: not acknowledged within ${budget} ms`);
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 30));
      }
    }
  };
  const loops = Array.from({ length: options.writers }, (_, writer) => loop(writer));
  return load;
}

/** Every document id in a collection, read with the given consistency from one node. */
export async function listAll(url: string, collection: string, consistency = 'linearizable'): Promise<Map<string, any>> {
  const out = new Map<string, any>();
  let cursor: string | null = null;
  for (let page = 0; page < 10_000; page++) {
    const query = `limit=1000&consistency=${consistency}${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`;
    const result = await http('GET', `${url}/v1/docs/${collection}?${query}`);
    if (result.status !== 200) throw new Error(`list failed: ${result.status} ${JSON.stringify(result.body)}`);
    for (const doc of result.body.documents) out.set(doc.id, doc);
    cursor = result.body.nextCursor;
    if (cursor === null) return out;
  }
  throw new Error('list did not end');
}

export { randomUUID };
