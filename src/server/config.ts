/**
 * Node configuration: defaults, parsing of addresses, and validation that refuses unsafe
 * settings with a clear message before anything starts (two members with one id or one address,
 * a missing or short cluster secret, timeouts that would cause spurious elections).
 */
import type { PlantedBug } from '../consensus/config.ts';

export const PLANTED_BUGS: readonly PlantedBug[] = ['commitEarlierTermByCounting', 'voteTwiceInTerm', 'readWithoutQuorum', 'ackBeforePersist'];

export interface MemberAddress {
  readonly id: string;
  /** host:port of the peer (Raft) listener. */
  readonly peer: string;
  /** http://host:port of the client API. */
  readonly client: string;
}

export interface NodeConfig {
  readonly id: string;
  readonly clusterId: string;
  readonly dataDir: string;
  readonly clientHost: string;
  readonly clientPort: number;
  readonly peerHost: string;
  readonly peerPort: number;
  /** Every member this node should know, itself included. */
  readonly members: readonly MemberAddress[];
  /** The initial voters when a new cluster is bootstrapped; a joining node starts with none. */
  readonly bootstrapVoters: readonly string[];
  readonly secret: string;
  /** When set, the client API requires `Authorization: Bearer <token>`. */
  readonly authToken: string | null;
  readonly tickMs: number;
  readonly electionTimeoutTicks: number;
  readonly heartbeatIntervalTicks: number;
  readonly bodyBytesMax: number;
  readonly writeTimeoutMs: number;
  readonly readTimeoutMs: number;
  readonly sessionWaitMsMax: number;
  readonly snapshotEveryEntries: number;
  /** Also snapshot once this many bytes of log data were applied since the last one (bounds memory). */
  readonly snapshotEveryBytes: number;
  readonly logEntriesKeptAfterSnapshot: number;
  /** The entries kept in memory after a snapshot for lagging followers hold at most this many bytes. */
  readonly logBytesKeptAfterSnapshot: number;
  readonly idempotencyRetentionMs: number;
  /**
   * Log positions of changes the change feed keeps. Part of the replicated state: every node of
   * a cluster must use the same value.
   */
  readonly changeRetentionEntries: number;
  /**
   * Development mode: enables the dev-only fault switch `POST /v1/dev/isolate` (the dashboard's
   * partition action). Set by `--dev-control` (the dev cluster); never in production.
   */
  readonly devMode: boolean;
  /** URL of the dev cluster's loopback control server, advertised to the dashboard (/ui/config.json). */
  readonly devControlUrl?: string | null;
  /**
   * Extra origins allowed to make cross-origin requests (CORS), besides the members' own client
   * origins; '*' allows any. For a dashboard opened under another name than the members' URLs.
   */
  readonly corsOrigins?: readonly string[];
  /**
   * A known bug switched on to prove the chaos suite's checkers can fail. Only read from the
   * environment (UNDERSTUDY_PLANTED_BUG with UNDERSTUDY_ALLOW_PLANTED_BUGS=1), never from a file.
   */
  readonly plantedBug?: PlantedBug | null;
}

export const DEFAULTS = {
  clusterId: 'understudy',
  tickMs: 20,
  electionTimeoutTicks: 10,
  heartbeatIntervalTicks: 2,
  bodyBytesMax: 1024 * 1024,
  writeTimeoutMs: 10_000,
  readTimeoutMs: 5_000,
  sessionWaitMsMax: 5_000,
  // etcd's default too. A snapshot serialises the whole state, so its cost grows with the data;
  // the byte trigger below bounds the memory a long log holds.
  snapshotEveryEntries: 100_000,
  snapshotEveryBytes: 64 * 1024 * 1024,
  logEntriesKeptAfterSnapshot: 10_000,
  logBytesKeptAfterSnapshot: 16 * 1024 * 1024,
  idempotencyRetentionMs: 24 * 60 * 60 * 1000,
  changeRetentionEntries: 10_000,
  devMode: false,
} as const;

export function parseHostPort(value: string): { host: string; port: number } | null {
  const match = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(value.trim());
  if (match === null) return null;
  const port = Number(match[2]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) return null;
  return { host: (match[1] as string).replace(/^\[|\]$/g, ''), port };
}

/** Returns every problem found; an empty list means the configuration is safe to start. */
export function validateNodeConfig(config: NodeConfig): string[] {
  const problems: string[] = [];
  const idPattern = /^[A-Za-z0-9_-]{1,64}$/;
  if (!idPattern.test(config.id)) problems.push(`node id '${config.id}' must be 1-64 characters of [A-Za-z0-9_-]`);
  if (config.dataDir.trim() === '') problems.push('a data directory is required');
  if (config.secret.length < 8) problems.push('the cluster secret must be at least 8 characters (peers authenticate with it)');
  const ids = new Set<string>();
  const peers = new Set<string>();
  const clients = new Set<string>();
  for (const member of config.members) {
    if (!idPattern.test(member.id)) problems.push(`member id '${member.id}' is invalid`);
    if (ids.has(member.id)) problems.push(`two members have the id '${member.id}'`);
    ids.add(member.id);
    if (parseHostPort(member.peer) === null) problems.push(`member ${member.id}: peer address '${member.peer}' is not host:port`);
    if (peers.has(member.peer)) problems.push(`two members share the peer address ${member.peer}`);
    peers.add(member.peer);
    if (!/^https?:\/\/[^/\s]+$/.test(member.client)) problems.push(`member ${member.id}: client URL '${member.client}' is not http(s)://host:port`);
    if (clients.has(member.client)) problems.push(`two members share the client URL ${member.client}`);
    clients.add(member.client);
  }
  if (!ids.has(config.id)) problems.push(`this node '${config.id}' is not among the members`);
  if (config.devControlUrl !== undefined && config.devControlUrl !== null && !isLoopbackHttpUrl(config.devControlUrl)) {
    problems.push(`devControlUrl '${config.devControlUrl}' must be a loopback http URL (http://127.0.0.1:<port>)`);
  }
  for (const origin of config.corsOrigins ?? []) {
    if (origin !== '*' && !/^https?:\/\/[^/\s]+$/.test(origin)) problems.push(`corsOrigins entry '${origin}' must be '*' or an origin like http://host:port`);
  }
  if (config.plantedBug !== undefined && config.plantedBug !== null && !PLANTED_BUGS.includes(config.plantedBug)) {
    problems.push(`unknown planted bug '${String(config.plantedBug)}'`);
  }
  for (const voter of config.bootstrapVoters) {
    if (!ids.has(voter)) problems.push(`bootstrap voter '${voter}' is not a member`);
  }
  const positive: (keyof NodeConfig)[] = [
    'tickMs', 'electionTimeoutTicks', 'heartbeatIntervalTicks', 'bodyBytesMax', 'writeTimeoutMs',
    'readTimeoutMs', 'sessionWaitMsMax', 'snapshotEveryEntries', 'snapshotEveryBytes', 'logBytesKeptAfterSnapshot', 'changeRetentionEntries',
  ];
  for (const key of positive) {
    const value = config[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) problems.push(`${key} must be a positive integer`);
  }
  if (config.electionTimeoutTicks * config.tickMs < 100) {
    problems.push('the election timeout (electionTimeoutTicks * tickMs) must be at least 100 ms, or event-loop pauses cause spurious elections');
  }
  if (config.electionTimeoutTicks <= 2 * config.heartbeatIntervalTicks) {
    problems.push('electionTimeoutTicks must be greater than 2 * heartbeatIntervalTicks');
  }
  for (const [name, port] of [['client', config.clientPort], ['peer', config.peerPort]] as const) {
    if (!Number.isInteger(port) || port < 0 || port > 65535) problems.push(`${name} port ${port} is invalid`);
  }
  return problems;
}

/** http://127.0.0.1:<port>, http://localhost:<port> or http://[::1]:<port> (no path). */
export function isLoopbackHttpUrl(value: string): boolean {
  const match = /^http:\/\/(127\.0\.0\.1|localhost|\[::1\]):(\d{1,5})\/?$/.exec(value);
  return match !== null && Number(match[2]) > 0 && Number(match[2]) <= 65535;
}
