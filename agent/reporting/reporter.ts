import type { Logger } from '../../common/logger.js';
import { asTsunaguError } from '../../protocol/errors.js';
import { systemClock, type Clock } from '../clock.js';
import type { InventoryReport, MetricsReport, ServiceUsage } from '../../protocol/reports.js';
import type { Outbound } from '../link/outbound.js';
import type { InventoryService } from '../resources/inventory.js';
import type { MetricsSampler } from '../resources/metrics-sampler.js';
import { isSignificantChange } from '../resources/significant-change.js';

export interface ReporterOptions {
  inventory: InventoryService;
  sampler: MetricsSampler;
  outbound: Outbound;
  logger: Logger;
  /** A metrics report at least this often. */
  intervalMs: number;
  /** How often to sample for a significant change between reports (cheap: /proc reads only). */
  sampleMs: number;
  /** Container engine version and per-service usage, when a runtime is wired in. */
  runtimeVersion?: () => string | undefined;
  serviceUsage?: () => Promise<readonly ServiceUsage[] | undefined>;
  /** Messages refused so far, by code: carried in every metrics report (`refused`). */
  refused?: () => Record<string, number>;
  /** Called after each sample: work that follows the disk (image garbage collection) rides on this timer instead of one of its own. */
  onSample?: () => void;
  clock?: Clock;
}

/**
 * Inventory (retained) on every connection and when attached devices change;
 * metrics (retained: the fleet's "last metrics") every interval, or sooner
 * on a significant change.
 */
export class Reporter {
  private timer: NodeJS.Timeout | undefined;
  private lastSent: MetricsReport | undefined;
  private lastSentAt = 0;
  private readonly clock: Clock;
  private busy = false;

  constructor(private readonly opts: ReporterOptions) {
    this.clock = opts.clock ?? systemClock;
  }

  start(): void {
    this.timer ??= setInterval(() => void this.tick(), this.opts.sampleMs);
    // The timer alone must not keep a stopping agent alive.
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** On (re)connection: the retained inventory may be gone from a restarted broker. */
  async onOnline(): Promise<void> {
    await this.resendInventory();
  }

  /** The inventory from the facts in hand, sent again (queued while offline). */
  async resendInventory(): Promise<void> {
    await this.sendInventory(await this.opts.inventory.report(this.opts.runtimeVersion?.()));
  }

  /** The `report-now` command: re-read everything, send both reports, return them. */
  async reportNow(): Promise<{ inventory: InventoryReport; metrics: MetricsReport }> {
    const inventory = await this.opts.inventory.refresh(this.opts.runtimeVersion?.());
    await this.sendInventory(inventory);
    const metrics = await this.opts.sampler.next(await this.opts.serviceUsage?.());
    await this.sendMetrics(metrics);
    return { inventory, metrics };
  }

  /**
   * One sampling round, exactly as the timer runs it: hot-plug check, a
   * sample, and a metrics report when one is due or the change is
   * significant. Public so that the bench can time this very path.
   */
  async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      if (await this.opts.inventory.refreshDevices()) {
        this.opts.logger.info('attached devices changed; sending a new inventory');
        await this.sendInventory(await this.opts.inventory.report(this.opts.runtimeVersion?.()));
      }
      const metrics = await this.opts.sampler.next(await this.opts.serviceUsage?.());
      this.opts.onSample?.();
      // Half a sampling period of slack: timers fire a little early or late,
      // and a report due 1 ms from now must not wait a whole period more.
      const due = this.clock.now() - this.lastSentAt + this.opts.sampleMs / 2 >= this.opts.intervalMs;
      if (due || isSignificantChange(this.lastSent, metrics)) await this.sendMetrics(metrics);
    } catch (err) {
      this.opts.logger.warn({ err: asTsunaguError(err).toJSON() }, 'resource report failed');
    } finally {
      this.busy = false;
    }
  }

  /** A metrics report at least this often from now on (a fleet's device setting, or the configuration's again). */
  setIntervalMs(ms: number): void {
    this.opts.intervalMs = ms;
  }

  private async sendInventory(inventory: InventoryReport): Promise<void> {
    await this.opts.outbound.send({ kind: 'inventory', payload: JSON.stringify(inventory), class: 'state', retain: true });
  }

  private async sendMetrics(metrics: MetricsReport): Promise<void> {
    this.lastSent = metrics;
    this.lastSentAt = this.clock.now();
    const refused = this.opts.refused?.() ?? {};
    const report: MetricsReport = Object.keys(refused).length === 0 ? metrics : { ...metrics, refused };
    await this.opts.outbound.send({
      kind: 'metrics', payload: JSON.stringify(report), class: 'metrics', retain: true,
      expirySeconds: Math.ceil((this.opts.intervalMs * 10) / 1000),
    });
  }
}
