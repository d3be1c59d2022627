/**
 * The `understudy` command line: `start` runs one server, `dev` runs a local 3-node cluster on
 * loopback with data under ./data. Errors are one clear line on stderr and a non-zero exit.
 */
import { Command, InvalidArgumentError } from 'commander';
import { readFileSync } from 'node:fs';
import { DEFAULTS, PLANTED_BUGS, isLoopbackHttpUrl, parseHostPort, type MemberAddress, type NodeConfig } from '../server/config.ts';
import type { PlantedBug } from '../consensus/config.ts';
import { runDevCluster } from './dev_cluster.ts';
import { CliError, registerAdminCommands } from './admin_commands.ts';
import { registerChaosCommand } from './chaos_command.ts';
import { registerBackupCommands } from './backup_commands.ts';

function port(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1 || parsed > 65535) throw new InvalidArgumentError('expected a port number 1-65535');
  return parsed;
}

function positive(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1) throw new InvalidArgumentError('expected a positive integer');
  return parsed;
}

function hostPort(value: string): string {
  if (parseHostPort(value) === null) throw new InvalidArgumentError('expected host:port');
  return value;
}

/** `n1@127.0.0.1:7101@http://127.0.0.1:7001,n2@...` */
export function parseMembers(value: string): MemberAddress[] {
  return value.split(',').map((part) => {
    const [id, peer, client] = part.trim().split('@');
    if (id === undefined || peer === undefined || client === undefined || id === '') {
      throw new InvalidArgumentError(`member '${part}' must look like id@peerHost:peerPort@http://clientHost:clientPort`);
    }
    return { id, peer, client };
  });
}

interface StartFlags {
  config?: string;
  id?: string;
  data?: string;
  client?: string;
  peer?: string;
  members?: MemberAddress[];
  join?: boolean;
  secret?: string;
  token?: string;
  clusterId?: string;
  tickMs?: number;
  electionTicks?: number;
  bodyLimit?: number;
  snapshotEvery?: number;
  devControl?: string;
}

function loopbackUrl(value: string): string {
  if (!isLoopbackHttpUrl(value)) throw new InvalidArgumentError('expected a loopback URL like http://127.0.0.1:7091');
  return value.replace(/\/$/, '');
}

function fail(message: string): never {
  process.stderr.write(`understudy: ${message}\n`);
  process.exit(2);
}

export function buildConfig(flags: StartFlags): NodeConfig {
  let file: Partial<NodeConfig> & { members?: MemberAddress[] } = {};
  if (flags.config !== undefined) {
    try {
      file = JSON.parse(readFileSync(flags.config, 'utf8')) as typeof file;
    } catch (error) {
      fail(`cannot read config file ${flags.config}: ${(error as Error).message}`);
    }
  }
  const client = parseHostPort(flags.client ?? `${file.clientHost ?? '127.0.0.1'}:${file.clientPort ?? 7001}`);
  const peer = parseHostPort(flags.peer ?? `${file.peerHost ?? '127.0.0.1'}:${file.peerPort ?? 7101}`);
  if (client === null || peer === null) fail('client and peer addresses must be host:port');
  const id = flags.id ?? file.id;
  if (id === undefined) fail('a node id is required (--id)');
  const members = flags.members ?? file.members ?? [{ id, peer: `${peer.host}:${peer.port}`, client: `http://${client.host}:${client.port}` }];
  const secret = flags.secret ?? process.env['UNDERSTUDY_SECRET'] ?? file.secret;
  // A planted bug exists only to prove the chaos suite's checkers can fail: it needs two
  // environment variables, so no configuration file or flag can switch one on by accident.
  const plantedBugName = process.env['UNDERSTUDY_PLANTED_BUG'];
  let plantedBug: PlantedBug | null = null;
  if (plantedBugName !== undefined && plantedBugName !== '') {
    if (process.env['UNDERSTUDY_ALLOW_PLANTED_BUGS'] !== '1') fail('UNDERSTUDY_PLANTED_BUG needs UNDERSTUDY_ALLOW_PLANTED_BUGS=1 (test use only)');
    if (!(PLANTED_BUGS as readonly string[]).includes(plantedBugName)) fail(`unknown planted bug '${plantedBugName}' (known: ${PLANTED_BUGS.join(', ')})`);
    plantedBug = plantedBugName as PlantedBug;
    process.stderr.write(`understudy: WARNING: planted bug '${plantedBug}' is ON — this node is deliberately unsafe\n`);
  }
  if (secret === undefined) fail('a cluster secret is required (--secret or UNDERSTUDY_SECRET)');
  return {
    ...DEFAULTS,
    ...file,
    id,
    clusterId: flags.clusterId ?? file.clusterId ?? DEFAULTS.clusterId,
    dataDir: flags.data ?? file.dataDir ?? `./data/${id}`,
    clientHost: client.host,
    clientPort: client.port,
    peerHost: peer.host,
    peerPort: peer.port,
    members,
    bootstrapVoters: flags.join === true ? [] : (file.bootstrapVoters ?? members.map((member) => member.id)),
    secret,
    authToken: flags.token ?? process.env['UNDERSTUDY_TOKEN'] ?? file.authToken ?? null,
    tickMs: flags.tickMs ?? file.tickMs ?? DEFAULTS.tickMs,
    electionTimeoutTicks: flags.electionTicks ?? file.electionTimeoutTicks ?? DEFAULTS.electionTimeoutTicks,
    bodyBytesMax: flags.bodyLimit ?? file.bodyBytesMax ?? DEFAULTS.bodyBytesMax,
    snapshotEveryEntries: flags.snapshotEvery ?? file.snapshotEveryEntries ?? DEFAULTS.snapshotEveryEntries,
    plantedBug,
    // The dev cluster passes its control server's URL: dev mode (the dashboard's dev actions).
    ...(flags.devControl === undefined ? {} : { devControlUrl: flags.devControl, devMode: true }),
  };
}

const program = new Command()
  .name('understudy')
  .description('Understudy: a replicated, fault-tolerant JSON document store')
  .showHelpAfterError('(run with --help for usage)')
  .configureOutput({ writeErr: (text) => process.stderr.write(text) });

program.command('start')
  .description('run one server node')
  .option('--config <file>', 'JSON config file (flags override it)')
  .option('--id <id>', 'this node id')
  .option('--data <dir>', 'data directory (default ./data/<id>)')
  .option('--client <host:port>', 'client API address', hostPort)
  .option('--peer <host:port>', 'peer (Raft) address', hostPort)
  .option('--members <list>', 'all members: id@peerHost:peerPort@http://clientHost:clientPort,...', parseMembers)
  .option('--join', 'join an existing cluster (start with no voters; add with `member add`)')
  .option('--secret <secret>', 'cluster secret shared by all nodes (or UNDERSTUDY_SECRET)')
  .option('--token <token>', 'require this bearer token on the client API (or UNDERSTUDY_TOKEN)')
  .option('--cluster-id <id>', 'cluster id (peers with another id are refused)')
  .option('--tick-ms <ms>', 'length of one tick', positive)
  .option('--election-ticks <n>', 'election timeout in ticks', positive)
  .option('--body-limit <bytes>', 'largest request body', positive)
  .option('--snapshot-every <entries>', 'take a snapshot after this many applied entries', positive)
  .option('--dev-control <url>', 'development only: the dev cluster\'s control server (loopback URL); enables /v1/dev/*', loopbackUrl)
  .option('--exit-with-parent', 'stop when the process that started this one exits (the dev cluster uses it, so no node outlives it)')
  .action(async (flags: StartFlags & { exitWithParent?: boolean }) => {
    const config = buildConfig(flags);
    const { startServer } = await import('../server/server.ts');
    try {
      const server = await startServer(config);
      const shutdown = (): void => {
        server.stop().then(() => process.exit(0), () => process.exit(1));
      };
      process.on('SIGTERM', shutdown);
      process.on('SIGINT', shutdown);
      if (flags.exitWithParent === true) {
        // A parent killed with SIGKILL cannot stop its children: notice that we were re-parented.
        const parent = process.ppid;
        setInterval(() => {
          if (process.ppid !== parent) shutdown();
        }, 500).unref();
      }
    } catch (error) {
      fail((error as Error).message);
    }
  });

program.command('dev')
  .description('run a local 3-node cluster on loopback with data under ./data')
  .option('--data <dir>', 'data directory', './data')
  .option('--base-port <port>', 'first client port (peers use base+100)', port, 7001)
  .option('--nodes <n>', 'number of nodes', positive, 3)
  .option('--control-port <port>', 'loopback port of the control server the dashboard uses to kill, restart and partition nodes (default base+90)', port)
  .option('--restore <file>', 'seed every node (empty data directories) from this backup before starting')
  .action(async (flags: { data: string; basePort: number; nodes: number; controlPort?: number; restore?: string }) => {
    await runDevCluster(flags);
  });

registerChaosCommand(program);

registerAdminCommands(program, async (action) => {
  try {
    await action();
  } catch (error) {
    fail(error instanceof CliError ? error.message : `unexpected error: ${(error as Error).message}`);
  }
});

registerBackupCommands(program, async (action) => {
  try {
    await action();
  } catch (error) {
    fail(error instanceof CliError ? error.message : `unexpected error: ${(error as Error).message}`);
  }
});

program.parseAsync().catch((error: unknown) => fail((error as Error).message));
