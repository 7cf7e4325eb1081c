import { backoffDelay, type BackoffPolicy } from './restart-backoff.js';
import type { SupervisorMemory } from './supervisor-memory.js';

/** Retries of an unreachable engine: 1 s doubling to 30 s. */
export const ENGINE_RETRY: BackoffPolicy = { initialDelayMs: 1000, maxDelayMs: 30_000, resetAfterMs: 0 };

/**
 * When the next pass is due with nothing else happening: the earliest end of
 * a back-off of a desired service or image, of a probation, or the next try
 * of an unreachable engine (`engineFailures` passes in a row failed).
 * Undefined: nothing to wait for. Pure.
 */
export function nextWakeAt(memory: SupervisorMemory, now: number, engineFailures: number): number | undefined {
  const services = memory.desired?.services;
  if (services === undefined) return undefined;
  const times = [
    ...services.map((s) => memory.restartBackoff[s.name]?.nextAttemptAt ?? 0),
    ...services.map((s) => memory.recoveryBackoff[s.name]?.nextAttemptAt ?? 0),
    ...services.map((s) => memory.pullBackoff[s.image]?.nextAttemptAt ?? 0),
  ].filter((t) => t > now);
  if (engineFailures > 0) times.push(now + backoffDelay(engineFailures, ENGINE_RETRY));
  if (memory.probationCheckAt !== null && memory.probationCheckAt > now) times.push(memory.probationCheckAt);
  return times.length === 0 ? undefined : Math.min(...times);
}
