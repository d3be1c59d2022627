// Shared helpers for the storage tests: temporary directories, Ready and Entry builders, and the
// SimDisk reference model driven synchronously (the durable storages must end in the same state).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Entry, HardState, Membership, Ready, SnapshotChunk, SnapshotMeta } from '../../src/consensus/types.ts';
import type { PersistentState } from '../../src/consensus/raft_core.ts';
import { SimDisk } from '../../src/sim/sim_disk.ts';
import type { ReplicaStorage } from '../../src/replica/replica.ts';

export const membership: Membership = { voters: ['a', 'b', 'c'], learners: [] };

export function tempDir(label: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `understudy-${label}-`));
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Runs `body` with a fresh temporary directory, removed afterwards whatever happens. */
export async function withTempDir<T>(label: string, body: (dir: string) => Promise<T> | T): Promise<T> {
  const dir = tempDir(label);
  try {
    return await body(dir);
  } finally {
    removeDir(dir);
  }
}

export function entry(index: number, term: number, text = `e${index}`): Entry {
  return { index, term, kind: 'normal', data: new TextEncoder().encode(text) };
}

export function entries(from: number, to: number, term: number): Entry[] {
  const out: Entry[] = [];
  for (let index = from; index <= to; index += 1) out.push(entry(index, term));
  return out;
}

let readyNumber = 0;

export function ready(parts: {
  hardState?: HardState | null;
  entries?: readonly Entry[];
  snapshot?: SnapshotMeta | null;
  snapshotChunks?: readonly SnapshotChunk[];
  mustSync?: boolean;
}): Ready {
  readyNumber += 1;
  const hasParts = parts.hardState != null || (parts.entries?.length ?? 0) > 0 || parts.snapshot != null || (parts.snapshotChunks?.length ?? 0) > 0;
  return {
    number: readyNumber,
    hardState: parts.hardState ?? null,
    entries: parts.entries ?? [],
    snapshot: parts.snapshot ?? null,
    snapshotChunks: parts.snapshotChunks ?? [],
    messages: [],
    messagesAfterPersist: [],
    committed: [],
    readStates: [],
    readsDropped: [],
    mustSync: parts.mustSync ?? hasParts,
  };
}

/** Splits `bytes` into chunks of `size` for the snapshot `meta`. */
export function chunksOf(meta: SnapshotMeta, bytes: Uint8Array, size: number): SnapshotChunk[] {
  const chunks: SnapshotChunk[] = [];
  for (let offset = 0; offset < bytes.byteLength || offset === 0; offset += size) {
    const data = bytes.subarray(offset, Math.min(bytes.byteLength, offset + size));
    chunks.push({ snapshot: meta, offset, data, done: offset + size >= bytes.byteLength });
    if (bytes.byteLength === 0) break;
  }
  return chunks;
}

export function persist(storage: Pick<ReplicaStorage, 'persist'>, r: Ready): Promise<void> {
  return new Promise((resolve, reject) => {
    storage.persist(r, (error) => (error === null ? resolve() : reject(error)));
  });
}

/** A SimDisk whose writes complete synchronously: the reference model of a storage's final state. */
export function referenceDisk(initial: PersistentState, snapshotBytes: Uint8Array): SimDisk {
  return new SimDisk(initial, snapshotBytes, (_delay, run) => run(), () => 0);
}

export function persistReference(disk: SimDisk, r: Ready): void {
  let completed = false;
  disk.persist(r, (error) => {
    if (error !== null) throw error;
    completed = true;
  });
  if (!completed) throw new Error('reference disk did not complete synchronously');
}

export const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

export const repoRoot = path.resolve(import.meta.dirname, '../..');
