import { TEST_LABEL } from '../test/support/supervisor-harness.js';

/** Names of the services a footprint figure deploys: svc-01 … svc-NN. */
export function serviceNames(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `svc-${String(i + 1).padStart(2, '0')}`);
}

/**
 * A desired-state document of idle busybox services: no network (nothing
 * leaves loopback), restarted by the engine if they die, each labelled with
 * the run's label so the run removes exactly its own containers.
 */
export function idleServicesCompose(image: string, runLabel: string, names: readonly string[]): { services: Record<string, Record<string, unknown>> } {
  return {
    services: Object.fromEntries(names.map((name) => [name, { image, network_mode: 'none', restart: 'always', labels: { [TEST_LABEL]: runLabel } }])),
  };
}
