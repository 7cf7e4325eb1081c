import { backoffDelay, type BackoffPolicy } from './restart-backoff.js';
import type { SupervisorMemory } from './supervisor-memory.js';

/** Retries of an unreachable engine: 1 s doubling to 30 s. */
export const ENGINE_RETRY: BackoffPolicy = { initialDelayMs: 1000, maxDelayMs: 30_000, resetAfterMs: 0 };

export interface WakeFacts {
  /** The instant the last round judged back-offs and probations by. */
  decidedAt: number;
  now: number;
  /** Passes in a row that failed on an unreachable engine. */
  engineFailures: number;
}

/**
 * When the next pass is due with nothing else happening: the earliest end of
 * a back-off of a desired service or image, of a probation, or the next try
 * of an unreachable engine. Undefined: nothing to wait for. Pure.
 *
 * A time counts when it was still ahead at `decidedAt`, not at `now`: one
 * that fell between the judgement and this call (a loaded machine takes tens
 * of ms between them) was judged as not yet over, and only a pass after it
 * sees it over. Dropping it left a device `applying` for good: its probations
 * ended in that gap and nothing woke the supervisor again. Such a time is due
 * at once (the result may be before `now`).
 */
export function nextWakeAt(memory: SupervisorMemory, facts: WakeFacts): number | undefined {
  const { decidedAt, now, engineFailures } = facts;
  const services = memory.desired?.services;
  if (services === undefined) return undefined;
  const times = [
    ...services.map((s) => memory.restartBackoff[s.name]?.nextAttemptAt ?? 0),
    ...services.map((s) => memory.recoveryBackoff[s.name]?.nextAttemptAt ?? 0),
    ...services.map((s) => memory.pullBackoff[s.image]?.nextAttemptAt ?? 0),
  ].filter((t) => t > decidedAt);
  if (engineFailures > 0) times.push(now + backoffDelay(engineFailures, ENGINE_RETRY));
  if (memory.probationCheckAt !== null && memory.probationCheckAt > decidedAt) times.push(memory.probationCheckAt);
  return times.length === 0 ? undefined : Math.min(...times);
}
