import type { ErrorCode } from '../../protocol/errors.js';
import type { PullOutcome } from '../pulls/background-pulls.js';
import { configHash } from './config-hash.js';
import { recordFailure, recordSuccess } from './restart-backoff.js';
import { created } from './rollout-gate.js';
import { describeStep, type Step } from './steps.js';
import type { SupervisorEvent } from './supervisor-events.js';
import { countFailures, type Decision, type DecisionPolicies, type LogNote, type SupervisorMemory } from './supervisor-memory.js';
import { switchToKillFirst } from './update-switching.js';

/**
 * How a step ended: done; failed; a start refused on stale runtime state
 * (runtime-state.ts); or a pull the guard stopped because the disk holds the
 * new image only once the old one is gone (`kill-first`).
 */
export type StepResult =
  | { kind: 'done' }
  | { kind: 'failed'; code: ErrorCode; message: string }
  | { kind: 'stale-runtime'; message: string }
  | { kind: 'kill-first'; reason: string };

/** What a step's outcome changes in the memory, and the events it makes. Pure. */
export function settleStep(memory: SupervisorMemory, step: Step, result: StepResult, now: number, policies: DecisionPolicies): Decision {
  const events: SupervisorEvent[] = [];
  const notes: LogNote[] = [];
  let m: SupervisorMemory;
  switch (result.kind) {
    case 'done': m = succeeded(memory, step, events, notes); break;
    case 'failed': m = failed(memory, step, result.code, result.message, now, policies, events, notes); break;
    case 'stale-runtime':
      m = step.kind === 'start' ? staleStart(memory, step, result.message, now, policies, events, notes) : failed(memory, step, 'RUNTIME_FAILED', result.message, now, policies, events, notes);
      break;
    case 'kill-first': m = step.kind === 'pull' ? killFirst(memory, step, result.reason, events, notes) : memory; break;
  }
  return { memory: m, events, notes };
}

/** The disk holds the new image only once the old one is gone: this update runs kill-then-download. */
function killFirst(memory: SupervisorMemory, step: Extract<Step, { kind: 'pull' }>, reason: string, events: SupervisorEvent[], notes: LogNote[]): SupervisorMemory {
  notes.push({ level: 'warn', obj: { service: step.service, image: step.image, reason }, msg: 'disk short: this update runs kill-then-download' });
  events.push({ type: 'update-switched', service: step.service, image: step.image, strategy: 'kill-then-download', reason });
  return { ...memory, updates: switchToKillFirst(memory.updates, step.service, reason) };
}

function withoutKey<V>(map: ReadonlyMap<string, V>, key: string): ReadonlyMap<string, V> {
  if (!map.has(key)) return map;
  const next = new Map(map);
  next.delete(key);
  return next;
}

function succeeded(memory: SupervisorMemory, step: Step, events: SupervisorEvent[], notes: LogNote[]): SupervisorMemory {
  let m = memory;
  if (step.kind === 'create') m = { ...m, updates: withoutKey(m.updates, step.service) };
  if (step.kind === 'remove') {
    // A stale container removed: the recovery is under way (its replacement is created next).
    const mark = m.staleRuntime.get(step.containerId);
    if (mark !== undefined) {
      m = { ...m, staleRuntime: withoutKey(m.staleRuntime, step.containerId) };
      notes.push({ level: 'warn', obj: { service: step.service, containerId: step.containerId, reason: mark.reason }, msg: 'removed a container with stale runtime state; creating it anew' });
      events.push({ type: 'recreated', service: step.service, containerId: step.containerId, reason: mark.reason });
    }
  }
  if (step.kind === 'start') {
    const entry = recordSuccess(m.recoveryBackoff[step.service]);
    if (entry) m = { ...m, recoveryBackoff: { ...m.recoveryBackoff, [step.service]: entry } };
  }
  if (step.kind === 'pull') {
    const entry = recordSuccess(m.pullBackoff[step.image]);
    if (entry) m = { ...m, pullBackoff: { ...m.pullBackoff, [step.image]: entry } };
    events.push({ type: 'pulled', service: step.service, image: step.image });
  }
  if (step.kind === 'create') m = { ...m, rollout: created(m.rollout, step.service, step.configHash) };
  if (step.kind === 'pull' || step.kind === 'create' || step.kind === 'start') m = { ...m, lastErrors: withoutKey(m.lastErrors, step.service) };
  return m;
}

/**
 * A failed pull keeps whatever runs now and retries with the pull back-off;
 * any other failed step puts the service into crash-loop back-off, so one
 * broken service cannot block the others.
 */
function failed(
  memory: SupervisorMemory, step: Step, code: ErrorCode, message: string, now: number, policies: DecisionPolicies, events: SupervisorEvent[], notes: LogNote[],
): SupervisorMemory {
  const failureSeq = memory.failureSeq + 1;
  const key = `${step.kind}#${failureSeq}`;
  const m: SupervisorMemory = { ...memory, failureSeq, lastErrors: new Map(memory.lastErrors).set(step.service, { code, message }) };
  if (step.kind === 'pull') {
    const entry = recordFailure(m.pullBackoff[step.image], { at: now, key }, policies.pull);
    notes.push({ level: 'warn', obj: { image: step.image, err: message, retryAt: entry.nextAttemptAt }, msg: 'pull failed' });
    events.push({ type: 'pull-failed', service: step.service, image: step.image, code, error: message, retryAt: entry.nextAttemptAt });
    return { ...m, pullBackoff: { ...m.pullBackoff, [step.image]: entry } };
  }
  const service = m.desired?.services.find((s) => s.name === step.service);
  const hash = step.kind === 'create' ? step.configHash : service ? configHash(service) : null;
  const entry = recordFailure(m.restartBackoff[step.service], { at: now, key, configHash: hash }, policies.restart);
  notes.push({ level: 'warn', obj: { step: describeStep(step), err: message, retryAt: entry.nextAttemptAt }, msg: 'step failed' });
  events.push({ type: 'step-failed', service: step.service, step: describeStep(step), error: message, retryAt: entry.nextAttemptAt });
  return countFailures(m, { ...m.restartBackoff, [step.service]: entry }, now);
}

/**
 * A start refused because the container's runtime state is stale (a task
 * left in containerd by an engine that stopped during the start): starting
 * it again fails the same way, so the planner replaces it (removed, created
 * anew from the desired spec) once the recovery back-off allows. Not a
 * crash of the service: neither its restart count nor its probation sees it.
 */
function staleStart(
  memory: SupervisorMemory, step: Extract<Step, { kind: 'start' }>, message: string, now: number, policies: DecisionPolicies, events: SupervisorEvent[], notes: LogNote[],
): SupervisorMemory {
  const failureSeq = memory.failureSeq + 1;
  const entry = recordFailure(memory.recoveryBackoff[step.service], { at: now, key: `stale#${failureSeq}` }, policies.restart);
  notes.push({ level: 'warn', obj: { step: describeStep(step), err: message, retryAt: entry.nextAttemptAt }, msg: 'start failed on stale runtime state; the container will be replaced' });
  events.push({ type: 'step-failed', service: step.service, step: describeStep(step), error: message, retryAt: entry.nextAttemptAt });
  return {
    ...memory, failureSeq,
    staleRuntime: new Map(memory.staleRuntime).set(step.container, { service: step.service, reason: message }),
    lastErrors: new Map(memory.lastErrors).set(step.service, { code: 'RUNTIME_FAILED', message }),
    recoveryBackoff: { ...memory.recoveryBackoff, [step.service]: entry },
  };
}

/** A background pull's end, as a step's outcome: a guard that finds the disk short even after the old image fails the pull with NO_SPACE. */
export function pullResult(step: Extract<Step, { kind: 'pull' }>, outcome: PullOutcome): StepResult {
  switch (outcome.kind) {
    case 'pulled': return { kind: 'done' };
    case 'failed': return { kind: 'failed', code: outcome.error.code, message: outcome.error.message };
    case 'short': return { kind: 'failed', code: 'NO_SPACE', message: `pull ${step.image}: ${outcome.reason}` };
    case 'kill-first': return { kind: 'kill-first', reason: outcome.reason };
  }
}
