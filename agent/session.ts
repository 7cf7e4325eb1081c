import { join } from 'node:path';
import type { Logger } from '../common/logger.js';
import type { BootstrapFile } from '../protocol/bootstrap.js';
import { MAX_LOG_BYTES } from '../protocol/commands.js';
import type { Ed25519 } from '../protocol/ed25519.js';
import { keyId, type KeyPairs } from '../protocol/keys.js';
import { clockTrust } from './clock-trust.js';
import type { Clock } from './clock.js';
import { CommandChannel } from './commands/command-channel.js';
import { CommandStore } from './commands/command-store.js';
import { FleetVerifier } from './commands/fleet-verifier.js';
import { commandHandlers, type ServiceControl } from './commands/handlers.js';
import type { RefusalCount } from './commands/refusal-count.js';
import type { AgentConfig } from './config.js';
import { Credentials } from './credentials.js';
import { DesiredChannel } from './desired/desired-channel.js';
import { DesiredStore } from './desired/desired-store.js';
import { supervisorServiceControl } from './commands/service-control.js';
import { fleetKeysOf } from './enrollment/enroller.js';
import type { IdentityFile } from './identity.js';
import type { BrokerLink } from './link/broker-link.js';
import { DeviceLink } from './link/mqtt-device-link.js';
import { Outbound } from './link/outbound.js';
import { Outbox } from './link/outbox.js';
import { Reporter } from './reporting/reporter.js';
import type { WorkloadReporter } from './reporting/workload-reporter.js';
import type { InventoryService } from './resources/inventory.js';
import { MetricsSampler } from './resources/metrics-sampler.js';
import type { RawSample, ResourceProbe } from './resources/probe.js';
import type { StatusFile } from './status/status-file.js';
import { readEngineVersion, type Workload } from './workload.js';
import type { DeviceEventBody } from '../protocol/events/device-events.js';

/** What exists while the device has an identity: link, outbound queue, commands, reports. */
export interface Session {
  link: BrokerLink;
  outbox: Outbox;
  reporter: Reporter;
  desired: DesiredChannel;
  emitEvent: (event: DeviceEventBody) => void;
}

export interface SessionDeps {
  identity: IdentityFile;
  config: AgentConfig;
  bootstrap: BootstrapFile;
  keys: KeyPairs;
  ed: Ed25519;
  logger: Logger;
  clock: Clock;
  probe: ResourceProbe;
  inventory: InventoryService;
  agentVersion: string;
  /** Absent when the container engine could not be set up: the desired channel refuses to apply. */
  workload: Workload | undefined;
  /** Where the workload reports; the session is connected to it while open. */
  reports: WorkloadReporter;
  /** Messages refused since the start, across sessions. */
  refused: RefusalCount;
  status?: StatusFile;
  /** The container supervisor's controls; default: the workload's. */
  services?: () => ServiceControl | undefined;
  /** Every metrics sample, also for the pressure monitor. */
  observeSample: (sample: RawSample) => void;
  /** The `retire` command was accepted; `replied` resolves once its reply is sent or queued. */
  retire: (replied: Promise<void>) => void;
  /** The broker refuses this identity's credential (agent re-enrolls). */
  onAuthFailed: () => void;
}

/**
 * Open the device's session: the mqtt.js link, the outbox behind it, one
 * fleet-message verifier for the command and desired channels, the
 * inventory and metrics reporter. The desired state on disk is applied at
 * once, broker or not.
 */
export function openSession(deps: SessionDeps): Session {
  const { config, logger, bootstrap, keys, ed, identity, workload, clock } = deps;
  const credentials = new Credentials(identity, config.stateDir, logger);
  const link = new DeviceLink({
    deviceId: identity.grant.deviceId,
    clientId: identity.grant.clientId,
    endpoint: { url: bootstrap.broker.url, ca: bootstrap.broker.ca, protocolVersion: bootstrap.broker.protocolVersion, username: identity.grant.username, password: identity.grant.password },
    password: (attempt) => credentials.passwordFor(attempt),
    onConnectedWith: (password) => credentials.connectedWith(password),
    logger,
    agentVersion: deps.agentVersion,
    keepaliveSeconds: config.link.keepaliveSeconds,
    backoff: { baseMs: config.link.backoffBaseMs, capMs: config.link.backoffCapMs, floorMs: config.link.reconnectSpreadMs },
  });
  const outbox = Outbox.open({ dir: join(config.stateDir, 'outbox'), maxBytes: config.outbox.maxBytes });
  for (const problem of outbox.recovered) logger.error({ code: problem.code }, problem.message);
  const outbound = new Outbound(link, outbox, logger, clock);
  const emitEvent = (event: DeviceEventBody): void => {
    if (event.type === 'message-refused') deps.refused.add(event.code);
    void outbound.send({ kind: 'events', class: 'event', payload: JSON.stringify({ v: 1, at: clock.now(), ...event }), traceparent: event.traceparent });
  };
  const reporter = new Reporter({
    inventory: deps.inventory,
    sampler: new MetricsSampler(deps.probe, deps.observeSample),
    outbound, logger, clock,
    refused: () => deps.refused.snapshot(),
    intervalMs: config.reports.metricsIntervalMs,
    sampleMs: config.reports.sampleIntervalMs,
    ...(workload === undefined ? {} : {
      runtimeVersion: () => {
        if (workload.engineVersion === undefined) void readEngineVersion(workload, logger);
        return workload.engineVersion;
      },
      serviceUsage: () => Promise.resolve(workload.usage.sample(workload.supervisor.state().services)),
      onSample: () => void workload.housekeeping.collector.collect('disk-sample'),
    }),
  });
  const fleet = fleetKeysOf(bootstrap);
  const verifier = new FleetVerifier({
    deviceId: identity.grant.deviceId,
    fleetKeys: new Map([[keyId(fleet.signPublicKey), fleet.signPublicKey]]),
    ed, clock, clockTrusted: clockTrust(config.clock.trust),
  });
  const services = deps.services ?? (() => (workload === undefined ? undefined
    : supervisorServiceControl(workload.supervisor, (id, tail) => workload.runtime.containerLogs(id, tail))));
  const desiredChannel = new DesiredChannel({
    verifier,
    boxSecretKey: keys.boxSecretKey,
    store: workload?.store ?? new DesiredStore(config.stateDir, logger),
    admission: workload?.admission ?? [],
    parseOptions: { containerLogs: config.disk.containerLogs, deviceDefaults: { memoryLimitBytes: config.memory.defaultLimit } },
    ...(workload === undefined ? {} : { disk: () => workload.housekeeping.report() }),
    supervisor: workload?.supervisor ?? { apply: () => Promise.reject(new Error('no container engine')), state: () => ({ version: null, status: 'failed', services: [], error: null }) },
    deviceLabels: workload?.labels ?? new Set(),
    setRegistries: (registries) => { if (workload !== undefined) workload.secrets.registries = registries; },
    applySettings: (settings) => reporter.setIntervalMs(settings?.metricsIntervalMs ?? config.reports.metricsIntervalMs),
    publishState: (state, traceparent) => void outbound.send({ kind: 'state', class: 'state', retain: true, payload: JSON.stringify(state), traceparent }),
    emitEvent, logger, clock,
    onPersistedUnusable: () => refetchRetainedDesired(link, logger),
  });
  const channel: CommandChannel = new CommandChannel({
    fleetId: bootstrap.fleetId,
    verifier,
    deviceKeys: keys, ed, logger, emitEvent, clock,
    store: new CommandStore(config.stateDir, logger),
    sendReply: (reply) => outbound.send({ kind: 'reply', class: 'reply', payload: reply }),
    handlers: commandHandlers({
      agentVersion: deps.agentVersion, reporter, credentials, link, deviceKeys: keys,
      services, maxLogBytes: MAX_LOG_BYTES, clock,
      rereadDesired: () => desiredChannel.restore(),
      // After the reply: retiring ends the session that carries it.
      retire: () => deps.retire(channel.idle()),
    }),
  });
  link.on('message', (kind, payload) => {
    if (kind === 'cmd') void channel.deliver(new Uint8Array(payload));
    if (kind === 'desired' && payload.length > 0) void desiredChannel.deliver(new Uint8Array(payload));
  });
  link.on('state', (state) => {
    deps.status?.link(state);
    if (state !== 'online') return;
    void reporter.onOnline().catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'inventory report failed'));
    // The broker may have lost its retained messages (the fleet's embedded broker keeps them in
    // memory, and restarted): a rollout judges the device by its retained `state`, so say it again.
    desiredChannel.republish();
  });
  link.on('packet-too-large', (message) => emitEvent({ type: 'message-refused', topic: 'link', code: 'TOO_LARGE', message }));
  link.on('auth-failed', deps.onAuthFailed);
  reporter.start();
  link.start();
  // Autonomy: the persisted desired state is re-verified and applied with or without a broker.
  void desiredChannel.restore();
  return { link, outbox, reporter, desired: desiredChannel, emitEvent };
}

/** Close what the session holds: reports stop, the link says `offline` (retained), the outbox file is closed. */
export async function closeSession(session: Session): Promise<void> {
  session.reporter.stop();
  await session.link.close();
  session.outbox.close();
}

/**
 * Subscribe to `desired` again once the link is online: with a persistent session the
 * broker does not re-send a retained message on reconnect, only on a new subscription.
 */
function refetchRetainedDesired(link: BrokerLink, logger: Logger): void {
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
