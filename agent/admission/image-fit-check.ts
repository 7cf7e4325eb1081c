import { asTsunaguError } from '../../protocol/errors.js';
import { formatBytes } from '../images/byte-size.js';
import { fitPull } from '../images/disk-fit.js';
import type { DiskGauge } from '../images/disk-gauge.js';
import type { ImageEngine } from '../images/docker-images.js';
import type { ImageCollector } from '../images/image-collector.js';
import type { ImageRecords } from '../images/image-records.js';
import { formatPlatform, platformRuns, type Platform } from '../images/platform.js';
import { pullSpace } from '../pulls/pull-space.js';
import type { RemoteImageFacts } from '../images/remote-image-facts.js';
import type { DesiredState } from '../../protocol/compose/desired-service.js';
import type { SupervisorLogger } from '../supervisor/supervisor-io.js';
import type { AdmissionCheck, AdmissionContext, AdmissionFinding } from './admission.js';

export interface ImageFitCheckOptions {
  facts: { read(ref: string, signal?: AbortSignal): Promise<RemoteImageFacts> };
  engine: Pick<ImageEngine, 'imageId'>;
  collector: Pick<ImageCollector, 'snapshot'>;
  records: ImageRecords;
  gauge: DiskGauge;
  device: Platform;
  deviceLabels: ReadonlySet<string>;
  /** What runs now, per service (the supervisor's last report): the images an update replaces. */
  running: () => readonly { name: string; image: string; containerId: string | null }[];
  reserveBytes: number;
  unpackFactor: number;
  log: SupervisorLogger;
}

/** Per service, the reasons found; a service appears only with at least one. */
type Reasons = Record<string, string[]>;

function add(reasons: Reasons, service: string, reason: string): void {
  (reasons[service] ??= []).push(reason);
}

/**
 * Admission of a new desired state against this device's architecture and
 * disk, for the images it would pull (those not on the engine already):
 * - every such image must offer a platform this device runs (read from the
 *   registry through the engine, before any pull);
 * - their layers not on disk, times the unpack factor, must fit above the
 *   reserve once unused images and the old versions they replace are gone.
 * What cannot be read (a registry down, an engine not answering) refuses
 * nothing: the pull decides then. Runs only for a version received now; a
 * stored version was admitted when it came.
 */
export class ImageFitCheck implements AdmissionCheck {
  readonly name = 'image-fit';

  constructor(private readonly o: ImageFitCheckOptions) {}

  async check(desired: DesiredState, context: AdmissionContext): Promise<AdmissionFinding | null> {
    if (!context.firstTime) return null;
    try {
      const reasons = await this.reasons(desired);
      return Object.keys(reasons).length === 0 ? null : { code: 'ADMISSION_REFUSED', services: reasons };
    } catch (err) {
      this.o.log.warn({ err: asTsunaguError(err).toJSON() }, 'could not check the images against the device; admitting');
      return null;
    }
  }

  private async reasons(desired: DesiredState): Promise<Reasons> {
    const services = desired.services.filter((s) => s.tsunagu.requires.every((l) => this.o.deviceLabels.has(l)));
    const missing: string[] = [];
    for (const ref of new Set(services.map((s) => s.image))) if (await this.o.engine.imageId(ref) === undefined) missing.push(ref);
    if (missing.length === 0) return {};
    const facts = new Map((await Promise.all(missing.map((ref) => this.o.facts.read(ref)))).map((f) => [f.ref, f]));
    const reasons: Reasons = {};
    const device = formatPlatform(this.o.device);
    const runnable = new Set<string>();
    for (const f of facts.values()) {
      if (f.unknown.length > 0) this.o.log.info({ image: f.ref, unknown: f.unknown }, 'admission could not read everything about an image; what is unknown is not held against it');
      if (f.platforms === null || f.platforms.length === 0 || f.platforms.some((p) => platformRuns(this.o.device, p))) runnable.add(f.ref);
    }
    for (const s of services) {
      const f = facts.get(s.image);
      if (f === undefined || runnable.has(s.image) || f.platforms === null) continue;
      add(reasons, s.name, `image ${s.image} is built for ${f.platforms.map(formatPlatform).join(', ')}; this device is ${device}`);
    }

    const pulls = [...facts.values()].flatMap((f) => (f.layers !== null && runnable.has(f.ref) ? [{ ref: f.ref, layers: f.layers }] : []));
    if (pulls.length === 0) return reasons;
    const desiredRefs = new Set(services.map((s) => s.image));
    const wanted = new Map(services.map((s) => [s.name, s.image]));
    const oldRefs = this.o.running().filter((r) => r.containerId !== null && wanted.has(r.name) && wanted.get(r.name) !== r.image && !desiredRefs.has(r.image)).map((r) => r.image);
    const snapshot = await this.o.collector.snapshot(desiredRefs);
    const disk = await this.o.gauge.read();
    const { space, perImage } = pullSpace({
      pulls, images: snapshot.images, records: this.o.records.records, inUse: snapshot.inUse, protectedIds: snapshot.protectedIds,
      desiredRefs, oldRefs, disk, reserveBytes: this.o.reserveBytes, unpackFactor: this.o.unpackFactor,
    });
    const fit = fitPull(space);
    this.o.log.debug({ ...space, decision: fit.kind }, 'admission disk check');
    if (fit.kind !== 'short') return reasons;
    const most = Math.max(0, space.roomBytes + space.collectableBytes + (space.killFirst?.reclaimBytes ?? 0));
    const whole = `all pulls of this desired state need about ${formatBytes(Math.max(space.neededBytes, space.killFirst?.neededBytes ?? 0))}, `
      + `at most ${formatBytes(most)} can be free on ${disk.path} above the reserve of ${formatBytes(this.o.reserveBytes)}`;
    for (const s of services) {
      const share = perImage.get(s.image);
      if (share === undefined || share === 0) continue;
      add(reasons, s.name, `image ${s.image} needs about ${formatBytes(share)} of disk; ${whole}`);
    }
    return reasons;
  }
}
