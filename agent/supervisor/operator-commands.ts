import { TsunaguError } from '../../protocol/errors.js';
import type { DesiredService } from '../../protocol/compose/desired-service.js';
import type { SupervisorMemory } from './supervisor-memory.js';

/**
 * The desired service an operator's command names. A command that starts
 * it (start, restart) is refused for an evicted service: started, it would
 * only be stopped again by the next pass. Pure; throws UNKNOWN_SERVICE or
 * PRESSURE_EVICTED.
 */
export function commandTarget(memory: SupervisorMemory, service: string, starts: boolean): DesiredService {
  const s = memory.desired?.services.find((x) => x.name === service);
  if (s === undefined) throw new TsunaguError('UNKNOWN_SERVICE', `service ${service} is not part of the desired state`);
  const reason = starts ? memory.evictions.services.get(service) : undefined;
  if (reason !== undefined) throw new TsunaguError('PRESSURE_EVICTED', `service ${service} is evicted (${reason}); it starts again when the pressure clears`);
  return s;
}
