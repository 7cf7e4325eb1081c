import { setMaxListeners } from 'node:events';
import { asTsunaguError, TsunaguError, type ErrorCode } from '../../protocol/errors.js';
import type { ActualState } from './actual-state.js';
import type { DesiredState } from '../../protocol/compose/desired-service.js';
import type { ContainerRuntime } from './container-runtime.js';
import { followEngineEvents, interpretRuntimeEvent } from './engine-events.js';
import { evictionEvents, setTiers, type TierEvictions } from './evictions.js';
import { adoptDesired } from './adopt-desired.js';
import { configHash } from './config-hash.js';
import { BackgroundPulls } from '../pulls/background-pulls.js';
import type { StepContext } from './executor.js';
import { runSteps } from './run-steps.js';
import { observe, planFacts } from './observe.js';
import { commandTarget } from './operator-commands.js';
import { heldServices, hold, release } from './operator-holds.js';
import { plan } from './planner.js';
import { DEFAULT_PULL_STALL_MS } from '../pulls/pull-stall-deadline.js';
import { DEFAULT_PULL_BACKOFF, DEFAULT_RESTART_BACKOFF } from './restart-backoff.js';
import { restoreLastGood, rollbackImages } from './rollout-gate.js';
import { pullResult, settleStep, type StepResult } from './settle-step.js';
import { readActualState } from './read-actual.js';
import type { Step } from './steps.js';
import type { SupervisorEvent, SupervisorState } from './supervisor-events.js';
import { engineLost, initialMemory, type Decision, type DecisionPolicies, type SupervisorMemory } from './supervisor-memory.js';
import type { Clock, PullClearance, SupervisorLogger, SupervisorOptions } from './supervisor-options.js';
import { noteUpdates, pullRequest } from './update-switching.js';
import { ENGINE_RETRY, nextWakeAt } from './wake-time.js';
import { snapshot } from './workload-snapshot.js';

export type { OverallStatus, ServiceReport, ServiceState } from './service-report.js';
export type { Clock, PullClearance, PullGuard, PullRequest, SupervisorLogger, SupervisorOptions } from './supervisor-options.js';
export type { SupervisorEvent, SupervisorState } from './supervisor-events.js';
export type { BackoffStore } from './backoff-store.js';
export type { EvictableTier, TierEvictions } from './evictions.js';

const silent: SupervisorLogger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };
/** Rounds of read-plan-execute per pass; a plan that never converges is cut here and retried on the next trigger. */
const MAX_ROUNDS = 25;

/**
 * Keeps the engine's containers in line with the desired state: reads the
 * actual state, observes it into the memory, plans, executes, settles each
 * step's outcome, and repeats until the plan is empty. Every decision is a
 * pure function of the memory (supervisor-memory.ts); this class does the
 * I/O around them. Between passes it follows the engine's event stream (no
 * polling): an exit, a removal or a health change triggers a new pass, and a
 * timer wakes it when a back-off ends.
 */
export class Supervisor {
  private readonly runtime: ContainerRuntime;
  private readonly log: SupervisorLogger;
  private readonly clock: Clock;
  private readonly scope: string;
  private readonly options: SupervisorOptions;
  private readonly policies: DecisionPolicies;
  private deviceLabels: ReadonlySet<string>;
  /** An operator action runs on these services: the planner leaves them alone meanwhile. */
  private readonly busy = new Set<string>();
  private memory: SupervisorMemory;
  private engineFailures = 0;
  /** The instant the last round judged back-offs and probations by (see nextWakeAt). */
  private decidedAt: number | undefined;
  private engineError: { code: ErrorCode; message: string } | null = null;
  private lastState: SupervisorState;
  /** Pulls run beside the passes, so that a long download neither blocks nor is cut by reconciling other services. */
  private readonly pulls: BackgroundPulls;
  private dirty = false;
  /** performance.now() when the pass in flight began: monotonic, so that a clock set by NTP does not age it. */
  private passBegan: number | undefined;
  private loop: Promise<void> | undefined;
  private pass: AbortController | undefined;
  private wake: NodeJS.Timeout | undefined;
  private watching: AbortController | undefined;
  private watchLoop: Promise<void> | undefined;
  private stopped = false;

  constructor(options: SupervisorOptions) {
    this.options = options;
    this.runtime = options.runtime;
    this.log = options.logger ?? silent;
    this.clock = options.clock ?? { now: () => Date.now() };
    this.scope = options.scope ?? 'default';
    this.policies = { restart: options.restartBackoff ?? DEFAULT_RESTART_BACKOFF, pull: options.pullBackoff ?? DEFAULT_PULL_BACKOFF };
    this.deviceLabels = new Set(options.deviceLabels ?? []);
    this.memory = initialMemory({
      restartBackoff: options.backoffStore?.load() ?? {}, restartPolicy: this.policies.restart, now: this.clock.now(),
      probationMs: options.probationMs ?? 0, held: options.held,
    });
    this.lastState = { version: null, status: 'applying', services: [], error: null };
    this.pulls = new BackgroundPulls({
      now: () => this.clock.now(),
      onProgress: (service, p) => this.emit({ type: 'pull-progress', service, image: p.image, currentBytes: p.currentBytes, totalBytes: p.totalBytes }),
      onDone: (step, outcome) => {
        this.settle(step, pullResult(step, outcome));
        this.requestPass(); // whatever the outcome, the plan changes
      },
      ...(options.pullGuard === undefined ? {} : { clear: (step, signal) => this.clearPull(step, signal) }),
    });
  }

  /** Start following the engine's events. Nothing is reconciled before the first `apply`. */
  start(): void {
    if (this.watching) return;
    this.stopped = false;
    this.watching = new AbortController();
    this.watchLoop = followEngineEvents({
      runtime: this.runtime, scope: this.scope, clock: this.clock, log: this.log, retry: ENGINE_RETRY, signal: this.watching.signal,
      onEvent: (e) => {
        const { event, reconcile } = interpretRuntimeEvent(e);
        if (event !== undefined) this.emit(event);
        if (reconcile) this.requestPass();
      },
      onDisconnect: () => {
        this.memory = engineLost(this.memory, this.clock.now());
      },
      onReconnect: () => this.requestPass(),
    });
  }

  /**
   * Adopt a new desired state (parsed, the device's defaults filled in: see
   * device-defaults.ts), interrupt the pass in flight, and reconcile. Resolves
   * with the state once the passes are done: everything that can be done
   * without waiting is done, while pulls may still run (a download can take
   * minutes; a caller answering a request must not wait for it). Follow
   * `onState`, or await `idle()`, for the outcome.
   */
  async apply(desired: DesiredState, version: string): Promise<SupervisorState> {
    if (this.stopped) throw new TsunaguError('CANCELLED', 'the supervisor is stopped');
    this.commit(adoptDesired(this.memory, desired, version));
    this.pass?.abort();
    this.requestPass();
    await this.loop;
    return this.state();
  }

  /**
   * The device's capability labels changed (the machine's facts read again
   * differ from those the agent started with): services are placed again,
   * a service whose required label is gone is taken down and one whose label
   * appeared is started.
   */
  setDeviceLabels(labels: Iterable<string>): void {
    this.deviceLabels = new Set(labels);
    this.requestPass();
  }

  /**
   * Keep the services of these priority tiers down, each for its reason (the
   * pressure monitor's decision); tiers absent from `tiers` come back. A
   * critical service is never evicted. Returns at once: the pass that stops
   * or starts containers runs beside the caller (follow `onState`/`idle()`).
   */
  setEvictions(tiers: TierEvictions): void {
    const { evictions, changes } = setTiers(this.memory.evictions, tiers, this.memory.desired?.services ?? []);
    this.commit({ memory: { ...this.memory, evictions }, events: evictionEvents(changes), notes: [] });
    this.requestPass();
  }

  /**
   * Stop a service and keep it stopped (an operator's `stop`): the reconcile
   * loop does not bring it back until `startService` or a new version.
   */
  async stopService(service: string): Promise<void> {
    commandTarget(this.memory, service, false);
    this.commit({ memory: { ...this.memory, holds: hold(this.memory.holds, service, this.memory.version) }, events: [], notes: [] });
    await this.operate(service, undefined);
  }

  /** Undo `stopService`: start the service's container (or let the plan create it). */
  async startService(service: string): Promise<void> {
    commandTarget(this.memory, service, true);
    this.releaseHold(service);
    const current = this.currentContainer(service);
    // Started here: a restart policy of `no` alone would leave an exited container down.
    await this.operate(service, current === null ? undefined : () => this.runtime.startContainer(current));
  }

  /** Stop and start the service's container, without counting the stop as a crash. */
  async restartService(service: string): Promise<void> {
    const s = commandTarget(this.memory, service, true);
    const current = this.currentContainer(service);
    if (current === null) throw new TsunaguError('UNKNOWN_SERVICE', `service ${service} has no container to restart`);
    this.releaseHold(service);
    await this.operate(service, async () => {
      await this.runtime.stopContainer(current, s.stopGraceMs);
      await this.runtime.startContainer(current);
    });
  }

  /** Run an operator's action on a service, which the passes leave alone meanwhile, then reconcile. */
  private async operate(service: string, action: (() => Promise<void>) | undefined): Promise<void> {
    if (action !== undefined) {
      this.busy.add(service);
      try {
        await action();
      } finally {
        this.busy.delete(service);
      }
    }
    this.requestPass();
    await this.loop;
  }

  /**
   * The version that passed its probations before the agent restarted (as
   * `onProven` announced it): what a rollback returns to, until a newer
   * version passes. Call before the first `apply`.
   */
  restoreProven(desired: DesiredState, version: string): void {
    this.memory = { ...this.memory, rollout: restoreLastGood(this.memory.rollout, version, desired.services, configHash) };
    this.log.info({ version }, 'the last proven version is the one to return to');
  }

  /** Images a rollback would need: the last good version's (image GC keeps them). */
  rollbackImages(): string[] {
    return rollbackImages(this.memory.rollout);
  }

  /** The operator-stopped services. */
  heldServices(): string[] {
    return heldServices(this.memory.holds);
  }

  private releaseHold(service: string): void {
    this.commit({ memory: { ...this.memory, holds: release(this.memory.holds, service) }, events: [], notes: [] });
  }

  private currentContainer(service: string): string | null {
    return this.lastState.services.find((r) => r.name === service)?.containerId ?? null;
  }

  /**
   * How long the reconcile pass in flight has run, or null between passes.
   * Engine calls have no timeout of their own; a pass that never ends is how
   * a wedged engine call shows (the agent's watchdog reads this).
   */
  reconcilingForMs(): number | null {
    return this.passBegan === undefined ? null : performance.now() - this.passBegan;
  }

  /** The latest state, as last reported. */
  state(): SupervisorState {
    return this.lastState;
  }

  /** The image references of the desired state being applied. */
  desiredImages(): string[] {
    return [...new Set((this.memory.desired?.services ?? []).map((s) => s.image))];
  }

  /** Resolves when no pass and no pull runs: converged, or waiting for a back-off, a health check or a pull retry. */
  async idle(): Promise<void> {
    while (this.loop || this.pulls.size > 0) {
      await this.loop;
      await this.pulls.settled();
    }
  }

  /** Stop reconciling and following events. Containers keep running. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.wake);
    this.pass?.abort();
    this.watching?.abort();
    this.pulls.abortAll();
    await this.idle();
    await this.watchLoop;
    this.watching = undefined;
  }

  private requestPass(): void {
    if (this.memory.desired === undefined || this.stopped) return;
    this.dirty = true;
    this.loop ??= this.runPasses().finally(() => { this.loop = undefined; });
  }

  private async runPasses(): Promise<void> {
    while (this.dirty && !this.stopped) {
      this.dirty = false;
      const pass = new AbortController();
      // Every engine call in flight listens on it, and lanes run one per service at once: a
      // version of many services is no listener leak, and Node's warning would go to stderr.
      setMaxListeners(0, pass.signal);
      this.pass = pass;
      this.passBegan = performance.now();
      try {
        await this.reconcile(pass.signal);
        this.engineFailures = 0;
        this.engineError = null;
      } catch (err) {
        if (pass.signal.aborted) continue; // a newer desired state or shutdown
        const e = asTsunaguError(err);
        this.engineFailures += 1;
        this.engineError = { code: e.code, message: e.message };
        this.log.error({ err: e.toJSON() }, 'reconcile failed');
        this.publish(undefined, false);
      } finally {
        this.passBegan = undefined;
      }
    }
    this.scheduleWake();
  }

  private async reconcile(signal: AbortSignal): Promise<void> {
    if (this.memory.desired === undefined) return;
    for (let round = 0; round < MAX_ROUNDS; round++) {
      // A service that an operator action touched while the state was being read is
      // skipped this round: what was read may show the action half done (a restart's stop).
      const busy = new Set(this.busy);
      const actual = await readActualState(this.runtime, this.scope, this.desiredImages(), signal);
      for (const service of this.busy) busy.add(service);
      // One instant judges the round: a back-off or probation ending just after it is what the wake-up is for.
      const now = this.clock.now();
      this.decidedAt = now;
      const seen = observe(this.memory, actual, { now, busy, restartPolicy: this.policies.restart });
      this.commit(seen);
      // Read after the observation: a rollback swaps a service's configuration for its previous one.
      const { desired, version, updates } = this.memory;
      if (desired === undefined) return;
      this.pulls.keepOnly(new Set(desired.services.map((s) => s.image)));
      const steps = plan(actual, desired.services, planFacts(this.memory, seen, {
        now, scope: this.scope, deviceLabels: this.deviceLabels, pullsInFlight: this.pulls.images(), busy,
      }));
      this.memory = { ...this.memory, updates: noteUpdates(updates, actual, steps) };
      this.publish(actual, steps.length > 0 || this.pulls.size > 0);
      if (steps.length === 0) return;
      const ctx: StepContext = {
        runtime: this.runtime, signal, scope: this.scope, project: desired.project, version: version ?? '',
        pullStallMs: this.options.pullStallMs ?? DEFAULT_PULL_STALL_MS,
        ...(this.options.registryAuth ? { registryAuth: this.options.registryAuth } : {}),
      };
      // Whatever failed, the world differs from what the plan assumed: the next round reads it again.
      await runSteps(steps, {
        actual, desired: desired.services, deviceLabels: this.deviceLabels, ctx, pulls: this.pulls, log: this.log, settle: (step, result) => this.settle(step, result),
      });
    }
    this.log.warn({ rounds: MAX_ROUNDS }, 'reconcile did not converge; waiting for the next trigger');
  }

  private settle(step: Step, result: StepResult): void {
    this.commit(settleStep(this.memory, step, result, this.clock.now(), this.policies));
  }

  private async clearPull(step: Extract<Step, { kind: 'pull' }>, signal: AbortSignal): Promise<PullClearance> {
    const guard = this.options.pullGuard;
    if (guard === undefined) return { kind: 'go' };
    const m = this.memory;
    const request = pullRequest(step, m.desired?.services.find((s) => s.name === step.service), m.updates.get(step.service), this.lastState.services.find((r) => r.name === step.service));
    return guard.clear(request, signal);
  }

  /**
   * Keep a decision: the new memory (the crash back-off saved and the holds
   * handed to the caller when they changed), its log lines, then its events.
   */
  private commit(decision: Decision): void {
    const before = this.memory;
    const next = decision.memory;
    this.memory = next;
    if (next.restartBackoff !== before.restartBackoff) {
      this.guarded('could not save back-off state', () => this.options.backoffStore?.save(next.restartBackoff), (err) => asTsunaguError(err).toJSON());
    }
    if (next.holds !== before.holds) this.guarded('onHeldChange callback threw', () => this.options.onHeldChange?.({ version: next.holds.version, services: heldServices(next.holds) }));
    for (const n of decision.notes) this.log[n.level](n.obj, n.msg);
    for (const e of decision.events) this.emit(e);
  }

  /** Wake up when the earliest back-off of a desired service or image ends, or to retry an unreachable engine. */
  private scheduleWake(): void {
    clearTimeout(this.wake);
    if (this.stopped) return;
    const now = this.clock.now();
    const at = nextWakeAt(this.memory, { decidedAt: this.decidedAt ?? now, now, engineFailures: this.engineFailures });
    if (at === undefined) return;
    this.wake = setTimeout(() => this.requestPass(), Math.max(0, at - now) + 5);
    this.wake.unref();
  }

  private publish(actual: ActualState | undefined, busy: boolean): void {
    const { state, memory, proven } = snapshot(this.memory, {
      actual, previous: this.lastState.services, busy, engineError: this.engineError,
      deviceLabels: this.deviceLabels, pullsInFlight: this.pulls.images(), now: this.clock.now(),
    });
    this.memory = memory;
    if (proven !== undefined) this.guarded('onProven callback threw', () => this.options.onProven?.(proven));
    // Every round publishes; only changes reach the callback (each may become a message to the fleet).
    if (JSON.stringify(state) === JSON.stringify(this.lastState)) return;
    this.lastState = state;
    this.guarded('onState callback threw', () => this.options.onState?.(state));
  }

  private emit(event: SupervisorEvent): void {
    this.guarded('onEvent callback threw', () => this.options.onEvent?.(event));
  }

  /** The caller's callbacks must not throw, nor may a failed save stop the loop: either is logged, and the loop goes on. */
  private guarded(what: string, call: () => void, detail: (err: unknown) => unknown = String): void {
    try {
      call();
    } catch (err) {
      this.log.warn({ err: detail(err) }, what);
    }
  }
}
