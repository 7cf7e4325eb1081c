import type { MetricsReport } from '../../protocol/reports.js';

/**
 * When a metrics report is worth sending before its period is up. Deltas
 * catch sudden moves; levels catch slow drifts across a line that matters
 * (a disk filling by 1 % a day never makes a big delta but must be seen when
 * it crosses 90 %).
 */
export interface ChangeThresholds {
  /** Absolute change of CPU load (fraction of all cores). */
  cpuLoadDelta: number;
  /** Absolute change of used memory as a fraction of total. */
  memoryDelta: number;
  /** Absolute change of a filesystem's used fraction. */
  diskDelta: number;
  /** Used fraction of a filesystem that is reported when crossed either way. */
  diskLevel: number;
  /** Used fraction of memory that is reported when crossed either way. */
  memoryLevel: number;
  temperatureDeltaC: number;
  /** Temperature that is reported when crossed either way (throttling starts near 80 °C on a Pi). */
  temperatureLevelC: number;
}

export const DEFAULT_CHANGE_THRESHOLDS: ChangeThresholds = {
  cpuLoadDelta: 0.5,
  memoryDelta: 0.15,
  diskDelta: 0.05,
  diskLevel: 0.9,
  memoryLevel: 0.9,
  temperatureDeltaC: 10,
  temperatureLevelC: 80,
};

/**
 * Reasons for an early report, as short stable strings for logs; empty means
 * "wait for the period". `previous` is the last report SENT, not the last
 * sample: comparing consecutive samples would let a slow climb pass unseen.
 */
export function significantChanges(previous: MetricsReport, current: MetricsReport, t: ChangeThresholds = DEFAULT_CHANGE_THRESHOLDS): string[] {
  const reasons: string[] = [];
  // Thresholds are compared with a little slack so that 0.7 - 0.2 counts as 0.5.
  const atLeast = (delta: number, threshold: number): boolean => Math.abs(delta) >= threshold - 1e-9;
  const crossed = (a: number, b: number, level: number): boolean => (a < level) !== (b < level);

  if (atLeast(current.cpu.load - previous.cpu.load, t.cpuLoadDelta)) reasons.push('cpu.load');

  const memFraction = (m: MetricsReport): number => (m.memory.totalBytes > 0 ? m.memory.usedBytes / m.memory.totalBytes : 0);
  const m0 = memFraction(previous);
  const m1 = memFraction(current);
  if (atLeast(m1 - m0, t.memoryDelta)) reasons.push('memory.delta');
  else if (crossed(m0, m1, t.memoryLevel)) reasons.push('memory.level');

  const before = new Map(previous.filesystems.map((f) => [f.mount, f]));
  const usedFraction = (f: { sizeBytes: number; usedBytes: number }): number => (f.sizeBytes > 0 ? f.usedBytes / f.sizeBytes : 0);
  for (const f of current.filesystems) {
    const p = before.get(f.mount);
    if (p === undefined) {
      reasons.push(`fs.added:${f.mount}`);
      continue;
    }
    before.delete(f.mount);
    const u0 = usedFraction(p);
    const u1 = usedFraction(f);
    if (atLeast(u1 - u0, t.diskDelta)) reasons.push(`fs.delta:${f.mount}`);
    else if (crossed(u0, u1, t.diskLevel)) reasons.push(`fs.level:${f.mount}`);
  }
  for (const mount of before.keys()) reasons.push(`fs.removed:${mount}`);

  const c0 = previous.temperatureC;
  const c1 = current.temperatureC;
  if (c0 !== undefined && c1 !== undefined) {
    if (atLeast(c1 - c0, t.temperatureDeltaC)) reasons.push('temperature.delta');
    else if (crossed(c0, c1, t.temperatureLevelC)) reasons.push('temperature.level');
  }
  return reasons;
}

export function isSignificantChange(previous: MetricsReport | undefined, current: MetricsReport, t: ChangeThresholds = DEFAULT_CHANGE_THRESHOLDS): boolean {
  // Nothing sent yet: the first report is always worth sending.
  return previous === undefined || significantChanges(previous, current, t).length > 0;
}
