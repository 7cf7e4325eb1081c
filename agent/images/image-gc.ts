import { usedPercent, type DiskReading } from './disk-fit.js';
import type { ImageRecord } from './image-records.js';

export interface Watermarks {
  /** Collection starts above this use of the disk, in percent. */
  highPercent: number;
  /** …and stops at or below this one. */
  lowPercent: number;
}

/** One image to remove: every reference the agent pulled it by, and what removing it should free. */
export interface Removal {
  imageId: string;
  refs: string[];
  /** Least recent use (or pull, for an image never used). */
  lastUsedAt: number;
  expectedBytes: number;
}

/**
 * The images the agent may remove, least recently used first: those it
 * pulled (records), that no container uses (`inUse`, image ids) and that
 * are not protected (the current desired state's images and those kept for
 * rollback, as ids). Pure.
 */
export function removableImages(
  records: readonly ImageRecord[], inUse: ReadonlySet<string>, protectedIds: ReadonlySet<string>, sizes: ReadonlyMap<string, number>,
): Removal[] {
  const byId = new Map<string, Removal>();
  for (const r of records) {
    if (inUse.has(r.imageId) || protectedIds.has(r.imageId)) continue;
    const used = r.lastUsedAt ?? r.pulledAt;
    const entry = byId.get(r.imageId);
    if (entry === undefined) byId.set(r.imageId, { imageId: r.imageId, refs: [r.ref], lastUsedAt: used, expectedBytes: sizes.get(r.imageId) ?? 0 });
    else {
      entry.refs.push(r.ref);
      entry.lastUsedAt = Math.max(entry.lastUsedAt, used);
    }
  }
  return [...byId.values()].sort((a, b) => a.lastUsedAt - b.lastUsedAt || (a.imageId < b.imageId ? -1 : 1));
}

/**
 * Garbage collection's choice: nothing while the disk is at or below the
 * high watermark; above it, removable images in LRU order until the
 * expected use is at or below the low watermark (or nothing removable is
 * left). `expectedBytes` are estimates: the collector reads the disk after
 * each removal and stops as soon as the low watermark is reached. Pure.
 */
export function chooseImagesToRemove(
  records: readonly ImageRecord[], inUse: ReadonlySet<string>, protectedIds: ReadonlySet<string>, disk: DiskReading, watermarks: Watermarks,
  sizes: ReadonlyMap<string, number>,
): Removal[] {
  if (usedPercent(disk) <= watermarks.highPercent) return [];
  return chooseDownTo(records, inUse, protectedIds, disk, watermarks.lowPercent, sizes);
}

/** Removable images in LRU order until the expected use is at or below `lowPercent`: a collection under way. Pure. */
export function chooseDownTo(
  records: readonly ImageRecord[], inUse: ReadonlySet<string>, protectedIds: ReadonlySet<string>, disk: DiskReading, lowPercent: number,
  sizes: ReadonlyMap<string, number>,
): Removal[] {
  const capacity = disk.usedBytes + disk.availableBytes;
  const target = (lowPercent / 100) * capacity;
  let used = disk.usedBytes;
  const chosen: Removal[] = [];
  for (const candidate of removableImages(records, inUse, protectedIds, sizes)) {
    if (used <= target) break;
    chosen.push(candidate);
    used -= candidate.expectedBytes;
  }
  return chosen;
}

/** Removable images in LRU order until `bytes` are expected free: room for a pull. Pure. */
export function chooseImagesToFree(
  records: readonly ImageRecord[], inUse: ReadonlySet<string>, protectedIds: ReadonlySet<string>, bytes: number, sizes: ReadonlyMap<string, number>,
): Removal[] {
  let freed = 0;
  const chosen: Removal[] = [];
  for (const candidate of removableImages(records, inUse, protectedIds, sizes)) {
    if (freed >= bytes) break;
    chosen.push(candidate);
    freed += candidate.expectedBytes;
  }
  return chosen;
}
