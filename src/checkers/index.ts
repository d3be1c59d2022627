/**
 * Public API of the history checkers.
 *
 * What it is: the re-exports other folders (simulator, chaos suite) should import from.
 * What it is not responsible for: any logic; it only names what is public.
 * Invariant: named exports only, so a rename here is a compile error at every caller.
 */

export {
  HistoryError,
  describeOperation,
  pairOperations,
  type CasOperation,
  type EventType,
  type HistoryEvent,
  type OpFunction,
  type Operation,
  type Outcome,
  type ReadOperation,
  type WriteOperation,
} from './history.ts';
export {
  checkLinearizability,
  type CheckOptions,
  type Kernel,
  type KeyResult,
  type KeyVerdict,
  type LinearizabilityResult,
  type Violation,
} from './linearizability.ts';
