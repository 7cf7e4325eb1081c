import { isLive, type ActualContainer, type ActualState, type HealthStatus } from './actual-state.js';
import type { DesiredService } from '../../protocol/compose/desired-service.js';
import { configHash } from './config-hash.js';
import { isBackingOff, type BackoffState } from './restart-backoff.js';
import type { ErrorCode } from '../../protocol/errors.js';

/**
 * Where one service stands:
 * - `running`, `exited` (by its own choice: restart policy `no` or `on-failure` after success), `created`;
 * - `waiting`: created, its dependencies not ready yet;
 * - `backoff`: crashed, next start after `retryAt`;
 * - `pull-failed`: the new image could not be pulled, retry at `retryAt` (an old version may still run);
 * - `pulling`: its new image is being pulled (an old version may still run);
 * - `pending`: nothing runs yet and nothing is wrong (about to be created);
 * - `not-deployed`: the device lacks a label the service requires;
 * - `stopped`: an operator stopped it (the `stop` command); it stays down until `start` or a new version;
 * - `evicted`: taken down to relieve memory or temperature pressure (agent/pressure); it comes back when
 *   the pressure has cleared for a while. `lastError` (`PRESSURE_EVICTED`) says which reading crossed which threshold;
 * - `unknown`: the engine cannot be read (the device reports `failed`, `RUNTIME_UNAVAILABLE`); the other
 *   fields are the last known ones.
 */
export type ServiceState =
  | 'stopped' | 'evicted' | 'running' | 'exited' | 'created' | 'waiting' | 'backoff' | 'pulling' | 'pull-failed' | 'pending' | 'not-deployed' | 'unknown';

export interface ServiceReport {
  name: string;
  /** The image the service's container runs, or the desired one when no container exists. */
  image: string;
  /** `repo@sha256:…` of that image when known. */
  imageDigest: string | null;
  containerId: string | null;
  /** True when the container runs an older configuration than desired (an update has not happened yet). */
  outdated: boolean;
  state: ServiceState;
  health: HealthStatus;
  restartCount: number;
  lastExitCode: number | null;
  retryAt: number | null;
  lastError: { code: ErrorCode; message: string } | null;
  /** Set while an update runs kill-then-download because the disk cannot hold the new image beside the old one. */
  updateSwitch: { strategy: 'kill-then-download'; reason: string } | null;
}

/**
 * - `synced`: every service is where the desired state wants it;
 * - `applying`: work is in progress or waiting for something expected (a healthcheck, a dependency);
 * - `degraded`: something is wrong with a service (back-off, failed pull, unhealthy, a failed step), the rest runs;
 * - `failed`: the desired state cannot be applied at all (engine unreachable).
 */
export type OverallStatus = 'synced' | 'applying' | 'degraded' | 'failed';

export interface ReportInputs {
  actual: ActualState;
  desired: DesiredService[];
  restartBackoff: BackoffState;
  pullBackoff: BackoffState;
  lastErrors: ReadonlyMap<string, { code: ErrorCode; message: string }>;
  deviceLabels: ReadonlySet<string>;
  pullsInFlight: ReadonlySet<string>;
  /** Services an operator stopped. */
  held?: ReadonlySet<string>;
  /** Services pressure keeps down, with the reason. */
  evicted?: ReadonlyMap<string, string>;
  /** Services whose update was switched to kill-then-download for a short disk, with the reason. */
  switchedUpdates?: ReadonlyMap<string, string>;
  now: number;
}

function pick(containers: ActualContainer[], hash: string): { container: ActualContainer | undefined; outdated: boolean } {
  const current = containers.filter((c) => c.configHash === hash && c.status !== 'dead').sort((a, b) => Number(isLive(b)) - Number(isLive(a)))[0];
  if (current) return { container: current, outdated: false };
  const old = containers.filter(isLive)[0];
  return { container: old, outdated: old !== undefined };
}

/** Pure: the report of every desired service. */
export function serviceReports(inputs: ReportInputs): ServiceReport[] {
  const { actual, now } = inputs;
  return inputs.desired.map((s): ServiceReport => {
    const hash = configHash(s);
    const { container: c, outdated } = pick(actual.containers.filter((x) => x.service === s.name), hash);
    const restart = inputs.restartBackoff[s.name];
    const pull = inputs.pullBackoff[s.image];
    const evictedFor = inputs.evicted?.get(s.name);
    let state: ServiceState;
    let retryAt: number | null = null;
    if (!s.tsunagu.requires.every((l) => inputs.deviceLabels.has(l))) state = 'not-deployed';
    // The operator's hold outlasts the pressure: `stopped` is what the service will still be once it clears.
    else if (inputs.held?.has(s.name) === true && !outdated && c?.status !== 'running') state = 'stopped';
    else if (evictedFor !== undefined) state = 'evicted';
    else if (!outdated && c?.status === 'running') state = 'running';
    else if (isBackingOff(restart, now, hash)) { state = 'backoff'; retryAt = restart?.nextAttemptAt ?? null; }
    else if ((outdated || c === undefined) && inputs.pullsInFlight.has(s.image)) state = 'pulling';
    else if (isBackingOff(pull, now)) { state = 'pull-failed'; retryAt = pull?.nextAttemptAt ?? null; }
    else if (!outdated && c?.status === 'created') state = s.dependsOn.length > 0 ? 'waiting' : 'created';
    else if (!outdated && c?.status === 'exited') state = 'exited';
    else state = 'pending';
    const image = c?.image ?? s.image;
    return {
      name: s.name,
      image,
      imageDigest: actual.images[image]?.digest ?? null,
      containerId: c?.id ?? null,
      outdated,
      state,
      health: c?.health ?? 'none',
      restartCount: restart?.total ?? 0,
      lastExitCode: c?.exitCode ?? restart?.lastExitCode ?? null,
      retryAt,
      lastError: evictedFor !== undefined && state === 'evicted' ? { code: 'PRESSURE_EVICTED', message: evictedFor } : inputs.lastErrors.get(s.name) ?? null,
      updateSwitch: switchOf(inputs.switchedUpdates?.get(s.name)),
    };
  });
}

/**
 * The reports while the engine cannot be read: nothing is known of the
 * containers (a stopped dockerd stops them, one with live-restore does not),
 * so every desired service is `unknown`, its other fields the last known —
 * or, for one never reported (the engine down since the agent started), only
 * its name and desired image; a service not deployed for a missing label
 * stays so (that does not depend on the engine). Pure.
 */
export function engineUnknown(last: readonly ServiceReport[], desired: readonly DesiredService[]): ServiceReport[] {
  return desired.map((s): ServiceReport => {
    const r = last.find((x) => x.name === s.name);
    if (r === undefined) {
      return {
        name: s.name, image: s.image, imageDigest: null, containerId: null, outdated: false, state: 'unknown', health: 'none',
        restartCount: 0, lastExitCode: null, retryAt: null, lastError: null, updateSwitch: null,
      };
    }
    return r.state === 'not-deployed' ? r : { ...r, state: 'unknown' };
  });
}

function switchOf(reason: string | undefined): ServiceReport['updateSwitch'] {
  return reason === undefined ? null : { strategy: 'kill-then-download', reason };
}

/**
 * A service needs attention when it is stuck, crashing, unhealthy, its last step failed, or pressure
 * keeps it down: the device then runs less than the fleet asked for, which `synced` would hide.
 */
function troubled(r: ServiceReport, s: DesiredService): boolean {
  if (r.state === 'evicted' || r.state === 'backoff' || r.state === 'pull-failed' || r.health === 'unhealthy' || r.lastError !== null) return true;
  // An exit the restart policy does not answer is only fine when it was a success.
  return r.state === 'exited' && r.lastExitCode !== 0 && s.restart.name !== 'always' && s.restart.name !== 'unless-stopped';
}

function settled(r: ServiceReport, s: DesiredService): boolean {
  if (r.state === 'not-deployed' || r.state === 'stopped') return true;
  if (r.state === 'exited') return r.lastExitCode === 0 && s.restart.name !== 'always' && s.restart.name !== 'unless-stopped';
  return r.state === 'running' && r.health !== 'starting';
}

/** Pure: the overall status from the reports; `busy` while steps are being executed. */
export function overallStatus(reports: ServiceReport[], desired: DesiredService[], busy: boolean, engineFailed: boolean): OverallStatus {
  if (engineFailed) return 'failed';
  const byName = new Map(desired.map((s) => [s.name, s]));
  const pairs = reports.flatMap((r) => { const s = byName.get(r.name); return s ? [[r, s] as const] : []; });
  if (pairs.some(([r, s]) => troubled(r, s))) return 'degraded';
  if (busy || !pairs.every(([r, s]) => settled(r, s))) return 'applying';
  return 'synced';
}
