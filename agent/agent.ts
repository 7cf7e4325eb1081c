import { existsSync } from 'node:fs';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../common/logger.js';
import type { BootstrapFile } from '../protocol/bootstrap.js';
import { DESIRED_LIMITS, DESIRED_TYPE, MAX_LOG_BYTES } from '../protocol/commands.js';
import type { RegistryCredentials } from '../protocol/desired.js';
import { asTsunaguError } from '../protocol/errors.js';
import type { Ed25519 } from '../protocol/ed25519.js';
import type { SignedPayload } from '../protocol/envelope.js';
import { keyId, type KeyPairs } from '../protocol/keys.js';
import { clockTrust } from './clock-trust.js';
import { RefusalCount } from './commands/refusal-count.js';
import { countByKind, heapFigures, type Diagnostics } from './diagnostics/diagnostics.js';
import { CommandChannel } from './commands/command-channel.js';
import { CommandStore } from './commands/command-store.js';
import { commandHandlers, type ServiceControl } from './commands/handlers.js';
import type { AgentConfig } from './config.js';
import { Credentials } from './credentials.js';
import { removeOwnedContainers, wipeStateDir } from './retirement.js';
import { deviceFacts } from './enrollment/device-facts.js';
import { enroll, fleetKeysOf } from './enrollment/enroller.js';
import { loadIdentity, newIdentity, saveIdentity, type IdentityFile } from './identity.js';
import { DeviceLink } from './link/device-link.js';
import { Outbound } from './link/outbound.js';
import { Outbox } from './link/outbox.js';
import { Reporter } from './reporting/reporter.js';
import type { ResourceProbe } from './resources/probe.js';
import { FileFactsStore } from './resources/facts-cache.js';
import { InventoryService } from './resources/inventory.js';
import { MetricsSampler } from './resources/metrics-sampler.js';
import { ContainerUsage } from './resources/container-usage.js';
import { DesiredChannel } from './desired/desired-channel.js';
import { DesiredStore } from './desired/desired-store.js';
import { deviceLabelSet } from './resources/device-labels.js';
import type { AdmissionCheck } from './admission/admission.js';
import { capabilityLabelsCheck } from './admission/capability-labels.js';
import { hostDevicesCheck } from './admission/host-devices.js';
import { memoryFitCheck } from './admission/memory-fit.js';
import { hostView, protectedHostPaths, securityPolicyCheck } from './admission/security-policy-check.js';
import { withDeviceDefaults, type DeviceDefaults } from './supervisor/device-defaults.js';
import { ImageHousekeeping } from './images/image-housekeeping.js';
import type { ReportedDisk } from '../protocol/desired.js';
import { supervisorServiceControl } from './commands/service-control.js';
import { registryAuthFor } from './images/registry-auth.js';
import { FileBackoffStore } from './supervisor/backoff-store.js';
import { DockerRuntime } from './supervisor/docker-runtime.js';
import { defaultSocket } from './supervisor/engine-errors.js';
import { Supervisor, type SupervisorEvent } from './supervisor/supervisor.js';
import { PressureMonitor, pressureSampleOf, type PressureEvent } from './pressure/pressure-monitor.js';
import type { RawSample } from './resources/probe.js';
import type { StatusFile } from './status/status-file.js';
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
  clock?: () => number;
  /** The status file `tsunagu-agent status` reads; none in tests that do not look. */
  status?: StatusFile;
  /** The device retired itself (the `retire` command): the process should end. */
  onRetired?: () => void;
}

/** What exists while the device has an identity: link, outbound queue, commands, reports. */
interface Session {
  link: DeviceLink;
  outbox: Outbox;
  reporter: Reporter;
  desired: DesiredChannel;
  emitEvent: (event: Record<string, unknown>) => void;
}

/** What runs whether or not the device has an identity or a broker: the containers. */
interface Workload {
  runtime: DockerRuntime;
  supervisor: Supervisor;
  store: DesiredStore;
  /**
   * The device's capability labels. One set, updated in place when the
   * machine's facts are read again and differ from the kept copy the agent
   * started with: admission, image checks and the desired channel read it at
   * each use; the supervisor is told (setDeviceLabels).
   */
  labels: Set<string>;
  usage: ContainerUsage;
  /** Registry credentials of the accepted desired state; in memory only. */
  secrets: { registries: RegistryCredentials };
  engineVersion: string | undefined;
  /** What a desired state must pass before it is accepted, in order (agent/admission). */
  admission: AdmissionCheck[];
  /** Evicts by priority under memory or thermal pressure; absent when `pressure.enabled` is false. */
  pressure: PressureMonitor | undefined;
  /** Image records, garbage collection, the disk check before pulls (agent/images). */
  housekeeping: ImageHousekeeping;
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
  private readonly clock: () => number;
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
    this.clock = deps.clock ?? Date.now;
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
  emitEvent(event: Record<string, unknown>): void {
    if (this.session === undefined) this.deps.logger.info({ event }, 'event not sent: no session yet');
    else this.session.emitEvent(event);
  }

  async start(): Promise<void> {
    const { config, logger } = this.deps;
    // The supervisor starts at once, beside enrollment: containers run from the persisted
    // desired state even when no broker answers, and enrolling does not wait for the inventory.
    const workload = this.startWorkload().then((w) => {
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

  private async startWorkload(): Promise<Workload> {
    const { config, logger } = this.deps;
    const labels = new Set<string>();
    const began = this.clock();
    try {
      for (const label of deviceLabelSet((await this.inventory.report()).labels)) labels.add(label);
      logger.debug({ ms: this.clock() - began, labels: labels.size }, 'device labels read');
    } catch (err) {
      logger.warn({ err: asTsunaguError(err).toJSON() }, 'could not read the inventory; services that require labels are not deployed');
    }
    const engineSocket = config.runtime.socket ?? defaultSocket();
    const runtime = new DockerRuntime({ socketPath: engineSocket });
    const store = new DesiredStore(config.stateDir, logger);
    const holds = store.loadHolds();
    const secrets: { registries: RegistryCredentials } = { registries: {} };
    const deviceDefaults: DeviceDefaults = { memoryLimitBytes: config.memory.defaultLimit };
    const housekeeping = new ImageHousekeeping({
      disk: config.disk, stateDir: config.stateDir, ...(config.runtime.socket === undefined ? {} : { socketPath: config.runtime.socket }), deviceLabels: labels, log: logger.child({ component: 'images' }),
      auth: (ref) => registryAuthFor(secrets.registries, ref),
      emit: (event) => {
        this.session?.emitEvent(event);
        if (event.type === 'gc') this.session?.desired.republish();
      },
    });
    const supervisor = new Supervisor({
      runtime, logger: logger.child({ component: 'supervisor' }), scope: config.runtime.scope, deviceLabels: labels, deviceDefaults,
      probationMs: config.rollout.probationMs, pullStallMs: config.runtime.pullStallMs,
      onProven: (version) => this.session?.desired.onProven(version),
      backoffStore: new FileBackoffStore(join(config.stateDir, 'backoff.json'), logger),
      registryAuth: (image) => registryAuthFor(secrets.registries, image),
      ...(holds.version === null ? {} : { held: { version: String(holds.version), services: holds.services } }),
      onHeldChange: ({ version, services }) => store.saveHolds({ v: 1, version: version === null ? null : Number(version), services }),
      onState: (state) => {
        housekeeping.onSupervisorState(state);
        this.deps.status?.workload(state);
        this.session?.desired.onSupervisorState(state);
      },
      onEvent: (event) => {
        housekeeping.onSupervisorEvent(event);
        this.onSupervisorEvent(event);
      },
      containerLogs: config.disk.containerLogs,
      pullGuard: housekeeping.pullGuard,
    });
    housekeeping.attach(supervisor);
    supervisor.start();
    this.deps.status?.workload(supervisor.state());
    const pressure = config.pressure.enabled ? new PressureMonitor({
      config: config.pressure, target: supervisor, logger: logger.child({ component: 'pressure' }),
      onEvent: (event) => this.onPressureEvent(event),
    }) : undefined;
    logger.info({ policy: config.policy }, 'device security policy');
    // All findings are reported together; the first check's code leads.
    const admission: AdmissionCheck[] = [
      // First: a refusal by the device's own policy is the reason an operator must see.
      securityPolicyCheck(config.policy, hostView(protectedHostPaths({ engineSocket, stateDir: config.stateDir, configFile: this.deps.configFile }))),
      capabilityLabelsCheck(labels),
      hostDevicesCheck(existsSync),
      memoryFitCheck({ totalBytes: totalmem(), reserveBytes: config.memory.reserve }, (d) => withDeviceDefaults(d, deviceDefaults)),
      ...housekeeping.admission,
    ];
    const workload: Workload = { runtime, supervisor, store, labels, usage: new ContainerUsage(), secrets, engineVersion: undefined, admission, pressure, housekeeping };
    void this.readEngineVersion(workload);
    return workload;
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

  private async readEngineVersion(workload: Workload): Promise<string | undefined> {
    if (workload.engineVersion !== undefined) return workload.engineVersion;
    try {
      workload.engineVersion = `docker ${await workload.runtime.engineVersion()}`;
    } catch (err) {
      this.deps.logger.warn({ err: asTsunaguError(err).toJSON() }, 'container engine not reachable yet');
    }
    return workload.engineVersion;
  }

  private onSupervisorEvent(event: SupervisorEvent): void {
    const session = this.session;
    if (session === undefined) return;
    const traceparent = session.desired.traceparent;
    // Pull progress is frequent and says nothing a log needs.
    if (event.type !== 'pull-progress') this.deps.logger.info({ ...event, ...(traceparent === undefined ? {} : { traceparent }) }, `service ${event.service}: ${event.type}`);
    session.emitEvent({ ...event, type: `service-${event.type}`, ...(traceparent === undefined ? {} : { traceparent }) });
  }

  private onPressureEvent(event: PressureEvent): void {
    this.session?.emitEvent({ ...event });
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
      backoff: { baseMs: config.enrollment.backoffBaseMs, capMs: config.enrollment.backoffCapMs },
    });
    return saveIdentity(config.stateDir, newIdentity(bootstrap.fleetId, grant, this.clock()));
  }

  private openSession(identity: IdentityFile): Session {
    const { config, logger, bootstrap, keys, ed } = this.deps;
    const credentials = new Credentials(identity, config.stateDir, logger);
    const link = new DeviceLink({
      deviceId: identity.grant.deviceId,
      clientId: identity.grant.clientId,
      endpoint: { url: bootstrap.broker.url, ca: bootstrap.broker.ca, protocolVersion: bootstrap.broker.protocolVersion, username: identity.grant.username, password: identity.grant.password },
      password: (attempt) => credentials.passwordFor(attempt),
      onConnectedWith: (password) => credentials.connectedWith(password),
      logger,
      agentVersion: AGENT_VERSION,
      keepaliveSeconds: config.link.keepaliveSeconds,
      backoff: { baseMs: config.link.backoffBaseMs, capMs: config.link.backoffCapMs, floorMs: config.link.reconnectSpreadMs },
    });
    const outbox = Outbox.open({ dir: join(config.stateDir, 'outbox'), maxBytes: config.outbox.maxBytes });
    for (const problem of outbox.recovered) logger.error({ code: problem.code }, problem.message);
    const outbound = new Outbound(link, outbox, logger);
    const emitEvent = (event: Record<string, unknown>): void => {
      if (event.type === 'message-refused' && typeof event.code === 'string') this.refused.add(event.code);
      const traceparent = typeof event.traceparent === 'string' ? event.traceparent : undefined;
      void outbound.send({ kind: 'events', class: 'event', payload: JSON.stringify({ v: 1, at: this.clock(), ...event }), traceparent });
    };
    const workload = this.workload;
    const reporter = new Reporter({
      inventory: this.inventory,
      sampler: new MetricsSampler(this.deps.probe, (sample) => this.observeSample(workload, sample)),
      outbound, logger,
      refused: () => this.refused.snapshot(),
      intervalMs: config.reports.metricsIntervalMs,
      sampleMs: config.reports.sampleIntervalMs,
      ...(workload === undefined ? {} : {
        runtimeVersion: () => {
          if (workload.engineVersion === undefined) void this.readEngineVersion(workload);
          return workload.engineVersion;
        },
        serviceUsage: () => Promise.resolve(workload.usage.sample(workload.supervisor.state().services)),
        onSample: () => void workload.housekeeping.collector.collect('disk-sample'),
      }),
    });
    const fleet = fleetKeysOf(bootstrap);
    const services = this.deps.services ?? (() => (workload === undefined ? undefined
      : supervisorServiceControl(workload.supervisor, (id, tail) => workload.runtime.containerLogs(id, tail))));
    const channel: CommandChannel = new CommandChannel({
      deviceId: identity.grant.deviceId,
      fleetId: bootstrap.fleetId,
      fleetKeys: new Map([[keyId(fleet.signPublicKey), fleet.signPublicKey]]),
      deviceKeys: keys, ed, logger, emitEvent,
      store: new CommandStore(config.stateDir, logger),
      clockTrusted: clockTrust(config.clock.trust),
      sendReply: (reply) => outbound.send({ kind: 'reply', class: 'reply', payload: reply }),
      handlers: commandHandlers({
        agentVersion: AGENT_VERSION, reporter, credentials, link, deviceKeys: keys,
        services, maxLogBytes: MAX_LOG_BYTES,
        // desiredChannel is defined below; commands arrive only after link.start().
        rereadDesired: (): Promise<number | null> => desiredChannel.restore(),
        // After the reply: retiring ends the session that carries it.
        retire: () => this.beginRetire(channel.idle()),
      }),
    });
    // The command channel's verify() checks fleet signatures for both channels.
    const desiredChannel: DesiredChannel = new DesiredChannel({
      deviceId: identity.grant.deviceId,
      verify: (bytes): SignedPayload => channel.verify(bytes, DESIRED_TYPE, DESIRED_LIMITS).payload,
      boxSecretKey: keys.boxSecretKey,
      store: workload?.store ?? new DesiredStore(config.stateDir, logger),
      admission: workload?.admission ?? [],
      parseOptions: { containerLogs: config.disk.containerLogs },
      ...(workload === undefined ? {} : { disk: (): ReportedDisk => workload.housekeeping.report() }),
      supervisor: workload?.supervisor ?? { apply: () => Promise.reject(new Error('no container engine')), state: () => ({ version: null, status: 'failed', services: [], error: null }) },
      deviceLabels: workload?.labels ?? new Set(),
      setRegistries: (registries) => { if (workload !== undefined) workload.secrets.registries = registries; },
      applySettings: (settings) => reporter.setIntervalMs(settings?.metricsIntervalMs ?? config.reports.metricsIntervalMs),
      publishState: (state, traceparent) => void outbound.send({ kind: 'state', class: 'state', retain: true, payload: JSON.stringify(state), traceparent }),
      emitEvent, logger,
      onPersistedUnusable: () => refetchRetainedDesired(link, logger),
    });
    link.on('message', (kind, payload) => {
      if (kind === 'cmd') void channel.deliver(new Uint8Array(payload));
      if (kind === 'desired' && payload.length > 0) void desiredChannel.deliver(new Uint8Array(payload));
    });
    link.on('state', (state) => {
      this.deps.status?.link(state);
      if (state === 'online') void reporter.onOnline().catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'inventory report failed'));
    });
    link.on('packet-too-large', (message) => emitEvent({ type: 'message-refused', topic: 'link', code: 'TOO_LARGE', message }));
    link.on('auth-failed', () => {
      // The fleet no longer knows this credential (broker state lost, device
      // removed and re-added): enroll again with the same keys, same device id.
      // Not while retiring: the fleet revokes the account then, on purpose.
      if (!this.retiring) void this.reenroll();
    });
    reporter.start();
    link.start();
    // Autonomy: the persisted desired state is re-verified and applied with or without a broker.
    void desiredChannel.restore();
    return { link, outbox, reporter, desired: desiredChannel, emitEvent };
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
      v: 1, deviceId: identity?.grant.deviceId ?? 'unknown', fleetId: identity?.fleetId ?? this.deps.bootstrap.fleetId, at: this.clock(),
    });
    logger.warn({ services, removed }, 'retired: services removed, identity and secrets wiped; the agent stays stopped');
  }

  private async closeSession(): Promise<void> {
    const session = this.session;
    this.session = undefined;
    if (session === undefined) return;
    session.reporter.stop();
    await session.link.close();
    session.outbox.close();
  }

  async stop(): Promise<void> {
    this.abort.abort(new Error('agent stopping'));
    await this.closeSession();
    // Containers keep running: the agent's own restart must not take the workload down.
    await this.workload?.supervisor.stop();
  }
}

/**
 * Subscribe to `desired` again once the link is online: with a persistent session the
 * broker does not re-send a retained message on reconnect, only on a new subscription.
 */
function refetchRetainedDesired(link: DeviceLink, logger: Logger): void {
  const resubscribe = (): void => {
    link.resubscribe('desired').catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'could not ask again for the retained desired state'));
  };
  if (link.state === 'online') {
    resubscribe();
    return;
  }
  const onState = (state: string): void => {
    if (state !== 'online') return;
    link.off('state', onState);
    resubscribe();
  };
  link.on('state', onState);
}
