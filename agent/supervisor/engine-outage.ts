import type { ActualState } from './actual-state.js';

/** The moment the supervisor lost the engine, and how long the engine may take to stop containers before that shows. */
export interface EngineOutage {
  /** When the event stream ended, wall-clock ms. */
  at: number;
  /**
   * dockerd stops its containers first and closes its API last, so their
   * exits precede the stream's end by up to their stop timeouts.
   */
  windowMs: number;
}

/** Clocks of the agent and the engine may disagree a little; an exit this far after the end still counts. */
const AFTER_SLACK_MS = 5_000;

/**
 * The containers an engine stopped by going down (a restart of dockerd, not
 * an exit of the service's own): those that had run and finished within the
 * outage's window. They are started again whatever their restart policy
 * says — `restart: no` means "not after it exits by itself" — and their exit
 * is no crash. A service that happened to exit by itself just before the
 * engine went down is started once more; a job that completed earlier is
 * left alone. Pure.
 */
export function stoppedByEngine(actual: ActualState, outage: EngineOutage): Set<string> {
  const out = new Set<string>();
  for (const c of actual.containers) {
    if (c.status !== 'exited' || c.startedAt === null || c.finishedAt === null) continue;
    if (c.finishedAt >= outage.at - outage.windowMs && c.finishedAt <= outage.at + AFTER_SLACK_MS) out.add(c.id);
  }
  return out;
}
