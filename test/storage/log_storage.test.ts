// Goal: both durable Raft log storages, LmdbLogStorage and SegmentLogStorage, meet the same
// contract (log_storage_contract.ts): SimDisk's semantics for every part of a Ready, durability
// across reopen, persists in call order, sticky errors.
// Method: the shared contract suite, run for LMDB, for segments with the default 64 MiB segments,
// and for segments of 200 bytes, so that nearly every write rotates to a new segment and old
// segments are deleted after snapshots (the rotation and deletion paths meet every case too).
import { LmdbLogStorage, SegmentLogStorage } from '../../src/storage/index.ts';
import { logStorageContract } from './log_storage_contract.ts';

logStorageContract('lmdb', { open: (dir, options) => LmdbLogStorage.open(dir, options) });
logStorageContract('segments', { open: (dir, options) => SegmentLogStorage.open(dir, options) });
logStorageContract('segments (200-byte segments)', { open: (dir, options) => SegmentLogStorage.open(dir, { ...options, segmentBytes: 200 }) });
