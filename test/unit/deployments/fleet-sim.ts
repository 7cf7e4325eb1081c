import type { ReportedState } from '../../../protocol/desired.js';
import { stepRollout, type RolloutStep } from '../../../provisioning/deployments/rollout-policy.js';
import type { DeviceObservation, RolloutEvent, RolloutState } from '../../../provisioning/deployments/rollout-state.js';
import { reported, service } from './reported-fixtures.js';

/** How a simulated device takes a revision: runs it, fails its probation (and rolls back), or refuses it. */
export type Reaction = 'runs' | 'fails-probation' | 'refuses';

interface SimDevice {
  online: boolean;
  reported: ReportedState | null;
  published: { revision: number; version: number } | null;
  /** The version the device last took (what it has reported on). */
  seen: number | null;
  applied: number | null;
}

/**
 * A fake fleet for the pure policy: the reconciler's part (publish a new version when a device's
 * assigned revision changes) and the devices' (report at once what they did with it). Offline
 * devices report nothing until they come back. Only for unit tests of rollout-policy.
 */
export class FleetSim {
  now = 1_000_000;
  state: RolloutState;
  readonly devices = new Map<string, SimDevice>();
  readonly events: RolloutEvent[] = [];
  /** Every assignment change, per device, in order: [revision, at]. */
  readonly history = new Map<string, number[]>();
  targets: string[];
  private version = 100;
  last: RolloutStep | undefined;

  constructor(state: RolloutState, ids: readonly string[], private readonly reaction: (deviceId: string, revision: number) => Reaction, initialRevision: number | null) {
    this.state = state;
    this.targets = [...ids];
    for (const id of ids) this.addDevice(id, initialRevision);
  }

  addDevice(id: string, revision: number | null): void {
    const version = revision === null ? null : ++this.version;
    this.devices.set(id, {
      online: true,
      reported: version === null ? null : reported({ desiredVersion: version, appliedVersion: version, services: [service('web')] }),
      published: version === null || revision === null ? null : { revision, version },
      seen: version, applied: version,
    });
    if (revision !== null) this.history.set(id, [revision]);
  }

  setOnline(id: string, online: boolean): void {
    this.devices.get(id)!.online = online;
    if (online) this.react(id);
  }

  private react(id: string): void {
    const d = this.devices.get(id)!;
    if (!d.online || d.published === null || d.seen === d.published.version) return;
    const { revision, version } = d.published;
    d.seen = version;
    const outcome = this.reaction(id, revision);
    if (outcome === 'runs') {
      d.applied = version;
      d.reported = reported({ at: this.now, desiredVersion: version, appliedVersion: version, status: 'synced', services: [service('web', { image: `web:${revision}` })] });
    } else if (outcome === 'refuses') {
      d.reported = reported({ at: this.now, desiredVersion: version, appliedVersion: d.applied, status: 'refused', error: { code: 'ADMISSION_REFUSED', message: 'too big', services: { web: 'needs 2 GiB' } }, services: [service('web')] });
    } else {
      d.reported = reported({
        at: this.now, desiredVersion: version, appliedVersion: d.applied, status: 'failed',
        error: { code: 'PROBATION_FAILED', message: 'web: unhealthy within its probation; rolled back' },
        services: [service('web', { health: 'unhealthy', lastError: { code: 'PROBATION_FAILED', message: 'unhealthy' } })],
      });
    }
  }

  /** A device on the new revision turns faulty (a crash loop), as during a bake. */
  crash(id: string): void {
    const d = this.devices.get(id)!;
    d.reported = { ...d.reported!, status: 'degraded', services: [service('web', { state: 'backoff', restartCount: 2, lastError: { code: 'RUNTIME_FAILED', message: 'exited 137' } })] };
  }

  observations(): Map<string, DeviceObservation> {
    return new Map(this.targets.map((id) => {
      const d = this.devices.get(id)!;
      return [id, { online: d.online, reported: d.reported, published: d.published }];
    }));
  }

  /** One pass: the policy steps, the fleet publishes what changed, the devices react. */
  step(): RolloutStep {
    const s = stepRollout(this.state, { targets: this.targets, devices: this.observations(), now: this.now });
    this.state = s.state;
    this.events.push(...s.events);
    for (const [id, revision] of s.assignments) {
      const d = this.devices.get(id)!;
      if (d.published?.revision === revision) continue;
      d.published = { revision, version: ++this.version };
      this.history.set(id, [...(this.history.get(id) ?? []), revision]);
      this.react(id);
    }
    this.last = s;
    return s;
  }

  /** Step until nothing moves any more; when only time can move it, jump to the wake-up time. Returns the last step. */
  run(until: (sim: FleetSim) => boolean = () => false, limit = 10_000): RolloutStep {
    for (let i = 0; i < limit; i += 1) {
      const before = JSON.stringify(this.state);
      const published = [...this.devices.values()].map((d) => d.published?.version).join(',');
      const s = this.step();
      if (until(this)) return s;
      const moved = JSON.stringify(s.state) !== before || published !== [...this.devices.values()].map((d) => d.published?.version).join(',');
      if (moved || s.events.length > 0) continue;
      if (s.wakeAt === null) return s;
      this.now = Math.max(this.now + 1, s.wakeAt);
    }
    throw new Error('the rollout did not settle');
  }
}

export function deviceIds(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `d-${String(i).padStart(5, '0')}`);
}
