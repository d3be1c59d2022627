// Goal: the assertion helpers throw loudly on false conditions and are silent otherwise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assert as check, AssertionError } from '../../src/shared/assert.ts';

test('assert throws AssertionError with the message on a false condition', () => {
  assert.throws(() => check(false, 'boom'), (error: unknown) => error instanceof AssertionError && error.message === 'boom');
  check(true, 'never');
});
