import { readFileSync } from 'node:fs';

/**
 * Memory and CPU of a process as the kernel accounts them, read from
 * /proc/PID. Resident memory is VmRSS (what `ps` and `top` show) and Pss
 * (shared pages divided among their users, which is fairer to processes that
 * share a runtime's file-backed pages); CPU is the process's own time plus
 * that of its children the kernel has already reaped, so a collection that
 * spawns tools shows up in the figure instead of hiding in a child.
 */
export interface ProcessMemory {
  rssBytes: number;
  pssBytes: number | undefined;
}

export interface ProcessCpu {
  /** utime + stime, ms. */
  selfMs: number;
  /** cutime + cstime (waited-for children), ms. */
  childrenMs: number;
}

const TICKS_PER_SEC = 100; // USER_HZ on every Linux ABI Node supports

/** A `kB` line of /proc/PID/status or smaps_rollup, in bytes. */
export function kbField(text: string, name: string): number | undefined {
  const m = new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(text);
  return m?.[1] === undefined ? undefined : Number(m[1]) * 1024;
}

/** utime, stime, cutime, cstime of /proc/PID/stat, in ms. */
export function parseStatCpu(stat: string): ProcessCpu {
  // The command name may contain spaces and parentheses: fields start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // proc(5) fields 14–17, counted from field 3 (state) here.
  const [utime, stime, cutime, cstime] = [11, 12, 13, 14].map((i) => Number(fields[i]));
  if (![utime, stime, cutime, cstime].every((n) => Number.isFinite(n))) throw new Error('malformed /proc/PID/stat');
  const ms = (ticks: number): number => (ticks * 1000) / TICKS_PER_SEC;
  return { selfMs: ms(utime! + stime!), childrenMs: ms(cutime! + cstime!) };
}

export function processMemory(pid: number): ProcessMemory {
  const rss = kbField(readFileSync(`/proc/${pid}/status`, 'utf8'), 'VmRSS');
  if (rss === undefined) throw new Error(`process ${pid} has no VmRSS (a zombie?)`);
  let pss: number | undefined;
  try {
    pss = kbField(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'), 'Pss');
  } catch {
    pss = undefined; // kernels before 4.14 have no smaps_rollup
  }
  return { rssBytes: rss, pssBytes: pss };
}

export function processCpu(pid: number): ProcessCpu {
  return parseStatCpu(readFileSync(`/proc/${pid}/stat`, 'utf8'));
}

/** Live children of `pid` right now. libuv spawns from the loop thread, so its task's list is the one to read. */
export function liveChildren(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/);
  } catch {
    return out;
  }
  for (const t of tasks) if (t !== '') out.push(Number(t));
  return out;
}
