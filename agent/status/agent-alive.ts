import { readFileSync } from 'node:fs';

/**
 * Whether the process that wrote a status file still runs: its pid exists and
 * is a tsunagu agent (a pid reused by another program after a crash is not).
 */
export function agentAlive(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('tsunagu-agent');
  } catch {
    return false;
  }
}
