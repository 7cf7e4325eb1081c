import type { ImageConfig, ImageIndex, ImageManifest } from '../images/oci-documents.js';
import { bestPlatform, type Platform } from '../images/platform.js';

/** One layer of a remote image: its uncompressed digest (when the config names it) and download size. */
export interface RemoteLayer {
  diffId: string | null;
  compressedBytes: number;
}

/** An image as it is on the local engine, reduced to what disk estimates need. */
export interface LocalImageInfo {
  id: string;
  /** Uncompressed layer digests (RootFS.Layers), base first. */
  layers: readonly string[];
  /** Bytes each layer takes, in the same order, when the engine's history tells them unambiguously. */
  layerSizes?: readonly number[] | null;
  /** Bytes on disk the engine reports for the image, shared layers included. */
  sizeBytes: number;
}

/** The entry of an index for this device; undefined when the index has none it runs. */
export function pickManifest(index: ImageIndex, device: Platform): ImageIndex['manifests'][number] | undefined {
  const entries = index.manifests.filter((m) => m.platform !== undefined);
  const best = bestPlatform(device, entries.map((m) => ({ ...m.platform!, entry: m })));
  return best?.entry;
}

/**
 * The manifest's layers with the config's diff_ids beside them. The two
 * lists run in the same order, one entry per layer; when their lengths
 * differ the pairing is unknown and no layer counts as present locally.
 */
export function remoteLayers(manifest: ImageManifest, config: ImageConfig | undefined): RemoteLayer[] {
  const diffIds = config?.rootfs.diff_ids;
  const paired = diffIds !== undefined && diffIds.length === manifest.layers.length;
  return manifest.layers.map((l, i) => ({ diffId: paired ? (diffIds[i] ?? null) : null, compressedBytes: l.size }));
}

/**
 * Bytes a set of pulls will take on disk: the compressed size of every
 * layer not present locally, times `unpackFactor`, each layer counted once
 * even when several images share it (the engine downloads it once). The
 * result gives each image's share, a shared layer going to the first image
 * that needs it.
 */
export function estimatePulls(
  images: readonly { ref: string; layers: readonly RemoteLayer[] }[],
  localLayers: ReadonlySet<string>,
  unpackFactor: number,
): { perImage: Map<string, number>; totalBytes: number } {
  const counted = new Set<string>();
  const perImage = new Map<string, number>();
  let totalBytes = 0;
  for (const image of images) {
    let compressed = 0;
    for (const layer of image.layers) {
      if (layer.diffId !== null && (localLayers.has(layer.diffId) || counted.has(layer.diffId))) continue;
      if (layer.diffId !== null) counted.add(layer.diffId);
      compressed += layer.compressedBytes;
    }
    const bytes = Math.ceil(compressed * unpackFactor);
    perImage.set(image.ref, (perImage.get(image.ref) ?? 0) + bytes);
    totalBytes += bytes;
  }
  return { perImage, totalBytes };
}

/** Every layer the images hold. */
export function layersOf(images: Iterable<LocalImageInfo>): Set<string> {
  const out = new Set<string>();
  for (const i of images) for (const l of i.layers) out.add(l);
  return out;
}

function isPrefix(prefix: readonly string[], of: readonly string[]): boolean {
  return prefix.length <= of.length && prefix.every((l, i) => of[i] === l);
}

/**
 * Bytes freed by removing `removed` while `staying` stay: the layers no
 * image that stays holds, each counted once. Where the engine tells layer
 * sizes (its history), they are summed. Otherwise an image counts whole when
 * it shares no layer with what stays (or was counted already); when one of
 * those is its base (its layers a prefix of this one's), only what it adds
 * on top of that base; else nothing, as that share cannot be told. Low
 * rather than high: the disk is read again after every removal anyway.
 */
export function reclaimableBytes(removed: readonly LocalImageInfo[], staying: readonly LocalImageInfo[]): number {
  const layerSize = new Map<string, number>();
  for (const image of [...staying, ...removed]) {
    const sizes = image.layerSizes;
    if (sizes !== undefined && sizes !== null && sizes.length === image.layers.length) image.layers.forEach((l, i) => layerSize.set(l, sizes[i] ?? 0));
  }
  const seen: LocalImageInfo[] = [...staying];
  const held = layersOf(staying);
  let total = 0;
  for (const image of removed) {
    if (image.layers.every((l) => layerSize.has(l))) {
      for (const l of image.layers) if (!held.has(l)) total += layerSize.get(l) ?? 0;
    } else if (!image.layers.some((l) => held.has(l))) {
      total += image.sizeBytes;
    } else {
      const base = seen
        .filter((s) => s.layers.length > 0 && isPrefix(s.layers, image.layers) && image.layers.slice(s.layers.length).every((l) => !held.has(l)))
        .sort((a, b) => b.sizeBytes - a.sizeBytes)[0];
      if (base !== undefined) total += Math.max(0, image.sizeBytes - base.sizeBytes);
    }
    seen.push(image);
    for (const l of image.layers) held.add(l);
  }
  return total;
}
