import { asTsunaguError } from '../../protocol/errors.js';
import type { SupervisorLogger } from '../supervisor/supervisor-options.js';
import type { SupervisorEvent, SupervisorState } from '../supervisor/supervisor-events.js';
import type { ImageEngine } from './docker-images.js';
import type { ImageRecords } from './image-records.js';

/**
 * Keeps the image records in step with the supervisor: an image pulled is
 * recorded with its id; a container created or started marks its image
 * used; a version that reaches `synced` becomes the applied one (and the one
 * before it the rollback one). Collection is asked for after a pull, after
 * an update settles and after a pull that found no space.
 */
export class ImageUseTracker {
  private readonly seen = new Map<string, string>();
  private readonly now: () => number;

  constructor(private readonly o: {
    records: ImageRecords;
    engine: Pick<ImageEngine, 'imageId'>;
    collect: (trigger: string) => void;
    log: SupervisorLogger;
    now?: () => number;
  }) {
    this.now = o.now ?? Date.now;
  }

  onEvent(event: SupervisorEvent): void {
    if (event.type === 'pulled') void this.pulled(event.image);
    if (event.type === 'pull-failed' && event.code === 'NO_SPACE') this.o.collect('no-space');
  }

  onState(state: SupervisorState): void {
    const at = this.now();
    for (const s of state.services) {
      if (s.containerId === null) continue;
      const key = `${s.containerId} ${s.state === 'running'}`;
      if (this.seen.get(s.name) === key) continue;
      this.seen.set(s.name, key);
      // A new container, or one that came up: its image was just used.
      const record = this.o.records.records.find((r) => r.ref === s.image);
      if (record !== undefined) this.o.records.noteUsed(record.imageId, at);
    }
    if (state.status === 'synced' && state.version !== null) {
      const refs = state.services.filter((s) => s.containerId !== null && s.state !== 'not-deployed').map((s) => s.image);
      const before = this.o.records.applied;
      this.o.records.noteSynced(state.version, refs);
      if (before?.version !== state.version) this.o.collect('update');
    }
    this.persist();
  }

  private async pulled(ref: string): Promise<void> {
    try {
      const id = await this.o.engine.imageId(ref);
      if (id === undefined) return; // removed again already
      this.o.records.notePulled(ref, id, this.now());
      this.persist();
    } catch (err) {
      this.o.log.warn({ image: ref, err: asTsunaguError(err).toJSON() }, 'could not record a pulled image');
    }
    this.o.collect('pull');
  }

  private persist(): void {
    try {
      this.o.records.save();
    } catch (err) {
      this.o.log.warn({ err: asTsunaguError(err).toJSON() }, 'could not save the image records');
    }
  }
}
