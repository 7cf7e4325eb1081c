/**
 * Labels the agent puts on every container it creates (the ownership pair
 * also on the named volumes it creates). Ownership is the `managed` label: a
 * container without it is never listed, stopped or removed, whatever its name.
 * The scope label lets two supervisors (or a test per case) share one engine
 * without seeing each other's containers. Documented for operators in
 * docs/agent.md, "Container labels" (a unit test keeps the two in step). All
 * are under the prefix a desired state may not use (protocol/compose/reserved-labels.ts).
 */
export const LABELS = {
  managed: 'io.tsunagu.managed',
  scope: 'io.tsunagu.scope',
  service: 'io.tsunagu.service',
  configHash: 'io.tsunagu.config-hash',
  /** The desired-state version that created the container (not updated when a later version leaves it as is). */
  version: 'io.tsunagu.version',
  /** Comma-separated services this one depends on: orders stops of services no longer desired. */
  dependsOn: 'io.tsunagu.depends-on',
} as const;

export const MANAGED_VALUE = 'true';

/** Labels that mark a container as owned by the supervisor of `scope`. */
export function ownershipLabels(scope: string): Record<string, string> {
  return { [LABELS.managed]: MANAGED_VALUE, [LABELS.scope]: scope };
}
