import type { DiskReading, PullSpace } from '../images/disk-fit.js';
import type { EngineImage } from '../images/docker-images.js';
import { removableImages } from '../images/image-gc.js';
import type { ImageRecord } from '../images/image-records.js';
import { estimatePulls, layersOf, reclaimableBytes, type RemoteLayer } from './pull-estimate.js';

export interface PullSpaceInputs {
  /** The images to pull, with their layers as the registry lists them. */
  pulls: readonly { ref: string; layers: readonly RemoteLayer[] }[];
  images: readonly EngineImage[];
  records: readonly ImageRecord[];
  inUse: ReadonlySet<string>;
  /** Never removed: the desired state's images and those kept for rollback. */
  protectedIds: ReadonlySet<string>;
  /** Images of the desired state: an old image still named there is not an old image. */
  desiredRefs: ReadonlySet<string>;
  /** Images of the old versions the pulls replace, which a kill-then-download update removes first. */
  oldRefs: readonly string[];
  disk: DiskReading;
  reserveBytes: number;
  unpackFactor: number;
}

/**
 * Pure: the space picture of a set of pulls. Needed bytes count the layers
 * not on disk; collectable bytes what garbage collection could remove; and,
 * when old versions are replaced, what removing their images (only ones the
 * agent pulled and the desired state no longer names) frees and what the
 * pulls would need then. `perImage` gives each pulled image's share.
 */
export function pullSpace(i: PullSpaceInputs): { space: PullSpace; perImage: Map<string, number> } {
  const byRef = new Map(i.images.flatMap((img) => img.refs.map((r) => [r, img] as const)));
  const recorded = new Set(i.records.map((r) => r.ref));
  const desiredIds = new Set([...i.desiredRefs].flatMap((r) => { const img = byRef.get(r); return img === undefined ? [] : [img.id]; }));
  const oldIds = new Set(i.oldRefs.flatMap((r) => {
    const img = byRef.get(r);
    return img !== undefined && recorded.has(r) && !desiredIds.has(img.id) ? [img.id] : [];
  }));
  const sizes = new Map(i.images.map((img) => [img.id, img.sizeBytes]));
  const collectIds = new Set(removableImages(i.records, i.inUse, i.protectedIds, sizes).map((r) => r.imageId).filter((id) => !oldIds.has(id)));
  const collectable = i.images.filter((img) => collectIds.has(img.id));
  const old = i.images.filter((img) => oldIds.has(img.id));
  const staying = i.images.filter((img) => !collectIds.has(img.id) && !oldIds.has(img.id));
  const now = estimatePulls(i.pulls, layersOf(i.images), i.unpackFactor);
  const space: PullSpace = {
    roomBytes: i.disk.availableBytes - i.reserveBytes,
    neededBytes: now.totalBytes,
    collectableBytes: reclaimableBytes(collectable, [...staying, ...old]),
  };
  if (old.length > 0) {
    space.killFirst = {
      neededBytes: estimatePulls(i.pulls, layersOf(staying), i.unpackFactor).totalBytes,
      reclaimBytes: reclaimableBytes(old, staying),
    };
  }
  return { space, perImage: now.perImage };
}
