import * as z from 'zod';
import type { ReportedState } from '../../protocol/desired.js';

/**
 * Where one device stands with the revision a rollout gave it, judged from what the device
 * itself reports (docs/deployments.md, "How a device is judged"):
 * - `pending`: the fleet has not published the revision yet, or the device has not taken it;
 * - `applying`: the device works on it (pulls, probation);
 * - `baking`: the device passed probation and must stay healthy for the bake time;
 * - `healthy`: it did;
 * - `failed`: the device refused the version, failed its probation (and rolled back by itself),
 *   or a service of it turned faulty during the bake;
 * - `offline`: the device is not connected, or its container engine cannot be reached: it can
 *   prove nothing either way.
 */
export const VerdictValues = ['pending', 'applying', 'baking', 'healthy', 'failed', 'offline'] as const;
export type Verdict = (typeof VerdictValues)[number];

/** Why: the service at fault when one is, the device's error code and message, the service's state and health. */
export const VerdictReasonSchema = z.strictObject({
  service: z.string().max(128).optional(),
  code: z.string().max(40).optional(),
  message: z.string().max(1024).optional(),
  state: z.string().max(40).optional(),
  health: z.string().max(40).optional(),
});
export type VerdictReason = z.infer<typeof VerdictReasonSchema>;

export interface DeviceVerdict {
  verdict: Verdict;
  /** Set for `failed` and `offline` when the device says why, and for `applying` while a service shows a fault. */
  reason: VerdictReason | null;
  /** For `baking` and `healthy`: when the bake started (fleet clock). */
  since?: number;
}

export interface VerdictInput {
  /** The device's retained `state` report, null before its first. */
  reported: ReportedState | null;
  online: boolean;
  /** The first version the fleet published to this device that carried the revision; null while unpublished. */
  version: number | null;
  /**
   * When the fleet first saw the device past probation on this version, null until then. The
   * fleet's clock, never the report's `at`: a device without a real-time clock may report 1970,
   * which would end a bake before it began.
   */
  bakeStartedAt: number | null;
  bakeMs: number;
  now: number;
  /**
   * The services this deployment contributes on the device. A failure that names only other
   * services (another deployment's layer) is not this revision's. Absent or empty: every failure
   * counts (an empty list would otherwise excuse every failure, and prove nothing ran).
   */
  services?: ReadonlySet<string>;
}

type ReportedService = ReportedState['services'][number];

/** A service state or health that is the workload's fault; `evicted` and `stopped` are the device's or an operator's choice. */
function isFaulty(s: ReportedService): boolean {
  return s.state === 'backoff' || s.state === 'pull-failed' || s.health === 'unhealthy';
}

function clip(text: string): string {
  return text.length > 1024 ? `${text.slice(0, 1023)}…` : text;
}

function serviceReason(s: ReportedService): VerdictReason {
  return {
    service: s.name, state: s.state, health: s.health,
    ...(s.lastError === null ? {} : { code: s.lastError.code, message: clip(s.lastError.message) }),
  };
}

function ours(name: string, services: ReadonlySet<string> | undefined): boolean {
  return services === undefined || services.has(name);
}

/**
 * The services a failed or refused report blames: those the error names per service, those
 * whose last error carries the error's code, and the faulty ones. Empty when it names none.
 */
function blamed(reported: ReportedState): string[] {
  const names = new Set(Object.keys(reported.error?.services ?? {}));
  for (const s of reported.services) {
    if ((s.lastError !== null && s.lastError.code === reported.error?.code) || isFaulty(s)) names.add(s.name);
  }
  return [...names];
}

/** The reason of a failed or refused report: the device's error, and the first of our services it blames. */
function failureReason(reported: ReportedState, services: ReadonlySet<string> | undefined): VerdictReason {
  const name = blamed(reported).find((n) => ours(n, services));
  const service = reported.services.find((s) => s.name === name);
  const perService = name === undefined ? undefined : reported.error?.services?.[name];
  return {
    ...(name === undefined ? {} : { service: name }),
    ...(reported.error === null ? {} : { code: reported.error.code }),
    ...(perService !== undefined ? { message: clip(perService) } : reported.error === null ? {} : { message: clip(reported.error.message) }),
    ...(service === undefined ? {} : { state: service.state, health: service.health }),
  };
}

function firstFault(reported: ReportedState, services: ReadonlySet<string> | undefined): ReportedService | undefined {
  return reported.services.find((s) => ours(s.name, services) && isFaulty(s));
}

/** Our services run the new configuration: each is reported, none faulty, none still on an older container. */
function oursRunNew(reported: ReportedState, services: ReadonlySet<string>): boolean {
  const mine = reported.services.filter((s) => services.has(s.name));
  return mine.length === services.size && mine.every((s) => !isFaulty(s) && s.outdated !== true && (s.state === 'running' || s.state === 'exited'));
}

function bake(input: VerdictInput): DeviceVerdict {
  const since = input.bakeStartedAt ?? input.now;
  return { verdict: input.now - since >= input.bakeMs ? 'healthy' : 'baking', reason: null, since };
}

/**
 * Pure: the verdict on one device for one published version. The evidence comes first: a
 * retained failure of our version counts even when the device has gone offline since; a device
 * offline is judged no further (its bake cannot be watched); then applied, working, pending.
 */
export function judgeDevice(input: VerdictInput): DeviceVerdict {
  const { reported, version } = input;
  const services = input.services === undefined || input.services.size === 0 ? undefined : input.services;
  if (version === null) return { verdict: 'pending', reason: null };
  if (reported !== null && reported.status === 'failed' && reported.error?.code === 'RUNTIME_UNAVAILABLE') {
    // The engine is down: nothing runs, nothing is judged; the revision is not at fault.
    return { verdict: 'offline', reason: { code: reported.error.code, message: clip(reported.error.message) } };
  }
  const concernsUs = reported !== null && reported.desiredVersion !== null && reported.desiredVersion >= version;
  if (concernsUs && (reported.status === 'failed' || reported.status === 'refused')) {
    const names = blamed(reported);
    const foreign = services !== undefined && names.length > 0 && !names.some((n) => services.has(n));
    if (!foreign) return { verdict: 'failed', reason: failureReason(reported, services) };
    // Another layer's service failed in a version that also carries ours; ours is judged by its own services.
    if (!input.online) return { verdict: 'offline', reason: null };
    if ((reported.appliedVersion ?? 0) >= version || oursRunNew(reported, services)) return bake(input);
    return { verdict: 'applying', reason: null };
  }
  if (!input.online) return { verdict: 'offline', reason: null };
  if (reported === null) return { verdict: 'pending', reason: null };
  const applied = reported.appliedVersion !== null && reported.appliedVersion >= version;
  if (applied && (reported.status === 'synced' || reported.status === 'degraded')) {
    const fault = firstFault(reported, services);
    // Past probation, a crash, a failed pull or an unhealthy check during the bake is the revision's failure.
    if (fault !== undefined) return { verdict: 'failed', reason: serviceReason(fault) };
    return bake(input);
  }
  if (concernsUs || applied) {
    const fault = firstFault(reported, services);
    return { verdict: 'applying', reason: fault === undefined ? null : serviceReason(fault) };
  }
  return { verdict: 'pending', reason: null };
}
