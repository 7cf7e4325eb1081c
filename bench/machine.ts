import { readFileSync } from 'node:fs';
import os from 'node:os';

/** What the figures were measured on, from /proc: they only mean something next to it. */
export function describeMachine(): string {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown CPU';
  const memKb = Number(/^MemTotal:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0);
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  return `${model}, ${os.availableParallelism()} cores, ${(memKb / 1024 / 1024).toFixed(1)} GiB RAM, Linux ${os.release()} ${os.machine()}; load average at start ${load}`;
}
