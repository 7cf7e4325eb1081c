import { asTsunaguError } from '../../protocol/errors.js';
import type { DeviceEventBodyOf } from '../../protocol/events/device-events.js';
import type { SupervisorLogger } from '../supervisor/supervisor-options.js';
import { usedPercent, type DiskReading } from './disk-fit.js';
import type { DiskGauge } from './disk-gauge.js';
import type { EngineImage, ImageEngine } from './docker-images.js';
import { chooseDownTo, chooseImagesToFree, chooseImagesToRemove, type Removal, type Watermarks } from './image-gc.js';
import type { ImageRecords } from './image-records.js';

/** What image garbage collection tells the fleet. */
export type ImageEvent = DeviceEventBodyOf<'image-removed' | 'gc'>;

/** How long a disk found short is left alone by the periodic samples. */
export const SHORT_RECHECK_MS = 5 * 60 * 1000;

/** What one collection did, for the `gc` event and the reported state. */
export interface GcSummary {
  at: number;
  /** What started it: `pull`, `update`, `disk-sample`, `no-space`, `room-for-pull`. */
  trigger: string;
  usedPercentBefore: number;
  usedPercentAfter: number;
  removed: number;
  freedBytes: number;
  /** Still above the low watermark (or short of the room asked for) with nothing removable left. */
  short: boolean;
}

/** The local picture a decision is made on. */
export interface ImageSnapshot {
  images: EngineImage[];
  inUse: Set<string>;
  /** Ids of the protected images: the desired state's and those kept for rollback. */
  protectedIds: Set<string>;
  sizes: Map<string, number>;
}

export interface ImageCollectorOptions {
  engine: ImageEngine;
  gauge: DiskGauge;
  records: ImageRecords;
  watermarks: Watermarks;
  /** References never removed now: the current desired state's images and the ones kept for rollback. */
  protectedRefs: () => Iterable<string>;
  /** `image-removed` and `gc` events, for the fleet. */
  emit: (event: ImageEvent) => void;
  log: SupervisorLogger;
  now?: () => number;
}

/**
 * Image garbage collection: above the high watermark, removes the unused
 * images this agent pulled, least recently used first, reading the disk
 * after each removal, until the low watermark. Also frees room for a pull
 * on request. Never an image a container uses, a protected one, or one the
 * agent did not pull; never with force. One run at a time.
 */
export class ImageCollector {
  private running: Promise<unknown> = Promise.resolve();
  private last: GcSummary | null = null;
  private lastFailure: string | undefined;
  private readonly now: () => number;

  constructor(private readonly o: ImageCollectorOptions) {
    this.now = o.now ?? Date.now;
  }

  /** The last collection that removed something or found the disk short; null before. */
  get lastRun(): GcSummary | null {
    return this.last;
  }

  /**
   * Collect if the disk is above the high watermark. Never throws: a failure
   * is logged. A disk found short (nothing removable left) is looked at
   * again on a sample only after SHORT_RECHECK_MS: each look lists the
   * engine's images and containers, and nothing changes until something
   * else (a pull, an update) does.
   */
  collect(trigger: string): Promise<GcSummary | null> {
    return this.exclusive(async () => {
      const last = this.last;
      if (trigger === 'disk-sample' && last !== null && last.short && this.now() - last.at < SHORT_RECHECK_MS) return null;
      const before = await this.o.gauge.read();
      if (usedPercent(before) <= this.o.watermarks.highPercent) return null;
      let disk = before;
      let removed: Removal[] = [];
      const kept = new Set<string>();
      // Sizes are estimates (shared layers) and a container may take an image meanwhile:
      // choose, remove while above the low watermark, and choose again among the rest if still above.
      for (let round = 0; round < 5 && usedPercent(disk) > this.o.watermarks.lowPercent; round++) {
        const snapshot = await this.snapshot();
        const inUse = new Set([...snapshot.inUse, ...kept]);
        // Started above the high watermark, it goes on down to the low one.
        const chosen = round === 0
          ? chooseImagesToRemove(this.o.records.records, inUse, snapshot.protectedIds, disk, this.o.watermarks, snapshot.sizes)
          : chooseDownTo(this.o.records.records, inUse, snapshot.protectedIds, disk, this.o.watermarks.lowPercent, snapshot.sizes);
        if (chosen.length === 0) break;
        const result = await this.removeAll(chosen, trigger, (d) => usedPercent(d) <= this.o.watermarks.lowPercent);
        removed = [...removed, ...result.removed];
        for (const id of result.kept) kept.add(id);
        disk = result.disk;
      }
      return this.summarise(trigger, before, disk, removed, usedPercent(disk) > this.o.watermarks.lowPercent);
    });
  }

  /**
   * Remove unused, unprotected images, least recently used first, until
   * `fits` (given a fresh disk reading) says a pull fits or nothing
   * removable is left; `bytes` is the estimate of what is missing, `protect`
   * adds references to keep. Returns the last disk reading.
   */
  makeRoom(fits: (disk: DiskReading) => boolean, bytes: number, protect: Iterable<string> = []): Promise<DiskReading> {
    return this.exclusive(async () => {
      const before = await this.o.gauge.read();
      if (fits(before)) return before;
      const snapshot = await this.snapshot(protect);
      const chosen = chooseImagesToFree(this.o.records.records, snapshot.inUse, snapshot.protectedIds, bytes, snapshot.sizes);
      // Then the others in the same order: sizes of shared layers are only guessed, the disk reading decides.
      const rest = chooseImagesToFree(this.o.records.records, snapshot.inUse, snapshot.protectedIds, Number.MAX_SAFE_INTEGER, snapshot.sizes)
        .filter((r) => !chosen.some((c) => c.imageId === r.imageId));
      const result = await this.removeAll([...chosen, ...rest], 'room-for-pull', fits);
      this.summarise('room-for-pull', before, result.disk, result.removed, !fits(result.disk));
      return result.disk;
    }).then((r) => r ?? this.o.gauge.read());
  }

  /** Remove specific references now (the old version of a kill-then-download update): recorded and unused ones only. */
  removeRefs(refs: readonly string[], trigger: string): Promise<number> {
    return this.exclusive(async () => {
      const snapshot = await this.snapshot();
      const byRef = new Map(snapshot.images.flatMap((i) => i.refs.map((r) => [r, i] as const)));
      const removals: Removal[] = [];
      for (const ref of refs) {
        const image = byRef.get(ref);
        const record = this.o.records.records.find((r) => r.ref === ref);
        if (image === undefined || record === undefined || snapshot.inUse.has(image.id)) continue;
        removals.push({ imageId: image.id, refs: [ref], lastUsedAt: record.lastUsedAt ?? record.pulledAt, expectedBytes: image.sizeBytes });
      }
      const before = await this.o.gauge.read();
      const result = await this.removeAll(removals, trigger, () => false);
      if (result.removed.length > 0) this.summarise(trigger, before, result.disk, result.removed, false);
      return result.removed.length;
    }).then((n) => n ?? 0);
  }

  /** Local images, what is in use and what is protected; records of references gone from the engine are dropped. */
  async snapshot(protect: Iterable<string> = []): Promise<ImageSnapshot> {
    const images = await this.o.engine.localImages();
    const inUse = await this.o.engine.imagesInUse();
    const idByRef = new Map(images.flatMap((i) => i.refs.map((r) => [r, i.id] as const)));
    const stale = this.o.records.records.filter((r) => !idByRef.has(r.ref)).map((r) => r.ref);
    if (stale.length > 0) {
      this.o.records.forget(stale);
      this.persist();
    }
    // A recorded reference now naming other content (pulled again) is followed to it.
    for (const r of this.o.records.records) {
      const id = idByRef.get(r.ref);
      if (id !== undefined && id !== r.imageId) this.o.records.notePulled(r.ref, id, r.pulledAt);
    }
    const protectedIds = new Set<string>();
    for (const ref of [...this.o.protectedRefs(), ...protect]) {
      const id = idByRef.get(ref);
      if (id !== undefined) protectedIds.add(id);
    }
    return { images, inUse, protectedIds, sizes: new Map(images.map((i) => [i.id, i.sizeBytes])) };
  }

  private async removeAll(removals: Removal[], trigger: string, enough: (disk: DiskReading) => boolean): Promise<{ removed: Removal[]; kept: string[]; disk: DiskReading }> {
    const removed: Removal[] = [];
    const kept: string[] = [];
    let disk = await this.o.gauge.read();
    for (const r of removals) {
      if (enough(disk)) break;
      let outcome: 'removed' | 'in-use' | 'gone' = 'gone';
      for (const ref of r.refs) {
        const o = await this.o.engine.removeImage(ref);
        if (o === 'in-use') { outcome = 'in-use'; break; }
        if (o === 'removed') outcome = 'removed';
      }
      if (outcome === 'in-use') {
        // A container took it between the snapshot and now: it stays, recorded.
        this.o.log.info({ image: r.refs[0], imageId: r.imageId }, 'image in use; kept');
        kept.push(r.imageId);
        continue;
      }
      this.o.records.forget(r.refs);
      this.persist();
      const after = await this.o.gauge.read();
      const freedBytes = Math.max(0, disk.usedBytes - after.usedBytes);
      disk = after;
      if (outcome !== 'removed') continue;
      removed.push({ ...r, expectedBytes: freedBytes });
      this.o.log.info({ images: r.refs, imageId: r.imageId, freedBytes, trigger }, 'image removed');
      // A removed image had a reference: it was removed by one.
      this.o.emit({ type: 'image-removed', image: r.refs[0]!, refs: r.refs, imageId: r.imageId, lastUsedAt: r.lastUsedAt, freedBytes, trigger });
    }
    return { removed, kept, disk };
  }

  private summarise(trigger: string, before: DiskReading, after: DiskReading, removed: Removal[], short: boolean): GcSummary {
    const summary: GcSummary = {
      at: this.now(), trigger,
      usedPercentBefore: round1(usedPercent(before)), usedPercentAfter: round1(usedPercent(after)),
      removed: removed.length, freedBytes: removed.reduce((n, r) => n + r.expectedBytes, 0), short,
    };
    if (removed.length === 0 && !short) return summary;
    const repeated = removed.length === 0 && this.last !== null && this.last.short && this.last.removed === 0;
    this.last = summary;
    // A disk that stays short is told once, not at every look.
    if (repeated) return summary;
    this.o.log.info({ ...summary }, 'image garbage collection');
    this.o.emit({
      type: 'gc', trigger, usedPercentBefore: summary.usedPercentBefore, usedPercentAfter: summary.usedPercentAfter, removed: summary.removed,
      freedBytes: summary.freedBytes, short, highWatermarkPercent: this.o.watermarks.highPercent, lowWatermarkPercent: this.o.watermarks.lowPercent,
    });
    return summary;
  }

  private persist(): void {
    try {
      this.o.records.save();
    } catch (err) {
      // A full disk may refuse even this small write: the records stay in memory and are written at the next change.
      this.o.log.warn({ err: asTsunaguError(err).toJSON() }, 'could not save the image records');
    }
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T | null> {
    const run = this.running.then(work).then((result) => {
      this.lastFailure = undefined;
      return result;
    }, (err: unknown) => {
      // An engine that is down fails every sample alike: said once, until it changes or passes.
      const e = asTsunaguError(err);
      if (e.message !== this.lastFailure) this.o.log.warn({ err: e.toJSON() }, 'image garbage collection failed');
      this.lastFailure = e.message;
      return null;
    });
    this.running = run;
    return run;
  }
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}
