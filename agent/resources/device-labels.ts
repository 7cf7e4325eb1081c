import type { InventoryReport, Labels } from '../../protocol/reports.js';

const GiB = 1024 ** 3;

/**
 * Memory classes by the total the kernel reports, which is always below the
 * nominal size (firmware and GPU reservations): a "1 GB" Pi reports ~0.9 GiB,
 * a "4 GB" one ~3.7 GiB, an "8 GB" one ~7.6 GiB. The thresholds sit between
 * nominal sizes so that every board of one size lands in one class:
 *   small  < 1.5 GiB  (512 MB and 1 GB boards)
 *   medium < 6 GiB    (2 GB and 4 GB boards)
 *   large  ≥ 6 GiB    (8 GB boards and up)
 */
export const MEMORY_CLASS_THRESHOLDS = { smallBelowBytes: 1.5 * GiB, mediumBelowBytes: 6 * GiB } as const;

export function memoryClass(totalBytes: number): 'small' | 'medium' | 'large' {
  if (totalBytes < MEMORY_CLASS_THRESHOLDS.smallBelowBytes) return 'small';
  if (totalBytes < MEMORY_CLASS_THRESHOLDS.mediumBelowBytes) return 'medium';
  return 'large';
}

/** Label values allow [A-Za-z0-9._/-]; anything else (spaces in "Debian GNU/Linux") becomes '_'. */
function labelValue(text: string): string {
  return text.replace(/[^A-Za-z0-9._/-]/g, '_').slice(0, 63);
}

/**
 * Capability labels for placement by label selector, derived purely from an
 * inventory. Every boolean label is always present (`gpu=false` rather than
 * absent) so that a selector can ask for the negative, e.g. `gpu!=true`.
 */
export function deriveLabels(inv: Omit<InventoryReport, 'labels'>): Labels {
  const kinds = new Set(inv.devices.map((d) => d.kind));
  const accel = new Set(inv.accelerators.map((a) => a.kind));
  const labels: Labels = {
    os: labelValue(inv.os.platform.toLowerCase()),
    arch: inv.arch,
    memory: memoryClass(inv.memory.totalBytes),
    'cpu.cores': String(inv.cpu.cores),
    gpu: String(accel.has('gpu')),
    'accelerator.npu': String(accel.has('npu')),
    'accelerator.tpu': String(accel.has('tpu')),
    'device.serial': String(kinds.has('serial')),
    'device.video': String(kinds.has('video')),
    'device.gpio': String(kinds.has('gpio')),
  };
  if (inv.containerRuntime !== undefined) labels.runtime = labelValue(inv.containerRuntime.split(/\s+/)[0]?.toLowerCase() ?? '');
  return labels;
}

/**
 * The inventory's capability labels as the supervisor matches them against
 * `x-tsunagu.requires`: every label as `key=value`, and a boolean label that
 * is true also as its bare `key` (so `requires: [gpu]` means `gpu=true`).
 */
export function deviceLabelSet(labels: Labels): Set<string> {
  const out = new Set<string>();
  for (const [key, value] of Object.entries(labels)) {
    out.add(`${key}=${value}`);
    if (value === 'true') out.add(key);
  }
  return out;
}
