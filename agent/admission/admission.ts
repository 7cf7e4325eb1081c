import { TsunaguError, type ErrorCode } from '../../protocol/errors.js';
import type { DesiredState } from '../../protocol/compose/desired-service.js';

/** Why one check refuses a desired state: the reasons per service (a service may have several). */
export interface AdmissionFinding {
  code: ErrorCode;
  /** Service name → reasons. A reason names the setting and what the device allows or has. */
  services: Record<string, string[]>;
}

export interface AdmissionContext {
  /**
   * True for a version this device has not accepted before. A version
   * accepted earlier and restored from disk (reboot, `reread-desired`) was
   * already admitted: only the checks that guard the device itself (its
   * security policy, which the owner may have tightened since) run again.
   */
  firstTime: boolean;
}

/**
 * One rule a desired state must pass before anything of it is applied. A
 * check returns its findings (empty when it has none) and throws only when it
 * cannot decide (an engine that does not answer): the channel then refuses
 * nothing and reports the error.
 */
export interface AdmissionCheck {
  readonly name: string;
  check(desired: DesiredState, context: AdmissionContext): Promise<AdmissionFinding | null> | AdmissionFinding | null;
}

/**
 * Run every check and refuse the desired state as a whole when any finds
 * something: with all the reasons per service at once, so that an operator
 * fixes the document in one round. The first finding's code is the error's
 * code (checks are ordered: security policy first).
 */
export async function admit(desired: DesiredState, checks: readonly AdmissionCheck[], context: AdmissionContext): Promise<void> {
  const findings: AdmissionFinding[] = [];
  for (const c of checks) {
    const f = await c.check(desired, context);
    if (f !== null && Object.keys(f.services).length > 0) findings.push(f);
  }
  const first = findings[0];
  if (first === undefined) return;
  const services: Record<string, string> = {};
  for (const f of findings) {
    for (const [service, reasons] of Object.entries(f.services)) {
      services[service] = [...(services[service] === undefined ? [] : [services[service]]), ...reasons].join('; ');
    }
  }
  const summary = Object.entries(services).map(([s, r]) => `${s}: ${r}`).join('; ');
  throw new TsunaguError(first.code, `refused: ${summary}`, { services });
}
