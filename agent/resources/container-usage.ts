import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ServiceUsage } from '../../protocol/reports.js';

/**
 * CPU and memory per service, read from each container's cgroup files.
 *
 * Why not the engine's stats endpoint (`docker stats`): a one-shot stats
 * request waits for two samples inside the engine and takes about a second
 * per container, and a report every few seconds on a Pi would keep dockerd
 * busy. The cgroup files are what the engine reads anyway; reading them is a
 * few microseconds per container. CPU is the difference of cumulative usage
 * between two reads, as a fraction of one core.
 *
 * Paths tried, cgroup v2 then v1, cgroupfs driver then systemd driver:
 *   /sys/fs/cgroup/{docker/<id>, system.slice/docker-<id>.scope}/{memory.current, cpu.stat}
 *   /sys/fs/cgroup/{memory,cpuacct}/{docker/<id>, system.slice/docker-<id>.scope}/{memory.usage_in_bytes, cpuacct.usage}
 */
export interface CgroupReading {
  memoryBytes: number;
  /** Cumulative CPU time, ns. */
  cpuNs: number;
}

function readNumber(path: string): number | undefined {
  try {
    const n = Number(readFileSync(path, 'utf8').trim());
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

function readUsageUsec(path: string): number | undefined {
  try {
    const m = /^usage_usec (\d+)$/m.exec(readFileSync(path, 'utf8'));
    return m?.[1] === undefined ? undefined : Number(m[1]);
  } catch {
    return undefined;
  }
}

/** One container's cgroup counters, or undefined when none of the known layouts has it. */
export function readContainerCgroup(containerId: string, root = '/sys/fs/cgroup'): CgroupReading | undefined {
  const rels = [join('docker', containerId), join('system.slice', `docker-${containerId}.scope`)];
  for (const rel of rels) {
    const memory = readNumber(join(root, rel, 'memory.current'));
    const usec = readUsageUsec(join(root, rel, 'cpu.stat'));
    if (memory !== undefined && usec !== undefined) return { memoryBytes: memory, cpuNs: usec * 1000 };
  }
  for (const rel of rels) {
    const memory = readNumber(join(root, 'memory', rel, 'memory.usage_in_bytes'));
    const cpuNs = readNumber(join(root, 'cpuacct', rel, 'cpuacct.usage'));
    if (memory !== undefined && cpuNs !== undefined) return { memoryBytes: memory, cpuNs };
  }
  return undefined;
}

/** Keeps the previous reading per container, so that each call reports CPU since the last one. */
export class ContainerUsage {
  private previous = new Map<string, { cpuNs: number; at: number }>();

  constructor(private readonly opts: { root?: string; now?: () => number } = {}) {}

  /** Usage of the services that have a running container; the first call reports CPU 0. */
  sample(services: readonly { name: string; containerId: string | null; state: string }[]): ServiceUsage[] {
    const now = (this.opts.now ?? Date.now)();
    const next = new Map<string, { cpuNs: number; at: number }>();
    const out: ServiceUsage[] = [];
    for (const s of services) {
      if (s.containerId === null || s.state !== 'running') continue;
      const r = readContainerCgroup(s.containerId, this.opts.root);
      if (r === undefined) continue;
      const prev = this.previous.get(s.containerId);
      const cpu = prev !== undefined && now > prev.at ? Math.max(0, (r.cpuNs - prev.cpuNs) / 1e6 / (now - prev.at)) : 0;
      next.set(s.containerId, { cpuNs: r.cpuNs, at: now });
      out.push({ name: s.name, cpu: Math.round(cpu * 1000) / 1000, memoryBytes: r.memoryBytes });
    }
    this.previous = next; // containers gone since are forgotten
    return out;
  }
}
