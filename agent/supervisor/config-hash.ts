import { createHash } from 'node:crypto';
import type { DesiredService } from '../../protocol/compose/desired-service.js';

/** JSON with object keys sorted at every level, so that equal values give equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * The hash stored on a container: equal hashes mean the container already
 * runs this configuration and must not be recreated. Left out are settings
 * the engine never sees — dependencies only order starts, and `x-tsunagu`
 * steers the agent — so changing them restarts nothing. The image is hashed
 * by reference: a moved tag is not an update; pin digests to update by content.
 */
export function configHash(service: DesiredService): string {
  const engineFacing: Partial<DesiredService> = { ...service };
  delete engineFacing.dependsOn;
  delete engineFacing.tsunagu;
  // Settings added after containers were already running in the field are
  // hashed only when used: an agent upgrade must not recreate every container.
  if (!engineFacing.privileged) delete engineFacing.privileged;
  if (engineFacing.pid === null) delete engineFacing.pid;
  if (engineFacing.capAdd?.length === 0) delete engineFacing.capAdd;
  if (engineFacing.capDrop?.length === 0) delete engineFacing.capDrop;
  if (engineFacing.stopSignal === null) delete engineFacing.stopSignal;
  return createHash('sha256').update(canonicalJson(engineFacing)).digest('hex').slice(0, 32);
}
