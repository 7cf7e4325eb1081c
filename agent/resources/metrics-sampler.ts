import type { MetricsReport, ServiceUsage } from '../../protocol/reports.js';
import { computeMetrics } from './metrics.js';
import type { RawSample, ResourceProbe } from './probe.js';

/**
 * Produces successive metrics reports, keeping the previous raw sample so
 * that rates cover the time since the last report. Whether a report goes
 * out early is `isSignificantChange(lastSent, report)`, decided by the caller
 * that knows what was last sent.
 */
export class MetricsSampler {
  private previous: RawSample | undefined;

  /**
   * `onSample` sees every raw sample taken (the pressure monitor reads its
   * memory and temperature from them rather than reading /proc again).
   * Must not throw.
   */
  constructor(private readonly probe: ResourceProbe, private readonly onSample?: (sample: RawSample) => void) {}

  /** `services`: per-service usage from the container engine, when it is reachable. */
  async next(services?: readonly ServiceUsage[]): Promise<MetricsReport> {
    const current = await this.probe.sample();
    this.onSample?.(current);
    const report = computeMetrics(this.previous, current, services);
    this.previous = current;
    return report;
  }
}
