import type { MqttClient } from 'mqtt';
import type { Logger } from '../common/logger.js';
import { asTsunaguError } from '../protocol/errors.js';
import { DEFAULT_JSON_LIMITS, parseJsonWith } from '../protocol/json.js';
import { InventoryReportSchema } from '../protocol/reports.js';
import { DeviceStatusSchema, STATUS_LIMITS } from '../protocol/status.js';
import { allDevicesTopic, parseDeviceTopic } from '../protocol/topics.js';
import type { FleetDatabase } from './fleet-database.js';

/**
 * Keeps the fleet database's online state and last-seen time from the devices'
 * retained status topics, and their capability labels from their retained
 * inventories. The broker's ACLs guarantee only the device itself
 * (or its last will) can publish there.
 */
export class PresenceTracker {
  /** Reports ignored since the start, by error code (TOO_LARGE, SCHEMA…): each is logged with the running count. */
  private readonly ignored = new Map<string, number>();

  private countIgnored(err: unknown): { code: string; ignoredSinceStart: Record<string, number> } {
    const { code } = asTsunaguError(err);
    this.ignored.set(code, (this.ignored.get(code) ?? 0) + 1);
    return { code, ignoredSinceStart: Object.fromEntries(this.ignored) };
  }

  private readonly onMessage = (topic: string, payload: Buffer): void => {
    const parsed = parseDeviceTopic(topic);
    if (parsed === undefined || payload.length === 0) return;
    if (parsed.kind === 'metrics') {
      // Any report is a sign of life; the status topic only changes on (dis)connect.
      this.database.touch(parsed.deviceId, this.now());
      return;
    }
    if (parsed.kind === 'inventory') {
      this.recordLabels(parsed.deviceId, payload);
      return;
    }
    if (parsed.kind !== 'status') return;
    try {
      const status = parseJsonWith(DeviceStatusSchema, new Uint8Array(payload), 'status', STATUS_LIMITS);
      this.database.setPresence(parsed.deviceId, status.state === 'online', this.now());
      this.onDeviceChanged?.(parsed.deviceId);
    } catch (err) {
      this.logger.warn({ deviceId: parsed.deviceId, err: (err as Error).message, ...this.countIgnored(err) }, 'ignored a malformed status');
    }
  };

  /** The capability labels of the inventory, for `deploy --selector`. */
  private recordLabels(deviceId: string, payload: Buffer): void {
    try {
      const inventory = parseJsonWith(InventoryReportSchema, new Uint8Array(payload), 'inventory', DEFAULT_JSON_LIMITS);
      this.database.setLabels(deviceId, inventory.labels);
      this.onDeviceChanged?.(deviceId);
    } catch (err) {
      this.logger.warn({ deviceId, err: (err as Error).message, ...this.countIgnored(err) }, 'ignored a malformed inventory; the labels stay as they were');
    }
  }

  /** Told after a device's presence or labels were written (the deployment reconciler wakes on it). */
  onDeviceChanged: ((deviceId: string) => void) | undefined;

  constructor(private readonly client: MqttClient, private readonly database: FleetDatabase, private readonly logger: Logger, private readonly now: () => number = Date.now) {}

  async start(): Promise<void> {
    this.client.on('message', this.onMessage);
    await this.client.subscribeAsync([allDevicesTopic('status'), allDevicesTopic('metrics'), allDevicesTopic('inventory')], { qos: 1 });
  }

  stop(): void {
    this.client.removeListener('message', this.onMessage);
  }
}
