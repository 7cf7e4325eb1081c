import type { MetricsReport, ServiceUsage } from '../../protocol/reports.js';
import type { RawSample } from './probe.js';

/**
 * Pure: one metrics report from the current raw sample and the previous one.
 * Rates need two samples; without a previous one (first report after start)
 * CPU load is the average since boot and throughput is omitted rather than
 * guessed. A counter that went backwards (interface re-created, counter
 * wrap on 32-bit kernels) yields no rate for that interface, never a
 * negative or absurd one.
 */
export function computeMetrics(previous: RawSample | undefined, current: RawSample, services?: readonly ServiceUsage[]): MetricsReport {
  const report: MetricsReport = {
    v: 1,
    at: current.at,
    uptimeSec: current.uptimeSec,
    cpu: { load: cpuLoad(previous, current), loadAvg: current.loadAvg },
    memory: {
      totalBytes: current.memory.totalBytes,
      usedBytes: Math.max(0, current.memory.totalBytes - current.memory.availableBytes),
      availableBytes: current.memory.availableBytes,
    },
    filesystems: current.filesystems.map((f) => ({
      mount: f.mount,
      sizeBytes: f.sizeBytes,
      // "Used" counts the root-reserved blocks as used, as `df` does: they are
      // not available to the agent or its containers either.
      usedBytes: Math.max(0, f.sizeBytes - f.freeBytes),
      availableBytes: f.availableBytes,
    })),
    network: throughput(previous, current),
  };
  if (current.temperatureC !== undefined) report.temperatureC = current.temperatureC;
  if (services !== undefined) report.services = services.map((s) => ({ ...s }));
  return report;
}

function clamp01(x: number): number {
  return Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0;
}

function cpuLoad(previous: RawSample | undefined, current: RawSample): number {
  const c = current.cpuTicks;
  if (previous !== undefined) {
    const dTotal = c.total - previous.cpuTicks.total;
    const dBusy = c.busy - previous.cpuTicks.busy;
    if (dTotal > 0 && dBusy >= 0) return clamp01(dBusy / dTotal);
  }
  return c.total > 0 ? clamp01(c.busy / c.total) : 0;
}

function throughput(previous: RawSample | undefined, current: RawSample): MetricsReport['network'] {
  if (previous === undefined) return [];
  const seconds = (current.monotonicMs - previous.monotonicMs) / 1000;
  if (!(seconds > 0)) return [];
  const before = new Map(previous.network.map((n) => [n.name, n]));
  const out: MetricsReport['network'] = [];
  for (const n of current.network) {
    const p = before.get(n.name);
    if (p === undefined || n.rxBytes < p.rxBytes || n.txBytes < p.txBytes) continue;
    out.push({ name: n.name, rxBytesPerSec: (n.rxBytes - p.rxBytes) / seconds, txBytesPerSec: (n.txBytes - p.txBytes) / seconds });
  }
  return out;
}
