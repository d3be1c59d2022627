/**
 * The checks run over a chaos history:
 * - linearizability of the register part, per key, with the project checker (src/checkers);
 * - the set workload: every acknowledged add is in the final read (else it is a lost write),
 *   nothing is in the final read that was never attempted, and no definitely rejected add is in it;
 * - duplicates: every element is written once through an Idempotency-Key, so a version above 1
 *   means a retry applied twice;
 * - processes: no node exited without the harness killing it.
 *
 * Every check answers `pass`, `fail` or `unknown` (not enough information, e.g. no final read or
 * the linearizability search ran out of budget); `unknown` is never reported as a pass.
 */
import { checkLinearizability, HistoryError } from '../checkers/index.ts';
import { pairChaosOps, registerEvents, type ChaosEvent } from './history.ts';

export type CheckVerdict = 'pass' | 'fail' | 'unknown';

export interface LinearizabilityCheck {
  readonly verdict: CheckVerdict;
  /** The checker's own verdict: linearizable, not-linearizable, unknown; or skipped/malformed. */
  readonly detail: 'linearizable' | 'not-linearizable' | 'unknown' | 'skipped' | 'malformed-history';
  readonly keys: number;
  readonly operations: number;
  readonly nonLinearizableKeys: readonly string[];
  readonly unknownKeys: readonly string[];
  /** The checker's explanation (violations with their minimal kernels), trimmed. */
  readonly explanation: string;
  readonly elapsedMs: number;
}

const EXPLANATION_CHARS_MAX = 20_000;

export function checkRegisterHistory(events: readonly ChaosEvent[], options: { timeLimitMs?: number; stepLimit?: number } = {}): LinearizabilityCheck {
  const started = performance.now();
  const register = registerEvents(events);
  if (register.length === 0) {
    return { verdict: 'pass', detail: 'skipped', keys: 0, operations: 0, nonLinearizableKeys: [], unknownKeys: [], explanation: 'no register operations', elapsedMs: 0 };
  }
  try {
    const result = checkLinearizability(register, {
      ...(options.timeLimitMs === undefined ? {} : { timeLimitMs: options.timeLimitMs }),
      ...(options.stepLimit === undefined ? {} : { stepLimit: options.stepLimit }),
    });
    const explanation = result.explanation.length > EXPLANATION_CHARS_MAX
      ? `${result.explanation.slice(0, EXPLANATION_CHARS_MAX)}\n... (${result.explanation.length - EXPLANATION_CHARS_MAX} more characters)`
      : result.explanation;
    return {
      verdict: result.verdict === 'linearizable' ? 'pass' : result.verdict === 'not-linearizable' ? 'fail' : 'unknown',
      detail: result.verdict,
      keys: result.keys.length,
      operations: result.operations,
      nonLinearizableKeys: result.keys.filter((key) => key.verdict === 'not-linearizable').map((key) => key.key),
      unknownKeys: result.keys.filter((key) => key.verdict === 'unknown').map((key) => key.key),
      explanation,
      elapsedMs: Math.round(performance.now() - started),
    };
  } catch (error) {
    if (!(error instanceof HistoryError)) throw error;
    return {
      verdict: 'unknown', detail: 'malformed-history', keys: 0, operations: register.length, nonLinearizableKeys: [], unknownKeys: [],
      explanation: error.message, elapsedMs: Math.round(performance.now() - started),
    };
  }
}

export interface SetCheck {
  readonly verdict: CheckVerdict;
  /** Adds attempted (invoked). */
  readonly attempted: number;
  readonly acknowledged: number;
  readonly failed: number;
  readonly indeterminate: number;
  /** Whether a final read-all succeeded. */
  readonly finalRead: boolean;
  readonly finalSize: number;
  /** Acknowledged adds missing from the final read: acknowledged writes lost (RPO). */
  readonly lost: readonly string[];
  /** Elements in the final read that no add ever attempted. */
  readonly unexpected: readonly string[];
  /** Adds answered with a definite rejection that are in the final read anyway. */
  readonly rejectedButPresent: readonly string[];
  /** Indeterminate adds that turned out to be applied / not applied. */
  readonly indeterminatePresent: number;
  readonly indeterminateAbsent: number;
  /** ns completion time of each lost add's acknowledgement (for attributing losses to faults). */
  readonly lostAckTimes: readonly number[];
}

/**
 * Checks the set workload's adds against the last successful read-all in `events`.
 * Without a successful read-all the verdict is unknown.
 */
export function checkSetHistory(events: readonly ChaosEvent[]): SetCheck {
  const ops = pairChaosOps(events);
  const adds = ops.filter((op) => op.f === 'add');
  const reads = ops.filter((op) => op.f === 'read-all' && op.outcome === 'ok' && op.result !== null);
  const finalRead = reads.at(-1);
  let final: Set<string> | null = null;
  if (finalRead !== undefined) {
    try {
      const parsed = JSON.parse(finalRead.result ?? '[]') as unknown;
      if (Array.isArray(parsed)) final = new Set(parsed.map(String));
    } catch {
      final = null;
    }
  }
  const attempted = new Set<string>();
  const lost: string[] = [];
  const lostAckTimes: number[] = [];
  const rejectedButPresent: string[] = [];
  let acknowledged = 0;
  let failed = 0;
  let indeterminate = 0;
  let indeterminatePresent = 0;
  let indeterminateAbsent = 0;
  for (const add of adds) {
    if (add.value === null) continue;
    attempted.add(add.value);
    if (add.outcome === 'ok') acknowledged++;
    else if (add.outcome === 'fail') failed++;
    else indeterminate++;
    if (final === null) continue;
    const present = final.has(add.value);
    if (add.outcome === 'ok' && !present) {
      lost.push(add.value);
      lostAckTimes.push(add.completeTime ?? add.invokeTime);
    }
    if (add.outcome === 'fail' && present) rejectedButPresent.push(add.value);
    if (add.outcome === 'info') {
      if (present) indeterminatePresent++;
      else indeterminateAbsent++;
    }
  }
  const unexpected = final === null ? [] : [...final].filter((element) => !attempted.has(element)).sort();
  const violation = lost.length > 0 || unexpected.length > 0 || rejectedButPresent.length > 0;
  return {
    verdict: adds.length === 0 ? 'pass' : final === null ? (violation ? 'fail' : 'unknown') : violation ? 'fail' : 'pass',
    attempted: attempted.size, acknowledged, failed, indeterminate,
    finalRead: final !== null, finalSize: final?.size ?? 0,
    lost, unexpected, rejectedButPresent, indeterminatePresent, indeterminateAbsent, lostAckTimes,
  };
}

export interface DuplicatesCheck {
  readonly verdict: CheckVerdict;
  readonly checked: number;
  /** Elements whose document version is above 1: an idempotent add applied more than once. */
  readonly duplicates: readonly { readonly id: string; readonly version: number }[];
}

/** `versions`: id → document version from the final read (null when there was no final read). */
export function checkDuplicates(versions: ReadonlyMap<string, number> | null): DuplicatesCheck {
  if (versions === null) return { verdict: 'unknown', checked: 0, duplicates: [] };
  const duplicates = [...versions].filter(([, version]) => version > 1).map(([id, version]) => ({ id, version })).sort((a, b) => a.id.localeCompare(b.id));
  return { verdict: duplicates.length === 0 ? 'pass' : 'fail', checked: versions.size, duplicates };
}

export interface ProcessCheck {
  readonly verdict: CheckVerdict;
  /** Exits the harness did not cause, per node. */
  readonly unexpectedExits: readonly { readonly node: string; readonly at: string; readonly code: number | null; readonly signal: string | null; readonly lastLines?: string }[];
}

export function checkProcesses(exits: readonly { node: string; at: string; code: number | null; signal: string | null; lastLines?: string }[]): ProcessCheck {
  return { verdict: exits.length === 0 ? 'pass' : 'fail', unexpectedExits: exits };
}
