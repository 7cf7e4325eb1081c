import type { ActualContainer, ActualState } from '../../agent/supervisor/actual-state.js';
import { configHash } from '../../agent/supervisor/config-hash.js';
import { adoptDesired } from '../../agent/supervisor/adopt-desired.js';
import type { BackoffPolicy } from '../../agent/supervisor/restart-backoff.js';
import { initialMemory, type DecisionPolicies, type SupervisorMemory } from '../../agent/supervisor/supervisor-memory.js';
import { parseDesiredState } from '../../protocol/compose/compose-schema.js';
import type { DesiredService, DesiredState } from '../../protocol/compose/desired-service.js';

/**
 * Fixture states for the supervisor's pure decisions: a desired state, the
 * containers an engine would list, and a memory that has adopted a version.
 * No engine.
 */

export const NOW = 1_800_000_000_000;
export const RESTART: BackoffPolicy = { initialDelayMs: 1000, maxDelayMs: 4000, resetAfterMs: 60_000 };
export const POLICIES: DecisionPolicies = { restart: RESTART, pull: { initialDelayMs: 500, maxDelayMs: 2000, resetAfterMs: 0 } };

export function desiredState(services: Record<string, Record<string, unknown>>): DesiredState {
  return parseDesiredState({ services });
}

export function service(desired: DesiredState, name: string): DesiredService {
  const s = desired.services.find((x) => x.name === name);
  if (s === undefined) throw new Error(`no service ${name}`);
  return s;
}

/** A container of `s` as the engine lists it: running its desired configuration since a minute ago, unless told otherwise. */
export function container(s: DesiredService, overrides: Partial<ActualContainer> = {}): ActualContainer {
  const hash = configHash(s);
  return {
    id: `${s.name}-${hash.slice(0, 6)}`, name: `t-${s.name}-${hash.slice(0, 8)}`, service: s.name, configHash: hash, dependsOn: [], version: '1',
    image: s.image, imageId: `sha256:${s.image}`, status: 'running', health: 'none', exitCode: null, startedAt: NOW - 60_000, finishedAt: null,
    ...overrides,
  };
}

/** An exit of `c` at `at` (after running since its start). */
export function exitedAt(c: ActualContainer, at: number, exitCode = 1): ActualContainer {
  return { ...c, status: 'exited', exitCode, finishedAt: at };
}

export function actual(...containers: ActualContainer[]): ActualState {
  const images: ActualState['images'] = {};
  for (const c of containers) images[c.image] = { id: c.imageId, digest: null, repoDigests: [] };
  return { containers, images };
}

/** A supervisor's memory after it adopted `desired` as `version`. */
export function adopted(desired: DesiredState, version = '1', options: { probationMs?: number; held?: { version: string; services: string[] } } = {}): SupervisorMemory {
  const fresh = initialMemory({ restartBackoff: {}, restartPolicy: RESTART, now: NOW, probationMs: options.probationMs ?? 0, held: options.held });
  return adoptDesired(fresh, desired, version).memory;
}
