import type { DesiredService, Priority } from '../../protocol/compose/desired-service.js';

/** The priorities pressure may take down; `critical` is not one of them, by type. */
export type EvictableTier = Exclude<Priority, 'critical'>;

/** The evicted tiers, each with the reason it was evicted for (the reading and the threshold). */
export type TierEvictions = Partial<Record<EvictableTier, string>>;

/** Services that entered or left eviction when the tiers or the desired state changed. */
export interface EvictionChanges {
  evicted: { service: string; reason: string }[];
  restored: string[];
}

/**
 * Pure: the evicted services of `desired` with their reasons. A critical
 * service never appears, whatever `tiers` holds (it comes from outside the
 * supervisor: a wrong input must not take down what the fleet marked critical).
 */
export function evictedServices(desired: readonly DesiredService[], tiers: TierEvictions): Map<string, string> {
  const out = new Map<string, string>();
  for (const s of desired) {
    const priority = s.tsunagu.priority;
    if (priority === 'critical') continue;
    const reason = tiers[priority];
    if (reason !== undefined) out.set(s.name, reason);
  }
  return out;
}

/**
 * Which services pressure keeps down, by tier: the monitor decides tiers,
 * the desired state says which services are in each, so that a new desired
 * version (a service added, a priority changed) is sorted into the current
 * evictions at once. In memory only: after an agent restart the pressure is
 * measured again rather than trusted from before.
 */
export class Evictions {
  private tiers: TierEvictions = {};
  private current = new Map<string, string>();

  /** Evicted services and their reasons, for the planner and the reports. */
  get services(): ReadonlyMap<string, string> {
    return this.current;
  }

  reasonFor(service: string): string | undefined {
    return this.current.get(service);
  }

  /** New tiers from the monitor. */
  setTiers(tiers: TierEvictions, desired: readonly DesiredService[]): EvictionChanges {
    this.tiers = { ...tiers };
    return this.update(desired);
  }

  /** A new desired state under the current tiers. */
  refresh(desired: readonly DesiredService[]): EvictionChanges {
    return this.update(desired);
  }

  private update(desired: readonly DesiredService[]): EvictionChanges {
    const next = evictedServices(desired, this.tiers);
    const desiredNames = new Set(desired.map((s) => s.name));
    const changes: EvictionChanges = {
      evicted: [...next].filter(([name]) => !this.current.has(name)).map(([service, reason]) => ({ service, reason })),
      // A service that left the desired state is not "restored": it is gone.
      restored: [...this.current.keys()].filter((name) => !next.has(name) && desiredNames.has(name)),
    };
    this.current = next;
    return changes;
  }
}
