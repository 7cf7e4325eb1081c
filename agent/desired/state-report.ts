import type { ReportedDisk, ReportedState } from '../../protocol/desired.js';
import type { ErrorCode } from '../../protocol/errors.js';
import type { SupervisorState } from '../supervisor/supervisor.js';

/** A desired state refused as a whole: nothing of it was applied. */
export interface Refusal {
  version: number;
  code: ErrorCode;
  message: string;
  /** The reason per service, when the refusal comes from services. */
  services?: Record<string, string>;
}

export interface StateReportInputs {
  supervisor: SupervisorState;
  /** The version the device works on (the last accepted), null before the first. */
  acceptedVersion: number | null;
  /** The last version that reached `synced`. */
  appliedVersion: number | null;
  /** Set when the newest version received was refused; the accepted one keeps running. */
  refusal: Refusal | undefined;
  /** Labels a service requires that this device lacks, by service. */
  missingLabels: Record<string, string[]>;
  /** The disk rules and the last image collection, when the device has a container engine. */
  disk?: ReportedDisk;
  at: number;
}

/**
 * The retained `state` message, purely from the supervisor's snapshot and
 * what the desired channel knows. A refused document reports `refused` with
 * the refused version as `desiredVersion` (what the fleet asked for) while
 * `appliedVersion` stays at what runs. Services a device cannot run for lack
 * of a label are named with the labels they miss.
 */
export function reportedState(inputs: StateReportInputs): ReportedState {
  const { supervisor, refusal } = inputs;
  const services = supervisor.services.map((s) => ({
    name: s.name, image: s.image, imageDigest: s.imageDigest, state: s.state, health: s.health,
    restartCount: s.restartCount, lastExitCode: s.lastExitCode, lastError: s.lastError,
    containerId: s.containerId, outdated: s.outdated, retryAt: s.retryAt, updateSwitch: s.updateSwitch,
  }));
  const disk = inputs.disk === undefined ? {} : { disk: inputs.disk };
  if (refusal !== undefined) {
    return {
      v: 1, at: inputs.at, desiredVersion: refusal.version, appliedVersion: inputs.appliedVersion, status: 'refused',
      error: { code: refusal.code, message: refusal.message.slice(0, 4096), ...(refusal.services === undefined ? {} : { services: clip(refusal.services) }) },
      services, ...disk,
    };
  }
  const missing = Object.entries(inputs.missingLabels).filter(([, labels]) => labels.length > 0);
  let error: ReportedState['error'] = supervisor.error === null ? null : { code: supervisor.error.code, message: supervisor.error.message.slice(0, 4096) };
  if (error === null && missing.length > 0) {
    error = {
      code: 'MISSING_LABEL',
      message: `${missing.length} service(s) not deployed: this device lacks a label they require`,
      services: clip(Object.fromEntries(missing.map(([name, labels]) => [name, `requires ${labels.join(', ')}, which this device lacks`]))),
    };
  }
  return {
    v: 1, at: inputs.at, desiredVersion: inputs.acceptedVersion, appliedVersion: inputs.appliedVersion,
    status: supervisor.status, error, services: services.slice(0, 256), ...disk,
  };
}

function clip(reasons: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(reasons).map(([k, v]) => [k, v.slice(0, 1024)]));
}
