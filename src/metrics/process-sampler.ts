// Memory and CPU of worker processes, read by the primary from /proc on a timer: a worker that is
// blocked or busy is still measured, and no worker spends time on it. Linux only (elsewhere: no values).

import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';

export interface ProcessSample {
  rssBytes: number;
  /** CPU use over the last sampling interval, in percent of one core. */
  cpuPercent: number;
}

function sysconf(name: string, fallback: number): number {
  try {
    const n = Number(execFileSync('getconf', [name], { encoding: 'utf8' }).trim());
    return Number.isFinite(n) && n > 0 ? n : fallback;
  } catch {
    return fallback;
  }
}

export class ProcessSampler {
  private readonly clockTicks = sysconf('CLK_TCK', 100);
  private readonly pageSize = sysconf('PAGESIZE', 4096);
  private readonly last = new Map<number, { ticks: number; at: number; sample: ProcessSample }>();

  /** Sample every pid; forget pids not in the list. */
  async sample(pids: number[]): Promise<void> {
    const alive = new Set(pids);
    for (const pid of this.last.keys()) if (!alive.has(pid)) this.last.delete(pid);
    await Promise.all(pids.map((pid) => this.sampleOne(pid)));
  }

  /** Sample the pids that have no sample yet (a scrape right after a worker started). */
  async ensure(pids: number[]): Promise<void> {
    await Promise.all(pids.filter((pid) => !this.last.has(pid)).map((pid) => this.sampleOne(pid)));
  }

  get(pid: number): ProcessSample | undefined {
    return this.last.get(pid)?.sample;
  }

  private async sampleOne(pid: number): Promise<void> {
    let stat: string;
    let statm: string;
    try {
      [stat, statm] = await Promise.all([readFile(`/proc/${pid}/stat`, 'utf8'), readFile(`/proc/${pid}/statm`, 'utf8')]);
    } catch {
      return; // gone, or not Linux
    }
    const at = performance.now();
    // Fields after the command name (which may contain spaces) start at index 2 (state).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime
    const rssBytes = Number(statm.split(' ')[1]) * this.pageSize;
    const prev = this.last.get(pid);
    const cpuPercent = prev && at > prev.at ? ((ticks - prev.ticks) / this.clockTicks / ((at - prev.at) / 1000)) * 100 : 0;
    this.last.set(pid, { ticks, at, sample: { rssBytes, cpuPercent: Math.max(0, cpuPercent) } });
  }
}
