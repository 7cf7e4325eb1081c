import type { ErrorCode } from '../../protocol/errors.js';
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

/** Lifecycle events, for the fleet and for logs. */
export type SupervisorEvent =
  | { type: 'pull-progress'; service: string; image: string; currentBytes: number; totalBytes: number }
  | { type: 'pulled'; service: string; image: string }
  | { type: 'pull-failed'; service: string; image: string; code: ErrorCode; error: string; retryAt: number }
  /** The disk cannot hold the new image beside the old one: this update runs kill-then-download. */
  | { type: 'update-switched'; service: string; image: string; strategy: 'kill-then-download'; reason: string }
  | { type: 'started'; service: string; containerId: string }
  | { type: 'exited'; service: string; containerId: string; exitCode: number | null }
  | { type: 'healthy' | 'unhealthy'; service: string; containerId: string }
  | { type: 'backoff'; service: string; restartCount: number; exitCode: number | null; retryAt: number }
  /** Pressure takes the service down (`reason`: the reading and the threshold), or lets it come back. */
  | { type: 'evicted'; service: string; reason: string }
  | { type: 'restored'; service: string }
  | { type: 'step-failed'; service: string; step: string; error: string; retryAt: number }
  /** A container whose start failed on stale runtime state was removed (`containerId`, `reason`: the engine's message); a new one is created from the desired spec. */
  | { type: 'recreated'; service: string; containerId: string; reason: string }
  /** A new configuration exited or turned unhealthy within its probation; `rolledBackTo` is the version whose configuration it returned to. */
  | { type: 'probation-failed'; service: string; reason: string; version: string | null; rolledBackTo: string | null };
