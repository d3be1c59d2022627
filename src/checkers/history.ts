/**
 * Register-workload histories: the event record (one JSON Lines row per event, also the on-disk
 * format of the chaos suite) and the pairing of invoke/completion events into operations.
 *
 * What it is: the types a client harness records, `pairOperations`, which validates a history and
 * turns it into operations with real-time intervals, and `describeOperation` for reports.
 * What it is not responsible for: deciding whether a history is linearizable (linearizability.ts),
 * reading or writing files, or clocks. It is pure and deterministic.
 *
 * Invariants of the operations `pairOperations` returns:
 * - they are in invoke order and `op.id` is the op's index in the returned array;
 * - `call <= ret`; `ret === Infinity` exactly when `outcome === 'info'`, which includes ops still
 *   open at the end of the history (an unknown outcome may take effect at any later time);
 * - real-time order is the order of events in the list: op A precedes op B iff A completed with
 *   ok/fail and `A.completeIndex < B.invokeIndex`. Times must be non-decreasing along the list, so
 *   this order refines the order of the recorded times (events at equal times are ordered by their
 *   position, which is what a single recorder observed).
 */

import { assert } from '../shared/assert.ts';

export type OpFunction = 'read' | 'write' | 'cas';
export type EventType = 'invoke' | 'ok' | 'fail' | 'info';
export type Outcome = 'ok' | 'fail' | 'info';

/**
 * One line of a history. `invoke` opens an operation on `process`; `ok`, `fail` or `info` closes it.
 * - read: `value` of the `ok` line is what was read (null = key absent).
 * - write: `value` is the value written (the completion repeats it).
 * - cas: `expected` is the expected value, `value` the new one; `ok` = applied, `fail` = did not apply.
 * - `info` = outcome unknown (e.g. a timeout): it may or may not have taken effect.
 */
export interface HistoryEvent {
  process: number;
  type: 'invoke' | 'ok' | 'fail' | 'info';
  f: 'read' | 'write' | 'cas';
  key: string;
  value: string | null;
  expected?: string | null;
  time: number;
}

interface OperationCommon {
  /** Index in the array `pairOperations` returned; invoke order. */
  readonly id: number;
  readonly process: number;
  readonly key: string;
  /** 'info' also for ops that never completed. */
  readonly outcome: Outcome;
  /** Time of the invoke event. */
  readonly call: number;
  /** Time of the ok/fail event; Infinity when the outcome is unknown. */
  readonly ret: number;
  /** Position of the invoke event in the history. */
  readonly invokeIndex: number;
  /** Position of the completion event; null when the op never completed. */
  readonly completeIndex: number | null;
}

export interface ReadOperation extends OperationCommon {
  readonly f: 'read';
  /** What was read; null unless the read completed with ok. */
  readonly output: { readonly value: string | null } | null;
}

export interface WriteOperation extends OperationCommon {
  readonly f: 'write';
  readonly input: { readonly value: string | null };
}

export interface CasOperation extends OperationCommon {
  readonly f: 'cas';
  /** Whether it applied is the outcome: ok = applied, fail = not applied, info = unknown. */
  readonly input: { readonly expected: string | null; readonly value: string | null };
}

export type Operation = ReadOperation | WriteOperation | CasOperation;

/** A malformed history: bad input from a recorder, not a bug in the checker. */
export class HistoryError extends Error {
  override readonly name = 'HistoryError';
  /** Position of the offending event in the history. */
  readonly eventIndex: number;

  constructor(message: string, eventIndex: number) {
    super(message);
    this.eventIndex = eventIndex;
  }
}

const EVENT_TYPES: ReadonlySet<unknown> = new Set<EventType>(['invoke', 'ok', 'fail', 'info']);
const FUNCTIONS: ReadonlySet<unknown> = new Set<OpFunction>(['read', 'write', 'cas']);

interface OpenOperation {
  readonly id: number;
  readonly process: number;
  readonly f: OpFunction;
  readonly key: string;
  readonly value: string | null;
  readonly expected: string | null;
  readonly call: number;
  readonly invokeIndex: number;
}

/**
 * Validates `events` and pairs each invoke with its completion. Failed ops are kept (with outcome
 * 'fail') so reports can show them; the checker ignores them. Throws `HistoryError` on malformed
 * input: a completion without an open invoke, a second invoke on a process with an op open, a
 * completion whose f/key/input differs from its invoke, times going backwards, or bad field types.
 */
export function pairOperations(events: readonly HistoryEvent[]): Operation[] {
  const operations: Operation[] = [];
  // Ops are materialised at completion, but ids must follow invoke order, so slots are reserved.
  const slots: (Operation | OpenOperation)[] = [];
  const open = new Map<number, OpenOperation>();
  let previousTime = -Infinity;

  events.forEach((event, index) => {
    validateShape(event, index);
    if (event.time < previousTime) {
      fail(index, event, `time ${event.time} is earlier than the previous event's time ${previousTime}`);
    }
    previousTime = event.time;

    const current = open.get(event.process);
    if (event.type === 'invoke') {
      if (current !== undefined) {
        fail(index, event, `process ${event.process} already has op #${current.id} (${current.f} ${JSON.stringify(current.key)}) open since event ${current.invokeIndex}`);
      }
      if (event.f === 'cas' && event.expected === undefined) {
        fail(index, event, 'a cas invoke needs an `expected` value (null for "key absent")');
      }
      const started: OpenOperation = {
        id: slots.length,
        process: event.process,
        f: event.f,
        key: event.key,
        value: event.f === 'read' ? null : event.value,
        expected: event.f === 'cas' ? (event.expected ?? null) : null,
        call: event.time,
        invokeIndex: index,
      };
      slots.push(started);
      open.set(event.process, started);
      return;
    }

    if (current === undefined) {
      fail(index, event, `${event.type} completion on process ${event.process}, which has no open operation`);
    }
    if (current.f !== event.f || current.key !== event.key) {
      fail(index, event, `completion (${event.f} ${JSON.stringify(event.key)}) does not match op #${current.id} (${current.f} ${JSON.stringify(current.key)}) invoked at event ${current.invokeIndex}`);
    }
    // Writes and cas carry their input on both lines; a mismatch means the recorder mixed ops up.
    if (current.f !== 'read' && event.value !== current.value) {
      fail(index, event, `completion value ${JSON.stringify(event.value)} differs from the invoked value ${JSON.stringify(current.value)} of op #${current.id}`);
    }
    if (current.f === 'cas' && event.expected !== undefined && event.expected !== current.expected) {
      fail(index, event, `completion expected ${JSON.stringify(event.expected)} differs from the invoked expected ${JSON.stringify(current.expected)} of op #${current.id}`);
    }
    open.delete(event.process);
    slots[current.id] = finish(current, event.type, event.type === 'info' ? Infinity : event.time, index, event.value);
  });

  for (const pending of open.values()) {
    slots[pending.id] = finish(pending, 'info', Infinity, null, null);
  }
  for (const slot of slots) {
    assert('outcome' in slot, `op #${slot.id} was neither completed nor left open`);
    operations.push(slot);
  }
  return operations;
}

function finish(
  op: OpenOperation,
  outcome: Outcome,
  ret: number,
  completeIndex: number | null,
  completionValue: string | null,
): Operation {
  const common = {
    id: op.id,
    process: op.process,
    key: op.key,
    outcome,
    call: op.call,
    ret,
    invokeIndex: op.invokeIndex,
    completeIndex,
  };
  switch (op.f) {
    case 'read':
      return { ...common, f: 'read', output: outcome === 'ok' ? { value: completionValue } : null };
    case 'write':
      return { ...common, f: 'write', input: { value: op.value } };
    case 'cas':
      return { ...common, f: 'cas', input: { expected: op.expected, value: op.value } };
  }
}

// Histories arrive from JSON Lines, so the static type is not evidence; check every field.
function validateShape(event: HistoryEvent, index: number): void {
  const raw = event as unknown;
  if (typeof raw !== 'object' || raw === null) {
    throw new HistoryError(`event ${index}: expected an object, got ${JSON.stringify(raw)}`, index);
  }
  if (!Number.isInteger(event.process)) fail(index, event, '`process` must be an integer');
  if (!EVENT_TYPES.has(event.type)) fail(index, event, '`type` must be invoke, ok, fail or info');
  if (!FUNCTIONS.has(event.f)) fail(index, event, '`f` must be read, write or cas');
  if (typeof event.key !== 'string') fail(index, event, '`key` must be a string');
  if (!isValue(event.value)) fail(index, event, '`value` must be a string or null');
  if (event.expected !== undefined && !isValue(event.expected)) {
    fail(index, event, '`expected` must be a string or null when present');
  }
  if (typeof event.time !== 'number' || !Number.isFinite(event.time)) fail(index, event, '`time` must be a finite number');
}

function isValue(value: unknown): value is string | null {
  return value === null || typeof value === 'string';
}

function fail(index: number, event: HistoryEvent, reason: string): never {
  throw new HistoryError(`malformed history at event ${index} ${JSON.stringify(event)}: ${reason}`, index);
}

/** One-line human description, e.g. `#7 p2 read "x" → "b" ok [t 10→12]`. */
export function describeOperation(op: Operation): string {
  const key = JSON.stringify(op.key);
  let body: string;
  switch (op.f) {
    case 'read':
      body = `read ${key}${op.output === null ? '' : ` → ${JSON.stringify(op.output.value)}`}`;
      break;
    case 'write':
      body = `write ${key} := ${JSON.stringify(op.input.value)}`;
      break;
    case 'cas':
      body = `cas ${key} ${JSON.stringify(op.input.expected)} → ${JSON.stringify(op.input.value)}`;
      break;
  }
  const end = op.ret === Infinity ? (op.completeIndex === null ? '∞, never completed' : '∞') : String(op.ret);
  return `#${op.id} p${op.process} ${body} ${op.outcome} [t ${op.call}→${end}]`;
}
