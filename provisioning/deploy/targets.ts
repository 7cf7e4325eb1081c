import { InventoryReportSchema } from '../../protocol/reports.js';
import type { FleetLink } from '../fleet-link.js';
import type { DeviceRecord } from '../fleet-database.js';
import { matchesSelector, type Selector } from './selector.js';

export interface Target {
  deviceId: string;
  boxPublicKey: string;
  labels: Record<string, string>;
  /** Where the labels were read: the fleet database (kept by `serve`) or the device's retained inventory. */
  labelsFrom: 'registry' | 'inventory' | 'none';
}

/**
 * Pure: the active devices whose labels match every pair of the selector.
 * `inventoryLabels` is consulted only for devices the fleet database holds no labels for.
 */
export function selectTargets(devices: readonly DeviceRecord[], selector: Selector, inventoryLabels: ReadonlyMap<string, Record<string, string>>): Target[] {
  const out: Target[] = [];
  for (const d of devices) {
    if (d.status !== 'active') continue;
    const fromRegistry = Object.keys(d.labels).length > 0;
    const inventory = inventoryLabels.get(d.deviceId);
    const labels = fromRegistry ? d.labels : inventory ?? {};
    if (!matchesSelector(selector, labels)) continue;
    out.push({ deviceId: d.deviceId, boxPublicKey: d.boxPublicKey, labels, labelsFrom: fromRegistry ? 'registry' : inventory === undefined ? 'none' : 'inventory' });
  }
  return out;
}

/** Read the retained inventories of the given devices (those `serve` has not recorded labels for). */
export async function retainedInventoryLabels(link: FleetLink, deviceIds: readonly string[], windowMs = 600): Promise<Map<string, Record<string, string>>> {
  const wanted = new Set(deviceIds);
  const labels = new Map<string, Record<string, string>>();
  if (wanted.size === 0) return labels;
  const stop = await link.watch(undefined, ['inventory'], (r) => {
    if (!wanted.has(r.deviceId)) return;
    try {
      const inv = InventoryReportSchema.safeParse(JSON.parse(r.payload.toString('utf8')));
      if (inv.success) labels.set(r.deviceId, inv.data.labels);
    } catch {
      // An unreadable inventory gives no labels: the device is not selected.
    }
  });
  await new Promise((resolve) => setTimeout(resolve, windowMs));
  await stop();
  return labels;
}
