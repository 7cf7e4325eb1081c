import type { DesiredState } from '../../protocol/compose/desired-service.js';
import { evictionEvents, refreshEvictions } from './evictions.js';
import { releaseAllUnless } from './operator-holds.js';
import { resetRollout } from './rollout-gate.js';
import type { Decision, SupervisorMemory } from './supervisor-memory.js';

/**
 * A new desired state: holds made under another version end, the services
 * are sorted into the current evictions, and what was remembered about the
 * previous version's attempts (errors, recoveries, probations, updates,
 * failed pulls) is forgotten. The crash back-off stays: it is keyed by
 * configuration, so a fixed one starts at once and an unchanged one waits. Pure.
 */
export function adoptDesired(memory: SupervisorMemory, desired: DesiredState, version: string): Decision {
  const { evictions, changes } = refreshEvictions(memory.evictions, desired.services);
  return {
    memory: {
      ...memory,
      holds: releaseAllUnless(memory.holds, version),
      desired, version, evictions,
      lastErrors: new Map(),
      recoveryBackoff: {},
      rollout: resetRollout(memory.rollout),
      updates: new Map(),
      pullBackoff: {}, // a new desired state is a reason to try a failed pull again now
    },
    events: evictionEvents(changes),
    notes: [],
  };
}
