import type { DesiredState } from '../../protocol/compose/desired-service.js';
import type { AdmissionCheck, AdmissionFinding } from './admission.js';

/**
 * A service's `x-tsunagu.requires` labels must all be on this device (its
 * inventory labels: `key=value`, or `key` for `key=true`). Pure.
 */
export function checkCapabilityLabels(desired: DesiredState, labels: ReadonlySet<string>): AdmissionFinding | null {
  const services: Record<string, string[]> = {};
  for (const s of desired.services) {
    const missing = s.tsunagu.requires.filter((l) => !labels.has(l));
    if (missing.length > 0) services[s.name] = [`x-tsunagu.requires ${missing.join(', ')}: this device lacks ${missing.length === 1 ? 'that label' : 'those labels'}`];
  }
  return Object.keys(services).length === 0 ? null : { code: 'MISSING_LABEL', services };
}

/**
 * Checked for a new version only. A version restored from disk runs what it
 * can: a label gone since (a camera unplugged before a reboot) leaves that
 * service undeployed, reported with the label it misses, and the others run.
 */
export function capabilityLabelsCheck(labels: ReadonlySet<string>): AdmissionCheck {
  return { name: 'capability-labels', check: (desired, context) => (context.firstTime ? checkCapabilityLabels(desired, labels) : null) };
}
