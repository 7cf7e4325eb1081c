import type { Logger } from '../common/logger.js';
import type { BootstrapFile } from '../protocol/bootstrap.js';
import type { Ed25519 } from '../protocol/ed25519.js';
import type { KeyPairs } from '../protocol/keys.js';
import type { AgentConfig } from './config.js';
import { deviceFacts } from './enrollment/device-facts.js';
import { enroll } from './enrollment/enroller.js';
import { loadIdentity, saveIdentity, type IdentityFile } from './identity.js';
import { DeviceLink } from './link/device-link.js';

export const AGENT_VERSION = '0.1.0';

export interface AgentDeps {
  config: AgentConfig;
  bootstrap: BootstrapFile;
  keys: KeyPairs;
  /** True when the keys were made at this boot: any stored identity belongs to keys that are gone. */
  keysCreated?: boolean;
  ed: Ed25519;
  logger: Logger;
  clock?: () => number;
}

/**
 * The running agent: an identity (enrolling first if it has none), then the
 * device link. Later parts (commands, reports, supervisor) hang off the link.
 */
export class Agent {
  private link: DeviceLink | undefined;
  private readonly abort = new AbortController();
  identity: IdentityFile | undefined;

  constructor(private readonly deps: AgentDeps) {}

  get linkState(): string {
    return this.link?.state ?? 'offline';
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
    this.connect(this.identity);
  }

  private async enroll(): Promise<IdentityFile> {
    const { config, logger, bootstrap } = this.deps;
    const claim = { ...deviceFacts(config.enrollment.serial === undefined ? {} : { serial: config.enrollment.serial }), ...(bootstrap.claim.token === undefined ? {} : { claimToken: bootstrap.claim.token }) };
    const grant = await enroll({
      bootstrap, keys: this.deps.keys, claim, ed: this.deps.ed, logger, signal: this.abort.signal,
      startupJitterMs: config.enrollment.startupJitterMs,
      backoff: { baseMs: config.enrollment.backoffBaseMs, capMs: config.enrollment.backoffCapMs },
    });
    return saveIdentity(config.stateDir, bootstrap.fleetId, grant, (this.deps.clock ?? Date.now)());
  }

  private connect(identity: IdentityFile): void {
    const { config, logger, bootstrap } = this.deps;
    const link = new DeviceLink({
      deviceId: identity.grant.deviceId,
      clientId: identity.grant.clientId,
      endpoint: { url: bootstrap.broker.url, ca: bootstrap.broker.ca, protocolVersion: bootstrap.broker.protocolVersion, username: identity.grant.username, password: identity.grant.password },
      logger,
      agentVersion: AGENT_VERSION,
      keepaliveSeconds: config.link.keepaliveSeconds,
      backoff: { baseMs: config.link.backoffBaseMs, capMs: config.link.backoffCapMs },
    });
    link.on('auth-failed', () => {
      // The fleet no longer knows this credential (rotated elsewhere, broker
      // state lost): enroll again with the same keys, which keeps the device id.
      void this.reenroll(link);
    });
    this.link = link;
    link.start();
  }

  private async reenroll(link: DeviceLink): Promise<void> {
    await link.close();
    try {
      this.identity = await this.enroll();
      this.connect(this.identity);
    } catch (err) {
      if (!this.abort.signal.aborted) this.deps.logger.error({ err: (err as Error).message }, 're-enrollment failed');
    }
  }

  async stop(): Promise<void> {
    this.abort.abort(new Error('agent stopping'));
    await this.link?.close();
  }
}
