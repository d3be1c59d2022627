export { RaftCore, applyMembershipChange, bootstrapState, type PersistentState, type TransferResult } from './raft_core.ts';
export { defaultRaftConfig, validateRaftConfig, type PlantedBug, type RaftConfig, type RaftConfigInput } from './config.ts';
export type * from './types.ts';
