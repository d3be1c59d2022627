/**
 * The simulator's state machine: the real document state machine (src/documents) used as a set
 * of registers, one document per key in the `registers` collection, so the client history is a
 * register history the linearizability checker understands.
 *   write(key, v)          -> put registers/key {v}
 *   cas(key, old, new)     -> put registers/key {v: new} if field v == old (old null: create-only)
 *   read(key)              -> body.v of registers/key, or null
 */
import { assert } from '../shared/assert.ts';
import type { Entry } from '../consensus/types.ts';
import type { ReplicaStateMachine } from '../replica/replica.ts';
import {
  MemoryDocumentStore, applyCommand, decodeCommand, encodeCommand, readAppliedIndex, type ApplyResult, type BatchCommand,
} from '../documents/index.ts';

export const REGISTER_COLLECTION = 'registers';

export type RegisterWrite =
  | { readonly f: 'write'; readonly key: string; readonly value: string }
  | { readonly f: 'cas'; readonly key: string; readonly expected: string | null; readonly value: string };

export function encodeRegisterWrite(write: RegisterWrite, timestampMs: number, requestId: string): Uint8Array {
  const condition = write.f === 'write'
    ? undefined
    : write.expected === null ? { exists: false } : { fields: { v: write.expected } };
  const command: BatchCommand = {
    type: 'batch',
    ops: [{
      action: 'put', collection: REGISTER_COLLECTION, id: write.key, body: { v: write.value },
      ...(condition === undefined ? {} : { condition }),
    }],
    timestampMs,
    requestId,
  };
  return encodeCommand(command);
}

export class RegisterMachine implements ReplicaStateMachine<ApplyResult> {
  readonly store = new MemoryDocumentStore();

  apply(entry: Entry): ApplyResult {
    const decoded = decodeCommand(entry.data);
    assert(decoded.ok, 'the simulator only proposes valid commands');
    return applyCommand(this.store, decoded.command, { index: entry.index, term: entry.term });
  }

  snapshot(): Uint8Array {
    return this.store.snapshot();
  }

  appliedIndex(): number {
    return readAppliedIndex(this.store).index;
  }

  restore(bytes: Uint8Array): void {
    const problem = this.store.restore(bytes);
    assert(problem === null, `snapshot restore failed: ${problem?.message}`);
  }

  read(key: string): string | null {
    const doc = this.store.get(REGISTER_COLLECTION, key);
    if (doc === null) return null;
    const value = doc.body['v'];
    assert(typeof value === 'string', 'register values are strings');
    return value;
  }

  digest(): string {
    return this.store.digest();
  }
}
