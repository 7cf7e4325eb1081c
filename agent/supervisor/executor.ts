import { createOptions } from './container-spec.js';
import type { ContainerRuntime, PullProgress, RegistryAuth } from './container-runtime.js';
import { TsunaguError } from '../../protocol/errors.js';
import { holdsPinnedContent } from './pinned-digest.js';
import { withStallDeadline } from '../pulls/pull-stall-deadline.js';
import { describeStep, type Step, type StepKind } from './steps.js';

/** What every step executor may use. */
export interface StepContext {
  runtime: ContainerRuntime;
  /** Aborted by shutdown or by a newer desired state; every engine call receives it. */
  signal: AbortSignal;
  scope: string;
  project: string;
  /** The desired-state version being applied; written on created containers. */
  version: string;
  registryAuth?: (image: string) => RegistryAuth | undefined;
  onPullProgress?: (service: string, progress: PullProgress) => void;
  /** A pull that does not move forward for this long fails (pull-stall-deadline.ts); 0 or absent: no deadline. */
  pullStallMs?: number;
}

/** One executor per step kind; a kind missing here is a compile error. */
export type StepExecutors = { [K in StepKind]: (step: Extract<Step, { kind: K }>, ctx: StepContext) => Promise<void> };

export const STEP_EXECUTORS: StepExecutors = {
  pull: async (step, ctx) => {
    const auth = ctx.registryAuth?.(step.image);
    const report = (p: PullProgress): void => ctx.onPullProgress?.(step.service, p);
    await withStallDeadline(step.image, ctx.pullStallMs ?? 0, ctx.signal, report, (signal, onProgress) => ctx.runtime.pullImage(step.image, {
      signal,
      ...(auth ? { auth } : {}),
      onProgress,
    }));
    await verifyPulled(step.image, ctx);
  },
  create: async (step, ctx) => {
    const options = createOptions(step.desired, { scope: ctx.scope, project: ctx.project, configHash: step.configHash, version: ctx.version });
    await ctx.runtime.createContainer(step.name, options, ctx.signal);
  },
  start: (step, ctx) => ctx.runtime.startContainer(step.container, ctx.signal),
  stop: (step, ctx) => ctx.runtime.stopContainer(step.containerId, step.timeoutMs, ctx.signal),
  remove: (step, ctx) => ctx.runtime.removeContainer(step.containerId, ctx.signal),
};

/**
 * A pull counts as done only when the engine holds the image, and for a
 * reference pinned by digest, holds that content: the planner takes the old
 * container down as soon as the image is there. Without this a pull that
 * ended without the image (a stream cut short) was taken for done and
 * pulled again at once, with no back-off and no report.
 */
async function verifyPulled(image: string, ctx: StepContext): Promise<void> {
  const held = await ctx.runtime.inspectImage(image, ctx.signal);
  if (held === undefined) throw new TsunaguError('PULL_FAILED', `pull ${image}: the pull ended but the engine holds no such image`);
  if (!holdsPinnedContent(image, held)) {
    const carried = held.repoDigests.length === 0 ? 'none' : held.repoDigests.join(', ');
    throw new TsunaguError('DIGEST_MISMATCH', `pull ${image}: the image the engine holds under this reference does not carry the pinned digest (it carries: ${carried}); it is not run`);
  }
}

/** Run one step. Throws a TsunaguError (from the runtime) on failure. */
export async function executeStep(step: Step, ctx: StepContext, executors: StepExecutors = STEP_EXECUTORS): Promise<void> {
  if (ctx.signal.aborted) throw new TsunaguError('CANCELLED', `${describeStep(step)}: cancelled`, undefined, { cause: ctx.signal.reason });
  // TypeScript cannot correlate the key with the argument type; the table's type guarantees it.
  const run = executors[step.kind] as (s: Step, c: StepContext) => Promise<void>;
  await run(step, ctx);
}
