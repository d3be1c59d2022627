/**
 * Linearizability checker for register histories (read / write / cas per key).
 *
 * What it is: the Wing–Gong search with Lowe's just-in-time linearization, as in Knossos and
 * Porcupine. Ops of one key are put in a doubly linked list of call and return entries ordered by
 * history position. The search walks the list; at a call entry it tries to linearize that op now
 * (the model must accept it) and restarts from the head; at a return entry of an op not yet
 * linearized it backtracks, because that op's deadline has passed. Visited configurations
 * (set of linearized ops, register value) are cached, so each is expanded at most once.
 * Registers on different keys are independent (linearizability is compositional), so each key is
 * checked on its own. On a violation it also shrinks the history to a small failing subset.
 *
 * What it is not responsible for: parsing or validating histories (history.ts), other data types,
 * or deciding what to do with a violation. It is pure: no randomness, no I/O, no timers; the clock
 * is read only when the caller asks for `timeLimitMs` (the simulator uses `stepLimit` instead).
 *
 * Invariants:
 * - 'linearizable' comes with a witness order that the search replayed against the model;
 *   'not-linearizable' means the whole (reduced) search space was exhausted; any exhausted budget
 *   gives 'unknown', and `ok` is true only when every key is 'linearizable'.
 * - Within a key, op indices follow call order, so the linearized set is "almost a prefix" and is
 *   cached as (its size, where it differs from the prefix of that size): entries stay small.
 *
 * Reductions. Each keeps a linearization whenever one exists; the brute-force comparison in the
 * tests checks them together.
 * - Ops that cannot constrain the outcome are left out: failed ops (they did not happen), reads
 *   without an ok (nothing observed), and info writes/cas whose new value nobody observes after
 *   their invoke (they can always be linearized last, which is the same as never).
 * - Deadlines for info ops. An info op either takes effect at some point or never, and "never" is
 *   tried at a deadline: the last completion of an ok op observing its new value (a read of it, a
 *   cas expecting it; an info cas expecting it passes on its own deadline). Taking effect after
 *   that could not be seen by anyone, so it is the same as never. Without deadlines every timed-out
 *   write would stay open to the end of the history.
 * - Forced reads. A read that may go now and sees the current value can be moved to the front of
 *   any valid continuation (it changes nothing, and everything that must precede it already has),
 *   so it is taken without branching: concurrent reads do not multiply the configurations.
 * - Normal form for info ops. In some linearization, every info op that takes effect is followed
 *   at once by an op that observes its value (move it later up to its first observer; if a write
 *   comes first, nobody saw it and it may as well never have happened). So after an info op takes
 *   effect, only an observer may go next (the "obligation", part of the configuration), info ops
 *   that would not change the value or that nothing enabled could observe are not tried, and of
 *   interchangeable invoked info ops (same kind and values, hence same deadline) only the first.
 *
 * Known limit: with few distinct values and many unknown outcomes, timed-out writes stay relevant
 * to the end and proving a violation can exhaust the budget ('unknown'). Unique written values,
 * as the simulator uses, avoid it.
 */

import { assert, assertNever } from '../shared/assert.ts';
import { describeOperation, pairOperations, type HistoryEvent, type Operation } from './history.ts';

export type KeyVerdict = 'linearizable' | 'not-linearizable' | 'unknown';

export interface CheckOptions {
  /** Budget of search steps per key (minimising a counterexample has its own budget). Default 5,000,000. */
  readonly stepLimit?: number;
  /** Wall-clock budget for the whole check. Makes results timing dependent; deterministic callers use stepLimit. */
  readonly timeLimitMs?: number;
  /** Clock in milliseconds, read only when timeLimitMs is set. Defaults to performance.now. */
  readonly now?: () => number;
}

/**
 * A subhistory that is itself not linearizable, shrunk greedily (see `minimal`). Info ops in it keep
 * the deadlines they had in the whole history, which only ever adds freedom.
 */
export interface Kernel {
  /** Register value the kernel starts from: null, or the value reached by an earlier linearizable prefix. */
  readonly initialValue: string | null;
  readonly operations: readonly Operation[];
  /**
   * True when removing any single op was tried and made it linearizable (or left a read of a value
   * nothing writes); false when shrinking ran out of budget first. Either way it is a violation.
   */
  readonly minimal: boolean;
  /**
   * True when the kernel contains `Violation.blocked` and is linearizable without it: it shows
   * exactly why that op could not be linearized. False when the rest was inconsistent already.
   */
  readonly anchored: boolean;
}

export interface Violation {
  readonly key: string;
  /** The op whose deadline passed with no legal way to linearize it, after the longest prefix below. */
  readonly blocked: Operation;
  /** Longest linearizable prefix the search found, in linearization order (ops that took effect). */
  readonly prefix: readonly Operation[];
  readonly valueAfterPrefix: string | null;
  /** Other ops invoked before `blocked` completed and not in the prefix. */
  readonly pending: readonly Operation[];
  /** Null when shrinking ran out of budget or the violation needs more context than a window. */
  readonly kernel: Kernel | null;
  readonly explanation: string;
}

export interface KeyResult {
  readonly key: string;
  readonly verdict: KeyVerdict;
  /** All ops on the key, including failed ones. */
  readonly operations: number;
  /** Ops that took part in the search (see the module invariants). */
  readonly checked: number;
  readonly steps: number;
  /** A valid linearization of the checked ops, when linearizable. */
  readonly witness: readonly Operation[] | null;
  readonly violation: Violation | null;
  readonly unknownReason: 'step-limit' | 'time-limit' | null;
}

export interface LinearizabilityResult {
  /** True only if every key is linearizable. */
  readonly ok: boolean;
  /** not-linearizable if any key is; otherwise unknown if any key is; otherwise linearizable. */
  readonly verdict: KeyVerdict;
  /** One result per key, sorted by key. */
  readonly keys: readonly KeyResult[];
  readonly operations: number;
  readonly steps: number;
  /** Human readable summary: the violations and unknown keys, or a one-line all-clear. */
  readonly explanation: string;
}

const DEFAULT_STEP_LIMIT = 5_000_000;
/** Histories up to this size are shrunk whole; longer ones only around the point of failure. */
const SHRINK_WHOLE_LIMIT = 200;
/** How many ops of the longest prefix to keep as context when shrinking a long history. */
const SHRINK_WINDOW = 32;
const SHRINK_STEPS_PER_ATTEMPT = 200_000;
const SHRINK_STEPS_TOTAL = 2_000_000;
const CLOCK_CHECK_INTERVAL = 1024;

/**
 * Checks that `events` (see history.ts) is linearizable with respect to a register per key, initially
 * null. Throws HistoryError for malformed histories.
 */
export function checkLinearizability(events: readonly HistoryEvent[], options: CheckOptions = {}): LinearizabilityResult {
  const stepLimit = options.stepLimit ?? DEFAULT_STEP_LIMIT;
  if (!(Number.isInteger(stepLimit) && stepLimit > 0)) throw new RangeError(`stepLimit must be a positive integer, got ${stepLimit}`);
  const timeLimitMs = options.timeLimitMs;
  if (timeLimitMs !== undefined && !(timeLimitMs >= 0)) throw new RangeError(`timeLimitMs must be >= 0, got ${timeLimitMs}`);
  const now = options.now ?? (() => performance.now());
  const deadline = timeLimitMs === undefined ? null : { now, at: now() + timeLimitMs };

  const operations = pairOperations(events);
  const byKey = new Map<string, Operation[]>();
  for (const op of operations) {
    const list = byKey.get(op.key);
    if (list === undefined) byKey.set(op.key, [op]);
    else list.push(op);
  }

  const keys = [...byKey.keys()].sort().map((key) => checkKey(key, byKey.get(key) ?? [], stepLimit, deadline));
  const steps = keys.reduce((sum, result) => sum + result.steps, 0);
  const verdict: KeyVerdict = keys.some((k) => k.verdict === 'not-linearizable')
    ? 'not-linearizable'
    : keys.some((k) => k.verdict === 'unknown')
      ? 'unknown'
      : 'linearizable';
  return {
    ok: verdict === 'linearizable',
    verdict,
    keys,
    operations: operations.length,
    steps,
    explanation: summarize(verdict, keys, operations.length),
  };
}

// ---------------------------------------------------------------------------------------------
// Model and search core. Register values are interned to small integers per key (null = 0) so the
// model state is a number and cache keys are cheap.

const READ = 0;
const WRITE = 1;
const CAS = 2;
type Kind = typeof READ | typeof WRITE | typeof CAS;
const ILLEGAL = -1;

interface CoreOp {
  readonly kind: Kind;
  /** Read: the value read. Write/cas: the value written. */
  readonly value: number;
  /** Cas only. */
  readonly expected: number;
  /** False for info ops: they may also be linearized as a no-op, at their deadline. */
  readonly definite: boolean;
  readonly callPos: number;
  /** Completion position for ok ops; for info ops the deadline (see the module invariants). */
  readonly retPos: number;
  readonly source: Operation;
}

function applyOp(state: number, op: CoreOp): number {
  switch (op.kind) {
    case READ:
      return op.value === state ? state : ILLEGAL;
    case WRITE:
      return op.value;
    case CAS:
      // An info cas that does not match is the "never happened" case, tried at its deadline.
      return state === op.expected ? op.value : ILLEGAL;
    default:
      return assertNever(op.kind);
  }
}

interface Budget {
  readonly stepLimit: number;
  readonly deadline: { readonly now: () => number; readonly at: number } | null;
}

type SearchResult =
  | { readonly kind: 'linearizable'; readonly order: readonly number[]; readonly steps: number }
  | {
      readonly kind: 'not-linearizable';
      /** Op indices in linearization order; ~op marks an info op skipped (it never took effect). */
      readonly prefix: readonly number[];
      readonly stateAfterPrefix: number;
      readonly blocked: number;
      readonly pending: readonly number[];
      readonly steps: number;
    }
  | { readonly kind: 'unknown'; readonly reason: 'step-limit' | 'time-limit'; readonly steps: number };

/**
 * The set S of linearized op indices: a bitset on Uint32Array for membership, plus an incremental
 * hash and a compact canonical form for the cache. Because ops are indexed in call order, S is
 * nearly the prefix P = {0 .. size-1}; the canonical form is (size, sorted S Δ P), whose length is
 * bounded by the number of ops linearized out of order or still pending (a few per process, plus
 * open info ops), however long the history. Adding or removing i toggles i and one end of P in S Δ P.
 */
class LinearizedSet {
  private readonly words: Uint32Array;
  private readonly opHashes: Int32Array;
  hash = 0;
  size = 0;
  /** S Δ P, sorted ascending in diff[0 .. diffLength). */
  readonly diff: Int32Array;
  diffLength = 0;

  constructor(capacity: number) {
    this.words = new Uint32Array((capacity + 31) >>> 5);
    this.opHashes = new Int32Array(capacity);
    for (let i = 0; i < capacity; i++) this.opHashes[i] = mix32(i + 1);
    this.diff = new Int32Array(capacity + 2);
  }

  has(i: number): boolean {
    return (this.words[i >>> 5]! & (1 << (i & 31))) !== 0;
  }

  add(i: number): void {
    assert(!this.has(i), `op ${i} is already linearized`);
    this.words[i >>> 5] = this.words[i >>> 5]! | (1 << (i & 31));
    this.hash ^= this.opHashes[i]!;
    this.toggle(i);
    this.toggle(this.size);
    this.size++;
  }

  remove(i: number): void {
    assert(this.has(i), `op ${i} is not linearized`);
    this.words[i >>> 5] = this.words[i >>> 5]! & ~(1 << (i & 31));
    this.hash ^= this.opHashes[i]!;
    this.size--;
    this.toggle(i);
    this.toggle(this.size);
  }

  private toggle(x: number): void {
    const diff = this.diff;
    let lo = 0;
    let hi = this.diffLength;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (diff[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    if (lo < this.diffLength && diff[lo] === x) {
      diff.copyWithin(lo, lo + 1, this.diffLength);
      this.diffLength--;
    } else {
      diff.copyWithin(lo + 1, lo, this.diffLength);
      diff[lo] = x;
      this.diffLength++;
    }
  }
}

function mix32(x: number): number {
  let h = Math.imul(x, 0x9e3779b1);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/**
 * The set of explored configurations (linearized set, state). Open addressing over typed arrays:
 * a search can record millions of configurations, and one object per entry cost ~150 bytes and most
 * of the time in garbage collection; here an entry is five integers plus its few canonical words.
 */
class ConfigurationCache {
  private slots = new Int32Array(1 << 12); // entry index + 1; 0 = empty
  private count = 0;
  private hashes = new Int32Array(1 << 11);
  private states = new Int32Array(1 << 11);
  private sizes = new Int32Array(1 << 11);
  private starts = new Int32Array(1 << 11);
  private lengths = new Int32Array(1 << 11);
  private diffs = new Int32Array(1 << 12);
  private diffsUsed = 0;

  /** Adds the configuration; false if it was already there (already explored). */
  add(set: LinearizedSet, state: number): boolean {
    const hash = set.hash ^ mix32(state + 0x632be5ab);
    const mask = this.slots.length - 1;
    let slot = hash & mask;
    for (let e = this.slots[slot]! - 1; e >= 0; e = this.slots[slot]! - 1) {
      if (this.hashes[e] === hash && this.states[e] === state && this.matches(e, set)) return false;
      slot = (slot + 1) & mask;
    }
    const length = set.diffLength;
    if (this.count === this.hashes.length) this.growEntries();
    while (this.diffsUsed + length > this.diffs.length) this.diffs = grown(this.diffs, this.diffs.length * 2);
    const e = this.count++;
    this.hashes[e] = hash;
    this.states[e] = state;
    this.sizes[e] = set.size;
    this.starts[e] = this.diffsUsed;
    this.lengths[e] = length;
    this.diffs.set(set.diff.subarray(0, length), this.diffsUsed);
    this.diffsUsed += length;
    this.slots[slot] = e + 1;
    if (this.count * 2 > this.slots.length) this.rehash();
    return true;
  }

  private matches(e: number, set: LinearizedSet): boolean {
    const length = this.lengths[e]!;
    if (this.sizes[e] !== set.size || length !== set.diffLength) return false;
    const start = this.starts[e]!;
    for (let k = 0; k < length; k++) {
      if (this.diffs[start + k] !== set.diff[k]) return false;
    }
    return true;
  }

  private growEntries(): void {
    const size = this.hashes.length * 2;
    this.hashes = grown(this.hashes, size);
    this.states = grown(this.states, size);
    this.sizes = grown(this.sizes, size);
    this.starts = grown(this.starts, size);
    this.lengths = grown(this.lengths, size);
  }

  private rehash(): void {
    const slots = new Int32Array(this.slots.length * 2);
    const mask = slots.length - 1;
    for (let e = 0; e < this.count; e++) {
      let slot = this.hashes[e]! & mask;
      while (slots[slot] !== 0) slot = (slot + 1) & mask;
      slots[slot] = e + 1;
    }
    this.slots = slots;
  }
}

function grown(array: Int32Array, size: number): Int32Array<ArrayBuffer> {
  const bigger = new Int32Array(size);
  bigger.set(array);
  return bigger;
}

/**
 * How a frame of the search stack was entered. Only CHOSEN frames leave alternatives to try when
 * popped; FORCED reads and SKIPPED info ops were the only option of their configuration.
 */
const CHOSEN = 0;
const FORCED = 1;
const SKIPPED = 2;
type FrameKind = typeof CHOSEN | typeof FORCED | typeof SKIPPED;

/** `ops` must be sorted by callPos; op indices in the result refer to it. */
function search(ops: readonly CoreOp[], initialState: number, budget: Budget): SearchResult {
  const m = ops.length;
  for (let i = 1; i < m; i++) assert(ops[i - 1]!.callPos < ops[i]!.callPos, 'core ops must be sorted by call position');
  if (m === 0) return { kind: 'linearizable', order: [], steps: 0 };

  // Entries 1..2m in history order; 0 is the head sentinel and 2m+1 the tail sentinel, so lifting
  // and unlifting never test for the ends. Ties only occur between info deadlines; any order is fine.
  const order = Array.from({ length: 2 * m }, (_, k) => k);
  const position = (k: number): number => (k < m ? ops[k]!.callPos : ops[k - m]!.retPos);
  order.sort((a, b) => position(a) - position(b) || a - b);
  const HEAD = 0;
  const TAIL = 2 * m + 1;
  const next = new Int32Array(2 * m + 2);
  const prev = new Int32Array(2 * m + 2);
  const entryOp = new Int32Array(2 * m + 2);
  const isCall = new Uint8Array(2 * m + 2);
  const returnOf = new Int32Array(2 * m + 2);
  const callEntry = new Int32Array(m);
  order.forEach((k, rank) => {
    const e = rank + 1;
    if (k < m) {
      entryOp[e] = k;
      isCall[e] = 1;
      callEntry[k] = e;
    } else {
      entryOp[e] = k - m;
    }
  });
  order.forEach((k, rank) => {
    if (k >= m) returnOf[callEntry[k - m]!] = rank + 1;
  });
  for (let e = 0; e <= TAIL; e++) {
    next[e] = e + 1;
    prev[e] = e - 1;
  }

  const lift = (e: number): void => {
    next[prev[e]!] = next[e]!;
    prev[next[e]!] = prev[e]!;
    const r = returnOf[e]!;
    next[prev[r]!] = next[r]!;
    prev[next[r]!] = prev[r]!;
  };
  // Exact inverse of lift; valid because lifts and unlifts are strictly nested (a stack).
  const unlift = (e: number): void => {
    const r = returnOf[e]!;
    next[prev[r]!] = r;
    prev[next[r]!] = r;
    next[prev[e]!] = e;
    prev[next[e]!] = e;
  };

  // Info ops with the same kind, value and expected value are interchangeable once invoked: they
  // have the same effect and, because deadlines depend only on the value, the same deadline.
  const infoClass = new Int32Array(m).fill(-1);
  const classes = new Map<string, number>();
  ops.forEach((op, i) => {
    if (op.definite) return;
    const name = `${op.kind} ${op.value} ${op.expected}`;
    const id = classes.get(name) ?? classes.size;
    classes.set(name, id);
    infoClass[i] = id;
  });

  const linearized = new LinearizedSet(m);
  const cache = new ConfigurationCache();
  // One frame per linearized op: its call entry, the state and obligation before it, and how it
  // got there.
  const stackEntry = new Int32Array(m);
  const stackState = new Int32Array(m);
  const stackObliged = new Uint8Array(m);
  const stackKind = new Uint8Array(m);
  let depth = 0;
  let state = initialState;
  // Set right after an info op took effect: the next op must observe the value it wrote (see
  // "Normal form" in the header), else that info op should not have taken effect there.
  let obliged = false;
  // The obligation is part of the configuration: an obliged one may fail where a free one would not.
  const cacheState = (value: number, withObligation: boolean): number => (withObligation ? ~value : value);

  // Longest prefix seen, kept incrementally: `agree` stack slots are known to equal bestPrefix.
  // Entries are op indices, or ~op for skipped info ops.
  const bestPrefix = new Int32Array(m);
  let bestLength = 0;
  let agree = 0;
  let blocked = -1;
  let blockedState = initialState;
  let pending: number[] = [];

  const push = (call: number, after: number, afterObliged: boolean, kind: FrameKind): void => {
    stackEntry[depth] = call;
    stackState[depth] = state;
    stackObliged[depth] = obliged ? 1 : 0;
    stackKind[depth] = kind;
    depth++;
    state = after;
    obliged = afterObliged;
    lift(call);
    if (depth > bestLength) {
      for (let k = agree; k < depth; k++) {
        const op = entryOp[stackEntry[k]!]!;
        bestPrefix[k] = stackKind[k] === SKIPPED ? ~op : op;
      }
      bestLength = depth;
      agree = depth;
      blocked = -1;
    }
  };

  // Undoes frames until one with an untried alternative; false when none is left.
  const backtrack = (): boolean => {
    for (;;) {
      if (depth === 0) return false;
      depth--;
      if (depth < agree) agree = depth;
      const undone = stackEntry[depth]!;
      state = stackState[depth]!;
      obliged = stackObliged[depth] === 1;
      linearized.remove(entryOp[undone]!);
      unlift(undone);
      if (stackKind[depth] === CHOSEN) {
        entry = next[undone]!;
        return true;
      }
    }
  };

  const failed = (): SearchResult => {
    assert(blocked !== -1, 'a failed search must have recorded where it got stuck');
    return {
      kind: 'not-linearizable',
      prefix: Array.from(bestPrefix.subarray(0, bestLength)),
      stateAfterPrefix: blockedState,
      blocked,
      pending,
      steps,
    };
  };

  let steps = 0;
  let entry = next[HEAD]!;
  let fresh = true;
  while (next[HEAD] !== TAIL) {
    steps++;
    if (steps > budget.stepLimit) return { kind: 'unknown', reason: 'step-limit', steps };
    if (budget.deadline !== null && steps % CLOCK_CHECK_INTERVAL === 0 && budget.deadline.now() > budget.deadline.at) {
      return { kind: 'unknown', reason: 'time-limit', steps };
    }

    if (fresh) {
      // A read that may go now and sees the current value is taken without branching (see
      // "Forced reads" in the header). It also meets any obligation, since it observes the value.
      fresh = false;
      let forced = -1;
      for (let e = next[HEAD]!; isCall[e] === 1; e = next[e]!) {
        const op = ops[entryOp[e]!]!;
        if (op.kind === READ && op.value === state) {
          forced = e;
          break;
        }
      }
      if (forced !== -1) {
        linearized.add(entryOp[forced]!);
        if (cache.add(linearized, cacheState(state, false))) {
          push(forced, state, false, FORCED);
          fresh = true;
          entry = next[HEAD]!;
          continue;
        }
        linearized.remove(entryOp[forced]!);
        // Its only continuation was explored before, so this configuration is dead too.
        if (!backtrack()) return failed();
        continue;
      }
    }
    assert(entry !== TAIL, 'the search ran off the end of the entry list');

    const op = entryOp[entry]!;
    if (isCall[entry] === 1) {
      const candidate = ops[op]!;
      let nextState = applyOp(state, candidate);
      // Under an obligation only an observer may go: a read (legal, so it sees the value) or a cas
      // (legal, so it expected the value).
      if (obliged && candidate.kind === WRITE) nextState = ILLEGAL;
      if (nextState !== ILLEGAL && !candidate.definite) {
        // Normal form: an info op that would not change the value is as good as one that never
        // happened, so is one that nothing enabled could observe next (its obligation would fail
        // at once), and among interchangeable enabled info ops only the first needs trying.
        if (nextState === state) nextState = ILLEGAL;
        let observable = false;
        for (let e = next[HEAD]!; isCall[e] === 1 && nextState !== ILLEGAL; e = next[e]!) {
          const other = entryOp[e]!;
          if (e !== entry && infoClass[other] === infoClass[op] && other < op) nextState = ILLEGAL;
          const o = ops[other]!;
          if (e !== entry && ((o.kind === READ && o.value === nextState) || (o.kind === CAS && o.expected === nextState))) observable = true;
        }
        if (!observable) nextState = ILLEGAL;
      }
      if (nextState !== ILLEGAL) {
        linearized.add(op);
        if (cache.add(linearized, cacheState(nextState, !candidate.definite))) {
          push(entry, nextState, !candidate.definite, CHOSEN);
          fresh = true;
          entry = next[HEAD]!;
          continue;
        }
        linearized.remove(op);
      }
      entry = next[entry]!;
      continue;
    }

    // The deadline of an op not yet linearized. An info op may still never have happened.
    if (!ops[op]!.definite) {
      linearized.add(op);
      if (cache.add(linearized, cacheState(state, obliged))) {
        push(callEntry[op]!, state, obliged, SKIPPED);
        fresh = true;
        entry = next[HEAD]!;
        continue;
      }
      linearized.remove(op);
    }

    // Dead end: the current prefix cannot be extended past this deadline. The first dead end after
    // a new longest prefix belongs to that prefix (nothing was popped in between).
    if (blocked === -1 && depth === bestLength) {
      blocked = op;
      blockedState = state;
      pending = [];
      for (let e = next[HEAD]!; e !== entry; e = next[e]!) {
        if (isCall[e] === 1 && entryOp[e] !== blocked) pending.push(entryOp[e]!);
      }
    }
    if (!backtrack()) return failed();
  }

  assert(depth === m, 'an empty entry list means every op was linearized or skipped');
  const witness: number[] = [];
  for (let k = 0; k < m; k++) if (stackKind[k] !== SKIPPED) witness.push(entryOp[stackEntry[k]!]!);
  return { kind: 'linearizable', order: witness, steps };
}

// ---------------------------------------------------------------------------------------------
// Per key: reduce the ops, run the search, explain failures.

class ValueTable {
  private readonly ids = new Map<string, number>();
  private readonly values: (string | null)[] = [null];

  id(value: string | null): number {
    if (value === null) return 0;
    let id = this.ids.get(value);
    if (id === undefined) {
      id = this.values.length;
      this.ids.set(value, id);
      this.values.push(value);
    }
    return id;
  }

  value(id: number): string | null {
    assert(id >= 0 && id < this.values.length, `unknown value id ${id}`);
    return this.values[id] ?? null;
  }
}

function toCoreOps(ops: readonly Operation[], values: ValueTable): CoreOp[] {
  const deadlines = infoDeadlines(ops);
  const core: CoreOp[] = [];
  for (const op of ops) {
    if (op.outcome === 'fail') continue;
    const definite = op.outcome === 'ok';
    let retPos: number;
    if (definite) {
      assert(op.completeIndex !== null, 'an ok op has a completion event');
      retPos = op.completeIndex;
    } else {
      if (op.f === 'read') continue;
      const deadline = deadlines.get(op.input.value) ?? -Infinity;
      // Nobody can see this op's effect: skipping it is always an option and never a constraint.
      if (deadline < op.invokeIndex) continue;
      retPos = deadline;
    }
    const common = { definite, callPos: op.invokeIndex, retPos, source: op };
    switch (op.f) {
      case 'read':
        if (op.output === null) continue;
        core.push({ kind: READ, value: values.id(op.output.value), expected: 0, ...common });
        break;
      case 'write':
        core.push({ kind: WRITE, value: values.id(op.input.value), expected: 0, ...common });
        break;
      case 'cas':
        core.push({ kind: CAS, value: values.id(op.input.value), expected: values.id(op.input.expected), ...common });
        break;
      default:
        assertNever(op);
    }
  }
  return core;
}

/**
 * For each value, the last position at which taking effect with it could still be observed: half a
 * position after the completion of the last ok op observing it (a read of it, a cas expecting it),
 * so the deadline falls after that completion. An info cas observing a value extends it to its own
 * deadline: it may take effect, and be observed, until then. Computed as a fixpoint because those
 * chains can be long (or circular, which only means no extension beyond what the ok ops give).
 */
function infoDeadlines(ops: readonly Operation[]): Map<string | null, number> {
  const deadline = new Map<string | null, number>();
  const extend = (value: string | null, position: number): boolean => {
    if (position <= (deadline.get(value) ?? -Infinity)) return false;
    deadline.set(value, position);
    return true;
  };
  const infoCas: { expected: string | null; value: string | null; call: number }[] = [];
  for (const op of ops) {
    if (op.outcome === 'ok') {
      assert(op.completeIndex !== null, 'an ok op has a completion event');
      if (op.f === 'read' && op.output !== null) extend(op.output.value, op.completeIndex + 0.5);
      if (op.f === 'cas') extend(op.input.expected, op.completeIndex + 0.5);
    } else if (op.outcome === 'info' && op.f === 'cas') {
      infoCas.push({ expected: op.input.expected, value: op.input.value, call: op.invokeIndex });
    }
  }
  for (let changed = true; changed; ) {
    changed = false;
    for (const cas of infoCas) {
      const own = deadline.get(cas.value) ?? -Infinity;
      if (own >= cas.call && extend(cas.expected, own)) changed = true;
    }
  }
  return deadline;
}

function checkKey(key: string, ops: readonly Operation[], stepLimit: number, deadline: Budget['deadline']): KeyResult {
  const values = new ValueTable();
  const core = toCoreOps(ops, values);
  const result = search(core, 0, { stepLimit, deadline });
  const base = { key, operations: ops.length, checked: core.length, steps: result.steps };
  switch (result.kind) {
    case 'linearizable':
      return {
        ...base,
        verdict: 'linearizable',
        witness: result.order.map((i) => core[i]!.source),
        violation: null,
        unknownReason: null,
      };
    case 'unknown':
      return { ...base, verdict: 'unknown', witness: null, violation: null, unknownReason: result.reason };
    case 'not-linearizable': {
      const kernel = findKernel(core, result, values, deadline);
      const violation = buildViolation(key, ops, core, result, kernel, values);
      return { ...base, verdict: 'not-linearizable', witness: null, violation, unknownReason: null };
    }
    default:
      return assertNever(result);
  }
}

type Failure = Extract<SearchResult, { kind: 'not-linearizable' }>;

/**
 * Shrinks the failure to a small subhistory that is still not linearizable, kept anchored on the
 * blocked op when possible. Short histories are shrunk whole from null; long ones from a window
 * around the dead end, starting at the register value the prefix had reached. Every candidate is
 * re-checked, so a returned kernel is a genuine violation; the window may turn out linearizable on
 * its own (the failure needed more context), and then there is no kernel. Bounded by its own step
 * budget, so a failing check costs at most SHRINK_STEPS_TOTAL more steps.
 */
function findKernel(core: readonly CoreOp[], failure: Failure, values: ValueTable, deadline: Budget['deadline']): Kernel | null {
  let candidate: CoreOp[];
  let initial: number;
  const wholeHistory = core.length <= SHRINK_WHOLE_LIMIT;
  if (wholeHistory) {
    candidate = [...core];
    initial = 0;
  } else {
    const cut = Math.max(0, failure.prefix.length - SHRINK_WINDOW);
    initial = 0;
    for (const entry of failure.prefix.slice(0, cut)) {
      if (entry < 0) continue;
      initial = applyOp(initial, core[entry]!);
      assert(initial !== ILLEGAL, 'the prefix found by the search replays against the model');
    }
    const window = failure.prefix.slice(cut).map((entry) => (entry < 0 ? ~entry : entry));
    const members = new Set<number>([...window, ...failure.pending, failure.blocked]);
    candidate = [...members].sort((a, b) => a - b).map((i) => core[i]!);
  }

  let stepsLeft = SHRINK_STEPS_TOTAL;
  let exhaustive = true; // false once some attempt ran out of budget: the result may not be minimal
  const verdict = (ops: readonly CoreOp[]): SearchResult['kind'] => {
    if (stepsLeft <= 0) {
      exhaustive = false;
      return 'unknown';
    }
    const result = search(ops, initial, { stepLimit: Math.min(SHRINK_STEPS_PER_ATTEMPT, stepsLeft), deadline });
    stepsLeft -= result.steps;
    if (result.kind === 'unknown') exhaustive = false;
    return result.kind;
  };
  if (!wholeHistory && verdict(candidate) !== 'not-linearizable') return null;

  // Anchor on the blocked op when the rest is consistent without it. Every accepted removal then
  // keeps "these ops are linearizable together, and the blocked op cannot be added to them";
  // otherwise removals may manufacture some other contradiction (drop the later writes a read
  // relied on, and that read becomes the violation) that misleads whoever is debugging.
  const blocked = core[failure.blocked]!;
  const withoutBlocked = (ops: readonly CoreOp[]): CoreOp[] => ops.filter((op) => op !== blocked);
  const anchored = candidate.includes(blocked) && verdict(withoutBlocked(candidate)) === 'linearizable';

  // A removal may also not leave a read or cas observing a value that no remaining op could have
  // written in time, or every kernel would collapse to "read a value never written".
  const tryRemoving = (remove: (index: number) => boolean): boolean => {
    const without = candidate.filter((op, k) => (anchored && op === blocked) || !remove(k));
    if (without.length === candidate.length || !keepsObservationsExplained(candidate, without, initial)) return false;
    if (anchored && verdict(withoutBlocked(without)) !== 'linearizable') return false;
    if (verdict(without) !== 'not-linearizable') return false;
    candidate = without;
    return true;
  };
  // Cheap large cuts first, since each check of a smaller history is cheaper: everything invoked
  // after the dead end, then halves, quarters, ... (as in delta debugging), later chunks first
  // because they are the most likely to be unrelated. Finally single ops to a fixpoint (1-minimal).
  const deadEnd = core[failure.blocked]!.retPos;
  tryRemoving((k) => candidate[k]!.callPos > deadEnd);
  for (let size = candidate.length >>> 1; size > 1; size >>>= 1) {
    for (let start = candidate.length - size; start > -size; start -= size) {
      const from = Math.max(0, start);
      tryRemoving((k) => k >= from && k < start + size);
    }
  }
  let changed = true;
  while (changed && stepsLeft > 0) {
    changed = false;
    for (let i = candidate.length - 1; i >= 0; i--) {
      if (tryRemoving((k) => k === i)) changed = true;
    }
  }
  return { initialValue: values.value(initial), operations: candidate.map((op) => op.source), minimal: exhaustive && stepsLeft > 0, anchored };
}

function keepsObservationsExplained(before: readonly CoreOp[], after: readonly CoreOp[], initial: number): boolean {
  const unexplainedBefore = unexplained(before, initial);
  for (const op of unexplained(after, initial)) if (!unexplainedBefore.has(op)) return false;
  return true;
}

/**
 * Observers (reads, cas expectations) of a value other than the initial one that no op in `ops`
 * could have written in time: none writing it was invoked before the observer completed.
 */
function unexplained(ops: readonly CoreOp[], initial: number): Set<CoreOp> {
  // The two earliest writers per value, so an observer that writes the value itself (a cas from v
  // to v) is not taken as its own explanation.
  const first = new Map<number, CoreOp>();
  const second = new Map<number, CoreOp>();
  for (const op of ops) {
    if (op.kind === READ) continue;
    const a = first.get(op.value);
    if (a === undefined || op.callPos < a.callPos) {
      if (a !== undefined) second.set(op.value, a);
      first.set(op.value, op);
    } else {
      const b = second.get(op.value);
      if (b === undefined || op.callPos < b.callPos) second.set(op.value, op);
    }
  }
  const result = new Set<CoreOp>();
  for (const op of ops) {
    const observed = op.kind === READ ? op.value : op.kind === CAS ? op.expected : initial;
    if (observed === initial) continue;
    const earliest = first.get(observed) === op ? second.get(observed) : first.get(observed);
    if (earliest === undefined || earliest.callPos > op.retPos) result.add(op);
  }
  return result;
}

const PREFIX_TAIL_SHOWN = 5;
const PENDING_SHOWN = 10;

function buildViolation(
  key: string,
  ops: readonly Operation[],
  core: readonly CoreOp[],
  failure: Failure,
  kernel: Kernel | null,
  values: ValueTable,
): Violation {
  const blocked = core[failure.blocked]!;
  const prefix = failure.prefix.flatMap((i) => (i < 0 ? [] : [core[i]!.source]));
  const pending = failure.pending.map((i) => core[i]!.source);
  const valueAfterPrefix = values.value(failure.stateAfterPrefix);
  const k = JSON.stringify(key);
  const lines: string[] = [];
  lines.push(`key ${k} is not linearizable (${plural(core.length, 'op')} checked).`);
  lines.push(`  This op could not take effect before it completed, whatever the order of the ops open with it:`);
  lines.push(`    ${describeOperation(blocked.source)}`);
  const skipped = failure.prefix.length - prefix.length;
  const covered = skipped === 0 ? `${prefix.length}` : `${failure.prefix.length} (${skipped} unknown-outcome ops in it never took effect)`;
  lines.push(`  Longest linearizable prefix found: ${covered} of ${plural(core.length, 'op')}, leaving ${k} = ${JSON.stringify(valueAfterPrefix)}.`);
  if (prefix.length > 0) {
    const shown = prefix.slice(-PREFIX_TAIL_SHOWN);
    lines.push(`  ${shown.length < prefix.length ? `Its last ${shown.length} ops` : 'Its ops'}, in linearization order:`);
    for (const op of shown) lines.push(`    ${describeOperation(op)}`);
  }
  if (pending.length > 0) {
    lines.push(`  Also open and not linearized at that point${pending.length > PENDING_SHOWN ? ` (first ${PENDING_SHOWN} of ${pending.length})` : ''}:`);
    for (const op of pending.slice(0, PENDING_SHOWN)) lines.push(`    ${describeOperation(op)}`);
  }
  if (kernel !== null) {
    const which = kernel.minimal ? 'Minimal non-linearizable subset' : 'Smallest non-linearizable subset found before the shrinking budget ran out';
    const why = kernel.anchored ? '; linearizable without the op above' : '';
    lines.push(`  ${which} (${plural(kernel.operations.length, 'op')}, starting from ${k} = ${JSON.stringify(kernel.initialValue)}${why}):`);
    for (const op of kernel.operations) lines.push(`    ${describeOperation(op)}`);
  }
  const hint = neverWrittenHint(blocked.source, ops);
  if (hint !== null) lines.push(`  Note: ${hint}`);
  return { key, blocked: blocked.source, prefix, valueAfterPrefix, pending, kernel, explanation: lines.join('\n') };
}

function neverWrittenHint(blocked: Operation, ops: readonly Operation[]): string | null {
  const observed = blocked.f === 'read' ? (blocked.output?.value ?? null) : blocked.f === 'cas' ? blocked.input.expected : null;
  if (observed === null) return null;
  if (ops.some((op) => op.f !== 'read' && op.outcome !== 'fail' && op.input.value === observed)) return null;
  const what = blocked.f === 'read' ? 'read' : 'expected';
  return `the ${what} value ${JSON.stringify(observed)} is never written to this key by any op that may have taken effect.`;
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

function summarize(verdict: KeyVerdict, keys: readonly KeyResult[], operations: number): string {
  if (verdict === 'linearizable') return `linearizable: ${plural(keys.length, 'key')}, ${plural(operations, 'op')}.`;
  const parts: string[] = [];
  for (const result of keys) {
    if (result.violation !== null) parts.push(result.violation.explanation);
    if (result.verdict === 'unknown') {
      const why = result.unknownReason === 'time-limit' ? 'the time limit ran out' : 'the step limit ran out';
      parts.push(`key ${JSON.stringify(result.key)}: unknown, ${why} after ${result.steps} steps (${result.checked} ops checked).`);
    }
  }
  return parts.join('\n');
}
