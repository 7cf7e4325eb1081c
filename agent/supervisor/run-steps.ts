import { asTsunaguError } from '../../protocol/errors.js';
import type { ActualState } from './actual-state.js';
import type { DesiredService } from '../../protocol/compose/desired-service.js';
import type { BackgroundPulls } from '../pulls/background-pulls.js';
import { executeStep, type StepContext } from './executor.js';
import { runLanes } from './lane-runner.js';
import { deployable } from './planner.js';
import type { StepResult } from './settle-step.js';
import { dependencyGraph, inLanes } from './step-lanes.js';
import { describeStep, type Step } from './steps.js';
import type { SupervisorLogger } from './supervisor-options.js';

export interface RunStepsOptions {
  actual: ActualState;
  desired: DesiredService[];
  deviceLabels: ReadonlySet<string>;
  ctx: StepContext;
  pulls: BackgroundPulls;
  log: SupervisorLogger;
  /** Each step's outcome as it ends (a pull's when its background download ends, through `pulls`). */
  settle: (step: Step, result: StepResult) => void;
}

/**
 * Carry out one round's plan: pulls go to the background, the other steps
 * run in lanes, services side by side, each down only for its own swap
 * (step-lanes.ts). A step's failure is settled and stops its lane only; an
 * engine that is gone (RUNTIME_UNAVAILABLE) or an aborted pass ends the round
 * by throwing.
 */
export async function runSteps(steps: Step[], o: RunStepsOptions): Promise<void> {
  for (const step of steps) {
    if (step.kind !== 'pull') continue;
    o.log.debug({ step: describeStep(step) }, 'step');
    o.pulls.start(step, o.ctx);
  }
  const wanted = new Set(o.desired.filter((s) => deployable(s, o.deviceLabels)).map((s) => s.name));
  await runLanes(inLanes(steps, dependencyGraph(o.actual, o.desired), wanted), async (step) => {
    o.log.debug({ step: describeStep(step) }, 'step');
    try {
      await executeStep(step, o.ctx);
      o.settle(step, { kind: 'done' });
      return true;
    } catch (err) {
      if (o.ctx.signal.aborted) throw err;
      const e = asTsunaguError(err);
      if (e.code === 'RUNTIME_UNAVAILABLE') throw e;
      const stale = step.kind === 'start' && e.details?.staleRuntimeState === true;
      o.settle(step, stale ? { kind: 'stale-runtime', message: e.message } : { kind: 'failed', code: e.code, message: e.message });
      return false;
    }
  });
}
