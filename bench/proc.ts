/** Per-process CPU and memory from /proc (Linux), and a description of the machine. */
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem, type } from 'node:os';
import { join } from 'node:path';
import type { Machine } from './types.ts';

const TICKS_PER_SECOND = 100; // USER_HZ; `getconf CLK_TCK` is 100 on Linux/x86 and arm64

export interface ProcessSample {
  readonly cpuSeconds: number;
  readonly rssBytes: number;
  readonly rssPeakBytes: number;
  /**
   * Of rssBytes: anonymous memory (heap, buffers, queues: what overload would inflate) and pages
   * of mapped files (LMDB maps its data file; those pages grow with the data set and are cache
   * the kernel can drop). 0 when the kernel does not say.
   */
  readonly rssAnonBytes: number;
  readonly rssFileBytes: number;
}

export function sampleProcess(pid: number | null | undefined): ProcessSample | null {
  if (pid === null || pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields after the command: state is index 0, utime index 11, stime index 12.
    const ticks = Number(fields[11]) + Number(fields[12]);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024;
    return { cpuSeconds: ticks / TICKS_PER_SECOND, rssBytes: kb('VmRSS'), rssPeakBytes: kb('VmHWM'), rssAnonBytes: kb('RssAnon'), rssFileBytes: kb('RssFile') };
  } catch {
    return null;
  }
}

/** Resets the process's peak RSS (VmHWM) to its current RSS; false when the kernel refuses. */
export function resetPeakRss(pid: number | null | undefined): boolean {
  if (pid === null || pid === undefined) return false;
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** Disk blocks used under a folder, in bytes (sparse files count what they hold). */
export function diskUsage(path: string): number {
  let total = 0;
  const walk = (dir: string): void => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) {
      const full = join(dir, name);
      try {
        const stat = statSync(full);
        if (stat.isDirectory()) walk(full);
        else total += stat.blocks * 512;
      } catch {
        // removed meanwhile
      }
    }
  };
  walk(path);
  return total;
}

export function describeMachine(): Machine {
  let os = `${type()} ${release()}`;
  try {
    const pretty = /PRETTY_NAME="([^"]+)"/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1];
    if (pretty !== undefined) os = `${pretty}, ${os}`;
  } catch {
    // not Linux
  }
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? '?',
    memoryGb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    os,
    loadAverageAtStart: loadavg().map((value) => Math.round(value * 100) / 100),
  };
}

export const mb = (bytes: number): number => Math.round(bytes / 2 ** 20);
