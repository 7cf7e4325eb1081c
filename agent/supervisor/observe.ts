import type { ActualState } from './actual-state.js';
import { configHash } from './config-hash.js';
import { stillStopped, stoppedByEngine, takeBackFailures } from './engine-outage.js';
import { recordExits, type PlanFacts } from './planner.js';
import type { BackoffPolicy } from './restart-backoff.js';
import { judge, resume, type ProbationFailure } from './rollout-gate.js';
import { resolveStale } from './runtime-state.js';
import { switchedUpdates } from './update-switching.js';
import type { SupervisorEvent } from './supervisor-events.js';
import { countFailures, shutdownWindowMs, type Decision, type LogNote, type SupervisorMemory } from './supervisor-memory.js';

export interface ObserveFacts {
  now: number;
  /** Services an operator action runs on: what was read may show it half done. */
  busy: ReadonlySet<string>;
  restartPolicy: BackoffPolicy;
}

/** What the planner needs besides the memory, as observed. */
export interface Observation extends Decision {
  /** Containers the engine stopped by going down: started again, whatever their restart policy. */
  resume: ReadonlySet<string>;
  /** Containers with stale runtime state: replaced, never started. */
  staleRuntime: ReadonlySet<string>;
}

/**
 * What the actual state tells the memory, before planning: the end of an
 * engine outage (and the failures it takes back), the stale containers still
 * there, the exits that count as crashes, and the probations that passed or
 * failed (a failed one swaps the service's previous configuration into the
 * desired state). Pure.
 */
export function observe(memory: SupervisorMemory, actual: ActualState, facts: ObserveFacts): Observation {
  const notes: LogNote[] = [];
  const events: SupervisorEvent[] = [];
  let m = settleOutage(memory, actual, notes);
  const resumeIds = new Set(m.resuming.keys());
  m = { ...m, staleRuntime: resolveStale(actual, m.staleRuntime) };
  const staleRuntime = new Set(m.staleRuntime.keys());
  m = noteExits(m, actual, facts, resumeIds, staleRuntime, events);
  m = judgeProbation(m, actual, facts.now, notes, events);
  return { memory: m, events, notes, resume: resumeIds, staleRuntime };
}

/**
 * After the engine was lost and is read again: the containers it stopped by
 * going down, to be started again (kept on every pass until they run again
 * or are replaced). The failures counted within the shutdown's window (their
 * exits, and the steps the engine failed on its way down) are taken back:
 * they would otherwise count as crashes, fail probations and hold the
 * services back.
 */
function settleOutage(memory: SupervisorMemory, actual: ActualState, notes: LogNote[]): SupervisorMemory {
  let m = memory;
  const outage = m.outage;
  if (outage !== undefined) {
    const stopped = stoppedByEngine(actual, outage);
    const resuming = new Map(m.resuming);
    for (const c of actual.containers) if (stopped.has(c.id) && c.finishedAt !== null) resuming.set(c.id, c.finishedAt);
    const next = takeBackFailures(m.restartBackoff, m.failureRecords, outage);
    if (next !== m.restartBackoff) {
      const before = m.restartBackoff;
      notes.push({ level: 'info', obj: { services: Object.keys(before).filter((k) => next[k] !== before[k]) }, msg: 'failures seen while the engine went down are not counted' });
    }
    if (stopped.size > 0) notes.push({ level: 'info', obj: { containers: stopped.size }, msg: 'the engine came back: starting the containers it stopped' });
    m = { ...m, outage: undefined, resuming, failureRecords: [], restartBackoff: next };
  }
  return { ...m, resuming: stillStopped(actual, m.resuming) };
}

function noteExits(
  memory: SupervisorMemory, actual: ActualState, facts: ObserveFacts, stoppedByEngine: ReadonlySet<string>, staleRuntime: ReadonlySet<string>, events: SupervisorEvent[],
): SupervisorMemory {
  if (memory.desired === undefined) return memory;
  // An exit an operator caused (stop, restart) is not a crash, nor is one the engine caused by going down,
  // nor one pressure caused (an eviction stops a container before removing it).
  const watched = memory.desired.services.filter((s) => !memory.holds.services.has(s.name) && !facts.busy.has(s.name) && !memory.evictions.services.has(s.name));
  const next = recordExits(actual, watched, memory.restartBackoff, facts.now, facts.restartPolicy, stoppedByEngine, staleRuntime);
  if (next === memory.restartBackoff) return memory;
  for (const [service, entry] of Object.entries(next)) {
    if (entry === memory.restartBackoff[service]) continue;
    events.push({ type: 'backoff', service, restartCount: entry.total, exitCode: entry.lastExitCode, retryAt: entry.nextAttemptAt });
  }
  return countFailures(memory, next, facts.now);
}

/** Services on probation that failed go back to their last good configuration (if they have one). */
function judgeProbation(memory: SupervisorMemory, actual: ActualState, now: number, notes: LogNote[], events: SupervisorEvent[]): SupervisorMemory {
  const desired = memory.desired;
  if (desired === undefined) return memory;
  let rollout = memory.rollout;
  let resumeProbations = memory.resumeProbations;
  if (resumeProbations && memory.version !== null) {
    resumeProbations = false;
    rollout = resume(rollout, actual, desired.services, memory.version, configHash);
  }
  const judged = judge(rollout, actual, desired.services, memory.restartBackoff, now, shutdownWindowMs(desired));
  let m: SupervisorMemory = { ...memory, rollout: judged.rollout, resumeProbations, probationCheckAt: judged.nextCheckAt };
  for (const f of judged.failures) m = rollBack(m, f, notes, events);
  return m;
}

function rollBack(memory: SupervisorMemory, f: ProbationFailure, notes: LogNote[], events: SupervisorEvent[]): SupervisorMemory {
  const rolledBackTo = f.previous === undefined ? null : f.previousVersion ?? null;
  notes.push({
    level: 'warn', obj: { service: f.service, reason: f.reason, rolledBackTo },
    msg: rolledBackTo === null ? 'new service failed its probation; there is no earlier version to return to' : 'new configuration failed its probation; rolling back',
  });
  events.push({ type: 'probation-failed', service: f.service, reason: f.reason, version: memory.version, rolledBackTo });
  const previous = f.previous;
  const desired = memory.desired;
  if (previous === undefined || desired === undefined) return memory;
  return { ...memory, desired: { ...desired, services: desired.services.map((s) => (s.name === f.service ? previous : s)) } };
}

/** What the planner is told: the memory's back-offs, holds, evictions and switched updates, and this observation. Pure. */
export function planFacts(
  memory: SupervisorMemory, seen: Observation, facts: Pick<PlanFacts, 'now' | 'scope' | 'deviceLabels' | 'pullsInFlight' | 'busy'>,
): PlanFacts {
  return {
    ...facts, restartBackoff: memory.restartBackoff, pullBackoff: memory.pullBackoff, recoveryBackoff: memory.recoveryBackoff,
    held: memory.holds.services, evicted: new Set(memory.evictions.services.keys()), resume: seen.resume, staleRuntime: seen.staleRuntime,
    killFirst: new Set(switchedUpdates(memory.updates).keys()),
  };
}
