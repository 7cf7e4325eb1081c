import { readdirSync, readFileSync } from 'node:fs';

/** What the kernel says about one process: resident memory, open descriptors, CPU ticks. */
export interface ProcSample {
  at: number;
  rssBytes: number;
  fds: number;
  /** utime + stime, in clock ticks (USER_HZ, 100 on Linux). */
  cpuTicks: number;
}

export const CLOCK_TICKS_PER_SECOND = 100;

export function sampleProcess(pid: number): ProcSample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
  // Fields after the command (which may hold spaces) start after the last ')'.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of stat, 12 and 13 counted from state (field 3).
  const cpuTicks = Number(fields[11]) + Number(fields[12]);
  return { at: Date.now(), rssBytes: rssKb * 1024, fds: readdirSync(`/proc/${pid}/fd`).length, cpuTicks };
}

/** CPU used between two samples, as a fraction of one core. */
export function cpuFraction(a: ProcSample, b: ProcSample): number {
  return (b.cpuTicks - a.cpuTicks) / CLOCK_TICKS_PER_SECOND / ((b.at - a.at) / 1000);
}
