/**
 * Composition root of one Understudy server: opens durable storage, builds the node, the peer
 * transport and the HTTP API, and starts listening. The only place that builds real adapters.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import { LmdbDocumentStore, openLogStorage } from '../storage/index.ts';
import { TcpTransport } from '../transport/tcp_transport.ts';
import { parseHostPort, validateNodeConfig, type NodeConfig } from './config.ts';
import { buildApp } from './http.ts';
import { registerDashboard } from './dashboard.ts';
import { NodeMetrics } from './metrics.ts';
import { UnderstudyNode, type NodeEvent } from './node.ts';
import { StallDetector } from './stall_detector.ts';

export interface RunningServer {
  readonly node: UnderstudyNode;
  readonly app: FastifyInstance;
  readonly transport: TcpTransport;
  readonly clientUrl: string;
  stop(): Promise<void>;
}

export class ConfigurationError extends Error {
  override readonly name = 'ConfigurationError';
}

export async function startServer(
  config: NodeConfig,
  options: { logger?: Logger; extend?: (app: FastifyInstance, node: UnderstudyNode) => void; onEvent?: (event: NodeEvent) => void } = {},
): Promise<RunningServer> {
  const problems = validateNodeConfig(config);
  if (problems.length > 0) throw new ConfigurationError(`refusing to start with an unsafe configuration:\n  - ${problems.join('\n  - ')}`);
  const logger = options.logger ?? pino({ name: `understudy-${config.id}` });
  mkdirSync(config.dataDir, { recursive: true });
  const opened = await openLogStorage(join(config.dataDir, 'log'), { compactionTailEntries: config.logEntriesKeptAfterSnapshot });
  const log = opened.storage;
  if (opened.migratedFrom !== null) logger.warn({ keptAt: opened.migratedFrom }, 'migrated the Raft log from LMDB to segment files; the old files can be deleted once this node runs well');
  const recovery = log.recovery;
  if (recovery?.tornTail != null) logger.warn({ ...recovery.tornTail }, 'cut a torn write off the end of the Raft log (a crash during an append; nothing acknowledged is lost unless the disk corrupted it)');
  if ((recovery?.removedSegments.length ?? 0) > 0 || (recovery?.removedStagingFiles.length ?? 0) > 0) {
    logger.warn({ removedSegments: recovery?.removedSegments, removedStagingFiles: recovery?.removedStagingFiles }, 'removed leftover Raft log files of an interrupted operation');
  }
  const documents = LmdbDocumentStore.open(join(config.dataDir, 'documents'));

  let node: UnderstudyNode | null = null;
  const metrics = new NodeMetrics(() => node);
  const transport = new TcpTransport({
    self: config.id,
    clusterId: config.clusterId,
    secret: config.secret,
    listenHost: config.peerHost,
    listenPort: config.peerPort,
    peers: config.members.map((member) => {
      const address = parseHostPort(member.peer);
      if (address === null) throw new ConfigurationError(`bad peer address ${member.peer}`);
      return { id: member.id, host: address.host, port: address.port };
    }),
    onMessage: (message) => node?.receive(message),
    onPeerState: (peer, connected) => logger.debug({ peer, connected }, 'peer connection'),
    log: (line) => logger.warn(line),
  });
  node = new UnderstudyNode(config, {
    log, documents, transport,
    onEvent: (event) => {
      metrics.onEvent(event);
      options.onEvent?.(event);
      if (event.type === 'leaderChanged') logger.info({ term: event.term, leader: event.leaderId, failoverMs: event.failoverMs, sinceLeaderContactMs: event.sinceLeaderContactMs }, 'leader changed');
      else if (event.type === 'roleChanged') logger.info({ role: event.role, term: event.term }, 'role changed');
      else if (event.type === 'snapshot') logger.info({ index: event.index, source: event.source, bytes: event.bytes, durationMs: event.durationMs }, 'snapshot');
    },
  });
  const started = node;
  metrics.events.add({ type: 'started' });
  started.start();
  await transport.start();
  const app = buildApp({
    node: started, metrics, bodyBytesMax: config.bodyBytesMax, authToken: config.authToken,
    writeTimeoutMs: config.writeTimeoutMs, readTimeoutMs: config.readTimeoutMs,
    extend: (instance) => {
      // The dashboard (/ui) and, in dev mode, its fault switch (/v1/dev/isolate).
      registerDashboard(instance, { node: started, transport, metrics, authRequired: config.authToken !== null });
      options.extend?.(instance, started);
    },
  });
  await app.listen({ host: config.clientHost, port: config.clientPort });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.clientPort;
  const clientUrl = `http://${config.clientHost}:${port}`;
  logger.info({ id: config.id, client: clientUrl, peer: `${config.peerHost}:${transport.port}` }, 'understudy node started');
  // Half the shortest election timeout: a stall that long already risks an election.
  const stalls = new StallDetector({
    intervalMs: 20,
    reportAtMs: Math.max(50, (config.tickMs * config.electionTimeoutTicks) / 2),
    onStall: (stalledMs) => {
      metrics.eventLoopStalls.observe(stalledMs / 1000);
      logger.warn({ stalledMs: Math.round(stalledMs), role: started.isStarted ? started.core.role : 'stopped' }, 'event loop stalled');
    },
  });
  let stopping: Promise<void> | null = null;
  return {
    node: started, app, transport, clientUrl,
    stop: () => {
      stopping ??= (async () => {
        stalls.stop();
        await app.close();
        metrics.close();
        await transport.close();
        await started.stop();
      })();
      return stopping;
    },
  };
}
