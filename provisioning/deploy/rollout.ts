import { ReportedStateSchema, type ReportedState } from '../../protocol/desired.js';
import { readDeviceEvent, type ReceivedDeviceEvent } from '../../protocol/events/device-events.js';

/** How a deployment of one version to one device ended. */
export type RolloutOutcome =
  | { kind: 'applied'; status: 'synced' | 'degraded'; state: ReportedState }
  | { kind: 'failed'; status: 'failed' | 'refused'; state: ReportedState }
  | { kind: 'timeout'; state: ReportedState | null };

/** Exit codes of `deploy`, one device or the worst over several. */
export const DEPLOY_EXIT = { applied: 0, failed: 2, timeout: 3 } as const;

/**
 * Decide from one reported state whether the rollout of `version` is over.
 * Pure: no clock, no I/O. A newer version applied also counts as applied
 * (ours was superseded by a later deployment, which contains it or replaces it).
 * A failure counts only when it names exactly our version: the retained state of
 * an older failed version must not end a fresh rollout.
 */
export function judgeState(state: ReportedState, version: number): Exclude<RolloutOutcome, { kind: 'timeout' }> | null {
  if (state.appliedVersion !== null && state.appliedVersion >= version && (state.status === 'synced' || state.status === 'degraded')) {
    return { kind: 'applied', status: state.status, state };
  }
  if (state.desiredVersion === version && (state.status === 'failed' || state.status === 'refused')) {
    return { kind: 'failed', status: state.status, state };
  }
  return null;
}

export function exitCodeFor(outcome: RolloutOutcome): number {
  return DEPLOY_EXIT[outcome.kind];
}

/**
 * One message of a device's `events` topic, checked against the protocol's
 * schema of its type; a type this fleet does not know (a newer agent's) is
 * kept with its frame only. Undefined for anything else.
 */
export function parseEvent(payload: Buffer): ReceivedDeviceEvent | undefined {
  try {
    return readDeviceEvent(JSON.parse(payload.toString('utf8')));
  } catch {
    return undefined;
  }
}

export function parseState(payload: Buffer): ReportedState | undefined {
  if (payload.length === 0) return undefined;
  try {
    const r = ReportedStateSchema.safeParse(JSON.parse(payload.toString('utf8')));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}
