/**
 * Assertions that stay on in production.
 *
 * A failed assertion is a programmer error: the process must stop rather than continue in a state
 * nobody reasoned about (TigerBeetle, "far better to stop operating than to continue operating in
 * an incorrect state"). Bad user input is never asserted; it is validated at the edge and answered
 * with a 4xx.
 */

export class AssertionError extends Error {
  override readonly name = 'AssertionError';
}

export function assert(condition: unknown, message = 'assertion failed'): asserts condition {
  if (!condition) throw new AssertionError(message);
}

export function assertNever(value: never, message = 'unexpected value'): never {
  throw new AssertionError(`${message}: ${JSON.stringify(value)}`);
}

export function unreachable(message = 'unreachable'): never {
  throw new AssertionError(message);
}
