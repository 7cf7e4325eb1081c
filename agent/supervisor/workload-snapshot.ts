import type { ErrorCode } from '../../protocol/errors.js';
import type { ActualState } from './actual-state.js';
import { configHash } from './config-hash.js';
import { probationFailures, probationPending, succeeded, type ProbationFailure } from './rollout-gate.js';
import { engineUnknown, overallStatus, serviceReports, type ServiceReport } from './service-report.js';
import type { SupervisorState } from './supervisor-events.js';
import type { SupervisorMemory } from './supervisor-memory.js';
import { switchedUpdates } from './update-switching.js';

export interface SnapshotFacts {
  /** Undefined when the engine could not be read: the services are reported from `previous`. */
  actual: ActualState | undefined;
  /** The services as last reported. */
  previous: ServiceReport[];
  /** Steps remain or pulls run. */
  busy: boolean;
  engineError: { code: ErrorCode; message: string } | null;
  deviceLabels: ReadonlySet<string>;
  pullsInFlight: ReadonlySet<string>;
  now: number;
}

/**
 * The device's workload as reported, from the memory and what the engine
 * shows. A failed probation fails the version even where the rollback runs
 * well; a version converged but still on probation is `applying`; one synced
 * with all probations passed becomes the version a rollback returns to
 * (`proven` says so when that is news, and the memory remembers it). Pure.
 */
export function snapshot(memory: SupervisorMemory, facts: SnapshotFacts): { state: SupervisorState; memory: SupervisorMemory; proven: string | undefined } {
  const desired = memory.desired?.services ?? [];
  const services = facts.actual === undefined ? engineUnknown(facts.previous, desired) : serviceReports({
    actual: facts.actual, desired, restartBackoff: memory.restartBackoff, pullBackoff: memory.pullBackoff,
    lastErrors: memory.lastErrors, deviceLabels: facts.deviceLabels, pullsInFlight: facts.pullsInFlight, held: memory.holds.services,
    evicted: memory.evictions.services, now: facts.now, switchedUpdates: switchedUpdates(memory.updates),
  });
  let status = overallStatus(services, desired, facts.busy, facts.engineError !== null);
  let error = facts.engineError;
  const failures = probationFailures(memory.rollout);
  if (failures.length > 0 && error === null) {
    // The fleet must see the version as failed, not applied, even where the rollback runs well.
    status = 'failed';
    const why = (f: ProbationFailure): string => `${f.service}: ${f.reason}; ${f.previous === undefined ? 'no earlier version to return to' : `rolled back to its configuration of version ${f.previousVersion ?? '?'}`}`;
    error = { code: 'PROBATION_FAILED', message: failures.map(why).join('; ') };
    for (const f of failures) {
      const i = services.findIndex((r) => r.name === f.service);
      const r = services[i];
      if (r !== undefined) services[i] = { ...r, lastError: { code: 'PROBATION_FAILED', message: why(f) } };
    }
  } else if (status === 'synced' && probationPending(memory.rollout)) {
    status = 'applying'; // converged, but the new configurations have not proven themselves yet
  }
  let next = memory;
  let proven: string | undefined;
  if (status === 'synced' && memory.version !== null) {
    const passed = succeeded(memory.rollout, memory.version, desired, configHash);
    next = { ...memory, rollout: passed.rollout };
    if (passed.news) proven = memory.version;
  }
  return { state: { version: memory.version, status, services, error }, memory: next, proven };
}
