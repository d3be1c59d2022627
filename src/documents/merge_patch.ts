/**
 * JSON Merge Patch, RFC 7396, exactly as its section 2 pseudocode:
 * - a patch that is an object merges into the target member by member (a non-object target is
 *   first replaced by {}); a member whose patch value is null is removed; any other member value
 *   is merged recursively by the same rule;
 * - a patch that is not an object (array, string, number, boolean, null) replaces the target.
 *
 * Not responsible for: validating sizes or whether the result is a valid document body (prepare.ts).
 *
 * Invariants: pure. Neither argument is mutated and the result shares no mutable structure with
 * them (values taken from the patch are copied), so the result can be frozen or edited freely.
 * Members keep the target's order; new members follow in the patch's order.
 */

import { cloneJson, getMember, isJsonObject, setMember, type JsonObject, type JsonValue } from './json.ts';

/** `target` undefined means "no value" (a member the target lacks), which RFC 7396 treats like a non-object. */
export function applyMergePatch(target: JsonValue | undefined, patch: JsonValue): JsonValue {
  if (!isJsonObject(patch)) return cloneJson(patch);
  const result: JsonObject = {};
  if (target !== undefined && isJsonObject(target)) {
    for (const key of Object.keys(target)) setMember(result, key, cloneJson(target[key] as JsonValue));
  }
  for (const key of Object.keys(patch)) {
    const value = patch[key] as JsonValue;
    if (value === null) {
      delete result[key];
    } else {
      setMember(result, key, applyMergePatch(getMember(result, key), value));
    }
  }
  return result;
}
