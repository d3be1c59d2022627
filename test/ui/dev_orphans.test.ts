// Goal: no node of `understudy dev` outlives the dev process, even when the dev process is killed
// with SIGKILL (it cannot stop its children then): an orphaned cluster would keep ports 7001-7003
// and make the next `npm start` fail. Nodes are started with --exit-with-parent.
// Method: a real dev cluster (DevProcess: loopback ports, temp data, stop() by PID in finally);
// SIGKILL the dev process; every node PID must be gone within a bounded time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DevProcess, waitFor } from './dev_process.ts';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('dev: the nodes stop by themselves when the dev process is killed with SIGKILL', { timeout: 90_000 }, async () => {
  const dev = await DevProcess.start(3);
  try {
    const pids = (await dev.nodes()).map((node) => node.pid).filter((pid): pid is number => pid !== null);
    assert.equal(pids.length, 3);
    assert.ok(pids.every(alive));
    dev.killDevProcess();
    await waitFor('every node to exit', () => pids.every((pid) => !alive(pid)), 10_000);
  } finally {
    await dev.stop();
  }
});
