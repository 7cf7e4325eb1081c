import { judgeDevice } from './device-verdict.js';
import { allowedFailures, waveSizes } from './rollout-strategy.js';
import { failureCounts, waveOrder, type DeviceObservation, type RolloutEvent, type RolloutMember, type RolloutState } from './rollout-state.js';

/** Everything the reconciler knows when it wakes: who matches now, what each reports, the time. */
export interface StepInput {
  /** The devices the deployment's selector matches now (active ones). */
  targets: readonly string[];
  /** One observation per target; a target without one is not judged this time. */
  devices: ReadonlyMap<string, DeviceObservation>;
  now: number;
}

export interface RolloutStep {
  state: RolloutState;
  /** The revision of this deployment each target must run; a target absent from the rollout runs `from` (or `to` once done). */
  assignments: Map<string, number>;
  events: RolloutEvent[];
  /** The state differs from the one given: store it (its `updatedAt` is then the step's time). */
  changed: boolean;
  /**
   * When to step again if nothing is reported before: the next bake end or wave deadline.
   * Null when only a report, a target change or an operator can move the rollout.
   */
  wakeAt: number | null;
}

type EventBody = RolloutEvent extends infer E ? (E extends RolloutEvent ? Omit<E, 'at' | 'deployment'> : never) : never;

/**
 * Pure: one pass of the rollout. Judges the devices given the new revision, halts when the
 * failures exceed the threshold, starts the next wave when the current one has passed (several
 * at once when waves come out empty), and says which revision each target runs. The input state
 * is not modified; the same inputs give the same step, so a restarted `serve` carries on.
 */
export function stepRollout(previous: RolloutState, input: StepInput): RolloutStep {
  // Copy on write: a member object is replaced, never modified, so a pass over thousands of
  // members that changes a few costs a few copies.
  const state: RolloutState = { ...previous, members: { ...previous.members }, carried: { ...previous.carried } };
  const events: RolloutEvent[] = [];
  const emit = (body: EventBody): void => {
    events.push({ at: input.now, deployment: state.deployment, ...body });
  };
  const targets = new Set(input.targets);
  let changed = false;
  if (state.phase !== 'aborted') {
    changed = judgeMembers(state, input, emit);
    if (state.phase === 'running' || state.phase === 'paused') haltPastThreshold(state, input.now, emit);
    if (state.phase === 'running') changed = advance(state, input, targets, emit) || changed;
  }
  // Every change of phase, wave or outcome comes with an event; verdicts and joins are counted above.
  changed ||= events.length > 0;
  if (changed) state.updatedAt = input.now;
  return { state: changed ? state : previous, assignments: assign(state, input.targets), events, changed, wakeAt: nextWake(state, targets, input.now) };
}

function sameMember(a: RolloutMember, b: RolloutMember): boolean {
  return a.verdict === b.verdict && a.bakeStartedAt === b.bakeStartedAt && a.started === b.started && a.outcome === b.outcome
    && a.revision === b.revision && a.timedOut === b.timedOut && JSON.stringify(a.reason) === JSON.stringify(b.reason);
}

/** Judge every member still on the new revision; true when any member changed. */
function judgeMembers(state: RolloutState, input: StepInput, emit: (e: EventBody) => void): boolean {
  const { strategy } = state;
  let changed = false;
  for (const [deviceId, before] of Object.entries(state.members)) {
    // Reverted and held-back members run `from` again; healthy and failed are final.
    if (before.revision !== state.toRevision || before.outcome === 'healthy' || before.outcome === 'failed') continue;
    const device = input.devices.get(deviceId);
    if (device === undefined) continue;
    const m = { ...before };
    const version = device.published !== null && device.published.revision === m.revision ? device.published.version : null;
    const v = judgeDevice({
      reported: device.reported, online: device.online, version, bakeStartedAt: m.bakeStartedAt, bakeMs: strategy.bakeMs, now: input.now,
      ...(device.services === undefined ? {} : { services: device.services }),
    });
    m.verdict = v.verdict;
    m.reason = v.reason;
    m.bakeStartedAt = v.since ?? null;
    if (v.verdict !== 'pending' && v.verdict !== 'offline') m.started = true;
    if (v.verdict === 'healthy') {
      m.outcome = 'healthy';
    } else if (v.verdict === 'failed') {
      fail(state, deviceId, m, false, emit);
    } else if (m.outcome === null && v.verdict !== 'baking' && input.now >= m.assignedAt + strategy.deadlineMs) {
      // Past its deadline a member stops holding the wave: failed if it shows a fault, else deferred.
      if (v.verdict === 'applying' && v.reason !== null) fail(state, deviceId, m, true, emit);
      else {
        m.outcome = 'deferred';
        emit({ type: 'device-deferred', deviceId, wave: m.wave + 1, verdict: v.verdict });
      }
    }
    if (!sameMember(m, before)) {
      state.members[deviceId] = m;
      changed = true;
    }
  }
  return changed;
}

function fail(state: RolloutState, deviceId: string, m: RolloutMember, timedOut: boolean, emit: (e: EventBody) => void): void {
  m.outcome = 'failed';
  m.timedOut = timedOut;
  emit({ type: 'device-failed', deviceId, wave: m.wave + 1, reason: m.reason, timedOut });
  if (state.strategy.onHalt === 'revert' && state.fromRevision !== null) {
    m.revision = state.fromRevision;
    emit({ type: 'device-reverted', deviceId, revision: state.fromRevision });
  }
}

/**
 * Halt once the failures exceed what the strategy allows among the devices tried so far. The
 * members that have not started the revision yet are held back on `from`: nobody should begin a
 * revision the rollout has given up on. Those already on it stay (and are still judged).
 */
function haltPastThreshold(state: RolloutState, now: number, emit: (e: EventBody) => void): void {
  const { failures, tried } = failureCounts(state);
  const allowed = allowedFailures(state.strategy.maxFailures, tried);
  if (failures <= allowed) return;
  let heldBack = 0;
  if (state.fromRevision !== null) {
    for (const [id, m] of Object.entries(state.members)) {
      if (m.revision === state.toRevision && !m.started && m.outcome !== 'failed') {
        state.members[id] = { ...m, revision: state.fromRevision };
        heldBack += 1;
      }
    }
  }
  state.phase = 'halted';
  state.halt = { at: now, failures, tried, allowed, onHalt: state.strategy.onHalt };
  emit({ type: 'halted', failures, tried, allowed, onHalt: state.strategy.onHalt, heldBack });
}

function membersOfWaves(state: RolloutState, upTo: number, targets: ReadonlySet<string>, exactly = false): RolloutMember[] {
  return Object.entries(state.members).filter(([id, m]) => targets.has(id) && (exactly ? m.wave === upTo : m.wave <= upTo)).map(([, m]) => m);
}

function outcomes(members: readonly RolloutMember[]): { healthy: number; failed: number; deferred: number } {
  return {
    healthy: members.filter((m) => m.outcome === 'healthy').length,
    failed: members.filter((m) => m.outcome === 'failed').length,
    deferred: members.filter((m) => m.outcome === 'deferred').length,
  };
}

function startWave(state: RolloutState, wave: number, input: StepInput, targets: ReadonlySet<string>, emit: (e: EventBody) => void): void {
  const of = waveSizes(state.strategy.waves, input.targets.length)[wave] ?? input.targets.length;
  const joined = join(state, wave, of - membersOfWaves(state, Number.MAX_SAFE_INTEGER, targets).length, input);
  state.wave = wave;
  state.waveStartedAt = input.now;
  emit({ type: 'wave-started', wave: wave + 1, devices: joined, of });
}

/** Up to `count` targets that are not members yet join `wave`, in wave order. */
function join(state: RolloutState, wave: number, count: number, input: StepInput): number {
  if (count <= 0) return 0;
  const outside = input.targets.filter((id) => !(id in state.members));
  const chosen = waveOrder(state, outside).slice(0, count);
  for (const id of chosen) {
    state.members[id] = {
      wave, revision: state.toRevision, assignedAt: input.now, verdict: 'pending', reason: null,
      bakeStartedAt: null, started: false, outcome: null, timedOut: false,
    };
    delete state.carried[id];
  }
  return chosen.length;
}

/** Start waves while the current one has passed; true when a device joined without an event (the last wave's newcomers). */
function advance(state: RolloutState, input: StepInput, targets: ReadonlySet<string>, emit: (e: EventBody) => void): boolean {
  const last = state.strategy.waves.length - 1;
  let joined = 0;
  if (state.wave === -1) startWave(state, 0, input, targets, emit);
  for (;;) {
    const w = state.wave;
    // The last wave is every target: a device that matches while it runs joins it at once.
    if (w === last) joined += join(state, w, input.targets.length, input);
    const members = membersOfWaves(state, w, targets);
    if (members.some((m) => m.outcome === null)) return joined > 0;
    emit({ type: 'wave-passed', wave: w + 1, ...outcomes(membersOfWaves(state, w, targets, true)) });
    if (w === last) {
      state.phase = 'done';
      emit({ type: 'done', ...outcomes(members) });
      return joined > 0;
    }
    startWave(state, w + 1, input, targets, emit);
  }
}

function assign(state: RolloutState, targets: readonly string[]): Map<string, number> {
  const fallback = state.phase === 'done' || state.fromRevision === null ? state.toRevision : state.fromRevision;
  const out = new Map<string, number>();
  for (const id of targets) {
    const m = state.members[id];
    if (state.phase === 'aborted') out.set(id, state.fromRevision ?? state.toRevision);
    else if (m !== undefined) out.set(id, m.revision);
    // Once done, a device outside the waves (it matched afterwards) gets the new revision whatever it ran.
    else out.set(id, state.phase === 'done' ? fallback : state.carried[id] ?? fallback);
  }
  return out;
}

/**
 * The earliest bake end or deadline still ahead. One already past belongs to a target this pass
 * had no observation of: time alone will not settle it, its next report will.
 */
function nextWake(state: RolloutState, targets: ReadonlySet<string>, now: number): number | null {
  if (state.phase === 'aborted') return null;
  let next: number | null = null;
  for (const [id, m] of Object.entries(state.members)) {
    if (!targets.has(id) || m.revision !== state.toRevision || m.outcome === 'healthy' || m.outcome === 'failed') continue;
    let at: number | null = null;
    if (m.verdict === 'baking' && m.bakeStartedAt !== null) at = m.bakeStartedAt + state.strategy.bakeMs;
    else if (m.outcome === null) at = m.assignedAt + state.strategy.deadlineMs;
    if (at !== null && at > now && (next === null || at < next)) next = at;
  }
  return next;
}
