/**
 * Public API of durable storage (named exports only).
 *
 * Not responsible for anything itself: it re-exports the two Raft log storages, LMDB-backed
 * (lmdb/log_storage.ts) and segment-file WAL (segments/segment_log_storage.ts), both ReplicaStorage
 * with the same semantics, the LMDB-backed document store (lmdb/document_store.ts, a
 * DocumentStore) and the storage error classes (errors.ts). Codec and file helpers stay internal.
 */

export { StorageCorruptionError, StorageIoError } from './errors.ts';
export { LmdbLogStorage } from './lmdb/log_storage.ts';
export type { LmdbLogStorageOptions, LogStorageStats } from './lmdb/log_storage.ts';
export { LmdbDocumentStore } from './lmdb/document_store.ts';
export type { DocumentDurability, DocumentStoreRecovery, LmdbDocumentStoreOptions } from './lmdb/document_store.ts';
export { SegmentLogStorage } from './segments/segment_log_storage.ts';
export type { SegmentLogStorageOptions, SegmentRecovery } from './segments/segment_log_storage.ts';
export { openLogStorage } from './open_log.ts';
export type { OpenedLog } from './open_log.ts';
