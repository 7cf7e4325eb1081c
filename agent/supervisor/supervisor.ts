import { setMaxListeners } from 'node:events';
import { asTsunaguError, TsunaguError, type ErrorCode } from '../../protocol/errors.js';
import type { ActualState } from './actual-state.js';
import { parseDesiredState, parseDesiredStateYaml } from '../../protocol/compose/compose-schema.js';
import { type DesiredService, type DesiredState } from '../../protocol/compose/desired-service.js';
import type { ContainerRuntime } from './container-runtime.js';
import { followEngineEvents, interpretRuntimeEvent } from './engine-events.js';
import { stillStopped, stoppedByEngine, takeBackFailures, type EngineOutage, type FailureRecord } from './engine-outage.js';
import { OperatorHolds } from './operator-holds.js';
import { Evictions, type EvictionChanges, type TierEvictions } from './evictions.js';
import { configHash } from './config-hash.js';
import { withDeviceDefaults } from './device-defaults.js';
import { BackgroundPulls } from '../pulls/background-pulls.js';
import { executeStep, type StepContext } from './executor.js';
import { runLanes } from './lane-runner.js';
import { deployable, plan, recordExits } from './planner.js';
import { DEFAULT_PULL_STALL_MS } from '../pulls/pull-stall-deadline.js';
import {
  backoffDelay, clampToClock, DEFAULT_PULL_BACKOFF, DEFAULT_RESTART_BACKOFF, recordFailure, recordSuccess,
  type BackoffPolicy, type BackoffState,
} from './restart-backoff.js';
import { resolveStale, type StaleMark } from './runtime-state.js';
import { engineUnknown, overallStatus, serviceReports } from './service-report.js';
import { RolloutGate, type ProbationFailure } from './rollout-gate.js';
import { dependencyGraph, inLanes } from './step-lanes.js';
import { describeStep, type Step } from './steps.js';
import type { Clock, PullClearance, SupervisorEvent, SupervisorLogger, SupervisorOptions, SupervisorState } from './supervisor-io.js';

export type { OverallStatus, ServiceReport, ServiceState } from './service-report.js';
export type { Clock, PullClearance, PullGuard, PullRequest, SupervisorEvent, SupervisorLogger, SupervisorOptions, SupervisorState } from './supervisor-io.js';
export type { BackoffStore } from './backoff-store.js';
export type { EvictableTier, TierEvictions } from './evictions.js';

const silent: SupervisorLogger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };
/** Rounds of read-plan-execute per pass; a plan that never converges is cut here and retried on the next trigger. */
const MAX_ROUNDS = 25;
const ENGINE_RETRY: BackoffPolicy = { initialDelayMs: 1000, maxDelayMs: 30_000, resetAfterMs: 0 };

/**
 * Keeps the engine's containers in line with the desired state: reads the
 * actual state, plans, executes, and repeats until the plan is empty. Between
 * passes it follows the engine's event stream (no polling): an exit, a
 * removal or a health change triggers a new pass, and a timer wakes it when a
 * back-off ends.
 */
export class Supervisor {
  private readonly runtime: ContainerRuntime;
  private readonly log: SupervisorLogger;
  private readonly clock: Clock;
  private readonly scope: string;
  private readonly options: SupervisorOptions;
  private readonly restartPolicy: BackoffPolicy;
  private readonly pullPolicy: BackoffPolicy;
  private deviceLabels: ReadonlySet<string>;
  /** Stopped by an operator: kept down by the planner until `startService` or a new version. */
  private readonly holds: OperatorHolds;
  /** The version the holds were made under; a different version releases them. */
  /** An operator action runs on these services: the planner leaves them alone meanwhile. */
  private readonly busy = new Set<string>();
  /** Kept down by pressure (agent/pressure decides the tiers): removed, not started, not counted as crashes. */
  private readonly evictions = new Evictions();

  private desired: DesiredState | undefined;
  private version: string | null = null;
  private restartBackoff: BackoffState;
  private pullBackoff: BackoffState = {};
  private readonly lastErrors = new Map<string, { code: ErrorCode; message: string }>();
  private engineFailures = 0;
  private engineError: { code: ErrorCode; message: string } | null = null;
  /** Set when the engine's event stream ends; settled by the first pass that reads the engine again. */
  private outage: EngineOutage | undefined;
  /** Changes of the crash back-off over the last shutdown window: those an engine outage takes back. */
  private failureRecords: FailureRecord[] = [];
  /** Containers the engine stopped by going down (id → finish time), until they run again or are replaced. */
  private resuming = new Map<string, number>();
  /** Containers whose start failed on stale runtime state (id, or the name of a container just created): to be replaced. */
  private staleRuntime = new Map<string, StaleMark>();
  /** Back-off between replacements of stale containers, per service; not a crash count. */
  private recoveryBackoff: BackoffState = {};
  /** Health-gated rollout: probations of new configurations and the last good version to return to. */
  private readonly rollout: RolloutGate;
  private probationCheckAt: number | null = null;
  /** Until the first judgement after this start: the probations a restart cut short are resumed there. */
  private resumeProbations = true;
  private lastState: SupervisorState;
  private failureSeq = 0;
  /** Pulls run beside the passes, so that a long download neither blocks nor is cut by reconciling other services. */
  private readonly pulls: BackgroundPulls;
  /**
   * Services being updated to a new image: the images their old containers
   * run (remembered past a kill-then-download that removed them), and why
   * the update was switched to kill-then-download when the disk is short.
   * Cleared once the new container exists, and by a new desired state.
   */
  private readonly updates = new Map<string, { oldImages: string[]; switched?: string }>();

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
    this.restartPolicy = options.restartBackoff ?? DEFAULT_RESTART_BACKOFF;
    this.pullPolicy = options.pullBackoff ?? DEFAULT_PULL_BACKOFF;
    this.deviceLabels = new Set(options.deviceLabels ?? []);
    this.holds = new OperatorHolds(options.held, options.onHeldChange, this.log);
    this.rollout = new RolloutGate(options.probationMs ?? 0);
    const loaded = options.backoffStore?.load() ?? {};
    const now = this.clock.now();
    this.restartBackoff = Object.fromEntries(Object.entries(loaded).map(([k, e]) => [k, clampToClock(e, now, this.restartPolicy)]));
    this.lastState = { version: null, status: 'applying', services: [], error: null };
    this.pulls = new BackgroundPulls({
      now: () => this.clock.now(),
      onProgress: (service, p) => this.emit({ type: 'pull-progress', service, image: p.image, currentBytes: p.currentBytes, totalBytes: p.totalBytes }),
      onDone: (step, outcome) => {
        if (outcome.kind === 'pulled') this.stepSucceeded(step);
        else if (outcome.kind === 'failed') this.stepFailed(step, outcome.error.code, outcome.error.message);
        else if (outcome.kind === 'short') this.stepFailed(step, 'NO_SPACE', `pull ${step.image}: ${outcome.reason}`);
        else this.switchToKillFirst(step.service, step.image, outcome.reason);
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
        this.outage ??= { at: this.clock.now(), windowMs: this.shutdownWindowMs() };
        this.rollout.engineLost();
      },
      onReconnect: () => this.requestPass(),
    });
  }

  /**
   * Validate and adopt a new desired state (YAML text or a parsed object),
   * interrupt the pass in flight, and reconcile. Resolves with the state once
   * the passes are done: everything that can be done without waiting is done,
   * while pulls may still run (a download can take minutes; a caller answering
   * a request must not wait for it). Follow `onState`, or await `idle()`, for
   * the outcome. An invalid document throws a TsunaguError and changes nothing.
   */
  async apply(doc: string | object, version: string): Promise<SupervisorState> {
    const desired = this.parse(doc);
    if (this.stopped) throw new TsunaguError('CANCELLED', 'the supervisor is stopped');
    this.holds.releaseAllUnless(version);
    this.desired = desired;
    this.announce(this.evictions.refresh(desired.services));
    this.version = version;
    this.lastErrors.clear();
    this.recoveryBackoff = {};
    this.rollout.reset();
    this.updates.clear();
    this.pullBackoff = {}; // a new desired state is a reason to try a failed pull again now
    this.pass?.abort();
    this.requestPass();
    await this.loop;
    return this.state();
  }

  /** A document as this device runs it: validated, normalised, the device's defaults filled in. */
  private parse(doc: string | object): DesiredState {
    const parseOptions = this.options.containerLogs === undefined ? {} : { containerLogs: this.options.containerLogs };
    const parsed = typeof doc === 'string' ? parseDesiredStateYaml(doc, parseOptions) : parseDesiredState(doc, parseOptions);
    return this.options.deviceDefaults === undefined ? parsed : withDeviceDefaults(parsed, this.options.deviceDefaults);
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
    this.announce(this.evictions.setTiers(tiers, this.desired?.services ?? []));
    this.requestPass();
  }

  private announce(changes: EvictionChanges): void {
    for (const { service, reason } of changes.evicted) this.emit({ type: 'evicted', service, reason });
    for (const service of changes.restored) this.emit({ type: 'restored', service });
  }

  /** Operator starts refuse an evicted service: started, it would only be stopped again by the next pass. */
  private refuseIfEvicted(service: string): void {
    const reason = this.evictions.reasonFor(service);
    if (reason !== undefined) throw new TsunaguError('PRESSURE_EVICTED', `service ${service} is evicted (${reason}); it starts again when the pressure clears`);
  }

  /**
   * Stop a service and keep it stopped (an operator's `stop`): the reconcile
   * loop does not bring it back until `startService` or a new version.
   */
  async stopService(service: string): Promise<void> {
    this.desiredService(service);
    this.holds.hold(service, this.version);
    this.requestPass();
    await this.loop;
  }

  /** Undo `stopService`: start the service's container (or let the plan create it). */
  async startService(service: string): Promise<void> {
    this.desiredService(service);
    this.refuseIfEvicted(service);
    this.holds.release(service);
    const current = this.currentContainer(service);
    if (current !== null) {
      // Started here: a restart policy of `no` alone would leave an exited container down.
      this.busy.add(service);
      try {
        await this.runtime.startContainer(current);
      } finally {
        this.busy.delete(service);
      }
    }
    this.requestPass();
    await this.loop;
  }

  /** Stop and start the service's container, without counting the stop as a crash. */
  async restartService(service: string): Promise<void> {
    const s = this.desiredService(service);
    this.refuseIfEvicted(service);
    const current = this.currentContainer(service);
    if (current === null) throw new TsunaguError('UNKNOWN_SERVICE', `service ${service} has no container to restart`);
    this.holds.release(service);
    this.busy.add(service);
    try {
      await this.runtime.stopContainer(current, s.stopGraceMs);
      await this.runtime.startContainer(current);
    } finally {
      this.busy.delete(service);
    }
    this.requestPass();
    await this.loop;
  }

  /**
   * The version that passed its probations before the agent restarted (as
   * `onProven` announced it): what a rollback returns to, until a newer
   * version passes. Call before the first `apply`. A document that no longer
   * parses is logged and ignored (a rollback then has nothing to return to).
   */
  restoreProven(doc: string | object, version: string): void {
    try {
      const services = this.parse(doc).services;
      this.rollout.restore(version, services, configHash);
      this.log.info({ version }, 'the last proven version is the one to return to');
    } catch (err) {
      this.log.warn({ version, err: asTsunaguError(err).toJSON() }, 'the last proven version does not parse; a rollback has nothing to return to');
    }
  }

  /** Images a rollback would need: the last good version's (image GC keeps them). */
  rollbackImages(): string[] {
    return this.rollout.rollbackImages();
  }

  /** The operator-stopped services. */
  heldServices(): string[] {
    return this.holds.services();
  }

  private desiredService(service: string): DesiredService {
    const s = this.desired?.services.find((x) => x.name === service);
    if (s === undefined) throw new TsunaguError('UNKNOWN_SERVICE', `service ${service} is not part of the desired state`);
    return s;
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
    return [...new Set((this.desired?.services ?? []).map((s) => s.image))];
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
    if (this.desired === undefined || this.stopped) return;
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

  private async readActual(signal: AbortSignal): Promise<ActualState> {
    const containers = await this.runtime.listOwnedContainers(this.scope, signal);
    const refs = new Set([...(this.desired?.services ?? []).map((s) => s.image), ...containers.map((c) => c.image)]);
    const images: ActualState['images'] = {};
    for (const ref of refs) {
      const info = await this.runtime.inspectImage(ref, signal);
      if (info) images[ref] = info;
    }
    return { containers, images };
  }

  private async reconcile(signal: AbortSignal): Promise<void> {
    if (this.desired === undefined) return;
    for (let round = 0; round < MAX_ROUNDS; round++) {
      // A service that an operator action touched while the state was being read is
      // skipped this round: what was read may show the action half done (a restart's stop).
      const busy = new Set(this.busy);
      const actual = await this.readActual(signal);
      for (const service of this.busy) busy.add(service);
      const resume = this.settleOutage(actual);
      this.staleRuntime = resolveStale(actual, this.staleRuntime);
      const staleRuntime = new Set(this.staleRuntime.keys());
      this.noteExits(actual, this.desired, busy, resume, staleRuntime);
      this.judgeProbation(actual);
      // Read after the judgement: a rollback swaps a service's configuration for its previous one.
      const desired = this.desired;
      this.pulls.keepOnly(new Set(desired.services.map((s) => s.image)));
      const steps = plan(actual, desired.services, {
        now: this.clock.now(), scope: this.scope, restartBackoff: this.restartBackoff, pullBackoff: this.pullBackoff, deviceLabels: this.deviceLabels,
        pullsInFlight: this.pulls.images(), held: this.holds.set, evicted: new Set(this.evictions.services.keys()), busy, resume,
        killFirst: this.switchedServices(), staleRuntime, recoveryBackoff: this.recoveryBackoff,
      });
      this.noteUpdates(actual, steps);
      this.publish(actual, steps.length > 0 || this.pulls.size > 0);
      if (steps.length === 0) return;
      const ctx: StepContext = {
        runtime: this.runtime, signal, scope: this.scope, project: desired.project, version: this.version ?? '',
        pullStallMs: this.options.pullStallMs ?? DEFAULT_PULL_STALL_MS,
        ...(this.options.registryAuth ? { registryAuth: this.options.registryAuth } : {}),
      };
      for (const step of steps) {
        if (step.kind !== 'pull') continue;
        this.log.debug({ step: describeStep(step) }, 'step');
        this.pulls.start(step, ctx);
      }
      // Services are replaced side by side, each down only for its own swap (step-lanes.ts);
      // whatever failed, the world differs from what the plan assumed: the next round reads it again.
      const wanted = new Set(desired.services.filter((s) => deployable(s, this.deviceLabels)).map((s) => s.name));
      await runLanes(inLanes(steps, dependencyGraph(actual, desired.services), wanted), async (step) => {
        this.log.debug({ step: describeStep(step) }, 'step');
        try {
          await executeStep(step, ctx);
          this.stepSucceeded(step);
          return true;
        } catch (err) {
          if (signal.aborted) throw err;
          const e = asTsunaguError(err);
          if (e.code === 'RUNTIME_UNAVAILABLE') throw e;
          if (step.kind === 'start' && e.details?.staleRuntimeState === true) this.staleStart(step, e.message);
          else this.stepFailed(step, e.code, e.message);
          return false;
        }
      });
    }
    this.log.warn({ rounds: MAX_ROUNDS }, 'reconcile did not converge; waiting for the next trigger');
  }

  private stepSucceeded(step: Step): void {
    if (step.kind === 'create') this.updates.delete(step.service);
    if (step.kind === 'remove') this.replaced(step);
    if (step.kind === 'start') {
      const entry = recordSuccess(this.recoveryBackoff[step.service]);
      if (entry) this.recoveryBackoff = { ...this.recoveryBackoff, [step.service]: entry };
    }
    if (step.kind === 'pull') {
      const entry = recordSuccess(this.pullBackoff[step.image]);
      if (entry) this.pullBackoff = { ...this.pullBackoff, [step.image]: entry };
      this.emit({ type: 'pulled', service: step.service, image: step.image });
    }
    if (step.kind === 'create') this.rollout.created(step.service, step.configHash);
    if (step.kind === 'pull' || step.kind === 'create' || step.kind === 'start') this.lastErrors.delete(step.service);
  }

  /** How long an engine going down takes to stop the containers before its event stream ends. */
  private shutdownWindowMs(): number {
    return Math.max(0, ...(this.desired?.services ?? []).map((s) => s.stopGraceMs)) + 5_000;
  }

  /** Services on probation that failed go back to their last good configuration (if they have one). */
  private judgeProbation(actual: ActualState): void {
    const desired = this.desired;
    if (desired === undefined) return;
    if (this.resumeProbations && this.version !== null) {
      this.resumeProbations = false;
      this.rollout.resume(actual, desired.services, this.version, configHash);
    }
    const { failures, nextCheckAt } = this.rollout.judge(actual, desired.services, this.restartBackoff, this.clock.now(), this.shutdownWindowMs());
    this.probationCheckAt = nextCheckAt;
    for (const f of failures) this.rollBack(f);
  }

  private rollBack(f: ProbationFailure): void {
    const rolledBackTo = f.previous === undefined ? null : f.previousVersion ?? null;
    this.log.warn({ service: f.service, reason: f.reason, rolledBackTo }, rolledBackTo === null
      ? 'new service failed its probation; there is no earlier version to return to'
      : 'new configuration failed its probation; rolling back');
    this.emit({ type: 'probation-failed', service: f.service, reason: f.reason, version: this.version, rolledBackTo });
    const previous = f.previous;
    const desired = this.desired;
    if (previous === undefined || desired === undefined) return;
    this.desired = { ...desired, services: desired.services.map((s) => (s.name === f.service ? previous : s)) };
  }

  /**
   * A failed pull keeps whatever runs now and retries with the pull back-off;
   * any other failed step puts the service into crash-loop back-off, so one
   * broken service cannot block the others.
   */
  private stepFailed(step: Step, code: ErrorCode, message: string): void {
    const now = this.clock.now();
    this.lastErrors.set(step.service, { code, message });
    const key = `${step.kind}#${++this.failureSeq}`;
    if (step.kind === 'pull') {
      const entry = recordFailure(this.pullBackoff[step.image], { at: now, key }, this.pullPolicy);
      this.pullBackoff = { ...this.pullBackoff, [step.image]: entry };
      this.log.warn({ image: step.image, err: message, retryAt: entry.nextAttemptAt }, 'pull failed');
      this.emit({ type: 'pull-failed', service: step.service, image: step.image, code, error: message, retryAt: entry.nextAttemptAt });
      return;
    }
    const service = this.desired?.services.find((s) => s.name === step.service);
    const hash = step.kind === 'create' ? step.configHash : service ? configHash(service) : null;
    const entry = recordFailure(this.restartBackoff[step.service], { at: now, key, configHash: hash }, this.restartPolicy);
    this.countFailures({ ...this.restartBackoff, [step.service]: entry });
    this.log.warn({ step: describeStep(step), err: message, retryAt: entry.nextAttemptAt }, 'step failed');
    this.emit({ type: 'step-failed', service: step.service, step: describeStep(step), error: message, retryAt: entry.nextAttemptAt });
  }

  /**
   * A start refused because the container's runtime state is stale (a task
   * left in containerd by an engine that stopped during the start): starting
   * it again fails the same way, so the planner replaces it (removed, created
   * anew from the desired spec) once the recovery back-off allows. Not a
   * crash of the service: neither its restart count nor its probation sees it.
   */
  private staleStart(step: Extract<Step, { kind: 'start' }>, message: string): void {
    const now = this.clock.now();
    this.staleRuntime.set(step.container, { service: step.service, reason: message });
    this.lastErrors.set(step.service, { code: 'RUNTIME_FAILED', message });
    const entry = recordFailure(this.recoveryBackoff[step.service], { at: now, key: `stale#${++this.failureSeq}` }, this.restartPolicy);
    this.recoveryBackoff = { ...this.recoveryBackoff, [step.service]: entry };
    this.log.warn({ step: describeStep(step), err: message, retryAt: entry.nextAttemptAt }, 'start failed on stale runtime state; the container will be replaced');
    this.emit({ type: 'step-failed', service: step.service, step: describeStep(step), error: message, retryAt: entry.nextAttemptAt });
  }

  /** A stale container removed: the recovery is under way (its replacement is created next). */
  private replaced(step: Extract<Step, { kind: 'remove' }>): void {
    const mark = this.staleRuntime.get(step.containerId);
    if (mark === undefined) return;
    this.staleRuntime.delete(step.containerId);
    this.log.warn({ service: step.service, containerId: step.containerId, reason: mark.reason }, 'removed a container with stale runtime state; creating it anew');
    this.emit({ type: 'recreated', service: step.service, containerId: step.containerId, reason: mark.reason });
  }

  /** Remember what the old containers of a service about to pull run: a kill-then-download removes them before the pull. */
  private noteUpdates(actual: ActualState, steps: Step[]): void {
    for (const step of steps) {
      if (step.kind !== 'pull') continue;
      const old = [...new Set(actual.containers.filter((c) => c.service === step.service && c.image !== step.image).map((c) => c.image))];
      const known = this.updates.get(step.service);
      if (old.length > 0) this.updates.set(step.service, { ...known, oldImages: [...new Set([...(known?.oldImages ?? []), ...old])] });
    }
  }

  private switchedServices(): Set<string> {
    return new Set([...this.updates].filter(([, u]) => u.switched !== undefined).map(([name]) => name));
  }

  private async clearPull(step: Extract<Step, { kind: 'pull' }>, signal: AbortSignal): Promise<PullClearance> {
    const guard = this.options.pullGuard;
    if (guard === undefined) return { kind: 'go' };
    const service = this.desired?.services.find((s) => s.name === step.service);
    const update = this.updates.get(step.service);
    const live = this.lastState.services.find((r) => r.name === step.service);
    // Down already: declared kill-then-download, a switch made before, or no old container at all.
    const oldContainersGone = service?.tsunagu.update === 'kill-then-download' || update?.switched !== undefined || live?.containerId === null || live === undefined;
    return guard.clear({ service: step.service, image: step.image, oldImages: update?.oldImages ?? [], oldContainersGone }, signal);
  }

  private switchToKillFirst(service: string, image: string, reason: string): void {
    const known = this.updates.get(service);
    this.updates.set(service, { oldImages: known?.oldImages ?? [], switched: reason });
    this.log.warn({ service, image, reason }, 'disk short: this update runs kill-then-download');
    this.emit({ type: 'update-switched', service, image, strategy: 'kill-then-download', reason });
  }

  /**
   * After the engine was lost and is read again: the containers it stopped by
   * going down, to be started again (returned on every pass until they run
   * again or are replaced). The failures counted within the shutdown's window
   * (their exits, and the steps the engine failed on its way down) are taken
   * back: they would otherwise count as crashes, fail probations and hold the
   * services back.
   */
  private settleOutage(actual: ActualState): ReadonlySet<string> {
    const outage = this.outage;
    if (outage !== undefined) {
      this.outage = undefined;
      const stopped = stoppedByEngine(actual, outage);
      for (const c of actual.containers) if (stopped.has(c.id) && c.finishedAt !== null) this.resuming.set(c.id, c.finishedAt);
      const next = takeBackFailures(this.restartBackoff, this.failureRecords, outage);
      this.failureRecords = [];
      if (next !== this.restartBackoff) {
        this.log.info({ services: Object.keys(this.restartBackoff).filter((k) => next[k] !== this.restartBackoff[k]) }, 'failures seen while the engine went down are not counted');
        this.setRestartBackoff(next);
      }
      if (stopped.size > 0) this.log.info({ containers: stopped.size }, 'the engine came back: starting the containers it stopped');
    }
    this.resuming = stillStopped(actual, this.resuming);
    return new Set(this.resuming.keys());
  }

  private noteExits(actual: ActualState, desired: DesiredState, busy: ReadonlySet<string>, stoppedByEngine: ReadonlySet<string>, staleRuntime: ReadonlySet<string>): void {
    // An exit an operator caused (stop, restart) is not a crash, nor is one the engine caused by going down,
    // nor one pressure caused (an eviction stops a container before removing it).
    const watched = desired.services.filter((s) => !this.holds.has(s.name) && !busy.has(s.name) && !this.evictions.services.has(s.name));
    const next = recordExits(actual, watched, this.restartBackoff, this.clock.now(), this.restartPolicy, stoppedByEngine, staleRuntime);
    if (next === this.restartBackoff) return;
    for (const [service, entry] of Object.entries(next)) {
      if (entry === this.restartBackoff[service]) continue;
      this.emit({ type: 'backoff', service, restartCount: entry.total, exitCode: entry.lastExitCode, retryAt: entry.nextAttemptAt });
    }
    this.countFailures(next);
  }

  /**
   * Adopt a back-off with new failures in it, remembering what each changed
   * service had before: an engine outage whose window covers them takes them back.
   */
  private countFailures(next: BackoffState): void {
    const now = this.clock.now();
    // Nothing is dropped while an outage waits to be settled: its window reaches back from when it began.
    if (this.outage === undefined) this.failureRecords = this.failureRecords.filter((r) => r.at >= now - this.shutdownWindowMs());
    for (const service of Object.keys(next)) {
      if (next[service] !== this.restartBackoff[service]) this.failureRecords.push({ at: now, service, before: this.restartBackoff[service] });
    }
    this.setRestartBackoff(next);
  }

  private setRestartBackoff(next: BackoffState): void {
    this.restartBackoff = next;
    try {
      this.options.backoffStore?.save(next);
    } catch (err) {
      this.log.warn({ err: asTsunaguError(err).toJSON() }, 'could not save back-off state');
    }
  }

  /** Wake up when the earliest back-off of a desired service or image ends, or to retry an unreachable engine. */
  private scheduleWake(): void {
    clearTimeout(this.wake);
    if (this.stopped || this.desired === undefined) return;
    const now = this.clock.now();
    const times = [
      ...this.desired.services.map((s) => this.restartBackoff[s.name]?.nextAttemptAt ?? 0),
      ...this.desired.services.map((s) => this.recoveryBackoff[s.name]?.nextAttemptAt ?? 0),
      ...this.desired.services.map((s) => this.pullBackoff[s.image]?.nextAttemptAt ?? 0),
    ].filter((t) => t > now);
    if (this.engineFailures > 0) times.push(now + backoffDelay(this.engineFailures, ENGINE_RETRY));
    if (this.probationCheckAt !== null && this.probationCheckAt > now) times.push(this.probationCheckAt);
    if (times.length === 0) return;
    this.wake = setTimeout(() => this.requestPass(), Math.min(...times) - now + 5);
    this.wake.unref();
  }

  private publish(actual: ActualState | undefined, busy: boolean): void {
    const desired = this.desired?.services ?? [];
    const switched = new Map([...this.updates].flatMap(([name, u]) => (u.switched === undefined ? [] : [[name, u.switched] as const])));
    const services = actual === undefined ? engineUnknown(this.lastState.services, desired) : serviceReports({
      actual, desired, restartBackoff: this.restartBackoff, pullBackoff: this.pullBackoff,
      lastErrors: this.lastErrors, deviceLabels: this.deviceLabels, pullsInFlight: this.pulls.images(), held: this.holds.set,
      evicted: this.evictions.services, now: this.clock.now(), switchedUpdates: switched,
    });
    let status = overallStatus(services, desired, busy, this.engineError !== null);
    let error = this.engineError;
    const failures = this.rollout.failures();
    if (failures.length > 0 && error === null) {
      // The fleet must see the version as failed, not applied, even where the rollback runs well.
      status = 'failed';
      const why = (f: ProbationFailure): string => `${f.service}: ${f.reason}; ${f.previous === undefined ? 'no earlier version to return to' : `rolled back to its configuration of version ${f.previousVersion ?? '?'}`}`;
      error = { code: 'PROBATION_FAILED', message: failures.map(why).join('; ') };
      for (const f of failures) {
        const i = services.findIndex((r) => r.name === f.service);
        const r = services[i];
        if (r !== undefined) services[i] = { ...r, lastError: { code: 'PROBATION_FAILED', message: why(f) } };
      }
    } else if (status === 'synced' && this.rollout.pending) {
      status = 'applying'; // converged, but the new configurations have not proven themselves yet
    }
    if (status === 'synced' && this.version !== null && this.rollout.succeeded(this.version, desired, configHash)) {
      try {
        this.options.onProven?.(this.version);
      } catch (err) {
        this.log.warn({ err: String(err) }, 'onProven callback threw');
      }
    }
    const next: SupervisorState = { version: this.version, status, services, error };
    // Every round publishes; only changes reach the callback (each may become a message to the fleet).
    if (JSON.stringify(next) === JSON.stringify(this.lastState)) return;
    this.lastState = next;
    try {
      this.options.onState?.(this.lastState);
    } catch (err) {
      this.log.warn({ err: String(err) }, 'onState callback threw');
    }
  }

  private emit(event: SupervisorEvent): void {
    try {
      this.options.onEvent?.(event);
    } catch (err) {
      this.log.warn({ err: String(err) }, 'onEvent callback threw');
    }
  }
}
