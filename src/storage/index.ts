/**
 * Public API of durable storage (named exports only).
 *
 * Not responsible for anything itself: it re-exports the LMDB-backed Raft log storage
 * (lmdb/log_storage.ts, a ReplicaStorage), the LMDB-backed document store (lmdb/document_store.ts,
 * a DocumentStore) and the storage error classes (errors.ts). Codec and file helpers stay internal.
 */

export { StorageCorruptionError, StorageIoError } from './errors.ts';
export { LmdbLogStorage } from './lmdb/log_storage.ts';
export type { LmdbLogStorageOptions, LogStorageStats } from './lmdb/log_storage.ts';
export { LmdbDocumentStore } from './lmdb/document_store.ts';
export type { DocumentDurability, DocumentStoreRecovery, LmdbDocumentStoreOptions } from './lmdb/document_store.ts';
