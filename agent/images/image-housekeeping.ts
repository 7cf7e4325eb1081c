import { join } from 'node:path';
import type { ReportedDisk } from '../../protocol/desired.js';
import { ImageFitCheck } from '../admission/image-fit-check.js';
import { LogCapsCheck } from '../admission/log-caps-check.js';
import type { AdmissionCheck } from '../admission/admission.js';
import type { DiskConfig } from '../config.js';
import type { RegistryAuth } from '../supervisor/container-runtime.js';
import type { SupervisorEvent, SupervisorLogger, SupervisorState } from '../supervisor/supervisor-io.js';
import { DataRootGauge, type DiskGauge } from './disk-gauge.js';
import { DockerImages, type ImageEngine } from './docker-images.js';
import { ImageCollector } from './image-collector.js';
import { ImageRecords } from './image-records.js';
import { ImageUseTracker } from './image-use-tracker.js';
import { devicePlatform, type Platform } from './platform.js';
import { DiskPullGuard } from '../pulls/pull-guard.js';
import { RegistryClient, type RegistryClientOptions } from './registry-client.js';
import { RemoteImageFactsReader } from './remote-image-facts.js';

/** What the housekeeping needs to know of the supervisor, which is built after it. */
export interface SupervisorView {
  desiredImages(): string[];
  state(): SupervisorState;
}

export interface ImageHousekeepingOptions {
  disk: DiskConfig;
  stateDir: string;
  /** The engine's socket; default as the runtime's. */
  socketPath?: string;
  /** The device's capability labels: services it cannot run are not pulled, so not checked. */
  deviceLabels: ReadonlySet<string>;
  /** Registry credentials of the desired state, by image. */
  auth: (ref: string) => RegistryAuth | undefined;
  /** `image-removed` and `gc` events. */
  emit: (event: Record<string, unknown>) => void;
  log: SupervisorLogger;
  /** Tests put the engine, disk reading and device platform they need here. */
  engine?: ImageEngine;
  gauge?: DiskGauge;
  device?: Platform;
  registry?: RegistryClientOptions;
}

/**
 * The disk and flash rules around the supervisor, built in one place for
 * the agent and its tests: image records, garbage collection, the check
 * before each pull, the admission checks for log caps, architecture and
 * disk. `attach` gives it the supervisor once that exists; `onSupervisorEvent`
 * and `onSupervisorState` must be fed the supervisor's callbacks.
 */
export class ImageHousekeeping {
  readonly engine: ImageEngine;
  readonly gauge: DiskGauge;
  readonly records: ImageRecords;
  readonly collector: ImageCollector;
  readonly pullGuard: DiskPullGuard;
  /** Container log caps, then architecture and disk. */
  readonly admission: AdmissionCheck[];
  private readonly tracker: ImageUseTracker;
  private supervisor: SupervisorView | undefined;

  constructor(private readonly o: ImageHousekeepingOptions) {
    const { disk, log } = o;
    this.engine = o.engine ?? new DockerImages(o.socketPath === undefined ? {} : { socketPath: o.socketPath });
    const engine = this.engine;
    this.gauge = o.gauge ?? new DataRootGauge(disk.path, () => engine.dataRoot());
    this.records = new ImageRecords(join(o.stateDir, 'images.json'), log);
    const device = o.device ?? devicePlatform();
    const facts = new RemoteImageFactsReader({ engine, registry: new RegistryClient(o.registry), device, auth: o.auth });
    const desiredRefs = (): string[] => this.supervisor?.desiredImages() ?? [];
    this.collector = new ImageCollector({
      engine, gauge: this.gauge, records: this.records, log, emit: o.emit,
      watermarks: { highPercent: disk.gc.highWatermarkPercent, lowPercent: disk.gc.lowWatermarkPercent },
      protectedRefs: () => this.protectedRefs(),
    });
    this.tracker = new ImageUseTracker({ records: this.records, engine, log, collect: (trigger) => void this.collector.collect(trigger) });
    this.pullGuard = new DiskPullGuard({
      facts, collector: this.collector, records: this.records, gauge: this.gauge, desiredRefs, reserveBytes: disk.reserveBytes, unpackFactor: disk.unpackFactor, log,
    });
    this.admission = [
      new LogCapsCheck(disk.containerLogs),
      new ImageFitCheck({
        facts, engine, collector: this.collector, records: this.records, gauge: this.gauge, device, log,
        deviceLabels: o.deviceLabels, running: () => this.supervisor?.state().services ?? [], reserveBytes: disk.reserveBytes, unpackFactor: disk.unpackFactor,
      }),
    ];
  }

  /** Give it the supervisor it keeps house for (built after it, as it takes the pull guard). */
  attach(supervisor: SupervisorView): void {
    this.supervisor = supervisor;
  }

  onSupervisorEvent(event: SupervisorEvent): void {
    this.tracker.onEvent(event);
  }

  onSupervisorState(state: SupervisorState): void {
    this.tracker.onState(state);
  }

  /** The disk rules in force and what the last collection did, for the retained state. */
  report(): ReportedDisk {
    const { disk } = this.o;
    return {
      reserveBytes: disk.reserveBytes, unpackFactor: disk.unpackFactor,
      gc: { highWatermarkPercent: disk.gc.highWatermarkPercent, lowWatermarkPercent: disk.gc.lowWatermarkPercent },
      containerLogs: { maxSize: disk.containerLogs.maxSize, maxFiles: disk.containerLogs.maxFiles },
      lastGc: this.collector.lastRun,
    };
  }

  /**
   * Never removed: the desired state's images, and for rollback the last
   * synced version's — or, once the current version is the synced one, the
   * version synced before it.
   */
  protectedRefs(): string[] {
    const current = this.supervisor?.state().version ?? null;
    const applied = this.records.applied;
    const rollback = applied !== null && applied.version === current ? this.records.previous?.refs ?? [] : [];
    return [...(this.supervisor?.desiredImages() ?? []), ...(applied?.refs ?? []), ...rollback];
  }
}
