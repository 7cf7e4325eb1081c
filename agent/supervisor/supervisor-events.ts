import type { ErrorCode } from '../../protocol/errors.js';
import type { ServiceEvent } from '../../protocol/events/service-prefix.js';
import type { OverallStatus, ServiceReport } from './service-report.js';

/** What the supervisor tells the MQTT side: state snapshots (`onState`) and lifecycle events (`onEvent`). */

/** A snapshot of the whole device's workload. */
export interface SupervisorState {
  /** Version of the desired state being applied; null before the first apply. */
  version: string | null;
  status: OverallStatus;
  services: ServiceReport[];
  /** Why the status is `failed`. */
  error: { code: ErrorCode; message: string } | null;
}

/** Lifecycle events, for the fleet and for logs: the protocol's service events, named without their `service-` prefix. */
export type SupervisorEvent = ServiceEvent;
