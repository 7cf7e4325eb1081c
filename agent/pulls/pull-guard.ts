import { asTsunaguError } from '../../protocol/errors.js';
import type { PullClearance, PullGuard, PullRequest, SupervisorLogger } from '../supervisor/supervisor-io.js';
import { formatBytes } from '../images/byte-size.js';
import { fitPull } from '../images/disk-fit.js';
import type { DiskGauge } from '../images/disk-gauge.js';
import type { ImageCollector } from '../images/image-collector.js';
import type { ImageRecords } from '../images/image-records.js';
import { pullSpace } from './pull-space.js';
import type { RemoteImageFacts } from '../images/remote-image-facts.js';

export interface DiskPullGuardOptions {
  facts: { read(ref: string, signal?: AbortSignal): Promise<RemoteImageFacts> };
  collector: ImageCollector;
  records: ImageRecords;
  gauge: DiskGauge;
  /** The desired state's image references. */
  desiredRefs: () => Iterable<string>;
  reserveBytes: number;
  unpackFactor: number;
  log: SupervisorLogger;
}

/**
 * Before each pull: does the new image fit beside what is on disk, above
 * the reserve? If unused images must go first, they go (least recently used
 * first). If it fits only without the old version, a download-then-kill
 * update is switched to kill-then-download (`kill-first`); once the old
 * container is down, its image goes too and the pull starts. If even that
 * cannot fit: `short`, and the old version keeps running. When the sizes
 * cannot be read, the pull goes ahead and the engine decides.
 */
export class DiskPullGuard implements PullGuard {
  constructor(private readonly o: DiskPullGuardOptions) {}

  async clear(request: PullRequest, signal: AbortSignal): Promise<PullClearance> {
    try {
      return await this.decide(request, signal);
    } catch (err) {
      if (signal.aborted) throw err;
      this.o.log.warn({ image: request.image, err: asTsunaguError(err).toJSON() }, 'could not check the disk before the pull; pulling');
      return { kind: 'go' };
    }
  }

  private async decide(request: PullRequest, signal: AbortSignal): Promise<PullClearance> {
    const facts = await this.o.facts.read(request.image, signal);
    if (facts.layers === null) {
      this.o.log.info({ image: request.image, unknown: facts.unknown }, 'image size unknown; pulling without a disk check');
      return { kind: 'go' };
    }
    const pulls = [{ ref: request.image, layers: facts.layers }];
    const picture = async (): Promise<ReturnType<typeof pullSpace>> => {
      const snapshot = await this.o.collector.snapshot();
      return pullSpace({
        pulls, images: snapshot.images, records: this.o.records.records, inUse: snapshot.inUse, protectedIds: snapshot.protectedIds,
        desiredRefs: new Set(this.o.desiredRefs()), oldRefs: request.oldImages, disk: await this.o.gauge.read(),
        reserveBytes: this.o.reserveBytes, unpackFactor: this.o.unpackFactor,
      });
    };
    let { space } = await picture();
    const fit = fitPull(space);
    this.o.log.debug({ image: request.image, ...space, decision: fit.kind }, 'disk check before a pull');
    if (fit.kind === 'fits') return { kind: 'go' };
    if (fit.kind === 'short') return { kind: 'short', reason: fit.reason };
    if (fit.kind === 'kill-first') {
      if (!request.oldContainersGone) return { kind: 'kill-first', reason: fit.reason };
      // The old container is down: its image goes now, then whatever else must.
      const desired = new Set(this.o.desiredRefs());
      await this.o.collector.removeRefs(request.oldImages.filter((r) => !desired.has(r)), 'kill-then-download');
      ({ space } = await picture());
    }
    const need = space.neededBytes;
    const disk = await this.o.collector.makeRoom((d) => need <= d.availableBytes - this.o.reserveBytes, need - space.roomBytes);
    if (need <= disk.availableBytes - this.o.reserveBytes) return { kind: 'go' };
    const room = Math.max(0, disk.availableBytes - this.o.reserveBytes);
    return { kind: 'short', reason: `needs about ${formatBytes(need)}, ${formatBytes(room)} free above the reserve after removing what could go` };
  }
}
