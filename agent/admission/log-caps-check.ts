import { CAPPED_LOG_DRIVERS, type DesiredState, type LogCaps } from '../../protocol/compose/desired-service.js';
import { parseBytes } from '../../protocol/compose/compose-values.js';
import type { AdmissionCheck, AdmissionContext, AdmissionFinding } from './admission.js';

/**
 * Container logs on this device stay within its caps (`disk.containerLogs`):
 * a service may keep fewer or smaller log files than the device allows, not
 * more or larger, and never unbounded ones. Only the drivers that keep files
 * in the engine's data root are capped (json-file, local); the others write
 * elsewhere (journald and syslog have their own limits) or nowhere (none).
 * Services without settings of their own got the device's caps at parsing.
 * Pure. Only for a version received now: a stored version was admitted under
 * the caps of its day (services without settings of their own follow a
 * changed default anyway, their configuration hash changing with it).
 */
export class LogCapsCheck implements AdmissionCheck {
  readonly name = 'log-caps';
  private readonly maxBytes: number;

  constructor(private readonly caps: LogCaps) {
    const parsed = parseBytes(caps.maxSize);
    if (!parsed.ok) throw new Error(`disk.containerLogs.maxSize: ${parsed.reason}`);
    this.maxBytes = parsed.value;
  }

  check(desired: DesiredState, context: AdmissionContext): AdmissionFinding | null {
    if (!context.firstTime) return null;
    const services: Record<string, string[]> = {};
    for (const s of desired.services) {
      if (!CAPPED_LOG_DRIVERS.has(s.logging.driver)) continue;
      const reasons: string[] = [];
      const size = s.logging.options['max-size'] ?? '';
      const bytes = parseBytes(size);
      if (!bytes.ok) reasons.push(`logging.options.max-size "${size}" is not a size this device can cap (at most ${this.caps.maxSize})`);
      else if (bytes.value > this.maxBytes) reasons.push(`logging.options.max-size ${size} exceeds this device's cap of ${this.caps.maxSize}`);
      const files = s.logging.options['max-file'] ?? '';
      if (!/^\d+$/.test(files) || Number(files) < 1) reasons.push(`logging.options.max-file "${files}" is not a count of files (at most ${this.caps.maxFiles})`);
      else if (Number(files) > this.caps.maxFiles) reasons.push(`logging.options.max-file ${files} exceeds this device's cap of ${this.caps.maxFiles}`);
      if (reasons.length > 0) services[s.name] = reasons;
    }
    return Object.keys(services).length === 0 ? null : { code: 'ADMISSION_REFUSED', services };
  }
}
