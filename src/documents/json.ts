/**
 * JSON value helpers for the document state machine: the JSON types, a structural checker, deep
 * equality, cloning and freezing, a canonical (sorted-key) encoding, UTF-8 length, and FNV-1a 64.
 *
 * Not responsible for: document rules (names, ids, limits live in types.ts) or for parsing bytes.
 *
 * Invariants:
 * - Everything here is pure and deterministic: same input, same output, on every node.
 * - Object members are always created with defineProperty, so a member called "__proto__" (which
 *   JSON.parse creates as an ordinary own member) stays data and never rewires a prototype.
 * - The canonical encoding sorts object keys by UTF-16 code unit order; it is used for digests and
 *   deep comparison, never for what clients see (their key order is kept as written).
 */

export type JsonPrimitive = null | boolean | number | string;
export type JsonValue = JsonPrimitive | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

/**
 * Nesting cap applied even when no configured limit is in force (log replay, snapshots), so a
 * cyclic or absurdly deep value fails validation instead of overflowing the stack. Configured
 * limits may only be stricter (checked in types.ts).
 */
export const jsonDepthHardMax = 512;

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

export function isJsonObject(value: unknown): value is JsonObject {
  return isPlainObject(value);
}

/** True when the string has a lone surrogate; such text has no UTF-8 form and would not round trip. */
const loneSurrogate = /[\uD800-\uDFFF]/u;
export function hasLoneSurrogate(text: string): boolean {
  return loneSurrogate.test(text);
}

export interface JsonProblem {
  /** 'shape': not JSON at all; 'depth': nested deeper than allowed. */
  kind: 'shape' | 'depth';
  /** Where, as a JSON-Pointer-like path, for the error message. */
  path: string;
  message: string;
}

/**
 * Checks that `value` is strictly JSON: null, booleans, finite numbers, well-formed strings, dense
 * arrays, and plain objects whose keys are well-formed strings. `depthMax` counts containers: a
 * flat object has depth 1. Returns the first problem found, or null.
 */
export function checkJson(value: unknown, depthMax: number): JsonProblem | null {
  const limit = Math.min(depthMax, jsonDepthHardMax);
  // Valid values (nearly all) are checked without building a path for every member; the path is
  // worked out only for a value that has a problem.
  return isStrictJson(value, limit, 0) ? null : checkJsonAt(value, limit, 0, '');
}

/** checkJsonAt's verdict without its report: must accept exactly the values it accepts. */
function isStrictJson(value: unknown, depthMax: number, depth: number): boolean {
  if (value === null || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (typeof value === 'string') return !hasLoneSurrogate(value);
  if (typeof value !== 'object' || depth + 1 > depthMax) return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i += 1) {
      if (!(i in value) || !isStrictJson(value[i], depthMax, depth + 1)) return false;
    }
    return true;
  }
  if (!isPlainObject(value)) return false;
  for (const key of Object.keys(value)) {
    if (hasLoneSurrogate(key) || !isStrictJson(value[key], depthMax, depth + 1)) return false;
  }
  return true;
}

function checkJsonAt(value: unknown, depthMax: number, depth: number, path: string): JsonProblem | null {
  if (value === null || typeof value === 'boolean') return null;
  if (typeof value === 'number') {
    return Number.isFinite(value) ? null : { kind: 'shape', path, message: `non-finite number at '${path}'` };
  }
  if (typeof value === 'string') {
    return hasLoneSurrogate(value) ? { kind: 'shape', path, message: `string with a lone surrogate at '${path}'` } : null;
  }
  if (typeof value !== 'object') {
    return { kind: 'shape', path, message: `${typeof value} is not a JSON value at '${path}'` };
  }
  if (depth + 1 > depthMax) {
    return { kind: 'depth', path, message: `nested deeper than ${depthMax} at '${path}'` };
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i += 1) {
      // A hole serialises as null but reads back as undefined: refuse the ambiguity.
      if (!(i in value)) return { kind: 'shape', path: `${path}/${i}`, message: `array hole at '${path}/${i}'` };
      const problem = checkJsonAt(value[i], depthMax, depth + 1, `${path}/${i}`);
      if (problem !== null) return problem;
    }
    return null;
  }
  if (!isPlainObject(value)) {
    return { kind: 'shape', path, message: `non-plain object at '${path}'` };
  }
  for (const key of Object.keys(value)) {
    if (hasLoneSurrogate(key)) return { kind: 'shape', path, message: `key with a lone surrogate at '${path}'` };
    const problem = checkJsonAt(value[key], depthMax, depth + 1, `${path}/${escapePointer(key)}`);
    if (problem !== null) return problem;
  }
  return null;
}

function escapePointer(key: string): string {
  return key.replaceAll('~', '~0').replaceAll('/', '~1');
}

/** Sets an own data member, bypassing the `__proto__` setter. */
export function setMember(target: JsonObject, key: string, value: JsonValue): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

export function getMember(target: JsonObject, key: string): JsonValue | undefined {
  return Object.hasOwn(target, key) ? target[key] : undefined;
}

export function cloneJson<T extends JsonValue>(value: T): T;
export function cloneJson(value: JsonValue): JsonValue {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((item) => cloneJson(item));
  const out: JsonObject = {};
  for (const key of Object.keys(value)) setMember(out, key, cloneJson(value[key] as JsonValue));
  return out;
}

/** Freezes a JSON value in place, all the way down; returns it for chaining. */
export function deepFreeze<T extends JsonValue>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    if (Array.isArray(value)) for (const item of value) deepFreeze(item);
    else for (const key of Object.keys(value)) deepFreeze(value[key] as JsonValue);
  }
  return value;
}

/** Structural equality; object key order does not matter, array order does. */
export function jsonEqual(a: JsonValue, b: JsonValue): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i += 1) if (!jsonEqual(a[i] as JsonValue, b[i] as JsonValue)) return false;
    return true;
  }
  const aKeys = Object.keys(a);
  if (aKeys.length !== Object.keys(b).length) return false;
  for (const key of aKeys) {
    if (!Object.hasOwn(b, key)) return false;
    if (!jsonEqual(a[key] as JsonValue, b[key] as JsonValue)) return false;
  }
  return true;
}

/** JSON text with object keys sorted (code unit order) at every level; no whitespace. */
export function canonicalJson(value: JsonValue): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item)).join(',')}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key] as JsonValue)}`).join(',')}}`;
}

/** UTF-8 byte length of a string without allocating (lone surrogates count as U+FFFD, 3 bytes). */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i += 1) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i += 1;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

/** Size of a JSON value as compact JSON text in UTF-8: the unit every byte limit is measured in. */
export function jsonByteLength(value: JsonValue): number {
  return utf8Length(JSON.stringify(value));
}

/**
 * FNV-1a, 64-bit, kept in two unsigned 32-bit halves so it runs on plain numbers (BigInt per byte
 * is slow). Not cryptographic: it detects replica divergence, it does not resist an adversary.
 */
export class Fnv1a64 {
  private hi = 0xcbf29ce4;
  private lo = 0x84222325;

  updateByte(byte: number): void {
    this.lo = (this.lo ^ byte) >>> 0;
    // Multiply by the prime 2^40 + 0x1b3: the 0x1b3 part on both halves (with carry), and the 2^40
    // part only moves the low half, shifted by 8, into the high half. All terms stay below 2^53.
    const loProduct = this.lo * 0x1b3;
    const carry = Math.floor(loProduct / 0x1_0000_0000);
    const hiProduct = this.hi * 0x1b3 + carry + ((this.lo << 8) >>> 0);
    this.lo = loProduct >>> 0;
    this.hi = hiProduct % 0x1_0000_0000 >>> 0;
  }

  updateBytes(bytes: Uint8Array): void {
    for (const byte of bytes) this.updateByte(byte);
  }

  /** Feeds the UTF-8 encoding of `text` (lone surrogates as U+FFFD, like TextEncoder). */
  updateString(text: string): void {
    for (let i = 0; i < text.length; i += 1) {
      let code = text.charCodeAt(i);
      if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
        const next = text.charCodeAt(i + 1);
        if (next >= 0xdc00 && next <= 0xdfff) {
          code = 0x10000 + ((code - 0xd800) << 10) + (next - 0xdc00);
          i += 1;
        } else code = 0xfffd;
      } else if (code >= 0xd800 && code <= 0xdfff) code = 0xfffd;
      if (code < 0x80) this.updateByte(code);
      else if (code < 0x800) {
        this.updateByte(0xc0 | (code >> 6));
        this.updateByte(0x80 | (code & 0x3f));
      } else if (code < 0x10000) {
        this.updateByte(0xe0 | (code >> 12));
        this.updateByte(0x80 | ((code >> 6) & 0x3f));
        this.updateByte(0x80 | (code & 0x3f));
      } else {
        this.updateByte(0xf0 | (code >> 18));
        this.updateByte(0x80 | ((code >> 12) & 0x3f));
        this.updateByte(0x80 | ((code >> 6) & 0x3f));
        this.updateByte(0x80 | (code & 0x3f));
      }
    }
  }

  hex(): string {
    return this.hi.toString(16).padStart(8, '0') + this.lo.toString(16).padStart(8, '0');
  }
}
