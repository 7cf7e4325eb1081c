import type { ErrorCode } from '../../protocol/errors.js';
import type { DesiredState } from '../../protocol/compose/desired-service.js';
import type { EngineOutage, FailureRecord } from './engine-outage.js';
import { NO_EVICTIONS, type Evictions } from './evictions.js';
import { initialHolds, type OperatorHolds } from './operator-holds.js';
import { clampToClock, type BackoffPolicy, type BackoffState } from './restart-backoff.js';
import { engineLost as rolloutEngineLost, newRollout, type Rollout } from './rollout-gate.js';
import type { StaleMark } from './runtime-state.js';
import type { SupervisorEvent } from './supervisor-events.js';
import type { UpdateNote } from './update-switching.js';

/**
 * Everything the supervisor remembers between passes, as one plain value.
 * The decisions (observe.ts, settle-step.ts, adopt-desired.ts) take it and
 * return a new one with the events to emit; the supervisor keeps the latest
 * and does the I/O. Nothing here is changed in place.
 */
export interface SupervisorMemory {
  /** The desired state as run: as applied, with the services whose probation failed swapped back. */
  readonly desired: DesiredState | undefined;
  readonly version: string | null;
  /** Crash-loop back-off per service (persisted by the supervisor on every change). */
  readonly restartBackoff: BackoffState;
  /** Pull back-off per image. */
  readonly pullBackoff: BackoffState;
  /** Back-off between replacements of stale containers, per service; not a crash count. */
  readonly recoveryBackoff: BackoffState;
  /** The last failure per service, for the reports; a success of the service's steps clears it. */
  readonly lastErrors: ReadonlyMap<string, { code: ErrorCode; message: string }>;
  /** Set when the engine's event stream ends; settled by the first pass that reads the engine again. */
  readonly outage: EngineOutage | undefined;
  /** Changes of the crash back-off over the last shutdown window: those an engine outage takes back. Oldest first. */
  readonly failureRecords: readonly FailureRecord[];
  /** Containers the engine stopped by going down (id → finish time), until they run again or are replaced. */
  readonly resuming: ReadonlyMap<string, number>;
  /** Containers whose start failed on stale runtime state (id, or the name of a container just created): to be replaced. */
  readonly staleRuntime: ReadonlyMap<string, StaleMark>;
  /** Services being updated to a new image (update-switching.ts); cleared by their create and by a new desired state. */
  readonly updates: ReadonlyMap<string, UpdateNote>;
  /** Health-gated rollout: probations of new configurations and the last good version to return to. */
  readonly rollout: Rollout;
  /** Until the first judgement after this start: the probations a restart cut short are resumed there. */
  readonly resumeProbations: boolean;
  /** When a probation ends or a suspected failure is confirmed: a pass is due then. */
  readonly probationCheckAt: number | null;
  /** Stopped by an operator: kept down by the planner until started again or a new version. */
  readonly holds: OperatorHolds;
  /** Kept down by pressure: removed, not started, not counted as crashes. */
  readonly evictions: Evictions;
  /** Numbers failures of steps, which have no container exit to key them by. */
  readonly failureSeq: number;
}

/** What a decision returns: the memory to keep, the events to emit, the lines to log, in order. */
export interface Decision {
  memory: SupervisorMemory;
  events: SupervisorEvent[];
  notes: LogNote[];
}

export interface LogNote {
  level: 'debug' | 'info' | 'warn';
  obj: object;
  msg: string;
}

/** The policies the decisions apply, fixed for a supervisor's life. */
export interface DecisionPolicies {
  restart: BackoffPolicy;
  pull: BackoffPolicy;
}

/**
 * The memory of a supervisor just started: the crash back-off and the holds
 * kept across the restart (a back-off that reaches further than its cap is
 * cut to it: the clock may have jumped), nothing else.
 */
export function initialMemory(options: {
  restartBackoff: BackoffState; restartPolicy: BackoffPolicy; now: number; probationMs: number;
  held: { version: string; services: Iterable<string> } | undefined;
}): SupervisorMemory {
  return {
    desired: undefined, version: null,
    restartBackoff: Object.fromEntries(Object.entries(options.restartBackoff).map(([k, e]) => [k, clampToClock(e, options.now, options.restartPolicy)])),
    pullBackoff: {}, recoveryBackoff: {}, lastErrors: new Map(),
    outage: undefined, failureRecords: [], resuming: new Map(), staleRuntime: new Map(), updates: new Map(),
    rollout: newRollout(options.probationMs), resumeProbations: true, probationCheckAt: null,
    holds: initialHolds(options.held), evictions: NO_EVICTIONS, failureSeq: 0,
  };
}

/** How long an engine going down takes to stop the containers before its event stream ends. */
export function shutdownWindowMs(desired: DesiredState | undefined): number {
  return Math.max(0, ...(desired?.services ?? []).map((s) => s.stopGraceMs)) + 5_000;
}

/**
 * Adopt a back-off with new failures in it, remembering what each changed
 * service had before: an engine outage whose window covers them takes them back.
 */
export function countFailures(memory: SupervisorMemory, next: BackoffState, now: number): SupervisorMemory {
  // Nothing is dropped while an outage waits to be settled: its window reaches back from when it began.
  const kept = memory.outage === undefined ? memory.failureRecords.filter((r) => r.at >= now - shutdownWindowMs(memory.desired)) : memory.failureRecords;
  const added = Object.keys(next).filter((service) => next[service] !== memory.restartBackoff[service])
    .map((service): FailureRecord => ({ at: now, service, before: memory.restartBackoff[service] }));
  return { ...memory, failureRecords: [...kept, ...added], restartBackoff: next };
}

/** The engine's event stream ended: an outage begins (the first pass that reads the engine again settles it). */
export function engineLost(memory: SupervisorMemory, now: number): SupervisorMemory {
  return { ...memory, outage: memory.outage ?? { at: now, windowMs: shutdownWindowMs(memory.desired) }, rollout: rolloutEngineLost(memory.rollout) };
}
