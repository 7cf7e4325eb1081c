import { mkdirSync } from 'node:fs';
import mqtt, { type MqttClient } from 'mqtt';
import { silentLogger } from '../common/logger.js';
import { FleetVerifier } from '../agent/commands/fleet-verifier.js';
import { DesiredChannel, type DesiredTarget } from '../agent/desired/desired-channel.js';
import { DesiredStore } from '../agent/desired/desired-store.js';
import type { SupervisorState } from '../agent/supervisor/supervisor.js';
import { systemClock } from '../agent/clock.js';
import type { BootstrapFile } from '../protocol/bootstrap.js';
import { DesiredDataSchema } from '../protocol/desired.js';
import type { Ed25519 } from '../protocol/ed25519.js';
import type { EnrollGrant } from '../protocol/enrollment.js';
import { keyId, type KeyPairs } from '../protocol/keys.js';
import { deviceTopic } from '../protocol/topics.js';

/**
 * A stand-in for the supervisor: whatever document it is given runs at once
 * (every service `running`, no healthcheck) and is reported `synced`. No
 * engine, no containers: what is measured is the fleet side and the broker.
 */
class InstantSupervisor implements DesiredTarget {
  private current: SupervisorState = { version: null, status: 'synced', services: [], error: null };
  onState: (s: SupervisorState) => void = () => undefined;

  apply(doc: object, version: string): Promise<SupervisorState> {
    const services = Object.entries((doc as { services?: Record<string, { image?: string }> }).services ?? {});
    this.current = {
      version, status: 'synced', error: null,
      services: services.map(([name, s]) => ({
        name, image: s.image ?? '', imageDigest: null, containerId: null, outdated: false, state: 'running', health: 'none',
        restartCount: 0, lastExitCode: null, retryAt: null, lastError: null, updateSwitch: null,
      })),
    };
    const snapshot = this.current;
    queueMicrotask(() => this.onState(snapshot));
    return Promise.resolve(snapshot);
  }

  state(): SupervisorState {
    return this.current;
  }
}

/**
 * One simulated device for the rollout figure: its own broker connection
 * (with the will and retained `online` status the agent sets), and the
 * agent's own desired-state code — FleetVerifier, DesiredChannel, the
 * DesiredStore on a tmpfs directory — in front of the instant supervisor.
 * Counts every desired version delivered, to find lost or duplicated ones.
 */
export class SimulatedDevice {
  /** Deliveries of each desired version from the broker that verified. */
  readonly deliveries = new Map<number, number>();
  private client: MqttClient | undefined;
  private channel: DesiredChannel | undefined;

  constructor(readonly grant: EnrollGrant, private readonly keys: KeyPairs, private readonly bootstrap: BootstrapFile, private readonly ed: Ed25519, private readonly stateDir: string) {}

  get deviceId(): string {
    return this.grant.deviceId;
  }

  get acceptedVersion(): number | null {
    return this.channel?.acceptedVersion ?? null;
  }

  async connect(): Promise<void> {
    const { deviceId } = this.grant;
    mkdirSync(this.stateDir, { recursive: true });
    const fleetSignPublicKey = Buffer.from(this.bootstrap.fleetKeys.signPublicKey, 'base64');
    const verifier = new FleetVerifier({
      deviceId, fleetKeys: new Map([[keyId(fleetSignPublicKey), new Uint8Array(fleetSignPublicKey)]]), ed: this.ed, clock: systemClock, clockTrusted: () => true,
    });
    const supervisor = new InstantSupervisor();
    const status = (state: 'online' | 'offline'): Buffer => Buffer.from(JSON.stringify({ v: 1, state, at: Date.now(), ...(state === 'offline' ? { reason: 'connection lost' } : {}) }));
    const client = await mqtt.connectAsync(this.bootstrap.broker.url, {
      username: this.grant.username, password: this.grant.password, clientId: this.grant.clientId,
      protocolVersion: this.bootstrap.broker.protocolVersion, reconnectPeriod: 0, connectTimeout: 60_000,
      will: { topic: deviceTopic(deviceId, 'status'), payload: status('offline'), qos: 1, retain: true },
    });
    this.client = client;
    const channel = new DesiredChannel({
      verifier: {
        verifyAddressed: (bytes, type, limits) => {
          const payload = verifier.verifyAddressed(bytes, type, limits);
          const data = DesiredDataSchema.safeParse(payload.data);
          if (data.success) this.deliveries.set(data.data.version, (this.deliveries.get(data.data.version) ?? 0) + 1);
          return payload;
        },
      },
      boxSecretKey: this.keys.boxSecretKey, store: new DesiredStore(this.stateDir, silentLogger()), supervisor,
      deviceLabels: new Set(), setRegistries: () => undefined, logger: silentLogger(),
      publishState: (state) => { client.publish(deviceTopic(deviceId, 'state'), JSON.stringify(state), { qos: 1, retain: true }); },
      // The agent sends its events through its reporter; they are left out here (see the figure's note).
      emitEvent: () => undefined,
    });
    this.channel = channel;
    supervisor.onState = (s) => channel.onSupervisorState(s);
    client.on('message', (topic, payload) => {
      if (topic === deviceTopic(deviceId, 'desired') && payload.length > 0) void channel.deliver(new Uint8Array(payload));
    });
    await client.subscribeAsync(deviceTopic(deviceId, 'desired'), { qos: 1 });
    await client.publishAsync(deviceTopic(deviceId, 'status'), status('online'), { qos: 1, retain: true });
  }

  async close(): Promise<void> {
    await this.client?.endAsync(true);
  }
}
