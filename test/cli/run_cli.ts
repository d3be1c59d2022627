/**
 * Runs the `understudy` command as a child process, as an operator would, with a bounded timeout
 * (the child is killed when it runs over). UNDERSTUDY_TOKEN is not passed on, so a token in the
 * developer's environment cannot change what a test sees.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/understudy.js', import.meta.url));

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function cli(args: string[], timeoutMs = 30_000): Promise<CliResult> {
  const env = { ...process.env };
  delete env['UNDERSTUDY_TOKEN'];
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: timeoutMs, env, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}
