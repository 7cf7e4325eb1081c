import { formatBytes } from './byte-size.js';

/** One reading of the filesystem that holds the engine's data. */
export interface DiskReading {
  /** The path measured (the engine's data root, or the configured `disk.path`). */
  path: string;
  totalBytes: number;
  /** Free to the engine now. */
  availableBytes: number;
  /** Taken, counting root-reserved blocks as taken, as `df` does. */
  usedBytes: number;
}

/** How full the disk is, as `df` says it: used over used plus available. */
export function usedPercent(r: DiskReading): number {
  const denominator = r.usedBytes + r.availableBytes;
  return denominator <= 0 ? 0 : (r.usedBytes / denominator) * 100;
}

/** What a pull needs and what could be made free for it. */
export interface PullSpace {
  /** Available bytes above the reserve (may be negative). */
  roomBytes: number;
  /** Estimated bytes the pull takes with what is on disk now. */
  neededBytes: number;
  /** What removing unused, unprotected images the agent pulled would free. */
  collectableBytes: number;
  /**
   * When the service has an old version whose container and image could go
   * first: what the pull would need then (layers only that image held must
   * come again) and what removing that image frees.
   */
  killFirst?: { neededBytes: number; reclaimBytes: number };
}

export type PullFit =
  | { kind: 'fits' }
  /** Fits once unused images are removed, oldest use first. */
  | { kind: 'collect-first'; reason: string }
  /** Fits only once the old version's container and image are gone: the update runs kill-then-download. */
  | { kind: 'kill-first'; reason: string }
  /** Does not fit even then. */
  | { kind: 'short'; reason: string };

/** Pure: whether a pull fits beside what is on disk, and what must go first when it does not. */
export function fitPull(s: PullSpace): PullFit {
  const room = s.roomBytes;
  const need = `needs about ${formatBytes(s.neededBytes)}`;
  if (s.neededBytes <= room) return { kind: 'fits' };
  if (s.neededBytes <= room + s.collectableBytes) {
    return { kind: 'collect-first', reason: `${need}, ${formatBytes(Math.max(0, room))} free above the reserve; removing unused images first` };
  }
  const k = s.killFirst;
  if (k !== undefined && k.neededBytes <= room + s.collectableBytes + k.reclaimBytes) {
    return {
      kind: 'kill-first',
      reason: `${need}, ${formatBytes(Math.max(0, room + s.collectableBytes))} can be free above the reserve beside the running version; `
        + `removing the old version first frees about ${formatBytes(k.reclaimBytes)}: switching to kill-then-download`,
    };
  }
  const most = room + s.collectableBytes + (k?.reclaimBytes ?? 0);
  return { kind: 'short', reason: `${need}, at most ${formatBytes(Math.max(0, most))} can be free above the reserve${k === undefined ? '' : ' even without the old version'}` };
}
