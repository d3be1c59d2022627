/**
 * Client workloads over plain HTTP, recording every operation in the history.
 *
 * Register workload: several logical client processes, each with at most one op open, do reads,
 * writes and compare-and-set on a handful of keys (documents `{ "v": <string> }`). Each op goes
 * to a random node that has a process (followers forward writes; a paused node just hangs). Every
 * written value is unique, so the checker can tell writes apart. Keys are retired after a number
 * of ops and replaced by fresh ones, which keeps each key's history small for the checker.
 * - read: `GET` (linearizable). 200 → ok with body.v, 404 NOT_FOUND → ok with null; anything
 *   else, including a timeout, → fail (a read has no effect).
 * - write: `PUT` with `{v}`; classified by http.ts `classifyWrite` (2xx ok, definite rejection
 *   fail, anything uncertain info).
 * - cas(expected → new): a linearizable `GET`; if the value is not `expected`, the cas fails
 *   without writing; otherwise `PUT` with `If-Match: <the version read>` (or `If-None-Match: *`
 *   when expected is null). The conditional PUT is the linearization point: versions only grow
 *   (nothing deletes), so the version read still holds `expected` when the PUT applies. 412/404
 *   → fail. With ack=leader a 202 comes before the condition is checked, so it is info.
 *
 * Set workload: processes add unique elements (`PUT /v1/docs/<set>/<id>` with an Idempotency-Key,
 * retried with the same key after an uncertain or rejected attempt until the op's budget runs
 * out), then one final linearizable read of the whole collection (`read-all`).
 * An add is ok if any attempt got a 2xx, info if none did but some attempt was uncertain, fail if
 * every attempt was definitely rejected.
 */
import type { Prng } from '../shared/prng.ts';
import type { ChaosCluster, ChaosNode } from './cluster.ts';
import { sleep } from './cluster.ts';
import type { HistoryRecorder } from './history.ts';
import { classifyWrite, describeAnswer, type HttpAnswer, type HttpClient } from './http.ts';

/** The `error` annotation of a cas that did not write because the value was not the expected one. */
export const MISMATCH = 'mismatch';

/**
 * The `error` annotation of a register write or cas answered `202 Accepted` (ack=leader): the
 * leader stored it but it has not taken effect (docs/api.md: not yet replicated, committed or
 * applied; conditions not yet evaluated), and it never will if the leader fails first. In the
 * register history it is `info` — it may take effect later or never — so the linearizability
 * check tests what ack=leader promises. Reports count it as an acknowledged write; set adds
 * answered 202 are `ok`, and the set check counts those that were lost.
 */
export const ACCEPTED = '202 accepted';

/** A register write's outcome: a 202 is info (see ACCEPTED). */
function registerWriteOutcome(answer: HttpAnswer): { verdict: 'ok' | 'fail' | 'info'; error: string } {
  const verdict = classifyWrite(answer);
  if (verdict === 'ok' && answer.kind === 'response' && answer.status === 202) {
    return { verdict: 'info', error: `${ACCEPTED} (ack=leader): takes effect later, or never if the leader fails first` };
  }
  return { verdict, error: describeAnswer(answer) };
}

export type AckLevel = 'leader' | 'majority' | 'all';

export interface WorkloadContext {
  readonly cluster: ChaosCluster;
  readonly recorder: HistoryRecorder;
  readonly http: HttpClient;
  readonly ack: AckLevel;
  /** Budget of one register op (a cas shares it between its read and its write). */
  readonly opTimeoutMs: number;
  /** Called with every answer that was not a success (for debugging output). */
  readonly onAnswer?: (what: string, answer: HttpAnswer) => void;
}

function pickTarget(cluster: ChaosCluster, random: Prng): ChaosNode | null {
  const nodes = cluster.reachable();
  return nodes.length === 0 ? null : random.pick(nodes);
}

/** Server-side timeout slightly under the client's, so the server usually answers first. */
function serverTimeout(clientMs: number): number {
  return Math.max(1, Math.floor(clientMs - Math.min(500, clientMs / 5)));
}

export interface RegisterWorkloadOptions {
  readonly processes: number;
  /** First process number (processes are numbered from here). */
  readonly firstProcess: number;
  /** Keys open at any time. */
  readonly keys: number;
  /** Ops on one key before it is replaced by a fresh key. */
  readonly opsPerKey: number;
  readonly collection: string;
  readonly readFraction: number;
  readonly writeFraction: number;
  /** Max pause between two ops of one process (uniform in [0, thinkMs]). */
  readonly thinkMs: number;
  /** Pause after an unsuccessful op (uniform in the range), ms. */
  readonly backoffMs: readonly [number, number];
}

export class RegisterWorkload {
  private running = false;
  private loops: Promise<void>[] = [];
  private readonly active: { name: string; ops: number }[] = [];
  private nextKey = 0;
  /** Values written to each key recently, for cas expectations. */
  private readonly recent = new Map<string, string[]>();

  constructor(
    private readonly ctx: WorkloadContext,
    private readonly options: RegisterWorkloadOptions,
    private readonly random: Prng,
  ) {
    for (let i = 0; i < options.keys; i++) this.active.push({ name: this.freshKey(), ops: 0 });
  }

  private freshKey(): string {
    return `r${this.nextKey++}`;
  }

  start(): void {
    this.running = true;
    this.loops = Array.from({ length: this.options.processes }, (_, i) => this.loop(this.options.firstProcess + i, this.random.fork(`register-${i}`)));
  }

  /** Stops issuing ops and waits for the open ones (each is bounded by the op timeout). */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  private pickKey(random: Prng): string {
    const slot = random.int(0, this.active.length - 1);
    const key = this.active[slot]!;
    key.ops++;
    if (key.ops >= this.options.opsPerKey) this.active[slot] = { name: this.freshKey(), ops: 0 };
    return key.name;
  }

  private remember(key: string, value: string): void {
    let list = this.recent.get(key);
    if (list === undefined) {
      list = [];
      this.recent.set(key, list);
    }
    list.push(value);
    if (list.length > 8) list.shift();
  }

  private async loop(process: number, random: Prng): Promise<void> {
    const known = new Map<string, string | null>();
    let seq = 0;
    while (this.running) {
      const key = this.pickKey(random);
      const roll = random.next();
      let succeeded = true;
      if (roll < this.options.readFraction) {
        const value = await this.read(process, key, random);
        if (value !== undefined) known.set(key, value);
        else succeeded = false;
      } else if (roll < this.options.readFraction + this.options.writeFraction) {
        const value = `${process}-${seq++}`;
        this.remember(key, value);
        if (await this.write(process, key, value, random)) known.set(key, value);
        else succeeded = false;
      } else {
        // Expect what this process last saw (usually right under low contention), sometimes a
        // value another process wrote recently, sometimes "absent".
        const recent = this.recent.get(key) ?? [];
        const expected = known.has(key) && random.chance(0.8)
          ? (known.get(key) ?? null)
          : recent.length > 0 && random.chance(0.7) ? random.pick(recent) : null;
        const value = `${process}-${seq++}`;
        this.remember(key, value);
        const outcome = await this.cas(process, key, expected, value, random);
        if (outcome.kind === 'ok') known.set(key, value);
        else if (outcome.kind === 'mismatch' && outcome.observed !== undefined) known.set(key, outcome.observed);
        else if (outcome.kind === 'mismatch') known.delete(key);
        else succeeded = false;
      }
      // Like a real client, back off after an unsuccessful answer instead of hammering a node
      // that is down or has no leader (fast failures would otherwise dominate the op counts).
      await sleep(succeeded ? random.int(0, this.options.thinkMs) : random.int(this.options.backoffMs[0], this.options.backoffMs[1]));
    }
  }

  private url(node: ChaosNode, key: string): string {
    return `${node.clientUrl}/v1/docs/${this.options.collection}/${key}`;
  }

  /** Returns what was read (null = absent), or undefined if the read failed. */
  private async read(process: number, key: string, random: Prng): Promise<string | null | undefined> {
    const { recorder, http, opTimeoutMs } = this.ctx;
    const op = recorder.invoke({ process, f: 'read', key, value: null });
    const target = pickTarget(this.ctx.cluster, random);
    if (target === null) {
      recorder.complete(op, 'fail', null, 'no node');
      return undefined;
    }
    const answer = await http.call('GET', `${this.url(target, key)}?timeoutMs=${serverTimeout(opTimeoutMs)}`, { timeoutMs: opTimeoutMs });
    const read = readValue(answer);
    if (read === undefined) {
      this.ctx.onAnswer?.(`read ${key} @${target.id}`, answer);
      recorder.complete(op, 'fail', null, describeAnswer(answer));
      return undefined;
    }
    recorder.complete(op, 'ok', read.value);
    return read.value;
  }

  private async write(process: number, key: string, value: string, random: Prng): Promise<boolean> {
    const { recorder, http, opTimeoutMs, ack } = this.ctx;
    const op = recorder.invoke({ process, f: 'write', key, value });
    const target = pickTarget(this.ctx.cluster, random);
    if (target === null) {
      recorder.complete(op, 'fail', null, 'no node');
      return false;
    }
    const answer = await http.call('PUT', `${this.url(target, key)}?ack=${ack}&timeoutMs=${serverTimeout(opTimeoutMs)}`, { body: { v: value }, timeoutMs: opTimeoutMs });
    const { verdict, error } = registerWriteOutcome(answer);
    if (classifyWrite(answer) !== 'ok') this.ctx.onAnswer?.(`write ${key} @${target.id}`, answer);
    recorder.complete(op, verdict, null, error);
    return verdict === 'ok';
  }

  /**
   * ok: applied; mismatch: the value was not the expected one (nothing written; `observed` is the
   * value read, when known); error: anything else.
   */
  private async cas(process: number, key: string, expected: string | null, value: string, random: Prng): Promise<{ kind: 'ok' | 'mismatch' | 'error'; observed?: string | null }> {
    const { recorder, http, opTimeoutMs, ack } = this.ctx;
    const op = recorder.invoke({ process, f: 'cas', key, value, expected });
    const started = Date.now();
    const target = pickTarget(this.ctx.cluster, random);
    if (target === null) {
      recorder.complete(op, 'fail', null, 'no node');
      return { kind: 'error' };
    }
    const readBudget = Math.floor(opTimeoutMs / 2);
    const readAnswer = await http.call('GET', `${this.url(target, key)}?timeoutMs=${serverTimeout(readBudget)}`, { timeoutMs: readBudget });
    const current = readValue(readAnswer);
    if (current === undefined || current.value !== expected) {
      // Nothing was written: the cas definitely did not take effect.
      recorder.complete(op, 'fail', null, current === undefined ? `read ${describeAnswer(readAnswer)}` : MISMATCH);
      if (current === undefined) {
        this.ctx.onAnswer?.(`cas-read ${key} @${target.id}`, readAnswer);
        return { kind: 'error' };
      }
      return { kind: 'mismatch', observed: current.value };
    }
    const remaining = Math.max(1, opTimeoutMs - (Date.now() - started));
    const headers: Record<string, string> = current.version === null ? { 'if-none-match': '*' } : { 'if-match': `"${current.version}"` };
    const answer = await http.call('PUT', `${this.url(target, key)}?ack=${ack}&timeoutMs=${serverTimeout(remaining)}`, { body: { v: value }, headers, timeoutMs: remaining });
    // ack=leader answers 202 before the condition is evaluated: whether it applies is unknown.
    const { verdict, error } = registerWriteOutcome(answer);
    if (classifyWrite(answer) !== 'ok') this.ctx.onAnswer?.(`cas ${key} @${target.id}`, answer);
    const precondition = answer.kind === 'response' && answer.status === 412;
    recorder.complete(op, verdict, null, precondition ? `${MISMATCH} (${describeAnswer(answer)})` : error);
    if (verdict === 'ok') return { kind: 'ok' };
    // A 412 is the other kind of mismatch: the version moved on between the read and the write.
    if (precondition) {
      return { kind: 'mismatch' };
    }
    return { kind: 'error' };
  }
}

/** A register read's value and version, or undefined when the answer is not a definite read. */
export function readValue(answer: HttpAnswer): { value: string | null; version: number | null } | undefined {
  if (answer.kind !== 'response') return undefined;
  const body = answer.body as { code?: unknown; version?: unknown; body?: { v?: unknown } } | null;
  if (answer.status === 404 && body?.code === 'NOT_FOUND') return { value: null, version: null };
  if (answer.status !== 200 || typeof body?.version !== 'number') return undefined;
  const v = body.body?.v;
  return { value: typeof v === 'string' ? v : null, version: body.version };
}

export interface SetWorkloadOptions {
  readonly processes: number;
  readonly firstProcess: number;
  readonly collection: string;
  /** Total budget of one add, retries included. */
  readonly addBudgetMs: number;
  readonly thinkMs: number;
  /** Pause between attempts of one add, ms. */
  readonly backoffMs: readonly [number, number];
  /** Distinguishes this run's idempotency keys. */
  readonly runTag: string;
}

export class SetWorkload {
  private running = false;
  private loops: Promise<void>[] = [];

  constructor(
    private readonly ctx: WorkloadContext,
    private readonly options: SetWorkloadOptions,
    private readonly random: Prng,
  ) {}

  start(): void {
    this.running = true;
    this.loops = Array.from({ length: this.options.processes }, (_, i) => this.loop(this.options.firstProcess + i, this.random.fork(`set-${i}`)));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  private async loop(process: number, random: Prng): Promise<void> {
    for (let seq = 0; this.running; seq++) {
      await this.add(process, `e${process}-${seq}`, random);
      await sleep(random.int(0, this.options.thinkMs));
    }
  }

  private async add(process: number, element: string, random: Prng): Promise<void> {
    const { recorder, http, ack, opTimeoutMs } = this.ctx;
    const op = recorder.invoke({ process, f: 'add', key: this.options.collection, value: element });
    const deadline = Date.now() + this.options.addBudgetMs;
    const headers = { 'idempotency-key': `chaos-${this.options.runTag}-${element}` };
    let uncertain = false;
    let last = 'no attempt';
    for (let attempt = 0; ; attempt++) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      const target = pickTarget(this.ctx.cluster, random);
      if (target !== null) {
        const budget = Math.min(remaining, opTimeoutMs);
        const url = `${target.clientUrl}/v1/docs/${this.options.collection}/${element}?ack=${ack}&timeoutMs=${serverTimeout(budget)}`;
        const answer = await http.call('PUT', url, { body: { e: element }, headers, timeoutMs: budget });
        const verdict = classifyWrite(answer);
        if (verdict === 'ok') {
          recorder.complete(op, 'ok');
          return;
        }
        this.ctx.onAnswer?.(`add ${element} @${target.id} attempt ${attempt + 1}`, answer);
        last = `${describeAnswer(answer)} after ${attempt + 1} attempts`;
        if (verdict === 'info') uncertain = true;
        // A 4xx other than a transient one will not change on retry.
        if (answer.kind === 'response' && answer.status >= 400 && answer.status < 500) break;
      }
      await sleep(random.int(this.options.backoffMs[0], this.options.backoffMs[1]));
    }
    recorder.complete(op, uncertain ? 'info' : 'fail', null, last);
  }

  /**
   * The final read of the whole set: a linearizable, paginated list from a random running node,
   * retried (as new ops) until it succeeds or `budgetMs` runs out. Returns id → version.
   */
  async readAll(process: number, budgetMs: number, random: Prng): Promise<Map<string, number> | null> {
    const { recorder, http } = this.ctx;
    const deadline = Date.now() + budgetMs;
    while (Date.now() < deadline) {
      const op = recorder.invoke({ process, f: 'read-all', key: this.options.collection, value: null });
      const target = pickTarget(this.ctx.cluster, random);
      const found = target === null ? null : await listAll(http, target.clientUrl, this.options.collection, Math.max(1_000, Math.min(10_000, deadline - Date.now())));
      if (found !== null) {
        recorder.complete(op, 'ok', JSON.stringify([...found.keys()].sort()));
        return found;
      }
      recorder.complete(op, 'fail', null, 'list failed');
      await sleep(200);
    }
    return null;
  }
}

/** Every document of a collection (id → version), read linearizably page by page; null on any failure. */
export async function listAll(http: HttpClient, baseUrl: string, collection: string, timeoutMs: number): Promise<Map<string, number> | null> {
  const out = new Map<string, number>();
  let cursor: string | null = null;
  for (let page = 0; page < 100_000; page++) {
    const query = `limit=1000&consistency=linearizable&timeoutMs=${serverTimeout(timeoutMs)}${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`;
    const answer = await http.call('GET', `${baseUrl}/v1/docs/${collection}?${query}`, { timeoutMs });
    if (answer.kind !== 'response' || answer.status !== 200) return null;
    const body = answer.body as { documents?: { id: string; version: number }[]; nextCursor?: string | null };
    for (const doc of body.documents ?? []) out.set(doc.id, doc.version);
    cursor = body.nextCursor ?? null;
    if (cursor === null) return out;
  }
  return null;
}

export interface ProbeOptions {
  /** First process number; the probe runs `processes` staggered processes. */
  readonly firstProcess: number;
  readonly processes: number;
  readonly collection: string;
  /** Ops on one probe key before moving to a fresh one (keeps each key's history small). */
  readonly opsPerKey: number;
  readonly timeoutMs: number;
  /** Time between two writes of the probe as a whole; each process writes every intervalMs * processes. */
  readonly intervalMs: number;
}

/**
 * The probe: a few more register clients that only write, to the node the monitor currently sees
 * as leader (a random node when none is known), with a short timeout. The other clients pick
 * nodes at random and hang on a frozen node like real clients would; the probe behaves like a
 * client that tracks the leader, so the first successful write after a fault (RTO) measures the
 * cluster, not clients stuck on a paused process. Its processes are staggered (one starts a write
 * every `intervalMs`), so one of them stuck on a frozen leader until its timeout does not hide
 * the others' success with the new leader. Their ops are ordinary register ops in the history
 * (keys `p<process>-<n>`) and are checked like the others.
 */
export class ProbeWriter {
  private running = false;
  private loops: Promise<void>[] = [];

  constructor(
    private readonly ctx: WorkloadContext,
    private readonly options: ProbeOptions,
    private readonly leaderHint: () => string | null,
    private readonly random: Prng,
  ) {}

  start(): void {
    this.running = true;
    this.loops = Array.from({ length: this.options.processes }, (_, i) => this.loop(this.options.firstProcess + i, i));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  private async loop(process: number, slot: number): Promise<void> {
    const { recorder, http, ack, cluster } = this.ctx;
    const period = this.options.intervalMs * this.options.processes;
    await sleep(slot * this.options.intervalMs);
    for (let seq = 0; this.running; seq++) {
      const started = Date.now();
      const key = `p${process}-${Math.floor(seq / this.options.opsPerKey)}`;
      const value = `probe${process}-${seq}`;
      const op = recorder.invoke({ process, f: 'write', key, value });
      const hint = this.leaderHint();
      const hinted = hint === null ? null : cluster.reachable().find((node) => node.id === hint) ?? null;
      const target = hinted ?? pickTarget(cluster, this.random);
      if (target === null) {
        recorder.complete(op, 'fail', null, 'no node');
      } else {
        const url = `${target.clientUrl}/v1/docs/${this.options.collection}/${key}?ack=${ack}&timeoutMs=${serverTimeout(this.options.timeoutMs)}`;
        const answer = await http.call('PUT', url, { body: { v: value }, timeoutMs: this.options.timeoutMs });
        const { verdict, error } = registerWriteOutcome(answer);
        if (classifyWrite(answer) !== 'ok') this.ctx.onAnswer?.(`probe ${key} @${target.id}`, answer);
        recorder.complete(op, verdict, null, error);
      }
      // Keep the slot: the next write of this process starts one period after this one started.
      await sleep(period - (Date.now() - started));
    }
  }
}
