/**
 * `understudy backup` and `understudy restore` (issue 6), and the seeding that `understudy dev
 * --restore` shares with restore.
 *
 * backup: downloads GET /v1/admin/backup from any node (a consistent snapshot that holds every
 * write acknowledged before the request; see src/server/backup.ts), verifies its length and
 * checksums, and writes it atomically: a temporary file in the same directory, fsync, a rename (or
 * a hard link, which never replaces a file that appeared meanwhile), fsync of the directory.
 *
 * restore: verifies a backup file and seeds one node's empty data directory, offline, so that
 * `understudy start` with the same --id, --data and --members comes up with the backup's content:
 * the Raft log storage is bootstrapped with a snapshot at the backup's applied index and term, whose
 * membership is the NEW cluster's voters, a hard state that commits it, and the backup's body as
 * the snapshot bytes. On start the node restores its (empty) document store from that snapshot,
 * exactly as a node does whose document store fell behind its latest snapshot. Every member of the
 * new cluster is seeded from the same file with the same members, so their logs agree.
 *
 * Every refusal is one line on stderr and a non-zero exit, and happens before anything is written.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { request } from 'undici';
import { bootstrapState, type PersistentState } from '../consensus/raft_core.ts';
import { MemoryDocumentStore, readAppliedIndex } from '../documents/index.ts';
import { BackupFormatError, parseBackup, type ParsedBackup } from '../server/backup.ts';
import { DEFAULTS, validateNodeConfig, type MemberAddress, type NodeConfig } from '../server/config.ts';
import { SegmentLogStorage } from '../storage/index.ts';
import { CliError } from './admin_commands.ts';

const DEFAULT_TIMEOUT_MS = 600_000;

function nodeUrl(value: string): string {
  const url = /^https?:\/\//.test(value) ? value : `http://${value}`;
  try {
    const parsed = new URL(url);
    if (parsed.pathname !== '/' || parsed.search !== '' || parsed.hash !== '') throw new Error('path');
  } catch {
    throw new InvalidArgumentError('expected a node address like 127.0.0.1:7001 or http://127.0.0.1:7001');
  }
  return url.replace(/\/$/, '');
}

function positiveMs(value: string): number {
  if (!/^\d{1,9}$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('expected a positive number of milliseconds');
  return Number(value);
}

/** `n1@127.0.0.1:7101@http://127.0.0.1:7001,n2@...`, the format of `understudy start --members`. */
export function parseMemberList(value: string): MemberAddress[] {
  if (value.trim() === '') throw new CliError('--members is empty: list every member as id@peerHost:peerPort@http://clientHost:clientPort,...');
  return value.split(',').map((part) => {
    const pieces = part.trim().split('@');
    const [id, peer, client] = pieces;
    if (pieces.length !== 3 || id === undefined || peer === undefined || client === undefined || id === '' || peer === '' || client === '') {
      throw new CliError(`member '${part}' must look like id@peerHost:peerPort@http://clientHost:clientPort`);
    }
    return { id, peer, client };
  });
}

function describeFsError(error: unknown): string {
  const code = (error as { code?: string }).code;
  if (code === 'ENOENT') return 'it does not exist';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'it is a directory';
  if (code === 'ENOTDIR') return 'a part of its path is not a directory';
  return (error as Error).message;
}

// ---------------------------------------------------------------------------------------------
// Reading and checking a backup.

/** Reads and fully verifies a backup file (magic, header, header checksum, length, sha256). */
export function readBackupFile(file: string): ParsedBackup {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (error) {
    throw new CliError(`cannot read the backup ${file}: ${describeFsError(error)}`);
  }
  if (stat.isDirectory()) throw new CliError(`cannot read the backup ${file}: it is a directory`);
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (error) {
    throw new CliError(`cannot read the backup ${file}: ${describeFsError(error)}`);
  }
  try {
    return parseBackup(bytes, `the backup ${file}`);
  } catch (error) {
    if (error instanceof BackupFormatError) throw new CliError(error.message);
    throw error;
  }
}

/**
 * Checks that the body is a document snapshot this version can restore and that it agrees with
 * the header (applied index, term, document count): what start() will restore, checked now.
 */
export function checkBackupBody(backup: ParsedBackup, what: string): void {
  const staging = new MemoryDocumentStore();
  let problem;
  try {
    problem = staging.restore(backup.body);
  } catch (error) {
    throw new CliError(`${what} holds a body that is not a valid document snapshot: ${(error as Error).message}`);
  }
  if (problem !== null) throw new CliError(`${what} holds a body that is not a valid document snapshot: ${problem.message}`);
  let applied;
  try {
    applied = readAppliedIndex(staging);
  } catch (error) {
    throw new CliError(`${what} holds a body whose applied index is unreadable: ${(error as Error).message}`);
  }
  const { header } = backup;
  if (applied.index !== header.appliedIndex || applied.term !== header.term) {
    throw new CliError(`${what} disagrees with itself: the header says index ${header.appliedIndex} term ${header.term}, the body holds index ${applied.index} term ${applied.term}`);
  }
  if (header.appliedIndex > 0 && header.term < 1) throw new CliError(`${what} is invalid: index ${header.appliedIndex} with term ${header.term} (terms start at 1)`);
  const count = staging.documentCount();
  if (header.appliedIndex === 0 && count > 0) throw new CliError(`${what} holds ${count} documents but no applied log index: it is not a backup of a cluster`);
  if (count !== header.documentCount) {
    throw new CliError(`${what} disagrees with itself: the header says ${header.documentCount} documents, the body holds ${count}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Seeding data directories.

export interface SeedTarget {
  readonly dataDir: string;
}

/** Refuses a data directory that exists and is not an empty directory. */
function checkEmptyDataDir(dataDir: string): void {
  let entries: string[];
  try {
    const stat = fs.statSync(dataDir);
    if (!stat.isDirectory()) throw new CliError(`the data directory ${dataDir} is not a directory`);
    entries = fs.readdirSync(dataDir);
  } catch (error) {
    if (error instanceof CliError) throw error;
    if ((error as { code?: string }).code === 'ENOENT') {
      // It will be created; its parent must be usable.
      const parent = path.dirname(path.resolve(dataDir));
      if (!fs.existsSync(parent)) throw new CliError(`cannot create the data directory ${dataDir}: ${parent} does not exist`);
      try {
        fs.accessSync(parent, fs.constants.W_OK);
      } catch {
        throw new CliError(`cannot create the data directory ${dataDir}: ${parent} is not writable`);
      }
      return;
    }
    throw new CliError(`cannot use the data directory ${dataDir}: ${describeFsError(error)}`);
  }
  if (entries.length > 0) {
    throw new CliError(`the data directory ${dataDir} is not empty (${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}, e.g. ${entries.sort()[0]}): restore seeds a new node only; use an empty directory`);
  }
  try {
    fs.accessSync(dataDir, fs.constants.W_OK);
  } catch {
    throw new CliError(`the data directory ${dataDir} is not writable`);
  }
}

/**
 * The persistent Raft state a restored node starts from: a snapshot at the backup's applied index
 * and term whose membership is the new cluster's voters, committed, with an empty log. Identical
 * on every node seeded from the same backup with the same voters.
 */
export function restoredState(backup: ParsedBackup, voters: readonly string[]): PersistentState {
  const membership = { voters: [...voters], learners: [] };
  if (backup.header.appliedIndex === 0) return bootstrapState(membership);
  return {
    hardState: { term: backup.header.term, vote: null, commit: backup.header.appliedIndex },
    snapshot: { index: backup.header.appliedIndex, term: backup.header.term, membership },
    entries: [],
  };
}

/** Layout of a data directory, as src/server/server.ts opens it. */
function logDirOf(dataDir: string): string {
  return path.join(dataDir, 'log');
}

/** Seeds one data directory (already checked empty or absent). On failure, removes what it made. */
async function seedOne(backup: ParsedBackup, file: string, dataDir: string, voters: readonly string[]): Promise<void> {
  const existed = fs.existsSync(dataDir);
  try {
    fs.mkdirSync(dataDir, { recursive: true });
    const log = SegmentLogStorage.open(logDirOf(dataDir));
    try {
      log.bootstrap(restoredState(backup, voters), backup.body);
    } finally {
      await log.close();
    }
    const record = {
      restoredFrom: path.resolve(file), sha256: backup.header.sha256, clusterId: backup.header.clusterId,
      takenFrom: backup.header.takenFrom, appliedIndex: backup.header.appliedIndex, term: backup.header.term,
      createdAt: backup.header.createdAt, documentCount: backup.header.documentCount, voters: [...voters],
      restoredAt: new Date().toISOString(),
    };
    const recordFile = path.join(dataDir, 'restored-from.json');
    fs.writeFileSync(recordFile, `${JSON.stringify(record, null, 2)}\n`);
    const fd = fs.openSync(recordFile, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fsyncDir(dataDir);
  } catch (error) {
    // Leave the directory as it was: absent, or empty.
    if (existed) {
      for (const name of fs.readdirSync(dataDir)) fs.rmSync(path.join(dataDir, name), { recursive: true, force: true });
    } else {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
    throw new CliError(`seeding ${dataDir} failed, nothing was kept: ${(error as Error).message}`);
  }
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Verifies `file` and seeds every target's data directory from it with the same voters. Checks
 * everything (the file, its body, every directory) before writing anything.
 */
export async function seedFromBackup(file: string, targets: readonly SeedTarget[], voters: readonly string[]): Promise<ParsedBackup> {
  const backup = readBackupFile(file);
  for (const target of targets) checkEmptyDataDir(target.dataDir);
  const dirs = targets.map((target) => path.resolve(target.dataDir));
  if (new Set(dirs).size !== dirs.length) throw new CliError('two nodes were given the same data directory');
  checkBackupBody(backup, `the backup ${file}`);
  for (const target of targets) await seedOne(backup, file, target.dataDir, voters);
  return backup;
}

// ---------------------------------------------------------------------------------------------
// Writing a downloaded backup.

/**
 * Writes `data` to `out` atomically and durably: temp file in the same directory (mode 0600: a
 * backup holds every document), fsync, then rename (with `force`) or hard link plus unlink
 * (without: link fails if `out` exists, so a file that appeared meanwhile is never replaced),
 * then fsync of the directory.
 */
export function writeBackupFile(out: string, data: Uint8Array, force: boolean): void {
  const dir = path.dirname(out);
  const temp = path.join(dir, `.${path.basename(out)}.${process.pid}.${randomUUID().slice(0, 8)}.tmp`);
  try {
    const fd = fs.openSync(temp, 'wx', 0o600);
    try {
      let offset = 0;
      while (offset < data.byteLength) offset += fs.writeSync(fd, data, offset, data.byteLength - offset);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    if (force) {
      fs.renameSync(temp, out);
    } else {
      try {
        fs.linkSync(temp, out);
      } catch (error) {
        if ((error as { code?: string }).code === 'EEXIST') throw new CliError(`${out} already exists (use --force to replace it); nothing was written`);
        throw error;
      }
      fs.rmSync(temp, { force: true });
    }
    fsyncDir(dir);
  } catch (error) {
    fs.rmSync(temp, { force: true });
    if (error instanceof CliError) throw error;
    throw new CliError(`cannot write ${out}: ${describeFsError(error)}; nothing was written`);
  }
}

/** Checks the output path before downloading anything. */
function checkOutPath(out: string, force: boolean): void {
  const dir = path.dirname(out);
  let dirStat: fs.Stats;
  try {
    dirStat = fs.statSync(dir);
  } catch (error) {
    throw new CliError(`cannot write ${out}: the directory ${dir} ${(error as { code?: string }).code === 'ENOENT' ? 'does not exist' : `is unusable (${describeFsError(error)})`}`);
  }
  if (!dirStat.isDirectory()) throw new CliError(`cannot write ${out}: ${dir} is not a directory`);
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch {
    throw new CliError(`cannot write ${out}: the directory ${dir} is not writable`);
  }
  let stat: fs.Stats | null = null;
  try {
    stat = fs.statSync(out);
  } catch {
    stat = null;
  }
  if (stat !== null && stat.isDirectory()) throw new CliError(`cannot write ${out}: it is a directory`);
  if (stat !== null && !force) throw new CliError(`${out} already exists (use --force to replace it)`);
}

// ---------------------------------------------------------------------------------------------
// The commands.

interface BackupFlags {
  node?: string;
  url?: string;
  out?: string;
  token?: string;
  force?: boolean;
  timeout?: number;
}

async function runBackup(flags: BackupFlags): Promise<void> {
  if (flags.node !== undefined && flags.url !== undefined && flags.node !== flags.url) throw new CliError('give the node once: --node and --url name different nodes');
  const url = flags.node ?? flags.url;
  if (url === undefined) throw new CliError('--node <url> is required: the node to take the backup from (any member)');
  if (flags.out === undefined) throw new CliError('--out <file> is required: where to write the backup');
  if (flags.out.trim() === '') throw new CliError('--out must name a file');
  const out = path.resolve(flags.out);
  const force = flags.force === true;
  checkOutPath(out, force);
  const timeoutMs = flags.timeout ?? DEFAULT_TIMEOUT_MS;
  const token = flags.token ?? process.env['UNDERSTUDY_TOKEN'];
  const headers: Record<string, string> = token === undefined || token === '' ? {} : { authorization: `Bearer ${token}` };

  const started = performance.now();
  let response;
  try {
    response = await request(`${url}/v1/admin/backup`, { method: 'GET', headers, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  } catch (error) {
    throw new CliError(`cannot reach ${url}: ${(error as Error).message}`);
  }
  if (response.statusCode !== 200) {
    const text = await response.body.text().catch(() => '');
    let body: { code?: unknown; message?: unknown } | null;
    try {
      body = JSON.parse(text) as { code?: unknown; message?: unknown } | null;
    } catch {
      body = null;
    }
    if (body !== null && typeof body === 'object' && typeof body.code === 'string') {
      throw new CliError(`${body.code}: ${typeof body.message === 'string' ? body.message : ''} (HTTP ${response.statusCode}); nothing was written`);
    }
    throw new CliError(`HTTP ${response.statusCode} from ${url}: ${text.slice(0, 200).replace(/\s+/g, ' ')}; nothing was written`);
  }
  const chunks: Buffer[] = [];
  let received = 0;
  try {
    for await (const chunk of response.body) {
      const buffer = chunk as Buffer;
      chunks.push(buffer);
      received += buffer.byteLength;
    }
  } catch (error) {
    throw new CliError(`the download from ${url} broke off after ${received} bytes (${(error as Error).message}); nothing was written`);
  }
  const bytes = Buffer.concat(chunks, received);
  const announced = Number(response.headers['content-length']);
  if (Number.isSafeInteger(announced) && announced !== received) {
    throw new CliError(`the download from ${url} is incomplete: ${received} of ${announced} bytes; nothing was written`);
  }
  let backup: ParsedBackup;
  try {
    backup = parseBackup(bytes, `the backup downloaded from ${url}`);
  } catch (error) {
    if (error instanceof BackupFormatError) throw new CliError(`${error.message}; nothing was written`);
    throw error;
  }
  writeBackupFile(out, bytes, force);
  const { header } = backup;
  const ms = Math.round(performance.now() - started);
  process.stdout.write(`backup ${out}: index ${header.appliedIndex} term ${header.term} from ${header.takenFrom} (cluster ${header.clusterId}), ${header.documentCount} documents, ${bytes.byteLength} bytes, sha256 ${header.sha256}, ${ms} ms\n`);
}

interface RestoreFlags {
  backup?: string;
  data?: string;
  id?: string;
  members?: string;
  config?: string;
}

async function runRestore(flags: RestoreFlags): Promise<void> {
  let file: { id?: unknown; dataDir?: unknown; members?: unknown; bootstrapVoters?: unknown } = {};
  if (flags.config !== undefined) {
    let text: string;
    try {
      text = fs.readFileSync(flags.config, 'utf8');
    } catch (error) {
      throw new CliError(`cannot read the config file ${flags.config}: ${describeFsError(error)}`);
    }
    try {
      file = JSON.parse(text) as typeof file;
    } catch (error) {
      throw new CliError(`the config file ${flags.config} is not valid JSON: ${(error as Error).message}`);
    }
    if (typeof file !== 'object' || file === null || Array.isArray(file)) throw new CliError(`the config file ${flags.config} must hold a JSON object`);
  }
  if (flags.backup === undefined) throw new CliError('--backup <file> is required: the backup to restore');
  const id = flags.id ?? (typeof file.id === 'string' ? file.id : undefined);
  if (id === undefined) throw new CliError('--id <id> is required: the node to seed (as given to understudy start)');
  const dataDir = flags.data ?? (typeof file.dataDir === 'string' ? file.dataDir : undefined);
  if (dataDir === undefined) throw new CliError('--data <dir> is required: the new node\'s data directory (empty or absent)');
  let members: MemberAddress[];
  if (flags.members !== undefined) {
    members = parseMemberList(flags.members);
  } else if (Array.isArray(file.members)) {
    members = file.members.map((member: unknown) => {
      const m = member as Partial<MemberAddress> | null;
      if (typeof m !== 'object' || m === null || typeof m.id !== 'string' || typeof m.peer !== 'string' || typeof m.client !== 'string') {
        throw new CliError(`the config file ${flags.config} has a member that is not {"id","peer","client"}`);
      }
      return { id: m.id, peer: m.peer, client: m.client };
    });
  } else if (file.members !== undefined) {
    throw new CliError(`the config file ${flags.config}: members must be a list of {"id","peer","client"}`);
  } else {
    throw new CliError('--members <list> is required: every member of the new cluster, as for understudy start');
  }
  let voters = members.map((member) => member.id);
  if (flags.members === undefined && file.bootstrapVoters !== undefined) {
    if (!Array.isArray(file.bootstrapVoters) || !file.bootstrapVoters.every((voter) => typeof voter === 'string')) {
      throw new CliError(`the config file ${flags.config}: bootstrapVoters must be a list of node ids`);
    }
    voters = file.bootstrapVoters as string[];
  }
  // The same rules as `understudy start` for ids and addresses (config.ts), on the fields that matter here.
  const probe: NodeConfig = {
    ...DEFAULTS, id, clusterId: 'restore', dataDir, clientHost: '127.0.0.1', clientPort: 0, peerHost: '127.0.0.1', peerPort: 0,
    members, bootstrapVoters: voters, secret: 'restore-check-only', authToken: null,
  };
  const problems = validateNodeConfig(probe);
  if (problems.length > 0) throw new CliError(`invalid members: ${problems.join('; ')}`);
  if (voters.length === 0) throw new CliError('a restored cluster needs voters: bootstrapVoters is empty (a joining node is not restored, add it with member add)');
  if (!voters.includes(id)) throw new CliError(`${id} is not among the voters (${voters.join(', ')}): every restored node is a voter of the new cluster`);

  const started = performance.now();
  const backup = await seedFromBackup(flags.backup, [{ dataDir }], voters);
  const { header } = backup;
  const ms = Math.round(performance.now() - started);
  process.stdout.write(`restored ${id} into ${path.resolve(dataDir)} from ${flags.backup}: index ${header.appliedIndex} term ${header.term} (from ${header.takenFrom} of cluster ${header.clusterId}, taken ${header.createdAt}), ${header.documentCount} documents, voters ${voters.join(',')}, ${ms} ms; seed every member from this file with the same --members, then start them\n`);
}

/** One line on stderr for commander's own errors (unknown option, missing value, extra argument). */
function oneLineErrors(command: Command): Command {
  return command
    .showHelpAfterError(false)
    .configureOutput({
      writeErr: (text) => process.stderr.write(text),
      outputError: (text, write) => write(`understudy: ${text.replace(/^error: /, '').trim().replace(/\s*\n\s*/g, ' ')}\n`),
    });
}

export function registerBackupCommands(program: Command, run: (action: () => Promise<void>) => Promise<void>): void {
  oneLineErrors(program.command('backup'))
    .description('download a consistent backup (every acknowledged write) from any node to a file, verified and written atomically')
    .option('--node <url>', 'the node to back up from (any member), like 127.0.0.1:7001', nodeUrl)
    .option('--url <url>', 'same as --node', nodeUrl)
    .option('--out <file>', 'the backup file to write')
    .option('--force', 'replace --out if it exists')
    .option('--token <token>', 'bearer token (or UNDERSTUDY_TOKEN)')
    .option('--timeout <ms>', `give up after this long (default ${DEFAULT_TIMEOUT_MS})`, positiveMs)
    .action((flags: BackupFlags) => run(() => runBackup(flags)));

  oneLineErrors(program.command('restore'))
    .description('seed a new node\'s empty data directory from a backup, offline; then `understudy start` with the same --id, --data and --members')
    .option('--backup <file>', 'the backup file (from understudy backup)')
    .option('--data <dir>', 'the new node\'s data directory (must be empty or absent)')
    .option('--id <id>', 'the node id')
    .option('--members <list>', 'all members of the NEW cluster: id@peerHost:peerPort@http://clientHost:clientPort,...')
    .option('--config <file>', 'read id, dataDir, members (and bootstrapVoters) from the node\'s JSON config; flags override')
    .action((flags: RestoreFlags) => run(() => runRestore(flags)));
}
