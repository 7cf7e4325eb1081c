import type Docker from 'dockerode';
import type { Logger } from '../common/logger.js';
import type { BootstrapFile } from '../protocol/bootstrap.js';
import { asTsunaguError } from '../protocol/errors.js';
import type { Ed25519 } from '../protocol/ed25519.js';
import type { DeviceEventBody } from '../protocol/events/device-events.js';
import { serviceEventOnWire } from '../protocol/events/service-prefix.js';
import type { KeyPairs } from '../protocol/keys.js';
import type { Clock } from './clock.js';
import { RefusalCount } from './commands/refusal-count.js';
import { countByKind, heapFigures, type Diagnostics } from './diagnostics/diagnostics.js';
import type { ServiceControl } from './commands/handlers.js';
import type { AgentConfig } from './config.js';
import { removeOwnedContainers, wipeStateDir } from './retirement.js';
import { deviceFacts } from './enrollment/device-facts.js';
import { enroll } from './enrollment/enroller.js';
import { loadIdentity, newIdentity, saveIdentity, type IdentityFile } from './identity.js';
import { WorkloadReporter } from './reporting/workload-reporter.js';
import type { ResourceProbe } from './resources/probe.js';
import { FileFactsStore } from './resources/facts-cache.js';
import { InventoryService } from './resources/inventory.js';
import { deviceLabelSet } from './resources/device-labels.js';
import type { SupervisorEvent } from './supervisor/supervisor.js';
import { pressureSampleOf, type PressureEvent } from './pressure/pressure-monitor.js';
import type { RawSample } from './resources/probe.js';
import type { StatusFile } from './status/status-file.js';
import { closeSession, openSession, type Session } from './session.js';
import { startWorkload, type Workload } from './workload.js';
import { TSUNAGU_VERSION } from '../common/version.js';

export const AGENT_VERSION = TSUNAGU_VERSION;

/**
 * How long after the services started the machine's static facts are read
 * again when the agent started from the kept copy (agent/resources/facts-cache.ts).
 */
const FACTS_RECHECK_DELAY_MS = 5_000;

export interface AgentDeps {
  config: AgentConfig;
  /** Where the config came from: no container may bind it (it holds the security policy). */
  configFile: string;
  bootstrap: BootstrapFile;
  keys: KeyPairs;
  /** True when the keys were made at this boot: any stored identity belongs to keys that are gone. */
  keysCreated?: boolean;
  ed: Ed25519;
  logger: Logger;
  probe: ResourceProbe;
  /** The container supervisor's controls; default: the supervisor this agent runs. */
  services?: () => ServiceControl | undefined;
  /** The wall clock main.ts chose, handed to everything that dates or judges a message. */
  clock: Clock;
  /** The container engine client main.ts built, shared by the runtime and the image housekeeping. */
  docker: Docker;
  /** The status file `tsunagu-agent status` reads; none in tests that do not look. */
  status?: StatusFile;
  /** The device retired itself (the `retire` command): the process should end. */
  onRetired?: () => void;
}

/**
 * The running agent: an identity (enrolling first if it has none), then a
 * session on the device link with its command channel and reports.
 */
export class Agent {
  private session: Session | undefined;
  private workload: Workload | undefined;
  private readonly inventory: InventoryService;
  private readonly abort = new AbortController();
  private readonly clock: Clock;
  /** The workload's one way to the fleet, whichever session is open. */
  private readonly reports: WorkloadReporter;
  /** Messages refused since the start, across sessions. */
  private readonly refused = new RefusalCount();
  private markRunning: () => void = () => undefined;
  /** Set once a `retire` command is accepted: nothing re-enrolls or reconnects after it. */
  private retiring = false;
  identity: IdentityFile | undefined;
  /**
   * Resolves once the agent's own loops run: the supervisor started, enrollment
   * under way or done. That is systemd's READY: a device waiting in a
   * cupboard for its fleet is running, not starting.
   */
  readonly running: Promise<void>;

  constructor(private readonly deps: AgentDeps) {
    this.clock = deps.clock;
    this.reports = new WorkloadReporter({ serviceEvent: (event) => this.onSupervisorEvent(event), pressureEvent: (event) => this.onPressureEvent(event) });
    this.inventory = new InventoryService({ probe: deps.probe, store: new FileFactsStore(deps.config.stateDir, deps.logger) });
    this.running = new Promise((resolve) => { this.markRunning = resolve; });
  }

  get linkState(): string {
    return this.session?.link.state ?? 'offline';
  }

  /** One line on what the agent does, for `systemctl status`. */
  statusLine(): string {
    const services = this.workload?.supervisor.state();
    const what = services === undefined || services.version === null ? 'no desired state' : `desired version ${services.version} ${services.status}`;
    return `${this.identity === undefined ? 'enrolling' : `link ${this.linkState}`}; ${what}`;
  }

  /** How long the supervisor's reconcile pass in flight has run; null when none runs. */
  reconcilingForMs(): number | null {
    return this.workload?.supervisor.reconcilingForMs() ?? null;
  }

  /** The figures of a SIGUSR2 dump (agent/diagnostics). */
  diagnostics(): Diagnostics {
    const rssBytes = process.memoryUsage.rss();
    const gc = (globalThis as { gc?: unknown }).gc;
    return {
      rssBytes,
      ...heapFigures(() => process.memoryUsage().heapUsed, typeof gc === 'function' ? gc as () => void : undefined),
      activeResources: countByKind(process.getActiveResourcesInfo()),
      linkListeners: this.session?.link.listenerTotal() ?? 0,
      refusedMessages: this.refused.snapshot(),
    };
  }

  /** An event to the fleet (queued in the outbox while offline); only logged before enrollment. */
  emitEvent(event: DeviceEventBody): void {
    if (this.session === undefined) this.deps.logger.info({ event }, 'event not sent: no session yet');
    else this.session.emitEvent(event);
  }

  async start(): Promise<void> {
    const { config, logger } = this.deps;
    // The supervisor starts at once, beside enrollment: containers run from the persisted
    // desired state even when no broker answers, and enrolling does not wait for the inventory.
    const workload = startWorkload({
      config, configFile: this.deps.configFile, logger, clock: this.clock, docker: this.deps.docker, inventory: this.inventory,
      reports: this.reports, ...(this.deps.status === undefined ? {} : { status: this.deps.status }),
    }).then((w) => {
      this.workload = w;
      this.markRunning();
      // Out of the way of going online and of the first pass: the read spawns
      // several processes, which a single-core board feels.
      setTimeout(() => void this.revalidateFacts(w), FACTS_RECHECK_DELAY_MS).unref();
      return w;
    });
    workload.catch(() => undefined); // awaited below; a failed enrollment must not leave it unhandled
    this.identity = loadIdentity(config.stateDir, logger);
    if (this.identity !== undefined && this.deps.keysCreated === true) {
      logger.warn({ deviceId: this.identity.grant.deviceId }, 'stored identity belongs to lost keys; enrolling again');
      this.identity = undefined;
    }
    if (this.identity !== undefined && this.identity.fleetId !== this.deps.bootstrap.fleetId) {
      logger.warn({ stored: this.identity.fleetId, bootstrap: this.deps.bootstrap.fleetId }, 'stored identity belongs to another fleet; enrolling again');
      this.identity = undefined;
    }
    if (this.identity === undefined) this.identity = await this.enroll();
    else logger.info({ deviceId: this.identity.grant.deviceId }, 'identity found; skipping enrollment');
    this.showIdentity(this.identity);
    this.workload = await workload;
    this.session = this.openSession(this.identity);
  }

  private showIdentity(identity: IdentityFile): void {
    this.deps.status?.identity({ deviceId: identity.grant.deviceId, fleetId: identity.fleetId, enrolledAt: identity.enrolledAt });
  }

  /** Started from the kept facts: read the machine again, and act on what changed. */
  private async revalidateFacts(workload: Workload): Promise<void> {
    const { logger } = this.deps;
    if (this.abort.signal.aborted) return;
    try {
      const { inventoryChanged, labelsChanged } = await this.inventory.revalidate();
      if (this.abort.signal.aborted) return;
      if (labelsChanged) {
        const fresh = deviceLabelSet((await this.inventory.report()).labels);
        logger.warn({ before: [...workload.labels], after: [...fresh] }, 'device labels changed since the last start; services are placed again');
        workload.labels.clear();
        for (const label of fresh) workload.labels.add(label);
        workload.supervisor.setDeviceLabels(workload.labels);
      }
      if (inventoryChanged) await this.session?.reporter.resendInventory();
    } catch (err) {
      logger.warn({ err: asTsunaguError(err).toJSON() }, 'could not read the static facts again; the kept ones stay in use');
    }
  }

  private onSupervisorEvent(event: SupervisorEvent): void {
    const session = this.session;
    if (session === undefined) return;
    const traceparent = session.desired.traceparent;
    // Pull progress is frequent and says nothing a log needs.
    if (event.type !== 'pull-progress') this.deps.logger.info({ ...event, ...(traceparent === undefined ? {} : { traceparent }) }, `service ${event.service}: ${event.type}`);
    session.emitEvent(serviceEventOnWire(event, traceparent));
  }

  private onPressureEvent(event: PressureEvent): void {
    this.session?.emitEvent(event);
  }

  /** Every metrics sample also feeds the pressure monitor: pressure costs no reads of its own. */
  private observeSample(workload: Workload | undefined, sample: RawSample): void {
    try {
      workload?.pressure?.observe(pressureSampleOf(sample));
    } catch (err) {
      this.deps.logger.warn({ err: asTsunaguError(err).toJSON() }, 'pressure evaluation failed');
    }
  }

  private async enroll(): Promise<IdentityFile> {
    const { config, logger, bootstrap } = this.deps;
    const claim = { ...deviceFacts(config.enrollment.serial === undefined ? {} : { serial: config.enrollment.serial }), ...(bootstrap.claim.token === undefined ? {} : { claimToken: bootstrap.claim.token }) };
    const grant = await enroll({
      bootstrap, keys: this.deps.keys, claim, ed: this.deps.ed, logger, signal: this.abort.signal,
      startupJitterMs: config.enrollment.startupJitterMs,
      backoff: { baseMs: config.enrollment.backoffBaseMs, capMs: config.enrollment.backoffCapMs }, clock: this.clock,
    });
    return saveIdentity(config.stateDir, newIdentity(bootstrap.fleetId, grant, this.clock.now()));
  }

  private openSession(identity: IdentityFile): Session {
    const { config, logger, bootstrap, keys, ed, probe, status, services } = this.deps;
    const workload = this.workload;
    const session = openSession({
      identity, config, bootstrap, keys, ed, logger, probe, clock: this.clock, inventory: this.inventory,
      agentVersion: AGENT_VERSION, workload, reports: this.reports, refused: this.refused,
      ...(status === undefined ? {} : { status }), ...(services === undefined ? {} : { services }),
      observeSample: (sample) => this.observeSample(workload, sample),
      retire: (replied) => this.beginRetire(replied),
      onAuthFailed: () => {
        // The fleet no longer knows this credential (broker state lost, device
        // removed and re-added): enroll again with the same keys, same device id.
        // Not while retiring: the fleet revokes the account then, on purpose.
        if (!this.retiring) void this.reenroll();
      },
    });
    this.reports.connect(session);
    return session;
  }

  private async reenroll(): Promise<void> {
    await this.closeSession();
    try {
      this.identity = await this.enroll();
      this.showIdentity(this.identity);
      this.session = this.openSession(this.identity);
    } catch (err) {
      if (!this.abort.signal.aborted) this.deps.logger.error({ err: (err as Error).message }, 're-enrollment failed');
    }
  }

  private beginRetire(replied: Promise<void>): void {
    if (this.retiring) return;
    this.retiring = true;
    // The session is closed from the first step on, so no second command could come: whatever
    // fails is logged for whoever holds the device, and the agent ends all the same.
    replied.then(() => this.retire()).catch((err: unknown) => {
      this.deps.logger.error({ err: asTsunaguError(err).toJSON(), stateDir: this.deps.config.stateDir }, 'retiring failed: remove the state directory by hand');
    }).finally(() => this.deps.onRetired?.());
  }

  /**
   * Leave service: close the link (a retained offline status), remove the
   * owned containers, wipe the state dir but for a marker saying the device
   * is retired. Images and named volumes stay: images hold no secret of the
   * device, and what a named volume holds is the owner's to erase or keep.
   */
  private async retire(): Promise<void> {
    const { config, logger } = this.deps;
    const identity = this.identity;
    logger.warn({ deviceId: identity?.grant.deviceId }, 'retiring: removing the managed services and wiping the identity');
    this.abort.abort(new Error('agent retiring'));
    await this.closeSession();
    const workload = this.workload;
    let services: string[] = [];
    if (workload !== undefined) {
      try {
        await workload.supervisor.stop();
        services = await removeOwnedContainers(workload.runtime, config.runtime.scope, 10_000);
      } catch (err) {
        // The identity and secrets go all the same: they matter most once the fleet revokes the device.
        logger.error({ err: asTsunaguError(err).toJSON(), scope: config.runtime.scope }, 'could not remove the services: remove the containers labelled io.tsunagu.scope=<scope> by hand');
      }
    }
    const removed = wipeStateDir(config.stateDir, {
      v: 1, deviceId: identity?.grant.deviceId ?? 'unknown', fleetId: identity?.fleetId ?? this.deps.bootstrap.fleetId, at: this.clock.now(),
    });
    logger.warn({ services, removed }, 'retired: services removed, identity and secrets wiped; the agent stays stopped');
  }

  private async closeSession(): Promise<void> {
    const session = this.session;
    this.session = undefined;
    this.reports.connect(undefined);
    if (session === undefined) return;
    await closeSession(session);
  }

  async stop(): Promise<void> {
    this.abort.abort(new Error('agent stopping'));
    await this.closeSession();
    // Containers keep running: the agent's own restart must not take the workload down.
    await this.workload?.supervisor.stop();
  }
}
