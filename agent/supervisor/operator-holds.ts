/**
 * Services an operator stopped, and the version they were stopped under:
 * the reconcile loop leaves them down until they are started again or a
 * new desired version arrives. A plain value; each change returns a new one
 * (the same one when nothing changed), so the supervisor hands exactly the
 * changes to its caller, who persists them: a hold survives restarts.
 */
export interface OperatorHolds {
  readonly version: string | null;
  readonly services: ReadonlySet<string>;
}

export function initialHolds(initial: { version: string; services: Iterable<string> } | undefined): OperatorHolds {
  return { version: initial?.version ?? null, services: new Set(initial?.services ?? []) };
}

export function hold(holds: OperatorHolds, service: string, version: string | null): OperatorHolds {
  if (holds.services.has(service)) return holds;
  return { version, services: new Set([...holds.services, service]) };
}

export function release(holds: OperatorHolds, service: string): OperatorHolds {
  if (!holds.services.has(service)) return holds;
  return { ...holds, services: new Set([...holds.services].filter((s) => s !== service)) };
}

/** A hold lasts for the version it was made under (the first apply after a restart is usually that one). */
export function releaseAllUnless(holds: OperatorHolds, version: string): OperatorHolds {
  if (holds.services.size === 0 || version === holds.version) return holds;
  return { ...holds, services: new Set() };
}

/** The held services, sorted, as the caller persists them. */
export function heldServices(holds: OperatorHolds): string[] {
  return [...holds.services].sort();
}
