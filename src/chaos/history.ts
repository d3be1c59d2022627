/**
 * The history recorder of the chaos suite: every client operation as an `invoke` event and one
 * completion (`ok`, `fail` or `info`), in the JSON Lines format documented in docs/chaos.md.
 *
 * The register part of a history (f = read, write, cas) is exactly the input format of the
 * project's linearizability checker (src/checkers/history.ts); the set workload adds `add` and
 * `read-all`. One recorder serves every logical client process of a run, so the order of events
 * in the list is the real-time order a single observer saw, and times never go backwards.
 *
 * Invariants: at most one open op per process (a second invoke throws); a completion repeats the
 * invoke's f, key and (for write, cas, add) value; `time` is integer nanoseconds since the
 * recorder started, non-decreasing along the list.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { HistoryEvent } from '../checkers/index.ts';

export type ChaosFunction = 'read' | 'write' | 'cas' | 'add' | 'read-all';
export type ChaosEventType = 'invoke' | 'ok' | 'fail' | 'info';

export interface ChaosEvent {
  readonly process: number;
  readonly type: ChaosEventType;
  readonly f: ChaosFunction;
  readonly key: string;
  readonly value: string | null;
  /** cas only: the expected value (null = key absent). */
  readonly expected?: string | null;
  /** Nanoseconds since the start of the run. */
  readonly time: number;
  /**
   * Optional, on fail/info completions only: why, as the client saw it ("503 NO_LEADER",
   * "timeout", "refused", "reset", "mismatch" for a cas that read another value). Checkers
   * ignore it; reports use it.
   */
  readonly error?: string;
}

export interface InvokeInput {
  readonly process: number;
  readonly f: ChaosFunction;
  readonly key: string;
  readonly value: string | null;
  readonly expected?: string | null;
}

/** An invoked op waiting for its completion. */
export interface OpenOp {
  readonly process: number;
  readonly f: ChaosFunction;
  readonly key: string;
  readonly value: string | null;
  readonly expected: string | null;
  /** Time of the invoke event (ns). */
  readonly time: number;
}

export class HistoryRecorder {
  readonly events: ChaosEvent[] = [];
  private readonly open = new Map<number, OpenOp>();
  private readonly clock: () => bigint;
  private readonly origin: bigint;
  private last = 0;

  /** `clock` returns nanoseconds (default: process.hrtime.bigint); time 0 is when the recorder is made. */
  constructor(clock: () => bigint = () => process.hrtime.bigint()) {
    this.clock = clock;
    this.origin = clock();
  }

  /** Nanoseconds since the start, never less than the last recorded time. */
  now(): number {
    const elapsed = Number(this.clock() - this.origin);
    this.last = Math.max(this.last, elapsed);
    return this.last;
  }

  /** Milliseconds since the start (same clock as the events). */
  nowMs(): number {
    return this.now() / 1e6;
  }

  isOpen(process: number): boolean {
    return this.open.has(process);
  }

  invoke(input: InvokeInput): OpenOp {
    if (this.open.has(input.process)) throw new Error(`process ${input.process} already has an open op`);
    if (input.f === 'cas' && input.expected === undefined) throw new Error('a cas needs an expected value');
    const time = this.now();
    const op: OpenOp = {
      process: input.process, f: input.f, key: input.key,
      value: input.f === 'read' || input.f === 'read-all' ? null : input.value,
      expected: input.f === 'cas' ? (input.expected ?? null) : null,
      time,
    };
    this.open.set(input.process, op);
    this.events.push(makeEvent(op, 'invoke', op.value, time));
    return op;
  }

  /**
   * Completes `op`. For reads, `readValue` is what was read (ok only; null = absent); for
   * read-all, the JSON array string of the elements read; other ops repeat their input value.
   */
  complete(op: OpenOp, type: Exclude<ChaosEventType, 'invoke'>, readValue: string | null = null, error?: string): ChaosEvent {
    if (this.open.get(op.process) !== op) throw new Error(`op of process ${op.process} is not open`);
    this.open.delete(op.process);
    const value = op.f === 'read' || op.f === 'read-all' ? (type === 'ok' ? readValue : null) : op.value;
    const event = makeEvent(op, type, value, this.now(), type === 'ok' ? undefined : error);
    this.events.push(event);
    return event;
  }

  /** Ops still open (their outcome is unknown: the checker treats them as info). */
  openOps(): OpenOp[] {
    return [...this.open.values()];
  }

  toJsonl(): string {
    return serializeHistory(this.events);
  }
}

function makeEvent(op: OpenOp, type: ChaosEventType, value: string | null, time: number, error?: string): ChaosEvent {
  const event: ChaosEvent = op.f === 'cas'
    ? { process: op.process, type, f: op.f, key: op.key, value, expected: op.expected, time }
    : { process: op.process, type, f: op.f, key: op.key, value, time };
  return error === undefined ? event : { ...event, error };
}

/** One JSON object per line, fields in the documented order, a trailing newline. */
export function serializeHistory(events: readonly ChaosEvent[]): string {
  let out = '';
  for (const event of events) {
    const line: Record<string, unknown> = { process: event.process, type: event.type, f: event.f, key: event.key, value: event.value };
    if (event.expected !== undefined) line['expected'] = event.expected;
    line['time'] = event.time;
    if (event.error !== undefined) line['error'] = event.error;
    out += `${JSON.stringify(line)}\n`;
  }
  return out;
}

export function parseHistory(text: string): ChaosEvent[] {
  const events: ChaosEvent[] = [];
  text.split('\n').forEach((line, index) => {
    if (line.trim() === '') return;
    try {
      events.push(JSON.parse(line) as ChaosEvent);
    } catch (error) {
      throw new Error(`history line ${index + 1} is not JSON: ${(error as Error).message}`);
    }
  });
  return events;
}

export function writeHistory(path: string, events: readonly ChaosEvent[]): void {
  writeFileSync(path, serializeHistory(events));
}

export function readHistory(path: string): ChaosEvent[] {
  return parseHistory(readFileSync(path, 'utf8'));
}

/** The register part of a history (read, write, cas), in the checker's input type. */
export function registerEvents(events: readonly ChaosEvent[]): HistoryEvent[] {
  const out: HistoryEvent[] = [];
  for (const event of events) {
    if (event.f !== 'read' && event.f !== 'write' && event.f !== 'cas') continue;
    out.push(event.f === 'cas'
      ? { process: event.process, type: event.type, f: event.f, key: event.key, value: event.value, expected: event.expected ?? null, time: event.time }
      : { process: event.process, type: event.type, f: event.f, key: event.key, value: event.value, time: event.time });
  }
  return out;
}

/** One client operation with its outcome, paired from a history (any workload). */
export interface PairedOp {
  readonly process: number;
  readonly f: ChaosFunction;
  readonly key: string;
  readonly value: string | null;
  readonly expected: string | null;
  /** 'info' also for ops never completed. */
  readonly outcome: 'ok' | 'fail' | 'info';
  /** ns */
  readonly invokeTime: number;
  /** ns; null when never completed */
  readonly completeTime: number | null;
  /** The completion's value (reads: what was read; read-all: the JSON array string). */
  readonly result: string | null;
  /** The completion's `error` annotation, if any. */
  readonly error: string | null;
}

/** Pairs invokes with completions per process; tolerant (reports, not validation: see checkers). */
export function pairChaosOps(events: readonly ChaosEvent[]): PairedOp[] {
  const out: (PairedOp | null)[] = [];
  const open = new Map<number, { slot: number; event: ChaosEvent }>();
  for (const event of events) {
    if (event.type === 'invoke') {
      open.set(event.process, { slot: out.length, event });
      out.push(null);
      continue;
    }
    const started = open.get(event.process);
    if (started === undefined) continue;
    open.delete(event.process);
    const invoke = started.event;
    out[started.slot] = {
      process: invoke.process, f: invoke.f, key: invoke.key, value: invoke.value, expected: invoke.expected ?? null,
      outcome: event.type, invokeTime: invoke.time, completeTime: event.time, result: event.value, error: event.error ?? null,
    };
  }
  for (const { slot, event } of open.values()) {
    out[slot] = {
      process: event.process, f: event.f, key: event.key, value: event.value, expected: event.expected ?? null,
      outcome: 'info', invokeTime: event.time, completeTime: null, result: null, error: 'never completed',
    };
  }
  return out.filter((op): op is PairedOp => op !== null);
}
