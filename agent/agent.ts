import { join } from 'node:path';
import type { Logger } from '../common/logger.js';
import type { BootstrapFile } from '../protocol/bootstrap.js';
import { MAX_LOG_BYTES } from '../protocol/commands.js';
import type { Ed25519 } from '../protocol/ed25519.js';
import { keyId, type KeyPairs } from '../protocol/keys.js';
import { clockTrust } from './clock-trust.js';
import { CommandChannel } from './commands/command-channel.js';
import { CommandStore } from './commands/command-store.js';
import { commandHandlers, type ServiceControl } from './commands/handlers.js';
import type { AgentConfig } from './config.js';
import { Credentials } from './credentials.js';
import { deviceFacts } from './enrollment/device-facts.js';
import { enroll, fleetKeysOf } from './enrollment/enroller.js';
import { loadIdentity, newIdentity, saveIdentity, type IdentityFile } from './identity.js';
import { DeviceLink } from './link/device-link.js';
import { Outbound } from './link/outbound.js';
import { Outbox } from './link/outbox.js';
import { Reporter } from './reporting/reporter.js';
import type { ResourceProbe } from './resources/probe.js';
import { InventoryService } from './resources/inventory.js';
import { MetricsSampler } from './resources/metrics-sampler.js';

export const AGENT_VERSION = '0.1.0';

export interface AgentDeps {
  config: AgentConfig;
  bootstrap: BootstrapFile;
  keys: KeyPairs;
  /** True when the keys were made at this boot: any stored identity belongs to keys that are gone. */
  keysCreated?: boolean;
  ed: Ed25519;
  logger: Logger;
  probe: ResourceProbe;
  /** The container supervisor's controls, once one runs. */
  services?: () => ServiceControl | undefined;
  clock?: () => number;
}

/** What exists while the device has an identity: link, outbound queue, commands, reports. */
interface Session {
  link: DeviceLink;
  outbox: Outbox;
  reporter: Reporter;
}

/**
 * The running agent: an identity (enrolling first if it has none), then a
 * session on the device link with its command channel and reports.
 */
export class Agent {
  private session: Session | undefined;
  private readonly abort = new AbortController();
  private readonly clock: () => number;
  identity: IdentityFile | undefined;

  constructor(private readonly deps: AgentDeps) {
    this.clock = deps.clock ?? Date.now;
  }

  get linkState(): string {
    return this.session?.link.state ?? 'offline';
  }

  async start(): Promise<void> {
    const { config, logger } = this.deps;
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
    this.session = this.openSession(this.identity);
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
      backoff: { baseMs: config.link.backoffBaseMs, capMs: config.link.backoffCapMs },
    });
    const outbox = Outbox.open({ dir: join(config.stateDir, 'outbox'), maxBytes: config.outbox.maxBytes });
    for (const problem of outbox.recovered) logger.error({ code: problem.code }, problem.message);
    const outbound = new Outbound(link, outbox, logger);
    const emitEvent = (event: Record<string, unknown>): void => {
      const traceparent = typeof event.traceparent === 'string' ? event.traceparent : undefined;
      void outbound.send({ kind: 'events', class: 'event', payload: JSON.stringify({ v: 1, at: this.clock(), ...event }), traceparent });
    };
    const reporter = new Reporter({
      inventory: new InventoryService({ probe: this.deps.probe }),
      sampler: new MetricsSampler(this.deps.probe),
      outbound, logger,
      intervalMs: config.reports.metricsIntervalMs,
      sampleMs: config.reports.sampleIntervalMs,
    });
    const fleet = fleetKeysOf(bootstrap);
    const channel = new CommandChannel({
      deviceId: identity.grant.deviceId,
      fleetId: bootstrap.fleetId,
      fleetKeys: new Map([[keyId(fleet.signPublicKey), fleet.signPublicKey]]),
      deviceKeys: keys, ed, logger, emitEvent,
      store: new CommandStore(config.stateDir, logger),
      clockTrusted: clockTrust(config.clock.trust),
      sendReply: (reply) => outbound.send({ kind: 'reply', class: 'reply', payload: reply }),
      handlers: commandHandlers({
        agentVersion: AGENT_VERSION, reporter, credentials, link, deviceKeys: keys,
        services: this.deps.services ?? (() => undefined), maxLogBytes: MAX_LOG_BYTES,
      }),
    });
    link.on('message', (kind, payload) => {
      if (kind === 'cmd') void channel.deliver(new Uint8Array(payload));
    });
    link.on('state', (state) => {
      if (state === 'online') void reporter.onOnline().catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'inventory report failed'));
    });
    link.on('auth-failed', () => {
      // The fleet no longer knows this credential (broker state lost, device
      // removed and re-added): enroll again with the same keys, same device id.
      void this.reenroll();
    });
    reporter.start();
    link.start();
    return { link, outbox, reporter };
  }

  private async reenroll(): Promise<void> {
    await this.closeSession();
    try {
      this.identity = await this.enroll();
      this.session = this.openSession(this.identity);
    } catch (err) {
      if (!this.abort.signal.aborted) this.deps.logger.error({ err: (err as Error).message }, 're-enrollment failed');
    }
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
  }
}
