import type { ActualState } from './actual-state.js';
import type { BackoffEntry, BackoffState } from './restart-backoff.js';

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

/**
 * The containers of `stopped` (id → finish time, from `stoppedByEngine`) that
 * still are as the engine left them: present, exited, the same finish time.
 * They stay to be started again (and their exit is no crash) across passes
 * until they run again or are replaced, not only in the first pass after
 * the engine came back: their start may fail once. Pure.
 */
export function stillStopped(actual: ActualState, stopped: ReadonlyMap<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const c of actual.containers) {
    const at = stopped.get(c.id);
    if (at !== undefined && c.status === 'exited' && c.finishedAt === at) out.set(c.id, at);
  }
  return out;
}

/** A change of a service's crash back-off: when, and the entry before it. */
export interface FailureRecord {
  at: number;
  service: string;
  before: BackoffEntry | undefined;
}

/**
 * Take back every failure counted within the outage's window (exits and
 * failed steps alike): an engine on its way down stops the containers and
 * fails what is asked of it (`transport is closing`, a network store already
 * closed), none of which says anything about the service. Each service whose
 * back-off changed in the window gets back its entry from before the first
 * change; one that changed after the window too (a failure the agent saw
 * after the engine returned) is left as it is. `records` oldest first. Pure.
 */
export function takeBackFailures(backoff: BackoffState, records: readonly FailureRecord[], outage: EngineOutage): BackoffState {
  const from = outage.at - outage.windowMs;
  const to = outage.at + AFTER_SLACK_MS;
  const later = new Set(records.filter((r) => r.at > to).map((r) => r.service));
  const restored = new Set<string>();
  let next = backoff;
  for (const r of records) {
    if (r.at < from || r.at > to || restored.has(r.service) || later.has(r.service)) continue;
    restored.add(r.service);
    next = { ...next };
    if (r.before === undefined) delete next[r.service];
    else next[r.service] = r.before;
  }
  return next;
}
