import { asTsunaguError, type TsunaguError } from '../../protocol/errors.js';
import type { PullProgress } from '../supervisor/container-runtime.js';
import { executeStep, type StepContext } from '../supervisor/executor.js';
import type { Step } from '../supervisor/steps.js';
import type { PullClearance } from '../supervisor/supervisor-io.js';

type PullStep = Extract<Step, { kind: 'pull' }>;

/** How a pull ended: pulled, failed, or not started because the guard said so. */
export type PullOutcome = { kind: 'pulled' } | { kind: 'failed'; error: TsunaguError } | Exclude<PullClearance, { kind: 'go' }>;

/** Pull progress arrives per chunk; a report per second is plenty for a fleet dashboard. */
export const PROGRESS_INTERVAL_MS = 1000;

export interface BackgroundPullsOptions {
  now: () => number;
  /** Called once per pull when it ends; not called for an aborted pull. */
  onDone: (step: PullStep, outcome: PullOutcome) => void;
  /** Asked before the download starts (disk room); without it every pull starts. */
  clear?: (step: PullStep, signal: AbortSignal) => Promise<PullClearance>;
  /** Throttled to one call per PROGRESS_INTERVAL_MS per image. */
  onProgress: (service: string, progress: PullProgress) => void;
}

/**
 * Pulls that run beside the reconcile passes, one per image, each with its
 * own AbortSignal: a download of minutes must neither hold up restarts of
 * other services nor be cut short by a newer desired state that still wants
 * the image.
 */
export class BackgroundPulls {
  private readonly running = new Map<string, { controller: AbortController; done: Promise<void> }>();

  constructor(private readonly options: BackgroundPullsOptions) {}

  /** Images being pulled now. */
  images(): ReadonlySet<string> {
    return new Set(this.running.keys());
  }

  get size(): number {
    return this.running.size;
  }

  /** Start `step` unless its image is already being pulled. `ctx.signal` is replaced by the pull's own. */
  start(step: PullStep, ctx: StepContext): void {
    if (this.running.has(step.image)) return;
    const controller = new AbortController();
    let reportedAt = 0;
    const onPullProgress = (service: string, p: PullProgress): void => {
      const now = this.options.now();
      if (now - reportedAt < PROGRESS_INTERVAL_MS) return;
      reportedAt = now;
      this.options.onProgress(service, p);
    };
    const pull = async (): Promise<PullOutcome> => {
      const clearance = this.options.clear === undefined ? { kind: 'go' as const } : await this.options.clear(step, controller.signal);
      if (clearance.kind !== 'go') return clearance;
      await executeStep(step, { ...ctx, signal: controller.signal, onPullProgress });
      return { kind: 'pulled' };
    };
    const done = pull()
      .catch((err: unknown): PullOutcome => ({ kind: 'failed', error: asTsunaguError(err) }))
      .then((outcome) => {
        this.running.delete(step.image);
        if (!controller.signal.aborted) this.options.onDone(step, outcome);
      });
    this.running.set(step.image, { controller, done });
  }

  /** Abort the pulls of images not in `wanted`. */
  keepOnly(wanted: ReadonlySet<string>): void {
    for (const [image, p] of this.running) if (!wanted.has(image)) p.controller.abort();
  }

  abortAll(): void {
    for (const p of this.running.values()) p.controller.abort();
  }

  /** Resolves when the pulls running now have ended. */
  async settled(): Promise<void> {
    await Promise.all([...this.running.values()].map((p) => p.done));
  }
}
