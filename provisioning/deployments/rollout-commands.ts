import { TsunaguError } from '../../protocol/errors.js';
import type { RolloutStrategy } from './rollout-strategy.js';
import type { RolloutEvent, RolloutState } from './rollout-state.js';

/** An operator's transition: the new state and what to record in the audit log. */
export interface RolloutTransition {
  state: RolloutState;
  events: RolloutEvent[];
}

export interface StartInput {
  deployment: string;
  /** The revision the targets run now; null for a deployment's first revision. */
  fromRevision: number | null;
  toRevision: number;
  strategy: RolloutStrategy;
  now: number;
}

/**
 * A new rollout. A deployment's first revision is not staged: there is no previous revision to
 * go back to, so waves would protect nothing, and a device enrolled for it should run it within
 * seconds. Its rollout is `done` from the start.
 */
export function startRollout(input: StartInput): RolloutTransition {
  const state: RolloutState = {
    v: 1, deployment: input.deployment, fromRevision: input.fromRevision, toRevision: input.toRevision,
    strategy: input.strategy, phase: input.fromRevision === null ? 'done' : 'running', wave: -1, waveStartedAt: null,
    startedAt: input.now, updatedAt: input.now, halt: null, members: {}, carried: {},
  };
  return { state, events: [{ at: input.now, deployment: input.deployment, type: 'started', fromRevision: input.fromRevision, toRevision: input.toRevision }] };
}

/**
 * A newer revision replaces the rollout in progress. It starts from the last revision every
 * target was known to run well: the old rollout's `to` if it finished, else its `from`. Devices
 * that run another revision (the superseded one, or the previous one after a revert) keep it
 * until a wave of the new rollout reaches them (they come first in its order), instead of
 * stepping back and forth or being handed a revision that failed on them.
 */
export function supersedeRollout(old: RolloutState, input: { toRevision: number; strategy: RolloutStrategy; now: number }): RolloutTransition {
  const fromRevision = old.phase === 'done' ? old.toRevision : old.fromRevision ?? old.toRevision;
  // Also after a finished rollout: a device reverted from the old `to` must not be handed that revision again.
  const carried: Record<string, number> = {};
  if (old.phase !== 'aborted') {
    for (const [id, revision] of Object.entries(old.carried)) if (revision !== fromRevision) carried[id] = revision;
    for (const [id, m] of Object.entries(old.members)) if (m.revision !== fromRevision) carried[id] = m.revision;
  }
  const { state, events } = startRollout({ deployment: old.deployment, fromRevision, toRevision: input.toRevision, strategy: input.strategy, now: input.now });
  state.carried = carried;
  return { state, events: [{ at: input.now, deployment: old.deployment, type: 'superseded', supersededRevision: old.toRevision, toRevision: input.toRevision }, ...events] };
}

function refuse(state: RolloutState, verb: string, why: string): never {
  throw new TsunaguError('ROLLOUT_PHASE', `cannot ${verb} the rollout of ${state.deployment} to revision ${state.toRevision}: ${why}`, { phase: state.phase });
}

function changed(state: RolloutState, now: number, patch: Partial<RolloutState>, event: RolloutEvent | null): RolloutTransition {
  return { state: { ...structuredClone(state), ...patch, updatedAt: now }, events: event === null ? [] : [event] };
}

/** Freeze the waves; a paused rollout still judges its devices and still halts past its threshold. Pausing twice is a no-op. */
export function pauseRollout(state: RolloutState, now: number): RolloutTransition {
  if (state.phase === 'paused') return { state, events: [] };
  if (state.phase !== 'running') refuse(state, 'pause', `it is ${state.phase}`);
  return changed(state, now, { phase: 'paused' }, { at: now, deployment: state.deployment, type: 'paused' });
}

/** Let the waves advance again. A halt is final: resuming would start the revision that failed on more devices. */
export function resumeRollout(state: RolloutState, now: number): RolloutTransition {
  if (state.phase === 'running') return { state, events: [] };
  if (state.phase === 'halted') refuse(state, 'resume', 'it halted on failures; fix the compose file and `deployment update`, or `deployment abort`');
  if (state.phase !== 'paused') refuse(state, 'resume', `it is ${state.phase}`);
  return changed(state, now, { phase: 'running' }, { at: now, deployment: state.deployment, type: 'resumed' });
}

/** Every device back on the previous revision, from any phase, also after the rollout finished. Aborting twice is a no-op. */
export function abortRollout(state: RolloutState, now: number): RolloutTransition {
  if (state.phase === 'aborted') return { state, events: [] };
  const from = state.fromRevision;
  if (from === null) refuse(state, 'abort', 'it is the first revision of the deployment, there is no previous one (delete the deployment to remove it)');
  const members = Object.fromEntries(Object.entries(state.members).map(([id, m]) => [id, { ...m, revision: from }]));
  const devices = Object.values(state.members).filter((m) => m.revision !== from).length + Object.keys(state.carried).length;
  return changed(state, now, { phase: 'aborted', members, carried: {} }, { at: now, deployment: state.deployment, type: 'aborted', devices });
}
