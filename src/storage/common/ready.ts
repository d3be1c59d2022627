/**
 * Facts about a Ready that every durable ReplicaStorage (lmdb/log_storage.ts,
 * segments/segment_log_storage.ts) decides the same way, kept in one place so the two cannot drift.
 *
 * Not responsible for: how a Ready is written (each storage does that).
 */
import { assert } from '../../shared/assert.ts';
import type { Entry, Ready } from '../../consensus/types.ts';

/**
 * A Ready whose only change is a higher commit index needs no fsync (`mustSync` is false): Raft
 * recovers the commit index from its peers, so losing it in a crash is harmless. Skipping it
 * halves the fsyncs of a lightly loaded leader; the commit index is written with the next Ready
 * that must be synced anyway.
 */
export function hasDurableParts(ready: Ready): boolean {
  if (!ready.mustSync && ready.entries.length === 0 && ready.snapshot === null && ready.snapshotChunks.length === 0) return false;
  return ready.hardState !== null || ready.entries.length > 0 || ready.snapshot !== null || ready.snapshotChunks.length > 0;
}

export function assertContiguous(entries: readonly Entry[]): void {
  for (let i = 1; i < entries.length; i += 1) {
    const previous = entries[i - 1] as Entry;
    const entry = entries[i] as Entry;
    assert(entry.index === previous.index + 1, `entries to persist are not contiguous: ${previous.index} then ${entry.index}`);
  }
}
