/**
 * A tour of the client: every method of docs/client.md, runnable. It prints what each step
 * returns and throws if anything is not as documented (test/client/example.test.ts runs it).
 *
 *   UNDERSTUDY_URL='understudy://127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003' node --import tsx examples/tour.ts
 */
import { pathToFileURL } from 'node:url';
import {
  AlreadyExistsError, IndeterminateError, NotFoundError, UnderstudyClient, VersionConflictError,
  type ChangeRecord,
} from 'understudy/client';

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`tour: ${what}`);
}

export async function tour(connection: string, log: (line: string) => void = console.log): Promise<void> {
  // Connecting: create the client yourself to see the first leaderChanged, then ready().
  const client = new UnderstudyClient(connection);
  const leaders: string[] = [];
  client.on('leaderChanged', ({ leaderId, term }) => leaders.push(`${leaderId}@${term}`));
  await client.ready();
  check(leaders.length === 1, 'leaderChanged fired on discovery');
  log(`connected; leader ${client.leader?.id} (term ${client.leader?.term})`);
  const run = `tour-${Date.now()}`;
  try {
    // create
    const created = await client.create('todos', { title: 'buy milk', done: false });
    check(created.version === 1 && typeof created.id === 'string', 'create');
    log(`create -> id ${created.id}, version ${created.version}, token ${created.sessionToken}, key ${created.idempotencyKey}`);
    await client.create('todos', { title: 'fixed id' }, { id: `${run}-1` });
    const again = await client.create('todos', { title: 'fixed id' }, { id: `${run}-1` }).catch((error: unknown) => error);
    check(again instanceof AlreadyExistsError && again.currentVersion === 1, 'create with an existing id');

    // get
    const todo = await client.get<{ title: string; done?: boolean }>('todos', `${run}-1`);
    log(`get -> ${JSON.stringify(todo.body)} v${todo.version}, served by ${todo.meta.servedBy} (${todo.meta.consistency})`);
    await client.get('todos', `${run}-1`, { consistency: 'stale' });
    check(await client.get('todos', 'missing').catch((error: unknown) => error instanceof NotFoundError) === true, 'get missing');

    // put
    await client.put('todos', `${run}-1`, { title: 'fixed id', done: true });
    const renamed = await client.put('todos', `${run}-1`, { title: 'renamed', done: true }, { ifMatch: 2 });
    check(renamed.version === 3, 'put with ifMatch');
    await client.put('todos', `${run}-2`, { title: 'new' }, { ifNoneMatch: true });
    const stale = await client.put('todos', `${run}-1`, { title: 'stale' }, { ifMatch: 1 }).catch((error: unknown) => error);
    check(stale instanceof VersionConflictError && stale.currentVersion === 3, 'put with a stale ifMatch');
    log(`put -> v${renamed.version}; a stale ifMatch: ${(stale as Error).name} (currentVersion ${(stale as VersionConflictError).currentVersion})`);

    // patch
    await client.patch('todos', `${run}-1`, { done: false, tags: ['home'], note: null });
    const patched = await client.patch('todos', `${run}-1`, { done: true }, { ifMatch: 4 });
    check(patched.version === 5, 'patch');
    log(`patch -> ${JSON.stringify((await client.get('todos', `${run}-1`)).body)}`);

    // delete
    const removed = await client.delete('todos', `${run}-1`);
    const noop = await client.delete('todos', `${run}-1`);
    await client.delete('todos', `${run}-2`, { ifMatch: 1 });
    check(removed.deleted === true && noop.deleted === false && noop.version === null, 'delete');
    log(`delete -> deleted ${removed.deleted}; again: deleted ${noop.deleted}`);

    // list
    await client.batch(Array.from({ length: 12 }, (_, i) => ({ op: 'put' as const, collection: 'tour', id: `${run}-${String(i).padStart(2, '0')}`, body: { i } })));
    const ids: string[] = [];
    for await (const doc of client.list('tour', { prefix: run, limit: 5 })) ids.push(doc.id);
    const pages: number[] = [];
    for await (const page of client.list('tour', { prefix: run, limit: 5 }).pages()) pages.push(page.documents.length);
    const listing = client.list('tour', { prefix: run, limit: 5 });
    for await (const doc of listing) if (doc.id === `${run}-06`) break;
    const rest = await client.list('tour', { prefix: run, cursor: listing.position! }).toArray();
    check(ids.length === 12 && pages.join() === '5,5,2' && rest.length === 5, 'list');
    log(`list -> ${ids.length} documents in pages of ${pages.join(', ')}; resumed after ${listing.position}: ${rest.length} more`);

    // batch
    const batch = await client.batch([
      { op: 'put', collection: 'accounts', id: `${run}-a`, body: { balance: 50 } },
      { op: 'put', collection: 'accounts', id: `${run}-b`, body: { balance: 150 } },
      { op: 'create', collection: 'transfers', body: { from: 'a', to: 'b', amount: 50 } },
    ]);
    const failed = await client.batch([
      { op: 'put', collection: 'accounts', id: `${run}-a`, body: { balance: 0 }, ifMatch: 1 },
      { op: 'put', collection: 'accounts', id: `${run}-b`, body: { balance: 200 }, ifMatch: 9 },
    ]).catch((error: unknown) => error);
    check(batch.results.length === 3 && failed instanceof VersionConflictError && failed.details['opIndex'] === 1, 'batch');
    log(`batch -> ${batch.results.length} results at index ${batch.index}; a failing op: opIndex ${(failed as VersionConflictError).details['opIndex']}`);

    // session
    const session = client.session();
    await session.put('carts', `${run}-c1`, { items: ['book'] });
    const cart = await session.get<{ items: string[] }>('carts', `${run}-c1`);
    check(cart.body.items[0] === 'book' && cart.meta.consistency === 'session', 'session read');
    log(`session -> read its write from ${cart.meta.servedBy} with token ${session.token}`);

    // idempotency and IndeterminateError handling
    const key = `${run}-payment`;
    const paid = await client.create('payments', { amount: 42 }, { idempotencyKey: key });
    const repeat = await client.create('payments', { amount: 42 }, { idempotencyKey: key });
    check(repeat.duplicate && repeat.id === paid.id, 'idempotent retry');
    try {
      await client.create('payments', { amount: 7 }, { idempotencyKey: `${run}-other` });
    } catch (error) {
      if (error instanceof IndeterminateError) await client.create('payments', { amount: 7 }, { idempotencyKey: error.idempotencyKey! });
      else throw error;
    }
    log(`idempotency -> a repeat with key ${key} is a duplicate of ${paid.id}`);

    // changes
    const feed = client.changes({ after: paid.index - 1 });
    const seen: ChangeRecord[] = [];
    for await (const record of feed) {
      seen.push(record);
      if (seen.length === 2) break;
    }
    check(seen[0]?.index === paid.index && seen[1]!.index > paid.index, 'changes');
    log(`changes -> ${seen.map((record) => `${record.index}:${record.changes.map((change) => `${change.collection}/${change.id}`).join(',')}`).join(' ')}; resume with after=${feed.lastIndex}`);

    // cluster state
    const view = await client.cluster();
    const state = client.nodeState(view.leaderId!);
    check(state?.isLeader === true && state.breaker === 'closed', 'nodeState');
    log(`cluster -> leader ${view.leaderId}, term ${view.term}, ${view.members.length} members; ${client.nodes().map((node) => `${node.id}:${node.breaker}`).join(' ')}`);
  } finally {
    // close
    await client.close();
    log('closed');
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await tour(process.env['UNDERSTUDY_URL'] ?? 'understudy://127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003');
}
