/**
 * Operator and data commands that talk to any node over the HTTP API: `status`, `switchover`,
 * `failover --force`, `member`, `get`, `put`, `patch`, `delete`, `list`, `watch`. Every failure is one clear line on stderr
 * and a non-zero exit code.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { request } from 'undici';
import { chooseSwitchoverTarget, SwitchoverRefused, waitForNewLeader, SWITCHOVER_DEFAULTS } from '../server/switchover.ts';

export class CliError extends Error {
  override readonly name = 'CliError';
}

interface GlobalOptions {
  url: string;
  token?: string;
}

function urlOption(value: string): string {
  const url = /^https?:\/\//.test(value) ? value : `http://${value}`;
  try {
    new URL(url);
  } catch {
    throw new InvalidArgumentError('expected a node address like 127.0.0.1:7001');
  }
  return url.replace(/\/$/, '');
}

async function call(options: GlobalOptions, method: string, path: string, body?: unknown, headers: Record<string, string> = {}, timeoutMs = 10_000): Promise<{ status: number; body: any; headers: Record<string, unknown> }> {
  const allHeaders: Record<string, string> = { ...headers };
  if (body !== undefined) allHeaders['content-type'] = 'application/json';
  if (options.token !== undefined) allHeaders['authorization'] = `Bearer ${options.token}`;
  let response;
  try {
    response = await request(`${options.url}${path}`, {
      method: method as 'GET', headers: allHeaders, body: body === undefined ? null : JSON.stringify(body),
      headersTimeout: timeoutMs, bodyTimeout: timeoutMs,
    });
  } catch (error) {
    throw new CliError(`cannot reach ${options.url}: ${(error as Error).message}`);
  }
  const text = await response.body.text();
  let parsed: unknown = text;
  try {
    parsed = text === '' ? null : JSON.parse(text);
  } catch {
    // plain text
  }
  return { status: response.statusCode, body: parsed, headers: response.headers };
}

function expectOk(result: { status: number; body: any }): any {
  if (result.status >= 200 && result.status < 300) return result.body;
  const body = result.body as { code?: string; message?: string } | string;
  if (typeof body === 'object' && body !== null && body.code !== undefined) throw new CliError(`${body.code}: ${body.message ?? ''} (HTTP ${result.status})`);
  throw new CliError(`HTTP ${result.status}: ${typeof body === 'string' ? body.slice(0, 200) : JSON.stringify(body)}`);
}

function parseJsonArgument(text: string, what: string): unknown {
  const source = text.startsWith('@') ? readFileSync(text.slice(1), 'utf8') : text;
  try {
    return JSON.parse(source);
  } catch (error) {
    throw new CliError(`${what} is not valid JSON: ${(error as Error).message}`);
  }
}

function pad(value: unknown, width: number): string {
  const text = value === null || value === undefined ? '-' : String(value);
  return text.length >= width ? text : text + ' '.repeat(width - text.length);
}

export function renderStatus(view: any): string {
  const lines = [
    `leader: ${view.leaderId ?? '(none)'}   term: ${view.term}   commit: ${view.commitIndex}   (from ${view.servedBy ?? view.id})`,
    '',
    `${pad('NODE', 6)}${pad('ROLE', 10)}${pad('VOTER', 7)}${pad('MATCH', 9)}${pad('LAG', 7)}${pad('LAG MS', 8)}${pad('LINK', 6)}CLIENT`,
  ];
  for (const member of view.members as any[]) {
    const link = member.connected === null ? '-' : member.connected ? 'up' : 'down';
    lines.push(`${pad(member.id, 6)}${pad(member.role, 10)}${pad(member.voter ? 'yes' : 'no', 7)}${pad(member.matchIndex, 9)}${pad(member.lagEntries, 7)}${pad(member.lagMs, 8)}${pad(link, 6)}${member.client ?? '-'}`);
  }
  return lines.join('\n');
}

async function clusterView(options: GlobalOptions): Promise<any> {
  return expectOk(await call(options, 'GET', '/v1/cluster'));
}

export function registerAdminCommands(program: Command, run: (action: () => Promise<void>) => Promise<void>): void {
  const withGlobals = (command: Command): Command => command
    .option('--url <address>', 'any node of the cluster', urlOption, 'http://127.0.0.1:7001')
    .option('--token <token>', 'bearer token (or UNDERSTUDY_TOKEN)');
  const globals = (flags: { url: string; token?: string }): GlobalOptions => {
    const token = flags.token ?? process.env['UNDERSTUDY_TOKEN'];
    return token === undefined ? { url: flags.url } : { url: flags.url, token };
  };

  withGlobals(program.command('status').description('members, roles, replication lag and the leader'))
    .option('--json', 'print JSON')
    .option('--watch [seconds]', 'refresh in place every N seconds (default 1)')
    .action((flags) => run(async () => {
      const options = globals(flags);
      const print = async (): Promise<void> => {
        const view = await clusterView(options);
        if (flags.json === true) process.stdout.write(`${JSON.stringify(view, null, 2)}\n`);
        else process.stdout.write(`${renderStatus(view)}\n`);
      };
      if (flags.watch === undefined) return print();
      const seconds = flags.watch === true ? 1 : Number(flags.watch);
      if (!Number.isFinite(seconds) || seconds <= 0) throw new CliError('--watch takes a positive number of seconds');
      for (;;) {
        process.stdout.write('\x1b[2J\x1b[H');
        await print().catch((error: Error) => process.stdout.write(`${error.message}\n`));
        await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
      }
    }));

  withGlobals(program.command('switchover').description('planned failover: move leadership to a caught-up voter'))
    .option('--to <node>', 'the new leader (default: the most caught-up healthy voter)')
    .option('--max-lag <entries>', 'refuse when the target is further behind than this', String(SWITCHOVER_DEFAULTS.maxLagEntries))
    .option('--timeout <ms>', 'how long to wait for the new leader', String(SWITCHOVER_DEFAULTS.timeoutMs))
    .action((flags) => run(async () => {
      const options = globals(flags);
      for (const [flag, value] of [['--max-lag', flags.maxLag], ['--timeout', flags.timeout]] as const) {
        if (!/^\d+$/.test(String(value)) || Number(value) > 3_600_000) throw new CliError(`${flag} must be a whole number (got ${JSON.stringify(value)})`);
      }
      if (Number(flags.timeout) < 1) throw new CliError('--timeout must be at least 1 ms');
      const view = await clusterView(options);
      // Target choice and refusals are shared with POST /v1/admin/switchover (the dashboard).
      let target;
      try {
        target = chooseSwitchoverTarget(view, { to: flags.to, maxLagEntries: Number(flags.maxLag) });
      } catch (error) {
        if (error instanceof SwitchoverRefused) throw new CliError(error.message);
        throw error;
      }
      const leaderUrl = view.leaderClientUrl ?? options.url;
      const leader = { ...options, url: leaderUrl };
      // Probe writes while leadership moves, to report how long writes paused.
      // One probe document, rewritten in a loop and deleted afterwards.
      const probePath = `/v1/docs/understudy-switchover-probe/${randomUUID()}`;
      let probing = true;
      let lastOk = performance.now();
      let longestPauseMs = 0;
      const probe = (async () => {
        while (probing) {
          const key = randomUUID();
          const result = await call(options, 'PUT', probePath, { at: Date.now() }, { 'idempotency-key': key }, 2_000).catch(() => null);
          if (result !== null && result.status < 300) {
            const now = performance.now();
            longestPauseMs = Math.max(longestPauseMs, now - lastOk);
            lastOk = now;
          }
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      })();
      const started = performance.now();
      try {
        expectOk(await call(leader, 'POST', '/v1/admin/transfer', { to: target.id }));
        const remainingMs = started + Number(flags.timeout) - performance.now();
        const moved = await waitForNewLeader(async () => (await clusterView(options)).leaderId, target.id, remainingMs);
        if (!moved) throw new CliError(`leadership did not move to ${target.id} within ${flags.timeout} ms (the transfer aborts by itself; ${view.leaderId} keeps leading)`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      } finally {
        probing = false;
        await probe;
        await call(options, 'DELETE', probePath).catch(() => null);
      }
      process.stdout.write(`leadership moved ${view.leaderId} -> ${target.id} in ${Math.round(performance.now() - started)} ms; longest pause between successful writes ${Math.round(longestPauseMs)} ms\n`);
    }));

  withGlobals(program.command('failover').description('FORCED failover when a majority of voters is lost for good (unsafe; see docs/operations.md)'))
    .option('--force', 'required: this is not the safe path (for a planned change use switchover)')
    .option('--yes', 'act; without it, only print the plan and its data-loss risk')
    .action((flags) => run(async () => {
      if (flags.force !== true) {
        throw new CliError('failover needs --force: it makes the node at --url the only voter, and can lose acknowledged writes. For a planned change use `understudy switchover`; a cluster that still has a majority elects a leader by itself');
      }
      const options = globals(flags);
      const plan = expectOk(await call(options, 'GET', '/v1/admin/force-failover'));
      const lines = [
        `forced failover onto ${plan.node} (term ${plan.term}, role ${plan.role}; log ends at ${plan.lastIndex} term ${plan.lastTerm}; committed ${plan.commitIndex})`,
        `voters: ${plan.voters.map((voter: any) => `${voter.id} ${voter.reachable ? 'reachable' : `unreachable${voter.lastHeardMsAgo === null ? '' : ` (last heard ${voter.lastHeardMsAgo} ms ago)`}`}`).join(', ')}`,
        'data-loss risk:',
        ...plan.risk.map((line: string) => `  - ${line}`),
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
      if (plan.refusal !== null) throw new CliError(`refused: ${plan.refusal}`);
      // The most up-to-date survivor must be the one forced (Raft §5.4.1 order), or more is lost.
      const local = expectOk(await call(options, 'GET', '/v1/cluster?local=true'));
      for (const other of local.members ?? []) {
        if (other.id === plan.node || typeof other.client !== 'string') continue;
        const theirs = await call({ ...options, url: other.client }, 'GET', '/v1/admin/force-failover', undefined, {}, 1_000).catch(() => null);
        if (theirs === null || theirs.status !== 200) continue;
        const them = theirs.body;
        if (them.lastTerm > plan.lastTerm || (them.lastTerm === plan.lastTerm && them.lastIndex > plan.lastIndex)) {
          throw new CliError(`refused: ${other.id} (${other.client}) is reachable and more up to date (log ends at ${them.lastIndex} term ${them.lastTerm}); force the failover there instead`);
        }
      }
      if (flags.yes !== true) throw new CliError(`nothing changed: re-run with --yes to make ${plan.node} the only voter`);
      const result = expectOk(await call(options, 'POST', '/v1/admin/force-failover', { confirm: plan.node }, {}, 15_000));
      if (result.ok !== true) throw new CliError(`${plan.node} was forced but is not leading yet (role ${result.role ?? '?'}); check \`understudy status --url ${options.url}\``);
      process.stdout.write(`${plan.node} leads alone at term ${result.term} (commit ${result.commitIndex}). Next: wipe the data of the lost members, then add nodes back with \`understudy member add\` and \`member promote\`.\n`);
    }));

  const member = program.command('member').description('membership changes, one server at a time');
  withGlobals(member.command('add').description('add a node as a learner (it receives the log, does not vote)'))
    .requiredOption('--id <id>', 'the new node id')
    .requiredOption('--peer <host:port>', 'its peer address')
    .requiredOption('--client <url>', 'its client URL, http://host:port')
    .action((flags) => run(async () => {
      const result = expectOk(await call(globals(flags), 'POST', '/v1/admin/members', { action: 'add', id: flags.id, peer: flags.peer, client: flags.client }));
      process.stdout.write(`added ${flags.id} as a learner at index ${result.index}; promote it once caught up (understudy status shows its lag)\n`);
    }));
  withGlobals(member.command('promote <id>').description('make a caught-up learner a voter'))
    .action((id: string, flags) => run(async () => {
      const result = expectOk(await call(globals(flags), 'POST', '/v1/admin/members', { action: 'promote', id }));
      process.stdout.write(`${id} is a voter (index ${result.index}); voters: ${result.membership.voters.join(', ')}\n`);
    }));
  withGlobals(member.command('remove <id>').description('remove a node (refused if it would lose quorum, or if it leads)'))
    .action((id: string, flags) => run(async () => {
      const result = expectOk(await call(globals(flags), 'POST', '/v1/admin/members', { action: 'remove', id }));
      process.stdout.write(`removed ${id} (index ${result.index}); voters: ${result.membership.voters.join(', ')}\n`);
    }));

  const docPath = (collection: string, id?: string): string =>
    `/v1/docs/${encodeURIComponent(collection)}${id === undefined ? '' : `/${encodeURIComponent(id)}`}`;

  withGlobals(program.command('get <collection> <id>').description('read one document'))
    .option('--consistency <level>', 'linearizable | session | stale', 'linearizable')
    .action((collection: string, id: string, flags) => run(async () => {
      const body = expectOk(await call(globals(flags), 'GET', `${docPath(collection, id)}?consistency=${encodeURIComponent(flags.consistency)}`));
      process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
    }));

  withGlobals(program.command('put <collection> <id> <json>').description('create or replace a document (JSON text or @file)'))
    .option('--if-match <version>', 'only if the document has this version')
    .option('--create-only', 'only if the document does not exist')
    .option('--ack <level>', 'leader | majority | all', 'majority')
    .action((collection: string, id: string, json: string, flags) => run(async () => {
      const headers: Record<string, string> = { 'idempotency-key': randomUUID() };
      if (flags.ifMatch !== undefined) headers['if-match'] = String(flags.ifMatch);
      if (flags.createOnly === true) headers['if-none-match'] = '*';
      const body = expectOk(await call(globals(flags), 'PUT', `${docPath(collection, id)}?ack=${encodeURIComponent(flags.ack)}`, parseJsonArgument(json, 'the document'), headers));
      process.stdout.write(`${JSON.stringify(body)}\n`);
    }));

  withGlobals(program.command('patch <collection> <id> <json>').description('JSON Merge Patch a document'))
    .option('--if-match <version>', 'only if the document has this version')
    .action((collection: string, id: string, json: string, flags) => run(async () => {
      const headers: Record<string, string> = { 'idempotency-key': randomUUID() };
      if (flags.ifMatch !== undefined) headers['if-match'] = String(flags.ifMatch);
      const body = expectOk(await call(globals(flags), 'PATCH', docPath(collection, id), parseJsonArgument(json, 'the patch'), headers));
      process.stdout.write(`${JSON.stringify(body)}\n`);
    }));

  withGlobals(program.command('delete <collection> <id>').description('delete a document'))
    .option('--if-match <version>', 'only if the document has this version')
    .action((collection: string, id: string, flags) => run(async () => {
      const headers: Record<string, string> = { 'idempotency-key': randomUUID() };
      if (flags.ifMatch !== undefined) headers['if-match'] = String(flags.ifMatch);
      const body = expectOk(await call(globals(flags), 'DELETE', docPath(collection, id), undefined, headers));
      process.stdout.write(`${JSON.stringify(body)}\n`);
    }));

  withGlobals(program.command('list <collection>').description('list documents (all pages)'))
    .option('--prefix <prefix>', 'ids starting with this')
    .option('--limit <n>', 'at most this many documents')
    .option('--consistency <level>', 'linearizable | session | stale', 'linearizable')
    .action((collection: string, flags) => run(async () => {
      const limit = flags.limit === undefined ? Infinity : Number(flags.limit);
      if (!(limit > 0)) throw new CliError('--limit takes a positive integer');
      let cursor: string | null = null;
      let printed = 0;
      do {
        const query = new URLSearchParams({ consistency: flags.consistency, limit: String(Math.min(1000, limit - printed)) });
        if (flags.prefix !== undefined) query.set('prefix', flags.prefix);
        if (cursor !== null) query.set('cursor', cursor);
        const page = expectOk(await call(globals(flags), 'GET', `${docPath(collection)}?${query.toString()}`));
        for (const doc of page.documents) {
          process.stdout.write(`${JSON.stringify(doc)}\n`);
          printed++;
        }
        cursor = page.nextCursor;
      } while (cursor !== null && printed < limit);
    }));

  withGlobals(program.command('watch').description('follow the change feed (NDJSON)'))
    .option('--after <index>', 'start after this log index', '0')
    .action((flags) => run(async () => {
      const options = globals(flags);
      if (!/^\d+$/.test(flags.after)) throw new CliError('--after takes a log index');
      const headers: Record<string, string> = options.token === undefined ? {} : { authorization: `Bearer ${options.token}` };
      const response = await request(`${options.url}/v1/changes?after=${flags.after}&follow=true`, { headers, bodyTimeout: 0 })
        .catch((error: Error) => { throw new CliError(`cannot reach ${options.url}: ${error.message}`); });
      if (response.statusCode !== 200) expectOk({ status: response.statusCode, body: await response.body.json().catch(() => null) });
      for await (const chunk of response.body) process.stdout.write(chunk as Buffer);
    }));
}
