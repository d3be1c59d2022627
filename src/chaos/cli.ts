/**
 * Stand-alone entry of the chaos suite: `npm run chaos -- [options]` (the same options as
 * `understudy chaos`, see docs/chaos.md). Works whether or not the `understudy` command has the
 * chaos subcommand wired in.
 */
import { Command } from 'commander';
import { registerChaosCommand } from '../cli/chaos_command.ts';

const program = new Command()
  .name('understudy')
  .showHelpAfterError()
  .configureOutput({ writeErr: (text) => process.stderr.write(text) });
registerChaosCommand(program);
const args = process.argv.slice(2);
program.parseAsync([process.argv[0] ?? 'node', 'understudy', 'chaos', ...args]).catch((error: unknown) => {
  process.stderr.write(`understudy chaos: ${(error as Error).message}\n`);
  process.exit(2);
});
