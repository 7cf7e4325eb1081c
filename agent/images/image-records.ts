import * as z from 'zod/mini';
import type { SupervisorLogger } from '../supervisor/supervisor-options.js';
import { loadJsonState, saveJsonState } from '../state/json-state-file.js';

const RecordSchema = z.strictObject({
  ref: z.string().check(z.minLength(1), z.maxLength(512)),
  imageId: z.string().check(z.minLength(1), z.maxLength(200)),
  pulledAt: z.int().check(z.nonnegative()),
  /** Last time a container of it was created or started; null before the first. */
  lastUsedAt: z.nullable(z.int().check(z.nonnegative())),
});
export type ImageRecord = z.infer<typeof RecordSchema>;

const AppliedSchema = z.strictObject({ version: z.string().check(z.maxLength(64)), refs: z.array(z.string().check(z.maxLength(512))).check(z.maxLength(256)) });
export type AppliedImages = z.infer<typeof AppliedSchema>;

const FileSchema = z.strictObject({
  v: z.literal(1),
  images: z.array(RecordSchema).check(z.maxLength(4096)),
  /** The images of the last version that reached `synced`, and of the one synced before it (kept for rollback). */
  applied: z.nullable(AppliedSchema),
  previous: z.nullable(AppliedSchema),
});
type RecordsFile = z.infer<typeof FileSchema>;

/**
 * `lastUsedAt` moves at most this often per image: a crash-looping service
 * must not rewrite the file at every restart, and an hour is plenty to
 * order images by last use.
 */
export const USE_RESOLUTION_MS = 60 * 60 * 1000;

/**
 * The images this agent pulled, with when each was pulled and last used,
 * and the images of the last two synced versions (`images.json` in the
 * state directory). Only images recorded here are ever garbage-collected.
 * Written only when something changes, atomically; a corrupt file is moved
 * aside and the record starts empty (the images are kept: unrecorded
 * images are never removed).
 */
export class ImageRecords {
  private state: RecordsFile;
  private dirty = false;

  constructor(private readonly path: string, private readonly log?: SupervisorLogger) {
    const loaded = loadJsonState(path, FileSchema);
    if (loaded.status === 'corrupt') log?.warn({ err: loaded.error.toJSON() }, 'image records were corrupt; starting empty');
    this.state = loaded.status === 'ok' ? loaded.value : { v: 1, images: [], applied: null, previous: null };
  }

  get records(): readonly ImageRecord[] {
    return this.state.images;
  }

  get applied(): AppliedImages | null {
    return this.state.applied;
  }

  get previous(): AppliedImages | null {
    return this.state.previous;
  }

  /** The agent pulled `ref`, which is now image `imageId`. */
  notePulled(ref: string, imageId: string, at: number): void {
    const existing = this.state.images.find((r) => r.ref === ref);
    if (existing !== undefined && existing.imageId === imageId) return;
    const images = this.state.images.filter((r) => r.ref !== ref);
    // A ref pulled again to new content keeps its history of use: it names the same service's image.
    images.push({ ref, imageId, pulledAt: at, lastUsedAt: existing?.lastUsedAt ?? null });
    this.update({ ...this.state, images });
  }

  /** A container of image `imageId` was created or started at `at`. */
  noteUsed(imageId: string, at: number): void {
    let changed = false;
    const images = this.state.images.map((r) => {
      if (r.imageId !== imageId || (r.lastUsedAt !== null && at - r.lastUsedAt < USE_RESOLUTION_MS)) return r;
      changed = true;
      return { ...r, lastUsedAt: at };
    });
    if (changed) this.update({ ...this.state, images });
  }

  /** Version `version` reached `synced` with these image references; the version synced before it becomes the rollback one. */
  noteSynced(version: string, refs: readonly string[]): void {
    const current = this.state.applied;
    const sorted = [...new Set(refs)].sort();
    if (current !== null && current.version === version) {
      if (JSON.stringify(current.refs) === JSON.stringify(sorted)) return;
      this.update({ ...this.state, applied: { version, refs: sorted } });
      return;
    }
    this.update({ ...this.state, applied: { version, refs: sorted }, previous: current });
  }

  /** Drop the records of these references (removed, or gone from the engine). */
  forget(refs: Iterable<string>): void {
    const gone = new Set(refs);
    const images = this.state.images.filter((r) => !gone.has(r.ref));
    if (images.length !== this.state.images.length) this.update({ ...this.state, images });
  }

  /** Write the file if anything changed since the last save. Throws on a write error (a full disk): the caller logs it and tries again at the next change. */
  save(): void {
    if (!this.dirty) return;
    saveJsonState(this.path, this.state);
    this.dirty = false;
  }

  private update(next: RecordsFile): void {
    this.state = next;
    this.dirty = true;
  }
}
