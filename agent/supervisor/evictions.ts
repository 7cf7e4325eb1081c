import type { DesiredService, Priority } from '../../protocol/compose/desired-service.js';
import type { SupervisorEvent } from './supervisor-events.js';

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
 * measured again rather than trusted from before. A plain value.
 */
export interface Evictions {
  readonly tiers: TierEvictions;
  /** Evicted services and their reasons, for the planner and the reports. */
  readonly services: ReadonlyMap<string, string>;
}

export const NO_EVICTIONS: Evictions = { tiers: {}, services: new Map() };

/** New tiers from the monitor. Pure. */
export function setTiers(evictions: Evictions, tiers: TierEvictions, desired: readonly DesiredService[]): { evictions: Evictions; changes: EvictionChanges } {
  return sortInto({ tiers: { ...tiers }, services: evictions.services }, desired);
}

/** A new desired state under the current tiers. Pure. */
export function refreshEvictions(evictions: Evictions, desired: readonly DesiredService[]): { evictions: Evictions; changes: EvictionChanges } {
  return sortInto(evictions, desired);
}

function sortInto(evictions: Evictions, desired: readonly DesiredService[]): { evictions: Evictions; changes: EvictionChanges } {
  const next = evictedServices(desired, evictions.tiers);
  const current = evictions.services;
  const desiredNames = new Set(desired.map((s) => s.name));
  const changes: EvictionChanges = {
    evicted: [...next].filter(([name]) => !current.has(name)).map(([service, reason]) => ({ service, reason })),
    // A service that left the desired state is not "restored": it is gone.
    restored: [...current.keys()].filter((name) => !next.has(name) && desiredNames.has(name)),
  };
  return { evictions: { tiers: evictions.tiers, services: next }, changes };
}

/** The changes as the events the fleet sees. */
export function evictionEvents(changes: EvictionChanges): SupervisorEvent[] {
  return [
    ...changes.evicted.map(({ service, reason }): SupervisorEvent => ({ type: 'evicted', service, reason })),
    ...changes.restored.map((service): SupervisorEvent => ({ type: 'restored', service })),
  ];
}
